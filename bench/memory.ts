/**
 * Memory under backpressure: the peak RSS of a `ccx serve` process while a
 * slow client receives 1 GB from one job. The client is {@linkcode RawWsClient},
 * which takes bytes off the TCP socket at a fixed rate, so the server's
 * socket really fills and it must stop reading the job's pipes rather than
 * buffer the output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchMemory } from "./memory.ts";
 * // A full benchmark run (minutes of output at 25 MB/s): `deno task bench --only memory`.
 * Deno.test({ name: "benchMemory, full size (a benchmark run)", ignore: true }, async () => {
 *   const section = await benchMemory({ bytesPerSecond: 25e6 });
 *   assert.equal(section.id, "memory");
 * });
 * ```
 * @module
 */

import { check, fixed, progress, type Section } from "./report.ts";
import { startDirectServerProcess, startServerProcess, vmKiB } from "./proc.ts";
import { RawWsClient } from "./ws_raw.ts";

/**
 * Options of {@linkcode benchMemory}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MemoryOptions } from "./memory.ts";
 * const o: MemoryOptions = { bytesPerSecond: 25e6, maxSeconds: 120 };
 * assert.equal(o.bytesPerSecond! * o.maxSeconds!, 3e9); // at most 3 GB read, slowly
 * ```
 */
export interface MemoryOptions {
  /** The client's read rate (default 25e6 bytes/s: 1 GB in about 40 s). */
  bytesPerSecond?: number;
  /** Give up (cancel the job, report what was received) after this long (default 120 s). */
  maxSeconds?: number;
  /** RSS sampling period (default 100 ms). */
  sampleMs?: number;
  /** Bytes the job writes, in 100-byte lines (default 1e9: 1 GB); `--quick` sends far less. */
  bytes?: number;
  /** Also measure past the connection gate, for its cost (default true). */
  direct?: boolean;
}

/** One transfer's figures. */
interface Pass {
  idle: number;
  beforeJob: number;
  samples: number[];
  completion: Record<string, unknown> | undefined;
  seconds: number;
  wire: number;
  payload: number;
  messages: number;
  timedOut: boolean;
}

/** Sends `command` on `url` to a client reading at `rate`, sampling the RSS of `pid`. */
async function pass(
  url: string,
  pid: number,
  command: string,
  opts: { rate: number; maxS: number; sampleMs: number; label: string },
): Promise<Pass> {
  const samples: number[] = [];
  let completion: Record<string, unknown> | undefined;
  let seconds = 0;
  let wire = 0;
  let payload = 0;
  let messages = 0;
  let timedOut = false;
  const idle = vmKiB(pid) ?? NaN;
  let beforeJob = NaN;
  const ws = await RawWsClient.connect(url);
  try {
    // The `connected` notification first (the naive Deno.serve door has none: a ping answers).
    await ws.sendText(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }));
    await ws.readUntil({ until: (m) => (m as { id?: number }).id === 0 });
    beforeJob = vmKiB(pid) ?? NaN;
    const sampler = setInterval(() => {
      const kib = vmKiB(pid);
      if (kib !== undefined) samples.push(kib);
    }, opts.sampleMs);
    const abort = AbortSignal.timeout(opts.maxS * 1000);
    const t0 = performance.now();
    let lastReport = t0;
    let got = 0;
    try {
      await ws.sendText(JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "execute",
        // Chunks mode, as before line mode was the default, so the figure stays
        // comparable (lines mode memory is bounded the same way: tests/server_test.ts).
        params: { command, job_id: "mem", timeout: opts.maxS + 60, output_mode: "chunks" },
      }));
      const r = await ws.readUntil({
        bytesPerSecond: opts.rate,
        signal: abort,
        onMessage: (n) => {
          got += n;
          const now = performance.now();
          if (now - lastReport > 10000) {
            lastReport = now;
            progress(
              `memory (${opts.label}): ${fixed(got / 1e6, 0)} MB after ` +
                `${fixed((now - t0) / 1000, 0)} s, server RSS ` +
                `${fixed((samples.at(-1) ?? 0) / 1024, 0)} MiB`,
            );
          }
        },
        until: (m) => {
          const msg = m as { method?: string; params?: Record<string, unknown> };
          if (msg.method !== "process.completed") return false;
          completion = msg.params;
          return true;
        },
      });
      wire = r.wireBytes;
      payload = r.payloadBytes;
      messages = r.messages;
      timedOut = !r.done;
    } finally {
      seconds = (performance.now() - t0) / 1000;
      clearInterval(sampler);
    }
  } finally {
    ws.close();
  }
  return { idle, beforeJob, samples, completion, seconds, wire, payload, messages, timedOut };
}

const peakMiB = (p: Pass) => (p.samples.length ? Math.max(...p.samples) : NaN) / 1024;

/**
 * Figure 4: peak server RSS while a client reading at `bytesPerSecond`
 * receives 1 GB (`head -c 990000000 /dev/zero | tr '\0' x | fold -w 99; echo`:
 * 10,000,000 lines of 100 bytes). Target: peak < 150 MiB. With `direct` (the
 * default), the same again on a server reached past its connection gate
 * (bench/serve_direct.ts), for the gate's cost.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchMemory } from "./memory.ts";
 * const section = await benchMemory({ bytes: 20e6, bytesPerSecond: 100e6, maxSeconds: 30 }); // smoke size
 * assert.equal(section.id, "memory");
 * ```
 */
export async function benchMemory(opts: MemoryOptions = {}): Promise<Section> {
  const rate = opts.bytesPerSecond ?? 25e6;
  const maxS = opts.maxSeconds ?? 120;
  const sampleMs = opts.sampleMs ?? 100;
  const total = opts.bytes ?? 1e9;
  const command = `head -c ${total / 100 * 99} /dev/zero | tr '\\0' x | fold -w 99; echo`;
  const size = total >= 1e9 ? `${fixed(total / 1e9, 0)} GB` : `${fixed(total / 1e6, 0)} MB`;
  const load = () => Deno.loadavg()[0].toFixed(2);
  const loads = [load()];
  const run = { rate, maxS, sampleMs, label: "through the gate" };
  progress(`memory: ${size} to a client reading at ${fixed(rate / 1e6, 0)} MB/s`);
  const server = await startServerProcess();
  let gated: Pass;
  try {
    gated = await pass(server.url, server.pid, command, run);
  } finally {
    await server.stop();
  }
  loads.push(load());
  let direct: Pass | undefined;
  if (opts.direct ?? true) {
    progress(`memory: the same past the gate (Deno.serve's own WebSocket)`);
    const past = await startDirectServerProcess();
    try {
      direct = await pass(past.directUrl!, past.pid, command, { ...run, label: "past the gate" });
    } finally {
      await past.stop();
    }
    loads.push(load());
  }
  const peak = peakMiB(gated);
  const ok = (p: Pass) => {
    const bytes = Number(p.completion?.stdout_bytes ?? NaN);
    return !p.timedOut && p.completion?.status === "completed" && bytes === total;
  };
  const notes = [
    `job: ${command} (output_mode "chunks")`,
    `client: raw TCP WebSocket (bench/ws_raw.ts) reading 256 KiB at a time, paced to ` +
    `${fixed(rate / 1e6, 0)} MB/s; server RSS = VmRSS of the separate server process, ` +
    `sampled every ${sampleMs} ms (${gated.samples.length} samples)`,
    `load average (1 min) at the start and after each pass: ${loads.join(", ")}`,
  ];
  for (const [p, label] of [[gated, "through the gate"], [direct, "past the gate"]] as const) {
    if (!p) continue;
    if (p.timedOut) notes.push(`PROBLEM: ${label}: gave up after ${maxS} s`);
    else if (!ok(p)) notes.push(`PROBLEM: ${label}: completion ${JSON.stringify(p.completion)}`);
  }
  const rows = (p: Pass | undefined) => {
    if (!p) return ["-", "-", "-", "-", "-", "-", "-", "-"];
    const bytes = Number(p.completion?.stdout_bytes ?? NaN);
    return [
      fixed(p.idle / 1024, 1),
      fixed(p.beforeJob / 1024, 1),
      fixed(peakMiB(p), 1),
      Number.isFinite(bytes) ? String(bytes) : "-",
      fixed(p.wire / 1e6, 1),
      String(p.messages),
      fixed(p.seconds, 1),
      fixed(p.wire / 1e6 / p.seconds, 1),
    ];
  };
  const measures = [
    "server RSS idle (MiB)",
    "server RSS with the session open (MiB)",
    "server RSS peak during the transfer (MiB)",
    "job output (bytes, server's count)",
    "received on the wire (MB, frames incl.)",
    "messages",
    "time (s)",
    "client rate achieved (MB/s)",
  ];
  const g = rows(gated);
  const d = rows(direct);
  const checks = [
    check(
      "server peak RSS",
      `${fixed(peak, 1)} MiB (load ${loads[1]})`,
      "< 150 MiB",
      Number.isFinite(peak) ? peak < 150 && ok(gated) : null,
    ),
  ];
  if (direct) {
    const cost = peak / peakMiB(direct) - 1;
    checks.push(check(
      "gate's cost: peak RSS",
      `${cost >= 0 ? "+" : ""}${fixed(cost * 100, 1)} % (past the gate ${
        fixed(peakMiB(direct), 1)
      } MiB)`,
      "≤ 15 %",
      Number.isFinite(cost) ? cost <= 0.15 : null,
    ));
  }
  return {
    id: "memory",
    title: `4. Server memory while a slow client receives ${size}`,
    columns: ["measure", "through the gate", "past the gate"],
    rows: measures.map((m, i) => [m, g[i], d[i]]),
    checks,
    notes,
    data: {
      idleMiB: gated.idle / 1024,
      beforeJobMiB: gated.beforeJob / 1024,
      peakMiB: peak,
      samplesKiB: gated.samples,
      seconds: gated.seconds,
      wireBytes: gated.wire,
      payloadBytes: gated.payload,
      messages: gated.messages,
      completion: gated.completion ?? null,
      bytesPerSecond: rate,
      direct: direct ? { peakMiB: peakMiB(direct), samplesKiB: direct.samples } : null,
      loads,
    },
  };
}

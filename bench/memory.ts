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
import { startServerProcess, vmKiB } from "./proc.ts";
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
}

/**
 * Figure 4: peak server RSS while a client reading at `bytesPerSecond`
 * receives 1 GB (`head -c 990000000 /dev/zero | tr '\0' x | fold -w 99; echo`:
 * 10,000,000 lines of 100 bytes). Target: peak < 200 MiB.
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
  const server = await startServerProcess();
  const samples: number[] = [];
  let completion: Record<string, unknown> | undefined;
  let seconds = 0;
  let wire = 0;
  let payload = 0;
  let messages = 0;
  let timedOut = false;
  const idle = vmKiB(server.pid) ?? NaN;
  let beforeJob = NaN;
  try {
    const ws = await RawWsClient.connect(server.url);
    try {
      // The `connected` notification first.
      await ws.readUntil({ until: (m) => (m as { method?: string }).method === "connected" });
      beforeJob = vmKiB(server.pid) ?? NaN;
      const sampler = setInterval(() => {
        const kib = vmKiB(server.pid);
        if (kib !== undefined) samples.push(kib);
      }, sampleMs);
      const abort = AbortSignal.timeout(maxS * 1000);
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
          params: { command, job_id: "mem", timeout: maxS + 60, output_mode: "chunks" },
        }));
        progress(`memory: ${size} to a client reading at ${fixed(rate / 1e6, 0)} MB/s`);
        const r = await ws.readUntil({
          bytesPerSecond: rate,
          signal: abort,
          onMessage: (n) => {
            got += n;
            const now = performance.now();
            if (now - lastReport > 10000) {
              lastReport = now;
              progress(
                `memory: ${fixed(got / 1e6, 0)} MB after ${fixed((now - t0) / 1000, 0)} s, ` +
                  `server RSS ${fixed((samples.at(-1) ?? 0) / 1024, 0)} MiB`,
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
  } finally {
    await server.stop();
  }
  const peakKiB = samples.length ? Math.max(...samples) : NaN;
  const peak = peakKiB / 1024;
  const stdoutBytes = Number(completion?.stdout_bytes ?? NaN);
  const ok = !timedOut && completion?.status === "completed" && stdoutBytes === total;
  const notes = [
    `job: ${command} (output_mode "chunks")`,
    `client: raw TCP WebSocket (bench/ws_raw.ts) reading 256 KiB at a time, paced to ` +
    `${fixed(rate / 1e6, 0)} MB/s; server RSS = VmRSS of the separate server process, ` +
    `sampled every ${sampleMs} ms (${samples.length} samples)`,
  ];
  if (timedOut) notes.push(`PROBLEM: gave up after ${maxS} s (the job was ended by the close)`);
  else if (!ok) notes.push(`PROBLEM: completion ${JSON.stringify(completion)}`);
  return {
    id: "memory",
    title: `4. Server memory while a slow client receives ${size}`,
    columns: ["measure", "value"],
    rows: [
      ["server RSS idle (MiB)", fixed(idle / 1024, 1)],
      ["server RSS with the session open (MiB)", fixed(beforeJob / 1024, 1)],
      ["server RSS peak during the transfer (MiB)", fixed(peak, 1)],
      [
        "job output (bytes, server's count)",
        Number.isFinite(stdoutBytes) ? String(stdoutBytes) : "-",
      ],
      ["received on the wire (MB, frames incl.)", fixed(wire / 1e6, 1)],
      ["messages", String(messages)],
      ["time (s)", fixed(seconds, 1)],
      ["client rate achieved (MB/s)", fixed(wire / 1e6 / seconds, 1)],
    ],
    checks: [
      check(
        "server peak RSS",
        `${fixed(peak, 1)} MiB`,
        "< 200 MiB",
        Number.isFinite(peak) ? peak < 200 && ok : null,
      ),
    ],
    notes,
    data: {
      idleMiB: idle / 1024,
      beforeJobMiB: beforeJob / 1024,
      peakMiB: peak,
      samplesKiB: samples,
      seconds,
      wireBytes: wire,
      payloadBytes: payload,
      messages,
      completion: completion ?? null,
      bytesPerSecond: rate,
    },
  };
}

/**
 * Throughput: how fast output travels from a job through `ccx serve` to a
 * WebSocket client, next to the same command writing to /dev/null (the raw
 * limit) and, for many short lines, next to websocketd.
 *
 * The server runs as its own process (`deno run -A main.ts serve`), so the
 * client (this process, using lib/client/client.ts, which JSON-parses every message)
 * does not share its event loop.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchBulk, benchSeq } from "./throughput.ts";
 * // Full benchmark runs: `deno task bench --only throughput`.
 * Deno.test({ name: "benchSeq and benchBulk, full size (benchmark runs)", ignore: true }, async () => {
 *   const lines = await benchSeq();
 *   const bulk = await benchBulk();
 *   assert.deepEqual([lines.id, bulk.id], ["seq", "bulk"]);
 * });
 * ```
 * @module
 */

import { CcxClient } from "../lib/client/client.ts";
import { check, fixed, median, progress, type Section, si } from "./report.ts";
import {
  cpuSeconds,
  freePort,
  type ServerProcess,
  startGroup,
  startServerProcess,
  timeShell,
  waitForPort,
  which,
} from "./proc.ts";

/**
 * One measured transfer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Transfer } from "./throughput.ts";
 * const t: Transfer = { seconds: 1, lines: 2e6, bytes: 14888896, messages: 57 };
 * assert.equal(t.lines / t.seconds, 2e6); // lines per second
 * ```
 */
export interface Transfer {
  /** Wall time, spawn to last byte. */
  seconds: number;
  /** Lines received (newlines counted). */
  lines: number;
  /** Bytes of output received. */
  bytes: number;
  /** WebSocket messages carrying that output (undefined for /dev/null). */
  messages?: number;
  /** Anything that went wrong (wrong byte count, non-zero exit, timeout). */
  problem?: string;
  /** CPU seconds the ccx server process used for the transfer (ccx runs only). */
  serverCpuS?: number;
}

/**
 * Runs `command` through a ccx server with {@linkcode CcxClient}, which
 * JSON-parses every message; counts lines, bytes and messages. Timed from the
 * `execute` request to `process.completed`. `mode` is the `output_mode` asked
 * for: `chunks` (what the ccx client asks by default) or `lines` (one message
 * per line, the server's default, what the seed's clients get).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../lib/serve/server.ts";
 * import { ccxTransfer } from "./throughput.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const t = await ccxTransfer(server.url, "seq 1 1000", "lines");
 * assert.deepEqual([t.lines, t.messages, t.bytes, t.problem], [1000, 1000, 3893, undefined]);
 * await server.shutdown();
 * ```
 */
export async function ccxTransfer(
  url: string,
  command: string,
  mode: "lines" | "chunks" = "chunks",
): Promise<Transfer> {
  const client = await CcxClient.connect(url);
  try {
    let lines = 0;
    let chars = 0;
    let messages = 0;
    const t0 = performance.now();
    const job = await client.execute({ command, timeout: 300, output_mode: mode }, {
      onOutput(type, data) {
        if (type !== "stdout") return;
        messages++;
        chars += data.length;
        for (let i = data.indexOf("\n"); i !== -1; i = data.indexOf("\n", i + 1)) lines++;
      },
    });
    const end = await job.done;
    const seconds = (performance.now() - t0) / 1000;
    let problem: string | undefined;
    if (end.status !== "completed") problem = `job ${end.status} (exit ${end.exitCode})`;
    else if (chars !== end.stdoutBytes) {
      problem = `received ${chars} characters, server counted ${end.stdoutBytes} bytes`;
    } else if (mode === "lines" && messages !== lines) {
      problem = `lines mode: ${messages} messages for ${lines} lines`;
    }
    return { seconds, lines, bytes: end.stdoutBytes, messages, problem };
  } finally {
    await client.close();
  }
}

/**
 * Runs `command` through a ccx server in lines mode with a plain `WebSocket`
 * that counts messages without parsing them, as the websocketd client does:
 * the same client work on both sides, so the two servers compare. Timed from the
 * `execute` request to the `process.completed` message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../lib/serve/server.ts";
 * import { ccxRawLinesTransfer } from "./throughput.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const t = await ccxRawLinesTransfer(server.url, "seq 1 1000");
 * assert.deepEqual([t.lines, t.bytes, t.problem], [1000, 3893, undefined]);
 * await server.shutdown();
 * ```
 */
export async function ccxRawLinesTransfer(
  url: string,
  command: string,
  timeoutMs = 180000,
): Promise<Transfer> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`could not connect to ${url}`));
  });
  let messages = 0;
  let completed = "";
  const t0 = performance.now();
  const timedOut = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(true), timeoutMs);
    ws.onmessage = (ev) => {
      const text = ev.data as string;
      // Only the few messages that are not output are looked into.
      if (text.startsWith('{"jsonrpc":"2.0","method":"process.output"')) return void messages++;
      if (text.includes('"method":"process.completed"')) {
        completed = text;
        clearTimeout(timer);
        resolve(false);
      }
    };
    ws.send(JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "execute",
      params: { command, timeout: 300, output_mode: "lines" },
    }));
  });
  const seconds = (performance.now() - t0) / 1000;
  ws.close();
  const end = completed ? JSON.parse(completed).params : undefined;
  let problem: string | undefined;
  if (timedOut) problem = `gave up after ${timeoutMs / 1000} s`;
  else if (end?.status !== "completed") problem = `job ${end?.status}`;
  return { seconds, lines: messages, bytes: Number(end?.stdout_bytes ?? 0), messages, problem };
}

/**
 * Runs `command` once through websocketd (one message per line) and counts
 * the messages with a plain `WebSocket`. Timed from opening the connection
 * (which starts the command) to its close.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { websocketdTransfer } from "./throughput.ts";
 * // Needs websocketd on PATH (the comparison server), so the doc tests only type-check it.
 * Deno.test({ name: "websocketdTransfer (needs websocketd)", ignore: true }, async () => {
 *   const t = await websocketdTransfer(["seq", "1", "1000"]);
 *   assert.equal(t.lines, 1000);
 * });
 * ```
 */
export async function websocketdTransfer(argv: string[], timeoutMs = 180000): Promise<Transfer> {
  const port = freePort();
  const wsd = startGroup("websocketd", ["--port", String(port), "--address", "127.0.0.1", ...argv]);
  try {
    await waitForPort(port, 10000);
    let lines = 0;
    let bytes = 0;
    const t0 = performance.now();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const timedOut = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        resolve(true);
        ws.close();
      }, timeoutMs);
      ws.onmessage = (ev) => {
        lines++;
        bytes += String(ev.data).length + 1; // websocketd strips the newline
      };
      ws.onclose = () => {
        clearTimeout(timer);
        resolve(false);
      };
      ws.onerror = () => {};
    });
    const seconds = (performance.now() - t0) / 1000;
    return {
      seconds,
      lines,
      bytes,
      messages: lines,
      problem: timedOut ? `gave up after ${timeoutMs / 1000} s` : undefined,
    };
  } finally {
    await wsd.stop();
  }
}

/** Runs a transfer and notes the CPU seconds the server process spent on it. */
async function withServerCpu(
  server: ServerProcess,
  run: () => Promise<Transfer>,
): Promise<Transfer> {
  const before = cpuSeconds(server.pid);
  const t = await run();
  const after = cpuSeconds(server.pid);
  if (before !== undefined && after !== undefined) t.serverCpuS = after - before;
  return t;
}

function cpuNote(t: Transfer): string {
  if (t.serverCpuS === undefined) return "not measured";
  const perLine = (t.serverCpuS / Math.max(1, t.lines)) * 1e6;
  return `${fixed(t.serverCpuS, 2)} s (${fixed(perLine, 2)} µs a line)`;
}

/** Runs `script` to /dev/null and counts its output separately (one extra run, untimed). */
async function rawTransfers(script: string, runs: number): Promise<Transfer[]> {
  const count = await new Deno.Command("/bin/sh", {
    args: ["-c", `${script} | wc -lc`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const [lines, bytes] = new TextDecoder().decode(count.stdout).trim().split(/\s+/).map(Number);
  const out: Transfer[] = [];
  for (let i = 0; i < runs; i++) {
    const { seconds, code } = await timeShell(`${script} > /dev/null`);
    out.push({ seconds, lines, bytes, problem: code ? `exit ${code}` : undefined });
  }
  return out;
}

/** The run with the median time. */
function medianRun(runs: Transfer[]): Transfer {
  const m = median(runs.map((r) => r.seconds));
  return runs.reduce((a, b) => Math.abs(b.seconds - m) < Math.abs(a.seconds - m) ? b : a);
}

function row(label: string, t: Transfer | undefined, raw: Transfer): string[] {
  if (!t) return [label, "-", "-", "-", "-", "-"];
  return [
    label,
    fixed(t.seconds, 3),
    si(t.lines / t.seconds),
    fixed(t.bytes / 1e6 / t.seconds, 1),
    t.messages === undefined ? "-" : String(t.messages),
    `${fixed((raw.seconds / t.seconds) * 100, 1)}%`,
  ];
}

const COLUMNS = ["run", "seconds", "lines/s", "MB/s", "messages", "% of raw"];

/**
 * Options of {@linkcode benchSeq} and {@linkcode benchBulk}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ThroughputOptions } from "./throughput.ts";
 * const o: ThroughputOptions = { runs: 3 };
 * assert.equal(o.runs, 3); // the median of 3 runs is reported
 * ```
 */
export interface ThroughputOptions {
  /** Timed runs of the raw and ccx transfers; the median is reported (default 3). */
  runs?: number;
  /** Lines to send (default 2,000,000); `--quick` sends far fewer. */
  lines?: number;
  /** Whether to measure websocketd too, when it is installed (default true). */
  websocketd?: boolean;
}

/**
 * Figure 1: `seq 1 2000000` (2 M short lines, 14.9 MB) through ccx in both
 * output modes, to /dev/null, and through websocketd. Targets: chunks mode ≥ 3x
 * websocketd; lines mode (one message a line, like websocketd) ≥ 1x.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchSeq } from "./throughput.ts";
 * const section = await benchSeq({ runs: 1, lines: 20_000, websocketd: false }); // smoke size
 * assert.equal(section.id, "seq");
 * ```
 */
export async function benchSeq(opts: ThroughputOptions = {}): Promise<Section> {
  const runs = opts.runs ?? 3;
  const lines = opts.lines ?? 2_000_000;
  const script = `seq 1 ${lines}`;
  progress(`seq: ${runs} runs to /dev/null`);
  const raw = medianRun(await rawTransfers(script, runs));
  const server = await startServerProcess();
  const ccxRuns: Transfer[] = [];
  const lineRuns: Transfer[] = [];
  const rawLineRuns: Transfer[] = [];
  try {
    for (let i = 1; i <= runs; i++) {
      progress(`seq: ccx chunks run ${i}/${runs}`);
      ccxRuns.push(await withServerCpu(server, () => ccxTransfer(server.url, script, "chunks")));
    }
    for (let i = 1; i <= runs; i++) {
      progress(`seq: ccx lines run ${i}/${runs}`);
      const t = await withServerCpu(server, () => ccxTransfer(server.url, script, "lines"));
      lineRuns.push(t);
      if (t.seconds > 5 || t.problem) break; // slow: one run is enough
    }
    for (let i = 1; i <= runs; i++) {
      progress(`seq: ccx lines run ${i}/${runs}, client counting without parsing`);
      const t = await withServerCpu(server, () => ccxRawLinesTransfer(server.url, script));
      rawLineRuns.push(t);
      if (t.seconds > 5 || t.problem) break;
    }
  } finally {
    await server.stop();
  }
  const ccx = medianRun(ccxRuns);
  const ccxLines = medianRun(lineRuns);
  const ccxRawLines = medianRun(rawLineRuns);
  let wsd: Transfer | undefined;
  const wsdRuns: Transfer[] = [];
  const notes: string[] = [];
  if (opts.websocketd === false) {
    notes.push("websocketd: not measured in this run");
  } else if (which("websocketd")) {
    for (let i = 1; i <= runs; i++) {
      progress(`seq: websocketd run ${i}`);
      const t = await websocketdTransfer(["seq", "1", String(lines)]);
      wsdRuns.push(t);
      if (t.seconds > 5 || t.problem) break; // slow: one run is enough
    }
    wsd = medianRun(wsdRuns);
  } else {
    notes.push("websocketd is not installed (apt install websocketd): its column is skipped");
  }
  const ratio = wsd ? wsd.seconds / ccx.seconds : NaN;
  const linesRatio = wsd ? wsd.seconds / ccxRawLines.seconds : NaN;
  const problems = [...ccxRuns, ...lineRuns, ...rawLineRuns, ...wsdRuns].filter((t) => t.problem)
    .map((t) => t.problem);
  for (const t of [...ccxRuns, ...lineRuns, ...rawLineRuns]) {
    if (t.lines !== raw.lines) problems.push(`ccx delivered ${t.lines} lines, not ${raw.lines}`);
  }
  notes.push(
    `median of ${runs} runs for /dev/null and ccx chunks; ccx lines: ${lineRuns.length} run(s),` +
      ` websocketd: ${wsdRuns.length} run(s) (one is enough when it takes over 5 s)`,
    "ccx: timed from the execute request to process.completed, client in this process " +
      "(lib/client/client.ts, JSON-parses every message), server a separate deno process",
    'ccx lines: output_mode "lines" (the server\'s default, one message per line, as the ' +
      "seed's clients expect); with CcxClient bound by the client receiving and parsing one " +
      "message a line; the raw row counts messages with a plain WebSocket, as for websocketd",
    "websocketd: timed from opening the WebSocket (which starts the command) to its close",
    `ccx server CPU (user+sys) for the job: chunks mode ${cpuNote(ccx)}, lines mode ` +
      `${cpuNote(ccxLines)}, lines mode to the raw client ${cpuNote(ccxRawLines)} (does not ` +
      "grow with other load on the machine, unlike wall time)",
    ...problems.map((p) => `PROBLEM: ${p}`),
  );
  return {
    id: "seq",
    title: `1. Throughput: seq 1 ${lines} (${lines.toLocaleString("en")} lines, ` +
      `${fixed(raw.bytes / 1e6, 1)} MB) to a WebSocket client`,
    columns: COLUMNS,
    rows: [
      row(`raw: sh -c 'seq 1 ${lines} > /dev/null'`, raw, raw),
      row("ccx serve -> CcxClient, chunks mode", ccx, raw),
      row("ccx serve -> CcxClient, lines mode", ccxLines, raw),
      row("ccx serve -> raw WebSocket, lines mode", ccxRawLines, raw),
      row(wsd ? "websocketd -> WebSocket" : "websocketd (not installed)", wsd, raw),
    ],
    checks: [
      check(
        "ccx chunks mode vs websocketd (lines/s)",
        wsd ? `${fixed(ratio, 1)}x` : "not measured",
        "≥ 3x",
        wsd && !ccx.problem && !wsd.problem ? ratio >= 3 : null,
      ),
      check(
        "ccx lines mode vs websocketd (lines/s; one message a line, same raw client)",
        wsd ? `${fixed(linesRatio, 2)}x` : "not measured",
        "≥ 1x",
        wsd && !ccxRawLines.problem && !wsd.problem ? linesRatio >= 1 : null,
      ),
      check(
        "ccx lines mode to CcxClient (parses every message) vs websocketd",
        wsd ? `${fixed(wsd.seconds / ccxLines.seconds, 2)}x` : "not measured",
        "(reported)",
        null,
      ),
    ],
    notes,
    data: {
      raw,
      ccx,
      ccxRuns,
      ccxLines,
      ccxLinesRuns: lineRuns,
      ccxRawLines,
      ccxRawLinesRuns: rawLineRuns,
      websocketd: wsd ?? null,
      websocketdRuns: wsdRuns,
      ratio,
      linesRatio,
    },
  };
}

/**
 * Figure 2: 200 MB of 100-byte lines (`head -c 198000000 /dev/zero | tr '\0' x
 * | fold -w 99; echo`: 2,000,000 lines of 99 x's and a newline) through ccx
 * vs to /dev/null. Target: ccx ≥ 25% of the raw pipe's MB/s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchBulk } from "./throughput.ts";
 * const section = await benchBulk({ runs: 1, lines: 20_000 }); // smoke size
 * assert.equal(section.id, "bulk");
 * ```
 */
export async function benchBulk(opts: ThroughputOptions = {}): Promise<Section> {
  const runs = opts.runs ?? 3;
  const lines = opts.lines ?? 2_000_000;
  const script = `head -c ${lines * 99} /dev/zero | tr '\\0' x | fold -w 99; echo`;
  progress(`bulk: ${runs} runs to /dev/null`);
  const raw = medianRun(await rawTransfers(`{ ${script}; }`, runs));
  const server = await startServerProcess();
  const ccxRuns: Transfer[] = [];
  try {
    for (let i = 1; i <= runs; i++) {
      progress(`bulk: ccx run ${i}/${runs}`);
      ccxRuns.push(await ccxTransfer(server.url, script));
    }
  } finally {
    await server.stop();
  }
  const ccx = medianRun(ccxRuns);
  const share = raw.seconds / ccx.seconds;
  const problems = ccxRuns.filter((t) => t.problem).map((t) => t.problem);
  if (raw.bytes !== lines * 100) {
    problems.push(`the generator wrote ${raw.bytes} bytes, not ${lines * 100}`);
  }
  for (const t of ccxRuns) {
    if (t.bytes !== raw.bytes) problems.push(`ccx delivered ${t.bytes} bytes, not ${raw.bytes}`);
  }
  return {
    id: "bulk",
    title: `2. Throughput: ${fixed(lines / 1e4, 0)} MB of 100-byte lines to a WebSocket client`,
    columns: COLUMNS,
    rows: [
      row("raw: generator > /dev/null", raw, raw),
      row("ccx serve -> CcxClient", ccx, raw),
    ],
    checks: [
      check(
        "ccx MB/s as a share of the raw pipe's",
        `${fixed(share * 100, 1)}%`,
        "≥ 25%",
        ccx.problem ? null : share >= 0.25,
      ),
    ],
    notes: [
      `generator: ${script}`,
      `median of ${runs} runs each; MB = 10^6 bytes`,
      ...problems.map((p) => `PROBLEM: ${p}`),
    ],
    data: { raw, ccx, ccxRuns, share },
  };
}

/**
 * ccx against the floor: the naive executor of bench/naive.ts (`Deno.serve`,
 * native WebSocket, `setsid sh -c`, nothing else), side by side in one run, with
 * the same client (bench/job_client.ts) for both. And the front door's cost: the
 * same ccx process reached through its connection gate (as clients always do)
 * and straight through `Deno.serve` (bench/serve_direct.ts).
 *
 * Figures, each the ratio ccx / naive beside its goal: the median execute →
 * completed time of `true` jobs one after the other (≤ 1.25x); 100 `true` jobs
 * sent at once on one connection (≤ 1.5x); 64 sessions each running 8
 * `sleep 1` at once (≤ 1.25x); and `seq 1 2000000` in lines mode (one message a
 * line), the server's CPU a line (≤ 6.5 µs). The three servers take turns, round
 * after round, so a change of load falls on all of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchVersus } from "./versus.ts";
 * // A full benchmark run (minutes): `deno task bench --only versus`.
 * Deno.test({ name: "benchVersus, full size (a benchmark run)", ignore: true }, async () => {
 *   const section = await benchVersus({ rounds: 1 });
 *   assert.equal(section.id, "versus");
 * });
 * ```
 * @module
 */

import { check, fixed, median, progress, type Section } from "./report.ts";
import {
  cpuSeconds,
  type ServerProcess,
  startDirectServerProcess,
  startNaiveProcess,
} from "./proc.ts";
import { JobClient } from "./job_client.ts";
import { ccxRawLinesTransfer } from "./throughput.ts";

/**
 * Options of {@linkcode benchVersus}.
 *
 * @example
 * ```ts
 * import type { VersusOptions } from "./versus.ts";
 * const o: VersusOptions = { rounds: 3, sequential: 100 };
 * ```
 */
export interface VersusOptions {
  /** Rounds; in each, every server takes its turn at every figure (default 3). */
  rounds?: number;
  /** `true` jobs one after the other, a round (default 100: 300 in three rounds). */
  sequential?: number;
  /** Jobs sent at once on one connection (default 100). */
  burst?: number;
  /** Bursts each server sends a round (default 5): one burst is ~150 ms, too short to trust alone. */
  burstsPerRound?: number;
  /** Sessions of the concurrency figure (default 64). */
  sessions?: number;
  /** Jobs each of those sessions runs at once (default 8). */
  jobsPerSession?: number;
  /** Seconds each of those jobs sleeps (default 1). */
  sleepS?: number;
  /** Lines of the lines-mode figure (default 2,000,000); 0 leaves it out. */
  lines?: number;
  /** Rounds of the lines-mode figure (default 2: it is the longest). */
  lineRounds?: number;
  /** Untimed jobs first on each server (default 10). */
  warmup?: number;
}

/** The three ways in: the naive executor, ccx through its gate, ccx without it. */
const DOORS: readonly Door[] = ["naive", "ccx", "direct"];
/** One of the three ways in. */
export type Door = "naive" | "ccx" | "direct";

/**
 * The order in which the servers take their turn `n`: rotated each turn, so that none
 * always goes first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { turns } from "./versus.ts";
 * assert.deepEqual(turns(0), ["naive", "ccx", "direct"]);
 * assert.deepEqual(turns(1), ["ccx", "direct", "naive"]);
 * ```
 */
export function turns(n: number): Door[] {
  const k = n % DOORS.length;
  return [...DOORS.slice(k), ...DOORS.slice(0, k)];
}

/** Load average now (1 min), for the notes. */
function load1(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "?";
  }
}

async function sequential(url: string, n: number): Promise<number[]> {
  const c = await JobClient.connect(url);
  try {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await c.run({ argv: ["true"] });
      if (r.status !== "completed") throw new Error(`true ended ${r.status}`);
      out.push(r.ms);
    }
    return out;
  } finally {
    await c.close();
  }
}

async function burst(url: string, n: number): Promise<number> {
  const c = await JobClient.connect(url);
  try {
    const t0 = performance.now();
    const runs = await Promise.all(Array.from({ length: n }, () => c.run({ argv: ["true"] })));
    const ms = performance.now() - t0;
    const bad = runs.find((r) => r.status !== "completed");
    if (bad) throw new Error(`a burst job ended ${bad.status}`);
    return ms;
  } finally {
    await c.close();
  }
}

async function many(url: string, sessions: number, jobs: number, sleepS: number): Promise<number> {
  const clients = await Promise.all(Array.from({ length: sessions }, () => JobClient.connect(url)));
  try {
    const t0 = performance.now();
    const runs = await Promise.all(
      clients.flatMap((c) =>
        Array.from({ length: jobs }, () => c.run({ command: `sleep ${sleepS}` }))
      ),
    );
    const ms = performance.now() - t0;
    const bad = runs.find((r) => r.status !== "completed");
    if (bad) throw new Error(`a sleep job ended ${bad.status}`);
    return ms;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function linesCpu(server: ServerProcess, url: string, lines: number): Promise<number> {
  const before = cpuSeconds(server.pid) ?? NaN;
  const t = await ccxRawLinesTransfer(url, `seq 1 ${lines}`);
  const after = cpuSeconds(server.pid) ?? NaN;
  if (t.problem) throw new Error(`seq: ${t.problem}`);
  if (t.messages !== lines) throw new Error(`seq: ${t.messages} messages for ${lines} lines`);
  return (after - before) / lines * 1e6;
}

/** A ratio check: `value / reference` against `≤ goal`x, the two figures and the load beside. */
function ratio(
  name: string,
  value: number,
  reference: number,
  goal: number,
  unit: string,
  load: string,
) {
  const r = value / reference;
  const digits = unit === "ms" && reference < 100 ? 2 : 0;
  return check(
    name,
    `${fixed(r, 2)}x (naive ${fixed(reference, digits)} ${unit}, ccx ${
      fixed(value, digits)
    } ${unit}; load ${load})`,
    `≤ ${goal}x`,
    Number.isFinite(r) ? r <= goal : null,
  );
}

/**
 * Runs the comparison. Nothing asserts: a missed goal is reported with ✗.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchVersus } from "./versus.ts";
 * const section = await benchVersus({
 *   rounds: 1,
 *   sequential: 5,
 *   burst: 5,
 *   sessions: 2,
 *   jobsPerSession: 2,
 *   sleepS: 0.1,
 *   lines: 2_000,
 *   lineRounds: 1,
 *   warmup: 1,
 * });
 * assert.equal(section.id, "versus"); // at this size its figures mean nothing
 * ```
 */
export async function benchVersus(opts: VersusOptions = {}): Promise<Section> {
  const rounds = opts.rounds ?? 3;
  const nSeq = opts.sequential ?? 100;
  const nBurst = opts.burst ?? 100;
  const burstsPerRound = opts.burstsPerRound ?? 5;
  const sessions = opts.sessions ?? 64;
  const perSession = opts.jobsPerSession ?? 8;
  const sleepS = opts.sleepS ?? 1;
  const lines = opts.lines ?? 2_000_000;
  const lineRounds = opts.lineRounds ?? 2;
  const warmup = opts.warmup ?? 10;
  const loads: string[] = [load1()];
  const naive = await startNaiveProcess();
  const ccx = await startDirectServerProcess([
    "--max-jobs-per-session",
    String(Math.max(nBurst, perSession, 32)),
    "--max-sessions",
    String(Math.max(sessions, 64)),
  ]);
  const url: Record<Door, string> = { naive: naive.url, ccx: ccx.url, direct: ccx.directUrl! };
  const proc: Record<Door, ServerProcess> = { naive, ccx, direct: ccx };
  const seq: Record<Door, number[]> = { naive: [], ccx: [], direct: [] };
  const bursts: Record<Door, number[]> = { naive: [], ccx: [], direct: [] };
  const wide: Record<Door, number[]> = { naive: [], ccx: [], direct: [] };
  const cpu: Record<Door, number[]> = { naive: [], ccx: [], direct: [] };
  try {
    for (const d of DOORS) await sequential(url[d], warmup);
    for (let r = 1; r <= rounds; r++) {
      progress(`versus: round ${r}/${rounds} (load ${load1()})`);
      // The servers take turns in an order that rotates, so that none always goes first
      // (or right after the naive executor's jobs).
      for (const d of turns(r)) seq[d].push(...await sequential(url[d], nSeq));
      for (let k = 0; k < burstsPerRound; k++) {
        for (const d of turns(r + k)) bursts[d].push(await burst(url[d], nBurst));
      }
      for (const d of turns(r)) wide[d].push(await many(url[d], sessions, perSession, sleepS));
      loads.push(load1());
    }
    for (let r = 1; lines > 0 && r <= lineRounds; r++) {
      progress(`versus: seq 1 ${lines}, lines mode, round ${r}/${lineRounds} (load ${load1()})`);
      for (const d of turns(r)) cpu[d].push(await linesCpu(proc[d], url[d], lines));
      loads.push(load1());
    }
  } finally {
    await Promise.all([naive.stop(), ccx.stop()]);
  }
  const m = (x: Record<Door, number[]>) =>
    Object.fromEntries(DOORS.map((d) => [d, median(x[d])])) as Record<Door, number>;
  const s = m(seq), b = m(bursts), w = m(wide), c = m(cpu);
  const gate = (name: string, x: Record<Door, number>) => {
    const cost = x.ccx / x.direct - 1;
    return check(
      `gate's cost: ${name}`,
      `${cost >= 0 ? "+" : ""}${fixed(cost * 100, 1)} %`,
      "≤ 15 %",
      Number.isFinite(cost) ? cost <= 0.15 : null,
    );
  };
  const row = (label: string, x: Record<Door, number>, digits: number) => [
    label,
    ...DOORS.map((d) => fixed(x[d], digits)),
    `${fixed(x.ccx / x.naive, 2)}x`,
    `${fixed(x.direct / x.naive, 2)}x`,
  ];
  const load = [...loads].sort()[Math.floor((loads.length - 1) / 2)];
  const checks = [
    ratio("per job (`true` in a row, median): ccx / naive", s.ccx, s.naive, 1.25, "ms", load),
    ratio(
      `${nBurst} \`true\` at once on one connection: ccx / naive`,
      b.ccx,
      b.naive,
      1.5,
      "ms",
      load,
    ),
    ratio(
      `${sessions} sessions × ${perSession} \`sleep ${sleepS}\`: ccx / naive`,
      w.ccx,
      w.naive,
      1.25,
      "ms",
      load,
    ),
  ];
  if (lines > 0) {
    checks.push(check(
      "lines mode: ccx server CPU a line",
      `${fixed(c.ccx, 2)} µs (naive ${fixed(c.naive, 2)} µs: ${fixed(c.ccx / c.naive, 2)}x; ` +
        `load ${load})`,
      "≤ 6.5 µs",
      Number.isFinite(c.ccx) ? c.ccx <= 6.5 : null,
    ));
  }
  checks.push(gate("per job", s), gate(`${nBurst} at once`, b));
  if (lines > 0) checks.push(gate("lines-mode CPU", c));
  const rows = [
    row("execute -> completed for `true`, median (ms)", s, 2),
    row(`${nBurst} \`true\` at once on one connection (ms)`, b, 0),
    row(`${sessions} sessions × ${perSession} \`sleep ${sleepS}\` (ms)`, w, 0),
  ];
  if (lines > 0) rows.push(row(`seq 1 ${lines}, lines mode: server CPU a line (µs)`, c, 2));
  return {
    id: "versus",
    title: "0. ccx against the naive executor (bench/naive.ts), same client, side by side",
    columns: ["figure", "naive", "ccx", "ccx, no gate", "ccx / naive", "no gate / naive"],
    rows,
    checks,
    notes: [
      `load average (1 min) at the start, after each round: ${loads.join(", ")}`,
      `${rounds} rounds; in each every server runs ${nSeq} sequential jobs, ${burstsPerRound} ` +
      `bursts and one ${sessions}×${perSession} wave, taking turns in an order that rotates; ` +
      `figures are medians (sequential: over all ${rounds * nSeq} jobs; bursts: over all ` +
      `${rounds * burstsPerRound}); lines mode: ${lineRounds} rounds`,
      `client: bench/job_client.ts (native WebSocket, every message parsed) for both; lines ` +
      `mode: a WebSocket that counts output messages (as for websocketd)`,
      `ccx: ${ccx.url} (through the gate) and ${ccx.directUrl} (the same process, ` +
      `Deno.serve directly: bench/serve_direct.ts), --quiet`,
    ],
    data: { sequentialMs: seq, burstMs: bursts, wideMs: wide, cpuUsPerLine: cpu, loads },
  };
}

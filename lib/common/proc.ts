/**
 * What `/proc` says about processes on this host (Linux): one process's state, process group and
 * start time, and how many live processes given process groups still hold. The supervisor asks
 * whether a group it is ending is gone, `ccx stress` counts its jobs' processes for the live line,
 * and the crash journal tells a job's group from a pid reused by another program.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countGroupProcesses, procStat } from "./proc.ts";
 * const self = procStat(Deno.pid)!; // e.g. { state: "R", pgid: 4242, start: 1234567 }
 * assert.match(self.state, /^[RS]$/);
 * assert.ok(countGroupProcesses(new Set([self.pgid])) >= 1); // this process is in its group
 * ```
 * @module
 */

/** One process as `/proc/PID/stat` describes it. */
export interface ProcStat {
  /** Field 3: `R` running, `S` sleeping, `D` disk wait, `T` stopped, `Z` zombie, … */
  state: string;
  /** Field 5: the process group id. */
  pgid: number;
  /** Field 22: the start time, in clock ticks since boot. */
  start: number;
}

/**
 * `/proc/PID/stat` of one process: state, pgid and start time (field 22); `undefined` when there
 * is no such process (it ended, or there is no `/proc`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { procStat } from "./proc.ts";
 * assert.match(procStat(Deno.pid)!.state, /^[RS]$/); // running or sleeping
 * assert.equal(procStat(2 ** 30), undefined); // no such process
 * ```
 */
export function procStat(pid: number | string): ProcStat | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // Fields after "(comm)": state is field 3, pgid field 5, starttime field 22.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ", 20);
  return { state: f[0], pgid: Number(f[2]), start: Number(f[19]) };
}

/**
 * The start time of a process in clock ticks since boot (`/proc/PID/stat` field 22); `undefined`
 * when there is no such process (or no `/proc`). With the pid, it names a process for good: a
 * reused pid has a later start time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processStartTime } from "./proc.ts";
 * const start = processStartTime(Deno.pid)!; // clock ticks since boot, e.g. 1234567
 * assert.equal(processStartTime(Deno.pid), start); // stable: tells a reused pid apart
 * assert.equal(processStartTime(2 ** 30), undefined);
 * ```
 */
export function processStartTime(pid: number): number | undefined {
  return procStat(pid)?.start;
}

/**
 * True when process `pid` is alive: it exists and is neither a zombie (`Z`: it ended and
 * its parent has not reaped it yet, as a `kill -9`ed server whose parent never waits) nor
 * dead (`X`). With `start` (its start time, `/proc/PID/stat` field 22), it must also be that
 * very process, not a later one given the same pid. The one rule by which the crash journal
 * and the workspace sweep decide whether a server that left something behind is gone.
 *
 * @example
 * ```ts
 * import { processAlive, processStartTime } from "./proc.ts";
 * processAlive(Deno.pid); // true
 * processAlive(Deno.pid, processStartTime(Deno.pid)); // true
 * processAlive(Deno.pid, 1); // false: another process once had this pid
 * ```
 */
export function processAlive(pid: number, start?: number): boolean {
  const st = procStat(pid);
  if (st === undefined || st.state === "Z" || st.state === "X") return false;
  return start === undefined || st.start === start;
}

/** Options of {@linkcode countGroupProcesses}. */
export interface CountGroupOptions {
  /** Count only processes started at or after this start time (clock ticks since boot). */
  since?: number;
  /** Stop walking once this many are counted (1: "is there any?"). */
  stopAt?: number;
}

/**
 * How many live (not zombie) processes on this host are in one of the process groups `pgids`
 * (started no earlier than `since`, when given), from one walk of `/proc`. A zombie stays in its
 * group until its parent reaps it, so it is not counted. Throws when `/proc` cannot be read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countGroupProcesses, procStat } from "./proc.ts";
 * const pgid = procStat(Deno.pid)!.pgid;
 * assert.equal(countGroupProcesses(new Set([pgid]), { stopAt: 1 }), 1);
 * assert.equal(countGroupProcesses(new Set([pgid]), { since: Number.MAX_SAFE_INTEGER }), 0);
 * ```
 */
export function countGroupProcesses(
  pgids: ReadonlySet<number>,
  opts: CountGroupOptions = {},
): number {
  const stopAt = opts.stopAt ?? Infinity;
  let n = 0;
  for (const e of Deno.readDirSync("/proc")) {
    const c = e.name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = procStat(e.name); // undefined: it ended while we looked
    if (!st || st.state === "Z" || !pgids.has(st.pgid)) continue;
    if (opts.since !== undefined && !(st.start >= opts.since)) continue;
    if (++n >= stopAt) break;
  }
  return n;
}

/**
 * How many live (not zombie) processes the given process groups hold on this host, from
 * `/proc`; `undefined` without `/proc`. The live line of `ccx stress` shows it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processesInGroups } from "./proc.ts";
 * assert.equal(processesInGroups(new Set()), 0);
 * const child = new Deno.Command("sleep", { args: ["30"], detached: true }).spawn(); // leads its group
 * assert.equal(processesInGroups(new Set([child.pid])), 1);
 * child.kill();
 * await child.status;
 * ```
 */
export function processesInGroups(pgids: ReadonlySet<number>): number | undefined {
  if (pgids.size === 0) return 0;
  try {
    return countGroupProcesses(pgids);
  } catch {
    return undefined;
  }
}

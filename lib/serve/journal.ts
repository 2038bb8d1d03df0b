/**
 * The crash journal: each server notes the process groups of its running jobs
 * (pgid, the leader's start time, session, job id) in a small append-only file
 * under `<state dir>/jobs/`. A server killed with SIGKILL cannot end its jobs;
 * the next server to start reads the journals whose owner is gone, checks that
 * each group is still the same processes (start time from `/proc/PID/stat`, not
 * just the pid), and ends it (SIGCONT, SIGTERM, grace, SIGKILL).
 *
 * A journal that cannot be written (a full disk, a read-only or missing
 * directory) is said at once through the `log` option, and rewritten whole every
 * `retryMs` and at every change until it can be: a crash meanwhile would leave the
 * jobs started since behind. The file is named `<pid>-<start>-<random>.journal`
 * after its owner, so a journal whose first line was cut short still names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JobJournal, reapOrphans } from "./journal.ts";
 * const dir = Deno.makeTempDirSync(); // a server uses <state dir>/jobs
 * assert.deepEqual(await reapOrphans(dir, { graceMs: 2000 }), []); // nothing to reap in a fresh directory
 * const journal = JobJournal.open(dir);
 * const job = new Deno.Command("sleep", { args: ["30"], detached: true }).spawn(); // pgid = pid
 * journal.add(job.pid, "session-1", "job-1");
 * assert.equal(Deno.readDirSync(dir).toArray().length, 1);
 * job.kill();
 * await job.status;
 * journal.remove(job.pid);
 * journal.close(); // a clean stop leaves no journal behind
 * assert.equal(Deno.readDirSync(dir).toArray().length, 0);
 * Deno.removeSync(dir);
 * ```
 * @module
 */

import { join } from "node:path";
import { countGroupProcesses, processAlive, processStartTime, procStat } from "../common/proc.ts";
import { endProcessGroup } from "./supervisor.ts";
import type { Logger } from "../common/log.ts";
import {
  asRecord,
  collect,
  type JsonProblem,
  optNumber,
  optRecord,
  readNumber,
  readString,
} from "../common/json.ts";

/** One job group a journal names. */
export interface JournalEntry {
  /** Process group id (= the leader's pid). */
  pgid: number;
  /** The leader's start time in clock ticks since boot (`/proc/PID/stat` field 22). */
  start: number;
  /**
   * Set when `start` was noted from the server's clock at the spawn rather than read
   * from `/proc`: the kernel's start time is within this many ticks of it.
   */
  near?: number;
  /** The session that ran it. */
  session: string;
  /** The job's id. */
  job_id: string;
}

/** What {@linkcode reapOrphans} did with one group. */
export interface ReapedGroup extends JournalEntry {
  /** The dead server that left it. */
  owner_pid: number;
  /** Processes that were still alive in the group before it was ended. */
  processes: number;
}

/**
 * How many processes of a journaled group are still the job's: the leader when
 * it is alive with the recorded start time (within `near` ticks of it, when given);
 * when the leader is gone, the members still in its group that started no earlier
 * than it. A leader pid now held by another process (another start time) means the
 * group is not ours: 0.
 */
function ourProcesses(e: JournalEntry): number {
  const near = Number.isInteger(e.near) && e.near! > 0 ? e.near! : 0;
  const leader = procStat(e.pgid);
  if (leader && Math.abs(leader.start - e.start) > near) return 0; // the pid was reused
  if (leader && leader.pgid !== e.pgid) return 0;
  return countGroupProcesses(new Set([e.pgid]), { since: e.start - near });
}

const encoder = new TextEncoder();

/** Options of {@linkcode JobJournal.open}. */
export interface JournalOptions {
  /**
   * Where the journal's own trouble is said: a warning (event `journal_unwritable`)
   * when it cannot be written, again every 5 minutes while that lasts, and a line
   * (event `journal_written`) once it has been written again. Default: nowhere.
   */
  log?: Logger;
  /** Milliseconds between attempts to rewrite a journal that could not be written (default 2000). */
  retryMs?: number;
}

/** How often a journal that still cannot be written says so again. */
const REWARN_MS = 5 * 60_000;

/**
 * Milliseconds a removal waits for the next write before it is written on its own.
 * Until then a crash leaves the ended job named: its next server finds the group gone.
 *
 * @example
 * ```ts
 * import { REMOVAL_DELAY_MS } from "./journal.ts";
 * console.log(REMOVAL_DELAY_MS); // 50
 * ```
 */
export const REMOVAL_DELAY_MS = 50;

/** Clock ticks a second in `/proc/PID/stat` (USER_HZ: 100 on every Linux architecture in use). */
const TICKS_PER_S = 100;

/**
 * How far (in clock ticks: 1 s) the kernel's start time of a job's leader may be from the
 * one its server noted from its own clock at the spawn (see {@linkcode JournalEntry.near}).
 */
export const NEAR_TICKS = 100;

/**
 * The kernel's boot-time clock in ticks, as `/proc/PID/stat` gives start times: the
 * monotonic clock plus an offset read from `/proc/uptime`, again every 10 s.
 */
class BootClock {
  #offset = 0;
  #calibrated = -Infinity;

  /** Ticks since boot now, or undefined without `/proc`. */
  now(): number | undefined {
    const t = performance.now();
    if (t - this.#calibrated > 10_000) {
      let up: number;
      try {
        up = parseFloat(Deno.readTextFileSync("/proc/uptime"));
      } catch {
        return undefined;
      }
      if (!Number.isFinite(up)) return undefined;
      this.#offset = up * TICKS_PER_S - t * TICKS_PER_S / 1000;
      this.#calibrated = t;
    }
    return Math.round(t * TICKS_PER_S / 1000 + this.#offset);
  }
}

/**
 * A server's journal of running job groups. Appends one line per change, and
 * writes the lines of one task of the event loop (one WebSocket message, which
 * may be a batch of `execute` requests) in one write, at its end, before anything
 * else runs: a job is on disk before its server reads another message or timer.
 * Removals, which no crash can make unsafe, go with the next batch, or on their
 * own {@linkcode REMOVAL_DELAY_MS} later: a job run after another writes the
 * end of the one before with its own start. The file is rewritten when removals pile up, and deleted by
 * {@linkcode close}. When a write fails the journal says so (see
 * {@linkcode JournalOptions.log}) and rewrites the whole file every `retryMs` and
 * at every change until it succeeds.
 *
 * The leader's start time is noted from the server's clock (see
 * {@linkcode JournalEntry.near}): reading `/proc/PID/stat` right after the spawn,
 * while the new process is still being set up, took 0.8 ms a job.
 */
export class JobJournal {
  /** The journal file. */
  readonly path: string;
  readonly #dir: string;
  #file: Deno.FsFile | undefined;
  #live = new Map<number, JournalEntry>();
  /** Lines not yet written, in order. */
  #lines: string[] = [];
  /** A write is queued for the end of this task (an `add`). */
  #soon = false;
  /** A write is queued for the next timer turn (removals only). */
  #later: ReturnType<typeof setTimeout> | undefined;
  readonly #clock = new BootClock();
  #removed = 0;
  readonly #header: string;
  readonly #log: Logger;
  readonly #retryMs: number;
  /** The last error, while a write or a compaction fails (retried every `retryMs`). */
  #failing: Error | undefined;
  /** The open file ends in a whole line and is the one at {@linkcode path}: appends are safe. */
  #intact = true;
  #warnedAt = 0;
  #retry: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  private constructor(dir: string, path: string, header: string, opts: JournalOptions) {
    this.#dir = dir;
    this.path = path;
    this.#header = header;
    this.#log = opts.log ?? (() => {});
    this.#retryMs = opts.retryMs ?? 2000;
    this.#rewrite();
  }

  /**
   * Creates this server's journal in `dir` (created if missing), owned by this
   * process: the file is named after its pid and start time, and its first line
   * says them again. Never throws: a journal that cannot be written is said
   * through `opts.log` and retried.
   */
  static open(dir: string, opts: JournalOptions = {}): JobJournal {
    const owner = { pid: Deno.pid, start: processStartTime(Deno.pid) ?? 0 };
    const name = `${owner.pid}-${owner.start}-${crypto.randomUUID().slice(0, 8)}.journal`;
    const header = JSON.stringify({ owner, created: Date.now() });
    return new JobJournal(dir, join(dir, name), header, opts);
  }

  /** True while the file on disk lags behind the running groups (a write failed). */
  get failing(): boolean {
    return this.#failing !== undefined;
  }

  /**
   * Notes a group just started (call it right after the spawn): written at the end
   * of the current task, with its start time from the server's clock.
   */
  add(pgid: number, session: string, jobId: string): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    let e: JournalEntry;
    if (now !== undefined) e = { pgid, start: now, near: NEAR_TICKS, session, job_id: jobId };
    else {
      const start = processStartTime(pgid);
      if (start === undefined) return; // already gone: nothing could be left to reap
      e = { pgid, start, session, job_id: jobId };
    }
    this.#live.set(pgid, e);
    this.#lines.push(JSON.stringify({ add: e }));
    if (this.#soon) return;
    this.#soon = true;
    queueMicrotask(() => {
      this.#soon = false;
      this.flush();
    });
  }

  /** Notes that a group has ended (written with the next batch, at the latest {@linkcode REMOVAL_DELAY_MS} on). */
  remove(pgid: number): void {
    if (!this.#live.delete(pgid)) return;
    this.#removed++;
    this.#lines.push(JSON.stringify({ del: pgid }));
    if (this.#soon || this.#later !== undefined || this.#closed) return;
    this.#later = setTimeout(() => {
      this.#later = undefined;
      this.flush();
    }, REMOVAL_DELAY_MS);
    Deno.unrefTimer(this.#later); // never what keeps the process alive
  }

  /** Writes what is queued now, in one write (or rewrites the file when removals pile up). */
  flush(): void {
    if (this.#later !== undefined) clearTimeout(this.#later);
    this.#later = undefined;
    if (this.#lines.length === 0 || this.#closed) return;
    const text = this.#lines.join("\n");
    this.#lines = [];
    // A compaction that fails leaves the old file as it was (it is written beside it and
    // renamed over it): the batch is then appended to it, so the file still names every
    // running group.
    if (this.#removed > 256 && this.#removed > 2 * this.#live.size && this.#rewrite()) return;
    this.#append(text);
  }

  #append(text: string): void {
    if (this.#closed) return;
    // After a failed append the file may end in a cut line, or not exist: only a rewrite mends it.
    if (!this.#intact || this.#file === undefined) return void this.#rewrite();
    const bytes = encoder.encode(text + "\n");
    try {
      for (let at = 0; at < bytes.length;) {
        const n = this.#file.writeSync(bytes.subarray(at));
        if (n <= 0) throw new Error("write returned 0 bytes");
        at += n;
      }
    } catch (e) {
      this.#intact = false;
      this.#failed(e as Error);
    }
  }

  /** Writes the whole journal (header and running groups) anew, through a temporary file. */
  #rewrite(): boolean {
    if (this.#closed) return true;
    const tmp = `${this.path}.tmp`;
    const lines = [
      this.#header,
      ...[...this.#live.values()].map((e) => JSON.stringify({ add: e })),
    ];
    let file: Deno.FsFile;
    let renamed = false;
    try {
      Deno.mkdirSync(this.#dir, { recursive: true });
      Deno.writeTextFileSync(tmp, lines.join("\n") + "\n");
      Deno.renameSync(tmp, this.path);
      renamed = true;
      file = Deno.openSync(this.path, { append: true });
    } catch (e) {
      try {
        Deno.removeSync(tmp);
      } catch { /* never made */ }
      // Once renamed, the open file is the old, unlinked one: appending to it is lost.
      if (renamed) this.#intact = false;
      this.#failed(e as Error);
      return false;
    }
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = file;
    this.#intact = true;
    this.#removed = 0;
    if (this.#failing === undefined) return true;
    this.#failing = undefined;
    if (this.#retry !== undefined) clearInterval(this.#retry);
    this.#retry = undefined;
    this.#log(
      `crash journal ${this.path} written again (${this.#live.size} running job groups noted)`,
      { event: "journal_written", path: this.path, groups: this.#live.size },
    );
    return true;
  }

  #failed(e: Error): void {
    const first = this.#failing === undefined;
    this.#failing = e;
    if (first || Date.now() - this.#warnedAt >= REWARN_MS) {
      this.#warnedAt = Date.now();
      this.#log(
        `cannot write the crash journal ${this.path}: ${e.message}; retrying every ` +
          `${this.#retryMs / 1000} s. Until it is written, jobs of this server that a crash ` +
          `(kill -9) leaves behind are not reaped by the next start`,
        { level: "warn", event: "journal_unwritable", path: this.path, error: e.message },
      );
    }
    if (this.#retry === undefined) {
      const retry = setInterval(() => this.#rewrite(), this.#retryMs);
      Deno.unrefTimer(retry); // never what keeps the process alive
      this.#retry = retry;
    }
  }

  /** Closes and deletes the journal: a server that stopped cleanly leaves nothing to reap. */
  close(): void {
    this.#closed = true;
    if (this.#later !== undefined) clearTimeout(this.#later);
    if (this.#retry !== undefined) clearInterval(this.#retry);
    this.#retry = undefined;
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = undefined;
    for (const p of [this.path, `${this.path}.tmp`]) {
      try {
        Deno.removeSync(p);
      } catch { /* gone */ }
    }
  }
}

/** The owner a journal's file name gives: `<pid>-<start>-<random>.journal` (older: `<pid>-<random>`). */
function ownerFromName(name: string): { pid: number; start?: number } | undefined {
  const m = /^(\d+)-(?:(\d+)-)?[0-9A-Za-z]+\.journal(?:\.tmp)?$/.exec(name);
  if (!m) return undefined;
  return { pid: Number(m[1]), start: m[2] === undefined ? undefined : Number(m[2]) };
}

/**
 * What one journal line says: its owner (the first line), a group added, or a group's pgid
 * removed, and the JSON path of each part that is not what the writer writes (that part is
 * left out; the others still count). An `add` needs the whole {@linkcode JournalEntry}: without
 * its start time a reaper could not tell the group from a later one with the same pgid. Keys of
 * an `add` that are not checked here are kept as written.
 *
 * @param v one parsed line
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readJournalLine } from "./journal.ts";
 * assert.deepEqual(readJournalLine({ del: 4242 }), { del: 4242, problems: [] });
 * assert.deepEqual(readJournalLine({ add: { pgid: 4242, session: "s", job_id: "j" } }), {
 *   problems: [{ path: "add.start", message: "required" }],
 * });
 * ```
 */
export function readJournalLine(v: unknown): {
  owner?: { pid: number; start: number };
  add?: JournalEntry;
  del?: number;
  problems: JsonProblem[];
} {
  const problems: JsonProblem[] = [];
  const rec = collect(problems, () => asRecord(v, ""));
  if (rec === undefined) return { problems };
  const owner = collect(problems, () => {
    const o = optRecord(rec, "owner", "");
    if (o === undefined) return undefined;
    const int = { integer: true };
    return { pid: readNumber(o, "pid", "owner", int), start: readNumber(o, "start", "owner", int) };
  });
  const add = collect(problems, () => {
    const a = optRecord(rec, "add", "");
    if (a === undefined) return undefined;
    // Keys not checked here are kept as written, as before: a newer writer may add some.
    const near = optNumber(a, "near", "add", { integer: true, min: 0 });
    const e: JournalEntry = {
      ...a,
      pgid: readNumber(a, "pgid", "add", { integer: true, min: 2 }),
      start: readNumber(a, "start", "add", { integer: true }),
      session: readString(a, "session", "add"),
      job_id: readString(a, "job_id", "add"),
      ...(near !== undefined ? { near } : {}),
    };
    return e;
  });
  const del = collect(problems, () => optNumber(rec, "del", ""));
  return {
    ...(owner ? { owner } : {}),
    ...(add ? { add } : {}),
    ...(del !== undefined ? { del } : {}),
    problems,
  };
}

/** Parses a journal file: its owner and the groups still running when it was last written. */
function readJournal(
  text: string,
): { owner?: { pid: number; start: number }; live: JournalEntry[] } {
  const live = new Map<number, JournalEntry>();
  let owner: { pid: number; start: number } | undefined;
  for (const line of text.split("\n")) {
    if (!line) continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      continue; // a line cut short by the crash or a full disk
    }
    // A part that is not what the writer writes is skipped, like a cut line.
    const rec = readJournalLine(json);
    if (rec.owner) owner = rec.owner;
    if (rec.add) live.set(rec.add.pgid, rec.add);
    if (rec.del !== undefined) live.delete(rec.del);
  }
  return { owner, live: [...live.values()] };
}

/**
 * True when a journal's owner still runs. Without a start time (an older file
 * name and an unreadable first line) any live process with its pid counts.
 */
function ownerAlive(owner: { pid: number; start?: number }): boolean {
  return processAlive(owner.pid, owner.start);
}

/**
 * Ends the job groups left by servers that died without cleaning up: every
 * journal in `dir` whose owner process is gone, is a zombie, or is another
 * process now (same pid, other start time) is read, each group still made of the
 * same processes is ended (SIGCONT, SIGTERM, `graceMs`, SIGKILL), and the journal
 * is deleted. The owner is the journal's first line, or its file name when that
 * line is unreadable. Journals of live servers are left alone. Resolves with what
 * was reaped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processStartTime } from "../common/proc.ts";
 * import { reapOrphans } from "./journal.ts";
 * const dir = Deno.makeTempDirSync();
 * // A server killed with SIGKILL left a job group running and its journal naming it.
 * const job = new Deno.Command("sleep", { args: ["30"], detached: true }).spawn();
 * const dead = { pid: job.pid + 1, start: 1 }; // no process has this pid and start time
 * const entry = { pgid: job.pid, start: processStartTime(job.pid), session: "s1", job_id: "job-1" };
 * Deno.writeTextFileSync(
 *   `${dir}/${dead.pid}-${dead.start}-a1b2c3d4.journal`,
 *   `${JSON.stringify({ owner: dead })}\n${JSON.stringify({ add: entry })}\n`,
 * );
 * const reaped = await reapOrphans(dir, { graceMs: 2000 }); // what the next server does at start
 * assert.deepEqual(reaped.map((g) => [g.job_id, g.processes]), [["job-1", 1]]);
 * assert.equal((await job.status).signal, "SIGTERM");
 * assert.equal(Deno.readDirSync(dir).toArray().length, 0); // the journal is gone too
 * Deno.removeSync(dir);
 * ```
 */
export async function reapOrphans(
  dir: string,
  opts: {
    graceMs: number;
    onReap?: (g: ReapedGroup) => void;
    /** Says which journals could not be judged (no owner in the name or the first line). */
    log?: Logger;
  },
): Promise<ReapedGroup[]> {
  let names: string[];
  try {
    // `.journal.tmp`: a rewrite cut short by the crash; it may name groups the journal does not.
    names = [...Deno.readDirSync(dir)]
      .filter((e) => e.isFile && /\.journal(\.tmp)?$/.test(e.name))
      .map((e) => e.name);
  } catch {
    return []; // no journal directory yet
  }
  const reaped: ReapedGroup[] = [];
  const reaping = new Set<number>();
  const ending: Promise<void>[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      continue; // removed by its owner or another reaper meanwhile
    }
    const read = readJournal(text);
    const owner = read.owner ?? ownerFromName(name);
    if (!owner) {
      opts.log?.(
        `crash journal ${path} names no owner (first line unreadable, name not ` +
          `<pid>-<start>-<random>.journal): left alone`,
        {
          level: "warn",
          event: "journal_unreadable",
          path,
        },
      );
      continue;
    }
    // Its server (maybe this very process) is alive: not ours to touch.
    if (ownerAlive(owner)) continue;
    for (const e of read.live) {
      if (reaping.has(e.pgid)) continue; // named by the journal and its cut-short rewrite
      const processes = ourProcesses(e);
      if (processes === 0) continue;
      const g = { ...e, owner_pid: owner.pid, processes };
      reaped.push(g);
      reaping.add(e.pgid);
      opts.onReap?.(g);
      ending.push(endProcessGroup(e.pgid, opts.graceMs));
    }
    try {
      Deno.removeSync(path);
    } catch { /* another reaper got it */ }
  }
  await Promise.all(ending);
  return reaped;
}

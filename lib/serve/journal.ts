/**
 * The crash journal: each server notes the process groups of its running jobs
 * (pgid, the leader's start time, session, job id) in a small append-only file
 * under `<state dir>/jobs/`. A server killed with SIGKILL cannot end its jobs;
 * the next server to start reads the journals whose owner is gone, checks that
 * each group is still the same processes (start time from `/proc/PID/stat`, not
 * just the pid), and ends it (SIGCONT, SIGTERM, grace, SIGKILL).
 *
 * @example
 * ```ts
 * import { JobJournal, reapOrphans } from "./journal.ts";
 * const dir = Deno.makeTempDirSync();
 * await reapOrphans(dir, { graceMs: 2000 }); // nothing to reap in a fresh directory
 * const journal = JobJournal.open(dir);
 * journal.add(4242, "session-1", "job-1");
 * journal.remove(4242);
 * journal.close(); // a clean stop leaves no journal behind
 * ```
 * @module
 */

import { join } from "node:path";
import { countGroupProcesses, processStartTime, procStat } from "../common/proc.ts";
import { endProcessGroup } from "./supervisor.ts";

/** One job group a journal names. */
export interface JournalEntry {
  /** Process group id (= the leader's pid). */
  pgid: number;
  /** The leader's start time in clock ticks since boot (`/proc/PID/stat` field 22). */
  start: number;
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
 * it is alive with the recorded start time; when the leader is gone, the members
 * still in its group that started no earlier than it. A leader pid now held by
 * another process (different start time) means the group is not ours: 0.
 */
function ourProcesses(e: JournalEntry): number {
  const leader = procStat(e.pgid);
  if (leader && leader.start !== e.start) return 0; // the pid was reused
  if (leader && leader.pgid !== e.pgid) return 0;
  return countGroupProcesses(new Set([e.pgid]), { since: e.start });
}

const encoder = new TextEncoder();

/**
 * A server's journal of running job groups. Appends one line per change; the
 * file is rewritten when removals pile up, and deleted by {@linkcode close}.
 */
export class JobJournal {
  /** The journal file. */
  readonly path: string;
  #file: Deno.FsFile | undefined;
  #live = new Map<number, JournalEntry>();
  #removed = 0;
  readonly #header: string;

  private constructor(path: string, header: string) {
    this.path = path;
    this.#header = header;
    this.#file = Deno.openSync(path, { write: true, create: true, truncate: true });
    this.#write(header);
  }

  /**
   * Creates this server's journal in `dir` (created if missing), owned by this
   * process (its pid and start time).
   */
  static open(dir: string): JobJournal {
    Deno.mkdirSync(dir, { recursive: true });
    const owner = { pid: Deno.pid, start: processStartTime(Deno.pid) ?? 0 };
    const name = `${owner.pid}-${crypto.randomUUID().slice(0, 8)}.journal`;
    return new JobJournal(join(dir, name), JSON.stringify({ owner, created: Date.now() }));
  }

  #write(line: string): void {
    try {
      this.#file?.writeSync(encoder.encode(line + "\n"));
    } catch {
      // A full disk must not stop jobs; the journal is a safety net.
    }
  }

  /** Notes a running group; reads the leader's start time now. */
  add(pgid: number, session: string, jobId: string): void {
    const start = processStartTime(pgid);
    if (start === undefined) return; // already gone: nothing could be left to reap
    const e: JournalEntry = { pgid, start, session, job_id: jobId };
    this.#live.set(pgid, e);
    this.#write(JSON.stringify({ add: e }));
  }

  /** Notes that a group has ended. */
  remove(pgid: number): void {
    if (!this.#live.delete(pgid)) return;
    this.#removed++;
    if (this.#removed > 256 && this.#removed > 2 * this.#live.size) this.#compact();
    else this.#write(JSON.stringify({ del: pgid }));
  }

  #compact(): void {
    const tmp = `${this.path}.tmp`;
    const lines = [
      this.#header,
      ...[...this.#live.values()].map((e) => JSON.stringify({ add: e })),
    ];
    try {
      Deno.writeTextFileSync(tmp, lines.join("\n") + "\n");
      Deno.renameSync(tmp, this.path);
      this.#file?.close();
      this.#file = Deno.openSync(this.path, { append: true });
      this.#removed = 0;
    } catch {
      this.#write(JSON.stringify({ compact_failed: true }));
    }
  }

  /** Closes and deletes the journal: a server that stopped cleanly leaves nothing to reap. */
  close(): void {
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = undefined;
    try {
      Deno.removeSync(this.path);
    } catch { /* gone */ }
  }
}

/** Parses a journal file: its owner and the groups still running when it was last written. */
function readJournal(
  text: string,
): { owner?: { pid: number; start: number }; live: JournalEntry[] } {
  const live = new Map<number, JournalEntry>();
  let owner: { pid: number; start: number } | undefined;
  for (const line of text.split("\n")) {
    if (!line) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      continue; // a line cut short by the crash
    }
    if (rec.owner) owner = rec.owner as { pid: number; start: number };
    const add = rec.add as JournalEntry | undefined;
    if (add && Number.isInteger(add.pgid) && add.pgid > 1) live.set(add.pgid, add);
    if (typeof rec.del === "number") live.delete(rec.del);
  }
  return { owner, live: [...live.values()] };
}

/**
 * Ends the job groups left by servers that died without cleaning up: every
 * journal in `dir` whose owner process is gone (or is another process now) is
 * read, each group still made of the same processes is ended (SIGCONT, SIGTERM,
 * `graceMs`, SIGKILL), and the journal is deleted. Journals of live servers are
 * left alone. Resolves with what was reaped.
 *
 * @example
 * ```ts
 * import { reapOrphans } from "./journal.ts";
 * const reaped = await reapOrphans("/var/lib/ccx/jobs", { graceMs: 2000 });
 * for (const g of reaped) console.log(`ended ${g.processes} processes of ${g.job_id}`);
 * ```
 */
export async function reapOrphans(
  dir: string,
  opts: { graceMs: number; onReap?: (g: ReapedGroup) => void },
): Promise<ReapedGroup[]> {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".journal"))
      .map((e) => e.name);
  } catch {
    return []; // no journal directory yet
  }
  const reaped: ReapedGroup[] = [];
  const ending: Promise<void>[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch {
      continue; // removed by its owner or another reaper meanwhile
    }
    const { owner, live } = readJournal(text);
    if (!owner) continue; // being written right now
    // Its server (maybe this very process) is alive: not ours to touch.
    if (processStartTime(owner.pid) === owner.start) continue;
    for (const e of live) {
      const processes = ourProcesses(e);
      if (processes === 0) continue;
      const g = { ...e, owner_pid: owner.pid, processes };
      reaped.push(g);
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

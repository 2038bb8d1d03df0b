/**
 * The observer side of `ccx serve`: one list of every job of every session (running ones and,
 * for a bounded time and number, finished ones), a short tail of each job's output, and the
 * fan-out of lifecycle events and chosen jobs' output to sessions that called `watch`.
 *
 * The server decides who may observe (see `ServerOptions.token`); this module only keeps the
 * records and sends to the observers it is given. Nothing here touches a socket directly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ObserverHub } from "./observer.ts";
 * const hub = new ObserverHub({ facts: () => ({ version: "0.1.0" }) });
 * const seen: { method: string }[] = [];
 * const { result } = hub.watch({ send: (m) => seen.push(m as { method: string }), congested: () => false }, {});
 * assert.deepEqual(result, { server: { version: "0.1.0" }, jobs: [] });
 * hub.started({
 *   sessionId: "s1", remote: "127.0.0.1:5000", jobId: "j1", command: "sleep 30", pid: 4242,
 *   state: () => "running", bytes: () => ({ stdout: 0, stderr: 0 }), elapsed: () => 0,
 *   control: () => ({ result: { status: "canceled" } }),
 * });
 * assert.deepEqual(seen.map((m) => m.method), ["observe.job"]); // the watcher hears of it
 * assert.deepEqual(hub.list().map((j) => [j.session_id, j.job_id]), [["s1", "j1"]]);
 * hub.close();
 * ```
 * @module
 */

import {
  ErrorCode,
  type JobMeta,
  type JobResult,
  type JobState,
  notification,
  type ObservedJob,
  RpcError,
  type WatchSnapshot,
} from "../common/protocol.ts";
import {
  asRecord,
  isRecord,
  joinPath,
  type JsonObject,
  JsonShapeError,
  optArray,
  readString,
} from "../common/json.ts";
import { type ClassSummary, type HistoryStore, systemLoad } from "../claude/history.ts";

/** A session that receives observer notifications. */
export interface Observer {
  /** Sends one JSON-RPC message to the observer's socket. */
  send(msg: unknown): void;
  /** True while the observer's socket has more queued than the server allows; output is then skipped. */
  congested(): boolean;
}

/** What the hub needs to know about a job that has just started. */
export interface JobStart {
  /** The owning session's id. */
  sessionId: string;
  /** Who opened the owning session: the peer's address, `host:port`. */
  remote: string;
  /** The job's id (unique in its session). */
  jobId: string;
  /** The shell command, or the argv as JSON. */
  command: string;
  /** The argument vector, when the job was started with one (no shell). */
  argv?: string[];
  /** The `execute` param `label`, if given. */
  label?: string;
  /** The `execute` param `meta`, if given. */
  meta?: JobMeta;
  /** The leader's pid (also the process group id). */
  pid: number;
  /** Current state of the job. */
  state: () => JobState;
  /** Bytes read so far from stdout and stderr. */
  bytes: () => { stdout: number; stderr: number };
  /** Seconds since the job started. */
  elapsed: () => number;
  /**
   * Controls the job as its owner would: the reply's `result`, and `after`, what to send
   * once the reply has gone.
   */
  control: (type: "PAUSE" | "RESUME" | "CANCEL") => { result: unknown; after?: () => void };
}

/** Validated params of `watch`. */
export interface WatchParams {
  /**
   * Jobs whose output this session follows from now on (replacing the previous choice);
   * each new one first gets its retained tail, with `backlog: true`. Absent: unchanged.
   */
  output?: { session_id: string; job_id: string }[];
}

/** Options of {@linkcode ObserverHub}. */
export interface ObserverHubOptions {
  /** Server facts for the snapshot and the periodic `observe.server` notification. */
  facts: () => Record<string, unknown>;
  /** Finished jobs kept listed, at most (default 100). */
  keepFinished?: number;
  /** Seconds a finished job stays listed (default 1800). */
  keepFinishedS?: number;
  /** Characters of output kept per job for observers who start watching late (default 128 Ki). */
  tailChars?: number;
  /** Milliseconds between `observe.server` notifications while anyone observes (default 2000). */
  tickMs?: number;
  /** Opens the timeout history for the `history` method. */
  openHistory?: () => Promise<HistoryStore>;
}

interface Chunk {
  type: "stdout" | "stderr";
  data: string;
  seq: number;
  /** When it was read, epoch seconds (a late observer's page tells how long a tool call ran). */
  at: number;
}

/** What a slot of a tail holds once its chunk was dropped (until the array is compacted). */
const DROPPED: Chunk = Object.freeze({ type: "stdout", data: "", seq: -1, at: 0 });

/** One listed job with its tail and its output watchers. */
class Record_ {
  readonly startedAt = Date.now() / 1000;
  endedAt?: number;
  result?: JobResult;
  /** The tail is `tail[tailHead..]`: dropping from the front moves an index, not the array. */
  readonly tail: Chunk[] = [];
  tailHead = 0;
  tailChars = 0;
  truncated = false;
  readonly watchers = new Map<Observer, { dropped: number }>();

  constructor(readonly start: JobStart) {}

  get key(): string {
    return jobKey(this.start.sessionId, this.start.jobId);
  }

  describe(): ObservedJob {
    const s = this.start;
    const r = this.result;
    const bytes = r ? { stdout: r.stdoutBytes, stderr: r.stderrBytes } : s.bytes();
    const d: ObservedJob = {
      session_id: s.sessionId,
      job_id: s.jobId,
      command: s.command,
      pid: s.pid,
      state: r ? "done" : s.state(),
      started_at: this.startedAt,
      elapsed: r ? r.executionTime : s.elapsed(),
      stdout_bytes: bytes.stdout,
      stderr_bytes: bytes.stderr,
      started_by: { session_id: s.sessionId, remote: s.remote },
    };
    if (s.argv) d.argv = s.argv;
    if (s.label !== undefined) d.label = s.label;
    if (s.meta !== undefined) d.meta = s.meta;
    if (r) {
      d.status = r.status;
      d.exit_code = r.exitCode;
      d.signal = r.signal;
      d.ended_at = this.endedAt;
    }
    return d;
  }
}

/** The handle the server keeps per job to report its output and end. */
export type ObservedRecord = Record_;

function jobKey(sessionId: string, jobId: string): string {
  return `${sessionId}/${jobId}`;
}

/**
 * Validates `watch` params; throws {@linkcode RpcError} -32602 naming the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateWatch } from "./observer.ts";
 * assert.deepEqual(validateWatch({ output: [{ session_id: "s", job_id: "j" }] }), {
 *   output: [{ session_id: "s", job_id: "j" }],
 * });
 * assert.throws(() => validateWatch({ output: [{ job_id: "j" }] }), {
 *   message: "output[0].session_id: required",
 * });
 * ```
 */
export function validateWatch(params: unknown): WatchParams {
  if (params === undefined || params === null) return {};
  if (!isRecord(params)) {
    throw new RpcError(ErrorCode.InvalidParams, "watch takes its params as an object", {
      field: "params",
    });
  }
  try {
    return readWatch(params);
  } catch (e) {
    if (!(e instanceof JsonShapeError)) throw e;
    throw new RpcError(ErrorCode.InvalidParams, e.message, { field: e.path });
  }
}

/** JSON-RPC clients send `null` for "not given". */
const PARAM = { nullIsAbsent: true } as const;

function readWatch(params: JsonObject): WatchParams {
  const list = optArray(params, "output", "", { ...PARAM, items: "{session_id, job_id}" });
  if (list === undefined) return {};
  const output = list.map((item, i) => {
    const path = joinPath("output", i);
    const o = asRecord(item, path);
    return { session_id: readString(o, "session_id", path), job_id: readString(o, "job_id", path) };
  });
  return { output };
}

/**
 * Every job of every session, as observers see it, and the observers themselves.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ObserverHub } from "./observer.ts";
 * const hub = new ObserverHub({ facts: () => ({}), keepFinished: 10, keepFinishedS: 60 });
 * assert.deepEqual(hub.list(), []);
 * hub.close();
 * ```
 */
export class ObserverHub {
  readonly #facts: () => Record<string, unknown>;
  readonly #keepFinished: number;
  readonly #keepFinishedMs: number;
  readonly #tailChars: number;
  readonly #tickMs: number;
  readonly #openHistory?: () => Promise<HistoryStore>;
  /** Insertion order is start order. */
  readonly #records = new Map<string, Record_>();
  readonly #observers = new Map<Observer, Set<Record_>>();
  #tick: ReturnType<typeof setInterval> | undefined;

  /** Creates an empty hub. */
  constructor(opts: ObserverHubOptions) {
    this.#facts = opts.facts;
    this.#keepFinished = opts.keepFinished ?? 100;
    this.#keepFinishedMs = (opts.keepFinishedS ?? 1800) * 1000;
    this.#tailChars = opts.tailChars ?? 128 * 1024;
    this.#tickMs = opts.tickMs ?? 2000;
    this.#openHistory = opts.openHistory;
  }

  /** Sessions observing now. */
  get observers(): number {
    return this.#observers.size;
  }

  /** Lists a new job and tells every observer (`observe.job`, event `started`). */
  started(start: JobStart): ObservedRecord {
    const rec = new Record_(start);
    this.#records.set(rec.key, rec);
    this.#event(rec, "started");
    return rec;
  }

  /** Keeps a chunk in the job's tail and sends it to the observers following the job. */
  output(rec: ObservedRecord, type: "stdout" | "stderr", data: string, seq: number): void {
    const at = Date.now() / 1000;
    rec.tail.push({ type, data, seq, at });
    rec.tailChars += data.length;
    // In lines mode this runs once per line: Array#shift on a tail of thousands of
    // short lines copies the whole array each time, so the front is an index instead,
    // and the array is compacted once the dropped part is the larger half.
    while (rec.tailChars > this.#tailChars && rec.tail.length - rec.tailHead > 1) {
      rec.tailChars -= rec.tail[rec.tailHead].data.length;
      // Let go of the text now: in chunks mode each dropped entry can hold 64 KiB, and up to
      // 1024 of them wait for the next compaction (hundreds of MiB under a slow reader).
      rec.tail[rec.tailHead++] = DROPPED;
      rec.truncated = true;
    }
    if (rec.tailHead > 1024 && rec.tailHead * 2 > rec.tail.length) {
      rec.tail.splice(0, rec.tailHead);
      rec.tailHead = 0;
    }
    if (rec.watchers.size === 0) return;
    for (const [obs, w] of rec.watchers) {
      if (obs.congested()) {
        w.dropped += data.length;
        continue;
      }
      const params: Record<string, unknown> = {
        session_id: rec.start.sessionId,
        job_id: rec.start.jobId,
        type,
        data,
        seq,
        at,
      };
      if (w.dropped > 0) {
        params.dropped_chars = w.dropped;
        w.dropped = 0;
      }
      obs.send(notification("observe.output", params));
    }
  }

  /** Tells observers that a job was paused, resumed or canceled. */
  event(rec: ObservedRecord, event: "paused" | "resumed" | "canceled"): void {
    this.#event(rec, event);
  }

  /** Records a job's end, tells observers, and drops finished jobs beyond the limits. */
  completed(rec: ObservedRecord, result: JobResult): void {
    rec.result = result;
    rec.endedAt = Date.now() / 1000;
    this.#event(rec, "completed");
    this.#prune();
  }

  /** A listed job, or -32003 naming it. */
  find(sessionId: string, jobId: string): ObservedRecord {
    const rec = this.#records.get(jobKey(sessionId, jobId));
    if (!rec) {
      throw new RpcError(ErrorCode.JobNotFound, `no job ${jobId} in session ${sessionId}`, {
        session_id: sessionId,
        job_id: jobId,
      });
    }
    return rec;
  }

  /** Every listed job, oldest first. */
  list(): ObservedJob[] {
    return [...this.#records.values()].map((r) => r.describe());
  }

  /**
   * Makes `obs` an observer (or changes what it follows) and answers with the snapshot as
   * `result`; `after` sends the tails of newly followed jobs, once the reply has gone.
   */
  watch(obs: Observer, p: WatchParams): { result: WatchSnapshot; after: () => void } {
    this.#prune();
    // Resolve the chosen jobs first: an unknown one fails the call without subscribing.
    const wanted = p.output?.map((o) => this.find(o.session_id, o.job_id));
    const backlogs: (() => void)[] = [];
    let following = this.#observers.get(obs);
    if (!following) {
      following = new Set();
      this.#observers.set(obs, following);
      this.#tick ??= setInterval(() => this.#onTick(), this.#tickMs);
    }
    if (wanted) {
      for (const rec of following) {
        if (!wanted.includes(rec)) {
          rec.watchers.delete(obs);
          following.delete(rec);
        }
      }
      for (const rec of wanted) {
        if (following.has(rec)) continue;
        following.add(rec);
        rec.watchers.set(obs, { dropped: 0 });
        const backlog = rec.tail.slice(rec.tailHead);
        const truncated = rec.truncated;
        backlogs.push(() => {
          backlog.forEach((c, i) => {
            const params: Record<string, unknown> = {
              session_id: rec.start.sessionId,
              job_id: rec.start.jobId,
              type: c.type,
              data: c.data,
              seq: c.seq,
              at: c.at,
              backlog: true,
            };
            if (i === 0 && truncated) params.truncated = true;
            obs.send(notification("observe.output", params));
          });
        });
      }
    }
    return {
      result: { server: this.#facts(), jobs: this.list() },
      after: () => backlogs.forEach((f) => f()),
    };
  }

  /** Stops sending to `obs` (its session closed). */
  unwatch(obs: Observer): void {
    const following = this.#observers.get(obs);
    if (!following) return;
    for (const rec of following) rec.watchers.delete(obs);
    this.#observers.delete(obs);
    if (this.#observers.size === 0) this.#stopTick();
  }

  /** The timeout history's classes (task class, counts, estimates), newest store state. */
  async history(): Promise<{ location: string; classes: ClassSummary[] }> {
    if (!this.#openHistory) return { location: "", classes: [] };
    const store = await this.#openHistory();
    try {
      return { location: store.location, classes: await store.classes({ load: systemLoad() }) };
    } finally {
      await store.close();
    }
  }

  /** Stops the periodic notification. */
  close(): void {
    this.#stopTick();
  }

  #stopTick(): void {
    if (this.#tick !== undefined) clearInterval(this.#tick);
    this.#tick = undefined;
  }

  #onTick(): void {
    this.#prune();
    const msg = notification("observe.server", this.#facts());
    for (const obs of this.#observers.keys()) obs.send(msg);
  }

  #event(rec: Record_, event: string): void {
    if (this.#observers.size === 0) return;
    const msg = notification("observe.job", { event, job: rec.describe() });
    for (const obs of this.#observers.keys()) obs.send(msg);
  }

  #prune(): void {
    const finished = [...this.#records.values()].filter((r) => r.result);
    const cutoff = Date.now() / 1000 - this.#keepFinishedMs / 1000;
    const excess = finished.length - this.#keepFinished;
    // Oldest first: drop what is beyond the count, then what is past its time.
    finished.sort((a, b) => a.endedAt! - b.endedAt!);
    finished.forEach((rec, i) => {
      if (i >= excess && rec.endedAt! >= cutoff) return;
      this.#records.delete(rec.key);
      for (const obs of rec.watchers.keys()) this.#observers.get(obs)?.delete(rec);
      rec.watchers.clear();
      // The owner session may keep its entry longer; the tail is not needed any more.
      rec.tail.length = 0;
      rec.tailChars = 0;
      this.#event(rec, "removed");
    });
  }
}

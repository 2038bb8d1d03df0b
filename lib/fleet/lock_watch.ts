/**
 * A fleet worker's watch over its task locks and its Redis: which running task has surely
 * lost its lock (so the queue will give it to another worker), and how long Redis stayed
 * silent. A worker that knows its lock is gone stops the task instead of letting it run
 * twice; one that finished a task while Redis was unreachable keeps its result for the next
 * delivery (see `worker.ts`).
 *
 * A lock set by Redis at time T lasts until T + lock; the worker hears of it at T' ≥ T, so
 * once `lock` has passed since the last renewal it heard of, the lock has expired for sure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LockWatch } from "./lock_watch.ts";
 * const lost: string[] = [];
 * const watch = new LockWatch({
 *   name: "box1:4242",
 *   lockMs: 10_000,
 *   ping: () => Promise.resolve("PONG"), // the worker's Redis PING
 *   onLost: (jobId, note) => lost.push(`${jobId}: ${note}`), // the worker stops that task
 * });
 * watch.start();
 * const a = watch.track("job-1");
 * const b = watch.track("job-2");
 * watch.renewed(["job-1", "job-2"]); // BullMQ's locksRenewed event
 * watch.failed(["job-2"]); // BullMQ's lockRenewalFailed event: another worker may take job-2
 * assert.deepEqual(lost, ["job-2: worker box1:4242 could not renew its 10.0 s lock"]);
 * assert.equal(a.lost, undefined);
 * watch.untrack(a);
 * watch.untrack(b);
 * watch.stop();
 * ```
 * @module
 */

/** Options of {@linkcode LockWatch}. */
export interface LockWatchOptions {
  /** The worker's name, for the notes. */
  name: string;
  /** How long a task's lock lasts, in milliseconds. */
  lockMs: number;
  /**
   * Asks Redis something cheap (a PING, or the SET that says this worker is alive); resolves
   * when it answers. Called every quarter lock.
   */
  ping: () => Promise<unknown>;
  /** Called once when a tracked task has surely lost its lock, with a note saying why. */
  onLost: (jobId: string, note: string) => void;
}

/** One tracked run of a job on this worker. */
export interface LockSlot {
  /** The job's id. */
  readonly jobId: string;
  /** When the run began (`performance.now()`). */
  readonly startedAt: number;
  /** When a renewal of its lock was last confirmed. */
  renewedAt: number;
  /** Why its lock is gone, once it is. */
  lost?: string;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Watches the locks of the running tasks of one worker, and its Redis. */
export class LockWatch {
  #opts: LockWatchOptions;
  #slots = new Map<string, LockSlot>();
  #lastAnswer = performance.now();
  /** Silences longer than half a lock: [from, to] in `performance.now()` time. */
  #silences: [number, number][] = [];
  /** When the ping still unanswered was sent; undefined when none is. */
  #asked?: number;
  #timer?: ReturnType<typeof setInterval>;

  /** Creates the watch; {@linkcode LockWatch.start} starts its timer. */
  constructor(opts: LockWatchOptions) {
    this.#opts = opts;
  }

  /** Starts pinging Redis and checking the locks, every quarter lock (at least 250 ms). */
  start(): void {
    this.#timer ??= setInterval(() => this.#tick(), Math.max(250, this.#opts.lockMs / 4));
  }

  /** Stops the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Starts watching a run of `jobId` whose lock was just taken. */
  track(jobId: string): LockSlot {
    const now = performance.now();
    const slot: LockSlot = { jobId, startedAt: now, renewedAt: now };
    this.#slots.set(jobId, slot);
    return slot;
  }

  /** Stops watching that run (its task ended). */
  untrack(slot: LockSlot): void {
    if (this.#slots.get(slot.jobId) === slot) this.#slots.delete(slot.jobId);
  }

  /** The run of `jobId` being watched, if any. */
  slot(jobId: string): LockSlot | undefined {
    return this.#slots.get(jobId);
  }

  /** BullMQ confirmed a renewal of these locks (its `locksRenewed` event). */
  renewed(jobIds: string[]): void {
    const now = performance.now();
    for (const id of jobIds) {
      const s = this.#slots.get(id);
      if (s) s.renewedAt = now;
    }
  }

  /** BullMQ found these locks gone (its `lockRenewalFailed` event). */
  failed(jobIds: string[]): void {
    for (const id of jobIds) {
      const s = this.#slots.get(id);
      if (s) this.#lose(s, performance.now());
    }
  }

  /** Marks a run as lost now (say, the queue gave its job to this worker again). */
  lose(slot: LockSlot): void {
    this.#lose(slot, performance.now());
  }

  /**
   * Waits until Redis answers, then resolves with the longest time it stayed silent since
   * `since` (a `performance.now()` time), counting only silences over half a lock; 0 if none.
   */
  async silenceSince(since: number): Promise<number> {
    const sent = performance.now();
    await this.#opts.ping();
    this.#answered(sent, performance.now());
    let longest = 0;
    for (const [from, to] of this.#silences) {
      if (to >= since) longest = Math.max(longest, to - Math.max(from, since));
    }
    return longest;
  }

  /**
   * Whether Redis left a question unanswered for over half a lock at some time in the last
   * `ms` milliseconds (or has for over a quarter lock now).
   */
  silentWithin(ms: number): boolean {
    const now = performance.now();
    if (this.#asked !== undefined && now - this.#asked > this.#opts.lockMs / 4) return true;
    return this.#silences.some(([, to]) => to >= now - ms);
  }

  /**
   * What to tell the report about a task whose lock ran out while Redis stayed silent for
   * `silenceMs` (0: Redis answered; the lock still could not be renewed).
   */
  describe(silenceMs: number): string {
    const lock = seconds(this.#opts.lockMs);
    return silenceMs > this.#opts.lockMs / 2
      ? `Redis was unreachable for ${seconds(silenceMs)} (worker ${this.#opts.name}'s lock ` +
        `lasts ${lock})`
      : `worker ${this.#opts.name} could not renew its ${lock} lock`;
  }

  /** A ping sent at `sent` was answered at `now`: a long wait for it was a silence. */
  #answered(sent: number, now: number): void {
    if (now - sent > this.#opts.lockMs / 2) {
      this.#silences.push([this.#lastAnswer, now]);
      if (this.#silences.length > 100) this.#silences.shift();
    }
    this.#lastAnswer = Math.max(this.#lastAnswer, now);
  }

  #lose(slot: LockSlot, now: number): void {
    if (slot.lost !== undefined) return;
    // Silent: a question to Redis has waited over a quarter lock for its answer (the final
    // note, from silenceSince(), measures the whole silence once Redis answers again).
    const waiting = this.#asked !== undefined && now - this.#asked > this.#opts.lockMs / 4;
    const silent = waiting ? now - this.#lastAnswer : 0;
    slot.lost = this.describe(silent);
    this.#opts.onLost(slot.jobId, slot.lost);
  }

  #tick(): void {
    const now = performance.now();
    if (this.#asked === undefined) {
      const sent = this.#asked = now;
      this.#opts.ping().then(
        () => this.#answered(sent, performance.now()),
        () => {},
      ).finally(() => this.#asked = undefined);
    }
    for (const s of this.#slots.values()) {
      if (now - s.renewedAt > this.#opts.lockMs) this.#lose(s, now);
    }
  }
}

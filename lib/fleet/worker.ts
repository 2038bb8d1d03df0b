/**
 * A fleet worker (`ccx worker`): connects out to the queue's Redis, takes tasks that
 * `ccx stress --queue` put there, runs each on this box through an in-process ccx server with
 * the runner's own per-task code ({@linkcode runTask}, {@linkcode runInstance}: same
 * supervisor, verdicts and retries as `ccx stress`), and hands back the result and the saved
 * output. Live output goes to the job's log and progress (a BullMQ dashboard shows both).
 *
 * Stopping: {@linkcode FleetWorker.stop} takes no more tasks, lets the running ones finish
 * within a bound, then cancels what is left and hands it back to the queue for another worker.
 * A worker that dies without stopping (SIGKILL, a lost box) stops renewing its locks; after
 * `lockS` seconds BullMQ's stalled-job check, run by the other workers, puts its tasks back.
 *
 * Redis unreachable for longer than the lock: every lock runs out, and the queue gives each
 * running task to a worker again once Redis is back. So a worker whose lock is surely gone
 * stops that task (see `lock_watch.ts`) and leaves word why in `ccx:fleet:<queue>:job:<job>`;
 * a task that ended meanwhile leaves its result there, and the next delivery hands that
 * result back instead of running the task a second time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FleetWorker } from "./worker.ts";
 * // Needs the queue's Redis, so the doc tests only type-check it.
 * Deno.test({ name: "FleetWorker (needs Redis)", ignore: true }, async () => {
 *   const w = await FleetWorker.start({ url: "redis://127.0.0.1:6379", concurrency: 2 });
 *   const stop = () => void w.stop(); // finish or hand back the running tasks
 *   Deno.addSignalListener("SIGTERM", stop);
 *   await w.stopped;
 *   Deno.removeSignalListener("SIGTERM", stop);
 *   assert.ok(w.name);
 * });
 * ```
 * @module
 */

import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { type Job, WaitingError, Worker } from "bullmq";
import { CcxClient } from "../client/client.ts";
import type { CcxServer } from "../serve/server.ts";
import { type LocalServer, startLocalServer } from "../serve/local.ts";
import type { IsolateMode } from "../serve/isolate.ts";
import type { HistoryStore } from "../claude/history.ts";
import { RedisHistory } from "../claude/history_store.ts";
import { closeWithin, connectRedis, redactUrl } from "../common/redis.ts";
import { runInstance, runTask, ServerLostError, type TaskOptions } from "../stress/task.ts";
import {
  CANCELED_BEFORE_START,
  checkQueueUrl,
  DEFAULT_QUEUE_NAME,
  type FleetJobData,
  type FleetJobResult,
  fleetKeys,
  type FleetProgress,
  MAX_HANDED_BACK_BYTES,
  MAX_STALLED_COUNT,
} from "./queue.ts";
import type { TestResult } from "../stress/report/model.ts";
import { type LockSlot, LockWatch } from "./lock_watch.ts";
import { formatDuration } from "../common/format.ts";

type RedisClient = Awaited<ReturnType<typeof connectRedis>>;

/**
 * Seconds a task's lock lasts by default: a dead worker's tasks are taken again after at most
 * about 1.25 times this (lock expiry plus a quarter lock for the stalled-job check).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_LOCK_S } from "./worker.ts";
 * assert.equal(DEFAULT_LOCK_S, 10);
 * ```
 */
export const DEFAULT_LOCK_S = 10;

/**
 * Seconds a stopping worker waits for its running tasks by default before handing them back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DRAIN_S } from "./worker.ts";
 * assert.equal(DEFAULT_DRAIN_S, 30);
 * ```
 */
export const DEFAULT_DRAIN_S = 30;

/**
 * Options of {@linkcode FleetWorker.start}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FleetWorker, type FleetWorkerOptions } from "./worker.ts";
 * const o: FleetWorkerOptions = { url: "redis://127.0.0.1:1", concurrency: 4, log: () => {} };
 * // Nothing listens on port 1: start fails at once, naming the Redis it tried.
 * await assert.rejects(FleetWorker.start(o), /redis:\/\/127\.0\.0\.1:1/);
 * ```
 */
export interface FleetWorkerOptions {
  /** `redis://` or `rediss://` URL of the queue's Redis. */
  url: string;
  /** Queue name (default `ccx`). */
  queueName?: string;
  /** Tasks at once (default 1). */
  concurrency?: number;
  /** Name shown in progress and reports (default `HOST:PID`). */
  name?: string;
  /** Lock period in seconds (default {@linkcode DEFAULT_LOCK_S}). */
  lockS?: number;
  /** Bound in seconds on finishing running tasks when stopping (default {@linkcode DEFAULT_DRAIN_S}). */
  drainS?: number;
  /** The Claude executable here; default: the one the suite names. */
  claude?: string;
  /** Do not record runs in the queue's timeout history. */
  noHistory?: boolean;
  /**
   * This box is a sandbox (`--sandbox`, default `CCX_SANDBOX=1`): Claude tasks get
   * `IS_SANDBOX=1`. A run enqueued with `ccx stress --sandbox` gets it on every worker.
   */
  sandbox?: boolean;
  /** One line per event (default: none). */
  log?: (line: string) => void;
  /**
   * Run every task as this user (a name or uid; the worker runs as root), so tasks cannot read
   * the worker's `/proc/PID/environ` (the queue's password) or its private files
   * (`ccx worker --run-as`).
   */
  runAs?: string;
  /** `bwrap`: every task runs confined to its workspace under bubblewrap (default `none`). */
  isolate?: IsolateMode;
  /** Where task workspaces are made (default: `workspaces` in the state directory). */
  workspaceRoot?: string;
}

/** The worker's name: `--name`, else `HOST:PID`. */
function workerName(opts: FleetWorkerOptions): string {
  return opts.name ?? `${hostname()}:${Deno.pid}`;
}

/** A worker taking tasks from the fleet queue. Start one with {@linkcode FleetWorker.start}. */
export class FleetWorker {
  /** Its name (`--name`). */
  readonly name: string;
  /** Resolves once the worker has stopped and let go of everything. */
  readonly stopped: Promise<void>;
  #resolveStopped!: () => void;
  #worker!: Worker<FleetJobData, FleetJobResult>;
  #server: CcxServer;
  #token: string;
  #client?: Promise<CcxClient>;
  #redis: RedisClient;
  #sub: RedisClient;
  #history?: HistoryStore;
  #opts: FleetWorkerOptions;
  #active = new Map<string, string>(); // jobId → runId
  #watch!: LockWatch;
  /** Runs of jobs still being processed here, by job id (a redelivery waits for its own). */
  #runs = new Map<string, Promise<unknown>>();
  #keys!: ReturnType<typeof fleetKeys>;
  #lockMs = DEFAULT_LOCK_S * 1000;
  #handBack = false;
  #stopping?: Promise<void>;
  #drained?: () => void;
  #log: (line: string) => void;

  private constructor(
    opts: FleetWorkerOptions,
    local: LocalServer,
    redis: RedisClient,
    sub: RedisClient,
    history: HistoryStore | undefined,
  ) {
    this.#opts = opts;
    this.name = workerName(opts);
    this.#redis = redis;
    this.#sub = sub;
    this.#history = history;
    this.#log = opts.log ?? (() => {});
    this.#server = local.server;
    this.#token = local.token;
    this.stopped = new Promise((r) => this.#resolveStopped = r);
  }

  /**
   * Starts the local server (throwing `ServerConfigError` for settings it refuses, such as a
   * `runAs` user it cannot switch to), connects to Redis (failing at once, naming the URL, when
   * it cannot) and begins taking tasks.
   */
  static async start(opts: FleetWorkerOptions): Promise<FleetWorker> {
    checkQueueUrl(opts.url);
    const queueName = opts.queueName ?? DEFAULT_QUEUE_NAME;
    const log = opts.log ?? (() => {});
    // Only this process knows its token: no other local user runs commands through it.
    const local = startLocalServer({
      workspaceRoot: opts.workspaceRoot,
      isolate: opts.isolate,
      runAs: opts.runAs,
      // Quiet about jobs; what is wrong with the server itself is the operator's to know.
      warn: (line) => log(`${workerName(opts)}: ${line}`),
    });
    let redis: RedisClient | undefined;
    let w: FleetWorker;
    try {
      redis = await connectRedis(opts.url, { blocking: true });
      const sub = redis.duplicate();
      sub.on("error", () => {});
      const history = opts.noHistory ? undefined : await RedisHistory.connect({ url: opts.url });
      w = new FleetWorker(opts, local, redis, sub, history);
    } catch (e) {
      redis?.disconnect();
      await local.server.shutdown();
      throw e;
    }
    // Process groups a SIGKILLed worker (or server) left on this box end before new work starts.
    await w.#server.reaped.catch(() => []);
    const keys = fleetKeys(queueName);
    await w.#sub.subscribe(keys.cancelChannel);
    w.#sub.on("message", (_channel: string, runId: string) => w.#cancelRun(runId));
    const lockMs = Math.round((opts.lockS ?? DEFAULT_LOCK_S) * 1000);
    w.#keys = keys;
    w.#lockMs = lockMs;
    // A task whose lock is surely gone is stopped: the queue gives it to another worker.
    w.#watch = new LockWatch({
      name: w.name,
      lockMs,
      // Each answer also says this worker is alive, for a lock period.
      ping: () => w.#redis.set(keys.alive(w.name), "1", "PX", lockMs),
      onLost: (jobId, note) => {
        w.#log(`${jobId}: lock lost (${note}); stopping the task so it does not run twice`);
        w.#worker.cancelJob(jobId, "lock lost");
      },
    });
    w.#worker = new Worker<FleetJobData, FleetJobResult>(
      queueName,
      (job, token, signal) => {
        const run = w.#process(job, token, signal, keys.cancelKey(job.data.runId));
        const settled = run.catch(() => {});
        w.#runs.set(job.id!, settled);
        settled.then(() => w.#runs.get(job.id!) === settled && w.#runs.delete(job.id!));
        return run;
      },
      {
        connection: w.#redis,
        concurrency: Math.max(1, opts.concurrency ?? 1),
        name: w.name,
        lockDuration: lockMs,
        stalledInterval: Math.max(250, Math.round(lockMs / 4)),
        maxStalledCount: MAX_STALLED_COUNT,
      },
    );
    w.#worker.on("error", (e) => w.#log(`queue error: ${(e as Error).message}`));
    w.#worker.on("locksRenewed", ({ jobIds }) => w.#watch.renewed(jobIds));
    w.#worker.on("lockRenewalFailed", (jobIds) => w.#watch.failed(jobIds));
    // Delivered: the copy of the result kept for a redelivery is no longer needed.
    w.#worker.on("completed", (job) => void w.#redis.del(w.#keys.job(job.id!)).catch(() => {}));
    w.#watch.start();
    await w.#worker.waitUntilReady();
    const sandbox = opts.sandbox ?? Deno.env.get("CCX_SANDBOX") === "1";
    let root = false;
    try {
      root = Deno.uid() === 0;
    } catch { /* no uid on this platform */ }
    w.#log(
      `${w.name} taking tasks from queue ${queueName} at ${redactUrl(opts.url)}, concurrency ` +
        `${opts.concurrency ?? 1}, lock ${lockMs / 1000}s` +
        (sandbox
          ? ", sandbox (IS_SANDBOX=1 for Claude tasks)"
          : root
          ? "; as root without --sandbox: Claude tasks that skip permissions are refused " +
            "unless their run passes --sandbox"
          : ""),
    );
    return w;
  }

  /** Tasks running now. */
  get running(): number {
    return this.#active.size;
  }

  /**
   * Stops: takes no more tasks, waits up to `drainS` seconds for the running ones to finish,
   * then cancels the rest and hands them back to the queue, and lets go of Redis and the
   * local server. Safe to call more than once; a later call with `drainS` 0 stops the wait
   * and hands back at once.
   */
  stop(drainS = this.#opts.drainS ?? DEFAULT_DRAIN_S): Promise<void> {
    // Called again while draining (a second signal): stop waiting, hand back now.
    if (this.#stopping) {
      if (drainS === 0) this.#drained?.();
      return this.#stopping;
    }
    this.#stopping = (async () => {
      this.#log(`stopping, ${this.running} task(s) running`);
      const closing = this.#worker.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) => {
        this.#drained = () => r("late");
        timer = setTimeout(() => r("late"), drainS * 1000);
      });
      if (await Promise.race([closing.then(() => "closed" as const), late]) === "late") {
        this.#log(`handing back ${this.running} task(s)`);
        this.#handBack = true;
        this.#worker.cancelAllJobs("worker stopping");
        // Bounded: a BullMQ close right after a Redis outage can wait forever (closeWithin).
        await closeWithin(closing, CLOSE_MS, [this.#redis]);
      }
      clearTimeout(timer);
      this.#watch.stop();
      await closeWithin(this.#sub.quit().catch(() => this.#sub.disconnect()), CLOSE_MS, [
        this.#sub,
      ]);
      await this.#history?.close().catch(() => {});
      const c = await this.#client?.catch(() => undefined);
      await c?.close().catch(() => {});
      await this.#server.shutdown();
      await closeWithin(
        this.#redis.quit().catch(() => this.#redis.disconnect()),
        CLOSE_MS,
        [this.#redis],
      );
      this.#resolveStopped();
    })();
    return this.#stopping;
  }

  #cancelRun(runId: string): void {
    for (const [jobId, r] of this.#active) {
      if (r === runId) this.#worker.cancelJob(jobId, "run canceled by its coordinator");
    }
  }

  #connect = async (): Promise<{ client: CcxClient; url: string }> => {
    let c = await this.#client?.catch(() => undefined);
    if (!c || c.closed) {
      this.#client = CcxClient.connect(this.#server.url, { token: this.#token });
      c = await this.#client;
    }
    return { client: c, url: this.#server.url };
  };

  async #process(
    job: Job<FleetJobData, FleetJobResult>,
    token: string | undefined,
    signal: AbortSignal | undefined,
    cancelKey: string,
  ): Promise<FleetJobResult> {
    const d = job.data;
    const jobId = job.id!;
    const deliveries = Math.max(1, job.attemptsStarted ?? 1);
    const progress = (p: Omit<FleetProgress, "worker">) =>
      job.updateProgress({ worker: this.name, ...p }).catch(() => {});
    // Taken again: the worker that had it may have finished it, or stopped it, while Redis was
    // unreachable. A finished one is not run again.
    let before: string | undefined;
    if (deliveries > 1) {
      const prior = await this.#prior(job);
      if (prior.done) {
        this.#log(`${d.rid}: not run again: ${prior.done.outage}`);
        return { ...prior.done, kept: true };
      }
      before = prior.lost;
    }
    // One round trip for both: is the run canceled, and who has the task.
    const [canceled] = await Promise.all([
      this.#redis.exists(cancelKey),
      progress({ state: "started" }),
    ]);
    if (canceled) {
      const r = interrupted(d);
      const instance = d.instance === undefined ? undefined : {
        i: d.instance,
        settings: {},
        text: "",
        durationS: 0,
        exitCode: null,
        v: r,
      };
      return instance
        ? { worker: this.name, instance, files: {}, deliveries }
        : { worker: this.name, result: r, files: {}, deliveries };
    }
    this.#active.set(jobId, d.runId);
    const slot = this.#watch.track(jobId);
    // The queue names the task's template (a path on this host, as its suite resolved it): the
    // worker's own server takes it from there, and from nowhere else.
    if (d.task.workspaceTemplate !== undefined && d.settings.workspace !== false) {
      this.#server.workspaces.allowTemplateRoot(d.task.workspaceTemplate);
    }
    this.#log(
      `${d.rid}${d.instance === undefined ? "" : ` instance ${d.instance + 1}`} started ` +
        `(run ${d.runId}${deliveries > 1 ? `, delivery ${deliveries}` : ""})`,
    );
    // Outputs are written here, handed back, and removed; nothing to write, no directory.
    const outDir = d.task.saveOutput
      ? await Deno.makeTempDir({ prefix: "ccx-worker-" })
      : join(tmpdir(), "ccx-worker-unused");
    let bytes = 0;
    let tail = "";
    let flushed = 0;
    const opts: TaskOptions = {
      outDir,
      claude: this.#opts.claude ?? d.settings.claude,
      patternMode: d.settings.patternMode,
      timeoutScale: d.settings.timeoutScale,
      history: d.settings.record ? this.#history : undefined,
      workspace: d.settings.workspace,
      keepWorkspaces: d.settings.keepWorkspaces,
      model: d.settings.model,
      judgeModel: d.settings.judgeModel,
      sandbox: d.settings.sandbox === true ||
        (this.#opts.sandbox ?? Deno.env.get("CCX_SANDBOX") === "1"),
      signal,
      onOutput: (_id, _type, data) => {
        bytes += data.length;
        const lines = data.trimEnd().split("\n");
        tail = lines.at(-1) || tail;
        if (Date.now() - flushed > 500) {
          flushed = Date.now();
          void progress({ state: "output", bytes, tail: tail.slice(-200) });
        }
      },
    };
    try {
      const files: Record<string, string> = {};
      let value: FleetJobResult;
      if (d.instance !== undefined) {
        const run = await runInstance(d.task, d.rid, d.instance, this.#connect, opts, d.shared!);
        this.#watch.untrack(slot);
        if (this.#handBack && signal?.aborted) return await this.#giveBack(job, token);
        if (slot.lost && run.v.reason.startsWith("interrupted")) {
          return await this.#lost(job, token, slot);
        }
        await collect(files, run.outputFile);
        if (run.v.kind === "root_refused") run.v.fix = this.#rootFix();
        this.#log(
          `${d.rid} instance ${d.instance + 1} ${run.v.status} in ${formatDuration(run.durationS)}`,
        );
        value = { worker: this.name, instance: run, files, deliveries };
      } else {
        const result = await runTask(d.task, d.rid, this.#connect, opts);
        this.#watch.untrack(slot);
        if (this.#handBack && signal?.aborted) return await this.#giveBack(job, token);
        if (slot.lost && result.reason.startsWith("interrupted")) {
          return await this.#lost(job, token, slot);
        }
        await collect(files, result.outputFile);
        for (const i of result.instances ?? []) await collect(files, i.outputFile);
        if (result.kind === "root_refused") result.fix = this.#rootFix();
        this.#log(`${d.rid} ${result.status} in ${formatDuration(result.durationS)}`);
        value = { worker: this.name, result, files, deliveries };
      }
      if (before) value.outage = before;
      return await this.#keep(jobId, value, slot);
    } catch (e) {
      // Our own server went away (shutting down): not the task's fault, another worker takes it.
      if (e instanceof ServerLostError) return await this.#giveBack(job, token);
      throw e;
    } finally {
      this.#watch.untrack(slot);
      this.#active.delete(jobId);
      if (d.task.saveOutput) await Deno.remove(outDir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * Keeps a copy of a finished task's result in Redis until the queue has it: should the
   * lock have run out meanwhile (Redis unreachable), the job's next delivery hands this
   * result back instead of running the task again. Waits for Redis to answer.
   */
  async #keep(jobId: string, value: FleetJobResult, slot: LockSlot): Promise<FleetJobResult> {
    const silent = await this.#watch.silenceSince(slot.startedAt);
    const kept: FleetJobResult = { ...value };
    if (silent > this.#lockMs / 2 || slot.lost) {
      kept.outage = `${this.#watch.describe(silent)} as the task ended; the result of its ` +
        "one run is kept, the task did not run again";
    }
    const key = this.#keys.job(jobId);
    await this.#redis.multi().hset(key, "done", JSON.stringify(kept)).pexpire(key, KEEP_MS)
      .exec();
    return value;
  }

  /**
   * The task was stopped because its lock is gone: say why for the worker that runs it next,
   * hand the job back if the queue still counts it as ours, and let go of it.
   */
  async #lost(
    job: Job<FleetJobData, FleetJobResult>,
    token: string | undefined,
    slot: LockSlot,
  ): Promise<never> {
    const silent = await this.#watch.silenceSince(slot.startedAt);
    const note = `${this.#watch.describe(silent)}; worker ${this.name} stopped the task ` +
      "rather than let it run twice";
    const key = this.#keys.job(job.id!);
    await this.#redis.multi().hset(key, "lost", note).pexpire(key, KEEP_MS).exec();
    this.#log(`${job.data.rid} stopped: ${note}`);
    // Most often the lock has expired and this fails: the queue's stalled check puts it back.
    await job.moveToWait(token).catch(() => {});
    throw new WaitingError();
  }

  /**
   * For a job given to this worker again: what the worker that had it left (its result, or
   * why it stopped). While that worker may be alive and reconnecting to Redis, waits for its
   * word up to {@linkcode PRIOR_WAIT_MS} plus half a lock; then the task counts as lost with
   * its worker.
   */
  async #prior(job: Job<FleetJobData, FleetJobResult>): Promise<{
    done?: FleetJobResult;
    lost?: string;
  }> {
    const jobId = job.id!;
    // This worker's own earlier run of it is still ending: stop it and wait for its word.
    const mine = this.#watch.slot(jobId);
    if (mine) this.#watch.lose(mine);
    await this.#runs.get(jobId);
    // Wait for the worker that had it only if it may be alive: it says so in Redis, or Redis
    // was silent here lately (it may be reconnecting). A dead worker's task runs at once.
    const had = job.progress as Partial<FleetProgress> | undefined;
    const owner = typeof had?.worker === "string" && had.state !== "handed-back" &&
        had.worker !== this.name
      ? had.worker
      : undefined;
    const alive = owner !== undefined && (
      this.#watch.silentWithin(2 * this.#lockMs + PRIOR_WAIT_MS) ||
      await this.#redis.exists(this.#keys.alive(owner)) === 1
    );
    const wait = alive ? PRIOR_WAIT_MS + this.#lockMs / 2 : 0;
    const deadline = Date.now() + wait;
    for (;;) {
      const rec = await this.#redis.hgetall(this.#keys.job(jobId));
      if (rec.done) {
        const done = JSON.parse(rec.done) as FleetJobResult;
        done.outage ??= `the queue lost worker ${done.worker}'s answer as the task ended; ` +
          "the result of its one run is kept, the task did not run again";
        return { done };
      }
      if (rec.lost) return { lost: rec.lost };
      if (Date.now() >= deadline) return {};
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The fix of a `root_refused` task run here: what this worker needs. */
  #rootFix(): string {
    return `worker ${this.name} runs Claude tasks as root without IS_SANDBOX=1, which the CLI ` +
      "refuses with --dangerously-skip-permissions: on a sandbox box start the worker with " +
      "--sandbox (or CCX_SANDBOX=1), or pass --sandbox to this `ccx stress --queue` run; else " +
      "run the worker as a non-root user";
  }

  async #giveBack(job: Job<FleetJobData, FleetJobResult>, token?: string): Promise<never> {
    await job.updateProgress({ worker: this.name, state: "handed-back" }).catch(() => {});
    await job.moveToWait(token);
    this.#log(`${job.data.rid} handed back`);
    throw new WaitingError();
  }
}

/** How long a finished task's result (or why its run stopped) is kept for a redelivery. */
const KEEP_MS = 24 * 3600 * 1000;

/** How long a stopping worker waits for a queue or connection to close before it disconnects it. */
const CLOSE_MS = 3000;

/**
 * How long a redelivered task waits for the word of the worker that had it, when that one may
 * be alive and reconnecting to Redis (its client retries at least every 2 s), plus half a lock.
 */
const PRIOR_WAIT_MS = 3000;

/** Reads a saved output into `files` by its base name, cut at {@linkcode MAX_HANDED_BACK_BYTES}. */
async function collect(files: Record<string, string>, path?: string): Promise<void> {
  if (!path) return;
  const bytes = await Deno.readFile(path).catch(() => undefined);
  if (!bytes) return;
  const cut = bytes.length > MAX_HANDED_BACK_BYTES;
  const text = new TextDecoder().decode(cut ? bytes.subarray(0, MAX_HANDED_BACK_BYTES) : bytes);
  files[basename(path)] = cut
    ? `${text}\n----- cut: ${bytes.length} bytes, the first ${MAX_HANDED_BACK_BYTES} kept -----\n`
    : text;
}

function interrupted(d: FleetJobData): TestResult {
  return {
    id: d.rid,
    name: d.task.name,
    category: d.task.category,
    startedAt: Date.now(),
    status: "error",
    reason: CANCELED_BEFORE_START,
    durationS: 0,
    exitCode: null,
    patternsFound: [],
    patternsMissing: [...d.task.expectedPatterns],
    attempts: 1,
  };
}

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
 * @example
 * ```ts
 * import { FleetWorker } from "./worker.ts";
 * const w = await FleetWorker.start({ url: "redis://127.0.0.1:6379", concurrency: 2 });
 * Deno.addSignalListener("SIGTERM", () => void w.stop());
 * await w.stopped;
 * ```
 * @module
 */

import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { type Job, WaitingError, Worker } from "bullmq";
import { CcxClient } from "../client/client.ts";
import { type CcxServer, startInProcessServer } from "../serve/server.ts";
import { type HistoryStore, RedisHistory } from "../claude/history.ts";
import { connectRedis, redactUrl } from "../common/redis.ts";
import { runInstance, runTask, ServerLostError, type TaskOptions } from "../stress/runner.ts";
import {
  CANCELED_BEFORE_START,
  checkQueueUrl,
  DEFAULT_QUEUE_NAME,
  type FleetJobData,
  type FleetJobResult,
  fleetKeys,
  type FleetProgress,
  MAX_HANDED_BACK_BYTES,
} from "./queue.ts";
import type { TestResult } from "../stress/report/model.ts";
import { formatDuration } from "../common/format.ts";

type RedisClient = Awaited<ReturnType<typeof connectRedis>>;

/**
 * Seconds a task's lock lasts by default: a dead worker's tasks are taken again after at most
 * about 1.25 times this (lock expiry plus a quarter lock for the stalled-job check).
 *
 * @example
 * ```ts
 * import { DEFAULT_LOCK_S } from "./worker.ts";
 * console.log(DEFAULT_LOCK_S); // 10
 * ```
 */
export const DEFAULT_LOCK_S = 10;

/**
 * Seconds a stopping worker waits for its running tasks by default before handing them back.
 *
 * @example
 * ```ts
 * import { DEFAULT_DRAIN_S } from "./worker.ts";
 * console.log(DEFAULT_DRAIN_S); // 30
 * ```
 */
export const DEFAULT_DRAIN_S = 30;

/**
 * Options of {@linkcode FleetWorker.start}.
 *
 * @example
 * ```ts
 * import type { FleetWorkerOptions } from "./worker.ts";
 * const o: FleetWorkerOptions = { url: "rediss://w:secret@redis.lan:6380", concurrency: 4 };
 * console.log(o.concurrency);
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
  #client?: Promise<CcxClient>;
  #redis: RedisClient;
  #sub: RedisClient;
  #history?: HistoryStore;
  #opts: FleetWorkerOptions;
  #active = new Map<string, string>(); // jobId → runId
  #handBack = false;
  #stopping?: Promise<void>;
  #drained?: () => void;
  #log: (line: string) => void;

  private constructor(
    opts: FleetWorkerOptions,
    redis: RedisClient,
    sub: RedisClient,
    history: HistoryStore | undefined,
  ) {
    this.#opts = opts;
    this.name = opts.name ?? `${hostname()}:${Deno.pid}`;
    this.#redis = redis;
    this.#sub = sub;
    this.#history = history;
    this.#log = opts.log ?? (() => {});
    this.#server = startInProcessServer();
    this.stopped = new Promise((r) => this.#resolveStopped = r);
  }

  /**
   * Connects to Redis (failing at once, naming the URL, when it cannot), starts the local
   * server and begins taking tasks.
   */
  static async start(opts: FleetWorkerOptions): Promise<FleetWorker> {
    checkQueueUrl(opts.url);
    const queueName = opts.queueName ?? DEFAULT_QUEUE_NAME;
    const redis = await connectRedis(opts.url, { blocking: true });
    const sub = redis.duplicate();
    sub.on("error", () => {});
    const history = opts.noHistory ? undefined : await RedisHistory.connect({ url: opts.url });
    const w = new FleetWorker(opts, redis, sub, history);
    // Process groups a SIGKILLed worker (or server) left on this box end before new work starts.
    await w.#server.reaped.catch(() => []);
    const keys = fleetKeys(queueName);
    await sub.subscribe(keys.cancelChannel);
    sub.on("message", (_channel: string, runId: string) => w.#cancelRun(runId));
    const lockMs = Math.round((opts.lockS ?? DEFAULT_LOCK_S) * 1000);
    w.#worker = new Worker<FleetJobData, FleetJobResult>(
      queueName,
      (job, token, signal) => w.#process(job, token, signal, keys.cancelKey(job.data.runId)),
      {
        connection: redis,
        concurrency: Math.max(1, opts.concurrency ?? 1),
        name: w.name,
        lockDuration: lockMs,
        stalledInterval: Math.max(250, Math.round(lockMs / 4)),
        maxStalledCount: 2,
      },
    );
    w.#worker.on("error", (e) => w.#log(`queue error: ${(e as Error).message}`));
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
        await closing;
      }
      clearTimeout(timer);
      await this.#sub.quit().catch(() => this.#sub.disconnect());
      await this.#history?.close().catch(() => {});
      const c = await this.#client?.catch(() => undefined);
      await c?.close().catch(() => {});
      await this.#server.shutdown();
      await this.#redis.quit().catch(() => this.#redis.disconnect());
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
      this.#client = CcxClient.connect(this.#server.url);
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
      if (d.instance !== undefined) {
        const run = await runInstance(d.task, d.rid, d.instance, this.#connect, opts, d.shared!);
        if (this.#handBack && signal?.aborted) return await this.#giveBack(job, token);
        await collect(files, run.outputFile);
        if (run.v.kind === "root_refused") run.v.fix = this.#rootFix();
        this.#log(
          `${d.rid} instance ${d.instance + 1} ${run.v.status} in ${formatDuration(run.durationS)}`,
        );
        return { worker: this.name, instance: run, files, deliveries };
      }
      const result = await runTask(d.task, d.rid, this.#connect, opts);
      if (this.#handBack && signal?.aborted) return await this.#giveBack(job, token);
      await collect(files, result.outputFile);
      for (const i of result.instances ?? []) await collect(files, i.outputFile);
      if (result.kind === "root_refused") result.fix = this.#rootFix();
      this.#log(`${d.rid} ${result.status} in ${formatDuration(result.durationS)}`);
      return { worker: this.name, result, files, deliveries };
    } catch (e) {
      // Our own server went away (shutting down): not the task's fault, another worker takes it.
      if (e instanceof ServerLostError) return await this.#giveBack(job, token);
      throw e;
    } finally {
      this.#active.delete(jobId);
      if (d.task.saveOutput) await Deno.remove(outDir, { recursive: true }).catch(() => {});
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

/**
 * The fleet queue: `ccx stress --queue URL` puts a run's tasks on a BullMQ queue in Redis and
 * collects their results; `ccx worker` boxes take them (see `worker.ts`). BullMQ does the
 * delivery, the locks and the redelivery of a dead worker's tasks; this module names the jobs,
 * says what they carry, and turns what comes back into the same {@linkcode TestResult}s as a
 * local run.
 *
 * Keys: BullMQ's own, under the default `bull:` prefix (`bull:<queue>:…`, so a standard BullMQ
 * dashboard shows the queue), plus `ccx:fleet:<queue>:cancel:<run>` and the pub/sub channel
 * `ccx:fleet:<queue>:cancel` for Ctrl+C of a run, and `ccx:fleet:<queue>:job:<job>`, a hash a
 * worker keeps while the queue may not have heard the end of its run (Redis unreachable), and
 * `ccx:fleet:<queue>:alive:<worker>`, which a live worker renews every quarter lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runOnQueue } from "./queue.ts";
 * import { loadSuite } from "../stress/suite_load.ts";
 * // Needs a Redis server and `ccx worker`s taking from its queue, so the doc tests only type-check it.
 * Deno.test({ name: "runOnQueue (needs Redis and workers)", ignore: true }, async () => {
 *   const suite = await loadSuite("tasks/selftest.json");
 *   const results = await runOnQueue(suite.tasks, {
 *     url: "redis://127.0.0.1:6379",
 *     outDir: Deno.makeTempDirSync(),
 *     claude: suite.claude,
 *   });
 *   assert.equal(results.length, suite.tasks.length);
 * });
 * ```
 * @module
 */

import { join } from "node:path";
import { Queue, QueueEvents } from "bullmq";
import { closeWithin, connectRedis, redactUrl } from "../common/redis.ts";
import type { Redis } from "ioredis";
import {
  type InstanceRun,
  pickInstances,
  recordOutcome,
  type TaskOptions,
} from "../stress/task.ts";
import type { HistoryStore } from "../claude/history.ts";
import { resolveMarker } from "../stress/task_command.ts";
import { formatTimestamp, newRunId } from "../common/format.ts";
import type { SuiteTask } from "../stress/suite_model.ts";
import type { TestResult } from "../stress/report/model.ts";

/**
 * How long the coordinator waits for its queue and connections to close at the end of a
 * run before it disconnects them (see {@linkcode closeWithin}).
 */
const CLOSE_MS = 3000;

/**
 * Queue name used when none is given (`--queue-name`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_QUEUE_NAME, fleetKeys } from "./queue.ts";
 * assert.equal(DEFAULT_QUEUE_NAME, "ccx");
 * assert.equal(fleetKeys(DEFAULT_QUEUE_NAME).cancelChannel, "ccx:fleet:ccx:cancel");
 * ```
 */
export const DEFAULT_QUEUE_NAME = "ccx";

/**
 * What a worker needs of the coordinator's settings to run a task as `ccx stress` would.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FleetTaskSettings } from "./queue.ts";
 * const s: FleetTaskSettings = { patternMode: "all", timeoutScale: 1, claude: "claude", record: true };
 * assert.equal(JSON.parse(JSON.stringify(s)).claude, "claude"); // it travels in the job's JSON
 * ```
 */
export interface FleetTaskSettings {
  /** Whether all expected patterns must be found, or any one. */
  patternMode: "all" | "any";
  /** Multiplies every timeout. */
  timeoutScale: number;
  /** The Claude executable named by the suite (a worker's `--claude` wins). */
  claude: string;
  /** Whether workers record the run in the shared timeout history (the queue's Redis). */
  record: boolean;
  /** Run each task in its own workspace on the worker (default true). */
  workspace?: boolean;
  /** What the worker keeps of those workspaces (default `failed`). */
  keepWorkspaces?: TaskOptions["keepWorkspaces"];
  /** `--model`: the model of every Claude task. */
  model?: string;
  /** `--judge-model`: the model of rubric judges. */
  judgeModel?: string;
  /**
   * `ccx stress --queue … --sandbox`: the boxes of this run are sandboxes, so Claude tasks get
   * `IS_SANDBOX=1` on every worker (as with the worker's own `--sandbox`) for this run only.
   */
  sandbox?: boolean;
}

/**
 * The data of one queue job: a task of a run, or one instance of a concurrent task.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FleetJobData } from "./queue.ts";
 * const d: Partial<FleetJobData> = { runId: "20260101_000000_abc123", rid: "simple_1" };
 * assert.equal(d.rid, "simple_1");
 * ```
 */
export interface FleetJobData {
  /** The run the task belongs to; two runs on one queue never mix. */
  runId: string;
  /** Result id: the task id, `.rN` with `--repeat`. */
  rid: string;
  /** The task, as the suite loader made it. */
  task: SuiteTask;
  /** Set for one instance of a concurrent task (0-based). */
  instance?: number;
  /** Marker and timestamp shared by the instances of a concurrent task. */
  shared?: { marker: string; timestamp: string };
  /** How to run and judge it. */
  settings: FleetTaskSettings;
}

/**
 * What a worker hands back for a job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FleetJobResult } from "./queue.ts";
 * const r: Partial<FleetJobResult> = { worker: "box1:4242", files: {}, deliveries: 1 };
 * assert.equal(r.worker, "box1:4242");
 * ```
 */
export interface FleetJobResult {
  /** The worker that ran it (`--name`). */
  worker: string;
  /** The result of a whole task. */
  result?: TestResult;
  /** The run of one instance of a concurrent task. */
  instance?: InstanceRun;
  /** Saved outputs by file name: the coordinator writes them into its output directory. */
  files: Record<string, string>;
  /** How many times the queue gave the job to a worker (1 unless it was redelivered). */
  deliveries: number;
  /**
   * Why an earlier delivery did not end the job: `Redis was unreachable for 3.1 s (worker
   * box1's lock lasts 1.0 s); worker box1 stopped the task …`, or, with `kept`, why the result of
   * that run comes through a later delivery.
   */
  outage?: string;
  /** The result is that of the earlier delivery's run, handed back without running again. */
  kept?: boolean;
}

/**
 * What workers report through BullMQ job progress: who took the job, and output so far.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FleetProgress } from "./queue.ts";
 * const p: FleetProgress = { worker: "box1:4242", state: "output", bytes: 3, tail: "hi" };
 * assert.equal(p.state, "output");
 * ```
 */
export interface FleetProgress {
  /** The worker's name. */
  worker: string;
  /** `started` when a worker takes the job, `output` as it writes, `handed-back` on shutdown. */
  state: "started" | "output" | "handed-back";
  /** Bytes of output so far (`output`). */
  bytes?: number;
  /** The last line of output so far (`output`). */
  tail?: string;
}

/**
 * The Redis names ccx adds next to BullMQ's for a queue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fleetKeys } from "./queue.ts";
 * const keys = fleetKeys("ccx");
 * assert.equal(keys.cancelKey("run1"), "ccx:fleet:ccx:cancel:run1");
 * assert.equal(keys.alive("box1:4242"), "ccx:fleet:ccx:alive:box1:4242");
 * ```
 */
export function fleetKeys(queueName: string): {
  cancelChannel: string;
  cancelKey: (runId: string) => string;
  /** A hash kept for a job whose lock may run out: `done` (its result), `lost` (why stopped). */
  job: (jobId: string) => string;
  /** Set by a live worker, expiring after one lock period. */
  alive: (worker: string) => string;
} {
  const base = `ccx:fleet:${queueName}`;
  return {
    cancelChannel: `${base}:cancel`,
    cancelKey: (runId) => `${base}:cancel:${runId}`,
    job: (jobId) => `${base}:job:${jobId}`,
    alive: (worker) => `${base}:alive:${worker}`,
  };
}

/** BullMQ job ids may not contain `:`. */
function jobIdOf(runId: string, rid: string, instance?: number): string {
  const id = `${runId}.${rid}${instance === undefined ? "" : `.i${instance + 1}`}`;
  return id.replaceAll(":", "_");
}

/**
 * Checks a `--queue` URL: `redis://` or `rediss://`; the error names the flag and the URL
 * (password hidden).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkQueueUrl } from "./queue.ts";
 * checkQueueUrl("rediss://ci:secret@redis.lan:6380/0"); // fine: no error
 * assert.throws(
 *   () => checkQueueUrl("http://ci:secret@redis.lan:6380/0"),
 *   { message: "--queue: http://ci:***@redis.lan:6380/0 is not a redis:// or rediss:// URL (got http://)" },
 * );
 * ```
 */
export function checkQueueUrl(url: string, flag = "--queue"): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${flag}: not a URL: ${redactUrl(url)} (want redis://HOST:PORT or rediss://…)`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(
      `${flag}: ${redactUrl(url)} is not a redis:// or rediss:// URL (got ${u.protocol}//)`,
    );
  }
}

/**
 * Options of {@linkcode runOnQueue}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkQueueUrl, type QueueRunOptions } from "./queue.ts";
 * const o: QueueRunOptions = { url: "redis://127.0.0.1:6379", outDir: "out", claude: "claude" };
 * assert.doesNotThrow(() => checkQueueUrl(o.url));
 * ```
 */
export interface QueueRunOptions extends
  Pick<
    TaskOptions,
    | "patternMode"
    | "timeoutScale"
    | "lint"
    | "workspace"
    | "keepWorkspaces"
    | "model"
    | "judgeModel"
    | "onNotWritten"
    | "sandbox"
  > {
  /** `redis://` or `rediss://` URL of the queue's Redis. */
  url: string;
  /** Queue name (default {@linkcode DEFAULT_QUEUE_NAME}). */
  queueName?: string;
  /** Id of this run (default: a fresh one). */
  runId?: string;
  /** Run every task this many times (default 1). */
  repeat?: number;
  /** Where the output files the workers hand back go. */
  outDir: string;
  /** The suite's Claude executable (workers may override it). */
  claude: string;
  /** Whether runs are recorded in the timeout history at all (default true). */
  record?: boolean;
  /**
   * Record the runs here (`ccx stress --redis`), from the results the workers hand back.
   * Without it, the workers record them in the history in the queue's Redis.
   */
  history?: HistoryStore;
  /**
   * Aborting removes the run's waiting tasks and cancels its running ones on the workers;
   * what finished is still returned.
   */
  signal?: AbortSignal;
  /** How long, after an abort, to wait for canceled tasks to report (default 15000 ms). */
  cancelWaitMs?: number;
  /**
   * Called once the run's tasks are on the queue, with how many workers take from it now
   * (undefined when Redis does not let this user list its clients).
   */
  onReady?(workers: number | undefined): void;
  /** Called when a worker takes a task (its result id and the worker's name). */
  onStart?(id: string, worker: string): void;
  /** Called as a worker reports a task's output: its result id, bytes so far, the last line. */
  onOutput?(id: string, bytes: number, lastLine?: string): void;
  /** Called with each result as soon as it is known. */
  onFinish?(result: TestResult): void;
}

interface Pending {
  rid: string;
  /** The task's marker (concurrent tasks: its instances' markers start with it). */
  marker?: string;
  order: number;
  task: SuiteTask;
  instance?: number;
  workers: string[];
  stalled: boolean;
}

/** Most bytes of one output file a worker hands back (more is cut, with a note). */
export const MAX_HANDED_BACK_BYTES = 16 * 1024 * 1024;

/**
 * Runs tasks on the fleet: enqueues one job per task run (one per instance for concurrent
 * tasks, so instances spread over workers), follows the queue's events, writes the outputs the
 * workers hand back into `outDir`, and resolves with the results in suite order. A task that a
 * dead worker's lock expiry redelivered, or that a stopping worker handed back, is reported
 * once, its `rerun` naming both workers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runOnQueue } from "./queue.ts";
 * import { loadSuite } from "../stress/suite_load.ts";
 * // Needs a Redis server and `ccx worker`s taking from its queue, so the doc tests only type-check it.
 * Deno.test({ name: "runOnQueue with onStart (needs Redis and workers)", ignore: true }, async () => {
 *   const suite = await loadSuite("tasks/selftest.json");
 *   const ac = new AbortController(); // abort: cancel the run on every worker
 *   const started: string[] = [];
 *   const results = await runOnQueue(suite.tasks, {
 *     url: "redis://127.0.0.1:6379",
 *     outDir: Deno.makeTempDirSync(),
 *     claude: suite.claude,
 *     signal: ac.signal,
 *     onStart: (id, worker) => started.push(`${id} on ${worker}`),
 *   });
 *   assert.equal(started.length, results.length);
 * });
 * ```
 */
export async function runOnQueue(tasks: SuiteTask[], opts: QueueRunOptions): Promise<TestResult[]> {
  checkQueueUrl(opts.url);
  const queueName = opts.queueName ?? DEFAULT_QUEUE_NAME;
  const runId = opts.runId ?? newRunId();
  const keys = fleetKeys(queueName);
  const repeat = Math.max(1, opts.repeat ?? 1);
  const settings: FleetTaskSettings = {
    patternMode: opts.patternMode ?? "all",
    timeoutScale: opts.timeoutScale ?? 1,
    claude: opts.claude,
    record: (opts.record ?? true) && !opts.history,
    workspace: opts.workspace,
    keepWorkspaces: opts.keepWorkspaces,
    ...(opts.model ? { model: opts.model } : {}),
    ...(opts.judgeModel ? { judgeModel: opts.judgeModel } : {}),
    ...(opts.sandbox ? { sandbox: true } : {}),
  };
  await Deno.mkdir(opts.outDir, { recursive: true });

  // Jobs: one per task run, or one per instance of a concurrent task.
  const pending = new Map<string, Pending>();
  const jobs: { name: string; data: FleetJobData; opts: { jobId: string } }[] = [];
  const starts = new Map<string, number>();
  const instanceRuns = new Map<string, InstanceRun[]>();
  let order = 0;
  for (let r = 1; r <= repeat; r++) {
    for (const task of tasks) {
      const rid = repeat > 1 ? `${task.id}.r${r}` : task.id;
      const n = task.concurrent ? task.concurrent.instances : 0;
      const timestamp = formatTimestamp();
      const shared = n ? { marker: resolveMarker(task, timestamp), timestamp } : undefined;
      for (let i = 0; i < Math.max(1, n); i++) {
        const instance = n ? i : undefined;
        const jobId = jobIdOf(runId, rid, instance);
        pending.set(jobId, {
          rid,
          order,
          task,
          instance,
          marker: shared?.marker,
          workers: [],
          stalled: false,
        });
        jobs.push({
          name: instance === undefined ? rid : `${rid}.i${i + 1}`,
          data: { runId, rid, task, instance, shared, settings },
          opts: { jobId },
        });
      }
      if (n) instanceRuns.set(rid, []);
      order++;
    }
  }
  const results: (TestResult | undefined)[] = new Array(order);
  const recording: Promise<void>[] = [];

  const redis = await connectRedis(opts.url, { blocking: true });
  let queue: Queue | undefined;
  let events: QueueEvents | undefined;
  let eventsConnection: Redis | undefined;
  try {
    // Read the event stream from just before the first job is added: nothing is missed.
    const [secs, micros] = (await redis.time()).map(Number);
    const since = `${secs * 1000 + Math.floor(micros / 1000) - 1}-0`;
    queue = new Queue(queueName, {
      connection: redis,
      defaultJobOptions: {
        attempts: 1,
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 24 * 3600 },
      },
    });
    queue.on("error", () => {}); // reconnects are ioredis' business; errors surface on calls
    eventsConnection = redis.duplicate();
    events = new QueueEvents(queueName, {
      connection: eventsConnection,
      lastEventId: since,
      autorun: true,
    });
    events.on("error", () => {});
    await events.waitUntilReady();

    let finished = 0;
    let allDone!: () => void;
    const done = new Promise<void>((r) => allDone = r);
    let lastEvent = Date.now();
    const q = queue;

    const settle = async (jobId: string, value: FleetJobResult | undefined, failed?: string) => {
      const p = pending.get(jobId);
      if (!p) return;
      pending.delete(jobId);
      // BullMQ failed the job at its third stall (see worker.ts, maxStalledCount): every
      // worker that took it was lost mid-task, and none of them has the result.
      const gaveUp = !value && p.stalled && failed?.includes(STALL_LIMIT) === true;
      const worker = gaveUp
        ? [...new Set(p.workers)].join(", ") || "?"
        : value?.worker ?? p.workers.at(-1) ?? "?";
      // An output that cannot be written here (a full disk) leaves the verdict as it is.
      const saved = new Set<string>();
      for (const [name, text] of Object.entries(value?.files ?? {})) {
        const path = join(opts.outDir, name);
        try {
          await Deno.writeTextFile(path, text);
          saved.add(name);
        } catch (e) {
          await Deno.remove(path).catch(() => {});
          if (opts.onNotWritten) opts.onNotWritten(path, e as Error);
          else console.error(`ccx: output file ${path} not written: ${(e as Error).message}`);
        }
      }
      const local = (f?: string) => {
        const name = f?.split("/").pop();
        return name && saved.has(name) ? join(opts.outDir, name) : undefined;
      };
      // A result kept from a run whose answer the queue lost (Redis unreachable) ran once.
      const kept = value?.kept ? ` (fleet: ${value.outage})` : "";
      const rerun = kept
        ? undefined
        : gaveUp
        ? `${lostBy(p.workers)} each lost it mid-task (its lock expired)`
        : rerunNote(p, worker, value?.deliveries ?? 1, value?.outage);
      if (kept && value?.instance) value.instance.v.reason += kept;
      if (kept && value?.result) value.result.reason += kept;
      if (p.instance !== undefined) {
        const got = instanceRuns.get(p.rid)!;
        got.push(
          value?.instance
            ? { ...value.instance, outputFile: local(value.instance.outputFile) }
            : lostInstance(p, failed ?? "no result"),
        );
        if (got.length < p.task.concurrent!.instances) return;
        const t0 = starts.get(p.rid) ?? Date.now();
        const r = await pickInstances(
          p.task,
          got,
          opts,
          {
            id: p.rid,
            name: p.task.name,
            category: p.task.category,
            startedAt: t0,
          },
          (Date.now() - t0) / 1000,
          p.marker,
        );
        r.worker = [...new Set(jobsOfRid(p.rid).flatMap((x) => x.workers))].join(", ") ||
          worker;
        finish(p, r, rerun);
        return;
      }
      const r: TestResult = value?.result
        ? {
          ...value.result,
          outputFile: local(value.result.outputFile),
          instances: value.result.instances?.map((x) => ({
            ...x,
            outputFile: local(x.outputFile),
          })),
        }
        : {
          id: p.rid,
          name: p.task.name,
          category: p.task.category,
          startedAt: starts.get(p.rid) ?? Date.now(),
          status: "error",
          reason: `fleet: ${failed ?? "the job ended without a result"}`,
          durationS: 0,
          exitCode: null,
          patternsFound: [],
          patternsMissing: [...p.task.expectedPatterns],
          attempts: 1,
        };
      r.worker = worker;
      finish(p, r, rerun);
    };
    const finishedInstances = new Map<string, Pending[]>();
    const jobsOfRid = (rid: string) => finishedInstances.get(rid) ?? [];
    const finish = (p: Pending, r: TestResult, rerun: string | undefined) => {
      if (rerun) {
        r.rerun = rerun;
        r.reason += ` (rerun: ${rerun})`;
        r.attempts = Math.max(r.attempts, 2);
      }
      results[p.order] = r;
      finished++;
      if (opts.history && (opts.record ?? true) && !r.reason.startsWith("interrupted")) {
        for (const x of r.instances ?? [r]) {
          recording.push(recordOutcome(opts.history, p.task, x.durationS, x));
        }
      }
      opts.onFinish?.(r);
      if (finished === order) allDone();
    };
    const remember = (p: Pending) => {
      if (p.instance === undefined) return;
      const list = finishedInstances.get(p.rid) ?? [];
      list.push(p);
      finishedInstances.set(p.rid, list);
    };

    events.on("progress", ({ jobId, data }) => {
      lastEvent = Date.now();
      const p = pending.get(jobId);
      const d = data as Partial<FleetProgress>;
      if (!p || typeof d?.worker !== "string") return;
      if (d.state === "started") {
        if (p.workers.length === 0 && !starts.has(p.rid)) {
          starts.set(p.rid, Date.now());
          opts.onStart?.(p.rid, d.worker);
        }
        if (p.workers.at(-1) !== d.worker || p.stalled) p.workers.push(d.worker);
      } else if (d.state === "output" && typeof d.bytes === "number") {
        opts.onOutput?.(p.rid, d.bytes, d.tail);
      }
    });
    events.on("stalled", ({ jobId }) => {
      lastEvent = Date.now();
      const p = pending.get(jobId);
      if (p) p.stalled = true;
    });
    const onCompleted = ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) => {
      lastEvent = Date.now();
      const p = pending.get(jobId);
      if (!p) return;
      remember(p);
      const v = typeof returnvalue === "string" ? JSON.parse(returnvalue) : returnvalue;
      void settle(jobId, v as FleetJobResult);
    };
    const onFailed = ({ jobId, failedReason }: { jobId: string; failedReason: string }) => {
      lastEvent = Date.now();
      const p = pending.get(jobId);
      if (!p) return;
      remember(p);
      const why = failedReason === STALL_LIMIT
        ? `lost mid-task ${MAX_STALLED_COUNT + 1} times; the queue gave up on it (BullMQ: ` +
          `${STALL_LIMIT})`
        : `the job failed on the queue: ${failedReason}`;
      void settle(jobId, undefined, why);
    };
    events.on("completed", onCompleted);
    events.on("failed", onFailed);

    await q.addBulk(jobs);
    // Listing workers needs CLIENT LIST, which an ACL may forbid: then nobody knows.
    opts.onReady?.(await q.getWorkers().then((w) => w.length, () => undefined));

    // Should an event be missed (a dropped connection), ask the queue about quiet jobs.
    const sweep = setInterval(async () => {
      if (Date.now() - lastEvent < 3000) return;
      for (const jobId of [...pending.keys()].slice(0, 200)) {
        const job = await q.getJob(jobId).catch(() => undefined);
        if (!pending.has(jobId)) continue;
        if (!job) {
          onFailed({ jobId, failedReason: "the job vanished from the queue" });
        } else if (job.finishedOn && job.failedReason) {
          onFailed({ jobId, failedReason: job.failedReason });
        } else if (job.finishedOn) onCompleted({ jobId, returnvalue: job.returnvalue });
      }
    }, 3000);

    const abort = async () => {
      await redis.set(keys.cancelKey(runId), "1", "EX", 24 * 3600);
      await redis.publish(keys.cancelChannel, runId);
      // Waiting jobs are removed; running ones (locked) are canceled by their workers.
      for (const [jobId, p] of [...pending]) {
        const removed = await q.remove(jobId).catch(() => 0);
        if (removed && pending.has(jobId)) {
          pending.delete(jobId);
          if (p.instance !== undefined) {
            // A concurrent task with instances never run is left out, like any unstarted task.
            instanceRuns.delete(p.rid);
          }
        }
      }
      const left = () => [...pending.values()].some((p) => p.workers.length > 0);
      const deadline = Date.now() + (opts.cancelWaitMs ?? 15_000);
      while (left() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      allDone();
    };
    const onAbort = () => void abort().catch(() => allDone());
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await done;
      await Promise.all(recording);
    } finally {
      clearInterval(sweep);
      opts.signal?.removeEventListener("abort", onAbort);
    }
  } finally {
    // Bounded: just after an outage the events' connection may still be reconnecting, and
    // ioredis never ends such a client (the run would be over, its coordinator never exiting).
    const closing = (async () => {
      await events?.close().catch(() => {});
      await queue?.close().catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
    })();
    await closeWithin(closing, CLOSE_MS, [redis, ...eventsConnection ? [eventsConnection] : []]);
  }
  return results.filter((r): r is TestResult => r !== undefined);
}

/**
 * How many times a job may stall (its worker lost mid-task: the lock expired) and still be put
 * back on the queue; the next stall fails it, and the coordinator reports the task as an error.
 * The workers' BullMQ `maxStalledCount`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_STALLED_COUNT } from "./queue.ts";
 * assert.equal(MAX_STALLED_COUNT + 1, 3); // the third stall ends the task as an error
 * ```
 */
export const MAX_STALLED_COUNT = 2;

/** BullMQ's `failedReason` for a job that stalled more often than `maxStalledCount` allows. */
const STALL_LIMIT = "job stalled more than allowable limit";

/** `worker w1` or `workers w1, w2, w3`: the distinct names, in the order they took the job. */
function lostBy(workers: string[]): string {
  const names = [...new Set(workers)];
  if (names.length === 0) return "its workers";
  return `${names.length === 1 ? "worker" : "workers"} ${names.join(", ")}`;
}

/**
 * Says how a job came to run more than once, or undefined when it ran once; `outage` is the
 * word of the worker that stopped it (Redis unreachable), which beats guessing from events.
 */
function rerunNote(
  p: Pending,
  worker: string,
  deliveries: number,
  outage?: string,
): string | undefined {
  if (outage) return `${outage}; redelivered to ${worker}`;
  if (deliveries <= 1 && !p.stalled && new Set(p.workers).size <= 1) return undefined;
  const before = p.workers.filter((w) => w !== worker);
  const lost = before.length ? `worker ${[...new Set(before)].join(", ")}` : "a worker";
  const how = p.stalled ? "lost mid-task (its lock expired)" : "stopped and handed the task back";
  return `${lost} ${how}; redelivered to ${worker}`;
}

function lostInstance(p: Pending, why: string): InstanceRun {
  return {
    i: p.instance!,
    settings: {},
    text: "",
    durationS: 0,
    exitCode: null,
    v: {
      status: "error",
      reason: `fleet: ${why}`,
      patternsFound: [],
      patternsMissing: [...p.task.expectedPatterns],
    },
  };
}

/**
 * The reason of a task a worker took just as its run was canceled, and handed back without
 * starting it; the coordinator lists such a task as skipped, not as a result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CANCELED_BEFORE_START } from "./queue.ts";
 * assert.ok(CANCELED_BEFORE_START.startsWith("interrupted"));
 * ```
 */
export const CANCELED_BEFORE_START = "interrupted: the run was canceled before this task started";

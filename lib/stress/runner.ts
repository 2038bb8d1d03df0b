/**
 * The stress runner: deals suite task runs (each task `repeat` times) to one or more ccx
 * servers with bounded concurrency, keeps one connection per server and worker, and reruns a
 * task once on another live server when its server is lost. Running one task (its command, its
 * graders, its retries) is `task.ts`; judging one run is `judge.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { runTasks } from "./runner.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const suite = parseSuite({ tests: [ // or loadSuite("tasks/selftest.json")
 *   { id: "echo", command: "echo hello", expected_patterns: ["hello"] },
 *   { id: "exit", command: "exit 3" },
 * ] }, "inline");
 * const server = CcxServer.start({ port: 0, log: () => {} }); // or `ccx serve` boxes
 * const outDir = Deno.makeTempDirSync();
 * const results = await runTasks(suite.tasks, {
 *   servers: [{ url: server.url }],
 *   concurrency: 4,
 *   outDir,
 *   claude: "claude",
 *   keepWorkspaces: "never",
 * });
 * assert.deepEqual(results.map((r) => [r.id, r.status]), [["echo", "passed"], ["exit", "failed"]]);
 * await server.shutdown();
 * Deno.removeSync(outDir, { recursive: true });
 * ```
 * @module
 */

import { CcxClient } from "../client/client.ts";
import type { TestResult } from "./report/model.ts";
import type { SuiteTask } from "./suite_model.ts";
import { runTask, ServerLostError, type TaskOptions } from "./task.ts";

/** A server to run tasks on. */
export interface ServerTarget {
  /** WebSocket URL, e.g. `ws://127.0.0.1:8004/ws`. */
  url: string;
  /** Token, for servers that require one. */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
}

/** Options of {@linkcode runTasks}: how to schedule, and how to run each task. */
export interface RunnerOptions extends TaskOptions {
  /** Servers; tasks are dealt to them in turn. */
  servers: ServerTarget[];
  /** Tasks running at once (default 1). */
  concurrency?: number;
  /** Run every task this many times (default 1). */
  repeat?: number;
  /** Result ids not to run (already finished: `ccx stress --resume`). */
  skip?: Set<string>;
  /** Checked before each task starts; `true` starts no more (`--max-fail`). */
  stop?(): boolean;
  /** Called when a task run starts (its result id: the task id, `.rN` with `repeat`). */
  onStart?(id: string): void;
  /** Called with each result as soon as it is known. */
  onFinish?(result: TestResult): void;
}

/** Connections a worker keeps, one per server, reopened when lost. */
class Connections {
  #clients = new Map<number, Promise<CcxClient>>();
  constructor(private readonly servers: ServerTarget[]) {}

  async get(index: number): Promise<CcxClient> {
    const have = this.#clients.get(index);
    if (have) {
      const c = await have.catch(() => undefined);
      if (c && !c.closed) return c;
    }
    const s = this.servers[index];
    const p = CcxClient.connect(s.url, { token: s.token, ca: s.ca });
    this.#clients.set(index, p);
    try {
      return await p;
    } catch (e) {
      throw new ServerLostError(s.url, (e as Error).message);
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => {})));
  }
}

/** How long an abort waits for canceled jobs to end before dropping the connections. */
const ABORT_FALLBACK_MS = 10_000;

/** Which servers are alive; tasks go round-robin over the live ones. */
class Fleet {
  #dead = new Set<number>();
  #dealt = 0;
  constructor(readonly servers: ServerTarget[]) {}

  /** The next live server other than `except`, or undefined when none is left. */
  pick(except?: number): number | undefined {
    const n = this.servers.length;
    for (let k = 0; k < n; k++) {
      const i = this.#dealt++ % n;
      if (!this.#dead.has(i) && i !== except) return i;
    }
    return undefined;
  }

  markDead(i: number): void {
    this.#dead.add(i);
  }
}

/** One planned run of a task. */
export interface PlannedRun {
  /** The task. */
  task: SuiteTask;
  /** Its result id: the task id, or `<id>.r<N>` with `repeat`. */
  rid: string;
}

/**
 * Every run of a run: each task `repeat` times (rounds in suite order), with its result id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planRuns } from "./runner.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const s = parseSuite({ tests: [{ id: "a", command: "true" }, { id: "b", command: "true" }] }, "inline");
 * assert.deepEqual(planRuns(s.tasks, 2).map((p) => p.rid), ["a.r1", "b.r1", "a.r2", "b.r2"]);
 * assert.deepEqual(planRuns(s.tasks).map((p) => p.rid), ["a", "b"]);
 * ```
 */
export function planRuns(tasks: SuiteTask[], repeat = 1): PlannedRun[] {
  const n = Math.max(1, repeat);
  const out: PlannedRun[] = [];
  for (let r = 1; r <= n; r++) {
    for (const task of tasks) out.push({ task, rid: n > 1 ? `${task.id}.r${r}` : task.id });
  }
  return out;
}

/** Runs tasks and resolves with their results, in suite order. */
export async function runTasks(tasks: SuiteTask[], opts: RunnerOptions): Promise<TestResult[]> {
  if (opts.servers.length === 0) throw new Error("runTasks: no server to run on");
  const jobs = planRuns(tasks, opts.repeat)
    .filter((j) => !opts.skip?.has(j.rid))
    .map((j, order) => ({ ...j, order }));
  const results: (TestResult | undefined)[] = new Array(jobs.length);
  let next = 0;
  const fleet = new Fleet(opts.servers);
  await Deno.mkdir(opts.outDir, { recursive: true });
  const workers = Math.max(1, Math.min(opts.concurrency ?? 1, jobs.length));
  const connections: Connections[] = [];
  // Aborting cancels each running job (see runToEnd), so its output up to then is kept. Should a
  // server not answer, dropping the connections ends the jobs anyway.
  let fallback: ReturnType<typeof setTimeout> | undefined;
  const abort = () => {
    fallback = setTimeout(() => connections.forEach((c) => void c.closeAll()), ABORT_FALLBACK_MS);
  };
  opts.signal?.addEventListener("abort", abort, { once: true });
  try {
    await Promise.all(Array.from({ length: workers }, async () => {
      const conns = new Connections(opts.servers);
      connections.push(conns);
      try {
        while (next < jobs.length && !opts.signal?.aborted && !opts.stop?.()) {
          const j = jobs[next++];
          opts.onStart?.(j.rid);
          const result = await runWithFailover(j.task, j.rid, fleet, conns, opts);
          results[j.order] = result;
          opts.onFinish?.(result);
        }
      } finally {
        await conns.closeAll();
      }
    }));
  } finally {
    opts.signal?.removeEventListener("abort", abort);
    clearTimeout(fallback);
  }
  return results.filter((r): r is TestResult => r !== undefined);
}

/**
 * Runs a task on a live server; when that server is lost before the task ended, marks it dead
 * (it gets no more tasks) and reruns the task once on another live server. The result notes
 * the rerun; a task that cannot be rerun is an `error`, never `failed`.
 */
async function runWithFailover(
  task: SuiteTask,
  rid: string,
  fleet: Fleet,
  conns: Connections,
  opts: RunnerOptions,
): Promise<TestResult> {
  const t0 = performance.now();
  const startedAt = Date.now();
  let lost: ServerLostError | undefined;
  let lostOn: number | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = fleet.pick(lostOn);
    if (server === undefined) break;
    try {
      const r = await runTask(task, rid, () =>
        conns.get(server).then((client) => ({
          client,
          url: opts.servers[server].url,
        })), opts);
      if (lost) {
        r.rerun = `${lost.message}; rerun on ${opts.servers[server].url}`;
        r.reason += ` (rerun: ${r.rerun})`;
        r.attempts += 1;
        r.startedAt = startedAt;
        r.durationS = (performance.now() - t0) / 1000;
      }
      return r;
    } catch (e) {
      if (!(e instanceof ServerLostError)) throw e;
      fleet.markDead(server);
      lostOn = server;
      lost = lost ? new ServerLostError(e.url, `${e.why}, after ${lost.message} before it`) : e;
      if (opts.signal?.aborted) break;
    }
  }
  const why = opts.signal?.aborted
    ? "interrupted"
    : lost
    ? `${lost.message}; no live server left to rerun it on`
    : "no live server left: every --server was lost earlier in this run";
  return {
    id: rid,
    name: task.name,
    category: task.category,
    startedAt,
    status: "error",
    reason: why,
    durationS: (performance.now() - t0) / 1000,
    exitCode: null,
    patternsFound: [],
    patternsMissing: [...task.expectedPatterns],
    attempts: 1,
    rerun: lost ? lost.message : undefined,
  };
}

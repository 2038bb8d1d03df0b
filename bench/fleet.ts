/**
 * The fleet: a suite of trivial tasks through the Redis queue (`ccx worker` processes, the
 * coordinator `runOnQueue`) against the same suite through `--server` (`runTasks` over a
 * `ccx serve` process), at one and four at once; and how long a killed worker's task takes to
 * be picked up again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchFleet } from "./fleet.ts";
 * // A full benchmark run (a redis-server, workers, minutes of CPU): `deno task bench --only fleet`.
 * Deno.test({ name: "benchFleet, full size (a benchmark run)", ignore: true }, async () => {
 *   const section = await benchFleet({ tasks: 200 });
 *   assert.equal(section.id, "fleet");
 * });
 * ```
 * @module
 */

import { join } from "node:path";
import { runOnQueue } from "../lib/fleet/queue.ts";
import { runTasks } from "../lib/stress/runner.ts";
import { parseSuite } from "../lib/stress/suite_load.ts";
import type { SuiteTask } from "../lib/stress/suite_model.ts";
import { DEFAULT_LOCK_S } from "../lib/fleet/worker.ts";
import { check, fixed, progress, type Section } from "./report.ts";
import {
  endChild,
  FAKE_CLAUDE,
  freePort,
  ROOT,
  startServerProcess,
  waitForPort,
  which,
} from "./proc.ts";

/**
 * Options of {@linkcode benchFleet}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FleetOptions } from "./fleet.ts";
 * const o: FleetOptions = { tasks: 1000, workers: [1, 4] };
 * assert.deepEqual(o.workers, [1, 4]); // one run per worker count
 * ```
 */
export interface FleetOptions {
  /** Trivial tasks in the suite (default 1000). */
  tasks?: number;
  /** Worker counts (each worker runs one task at a time) and `--server` concurrencies (default [1, 4]). */
  workers?: number[];
  /** Lock period of the workers in the redelivery measurement (default the worker's default). */
  lockS?: number;
}

/**
 * One run of the suite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FleetRun } from "./fleet.ts";
 * const r: FleetRun = { how: "queue", parallel: 4, tasks: 1000, passed: 1000, wallMs: 9000 };
 * assert.equal(r.tasks / (r.wallMs / 1000), 1000 / 9); // tasks per second
 * ```
 */
export interface FleetRun {
  /** `queue` (workers) or `server` (`--server`). */
  how: "queue" | "server";
  /** Workers, or `--server` concurrency. */
  parallel: number;
  /** Tasks that ran. */
  tasks: number;
  /** Tasks that passed. */
  passed: number;
  /** Wall time of the run. */
  wallMs: number;
}

function trivialSuite(n: number): SuiteTask[] {
  return parseSuite(
    {
      tests: Array.from({ length: n }, (_, i) => ({
        id: `t${i + 1}`,
        command: `echo ok-${i + 1}`,
        expected_patterns: [`ok-${i + 1}`],
        save_output: false,
      })),
    },
    "fleet-bench",
    { claude: FAKE_CLAUDE },
  ).tasks;
}

/** A throwaway redis-server on a free loopback port. */
async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "ccx-bench-redis-" });
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForPort(port, 10_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await endChild(child);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

interface Worker {
  child: Deno.ChildProcess;
  log: () => string;
}

/** Starts `ccx worker` processes and waits until each takes tasks. */
async function startWorkers(url: string, n: number, args: string[] = []): Promise<Worker[]> {
  const out: Worker[] = [];
  for (let i = 0; i < n; i++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}main.ts`,
        "worker",
        "--name",
        `b${i + 1}`,
        "--no-history",
        ...args,
      ],
      env: { CCX_QUEUE: url },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let text = "";
    child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (s) => void (text += s) }),
    ).catch(() => {});
    out.push({ child, log: () => text });
  }
  const deadline = Date.now() + 60_000;
  while (!out.every((w) => w.log().includes("taking tasks"))) {
    if (Date.now() > deadline) throw new Error("workers did not start");
    await new Promise((r) => setTimeout(r, 20));
  }
  return out;
}

async function stopWorkers(ws: Worker[]): Promise<void> {
  await Promise.all(ws.map((w) => endChild(w.child, { graceMs: 3000 })));
}

/**
 * Seconds from `kill -9` of the worker running a task to another worker starting it again.
 */
async function redelivery(url: string, lockS: number, dir: string): Promise<number> {
  const go = join(dir, "go");
  const starts = join(dir, "starts");
  const [task] = parseSuite(
    {
      tests: [{
        id: "held",
        command: `echo x >> '${starts}'; while [ ! -e '${go}' ]; do sleep 0.02; done; echo held-ok`,
        expected_patterns: ["held-ok"],
        save_output: false,
      }],
    },
    "fleet-bench",
    { claude: FAKE_CLAUDE },
  ).tasks;
  const workers = await startWorkers(url, 2, ["--lock-s", String(lockS), "--queue-name", "redo"]);
  try {
    let first = "";
    const run = runOnQueue([task], {
      url,
      queueName: "redo",
      outDir: join(dir, "redo"),
      claude: FAKE_CLAUDE,
      record: false,
      onStart: (_id, w) => first = w,
    });
    const lines = () => Deno.readTextFile(starts).then((t) => t.split("\n").length - 1, () => 0);
    // The worker says `started` before the command runs: wait for the command itself.
    while (!first || await lines() < 1) await new Promise((r) => setTimeout(r, 5));
    const victim = workers[Number(first.slice(1)) - 1];
    victim.child.kill("SIGKILL");
    const t0 = performance.now();
    await victim.child.status;
    const deadline = Date.now() + lockS * 10_000 + 30_000;
    while (await lines() < 2) {
      if (Date.now() > deadline) throw new Error("the killed worker's task was not taken again");
      await new Promise((r) => setTimeout(r, 5));
    }
    const s = (performance.now() - t0) / 1000;
    await Deno.writeTextFile(go, "");
    const [r] = await run;
    if (r?.status !== "passed" || !r.rerun) throw new Error(`redelivered task: ${r?.reason}`);
    return s;
  } finally {
    await Deno.writeTextFile(go, "").catch(() => {});
    await stopWorkers(workers);
  }
}

/**
 * Figure 6: the fleet queue against `--server`. Targets: queue overhead per task under 20 ms
 * with 4 workers; a killed worker's task picked up within 1.5 × the lock period.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchFleet } from "./fleet.ts";
 * // Starts its own redis-server (it must be installed) and workers; a smoke-size run.
 * const section = await benchFleet({ tasks: 4, workers: [1], lockS: 1 });
 * assert.equal(section.id, "fleet");
 * assert.ok(section.checks.length > 0);
 * ```
 */
export async function benchFleet(opts: FleetOptions = {}): Promise<Section> {
  if (!which("redis-server")) {
    throw new Error("redis-server is not installed (apt-get install redis-server)");
  }
  const n = opts.tasks ?? 1000;
  const levels = opts.workers ?? [1, 4];
  const lockS = opts.lockS ?? DEFAULT_LOCK_S;
  const tasks = trivialSuite(n);
  const redis = await startRedis();
  const tmp = await Deno.makeTempDir({ prefix: "ccx-bench-fleet-" });
  const runs: FleetRun[] = [];
  let redeliveryS = NaN;
  try {
    const server = await startServerProcess(["--max-jobs-per-session", "64"]);
    try {
      for (const c of levels) {
        progress(`fleet: ${n} trivial tasks through --server, concurrency ${c}`);
        const t0 = performance.now();
        const results = await runTasks(tasks, {
          servers: [{ url: server.url }],
          concurrency: c,
          outDir: join(tmp, `server${c}`),
          claude: FAKE_CLAUDE,
          workspace: false,
        });
        runs.push({
          how: "server",
          parallel: c,
          tasks: results.length,
          passed: results.filter((r) => r.status === "passed").length,
          wallMs: performance.now() - t0,
        });
      }
    } finally {
      await server.stop();
    }
    for (const c of levels) {
      progress(`fleet: ${n} trivial tasks through the queue, ${c} worker(s)`);
      const workers = await startWorkers(redis.url, c, ["--queue-name", `q${c}`]);
      try {
        const t0 = performance.now();
        const results = await runOnQueue(tasks, {
          url: redis.url,
          queueName: `q${c}`,
          outDir: join(tmp, `queue${c}`),
          claude: FAKE_CLAUDE,
          record: false,
          workspace: false,
        });
        runs.push({
          how: "queue",
          parallel: c,
          tasks: results.length,
          passed: results.filter((r) => r.status === "passed").length,
          wallMs: performance.now() - t0,
        });
      } finally {
        await stopWorkers(workers);
      }
    }
    progress(`fleet: redelivery of a killed worker's task (lock ${lockS} s)`);
    redeliveryS = await redelivery(redis.url, lockS, tmp);
  } finally {
    await redis.stop();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }

  const serverAt = (c: number) => runs.find((r) => r.how === "server" && r.parallel === c);
  const rows = runs.map((r) => {
    const base = serverAt(r.parallel);
    const extra = r.how === "queue" && base ? (r.wallMs - base.wallMs) / r.tasks : undefined;
    return [
      r.how === "queue" ? `queue, ${r.parallel} worker(s)` : `--server, concurrency ${r.parallel}`,
      `${r.passed}/${r.tasks}`,
      fixed(r.wallMs / 1000, 2),
      fixed(r.wallMs / r.tasks, 2),
      extra === undefined ? "-" : fixed(extra, 2),
    ];
  });
  const checks = runs.filter((r) => r.how === "queue").map((r) => {
    const base = serverAt(r.parallel);
    const extra = base ? (r.wallMs - base.wallMs) / r.tasks : NaN;
    return check(
      `queue overhead per task over --server, ${r.parallel} worker(s)`,
      `${fixed(extra, 2)} ms`,
      "< 20 ms",
      r.passed === r.tasks && Number.isFinite(extra) ? extra < 20 : null,
    );
  });
  checks.push(check(
    `killed worker's task picked up again (lock ${lockS} s)`,
    `${fixed(redeliveryS, 2)} s`,
    `≤ ${fixed(lockS * 1.5, 1)} s (1.5 × lock)`,
    Number.isFinite(redeliveryS) ? redeliveryS <= lockS * 1.5 : null,
  ));
  const notes = [
    "trivial task: `echo ok-N`, pattern ok-N, no output file, no workspace; each worker and " +
    "the --server process are separate `deno run -A main.ts` processes on this machine, " +
    "each worker running one task at a time; the coordinator is runOnQueue in this process",
    "queue extra/task = (queue wall − --server wall at the same parallelism) / tasks",
    "redelivery: one task held open on one of two workers, that worker killed with SIGKILL; " +
    "time from the kill to the task's command starting on the other worker",
  ];
  for (const r of runs.filter((r) => r.passed !== r.tasks)) {
    notes.push(
      `PROBLEM: ${r.how} x${r.parallel}: ${r.tasks - r.passed} of ${n} tasks did not pass`,
    );
  }
  return {
    id: "fleet",
    title: `6. Fleet: ${n} trivial tasks through the Redis queue vs --server`,
    columns: ["how", "passed", "wall s", "wall/task ms", "queue extra/task ms"],
    rows,
    checks,
    notes,
    data: { tasks: n, runs, lockS, redeliveryS },
  };
}

/**
 * Stress runner overhead: what `runTasks` (lib/stress/runner.ts) adds on top of the
 * jobs themselves, for a 50-task suite of ~200 ms stand-in Claude calls, at
 * concurrency 1 and 10, next to the seed runner's fixed 1.5 s of sleeps per
 * task.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchStress } from "./stress.ts";
 * // A full benchmark run: `deno task bench --only stress`.
 * Deno.test({ name: "benchStress, full size (a benchmark run)", ignore: true }, async () => {
 *   const section = await benchStress({ tasks: 50, concurrency: [1, 10] });
 *   assert.equal(section.id, "stress");
 * });
 * ```
 * @module
 */

import { CcxServer } from "../lib/serve/server.ts";
import { runTasks } from "../lib/stress/runner.ts";
import { buildTaskCommand } from "../lib/stress/task_command.ts";
import { parseSuite } from "../lib/stress/suite_load.ts";
import type { SuiteTask } from "../lib/stress/suite_model.ts";
import { check, fixed, mean, median, progress, type Section } from "./report.ts";
import { FAKE_CLAUDE, STAND_IN_ENV } from "./proc.ts";

/**
 * Options of {@linkcode benchStress}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { StressOptions } from "./stress.ts";
 * const o: StressOptions = { tasks: 50, concurrency: [1, 10], callMs: 200 };
 * assert.equal(o.concurrency!.length, 2); // one run at each
 * ```
 */
export interface StressOptions {
  /** Tasks in the suite (default 50). */
  tasks?: number;
  /** Concurrency levels to run the suite at (default [1, 10]). */
  concurrency?: number[];
  /** Wall time one stand-in call is tuned to (default 200 ms). */
  callMs?: number;
}

/** The seed runner's fixed cost per task: 0.5 s after each completion + 1 s between tests. */
const SEED_SLEEP_MS = 1500;

/** A seed-schema suite of `n` arithmetic questions, each with `[[delay:MS]]`. */
function buildSuite(n: number, delayMs: number): SuiteTask[] {
  const tasks = Array.from({ length: n }, (_, i) => {
    const a = i + 2;
    return {
      id: `bench_${String(i + 1).padStart(2, "0")}`,
      name: `What is ${a}+2? (stand-in, ${delayMs} ms per line)`,
      natural_language_request: `What is ${a}+2? [[delay:${delayMs}]]`,
      verification: { timeout: 60, stall_timeout: 30, expected_patterns: [String(a + 2)] },
    };
  });
  return parseSuite({ categories: { bench: { tasks } } }, "bench", { claude: FAKE_CLAUDE })
    .tasks;
}

/** Wall time (ms) and stdout line count of one stand-in call for `task`, run directly. */
async function standIn(task: SuiteTask): Promise<{ ms: number; lines: number }> {
  const built = buildTaskCommand(task, { marker: "BENCH", timestamp: "20250101_000000" }, {
    claude: FAKE_CLAUDE,
  });
  const argv = built.argv!;
  const t0 = performance.now();
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { IS_SANDBOX: "1", ...STAND_IN_ENV },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  const text = new TextDecoder().decode(out.stdout);
  return { ms, lines: text.split("\n").filter((l) => l.trim() !== "").length };
}

async function measureCall(task: SuiteTask, runs: number): Promise<{ ms: number; lines: number }> {
  const all = [];
  for (let i = 0; i < runs; i++) all.push(await standIn(task));
  return { ms: median(all.map((r) => r.ms)), lines: all[0].lines };
}

/**
 * One run of the suite at one concurrency.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { StressRun } from "./stress.ts";
 * const r: StressRun = {
 *   concurrency: 1, tasks: 50, passed: 50, wallMs: 11000, jobMs: [], overheadMsPerTask: 5,
 * };
 * assert.equal(r.passed / r.tasks, 1);
 * ```
 */
export interface StressRun {
  /** Tasks running at once. */
  concurrency: number;
  /** Tasks that ran. */
  tasks: number;
  /** Tasks that passed (all should: the suite is made to pass). */
  passed: number;
  /** Wall time of `runTasks`. */
  wallMs: number;
  /** Each job's duration as the server saw it (started log line to completed log line). */
  jobMs: number[];
  /** (wall − Σ job durations / concurrency) / tasks. */
  overheadMsPerTask: number;
}

/**
 * Figure 5: runner overhead per task. Target: under 20 ms a task.
 *
 * The suite (seed schema, built in memory) runs the stand-in Claude
 * (tests/fixtures/claude) with `[[delay:MS]]` tuned so one call takes about
 * `callMs`, through `runTasks` and an in-process server, with a temporary
 * output directory and no history. Job durations come from the server's
 * start/end log lines, timestamped as they are emitted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchStress } from "./stress.ts";
 * const section = await benchStress({ tasks: 4, concurrency: [1, 2], callMs: 20 }); // smoke size
 * assert.equal(section.id, "stress");
 * ```
 */
export async function benchStress(opts: StressOptions = {}): Promise<Section> {
  const n = opts.tasks ?? 50;
  const levels = opts.concurrency ?? [1, 10];
  const target = opts.callMs ?? 200;

  progress("stress: timing one stand-in call");
  const [probe] = buildSuite(1, 0);
  const base = await measureCall(probe, 3);
  const delay = Math.max(0, Math.round((target - base.ms) / Math.max(1, base.lines)));
  const tuned = await measureCall(buildSuite(1, delay)[0], 3);

  const starts = new Map<string, number>();
  let jobMs: number[] = [];
  const server = CcxServer.start({
    port: 0,
    heartbeatS: 0,
    // Jobs take the key from the server's environment, as from an operator's.
    env: { ...Deno.env.toObject(), ...STAND_IN_ENV },
    log: (line) => {
      const now = performance.now();
      const m = line.match(/^job (\S+) (\S+)/);
      if (!m) return;
      if (m[2] === "started") starts.set(m[1], now);
      else if (starts.has(m[1])) {
        jobMs.push(now - starts.get(m[1])!);
        starts.delete(m[1]);
      }
    },
  });
  const runs: StressRun[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "ccx-bench-stress-" });
  try {
    const tasks = buildSuite(n, delay);
    for (const c of levels) {
      progress(`stress: ${n} tasks at concurrency ${c}`);
      jobMs = [];
      const t0 = performance.now();
      const results = await runTasks(tasks, {
        servers: [{ url: server.url }],
        concurrency: c,
        outDir: `${tmp}/c${c}`,
        claude: FAKE_CLAUDE,
        sandbox: true,
      });
      const wallMs = performance.now() - t0;
      const sum = jobMs.reduce((a, b) => a + b, 0);
      runs.push({
        concurrency: c,
        tasks: results.length,
        passed: results.filter((r) => r.status === "passed").length,
        wallMs,
        jobMs,
        overheadMsPerTask: (wallMs - sum / c) / results.length,
      });
    }
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }

  const rows = runs.map((r) => [
    String(r.concurrency),
    `${r.passed}/${r.tasks}`,
    fixed(r.wallMs / 1000, 2),
    fixed(r.wallMs / r.tasks, 1),
    fixed(mean(r.jobMs), 1),
    fixed(r.overheadMsPerTask, 1),
    r.concurrency === 1 ? String(SEED_SLEEP_MS) : "-",
  ]);
  const notes = [
    `stand-in call measured directly (Deno.Command, median of 3): ${fixed(base.ms, 0)} ms ` +
    `without delay, ${base.lines} output lines; with [[delay:${delay}]] ${fixed(tuned.ms, 0)} ms`,
    "overhead/task = (wall − Σ job durations / concurrency) / tasks; job duration = the " +
    "server's job start to completion (in-process server, log lines timestamped)",
    `seed fixed cost: ${SEED_SLEEP_MS} ms of sleeps per task (0.5 s after each completion + ` +
    "1 s between tests, seeds/000), on top of its own process and connection setup; it runs " +
    "tasks one at a time",
    "wall/task at concurrency > 1 also counts the last round's stragglers; on 2 cores ten " +
    "concurrent stand-ins (each a Deno process) also stretch the job durations",
  ];
  const failed = runs.filter((r) => r.passed !== r.tasks);
  for (const r of failed) {
    notes.push(`PROBLEM: concurrency ${r.concurrency}: ${r.tasks - r.passed} tasks did not pass`);
  }
  for (const r of runs.filter((r) => r.jobMs.length !== r.tasks)) {
    notes.push(
      `PROBLEM: concurrency ${r.concurrency}: the server's log gave ${r.jobMs.length} job ` +
        `durations for ${r.tasks} tasks (has its "job ID started/STATUS" line changed?)`,
    );
  }
  return {
    id: "stress",
    title: `5. Stress runner overhead: ${n} tasks of ~${target} ms stand-in Claude calls`,
    columns: [
      "concurrency",
      "passed",
      "wall s",
      "wall/task ms",
      "job mean ms",
      "overhead/task ms",
      "seed sleeps/task ms",
    ],
    rows,
    checks: runs.map((r) =>
      check(
        `runner overhead per task, concurrency ${r.concurrency}`,
        `${fixed(r.overheadMsPerTask, 1)} ms`,
        "< 20 ms",
        r.passed === r.tasks ? r.overheadMsPerTask < 20 : null,
      )
    ),
    notes,
    data: {
      standInMs: base.ms,
      standInLines: base.lines,
      delayMs: delay,
      tunedCallMs: tuned.ms,
      seedSleepMsPerTask: SEED_SLEEP_MS,
      runs,
    },
  };
}

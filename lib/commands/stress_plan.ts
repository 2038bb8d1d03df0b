/**
 * `ccx stress`, first step: the flags, the suite and any earlier run resolved into a
 * {@linkcode StressPlan}, before anything runs or connects.
 *
 * @module
 */

import { hostname, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { KeepPolicy } from "../serve/workspace.ts";
import { buildTaskCommand, resolveMarker } from "../stress/task_command.ts";
import { filterTasks } from "../stress/task_filter.ts";
import { loadSuite } from "../stress/suite_load.ts";
import { type Suite, SuiteError, type SuiteTask } from "../stress/suite_model.ts";
import { withCheckFiles } from "../stress/check_files.ts";
import { graderCounts, graderLines } from "../stress/grade.ts";
import { VERSION } from "../common/protocol.ts";
import { findLastRun, findLastRunOf, readRun, reportPathOf, RUNS_DIR } from "../stress/rerun.ts";
import { serverUrl } from "../stress/preflight.ts";
import { type PlannedRun, planRuns } from "../stress/runner.ts";
import type { RunMeta, RunReport, TestResult } from "../stress/report/model.ts";
import { formatTimestamp, newRunId, plural } from "../common/format.ts";

/** Options of `ccx stress`. */
export interface StressOptions {
  /** Path of the suite file (default: the resumed run's, else the shipped suite). */
  suite?: string;
  /** Server URLs; without any, an in-process server on an ephemeral loopback port. */
  servers?: string[];
  /** Token for the servers. */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
  /** Tasks running at once (default 1). */
  concurrency?: number;
  /** Runs of every task (default 1). */
  repeat?: number;
  /** Only these categories (case-insensitive). */
  categories?: string[];
  /** Only tasks whose id or name matches this regular expression (case-insensitive). */
  filter?: string;
  /** Leave out tasks whose id or name matches any of these regular expressions. */
  exclude?: string[];
  /** Continue the run whose directory (or report.json) this is, without rerunning what finished. */
  resume?: string;
  /** Rerun only the failed and errored tasks of the last run. */
  lastFailed?: boolean;
  /** Print the tasks and their commands, run nothing. */
  list?: boolean;
  /** Start no more tasks once this many failed or errored. */
  maxFail?: number;
  /** Output directory for task outputs (default test_outputs/<run-id>). */
  out?: string;
  /** Path of the JSON report (default `<out>/report.json`). */
  json?: string;
  /** Path of the JUnit XML report. */
  junit?: string;
  /** Path of the HTML report. */
  html?: string;
  /** Whether all expected patterns must be found, or any (default all). */
  patternMode?: "all" | "any";
  /** Required ratio (default 10). */
  threshold?: number;
  /** A factor, or "auto" (×3 when the 1-minute load average exceeds 14). */
  timeoutScale?: number | "auto";
  /** The Claude executable (default `claude` on PATH). */
  claude?: string;
  /** Shared history (Redis URL); default the local SQLite file. */
  redisUrl?: string;
  /** Do not record runs in the timeout history. */
  noHistory?: boolean;
  /** Run on the fleet: the `redis://` or `rediss://` URL of the queue `ccx worker`s take from. */
  queue?: string;
  /** Queue name (default `ccx`). */
  queueName?: string;
  /** Run tasks in the server's directory instead of a workspace each. */
  noWorkspace?: boolean;
  /** What servers keep of task workspaces (default `failed`). */
  keepWorkspaces?: KeepPolicy;
  /** Only check the suite: print problems and warnings, run nothing. */
  validate?: boolean;
  /** `--sandbox` (or `CCX_SANDBOX=1`): Claude tasks get `IS_SANDBOX=1` (root on a sandbox box). */
  sandbox?: boolean;
  /** `--model`: the model of every Claude task. */
  model?: string;
  /** `--judge-model`: the model of rubric judges (default: the CLI's). */
  judgeModel?: string;
  /** `--baseline PATH|last`: compare with an earlier run (a report.json or a run directory). */
  baseline?: string;
  /** `--fail-on-regression`: exit 1 when a task that passed in the baseline does not now. */
  failOnRegression?: boolean;
  /** `--page`: print the URL of the web page that shows the run live. */
  page?: boolean;
  /** `--strict`: any failed or errored task exits 1, whatever the ratio. */
  strict?: boolean;
  /** `--no-api-check`: do not check that the Claude API endpoint accepts a connection. */
  noApiCheck?: boolean;
  /**
   * `--progress-every S`: on a non-terminal, a line for every running task each S seconds
   * (default 30; 0 never).
   */
  progressEveryS?: number;
  /** Whether ccx runs as root (default: `Deno.uid() === 0`); the root pre-flight reads it. */
  isRoot?: boolean;
  /**
   * The command line after `stress`, as given: the rerun hints repeat its flags and the
   * reports record it (default: `Deno.args`).
   */
  args?: readonly string[];
}

/**
 * What a run of `ccx stress` will do, resolved from its {@linkcode StressOptions} before anything
 * runs: the suite, the tasks left after the filters, every task run planned and those still to
 * run, where the outputs and reports go, and the figures the reports record.
 */
export interface StressPlan {
  /** The options as given; the run and the summary read the flags that need no resolving. */
  opts: StressOptions;
  /** The suite, loaded for the resolved `--claude`. */
  suite: Suite;
  /** The tasks that run: after `--category`/`--filter`/`--exclude` and `--last-failed`, with their hidden tests. */
  tasks: SuiteTask[];
  /** Every task run of the run (each task `--repeat` times), in order. */
  planned: PlannedRun[];
  /** The planned runs still to run: all of them, unless `--resume` found some finished. */
  toRun: PlannedRun[];
  /** The results `--resume` keeps from the run it continues, by result id (empty otherwise). */
  done: ReadonlyMap<string, TestResult>;
  /** The run `--resume` continues, if any. */
  resumed?: RunReport;
  /** The run's id (the resumed run's own, else a new one). */
  runId: string;
  /** Where the task outputs go (`--out`, the resumed run's directory, else `test_outputs/<run-id>`). */
  outDir: string;
  /** The path of the JSON report (`--json`, else `<outDir>/report.json`). */
  jsonPath: string;
  /** The required ratio (`--threshold`, default 10). */
  threshold: number;
  /** The factor every timeout is multiplied by (`--timeout-scale`, resolved). */
  scale: number;
  /** The `--baseline` run to compare with, read before this run starts. */
  baseline?: { report: RunReport; path: string };
  /** What the reports record of the run: ccx version, host, command line, suite hash, models. */
  meta: RunMeta;
}

/** The suite `ccx stress` runs when given none. */
export const DEFAULT_SUITE = "tasks/unified_stress_test_tasks.json";

/**
 * The factor `--timeout-scale auto` uses: 3 when the 1-minute load average
 * exceeds 14 (the seed's advice), else 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { autoTimeoutScale } from "./stress.ts";
 * assert.equal(autoTimeoutScale(20), 3);
 * assert.equal(autoTimeoutScale(2), 1);
 * ```
 */
export function autoTimeoutScale(load1 = loadavg()[0]): number {
  return load1 > 14 ? 3 : 1;
}

/** `sha256:<hex>` of the suite file's bytes, or `undefined` when it cannot be read. */
async function suiteHash(path: string): Promise<string | undefined> {
  try {
    const bytes = await Deno.readFile(path);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  } catch {
    return undefined;
  }
}
/**
 * Resolves the options of `ccx stress` into a {@linkcode StressPlan}: checks the flags that go
 * together (or not), reads the run `--resume` or `--last-failed` continues, loads and filters the
 * suite, reads the hidden tests and the `--baseline`. Nothing runs and nothing connects. Resolves
 * with the exit code instead when the command ends here, having said why: 2 on bad input (a flag,
 * the suite, the earlier run or the baseline); 0 after `--validate` or `--list` printed what they
 * print, or when `--last-failed` finds nothing to rerun.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planStress } from "./stress_plan.ts";
 * const dir = Deno.makeTempDirSync();
 * const suite = `${dir}/suite.json`;
 * Deno.writeTextFileSync(suite, JSON.stringify({
 *   tests: [{ id: "hello", command: "echo hello", expected_patterns: ["hello"] }],
 * }));
 * const plan = await planStress({ suite, repeat: 2, out: `${dir}/out` });
 * assert.ok(typeof plan === "object");
 * assert.deepEqual(plan.toRun.map((p) => p.rid), ["hello.r1", "hello.r2"]);
 * assert.equal(plan.jsonPath, `${dir}/out/report.json`);
 * assert.equal(plan.threshold, 10);
 * // Bad input ends the command here, with exit 2 (stderr says which flag).
 * assert.equal(await planStress({ suite, filter: "no-such-task" }), 2);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function planStress(opts: StressOptions): Promise<StressPlan | number> {
  try {
    for (const url of opts.servers ?? []) serverUrl(url);
  } catch (e) {
    console.error(`ccx stress: ${(e as Error).message}`);
    return 2;
  }
  // In-process jobs run in workspaces of their own, where a relative --claude path (the README's
  // `--claude tests/fixtures/claude`) would name nothing: it means a path from here.
  const claude = opts.claude?.includes("/") && !opts.servers?.length
    ? resolve(opts.claude)
    : opts.claude;
  if (opts.failOnRegression && opts.baseline === undefined) {
    console.error(
      "ccx stress: --fail-on-regression needs --baseline PATH|last: there is nothing to regress from",
    );
    return 2;
  }
  if (opts.resume !== undefined && opts.lastFailed) {
    console.error("ccx stress: --resume and --last-failed do not go together: pick one");
    return 2;
  }
  let previous: RunReport | undefined;
  let previousPath: string | undefined;
  if (opts.resume !== undefined || opts.lastFailed) {
    const flag = opts.resume !== undefined ? "--resume" : "--last-failed";
    previousPath = opts.resume ?? await findLastRun();
    if (previousPath === undefined) {
      console.error(`ccx stress: --last-failed: no previous run under ${RUNS_DIR}/`);
      return 2;
    }
    try {
      previous = await readRun(previousPath);
    } catch (e) {
      console.error(`ccx stress: ${flag}: ${(e as Error).message}`);
      return 2;
    }
  }
  const suitePath = opts.suite ?? previous?.suite ?? DEFAULT_SUITE;
  let suite;
  try {
    suite = await loadSuite(suitePath, { claude });
  } catch (e) {
    if (e instanceof SuiteError) {
      console.error(e.message);
      return 2;
    }
    if (e instanceof Deno.errors.NotFound) {
      console.error(`ccx stress: suite not found: ${suitePath}`);
      return 2;
    }
    throw e;
  }
  for (const w of suite.warnings ?? []) {
    console.error(`ccx stress: warning: ${suitePath}: ${w.path}: ${w.message}`);
  }
  if (opts.validate) {
    const cats = new Set(suite.tasks.map((t) => t.category)).size;
    console.log(
      `${suitePath}: valid, ${plural(suite.tasks.length, "task")} in ${cats} categor${
        cats === 1 ? "y" : "ies"
      }${graderCounts(suite.tasks)}${
        suite.warnings?.length ? `, ${plural(suite.warnings.length, "warning")}` : ""
      }`,
    );
    return 0;
  }
  let tasks;
  try {
    tasks = filterTasks(suite, {
      categories: opts.categories,
      filter: opts.filter,
      exclude: opts.exclude,
    });
  } catch (e) {
    console.error(`ccx stress: ${(e as Error).message}`);
    return 2;
  }
  if (tasks.length === 0) {
    console.error("ccx stress: no task matches --category/--filter/--exclude");
    return 2;
  }
  if (opts.lastFailed && previous) {
    const bad = new Set(
      previous.results.filter((r) => r.status !== "passed").map((r) => r.id.replace(/\.r\d+$/, "")),
    );
    tasks = tasks.filter((t) => bad.has(t.id));
    if (tasks.length === 0) {
      console.log(`ccx stress: no failed or errored task in the last run (${previousPath}).`);
      return 0;
    }
  }
  // Hidden tests are read here and shipped with each task to the server that runs it.
  try {
    tasks = await withCheckFiles(tasks);
  } catch (e) {
    console.error(`ccx stress: ${(e as Error).message}`);
    return 2;
  }
  const planned = planRuns(tasks, opts.repeat);
  if (opts.list) {
    const ts = formatTimestamp();
    for (const { task, rid } of planned) {
      const built = buildTaskCommand(
        task,
        { marker: resolveMarker(task, ts), timestamp: ts, model: opts.model },
        { claude: suite.claude },
      );
      console.log(`${rid}  [${task.category}]  ${built.display}`);
      for (const line of graderLines(task)) console.log(`    ${line}`);
    }
    console.log(`${planned.length} task runs from ${suitePath}`);
    return 0;
  }
  const threshold = opts.threshold ?? 10;
  const resumed = opts.resume !== undefined ? previous : undefined;
  const runId = resumed?.runId || newRunId();
  const outDir = opts.out ??
    (resumed && previousPath ? dirname(await reportPathOf(previousPath)) : join(RUNS_DIR, runId));
  const jsonPath = opts.json ?? join(outDir, "report.json");
  // What finished stays; what was cut off by the interruption runs again.
  const done = new Map(
    (resumed?.results ?? []).filter((r) => !(r.status === "error" && r.reason === "interrupted"))
      .map((r) => [r.id, r]),
  );
  const toRun = planned.filter((p) => !done.has(p.rid));
  // The baseline to compare with, read now: the run about to start must not be its own.
  let baseline: { report: RunReport; path: string } | undefined;
  if (opts.baseline !== undefined) {
    const path = opts.baseline === "last"
      ? await findLastRunOf(suite.source, RUNS_DIR, jsonPath)
      : opts.baseline;
    if (path === undefined) {
      console.error(
        `ccx stress: --baseline last: no earlier run of ${suite.source} under ${RUNS_DIR}/; ` +
          "nothing to compare with",
      );
    } else {
      try {
        baseline = { report: await readRun(path), path: await reportPathOf(path) };
      } catch (e) {
        console.error(`ccx stress: --baseline: ${(e as Error).message}`);
        return 2;
      }
    }
  }
  const meta: RunMeta = {
    ccxVersion: VERSION,
    host: hostname(),
    // Recorded in the reports: the command line as given (`args`), else this process's.
    commandLine: opts.args ? ["stress", ...opts.args] : [...Deno.args],
    suiteHash: await suiteHash(suite.source),
    ...(opts.model ? { model: opts.model } : {}),
    ...(opts.judgeModel ? { judgeModel: opts.judgeModel } : {}),
  };
  const scale = opts.timeoutScale === "auto" || opts.timeoutScale === undefined
    ? (opts.timeoutScale === "auto" ? autoTimeoutScale() : 1)
    : opts.timeoutScale;

  if (opts.queue) {
    if (opts.page) {
      console.error(
        "ccx stress: --page shows the jobs of this machine's server; with --queue the tasks run " +
          "on the workers' own servers: leave out --page",
      );
      return 2;
    }
    if (opts.servers?.length) {
      console.error(
        "ccx stress: --queue and --server exclude each other: the fleet's workers run the tasks",
      );
      return 2;
    }
    // The fleet module loads BullMQ (~13 MiB): only for a run on a queue, not in every `ccx`.
    const { checkQueueUrl } = await import("../fleet/queue.ts");
    try {
      checkQueueUrl(opts.queue);
    } catch (e) {
      console.error(`ccx stress: ${(e as Error).message}`);
      return 2;
    }
  }

  return {
    opts,
    suite,
    tasks,
    planned,
    toRun,
    done,
    resumed,
    runId,
    outDir,
    jsonPath,
    threshold,
    scale,
    baseline,
    meta,
  };
}

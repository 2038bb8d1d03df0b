/**
 * What a `ccx stress` run reports, shared by every format: the result types
 * ({@linkcode RunReport}, {@linkcode TestResult}, …) and the figures computed from them (counts
 * and the graduation verdict, cost and token totals, per-category counts, errors grouped by
 * cause). Pure functions, no I/O.
 *
 * The formats each live in their own module of `lib/stress/report/`: `console.ts` (the summary
 * table), `json.ts`, `junit.ts`, `html.ts`; `format.ts` holds the text helpers they share and
 * `files.ts` writes the report files and the per-task output files.
 *
 * The ratio is `passed / (failed + errors)`. When nothing failed it is infinite: the console line
 * says `∞:1` and the JSON says `"ratio": null` (JSON has no infinity) together with
 * `"graduated": true`. When nothing passed (including an empty run) it is `0`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summarize } from "./model.ts";
 * const s = summarize([], 10);
 * assert.deepEqual([s.ratio, s.graduated], [0, false]);
 * ```
 * @module
 */

import type { RunFacts } from "../../verdict/answer.ts";
import type { CheckResult } from "../../verdict/check.ts";
import type { RubricResult } from "../../verdict/rubric.ts";

/** Outcome of one task: `passed`, `failed` (ran, did not meet its criteria), `error` (could not run or judge). */
export type TestStatus = "passed" | "failed" | "error";

/** One instance of a concurrent task (several runs of the same prompt, one picked as the best). */
export interface InstanceResult {
  /** Position of the instance, from 0 or 1 as the runner numbers them. */
  index: number;
  /** Model the instance ran with, when the task names models. */
  model?: string;
  /** Sampling temperature, when the task gives a range. */
  temperature?: number;
  /** Outcome of this instance. */
  status: TestStatus;
  /** Why it has that status (one line preferred). */
  reason: string;
  /** Wall time of the instance in seconds. */
  durationS: number;
  /** Exit code of the process, `null` when it never exited on its own (killed, not started). */
  exitCode: number | null;
  /** Whether the evaluation picked this instance as the best. */
  picked: boolean;
  /** Evaluation score, when the criteria produce one. */
  score?: number;
  /** Path of the instance's saved output. */
  outputFile?: string;
}

/**
 * The result of one task of a suite. The {@linkcode RunFacts} (answer, stderr tail, model,
 * turns, tokens, cost) are there when the run gave them.
 */
export interface TestResult extends RunFacts {
  /** Task id from the suite (`simple_1`). */
  id: string;
  /** Human-readable task name. */
  name: string;
  /** Category the task belongs to in the suite. */
  category: string;
  /** Outcome of the task (after retries). */
  status: TestStatus;
  /** Why it has that status. */
  reason: string;
  /** Wall time in seconds. */
  durationS: number;
  /** Exit code of the (last) process, `null` when it never exited on its own. */
  exitCode: number | null;
  /** Expected patterns that were found in the model's answer. */
  patternsFound: string[];
  /** Expected patterns that were not found. */
  patternsMissing: string[];
  /** Path of the saved output (see {@linkcode writeOutputFile}). */
  outputFile?: string;
  /** How many times the task was run (1 = no retry). */
  attempts: number;
  /** Per-instance results of a concurrent task. */
  instances?: InstanceResult[];
  /** When the task started, epoch milliseconds. */
  startedAt: number;
  /**
   * Set when the task was run again because the box running it went away: its `--server` was
   * lost, or its fleet worker died and the queue redelivered it. Says what was lost and where
   * the task ran instead.
   */
  rerun?: string;
  /** The fleet worker that ran the task (`ccx stress --queue`). */
  worker?: string;
  /**
   * For an `error` caused by Claude or the infrastructure: the failure kind from the classifier in
   * `claude.ts` (`not_logged_in`, `rate_limit`, `cli_missing`, …). Reports group errors by it.
   */
  kind?: string;
  /** One line: what to do about `kind`. */
  fix?: string;
  /** Files the task created or changed in its workspace (the server's bounded list). */
  filesCreated?: string[];
  /** The task's request (`natural_language_request`): the reports show it atop the conversation. */
  request?: string;
  /** Where the task's workspace is on the server's host, when the server kept it. */
  workspace?: string;
  /** What each of its checks did (`verification.check`), when it has checks and they ran. */
  checks?: CheckResult[];
  /** What its rubric's judge decided (`verification.rubric`), when it ran. */
  rubric?: RubricResult;
}

/** A task of the run that has no result: not started, or stopped before it ran. */
export interface SkippedTask {
  /** Result id (the task id, `.rN` with `--repeat`). */
  id: string;
  /** Task name. */
  name: string;
  /** Category. */
  category: string;
  /** Why it did not run: `interrupted`, `--max-fail 3 reached`, `not run yet`. */
  reason: string;
}

/** Everything the reports need about one stress run. */
export interface RunReport {
  /** Unique id of the run. */
  runId: string;
  /** Suite name or path. */
  suite: string;
  /** When the run started. */
  startedAt: Date;
  /** Wall time of the whole run in seconds. */
  durationS: number;
  /** One result per task that ran. */
  results: TestResult[];
  /** Whether the run was stopped before every task ran (Ctrl-C, a deadline). */
  interrupted: boolean;
  /** Graduation threshold: the run graduates at `threshold`:1 or better. */
  threshold: number;
  /** Tasks of the run without a result (listed as skipped in every report). */
  skipped?: SkippedTask[];
  /** What was run (ccx, host, suite hash, command line, models asked for). */
  meta?: RunMeta;
  /** `--repeat N`: each task ran N times (results `<id>.r1` … `<id>.rN`). */
  repeat?: number;
  /** The comparison with a baseline run (`--baseline`), when one was asked for. */
  comparison?: Comparison;
}

/**
 * What was run, so two runs can be told apart: the ccx version, the host, the suite's hash,
 * the command line, and the models asked for. The Claude Code versions and the models that
 * answered come from the results ({@linkcode runFactsOf}).
 */
export interface RunMeta {
  /** ccx's version. */
  ccxVersion: string;
  /** The host that ran `ccx stress`. */
  host: string;
  /** The command line, arguments as given. */
  commandLine: string[];
  /** `sha256:` of the suite file's bytes. */
  suiteHash?: string;
  /** `--model`, when given. */
  model?: string;
  /** `--judge-model`, when given. */
  judgeModel?: string;
}

/** What the results say was run: Claude Code versions and the models that answered. */
export interface ResultFacts {
  /** Distinct Claude Code versions (from each run's init line), sorted. */
  claudeVersions: string[];
  /** Distinct models (from each run's init line), sorted. */
  models: string[];
}

/**
 * The Claude Code versions and models the results report, each once, sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFactsOf } from "./model.ts";
 * assert.deepEqual(runFactsOf([]), { claudeVersions: [], models: [] });
 * assert.deepEqual(runFactsOf([{ cliVersion: "2.1.197", model: "m" }, { cliVersion: "2.1.197" }]), {
 *   claudeVersions: ["2.1.197"],
 *   models: ["m"],
 * });
 * ```
 */
export function runFactsOf(
  results: readonly Pick<TestResult, "cliVersion" | "model">[],
): ResultFacts {
  const versions = new Set<string>();
  const models = new Set<string>();
  for (const r of results) {
    if (r.cliVersion) versions.add(r.cliVersion);
    if (r.model) models.add(r.model);
  }
  return { claudeVersions: [...versions].sort(), models: [...models].sort() };
}

/** One task of a run with `--repeat N`: how many of its runs passed. */
export interface RepeatedTask {
  /** The task id (without `.rN`). */
  id: string;
  /** Its category. */
  category: string;
  /** Runs with a result. */
  runs: number;
  /** Of them, passed. */
  passed: number;
  /** It both passed and did not: flaky. */
  flaky: boolean;
}

/** What repeats say (see {@linkcode repeatSummary}). */
export interface RepeatSummary {
  /** N of `--repeat N`. */
  repeat: number;
  /** Each task, in run order. */
  tasks: RepeatedTask[];
  /** The ids of the flaky tasks. */
  flaky: string[];
  /** pass@1: the chance one run of a task passes, averaged over the tasks (0 to 1). */
  passAt1: number;
}

/**
 * Per task of a `--repeat N` run: k of N passed, flaky when it both passed and did not, and
 * pass@1 over the tasks; `undefined` for a run without repeats.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { repeatSummary } from "./model.ts";
 * assert.equal(repeatSummary({ results: [], repeat: 1 }), undefined);
 * ```
 */
export function repeatSummary(
  report: Pick<RunReport, "results" | "repeat">,
): RepeatSummary | undefined {
  if (!report.repeat || report.repeat < 2) return undefined;
  const byTask = new Map<string, RepeatedTask>();
  for (const r of report.results) {
    const id = taskIdOf(r.id, report.repeat);
    let t = byTask.get(id);
    if (!t) byTask.set(id, t = { id, category: r.category, runs: 0, passed: 0, flaky: false });
    t.runs++;
    if (r.status === "passed") t.passed++;
  }
  const tasks = [...byTask.values()];
  for (const t of tasks) t.flaky = t.passed > 0 && t.passed < t.runs;
  const passAt1 = tasks.length
    ? tasks.reduce((a, t) => a + t.passed / t.runs, 0) / tasks.length
    : 0;
  return {
    repeat: report.repeat,
    tasks,
    flaky: tasks.filter((t) => t.flaky).map((t) => t.id),
    passAt1: Math.round(passAt1 * 1000) / 1000,
  };
}

/**
 * The task id of a result id: without its `.rN` when the run repeated its tasks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskIdOf } from "./model.ts";
 * assert.equal(taskIdOf("simple_1.r2", 3), "simple_1");
 * assert.equal(taskIdOf("v1.r2", 1), "v1.r2");
 * ```
 */
export function taskIdOf(resultId: string, repeat = 1): string {
  return repeat > 1 ? resultId.replace(/\.r\d+$/, "") : resultId;
}

/** One task in a {@linkcode Comparison}: its status before and after. */
export interface ComparedTask {
  /** The task id (the result id; without `.rN` for repeated runs). */
  id: string;
  /** Its status in the baseline (`flaky` for a repeated task that both passed and not). */
  before?: string;
  /** Its status now. */
  after?: string;
  /** Why it has its status now, when it did not pass. */
  reason?: string;
}

/** A run compared with a baseline run (`ccx stress --baseline`, `ccx report diff`). */
export interface Comparison {
  /** The baseline: its run id, suite, start and where it was read from. */
  baseline: { runId: string; suite: string; startedAt: Date; path?: string };
  /** Passed before, not now. */
  regressed: ComparedTask[];
  /** Not passed before, passed now. */
  fixed: ComparedTask[];
  /** Not passed before nor now. */
  stillFailing: ComparedTask[];
  /** Only in this run. */
  added: ComparedTask[];
  /** Only in the baseline. */
  gone: ComparedTask[];
  /** The baseline's counts and ratio. */
  before: Summary;
  /** This run's. */
  after: Summary;
  /** What differs in what was run: Claude Code versions, models, ccx, suite, host. */
  differences: string[];
}

/** Counts and graduation verdict of a run (see {@linkcode summarize}). */
export interface Summary {
  /** Number of results. */
  total: number;
  /** Results with status `passed`. */
  passed: number;
  /** Results with status `failed`. */
  failed: number;
  /** Results with status `error`. */
  errors: number;
  /** `passed / (failed + errors)`; `null` means infinite (something passed, nothing failed); `0` when nothing passed. */
  ratio: number | null;
  /** Ratio at or above the threshold (infinite counts), no errors, and at least one result. */
  graduated: boolean;
}

/**
 * Count a run's results and decide whether it graduates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summarize, type TestResult } from "./model.ts";
 * const r = (status: TestResult["status"]): TestResult => ({
 *   id: "t", name: "t", category: "c", status, reason: "", durationS: 1, exitCode: 0,
 *   patternsFound: [], patternsMissing: [], attempts: 1, startedAt: 0,
 * });
 * const s = summarize([...Array(10)].map(() => r("passed")).concat(r("failed")), 10);
 * assert.deepEqual([s.ratio, s.graduated], [10, true]);
 * ```
 */
export function summarize(results: TestResult[], threshold: number): Summary {
  let passed = 0, failed = 0, errors = 0;
  for (const r of results) {
    if (r.status === "passed") passed++;
    else if (r.status === "failed") failed++;
    else errors++;
  }
  const bad = failed + errors;
  const ratio = passed === 0 ? 0 : bad === 0 ? null : passed / bad;
  // Integer comparison: no floating-point doubt about 10:1 exactly.
  const reached = ratio === null || passed >= threshold * bad;
  return {
    total: results.length,
    passed,
    failed,
    errors,
    ratio,
    graduated: results.length > 0 && errors === 0 && reached,
  };
}

/** Cost and tokens of a run, summed over the results that report them. */
export interface Totals {
  /** Sum of `costUsd`; `null` when no result reported a cost. */
  costUsd: number | null;
  /** Sums of token counts; `null` when no result reported tokens. */
  tokens: { input: number; output: number; cacheRead: number; cacheCreation: number } | null;
}

/**
 * Sums cost and tokens over the results (instances of concurrent tasks are not
 * counted separately: the picked run's facts are the task's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { totals } from "./model.ts";
 * assert.deepEqual(totals([]), { costUsd: null, tokens: null });
 * ```
 */
export function totals(results: TestResult[]): Totals {
  let cost: number | null = null;
  let tokens: Totals["tokens"] = null;
  for (const r of results) {
    if (r.costUsd !== undefined) cost = (cost ?? 0) + r.costUsd;
    if (r.tokens) {
      tokens ??= { input: 0, output: 0, cacheRead: 0, cacheCreation: 0 };
      tokens.input += r.tokens.input;
      tokens.output += r.tokens.output;
      tokens.cacheRead += r.tokens.cacheRead;
      tokens.cacheCreation += r.tokens.cacheCreation;
    }
  }
  return { costUsd: cost === null ? null : Math.round(cost * 1e6) / 1e6, tokens };
}

/** Counts of one category (see {@linkcode categorySummaries}). */
export interface CategorySummary {
  /** Category name. */
  name: string;
  /** Results plus skipped tasks. */
  total: number;
  /** Passed results. */
  passed: number;
  /** Failed results. */
  failed: number;
  /** Errored results. */
  errors: number;
  /** Tasks that did not run. */
  skipped: number;
}

/**
 * Per-category counts, in first-seen order (results, then skipped tasks).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { categorySummaries } from "./model.ts";
 * assert.deepEqual(categorySummaries({ results: [], skipped: [{ id: "a", name: "a", category: "c", reason: "" }] }), [
 *   { name: "c", total: 1, passed: 0, failed: 0, errors: 0, skipped: 1 },
 * ]);
 * ```
 */
export function categorySummaries(
  report: Pick<RunReport, "results" | "skipped">,
): CategorySummary[] {
  const m = new Map<string, CategorySummary>();
  const get = (name: string) => {
    let c = m.get(name);
    if (!c) m.set(name, c = { name, total: 0, passed: 0, failed: 0, errors: 0, skipped: 0 });
    c.total++;
    return c;
  };
  for (const r of report.results) {
    const c = get(r.category);
    if (r.status === "passed") c.passed++;
    else if (r.status === "failed") c.failed++;
    else c.errors++;
  }
  for (const t of report.skipped ?? []) get(t.category).skipped++;
  return [...m.values()];
}

/** Errors that share a failure kind (see {@linkcode errorGroups}). */
export interface ErrorGroup {
  /** The kind; `other` for errors without one. */
  kind: string;
  /** What to do, when the classifier said. */
  fix?: string;
  /** Result ids, in run order. */
  ids: string[];
}

/**
 * Errored results grouped by `kind` (largest group first), so twenty tasks that
 * failed for one reason read as one problem with one fix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorGroups, type TestResult } from "./model.ts";
 * const err = (id: string, kind: string, fix?: string): TestResult => ({
 *   id, name: id, category: "c", status: "error", reason: kind, durationS: 1, exitCode: 1,
 *   patternsFound: [], patternsMissing: [], attempts: 1, startedAt: 0, kind, fix,
 * });
 * assert.deepEqual(errorGroups([err("a", "auth", "claude /login"), err("b", "network"), err("c", "auth")]), [
 *   { kind: "auth", fix: "claude /login", ids: ["a", "c"] },
 *   { kind: "network", fix: undefined, ids: ["b"] },
 * ]);
 * ```
 */
export function errorGroups(results: TestResult[]): ErrorGroup[] {
  const m = new Map<string, ErrorGroup>();
  for (const r of results) {
    if (r.status !== "error") continue;
    const kind = r.kind ?? "other";
    let g = m.get(kind);
    if (!g) m.set(kind, g = { kind, ids: [] });
    g.fix ??= r.fix;
    g.ids.push(r.id);
  }
  return [...m.values()].sort((a, b) => b.ids.length - a.ids.length);
}

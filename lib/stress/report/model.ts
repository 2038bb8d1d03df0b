/**
 * Reports of a `ccx stress` run: the summary and graduation ratio, a console table, JSON, JUnit
 * XML, a self-contained HTML page, and the per-task output file.
 *
 * Everything here is a pure function of a {@linkcode RunReport} except
 * {@linkcode writeReports} and {@linkcode writeOutputFile}, which write files.
 *
 * The ratio is `passed / (failed + errors)`. When nothing failed it is infinite: the console line
 * says `∞:1` and the JSON says `"ratio": null` (JSON has no infinity) together with
 * `"graduated": true`. When nothing passed (including an empty run) it is `0`. The console line
 * truncates to one decimal rather than rounding, so it never shows `10.0:1` for a run that did not
 * reach 10:1.
 *
 * @example
 * ```ts
 * import { formatRatioLine, summarize } from "./model.ts";
 * const s = summarize([], 10);
 * console.log(formatRatioLine(s, 10)); // Success ratio: 0.0:1 (need 10:1 to graduate)
 * ```
 * @module
 */

import { dirname } from "node:path";
import type { RunFacts } from "../../verdict/answer.ts";
import { toJson } from "./json.ts";
import { toJunit } from "./junit.ts";
import { toHtml } from "./html.ts";

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
  /** Where the task's workspace is on the server's host, when the server kept it. */
  workspace?: string;
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
 * import { summarize, type TestResult } from "./model.ts";
 * const r = (status: TestResult["status"]): TestResult => ({
 *   id: "t", name: "t", category: "c", status, reason: "", durationS: 1, exitCode: 0,
 *   patternsFound: [], patternsMissing: [], attempts: 1, startedAt: 0,
 * });
 * const s = summarize([...Array(10)].map(() => r("passed")).concat(r("failed")), 10);
 * console.log(s.ratio, s.graduated); // 10 true
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
 * import { totals } from "./model.ts";
 * totals([]); // { costUsd: null, tokens: null }
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
 * import { categorySummaries } from "./model.ts";
 * categorySummaries({ results: [], skipped: [{ id: "a", name: "a", category: "c", reason: "" }] });
 * // [{ name: "c", total: 1, passed: 0, failed: 0, errors: 0, skipped: 1 }]
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
 * import { errorGroups } from "./model.ts";
 * errorGroups([]); // []
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

/** Which report files to write (see {@linkcode writeReports}). */
export interface ReportPaths {
  /** Path of the JSON report. */
  json?: string;
  /** Path of the JUnit XML report. */
  junit?: string;
  /** Path of the HTML report (output-file links are made relative to it). */
  html?: string;
}

/** Write text to `path` via a temporary file and a rename, creating parent directories. */
async function writeAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Write each requested report (JSON, JUnit, HTML), creating parent directories; each file
 * appears complete or not at all (temporary file + rename). Returns the written paths in the
 * order json, junit, html.
 *
 * @example
 * ```ts
 * import { writeReports } from "./model.ts";
 * const dir = await Deno.makeTempDir();
 * const paths = await writeReports({
 *   runId: "r1", suite: "smoke", startedAt: new Date(), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * }, { json: `${dir}/out/report.json`, html: `${dir}/out/report.html` });
 * console.log(paths.length); // 2
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeReports(report: RunReport, opts: ReportPaths): Promise<string[]> {
  const written: string[] = [];
  if (opts.json !== undefined) {
    await writeAtomic(opts.json, toJson(report));
    written.push(opts.json);
  }
  if (opts.junit !== undefined) {
    await writeAtomic(opts.junit, toJunit(report));
    written.push(opts.junit);
  }
  if (opts.html !== undefined) {
    await writeAtomic(opts.html, toHtml(report, { htmlPath: opts.html }));
    written.push(opts.html);
  }
  return written;
}

/** Header of a per-task output file (see {@linkcode writeOutputFile}). */
export interface OutputHeader {
  /** Task id. */
  task: string;
  /** Task name. */
  name: string;
  /** Status word (`passed`, `failed`, `error`, or a process status). */
  status: string;
  /** Wall time in seconds. */
  durationS: number;
  /** Exit code, `null` when the process never exited on its own. */
  exitCode: number | null;
  /** When the output was saved. */
  timestamp: Date;
  /** The command that ran. */
  command?: string;
  /** Why the task has its status. */
  reason?: string;
}

/** A header value on one line: line breaks shown as `\n`, other controls dropped. */
function headerValue(v: string): string {
  // deno-lint-ignore no-control-regex
  return v.replace(/\r?\n/g, "\\n").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
}

/**
 * Save one task's output: header lines (`Task:`, `Status:`, `Duration:`, `Exit code:`,
 * `Timestamp:`, then `Command:` and `Reason:` when given; each on one line), a line of 80 `-`,
 * then the output exactly as received. Parent directories are created.
 *
 * @example
 * ```ts
 * import { writeOutputFile } from "./model.ts";
 * const dir = await Deno.makeTempDir();
 * await writeOutputFile(`${dir}/simple_1.txt`, {
 *   task: "simple_1", name: "2+2", status: "passed", durationS: 1.2, exitCode: 0,
 *   timestamp: new Date(),
 * }, "4\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeOutputFile(
  path: string,
  header: OutputHeader,
  body: string,
): Promise<void> {
  const lines = [
    `Task: ${headerValue(header.task)} - ${headerValue(header.name)}`,
    `Status: ${headerValue(header.status)}`,
    `Duration: ${(Number.isFinite(header.durationS) ? header.durationS : 0).toFixed(2)}s`,
    `Exit code: ${header.exitCode ?? "none"}`,
    `Timestamp: ${header.timestamp.toISOString()}`,
  ];
  if (header.command !== undefined) lines.push(`Command: ${headerValue(header.command)}`);
  if (header.reason !== undefined) lines.push(`Reason: ${headerValue(header.reason)}`);
  lines.push("-".repeat(80), "");
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const enc = new TextEncoder();
    for (const chunk of [enc.encode(lines.join("\n")), enc.encode(body)]) {
      let off = 0;
      while (off < chunk.length) off += await file.write(chunk.subarray(off));
    }
  } finally {
    file.close();
  }
}

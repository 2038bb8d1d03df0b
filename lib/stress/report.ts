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
 * import { formatRatioLine, summarize } from "./report.ts";
 * const s = summarize([], 10);
 * console.log(formatRatioLine(s, 10)); // Success ratio: 0.0:1 (need 10:1 to graduate)
 * ```
 * @module
 */

import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { RunFacts } from "../verdict/answer.ts";
import { formatDuration } from "../common/format.ts";

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
   * `classify.ts` (`not_logged_in`, `rate_limit`, `cli_missing`, …). Reports group errors by it.
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
 * import { summarize, type TestResult } from "./report.ts";
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
 * import { totals } from "./report.ts";
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
 * import { categorySummaries } from "./report.ts";
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
 * import { errorGroups } from "./report.ts";
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

/**
 * The first `max` characters of an answer, on at most `lines` lines, with `…` when cut.
 *
 * @example
 * ```ts
 * import { excerpt } from "./report.ts";
 * excerpt("a\nb\nc", 100, 2); // "a\nb …"
 * ```
 */
export function excerpt(text: string, max = 300, lines = 6): string {
  const all = text.trim().split("\n");
  let out = all.slice(0, lines).join("\n");
  let cut = all.length > lines;
  if (out.length > max) {
    out = Array.from(out).slice(0, max).join("");
    cut = true;
  }
  return cut ? `${out.trimEnd()} …` : out;
}

function formatCost(c: number): string {
  return c >= 1 ? `$${c.toFixed(2)}` : `$${c.toFixed(4)}`;
}

/**
 * One line of totals: cost and tokens, or `""` when no result reported them.
 *
 * @example
 * ```ts
 * import { formatTotalsLine } from "./report.ts";
 * formatTotalsLine({ costUsd: 0.0123, tokens: { input: 1200, output: 340, cacheRead: 0, cacheCreation: 0 } });
 * // "Cost $0.0123; tokens 1200 in, 340 out, 0 cache read, 0 cache write"
 * ```
 */
export function formatTotalsLine(t: Totals): string {
  const parts: string[] = [];
  if (t.costUsd !== null) parts.push(`Cost ${formatCost(t.costUsd)}`);
  if (t.tokens) {
    parts.push(
      `tokens ${t.tokens.input} in, ${t.tokens.output} out, ${t.tokens.cacheRead} cache read, ` +
        `${t.tokens.cacheCreation} cache write`,
    );
  }
  return parts.join("; ");
}

/**
 * The one-line verdict, exactly `Success ratio: X:1 (need T:1 to graduate)`. `X` has one decimal,
 * truncated (never rounded up past the threshold); `∞` when nothing failed.
 *
 * @example
 * ```ts
 * import { formatRatioLine } from "./report.ts";
 * const s = { total: 23, passed: 20, failed: 3, errors: 0, ratio: 20 / 3, graduated: false };
 * console.log(formatRatioLine(s, 10)); // Success ratio: 6.6:1 (need 10:1 to graduate)
 * ```
 */
export function formatRatioLine(summary: Summary, threshold: number): string {
  const bad = summary.failed + summary.errors;
  let x: string;
  if (summary.passed > 0 && bad === 0) x = "∞";
  else if (bad === 0) x = "0.0";
  else {
    // floor(10p/q) of integers is exact in doubles for any realistic count.
    const tenths = Math.floor((10 * summary.passed) / bad);
    x = `${Math.floor(tenths / 10)}.${tenths % 10}`;
  }
  return `Success ratio: ${x}:1 (need ${threshold}:1 to graduate)`;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g;
// Characters XML 1.0 forbids: C0 controls other than tab/LF/CR, U+FFFE/U+FFFF, lone surrogates.
// deno-lint-ignore no-control-regex
const XML_ILLEGAL = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udfff]/gu;
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * Make text safe for one console line: drop ANSI escape sequences, turn line breaks and tabs into
 * spaces, drop every other control character (C0, DEL, C1), collapse runs of spaces, and cap the
 * length (with `…`).
 *
 * @example
 * ```ts
 * import { oneLine } from "./report.ts";
 * console.log(oneLine("\x1b[31mexit 1\x1b[0m\nstderr:\tboom")); // exit 1 stderr: boom
 * ```
 */
export function oneLine(text: string, max = 500): string {
  const s = text.replace(ANSI, "").replace(/[\t\n\r\v\f]+/g, " ").replace(CONTROL, "")
    .replace(/ {2,}/g, " ").trim();
  return truncate(s, max);
}

/** Cut to at most `max` code points, ending with `…` when cut. */
function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const cps = Array.from(s);
  if (cps.length <= max) return s;
  return max <= 0 ? "" : cps.slice(0, max - 1).join("") + "…";
}

/** Remove ANSI sequences and characters XML 1.0 does not allow. */
function clean(text: string): string {
  return text.replace(ANSI, "").replace(XML_ILLEGAL, "");
}

/** Escape for XML/HTML text and attribute values (after {@linkcode clean}). */
function esc(text: string): string {
  return clean(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Escape for an XML attribute, keeping line breaks and tabs (parsers would normalise them). */
function escAttr(text: string): string {
  return esc(text).replace(/\n/g, "&#10;").replace(/\r/g, "&#13;").replace(/\t/g, "&#9;");
}

/** Escape for HTML (`&#39;` rather than `&apos;`, which HTML 4 lacks). */
function escHtml(text: string): string {
  return esc(text).replace(/&apos;/g, "&#39;");
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/**
 * The machine-readable report: snake_case keys, every key always present (`null` when unknown),
 * `instances` only for concurrent tasks. `summary.ratio` is `null` when nothing failed (infinite).
 * Durations are seconds rounded to milliseconds.
 *
 * @example
 * ```ts
 * import { toJson } from "./report.ts";
 * const json = toJson({
 *   runId: "r1", suite: "smoke", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * });
 * console.log(JSON.parse(json).summary.graduated); // false
 * ```
 */
export function toJson(report: RunReport): string {
  const s = summarize(report.results, report.threshold);
  const tot = totals(report.results);
  const tokens = (t: Totals["tokens"] | undefined) =>
    t
      ? {
        input: t.input,
        output: t.output,
        cache_read: t.cacheRead,
        cache_creation: t.cacheCreation,
      }
      : null;
  const obj = {
    run_id: report.runId,
    suite: report.suite,
    started_at: report.startedAt.toISOString(),
    duration_s: round3(report.durationS),
    interrupted: report.interrupted,
    threshold: report.threshold,
    summary: {
      total: s.total,
      passed: s.passed,
      failed: s.failed,
      errors: s.errors,
      skipped: report.skipped?.length ?? 0,
      ratio: s.ratio,
      graduated: s.graduated,
      cost_usd: tot.costUsd,
      tokens: tokens(tot.tokens),
    },
    categories: categorySummaries(report),
    errors_by_kind: errorGroups(report.results).map((g) => ({
      kind: g.kind,
      fix: g.fix ?? null,
      count: g.ids.length,
      tests: g.ids,
    })),
    tests: [
      ...report.results.map((t) => {
        const o: Record<string, unknown> = {
          id: t.id,
          name: t.name,
          category: t.category,
          status: t.status,
          reason: t.reason,
          duration_s: round3(t.durationS),
          exit_code: t.exitCode,
          patterns_found: t.patternsFound,
          patterns_missing: t.patternsMissing,
          output_file: t.outputFile ?? null,
          attempts: t.attempts,
          answer: t.answer ?? null,
          stderr_tail: t.stderrTail ?? null,
          model: t.model ?? null,
          turns: t.turns ?? null,
          tokens: tokens(t.tokens),
          cost_usd: t.costUsd ?? null,
          kind: t.kind ?? null,
          fix: t.fix ?? null,
          started_at: Number.isFinite(t.startedAt) ? new Date(t.startedAt).toISOString() : null,
          files_created: t.filesCreated ?? [],
          workspace: t.workspace ?? null,
        };
        if (t.rerun !== undefined) o.rerun = t.rerun;
        if (t.worker !== undefined) o.worker = t.worker;
        if (t.instances) {
          o.instances = t.instances.map((i) => ({
            index: i.index,
            model: i.model ?? null,
            temperature: i.temperature ?? null,
            status: i.status,
            reason: i.reason,
            duration_s: round3(i.durationS),
            exit_code: i.exitCode,
            picked: i.picked,
            score: i.score ?? null,
            output_file: i.outputFile ?? null,
          }));
        }
        return o;
      }),
      ...(report.skipped ?? []).map((t) => ({
        id: t.id,
        name: t.name,
        category: t.category,
        status: "skipped",
        reason: t.reason,
      })),
    ],
  };
  return JSON.stringify(obj, null, 2) + "\n";
}

/**
 * Reads a report written by {@linkcode toJson} back: the results (with their answers, tokens,
 * …) and the skipped tasks. Used by `ccx stress --resume` and `--last-failed`. Throws a
 * `SyntaxError` naming what is wrong for a file that is not such a report.
 *
 * @example
 * ```ts
 * import { fromJson, toJson } from "./report.ts";
 * const r = fromJson(toJson({
 *   runId: "r1", suite: "s", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: true, threshold: 10, skipped: [{ id: "a", name: "a", category: "c", reason: "interrupted" }],
 * }));
 * r.skipped?.length; // 1
 * ```
 */
export function fromJson(text: string): RunReport {
  const o = JSON.parse(text);
  if (typeof o !== "object" || o === null || !Array.isArray(o.tests)) {
    throw new SyntaxError("not a ccx stress report.json (no tests[])");
  }
  const num = (x: unknown, d = 0) => (typeof x === "number" && Number.isFinite(x) ? x : d);
  const str = (x: unknown) => (typeof x === "string" ? x : undefined);
  const results: TestResult[] = [];
  const skipped: SkippedTask[] = [];
  for (const t of o.tests as Record<string, unknown>[]) {
    const id = str(t.id), name = str(t.name) ?? "", category = str(t.category) ?? "";
    if (id === undefined) throw new SyntaxError("a test without an id");
    if (t.status !== "passed" && t.status !== "failed" && t.status !== "error") {
      skipped.push({ id, name, category, reason: str(t.reason) ?? "" });
      continue;
    }
    const tk = t.tokens as Record<string, unknown> | null | undefined;
    const r: TestResult = {
      id,
      name,
      category,
      status: t.status,
      reason: str(t.reason) ?? "",
      durationS: num(t.duration_s),
      exitCode: typeof t.exit_code === "number" ? t.exit_code : null,
      patternsFound: Array.isArray(t.patterns_found) ? t.patterns_found.map(String) : [],
      patternsMissing: Array.isArray(t.patterns_missing) ? t.patterns_missing.map(String) : [],
      attempts: num(t.attempts, 1),
      startedAt: typeof t.started_at === "string" ? Date.parse(t.started_at) : NaN,
    };
    const opt: [keyof TestResult, unknown][] = [
      ["outputFile", str(t.output_file)],
      ["answer", str(t.answer)],
      ["stderrTail", str(t.stderr_tail)],
      ["model", str(t.model)],
      ["turns", typeof t.turns === "number" ? t.turns : undefined],
      ["costUsd", typeof t.cost_usd === "number" ? t.cost_usd : undefined],
      ["kind", str(t.kind)],
      ["fix", str(t.fix)],
      ["rerun", str(t.rerun)],
      ["workspace", str(t.workspace)],
      [
        "filesCreated",
        Array.isArray(t.files_created) && t.files_created.length
          ? t.files_created.map(String)
          : undefined,
      ],
      ["worker", str(t.worker)],
      [
        "tokens",
        tk && typeof tk === "object"
          ? {
            input: num(tk.input),
            output: num(tk.output),
            cacheRead: num(tk.cache_read),
            cacheCreation: num(tk.cache_creation),
          }
          : undefined,
      ],
    ];
    for (const [k, v] of opt) if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
    if (Array.isArray(t.instances)) {
      r.instances = (t.instances as Record<string, unknown>[]).map((i) => ({
        index: num(i.index),
        ...(str(i.model) ? { model: str(i.model) } : {}),
        ...(typeof i.temperature === "number" ? { temperature: i.temperature } : {}),
        status: (i.status === "passed" || i.status === "failed") ? i.status : "error",
        reason: str(i.reason) ?? "",
        durationS: num(i.duration_s),
        exitCode: typeof i.exit_code === "number" ? i.exit_code : null,
        picked: i.picked === true,
        ...(typeof i.score === "number" ? { score: i.score } : {}),
        ...(str(i.output_file) ? { outputFile: str(i.output_file) } : {}),
      }));
    }
    results.push(r);
  }
  return {
    runId: str(o.run_id) ?? "",
    suite: str(o.suite) ?? "",
    startedAt: new Date(str(o.started_at) ?? 0),
    durationS: num(o.duration_s),
    results,
    interrupted: o.interrupted === true,
    threshold: num(o.threshold, 10),
    skipped,
  };
}

const secs = (n: number): string => (Number.isFinite(n) && n > 0 ? n : 0).toFixed(3);

/** The detail lines for a failure/error body and for system-out. */
function detailLines(t: TestResult): string[] {
  const lines = [`${t.id}: ${t.name}`, `status: ${t.status}`];
  if (t.reason) lines.push(`reason: ${t.reason}`);
  lines.push(`exit code: ${t.exitCode ?? "none"}`, `attempts: ${t.attempts}`);
  if (t.patternsFound.length) lines.push(`patterns found: ${t.patternsFound.join(", ")}`);
  if (t.patternsMissing.length) lines.push(`patterns missing: ${t.patternsMissing.join(", ")}`);
  if (t.filesCreated?.length) lines.push(`files created: ${t.filesCreated.join(", ")}`);
  if (t.workspace) lines.push(`workspace kept: ${t.workspace}`);
  for (const i of t.instances ?? []) {
    const bits = [`instance ${i.index}${i.picked ? " (picked)" : ""}: ${i.status}`];
    if (i.model) bits.push(`model ${i.model}`);
    if (i.temperature !== undefined) bits.push(`temperature ${i.temperature}`);
    if (i.score !== undefined) bits.push(`score ${i.score}`);
    bits.push(formatDuration(i.durationS), `exit ${i.exitCode ?? "none"}`);
    if (i.reason) bits.push(i.reason);
    if (i.outputFile) bits.push(`output ${i.outputFile}`);
    lines.push(bits.join(", "));
  }
  return lines;
}

/**
 * JUnit XML that validates against the Jenkins xUnit plugin's `junit-10.xsd` and that GitLab
 * reads: `<testsuites name tests failures errors time>` (no `timestamp` there: the schema does
 * not allow it), one `<testsuite>` per category (`skipped`, `timestamp` in UTC without a zone),
 * a `<testcase classname=category name=id time=…>` per task with `<failure>` for failed,
 * `<error>` for error (message = reason, type = the failure kind or the status) and
 * `<skipped>` for tasks that never ran; `<system-out>` holds the model's whole answer and the
 * output file, `<system-err>` the stderr tail. Text is escaped; ANSI sequences and characters
 * illegal in XML 1.0 are removed.
 *
 * @example
 * ```ts
 * import { toJunit } from "./report.ts";
 * const xml = toJunit({
 *   runId: "r1", suite: "smoke", startedAt: new Date(0), durationS: 1, interrupted: false,
 *   threshold: 10, results: [{
 *     id: "simple_1", name: "2+2", category: "simple", status: "failed", reason: "missing <4>",
 *     durationS: 1.5, exitCode: 0, patternsFound: [], patternsMissing: ["4"], attempts: 1,
 *     startedAt: 0, answer: "five",
 *   }],
 * });
 * console.log(xml.includes('<failure message="missing &lt;4&gt;"')); // true
 * ```
 */
export function toJunit(report: RunReport): string {
  const all = summarize(report.results, report.threshold);
  const stamp = report.startedAt.toISOString().slice(0, 19);
  const skipped = report.skipped ?? [];
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites name="${escAttr(report.suite)}" tests="${all.total + skipped.length}"` +
      ` failures="${all.failed}" errors="${all.errors}" time="${secs(report.durationS)}">`,
  );
  const cats = new Map<string, { results: TestResult[]; skipped: SkippedTask[] }>();
  const cat = (c: string) => {
    let e = cats.get(c);
    if (!e) cats.set(c, e = { results: [], skipped: [] });
    return e;
  };
  for (const r of report.results) cat(r.category).results.push(r);
  for (const t of skipped) cat(t.category).skipped.push(t);
  for (const [category, { results: tests, skipped: notRun }] of cats) {
    const s = summarize(tests, report.threshold);
    const time = tests.reduce((a, t) => a + (t.durationS > 0 ? t.durationS : 0), 0);
    out.push(
      `  <testsuite name="${escAttr(category)}" tests="${s.total + notRun.length}"` +
        ` failures="${s.failed}" errors="${s.errors}" skipped="${notRun.length}"` +
        ` time="${secs(time)}" timestamp="${stamp}">`,
    );
    out.push("    <properties>");
    for (
      const [k, v] of [
        ["run_id", report.runId],
        ["suite", report.suite],
        ["interrupted", String(report.interrupted)],
        ["threshold", String(report.threshold)],
      ]
    ) out.push(`      <property name="${k}" value="${escAttr(v)}"/>`);
    out.push("    </properties>");
    for (const t of tests) {
      out.push(
        `    <testcase classname="${escAttr(category)}" name="${escAttr(t.id)}"` +
          ` time="${secs(t.durationS)}">`,
      );
      if (t.status !== "passed") {
        const tag = t.status === "failed" ? "failure" : "error";
        const lines = detailLines(t);
        if (t.fix) lines.push(`fix: ${t.fix}`);
        out.push(
          `      <${tag} message="${escAttr(t.reason)}" type="${escAttr(t.kind ?? t.status)}">` +
            `${esc(lines.join("\n"))}</${tag}>`,
        );
      }
      const sysout = [`name: ${t.name}`, `output file: ${t.outputFile ?? "(none)"}`];
      for (const f of factLines(t)) sysout.push(f);
      if (t.status === "passed") sysout.push(...detailLines(t).slice(1));
      if (t.answer !== undefined) sysout.push("", "answer:", t.answer);
      out.push(`      <system-out>${esc(sysout.join("\n"))}</system-out>`);
      if (t.stderrTail) out.push(`      <system-err>${esc(t.stderrTail)}</system-err>`);
      out.push("    </testcase>");
    }
    for (const t of notRun) {
      out.push(
        `    <testcase classname="${escAttr(category)}" name="${escAttr(t.id)}" time="0">`,
        `      <skipped message="${escAttr(t.reason)}" type="skipped"/>`,
        "    </testcase>",
      );
    }
    out.push("  </testsuite>");
  }
  out.push("</testsuites>");
  return out.join("\n") + "\n";
}

/** Model, turns, tokens and cost of a result, one fact a line. */
function factLines(t: TestResult): string[] {
  const out: string[] = [];
  if (t.model) out.push(`model: ${t.model}`);
  if (t.turns !== undefined) out.push(`turns: ${t.turns}`);
  if (t.tokens) {
    out.push(
      `tokens: ${t.tokens.input} in, ${t.tokens.output} out, ${t.tokens.cacheRead} cache read, ` +
        `${t.tokens.cacheCreation} cache write`,
    );
  }
  if (t.costUsd !== undefined) out.push(`cost: ${formatCost(t.costUsd)}`);
  if (t.kind) out.push(`kind: ${t.kind}`);
  return out;
}

const STATUS_ORDER: Record<TestStatus, number> = { failed: 0, error: 1, passed: 2 };
const STATUS_WORD: Record<TestStatus, string> = { passed: "PASS", failed: "FAIL", error: "ERROR" };

/** Options of {@linkcode toHtml}. */
export interface HtmlOptions {
  /** Where the page will be written; output-file links are made relative to its directory. */
  htmlPath?: string;
}

/** The href for an output file, relative to the HTML file's directory when known. */
function outputHref(file: string, htmlPath?: string): string {
  const encode = (p: string) =>
    p.split(sep === "\\" ? /[\\/]/ : "/").map((seg) => encodeURIComponent(seg)).join("/");
  if (htmlPath !== undefined) return encode(relative(dirname(resolve(htmlPath)), resolve(file)));
  if (isAbsolute(file)) return pathToFileURL(file).href;
  return encode(file);
}

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#666;--line:#ddd;--track:#f0f0f0;
--pass:#2e7d32;--fail:#c62828;--error:#b26a00;--error-bar:#f0a020}
@media (prefers-color-scheme:dark){:root{--bg:#16181b;--fg:#e6e6e6;--muted:#9aa0a6;--line:#33373c;
--track:#24272b;--pass:#66bb6a;--fail:#ef5350;--error:#ffb74d;--error-bar:#ffb74d}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1.5rem;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:2rem 0 .75rem;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:0 0 .35rem}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
.verdict{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;font-weight:700;color:#fff}
.verdict.yes{background:var(--pass)}.verdict.no{background:var(--fail)}
.verdict.interrupted{background:var(--error)}
.ratio{font-weight:600}
.s-passed{color:var(--pass)}.s-failed{color:var(--fail)}.s-error{color:var(--error)}
ol.bars{list-style:none;padding:0;margin:0}
ol.bars li{display:grid;grid-template-columns:minmax(6rem,16rem) 3.5rem 1fr 5.5rem;gap:.6rem;
align-items:center;padding:.12rem 0;border-bottom:1px solid var(--line)}
ol.bars .id{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
ol.bars .st{font-weight:700;font-size:.8rem}
.track{background:var(--track);height:.9rem;border-radius:.2rem;overflow:hidden}
.bar{display:block;height:100%;min-width:2px}
.b-passed .bar{background:var(--pass)}.b-failed .bar{background:var(--fail)}
.b-error .bar{background:var(--error-bar)}
ol.bars .dur{text-align:right;font-variant-numeric:tabular-nums}
article.failure{border-left:4px solid var(--fail);padding:.5rem .9rem;margin:0 0 1rem;background:var(--track)}
article.failure.k-error{border-left-color:var(--error-bar)}
article pre{white-space:pre-wrap;word-break:break-word;margin:.35rem 0;padding:.5rem;
background:var(--bg);border:1px solid var(--line);border-radius:.2rem}
table.inst{border-collapse:collapse;margin:.5rem 0;font-size:.9em}
table.inst th,table.inst td{border:1px solid var(--line);padding:.2rem .5rem;text-align:left}
.muted{color:var(--muted)}a{color:inherit}
details{margin:.2rem 0}details pre{margin-left:1rem}
`.trim();

/**
 * One self-contained HTML page (inline CSS, no scripts, no external assets): header with run id,
 * suite, start, duration, counts and the ratio line; a duration bar per task (width relative to
 * the longest, coloured and labelled by status, failures first, then errors, then passes); and a
 * failures section with reasons and links to the output files. All task data is escaped.
 *
 * @example
 * ```ts
 * import { toHtml } from "./report.ts";
 * const html = toHtml({
 *   runId: "r1", suite: "<b>smoke</b>", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * });
 * console.log(html.includes("&lt;b&gt;smoke&lt;/b&gt;")); // true
 * ```
 */
export function toHtml(report: RunReport, opts: HtmlOptions = {}): string {
  const s = summarize(report.results, report.threshold);
  const sorted = report.results.map((t, i) => ({ t, i })).sort((a, b) =>
    STATUS_ORDER[a.t.status] - STATUS_ORDER[b.t.status] || a.i - b.i
  );
  const longest = Math.max(0, ...report.results.map((t) => t.durationS > 0 ? t.durationS : 0));
  const runStart = report.startedAt.getTime();
  const anchor = (i: number) => `t${i}`;
  const skipped = report.skipped ?? [];
  const totalsLine = formatTotalsLine(totals(report.results));

  const h: string[] = [];
  h.push(
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    `<title>ccx stress: ${escHtml(report.suite)} (${escHtml(report.runId)})</title>`,
    `<style>\n${CSS}\n</style>`,
    "</head>",
    "<body>",
    "<header>",
    `<h1>ccx stress report: ${escHtml(report.suite)}</h1>`,
  );
  h.push(
    `<p><span class="verdict ${s.graduated ? "yes" : "no"}">${
      s.graduated ? "GRADUATED" : "NOT GRADUATED"
    }</span>${
      report.interrupted ? ' <span class="verdict interrupted">INTERRUPTED</span>' : ""
    }</p>`,
  );
  h.push(
    '<dl class="meta">',
    `<dt>Run</dt><dd class="mono">${escHtml(report.runId)}</dd>`,
    `<dt>Suite</dt><dd>${escHtml(report.suite)}</dd>`,
    `<dt>Started</dt><dd><time datetime="${report.startedAt.toISOString()}">${report.startedAt.toISOString()}</time></dd>`,
    `<dt>Duration</dt><dd>${formatDuration(report.durationS)}</dd>`,
    `<dt>Results</dt><dd>${s.total} tests: <span class="s-passed">${s.passed} passed</span>, ` +
      `<span class="s-failed">${s.failed} failed</span>, ` +
      `<span class="s-error">${s.errors} errors</span>${
        skipped.length ? `, <span class="muted">${skipped.length} skipped</span>` : ""
      }</dd>`,
    ...(totalsLine ? [`<dt>Totals</dt><dd>${escHtml(totalsLine)}</dd>`] : []),
    "</dl>",
    `<p class="ratio">${escHtml(formatRatioLine(s, report.threshold))}</p>`,
    "</header>",
    "<main>",
  );
  const cats = categorySummaries(report);
  if (cats.length > 1 || skipped.length) {
    h.push(
      '<section id="categories">',
      "<h2>By category</h2>",
      '<table class="inst"><thead><tr><th>Category</th><th>Tasks</th><th>Passed</th>' +
        "<th>Failed</th><th>Errors</th><th>Skipped</th></tr></thead><tbody>",
      ...cats.map((c) =>
        `<tr><td>${escHtml(c.name)}</td><td>${c.total}</td><td class="s-passed">${c.passed}</td>` +
        `<td class="s-failed">${c.failed}</td><td class="s-error">${c.errors}</td>` +
        `<td>${c.skipped}</td></tr>`
      ),
      "</tbody></table>",
      "</section>",
    );
  }
  const groups = errorGroups(report.results);
  if (groups.length) {
    h.push('<section id="error-kinds">', "<h2>Errors by cause</h2>", "<ul>");
    for (const g of groups) {
      h.push(
        `<li><strong>${escHtml(g.kind)}</strong>: ${g.ids.length} task${
          g.ids.length === 1 ? "" : "s"
        } ` +
          `(${escHtml(g.ids.slice(0, 8).join(", "))}${g.ids.length > 8 ? ", …" : ""})${
            g.fix ? ` — fix: ${escHtml(g.fix)}` : ""
          }</li>`,
      );
    }
    h.push("</ul>", "</section>");
  }
  h.push(
    '<section id="durations">',
    "<h2>Tasks by duration</h2>",
  );
  if (sorted.length === 0) h.push('<p class="muted">No tasks ran.</p>');
  else {
    h.push('<ol class="bars">');
    for (const { t, i } of sorted) {
      const pct = longest > 0 ? Math.max(0, t.durationS) / longest * 100 : 0;
      const offset = Number.isFinite(t.startedAt) && t.startedAt >= runStart
        ? `, started at +${formatDuration((t.startedAt - runStart) / 1000)}`
        : "";
      const tip = `${t.id} (${t.category}): ${t.status}, ${formatDuration(t.durationS)}${offset}${
        t.reason ? ` - ${t.reason}` : ""
      }`;
      const label = `<a href="#${t.status === "passed" ? `o${i}` : anchor(i)}">${
        escHtml(t.id)
      }</a>`;
      h.push(
        `<li class="b-${t.status}" title="${escHtml(oneLine(tip))}">` +
          `<span class="id mono">${label}</span>` +
          `<span class="st s-${t.status}">${STATUS_WORD[t.status]}</span>` +
          `<span class="track"><span class="bar" style="width:${pct.toFixed(2)}%"></span></span>` +
          `<span class="dur">${formatDuration(t.durationS)}</span></li>`,
      );
    }
    h.push("</ol>");
  }
  h.push("</section>");

  const bad = sorted.filter(({ t }) => t.status !== "passed");
  h.push('<section id="failures">', `<h2>Failures and errors (${bad.length})</h2>`);
  if (bad.length === 0) h.push('<p class="muted">None.</p>');
  for (const { t, i } of bad) {
    h.push(
      `<article class="failure k-${t.status}" id="${anchor(i)}">`,
      `<h3><span class="s-${t.status}">${STATUS_WORD[t.status]}</span> <code>${
        escHtml(t.id)
      }</code> ${escHtml(t.name)}</h3>`,
      `<p class="muted">${escHtml(t.category)} · ${formatDuration(t.durationS)} · exit code ${
        t.exitCode ?? "none"
      } · ${t.attempts} attempt${t.attempts === 1 ? "" : "s"}</p>`,
      `<pre>${escHtml(t.reason || "(no reason given)")}</pre>`,
    );
    if (t.fix) h.push(`<p><strong>Fix:</strong> ${escHtml(t.fix)}</p>`);
    const facts = factLines(t);
    if (facts.length) h.push(`<p class="muted">${escHtml(facts.join(" · "))}</p>`);
    h.push(
      `<p><strong>Answer</strong>${
        t.answer === undefined ? ': <span class="muted">none</span>' : ""
      }</p>`,
    );
    if (t.answer !== undefined) {
      h.push(`<pre class="answer">${escHtml(excerpt(t.answer, 2000, 40))}</pre>`);
    }
    if (t.stderrTail) {
      h.push("<p><strong>stderr (last lines)</strong></p>", `<pre>${escHtml(t.stderrTail)}</pre>`);
    }
    if (t.patternsFound.length || t.patternsMissing.length) {
      h.push(
        `<p>Patterns found: ${escHtml(t.patternsFound.join(", ") || "none")}; missing: ${
          escHtml(t.patternsMissing.join(", ") || "none")
        }</p>`,
      );
    }
    if (t.outputFile) {
      h.push(
        `<p>Output: <a class="mono" href="${escHtml(outputHref(t.outputFile, opts.htmlPath))}">${
          escHtml(t.outputFile)
        }</a></p>`,
      );
    }
    if (t.filesCreated?.length) {
      h.push(
        `<p>Files created: <span class="mono">${escHtml(t.filesCreated.join(", "))}</span></p>`,
      );
    }
    if (t.workspace) {
      h.push(`<p>Workspace kept: <span class="mono">${escHtml(t.workspace)}</span></p>`);
    }
    if (t.instances?.length) {
      h.push(
        '<table class="inst"><thead><tr><th>#</th><th>Model</th><th>Temp.</th><th>Status</th>' +
          "<th>Duration</th><th>Exit</th><th>Score</th><th>Picked</th><th>Reason</th><th>Output</th>" +
          "</tr></thead><tbody>",
      );
      for (const x of t.instances) {
        const link = x.outputFile
          ? `<a href="${escHtml(outputHref(x.outputFile, opts.htmlPath))}">output</a>`
          : "";
        h.push(
          `<tr><td>${x.index}</td><td>${escHtml(x.model ?? "")}</td><td>${
            x.temperature ?? ""
          }</td><td class="s-${x.status}">${STATUS_WORD[x.status]}</td><td>${
            formatDuration(x.durationS)
          }</td><td>${x.exitCode ?? "none"}</td><td>${x.score ?? ""}</td><td>${
            x.picked ? "yes" : ""
          }</td><td>${escHtml(x.reason)}</td><td>${link}</td></tr>`,
        );
      }
      h.push("</tbody></table>");
    }
    h.push("</article>");
  }
  h.push("</section>");
  if (skipped.length) {
    h.push('<section id="skipped">', `<h2>Skipped (${skipped.length})</h2>`, "<ul>");
    for (const t of skipped) {
      h.push(
        `<li><code>${escHtml(t.id)}</code> ${escHtml(t.name)} <span class="muted">(${
          escHtml(t.category)
        }): ${escHtml(t.reason)}</span></li>`,
      );
    }
    h.push("</ul>", "</section>");
  }
  h.push('<section id="outputs">', "<h2>Every task's answer</h2>");
  for (const [i, t] of report.results.entries()) {
    const link = t.outputFile
      ? ` · <a class="mono" href="${
        escHtml(outputHref(t.outputFile, opts.htmlPath))
      }">raw output</a>`
      : "";
    h.push(
      `<details id="o${i}"><summary><span class="s-${t.status}">${STATUS_WORD[t.status]}</span> ` +
        `<code>${escHtml(t.id)}</code> ${escHtml(t.name)}${link}</summary>`,
      `<pre class="answer">${escHtml(t.answer ?? "(no answer)")}</pre>`,
      ...(t.stderrTail ? [`<pre class="muted">${escHtml(t.stderrTail)}</pre>`] : []),
      "</details>",
    );
  }
  h.push("</section>", "</main>", "</body>", "</html>");
  return h.join("\n") + "\n";
}

const SGR: Record<TestStatus, string> = {
  passed: "\x1b[32m",
  failed: "\x1b[31m",
  error: "\x1b[33m",
};
const RESET = "\x1b[0m";

/**
 * Colour a status word with ANSI when asked; the word itself is always there.
 *
 * @example
 * ```ts
 * import { statusWord } from "./report.ts";
 * console.log(statusWord("failed", false)); // FAIL
 * ```
 */
export function statusWord(status: TestStatus, color: boolean, width = 0): string {
  const w = STATUS_WORD[status].padEnd(width);
  return color ? `${SGR[status]}${w}${RESET}` : w;
}

/** Options of {@linkcode formatSummaryTable}. */
export interface TableOptions {
  /** Use ANSI colours (status words stay in plain text either way). */
  color: boolean;
}

/**
 * The console summary: one row per task (Test ID, Category, Status, Duration, Info = patterns
 * found or the reason, Output file) and a `SKIP` row per task that did not run; under it, for
 * each failure or error (up to 20), the reason, an excerpt of the answer and the last stderr
 * line; a per-category line, a cost/tokens line, then a counts line and, last, the ratio line.
 *
 * @example
 * ```ts
 * import { formatSummaryTable } from "./report.ts";
 * const text = formatSummaryTable({
 *   runId: "r1", suite: "smoke", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * }, { color: false });
 * console.log(text.trimEnd().split("\n").at(-1)); // Success ratio: 0.0:1 (need 10:1 to graduate)
 * ```
 */
export function formatSummaryTable(report: RunReport, opts: TableOptions): string {
  const head = ["Test ID", "Category", "Status", "Duration", "Info", "Output"];
  const caps = [40, 24, 6, 10, 60, Infinity];
  const rows = report.results.map((t) => {
    let info: string;
    if (t.status === "passed" && t.patternsFound.length) {
      const shown = t.patternsFound.slice(0, 3).map((p) => oneLine(p, 30)).join(", ");
      const more = t.patternsFound.length > 3 ? ` +${t.patternsFound.length - 3}` : "";
      info = `patterns: ${shown}${more}`;
    } else info = oneLine(t.reason) || (t.status === "passed" ? "ok" : "");
    if (t.attempts > 1) info = `[${t.attempts} attempts] ${info}`;
    return {
      status: t.status,
      cells: [
        oneLine(t.id),
        oneLine(t.category),
        STATUS_WORD[t.status],
        formatDuration(t.durationS),
        info,
        oneLine(t.outputFile ?? "-", 1000),
      ].map((c, i) => truncate(c, caps[i])),
    };
  });
  const widths = head.map((h, i) =>
    Math.min(caps[i], Math.max(h.length, ...rows.map((r) => Array.from(r.cells[i]).length)))
  );
  const pad = (s: string, w: number) => s + " ".repeat(Math.max(0, w - Array.from(s).length));
  const line = (cells: string[], status?: TestStatus) =>
    cells.map((c, i) => {
      if (i === cells.length - 1) return c;
      if (i === 2 && status) return statusWord(status, opts.color, widths[i]);
      return pad(c, widths[i]);
    }).join("  ").trimEnd();

  const out: string[] = [];
  const bold = (s: string) => opts.color ? `\x1b[1m${s}${RESET}` : s;
  out.push(bold(line(head)), line(widths.map((w) => "-".repeat(w))));
  if (rows.length === 0) out.push("(no tests ran)");
  for (const r of rows) out.push(line(r.cells, r.status));
  const skipped = report.skipped ?? [];
  for (const t of skipped) {
    out.push(`${oneLine(t.id, 40)}  ${oneLine(t.category, 24)}  SKIP  ${oneLine(t.reason, 60)}`);
  }
  out.push("");
  // What the failing tasks said, so a failure needs no file-digging.
  const bad = report.results.filter((t) => t.status !== "passed");
  for (const t of bad.slice(0, 20)) {
    out.push(`${statusWord(t.status, opts.color)} ${oneLine(t.id, 60)}: ${oneLine(t.reason, 200)}`);
    if (t.answer !== undefined) out.push(`  answer: ${oneLine(excerpt(t.answer, 200, 3), 200)}`);
    const err = t.stderrTail?.split("\n").filter((l) => l.trim()).at(-1);
    if (err) out.push(`  stderr: ${oneLine(err, 200)}`);
  }
  if (bad.length > 20) out.push(`… and ${bad.length - 20} more (see the reports)`);
  if (bad.length) out.push("");
  // What to do per failure kind is said once, after the table (`fixLines` in `ccx stress`).
  const cats = categorySummaries(report);
  if (cats.length > 1) {
    out.push(
      "By category: " + cats.map((c) =>
        `${oneLine(c.name, 30)} ${c.passed}/${c.total}` +
        (c.failed + c.errors ? ` (${c.failed} failed, ${c.errors} errors)` : "")
      ).join("; "),
    );
  }
  const totalsLine = formatTotalsLine(totals(report.results));
  if (totalsLine) out.push(totalsLine);
  const s = summarize(report.results, report.threshold);
  const verdict = s.graduated ? "GRADUATED" : "NOT GRADUATED";
  const colored = opts.color
    ? `${s.graduated ? SGR.passed : SGR.failed}${verdict}${RESET}`
    : verdict;
  out.push(
    `${s.total} tests: ${s.passed} passed, ${s.failed} failed, ${s.errors} errors${
      skipped.length ? `, ${skipped.length} skipped` : ""
    } in ${formatDuration(report.durationS)}${
      report.interrupted ? " (interrupted)" : ""
    } — ${colored}`,
  );
  out.push(formatRatioLine(s, report.threshold));
  return out.join("\n") + "\n";
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
 * import { writeReports } from "./report.ts";
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
 * import { writeOutputFile } from "./report.ts";
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

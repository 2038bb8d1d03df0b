/**
 * The JSON report (`--json`) and reading it back (`--resume`, `--last-failed`): snake_case keys,
 * every key always present. `summary.ratio` is `null` when nothing failed (JSON has no infinity),
 * together with `"graduated": true`.
 *
 * @module
 */

import {
  categorySummaries,
  type ComparedTask,
  type Comparison,
  errorGroups,
  repeatSummary,
  runFactsOf,
  type RunMeta,
  type RunReport,
  type SkippedTask,
  summarize,
  type Summary,
  type TestResult,
  type Totals,
  totals,
} from "./model.ts";
import type { CheckResult } from "../../verdict/check.ts";
import type { RubricResult } from "../../verdict/rubric.ts";

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/**
 * The machine-readable report: snake_case keys, every key always present (`null` when unknown),
 * `instances` only for concurrent tasks. `summary.ratio` is `null` when nothing failed (infinite).
 * Durations are seconds rounded to milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toJson } from "./json.ts";
 * const json = toJson({
 *   runId: "r1", suite: "smoke", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * });
 * assert.equal(JSON.parse(json).summary.graduated, false);
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
  const facts = runFactsOf(report.results);
  const m = report.meta;
  const repeats = repeatSummary(report);
  const obj = {
    run_id: report.runId,
    suite: report.suite,
    started_at: report.startedAt.toISOString(),
    duration_s: round3(report.durationS),
    interrupted: report.interrupted,
    threshold: report.threshold,
    repeat: report.repeat ?? 1,
    run: {
      ccx_version: m?.ccxVersion ?? null,
      host: m?.host ?? null,
      command_line: m?.commandLine ?? null,
      suite_hash: m?.suiteHash ?? null,
      model: m?.model ?? null,
      judge_model: m?.judgeModel ?? null,
      claude_code_versions: facts.claudeVersions,
      models: facts.models,
    },
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
      pass_at_1: repeats?.passAt1 ?? null,
      flaky: repeats?.flaky ?? [],
    },
    repeats: repeats?.tasks ?? [],
    comparison: report.comparison ? comparisonJson(report.comparison) : null,
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
          claude_code_version: t.cliVersion ?? null,
          request: t.request ?? null,
          kind: t.kind ?? null,
          fix: t.fix ?? null,
          started_at: Number.isFinite(t.startedAt) ? new Date(t.startedAt).toISOString() : null,
          files_created: t.filesCreated ?? [],
          workspace: t.workspace ?? null,
          checks: (t.checks ?? []).map(checkJson),
          rubric: t.rubric ? rubricJson(t.rubric) : null,
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

function checkJson(c: CheckResult): Record<string, unknown> {
  return {
    command: c.command,
    status: c.status,
    exit_code: c.exitCode,
    duration_s: round3(c.durationS),
    stdout_tail: c.stdoutTail ?? null,
    stderr_tail: c.stderrTail ?? null,
    reason: c.reason ?? null,
  };
}

function rubricJson(r: RubricResult): Record<string, unknown> {
  return {
    status: r.status,
    statements: r.statements,
    reason: r.reason,
    model: r.model ?? null,
    duration_s: round3(r.durationS),
    cost_usd: r.costUsd ?? null,
  };
}

function summaryJson(s: Summary): Record<string, unknown> {
  return {
    total: s.total,
    passed: s.passed,
    failed: s.failed,
    errors: s.errors,
    ratio: s.ratio,
    graduated: s.graduated,
  };
}

/**
 * A comparison with a baseline as the JSON report's `comparison` (and `ccx report diff --json`)
 * writes it: snake_case keys, every key present.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { comparisonJson } from "./json.ts";
 * import { compareRuns } from "../compare.ts";
 * const run = (runId: string, status: "passed" | "failed") => ({
 *   runId, suite: "s.json", startedAt: new Date(0), durationS: 1, interrupted: false,
 *   threshold: 10, results: [{
 *     id: "t", name: "t", category: "c", status, reason: "", durationS: 1, exitCode: 0,
 *     patternsFound: [], patternsMissing: [], attempts: 1, startedAt: 0,
 *   }],
 * });
 * const j = comparisonJson(compareRuns(run("a", "passed"), run("b", "failed"), "a/report.json"));
 * assert.deepEqual(j.regressed, [{ id: "t", before: "passed", after: "failed", reason: "" }]);
 * ```
 */
export function comparisonJson(c: Comparison): Record<string, unknown> {
  const tasks = (ts: ComparedTask[]) =>
    ts.map((t) => ({
      id: t.id,
      before: t.before ?? null,
      after: t.after ?? null,
      reason: t.reason ?? null,
    }));
  return {
    baseline: {
      run_id: c.baseline.runId,
      suite: c.baseline.suite,
      started_at: c.baseline.startedAt.toISOString(),
      path: c.baseline.path ?? null,
    },
    regressed: tasks(c.regressed),
    fixed: tasks(c.fixed),
    still_failing: tasks(c.stillFailing),
    new: tasks(c.added),
    gone: tasks(c.gone),
    before: summaryJson(c.before),
    after: summaryJson(c.after),
    differences: c.differences,
  };
}

function readCheck(x: unknown): CheckResult | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const c = x as Record<string, unknown>;
  if (typeof c.command !== "string") return undefined;
  const status = c.status === "passed" || c.status === "failed" ? c.status : "error";
  return {
    command: c.command,
    status,
    exitCode: typeof c.exit_code === "number" ? c.exit_code : null,
    durationS: typeof c.duration_s === "number" ? c.duration_s : 0,
    ...(typeof c.stdout_tail === "string" ? { stdoutTail: c.stdout_tail } : {}),
    ...(typeof c.stderr_tail === "string" ? { stderrTail: c.stderr_tail } : {}),
    ...(typeof c.reason === "string" ? { reason: c.reason } : {}),
  };
}

function readRubric(x: unknown): RubricResult | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const r = x as Record<string, unknown>;
  const status = r.status === "passed" || r.status === "failed" ? r.status : "error";
  return {
    status,
    statements: Array.isArray(r.statements) ? r.statements.map(String) : [],
    reason: typeof r.reason === "string" ? r.reason : "",
    durationS: typeof r.duration_s === "number" ? r.duration_s : 0,
    ...(typeof r.model === "string" ? { model: r.model } : {}),
    ...(typeof r.cost_usd === "number" ? { costUsd: r.cost_usd } : {}),
  };
}

function readMeta(x: unknown): RunMeta | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const m = x as Record<string, unknown>;
  if (typeof m.ccx_version !== "string") return undefined;
  return {
    ccxVersion: m.ccx_version,
    host: typeof m.host === "string" ? m.host : "",
    commandLine: Array.isArray(m.command_line) ? m.command_line.map(String) : [],
    ...(typeof m.suite_hash === "string" ? { suiteHash: m.suite_hash } : {}),
    ...(typeof m.model === "string" ? { model: m.model } : {}),
    ...(typeof m.judge_model === "string" ? { judgeModel: m.judge_model } : {}),
  };
}

/**
 * Reads a report written by {@linkcode toJson} back: the results (with their answers, tokens,
 * …) and the skipped tasks. Used by `ccx stress --resume` and `--last-failed`. Throws a
 * `SyntaxError` naming what is wrong for a file that is not such a report.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromJson, toJson } from "./json.ts";
 * const r = fromJson(toJson({
 *   runId: "r1", suite: "s", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: true, threshold: 10, skipped: [{ id: "a", name: "a", category: "c", reason: "interrupted" }],
 * }));
 * assert.equal(r.skipped?.length, 1);
 * assert.deepEqual(r.startedAt, new Date(0));
 * assert.throws(() => fromJson("{}"));
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
      ["cliVersion", str(t.claude_code_version)],
      ["request", str(t.request)],
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
        "checks",
        Array.isArray(t.checks) && t.checks.length
          ? t.checks.map(readCheck).filter((c) => c !== undefined)
          : undefined,
      ],
      ["rubric", readRubric(t.rubric)],
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
    ...(readMeta(o.run) ? { meta: readMeta(o.run) } : {}),
    ...(num(o.repeat, 1) > 1 ? { repeat: num(o.repeat, 1) } : {}),
  };
}

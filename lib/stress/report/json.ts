/**
 * The JSON report (`--json`) and reading it back (`--resume`, `--last-failed`): snake_case keys,
 * every key always present. `summary.ratio` is `null` when nothing failed (JSON has no infinity),
 * together with `"graduated": true`.
 *
 * @module
 */

import {
  categorySummaries,
  errorGroups,
  type RunReport,
  type SkippedTask,
  summarize,
  type TestResult,
  type Totals,
  totals,
} from "./model.ts";

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
          claude_code_version: t.cliVersion ?? null,
          request: t.request ?? null,
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

/**
 * Text helpers every report format shares: durations, the ratio and totals lines, one-line and
 * excerpted text, the status words, and the per-result facts (model, turns, tokens, cost).
 *
 * The ratio line truncates to one decimal rather than rounding, so it never shows `10.0:1` for a
 * run that did not reach 10:1; it says `∞:1` when nothing failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatRatioLine } from "./format.ts";
 * import { summarize } from "./model.ts";
 * const s = summarize([], 10);
 * assert.equal(formatRatioLine(s, 10), "Success ratio: 0.0:1 (need 10:1 to graduate)");
 * ```
 * @module
 */

import {
  type ComparedTask,
  type Comparison,
  type RepeatSummary,
  runFactsOf,
  type RunReport,
  type Summary,
  type TestResult,
  type TestStatus,
  type Totals,
} from "./model.ts";
import { formatDuration } from "../../common/format.ts";

/**
 * The first `max` characters of an answer, on at most `lines` lines, with `…` when cut.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { excerpt } from "./format.ts";
 * assert.equal(excerpt("a\nb\nc", 100, 2), "a\nb …");
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
 * import assert from "node:assert/strict";
 * import { formatTotalsLine } from "./format.ts";
 * assert.equal(
 *   formatTotalsLine({ costUsd: 0.0123, tokens: { input: 1200, output: 340, cacheRead: 0, cacheCreation: 0 } }),
 *   "Cost $0.0123; tokens 1200 in, 340 out, 0 cache read, 0 cache write",
 * );
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
 * import assert from "node:assert/strict";
 * import { formatRatioLine } from "./format.ts";
 * const s = { total: 23, passed: 20, failed: 3, errors: 0, ratio: 20 / 3, graduated: false };
 * assert.equal(formatRatioLine(s, 10), "Success ratio: 6.6:1 (need 10:1 to graduate)");
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
 * import assert from "node:assert/strict";
 * import { oneLine } from "./format.ts";
 * assert.equal(oneLine("\x1b[31mexit 1\x1b[0m\nstderr:\tboom"), "exit 1 stderr: boom");
 * ```
 */
export function oneLine(text: string, max = 500): string {
  const s = text.replace(ANSI, "").replace(/[\t\n\r\v\f]+/g, " ").replace(CONTROL, "")
    .replace(/ {2,}/g, " ").trim();
  return truncate(s, max);
}

/**
 * Cut to at most `max` code points, ending with `…` when cut.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { truncate } from "./format.ts";
 * assert.equal(truncate("abcdef", 4), "abc…");
 * assert.equal(truncate("abc", 4), "abc");
 * ```
 */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const cps = Array.from(s);
  if (cps.length <= max) return s;
  return max <= 0 ? "" : cps.slice(0, max - 1).join("") + "…";
}

/**
 * Remove ANSI sequences and characters XML 1.0 does not allow (what JUnit and HTML output do
 * before escaping).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clean } from "./format.ts";
 * assert.equal(clean("\x1b[31mred\x1b[0m\x00!"), "red!");
 * ```
 */
export function clean(text: string): string {
  return text.replace(ANSI, "").replace(XML_ILLEGAL, "");
}

/**
 * Model, turns, tokens, cost and failure kind of a result, one fact a line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { factLines } from "./format.ts";
 * assert.deepEqual(factLines({
 *   id: "t", name: "t", category: "c", status: "passed", reason: "", durationS: 1, exitCode: 0,
 *   patternsFound: [], patternsMissing: [], attempts: 1, startedAt: 0, model: "haiku", turns: 2,
 * }), ["model: haiku", "turns: 2"]);
 * ```
 */
export function factLines(t: TestResult): string[] {
  const out: string[] = [];
  if (t.model) out.push(`model: ${t.model}`);
  if (t.cliVersion) out.push(`Claude Code ${t.cliVersion}`);
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

/** The word each status is shown as, in every report: `PASS`, `FAIL`, `ERROR`. */
export const STATUS_WORD: Record<TestStatus, string> = {
  passed: "PASS",
  failed: "FAIL",
  error: "ERROR",
};

/**
 * One line per check of a result: its command, status, exit code, duration and, for an
 * error, why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLines } from "./format.ts";
 * assert.deepEqual(
 *   checkLines({ checks: [{ command: "pytest -q", status: "failed", exitCode: 1, durationS: 0.4 }] }),
 *   ['check "pytest -q": FAIL, exit 1, 0.4s'],
 * );
 * ```
 */
export function checkLines(t: Pick<TestResult, "checks">): string[] {
  return (t.checks ?? []).map((c) =>
    `check ${JSON.stringify(c.command)}: ${STATUS_WORD[c.status]}, ` +
    `exit ${c.exitCode ?? "none"}, ${formatDuration(c.durationS)}` +
    (c.reason ? `, ${c.reason}` : "")
  );
}

/**
 * The rubric's line of a result: its verdict, the judge's model and reason; `undefined` without
 * a rubric.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rubricLine } from "./format.ts";
 * assert.equal(
 *   rubricLine({ rubric: { status: "failed", statements: ["s"], reason: "add subtracts", durationS: 2, model: "m" } }),
 *   "rubric (1 statement, judge m): FAIL: add subtracts",
 * );
 * ```
 */
export function rubricLine(t: Pick<TestResult, "rubric">): string | undefined {
  const r = t.rubric;
  if (!r) return undefined;
  const n = r.statements.length;
  return `rubric (${n} statement${n === 1 ? "" : "s"}${r.model ? `, judge ${r.model}` : ""}): ` +
    `${STATUS_WORD[r.status]}: ${r.reason}`;
}

/**
 * What was run, one fact a line: ccx and host, Claude Code versions, models, the suite's hash,
 * the command line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFactLines } from "./format.ts";
 * assert.deepEqual(
 *   runFactLines({ results: [], meta: { ccxVersion: "0.1.0", host: "box", commandLine: ["stress"] } }),
 *   ["ccx 0.1.0 on box", "command: ccx stress"],
 * );
 * ```
 */
export function runFactLines(report: Pick<RunReport, "results" | "meta">): string[] {
  const f = runFactsOf(report.results);
  const m = report.meta;
  const out: string[] = [];
  if (m) out.push(`ccx ${m.ccxVersion} on ${m.host}`);
  if (f.claudeVersions.length) out.push(`Claude Code ${f.claudeVersions.join(", ")}`);
  if (f.models.length || m?.model) {
    out.push(
      `models ${f.models.join(", ") || "unknown"}${m?.model ? ` (--model ${m.model})` : ""}`,
    );
  }
  if (m?.judgeModel) out.push(`judge model ${m.judgeModel}`);
  if (m?.suiteHash) out.push(`suite ${m.suiteHash}`);
  if (m) out.push(`command: ccx ${m.commandLine.join(" ")}`);
  return out;
}

function taskList(ts: ComparedTask[], max = 10, withReason = false): string {
  const shown = ts.slice(0, max).map((t) =>
    `${t.id} (${t.before ?? "new"} → ${t.after ?? "gone"}` +
    (withReason && t.reason ? `: ${oneLine(t.reason, 80)}` : "") + ")"
  );
  return shown.join(", ") + (ts.length > max ? `, … ${ts.length - max} more` : "");
}

/** The ratio of a summary, as `X:1` (truncated, `∞` when nothing failed). */
function ratioText(s: Summary): string {
  return formatRatioLine(s, 0).replace(/^Success ratio: /, "").replace(/ \(need .*$/, "");
}

/**
 * The comparison with a baseline, as lines: which run, the ratio before and after, the tasks
 * that regressed, were fixed, still fail, are new or gone, and what differs in what was run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { comparisonLines } from "./format.ts";
 * import { compareRuns } from "../compare.ts";
 * const run = (runId: string, status: "passed" | "failed", reason: string) => ({
 *   runId, suite: "s.json", startedAt: new Date(0), durationS: 1, interrupted: false,
 *   threshold: 10, results: [{
 *     id: "simple_3", name: "n", category: "c", status, reason, durationS: 1, exitCode: 0,
 *     patternsFound: [], patternsMissing: [], attempts: 1, startedAt: 0,
 *   }],
 * });
 * const lines = comparisonLines(
 *   compareRuns(run("r1", "passed", "exit 0"), run("r2", "failed", "missing pattern: 4"), "old/report.json"),
 * );
 * assert.equal(lines[0], "Compared with r1 (old/report.json):");
 * assert.ok(lines.includes("  REGRESSED (1): simple_3 (passed → failed: missing pattern: 4)"));
 * ```
 */
export function comparisonLines(c: Comparison): string[] {
  const b = c.before, a = c.after;
  const out = [
    `Compared with ${c.baseline.runId || "a run"}${
      c.baseline.path ? ` (${c.baseline.path})` : ""
    }:`,
    `  ratio ${ratioText(b)} → ${ratioText(a)} (${b.total} → ${a.total} tests: ` +
    `${b.passed} → ${a.passed} passed, ${b.failed} → ${a.failed} failed, ` +
    `${b.errors} → ${a.errors} errors)`,
  ];
  const part = (label: string, ts: ComparedTask[], reason = false) => {
    if (ts.length) out.push(`  ${label} (${ts.length}): ${taskList(ts, 10, reason)}`);
  };
  part("REGRESSED", c.regressed, true);
  part("fixed", c.fixed);
  part("still failing", c.stillFailing);
  part("new", c.added);
  part("gone", c.gone);
  if (!c.regressed.length && !c.fixed.length) {
    out.push("  no task changed its verdict");
  }
  for (const d of c.differences) out.push(`  differs: ${d}`);
  return out;
}

/**
 * What `--repeat N` found: pass@1, the flaky tasks, and k/N per task that did not always pass.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { repeatLines } from "./format.ts";
 * const lines = repeatLines({ repeat: 3, passAt1: 0.667, flaky: ["a"], tasks: [
 *   { id: "a", category: "c", runs: 3, passed: 2, flaky: true },
 * ] });
 * assert.deepEqual(lines, ["Repeats: 3 runs a task; pass@1 66.7%; flaky (1): a", "  a: 2/3 passed (flaky)"]);
 * ```
 */
export function repeatLines(r: RepeatSummary): string[] {
  const out = [
    `Repeats: ${r.repeat} runs a task; pass@1 ${(r.passAt1 * 100).toFixed(1)}%; ` +
    (r.flaky.length ? `flaky (${r.flaky.length}): ${r.flaky.join(", ")}` : "no flaky task"),
  ];
  for (const t of r.tasks) {
    if (t.passed === t.runs) continue;
    out.push(`  ${t.id}: ${t.passed}/${t.runs} passed${t.flaky ? " (flaky)" : ""}`);
  }
  return out;
}

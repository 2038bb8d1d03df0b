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

import type { Summary, TestResult, TestStatus, Totals } from "./model.ts";

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

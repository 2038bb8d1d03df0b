/**
 * The console summary of a run: the per-task table, what the failing tasks said, per-category
 * counts, totals, the counts line and, last, the ratio line. Status words may be coloured with
 * ANSI; the words themselves are always there.
 *
 * @module
 */

import {
  checkLines,
  comparisonLines,
  excerpt,
  formatRatioLine,
  formatTotalsLine,
  oneLine,
  repeatLines,
  rubricLine,
  runFactLines,
  STATUS_WORD,
  truncate,
} from "./format.ts";
import {
  categorySummaries,
  repeatSummary,
  type RunReport,
  summarize,
  type TestStatus,
  totals,
} from "./model.ts";
import { formatDuration, plural } from "../../common/format.ts";

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
 * import assert from "node:assert/strict";
 * import { statusWord } from "./console.ts";
 * assert.equal(statusWord("failed", false), "FAIL");
 * assert.equal(statusWord("passed", true), "\x1b[32mPASS\x1b[0m");
 * ```
 */
export function statusWord(status: TestStatus, color: boolean, width = 0): string {
  const w = STATUS_WORD[status].padEnd(width);
  return color ? `${SGR[status]}${w}${RESET}` : w;
}

/** {@linkcode oneLine} that keeps the line's indentation. */
function indented(line: string, max = 1000): string {
  const ind = /^ */.exec(line)![0];
  return ind + oneLine(line, max);
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
 * import assert from "node:assert/strict";
 * import { formatSummaryTable } from "./console.ts";
 * const text = formatSummaryTable({
 *   runId: "r1", suite: "smoke", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * }, { color: false });
 * assert.equal(text.trimEnd().split("\n").at(-1), "Success ratio: 0.0:1 (need 10:1 to graduate)");
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
  // A task that did not run gets a row in the same columns: SKIP, and why in Info.
  const skipped = report.skipped ?? [];
  const skipRows = skipped.map((t) =>
    [oneLine(t.id), oneLine(t.category), "SKIP", "-", oneLine(t.reason), "-"].map((c, i) =>
      truncate(c, caps[i])
    )
  );
  const all = [...rows.map((r) => r.cells), ...skipRows];
  const widths = head.map((h, i) =>
    Math.min(caps[i], Math.max(h.length, ...all.map((cells) => Array.from(cells[i]).length)))
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
  for (const cells of skipRows) out.push(line(cells));
  out.push("");
  // What the failing tasks said, so a failure needs no file-digging.
  const bad = report.results.filter((t) => t.status !== "passed");
  for (const t of bad.slice(0, 20)) {
    out.push(`${statusWord(t.status, opts.color)} ${oneLine(t.id, 60)}: ${oneLine(t.reason, 200)}`);
    if (t.answer !== undefined) out.push(`  answer: ${oneLine(excerpt(t.answer, 200, 3), 200)}`);
    const err = t.stderrTail?.split("\n").filter((l) => l.trim()).at(-1);
    if (err) out.push(`  stderr: ${oneLine(err, 200)}`);
    // What its checks did: each check's exit and time, and the end of what a failing one printed.
    for (const [i, line] of checkLines(t).entries()) {
      out.push(`  ${oneLine(line, 200)}`);
      const c = t.checks![i];
      if (c.status === "passed") continue;
      const tail = [c.stdoutTail, c.stderrTail].filter((x) => x).join("\n").split("\n")
        .filter((l) => l.trim()).slice(-5);
      for (const l of tail) out.push(`    | ${oneLine(l, 200)}`);
    }
    const rubric = rubricLine(t);
    if (rubric) out.push(`  ${oneLine(rubric, 300)}`);
  }
  if (bad.length > 20) out.push(`… and ${bad.length - 20} more (see the reports)`);
  if (bad.length) out.push("");
  // What to do per failure kind is said once, after the table (`fixLines` in `ccx stress`).
  const cats = categorySummaries(report);
  if (cats.length > 1) {
    out.push(
      "By category: " + cats.map((c) =>
        `${oneLine(c.name, 30)} ${c.passed}/${c.total}` +
        (c.failed + c.errors ? ` (${c.failed} failed, ${plural(c.errors, "error")})` : "")
      ).join("; "),
    );
  }
  const totalsLine = formatTotalsLine(totals(report.results));
  if (totalsLine) out.push(totalsLine);
  const facts = runFactLines(report);
  if (facts.length) out.push(`Run: ${oneLine(facts.join("; "), 400)}`);
  const repeats = repeatSummary(report);
  if (repeats) out.push(...repeatLines(repeats).map((l) => indented(l, 400)));
  if (report.comparison) out.push(...comparisonLines(report.comparison).map((l) => indented(l)));
  const s = summarize(report.results, report.threshold);
  const verdict = s.graduated ? "GRADUATED" : "NOT GRADUATED";
  const colored = opts.color
    ? `${s.graduated ? SGR.passed : SGR.failed}${verdict}${RESET}`
    : verdict;
  out.push(
    `${plural(s.total, "test")}: ${s.passed} passed, ${s.failed} failed, ${
      plural(s.errors, "error")
    }${skipped.length ? `, ${skipped.length} skipped` : ""} in ${formatDuration(report.durationS)}${
      report.interrupted ? " (interrupted)" : ""
    } — ${colored}`,
  );
  out.push(formatRatioLine(s, report.threshold));
  return out.join("\n") + "\n";
}

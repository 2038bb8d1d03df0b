/**
 * The JUnit XML report (`--junit`), for Jenkins and GitLab: validates against the Jenkins xUnit
 * plugin's `junit-10.xsd`. Text is escaped; ANSI sequences and characters illegal in XML 1.0 are
 * removed.
 *
 * @module
 */

import { checkLines, clean, factLines, rubricLine } from "./format.ts";
import {
  repeatSummary,
  runFactsOf,
  type RunReport,
  type SkippedTask,
  summarize,
  type TestResult,
} from "./model.ts";
import { formatDuration } from "../../common/format.ts";

/** Escape for XML text and attribute values (after {@linkcode clean}). */
function esc(text: string): string {
  return clean(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Escape for an XML attribute, keeping line breaks and tabs (parsers would normalise them). */
function escAttr(text: string): string {
  return esc(text).replace(/\n/g, "&#10;").replace(/\r/g, "&#13;").replace(/\t/g, "&#9;");
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
  lines.push(...checkLines(t));
  const rubric = rubricLine(t);
  if (rubric) lines.push(rubric);
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
 * import assert from "node:assert/strict";
 * import { toJunit } from "./junit.ts";
 * const xml = toJunit({
 *   runId: "r1", suite: "smoke", startedAt: new Date(0), durationS: 1, interrupted: false,
 *   threshold: 10, results: [{
 *     id: "simple_1", name: "2+2", category: "simple", status: "failed", reason: "missing <4>",
 *     durationS: 1.5, exitCode: 0, patternsFound: [], patternsMissing: ["4"], attempts: 1,
 *     startedAt: 0, answer: "five",
 *   }],
 * });
 * assert.ok(xml.includes('<failure message="missing &lt;4&gt;"'));
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
  // What was run, and what repeats found, on every suite.
  const repeats = repeatSummary(report);
  const facts = runFactsOf(report.results);
  const m = report.meta;
  const runProperties: [string, string][] = [
    ...(m ? [["ccx_version", m.ccxVersion], ["host", m.host]] as [string, string][] : []),
    ["claude_code_versions", facts.claudeVersions.join(" ")],
    ["models", facts.models.join(" ")],
    ...(m?.suiteHash ? [["suite_hash", m.suiteHash]] as [string, string][] : []),
    ...(m ? [["command_line", `ccx ${m.commandLine.join(" ")}`]] as [string, string][] : []),
  ];
  if (repeats) {
    runProperties.push(["pass_at_1", String(repeats.passAt1)]);
    runProperties.push(["flaky", repeats.flaky.join(" ")]);
  }
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
        ...runProperties,
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
      for (const c of t.checks ?? []) {
        if (c.stdoutTail) {
          sysout.push("", `check ${JSON.stringify(c.command)} stdout:`, c.stdoutTail);
        }
        if (c.stderrTail) {
          sysout.push("", `check ${JSON.stringify(c.command)} stderr:`, c.stderrTail);
        }
      }
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

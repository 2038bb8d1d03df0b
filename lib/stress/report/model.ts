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

import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { RunFacts } from "../../verdict/answer.ts";
import {
  clean,
  excerpt,
  factLines,
  formatDuration,
  formatRatioLine,
  formatTotalsLine,
  oneLine,
  STATUS_WORD,
} from "./format.ts";
import { toJson } from "./json.ts";
import { toJunit } from "./junit.ts";

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

/** Escape for HTML text and attribute values, after {@linkcode clean} (`&#39;`, not `&apos;`, which HTML 4 lacks). */
function escHtml(text: string): string {
  return clean(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const STATUS_ORDER: Record<TestStatus, number> = { failed: 0, error: 1, passed: 2 };

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
 * import { toHtml } from "./model.ts";
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

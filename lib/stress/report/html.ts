/**
 * The HTML report (`--html`): one self-contained page (inline CSS, no scripts, no external
 * assets) with the header, a duration bar per task, the failures with their reasons and answers,
 * and every task's answer.
 *
 * Every piece of the page is made with the {@linkcode markup} template of `html_template.ts`,
 * which escapes whatever it interpolates; only the constant style sheet goes in through `raw`.
 *
 * @module
 */

import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import {
  checkLines,
  comparisonLines,
  excerpt,
  factLines,
  formatRatioLine,
  formatTotalsLine,
  oneLine,
  rubricLine,
  runFactLines,
  STATUS_WORD,
} from "./format.ts";
import { documentHead, type Markup, markup, type MarkupValue, raw } from "./html_template.ts";
import type { ConversationItem } from "./conversation.ts";
import {
  categorySummaries,
  type ComparedTask,
  type Comparison,
  errorGroups,
  type InstanceResult,
  repeatSummary,
  type RunReport,
  type SkippedTask,
  summarize,
  type TestResult,
  type TestStatus,
  totals,
} from "./model.ts";
import { formatDuration, plural } from "../../common/format.ts";

const STATUS_ORDER: Record<TestStatus, number> = { failed: 0, error: 1, passed: 2 };

/** Options of {@linkcode toHtml}. */
export interface HtmlOptions {
  /** Where the page will be written; output-file links are made relative to its directory. */
  htmlPath?: string;
  /**
   * Each task's conversation by result id, read from its saved output (see
   * `conversation.ts`); a task without one shows its answer alone.
   */
  conversations?: ReadonlyMap<string, ConversationItem[]>;
}

/** The href for an output file, relative to the HTML file's directory when known. */
function outputHref(file: string, htmlPath?: string): string {
  const encode = (p: string) =>
    p.split(sep === "\\" ? /[\\/]/ : "/").map((seg) => encodeURIComponent(seg)).join("/");
  if (htmlPath !== undefined) return encode(relative(dirname(resolve(htmlPath)), resolve(file)));
  if (isAbsolute(file)) return pathToFileURL(file).href;
  return encode(file);
}

/** The page's style sheet (a constant: trusted HTML). */
const CSS = raw(`
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
.convo{margin:.3rem 0 .8rem 1rem}
.msg{border-left:3px solid var(--line);padding:.1rem .6rem;margin:.35rem 0}
.msg pre{margin:.15rem 0;padding:.3rem .5rem;white-space:pre-wrap;word-break:break-word;
background:var(--track);border-radius:.2rem}
.msg .who{font-size:.8rem;color:var(--muted);font-weight:600}
.msg.k-request{border-left-color:var(--fg)}.msg.k-assistant{border-left-color:var(--pass)}
.msg.k-tool-call{border-left-color:#5c7cfa}.msg.k-tool-result{border-left-color:#adb5bd}
.msg.k-result{border-left-color:var(--pass)}.msg.bad{border-left-color:var(--fail)}
.msg.k-system .who,.msg.k-system pre{font-size:.8rem}
`.trim());

/**
 * One self-contained HTML page (inline CSS, no scripts, no external assets): header with run id,
 * suite, start, duration, counts and the ratio line; a duration bar per task (width relative to
 * the longest, coloured and labelled by status, failures first, then errors, then passes); and a
 * failures section with reasons and links to the output files. Every piece is built with the
 * {@linkcode markup} template, so all task data is escaped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toHtml } from "./html.ts";
 * const html = toHtml({
 *   runId: "r1", suite: "<b>smoke</b>", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * });
 * assert.ok(html.startsWith("<!DOCTYPE html>") || html.startsWith("<!doctype html>"));
 * assert.ok(html.includes("&lt;b&gt;smoke&lt;/b&gt;")); // every interpolation is escaped
 * ```
 */
export function toHtml(report: RunReport, opts: HtmlOptions = {}): string {
  const sorted = report.results.map((t, i) => ({ t, i })).sort((a, b) =>
    STATUS_ORDER[a.t.status] - STATUS_ORDER[b.t.status] || a.i - b.i
  );
  const href = (file: string) => outputHref(file, opts.htmlPath);
  const page: Markup[] = [
    ...header(report),
    ...comparisonSection(report.comparison),
    ...repeatSection(report),
    ...categoryTable(report),
    ...errorKinds(report.results),
    ...durationBars(report, sorted),
    ...failureCards(sorted.filter(({ t }) => t.status !== "passed"), href),
    ...skippedList(report.skipped ?? []),
    ...answers(report.results, href, opts.conversations),
    markup`</main>`,
    markup`</body>`,
    markup`</html>`,
  ];
  return page.join("\n") + "\n";
}

/** A result with its position in the run (anchors are numbered by it). */
interface Indexed {
  t: TestResult;
  i: number;
}

/** Fragments one after the other, as one fragment (to keep long lines of markup readable). */
function join(...parts: MarkupValue[]): Markup {
  return markup`${parts}`;
}

/** The anchor of a failure card. */
const anchor = (i: number): string => `t${i}`;

/** From the doctype to the opening `<main>`: title, verdict, run facts and the ratio line. */
function header(report: RunReport): Markup[] {
  const s = summarize(report.results, report.threshold);
  const skipped = report.skipped?.length ?? 0;
  const totalsLine = formatTotalsLine(totals(report.results));
  const started = report.startedAt.toISOString();
  return [
    ...documentHead(`ccx stress: ${report.suite} (${report.runId})`, CSS),
    markup`<body>`,
    markup`<header>`,
    markup`<h1>ccx stress report: ${report.suite}</h1>`,
    join(
      markup`<p><span class="verdict ${s.graduated ? "yes" : "no"}">`,
      s.graduated ? "GRADUATED" : "NOT GRADUATED",
      markup`</span>`,
      report.interrupted ? markup` <span class="verdict interrupted">INTERRUPTED</span>` : "",
      markup`</p>`,
    ),
    markup`<dl class="meta">`,
    markup`<dt>Run</dt><dd class="mono">${report.runId}</dd>`,
    markup`<dt>Suite</dt><dd>${report.suite}</dd>`,
    markup`<dt>Started</dt><dd><time datetime="${started}">${started}</time></dd>`,
    markup`<dt>Duration</dt><dd>${formatDuration(report.durationS)}</dd>`,
    join(
      markup`<dt>Results</dt><dd>${plural(s.total, "test")}: `,
      markup`<span class="s-passed">${s.passed} passed</span>, `,
      markup`<span class="s-failed">${s.failed} failed</span>, `,
      markup`<span class="s-error">${plural(s.errors, "error")}</span>`,
      skipped ? markup`, <span class="muted">${skipped} skipped</span>` : "",
      markup`</dd>`,
    ),
    ...(totalsLine ? [markup`<dt>Totals</dt><dd>${totalsLine}</dd>`] : []),
    ...(runFactLines(report).length
      ? [markup`<dt>What ran</dt><dd>${runFactLines(report).join(" · ")}</dd>`]
      : []),
    markup`</dl>`,
    markup`<p class="ratio">${formatRatioLine(s, report.threshold)}</p>`,
    markup`</header>`,
    markup`<main>`,
  ];
}

/** Counts per category, when there is more than one category or a task was skipped. */
function categoryTable(report: RunReport): Markup[] {
  const cats = categorySummaries(report);
  if (cats.length <= 1 && !report.skipped?.length) return [];
  return [
    markup`<section id="categories">`,
    markup`<h2>By category</h2>`,
    join(
      markup`<table class="inst"><thead><tr><th>Category</th><th>Tasks</th><th>Passed</th>`,
      markup`<th>Failed</th><th>Errors</th><th>Skipped</th></tr></thead><tbody>`,
    ),
    ...cats.map((c) =>
      join(
        markup`<tr><td>${c.name}</td><td>${c.total}</td><td class="s-passed">${c.passed}</td>`,
        markup`<td class="s-failed">${c.failed}</td><td class="s-error">${c.errors}</td>`,
        markup`<td>${c.skipped}</td></tr>`,
      )
    ),
    markup`</tbody></table>`,
    markup`</section>`,
  ];
}

/** Errors grouped by failure kind, with the fix, when any task errored. */
function errorKinds(results: TestResult[]): Markup[] {
  const groups = errorGroups(results);
  if (!groups.length) return [];
  return [
    markup`<section id="error-kinds">`,
    markup`<h2>Errors by cause</h2>`,
    markup`<ul>`,
    ...groups.map((g) => {
      const n = g.ids.length;
      return join(
        markup`<li><strong>${g.kind}</strong>: ${n} task${n === 1 ? "" : "s"} `,
        markup`(${g.ids.slice(0, 8).join(", ")}${n > 8 ? ", …" : ""})`,
        g.fix ? markup` — fix: ${g.fix}` : "",
        markup`</li>`,
      );
    }),
    markup`</ul>`,
    markup`</section>`,
  ];
}

/** One bar per task, failures first, widths relative to the longest task. */
function durationBars(report: RunReport, sorted: Indexed[]): Markup[] {
  const longest = Math.max(0, ...report.results.map((t) => t.durationS > 0 ? t.durationS : 0));
  const runStart = report.startedAt.getTime();
  const out = [markup`<section id="durations">`, markup`<h2>Tasks by duration</h2>`];
  if (sorted.length === 0) out.push(markup`<p class="muted">No tasks ran.</p>`);
  else {
    out.push(markup`<ol class="bars">`);
    for (const { t, i } of sorted) {
      const pct = longest > 0 ? Math.max(0, t.durationS) / longest * 100 : 0;
      const offset = Number.isFinite(t.startedAt) && t.startedAt >= runStart
        ? `, started at +${formatDuration((t.startedAt - runStart) / 1000)}`
        : "";
      const tip = `${t.id} (${t.category}): ${t.status}, ${formatDuration(t.durationS)}${offset}${
        t.reason ? ` - ${t.reason}` : ""
      }`;
      const target = t.status === "passed" ? `o${i}` : anchor(i);
      const width = `${pct.toFixed(2)}%`;
      out.push(join(
        markup`<li class="b-${t.status}" title="${oneLine(tip)}">`,
        markup`<span class="id mono"><a href="#${target}">${t.id}</a></span>`,
        markup`<span class="st s-${t.status}">${STATUS_WORD[t.status]}</span>`,
        markup`<span class="track"><span class="bar" style="width:${width}"></span></span>`,
        markup`<span class="dur">${formatDuration(t.durationS)}</span></li>`,
      ));
    }
    out.push(markup`</ol>`);
  }
  out.push(markup`</section>`);
  return out;
}

/** A card per failed or errored task: reason, fix, facts, answer, stderr, files, instances. */
function failureCards(bad: Indexed[], href: (file: string) => string): Markup[] {
  const out = [
    markup`<section id="failures">`,
    markup`<h2>Failures and errors (${bad.length})</h2>`,
  ];
  if (bad.length === 0) out.push(markup`<p class="muted">None.</p>`);
  for (const { t, i } of bad) {
    out.push(
      markup`<article class="failure k-${t.status}" id="${anchor(i)}">`,
      join(
        markup`<h3><span class="s-${t.status}">${STATUS_WORD[t.status]}</span> `,
        markup`<code>${t.id}</code> ${t.name}</h3>`,
      ),
      join(
        markup`<p class="muted">${t.category} · ${formatDuration(t.durationS)} · `,
        markup`exit code ${t.exitCode ?? "none"} · `,
        markup`${t.attempts} attempt${t.attempts === 1 ? "" : "s"}</p>`,
      ),
      markup`<pre>${t.reason || "(no reason given)"}</pre>`,
    );
    if (t.fix) out.push(markup`<p><strong>Fix:</strong> ${t.fix}</p>`);
    const facts = factLines(t);
    if (facts.length) out.push(markup`<p class="muted">${facts.join(" · ")}</p>`);
    const none = t.answer === undefined ? markup`: <span class="muted">none</span>` : "";
    out.push(markup`<p><strong>Answer</strong>${none}</p>`);
    if (t.answer !== undefined) {
      out.push(markup`<pre class="answer">${excerpt(t.answer, 2000, 40)}</pre>`);
    }
    if (t.stderrTail) {
      out.push(
        markup`<p><strong>stderr (last lines)</strong></p>`,
        markup`<pre>${t.stderrTail}</pre>`,
      );
    }
    if (t.patternsFound.length || t.patternsMissing.length) {
      out.push(join(
        markup`<p>Patterns found: ${t.patternsFound.join(", ") || "none"}; `,
        markup`missing: ${t.patternsMissing.join(", ") || "none"}</p>`,
      ));
    }
    if (t.outputFile) {
      out.push(
        markup`<p>Output: <a class="mono" href="${href(t.outputFile)}">${t.outputFile}</a></p>`,
      );
    }
    if (t.filesCreated?.length) {
      out.push(
        markup`<p>Files created: <span class="mono">${t.filesCreated.join(", ")}</span></p>`,
      );
    }
    if (t.workspace) {
      out.push(markup`<p>Workspace kept: <span class="mono">${t.workspace}</span></p>`);
    }
    if (t.checks?.length) out.push(...checkTable(t));
    const rubric = rubricLine(t);
    if (rubric) out.push(markup`<p><strong>Rubric</strong>: ${rubric}</p>`);
    if (t.instances?.length) out.push(...instanceTable(t.instances, href));
    out.push(markup`</article>`);
  }
  out.push(markup`</section>`);
  return out;
}

/** A task's checks: command, status, exit code, duration, and the tail of what each printed. */
function checkTable(t: TestResult): Markup[] {
  const out = [
    join(
      markup`<table class="inst"><thead><tr><th>Check</th><th>Status</th><th>Exit</th>`,
      markup`<th>Duration</th><th>Why</th></tr></thead><tbody>`,
    ),
    ...(t.checks ?? []).map((c) =>
      join(
        markup`<tr><td class="mono">${c.command}</td>`,
        markup`<td class="s-${c.status}">${STATUS_WORD[c.status]}</td>`,
        markup`<td>${c.exitCode ?? "none"}</td><td>${formatDuration(c.durationS)}</td>`,
        markup`<td>${c.reason ?? ""}</td></tr>`,
      )
    ),
    markup`</tbody></table>`,
  ];
  for (const c of t.checks ?? []) {
    if (c.status === "passed") continue;
    for (const [name, text] of [["stdout", c.stdoutTail], ["stderr", c.stderrTail]] as const) {
      if (!text) continue;
      out.push(
        markup`<p class="muted">check <code>${c.command}</code>, ${name} (last lines)</p>`,
        markup`<pre>${text}</pre>`,
      );
    }
  }
  return out;
}

/** The comparison with the baseline run, when there is one. */
function comparisonSection(c: Comparison | undefined): Markup[] {
  if (!c) return [];
  const [head, ratio] = comparisonLines(c);
  const list = (label: string, cls: string, ts: ComparedTask[]) =>
    ts.length
      ? [
        markup`<h3 class="${cls}">${label} (${ts.length})</h3>`,
        markup`<ul>`,
        ...ts.map((t) =>
          join(
            markup`<li><code>${t.id}</code> ${t.before ?? "new"} → ${t.after ?? "gone"}`,
            t.reason && t.after !== "passed"
              ? markup` <span class="muted">${oneLine(t.reason, 200)}</span>`
              : "",
            markup`</li>`,
          )
        ),
        markup`</ul>`,
      ]
      : [];
  return [
    markup`<section id="comparison">`,
    markup`<h2>${head.replace(/:$/, "")}</h2>`,
    markup`<p class="ratio">${ratio.trim()}</p>`,
    ...c.differences.map((d) => markup`<p><strong>Differs:</strong> ${d}</p>`),
    ...list("Regressed", "s-failed", c.regressed),
    ...list("Fixed", "s-passed", c.fixed),
    ...list("Still failing", "s-error", c.stillFailing),
    ...list("New", "muted", c.added),
    ...list("Gone", "muted", c.gone),
    ...(c.regressed.length + c.fixed.length === 0
      ? [markup`<p class="muted">No task changed its verdict.</p>`]
      : []),
    markup`</section>`,
  ];
}

/** k/N per task and the flaky ones, for a run with `--repeat N`. */
function repeatSection(report: RunReport): Markup[] {
  const r = repeatSummary(report);
  if (!r) return [];
  return [
    markup`<section id="repeats">`,
    markup`<h2>Repeats: ${r.repeat} runs a task, pass@1 ${(r.passAt1 * 100).toFixed(1)}%</h2>`,
    join(
      markup`<table class="inst"><thead><tr><th>Task</th><th>Passed</th><th>Flaky</th>`,
      markup`</tr></thead><tbody>`,
    ),
    ...r.tasks.map((t) =>
      join(
        markup`<tr><td><code>${t.id}</code></td><td>${t.passed}/${t.runs}</td>`,
        markup`<td class="${t.flaky ? "s-error" : ""}">${t.flaky ? "flaky" : ""}</td></tr>`,
      )
    ),
    markup`</tbody></table>`,
    markup`</section>`,
  ];
}

/** The instances of a concurrent task, one row each. */
function instanceTable(instances: InstanceResult[], href: (file: string) => string): Markup[] {
  return [
    join(
      markup`<table class="inst"><thead><tr><th>#</th><th>Model</th><th>Temp.</th><th>Status</th>`,
      markup`<th>Duration</th><th>Exit</th><th>Score</th><th>Picked</th><th>Reason</th>`,
      markup`<th>Output</th></tr></thead><tbody>`,
    ),
    ...instances.map((x) => {
      const link = x.outputFile ? markup`<a href="${href(x.outputFile)}">output</a>` : "";
      return join(
        markup`<tr><td>${x.index}</td><td>${x.model ?? ""}</td><td>${x.temperature ?? ""}</td>`,
        markup`<td class="s-${x.status}">${STATUS_WORD[x.status]}</td>`,
        markup`<td>${formatDuration(x.durationS)}</td><td>${x.exitCode ?? "none"}</td>`,
        markup`<td>${x.score ?? ""}</td><td>${x.picked ? "yes" : ""}</td><td>${x.reason}</td>`,
        markup`<td>${link}</td></tr>`,
      );
    }),
    markup`</tbody></table>`,
  ];
}

/** The tasks that did not run, with why. */
function skippedList(skipped: SkippedTask[]): Markup[] {
  if (!skipped.length) return [];
  return [
    markup`<section id="skipped">`,
    markup`<h2>Skipped (${skipped.length})</h2>`,
    markup`<ul>`,
    ...skipped.map((t) =>
      join(
        markup`<li><code>${t.id}</code> ${t.name} `,
        markup`<span class="muted">(${t.category}): ${t.reason}</span></li>`,
      )
    ),
    markup`</ul>`,
    markup`</section>`,
  ];
}

/** One entry of a conversation: who said it, then the text. */
function message(kind: string, who: string, text: string, bad = false): Markup {
  return join(
    markup`<div class="msg k-${kind}${bad ? " bad" : ""}"><span class="who">${who}</span>`,
    markup`<pre>${text}</pre></div>`,
  );
}

/**
 * Every task, folded, in run order: its request and conversation (what the model said, each
 * tool call and result, the final answer) from its saved output, else its answer and stderr.
 */
function answers(
  results: TestResult[],
  href: (file: string) => string,
  conversations?: ReadonlyMap<string, ConversationItem[]>,
): Markup[] {
  const out = [markup`<section id="outputs">`, markup`<h2>Every task's conversation</h2>`];
  for (const [i, t] of results.entries()) {
    const link = t.outputFile
      ? markup` · <a class="mono" href="${href(t.outputFile)}">raw output</a>`
      : "";
    const convo = conversations?.get(t.id);
    out.push(
      join(
        markup`<details id="o${i}"><summary>`,
        markup`<span class="s-${t.status}">${STATUS_WORD[t.status]}</span> `,
        markup`<code>${t.id}</code> ${t.name}${link}</summary>`,
      ),
      markup`<div class="convo">`,
      ...(t.request !== undefined ? [message("request", "request", t.request)] : []),
    );
    if (convo?.length) {
      out.push(...convo.map((c) => message(c.kind, c.who, c.text, c.isError === true)));
    } else {
      out.push(message("result", "answer", t.answer ?? "(no answer)"));
      if (t.stderrTail) out.push(message("stderr", "stderr (last lines)", t.stderrTail));
    }
    out.push(markup`</div>`);
    // What graded it: each check (command, exit, the end of a failing one's output) and the rubric.
    for (const line of [...checkLines(t), rubricLine(t) ?? ""].filter((l) => l)) {
      out.push(markup`<p class="muted">${line}</p>`);
    }
    out.push(markup`</details>`);
  }
  out.push(markup`</section>`);
  return out;
}

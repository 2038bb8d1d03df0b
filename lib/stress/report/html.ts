/**
 * The HTML report (`--html`): one self-contained page (inline CSS, no scripts, no external
 * assets) with the header, a duration bar per task, the failures with their reasons and answers,
 * and every task's answer.
 *
 * @module
 */

import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
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
import {
  categorySummaries,
  errorGroups,
  type RunReport,
  summarize,
  type TestStatus,
  totals,
} from "./model.ts";

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
 * import { toHtml } from "./html.ts";
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

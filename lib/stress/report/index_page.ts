/**
 * The index of past runs (`ccx report DIR`): every `report.json` under a directory, read back,
 * summed up in one row each (when, suite, ratio and verdict, cost, Claude Code version, model,
 * a link to the run's HTML report), newest first, on one self-contained page built with the
 * escaping {@linkcode markup} template like the HTML report itself.
 *
 * @example
 * ```ts
 * import { findRuns, toIndexHtml } from "./index_page.ts";
 * const runs = await findRuns("test_outputs");
 * const html = toIndexHtml(runs, { title: "test_outputs", indexPath: "test_outputs/index.html" });
 * console.log(runs.length, html.length);
 * ```
 * @module
 */

import { dirname, join, relative, resolve, sep } from "node:path";
import { fromJson } from "./json.ts";
import { formatRatioLine, formatTotalsLine } from "./format.ts";
import { documentHead, type Markup, markup, raw } from "./html_template.ts";
import { type RunReport, summarize, totals } from "./model.ts";
import { formatDuration, plural } from "../../common/format.ts";

/** One run found under the directory. */
export interface RunEntry {
  /** Path of its `report.json`. */
  json: string;
  /** The report, read back. */
  report: RunReport;
  /** Path of its HTML report, when there is one. */
  html?: string;
}

/** A `report.json` under the directory that could not be read, and why. */
export interface UnreadableRun {
  /** Its path. */
  json: string;
  /** What was wrong. */
  error: string;
}

/** What {@linkcode findRuns} found. */
export type FoundRuns = RunEntry[] & { unreadable?: UnreadableRun[] };

/** How deep {@linkcode findRuns} looks below the directory. */
export const MAX_DEPTH = 4;

/**
 * Every run under `dir`: each `report.json` (the directory's own too) at most
 * {@linkcode MAX_DEPTH} levels down, newest first, with `report.html` beside it when there is
 * one. Files that are not ccx reports are listed in `unreadable`, not thrown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findRuns } from "./index_page.ts";
 * assert.equal((await findRuns("/nonexistent")).length, 0);
 * ```
 */
export async function findRuns(dir: string): Promise<FoundRuns> {
  const found: FoundRuns = [];
  const unreadable: UnreadableRun[] = [];
  const walk = async (d: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory && depth < MAX_DEPTH && !e.name.startsWith(".")) {
        // A run's kept task workspaces hold no reports of ours.
        if (e.name !== "workspaces") await walk(p, depth + 1);
      } else if (e.isFile && e.name === "report.json") {
        try {
          const report = fromJson(await Deno.readTextFile(p));
          const html = join(d, "report.html");
          const hasHtml = (await Deno.stat(html).catch(() => undefined))?.isFile;
          found.push({ json: p, report, ...(hasHtml ? { html } : {}) });
        } catch (e) {
          unreadable.push({ json: p, error: (e as Error).message });
        }
      }
    }
  };
  await walk(dir, 0);
  found.sort((a, b) => b.report.startedAt.getTime() - a.report.startedAt.getTime());
  if (unreadable.length) found.unreadable = unreadable;
  return found;
}

/** The distinct values of a field over a run's results, most frequent first. */
function distinct(values: (string | undefined)[]): string[] {
  const n = new Map<string, number>();
  for (const v of values) if (v) n.set(v, (n.get(v) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1]).map(([v]) => v);
}

/** A link's href from the index page to `file`, relative to the page's directory. */
function hrefFrom(indexPath: string, file: string): string {
  const rel = relative(dirname(resolve(indexPath)), resolve(file));
  return rel.split(sep === "\\" ? /[\\/]/ : "/").map((s) => encodeURIComponent(s)).join("/");
}

/** Options of {@linkcode toIndexHtml}. */
export interface IndexOptions {
  /** What the page is the index of (the directory), for the title. */
  title: string;
  /** Where the page will be written: links are relative to its directory. */
  indexPath: string;
}

const CSS = raw(`
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#666;--line:#ddd;
--pass:#2e7d32;--fail:#c62828;--error:#b26a00}
@media (prefers-color-scheme:dark){:root{--bg:#16181b;--fg:#e6e6e6;--muted:#9aa0a6;--line:#33373c;
--pass:#66bb6a;--fail:#ef5350;--error:#ffb74d}}
body{margin:0 auto;max-width:90rem;padding:1.5rem;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:0 0 .5rem}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.yes{color:var(--pass);font-weight:700}.no{color:var(--fail);font-weight:700}
.muted{color:var(--muted)}a{color:inherit}td.num{text-align:right;font-variant-numeric:tabular-nums}
`.trim());

/**
 * The index page: one row per run, newest first. Every value is escaped by {@linkcode markup}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toIndexHtml } from "./index_page.ts";
 * assert.ok(toIndexHtml([], { title: "<runs>", indexPath: "index.html" }).includes("&lt;runs&gt;"));
 * ```
 */
export function toIndexHtml(runs: FoundRuns, opts: IndexOptions): string {
  const rows: Markup[] = runs.map(({ json, report, html }) => {
    const s = summarize(report.results, report.threshold);
    const t = totals(report.results);
    const started = report.startedAt.toISOString();
    const versions = distinct(report.results.map((r) => r.cliVersion));
    const models = distinct(report.results.map((r) => r.model));
    const skipped = report.skipped?.length ?? 0;
    const counts = `${s.passed} passed, ${s.failed} failed, ${plural(s.errors, "error")}` +
      (skipped ? `, ${skipped} skipped` : "");
    const verdict = report.interrupted
      ? markup`<span class="no">INTERRUPTED</span>`
      : s.graduated
      ? markup`<span class="yes">GRADUATED</span>`
      : markup`<span class="no">NOT GRADUATED</span>`;
    const links = [
      html ? markup`<a href="${hrefFrom(opts.indexPath, html)}">report</a>` : "",
      html ? " · " : "",
      markup`<a class="muted" href="${hrefFrom(opts.indexPath, json)}">json</a>`,
    ];
    return markup`<tr><td><time datetime="${started}">${
      started.replace("T", " ").slice(0, 19)
    }</time><br><span class="muted mono">${report.runId}</span></td><td>${report.suite}</td><td>${verdict}<br>${
      formatRatioLine(s, report.threshold).replace(/^Success ratio: /, "")
    }<br><span class="muted">${counts}</span></td><td class="num">${
      t.costUsd === null ? "" : `$${t.costUsd.toFixed(4)}`
    }</td><td>${versions.join(", ")}</td><td>${models.join(", ")}</td><td class="num">${
      formatDuration(report.durationS)
    }</td><td>${links}</td></tr>`;
  });
  const unreadable = runs.unreadable ?? [];
  const failedRuns =
    runs.filter(({ report }) => !summarize(report.results, report.threshold).graduated).length;
  const totalCost = totals(runs.flatMap((r) => r.report.results));
  return [
    ...documentHead(`ccx runs: ${opts.title}`, CSS),
    markup`<body>`,
    markup`<h1>ccx runs: ${opts.title}</h1>`,
    markup`<p>${plural(runs.length, "run")}, ${failedRuns} not graduated${
      formatTotalsLine(totalCost) ? ` · ${formatTotalsLine(totalCost)}` : ""
    }</p>`,
    runs.length === 0
      ? markup`<p class="muted">No report.json found.</p>`
      : markup`<table><thead><tr><th>Date (UTC)</th><th>Suite</th><th>Ratio</th><th>Cost</th><th>Claude Code</th><th>Model</th><th>Duration</th><th>Report</th></tr></thead><tbody>`,
    ...rows,
    ...(runs.length === 0 ? [] : [markup`</tbody></table>`]),
    ...(unreadable.length
      ? [
        markup`<h2>Not read</h2>`,
        markup`<ul>${
          unreadable.map((u) => markup`<li><span class="mono">${u.json}</span>: ${u.error}</li>`)
        }</ul>`,
      ]
      : []),
    markup`</body>`,
    markup`</html>`,
  ].join("\n") + "\n";
}

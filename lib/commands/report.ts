/**
 * `ccx report`: reports about past runs. `ccx report DIR` writes one HTML index of every run
 * under DIR (its `report.json` files): date, suite, ratio, cost, Claude Code version, model, and
 * a link to each run's HTML report, which it writes beside the `report.json` of a run that has
 * none (with each task's conversation from the saved outputs).
 *
 * `ccx report diff A B` compares two existing runs of `ccx stress` (each a `report.json` or a
 * run directory), A the baseline and B the later one, and prints what `--baseline` shows: the
 * tasks that regressed, were fixed, still fail, are new or gone, the ratio before and after,
 * and what differs in what was run (Claude Code versions, models, ccx, the suite).
 *
 * The first argument may instead name a subcommand ({@linkcode REPORT_SUBCOMMANDS}), so that
 * `ccx report diff A B` and the like live under the same command; a directory whose name is a
 * subcommand's is given as `./NAME`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeReports } from "../stress/report/files.ts";
 * import { reportIndex } from "./report.ts";
 * const dir = Deno.makeTempDirSync(); // `ccx stress` puts its runs in test_outputs/
 * await writeReports({
 *   runId: "20260101_120000_ab12cd", suite: "demo", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * }, { json: `${dir}/20260101_120000_ab12cd/report.json` });
 * assert.equal(await reportIndex({ dir }), 0);
 * assert.ok(Deno.statSync(`${dir}/index.html`).isFile);
 * assert.ok(Deno.statSync(`${dir}/20260101_120000_ab12cd/report.html`).isFile); // written where missing
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportDiff } from "./report.ts";
 * // Two runs that cannot be read: bad input, exit 2 (with two real runs: 0, or 1 with
 * // failOnRegression when a task regressed).
 * assert.equal(await reportDiff({ paths: ["/nonexistent/a", "/nonexistent/b"], json: false }), 2);
 * ```
 * @module
 */

import { basename, dirname, join } from "node:path";
import { type Command, defineCommand, type OptionValues } from "../common/cli.ts";
import { ConfigError } from "../common/config.ts";
import { plural } from "../common/format.ts";
import { findRuns, toIndexHtml } from "../stress/report/index_page.ts";
import { writeReports } from "../stress/report/files.ts";
import type { RunReport } from "../stress/report/model.ts";
import { readRun, reportPathOf } from "../stress/rerun.ts";
import { compareRuns } from "../stress/compare.ts";
import { comparisonJson } from "../stress/report/json.ts";
import { comparisonLines } from "../stress/report/format.ts";

/** Options of {@linkcode reportIndex}. */
export interface ReportIndexOptions {
  /** The directory whose runs are listed. */
  dir: string;
  /** Where the index goes (default `DIR/index.html`). */
  out?: string;
}

/** Where a path recorded in a report points now: as recorded, else beside the report. */
async function located(path: string, reportDir: string): Promise<string | undefined> {
  for (const p of [path, join(reportDir, basename(path))]) {
    if ((await Deno.stat(p).catch(() => undefined))?.isFile) return p;
  }
  return undefined;
}

/**
 * A run's report with its output files found again: the paths a report records are relative
 * to where `ccx stress` ran, which need not be here; a file not found there is looked for beside
 * the report (where `ccx stress` puts it).
 */
async function relocated(report: RunReport, reportDir: string): Promise<RunReport> {
  const results = await Promise.all(report.results.map(async (r) => {
    if (!r.outputFile) return r;
    const at = await located(r.outputFile, reportDir);
    return at ? { ...r, outputFile: at } : r;
  }));
  return { ...report, results };
}

/**
 * Writes the index of the runs under `opts.dir`, and an HTML report for each run that has none;
 * resolves with the exit code: 0 written, 2 when `dir` is not a directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportIndex } from "./report.ts";
 * const dir = Deno.makeTempDirSync();
 * assert.equal(await reportIndex({ dir, out: `${dir}/runs.html` }), 0);
 * assert.ok(Deno.readTextFileSync(`${dir}/runs.html`).startsWith("<!"));
 * assert.equal(await reportIndex({ dir: `${dir}/nowhere` }), 2);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function reportIndex(opts: ReportIndexOptions): Promise<number> {
  const st = await Deno.stat(opts.dir).catch(() => undefined);
  if (!st?.isDirectory) {
    console.error(`ccx report: ${opts.dir}: not a directory (ccx report DIR)`);
    return 2;
  }
  const out = opts.out ?? join(opts.dir, "index.html");
  const runs = await findRuns(opts.dir);
  let made = 0;
  for (const run of runs) {
    if (run.html) continue;
    const html = join(dirname(run.json), "report.html");
    try {
      await writeReports(await relocated(run.report, dirname(run.json)), { html });
      run.html = html;
      made++;
    } catch (e) {
      console.error(`ccx report: ${html} not written: ${(e as Error).message}`);
    }
  }
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, toIndexHtml(runs, { title: opts.dir, indexPath: out }));
  for (const u of runs.unreadable ?? []) {
    console.error(`ccx report: skipped ${u.json}: ${u.error}`);
  }
  console.log(
    `${out}: ${plural(runs.length, "run")} under ${opts.dir}` +
      (made ? ` (${plural(made, "HTML report")} written beside their report.json)` : ""),
  );
  return 0;
}

/** Options of {@linkcode reportDiff}. */
export interface ReportDiffOptions {
  /** The two runs: baseline, then the later one. */
  paths: string[];
  /** `--json`: print the comparison as JSON. */
  json: boolean;
  /** `--fail-on-regression`: exit 1 when a task regressed. */
  failOnRegression?: boolean;
  /** Where lines go (default stdout). */
  out?: (line: string) => void;
}

/**
 * `ccx report diff A B`; resolves with the exit code: 0, 1 with `--fail-on-regression` when a
 * task regressed, 2 for bad input (not two runs, a run that cannot be read).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportDiff } from "./report.ts";
 * const dir = Deno.makeTempDirSync();
 * const run = (id: string, status: string) => ({
 *   run_id: id, suite: "s.json", started_at: "2026-01-01T00:00:00.000Z", duration_s: 1,
 *   interrupted: false, threshold: 10, summary: {},
 *   tests: [{ id: "t", name: "t", category: "c", status, reason: "", duration_s: 1 }],
 * });
 * Deno.writeTextFileSync(`${dir}/a.json`, JSON.stringify(run("a", "passed")));
 * Deno.writeTextFileSync(`${dir}/b.json`, JSON.stringify(run("b", "failed")));
 * const lines: string[] = [];
 * const paths = [`${dir}/a.json`, `${dir}/b.json`];
 * const code = await reportDiff({ paths, json: true, failOnRegression: true, out: (l) => lines.push(l) });
 * assert.equal(code, 1);
 * assert.deepEqual(JSON.parse(lines.join("\n")).regressed.map((t: { id: string }) => t.id), ["t"]);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function reportDiff(opts: ReportDiffOptions): Promise<number> {
  const out = opts.out ?? ((line: string) => console.log(line));
  if (opts.paths.length !== 2) {
    console.error(
      `ccx report diff: give two runs (a report.json or a run directory each), got ` +
        `${opts.paths.length}`,
    );
    return 2;
  }
  const [a, b] = opts.paths;
  let before, after;
  try {
    before = await readRun(a);
    after = await readRun(b);
  } catch (e) {
    console.error(`ccx report diff: ${(e as Error).message}`);
    return 2;
  }
  const c = compareRuns(before, after, await reportPathOf(a));
  if (opts.json) out(JSON.stringify(comparisonJson(c), null, 2));
  else for (const line of comparisonLines(c)) out(line);
  return opts.failOnRegression && c.regressed.length > 0 ? 1 : 0;
}

/** The options every form of `ccx report` takes (a subcommand reads the ones it needs). */
export const REPORT_OPTIONS = {
  out: {
    type: "string",
    short: "o",
    arg: "FILE",
    defaultText: "DIR/index.html",
    help: "where the index goes",
  },
  json: { type: "boolean", help: "diff: print the comparison as JSON" },
  "fail-on-regression": {
    type: "boolean",
    help: "diff: exit 1 when a task regressed",
  },
} as const;

/**
 * Subcommands of `ccx report`, by name: `ccx report NAME ARGS…` runs the one named with the
 * arguments after its name. `ccx report DIR` (no subcommand) writes the index.
 */
export const REPORT_SUBCOMMANDS: Record<string, ReportSubcommand> = {
  diff: (o, args) =>
    reportDiff({ paths: args, json: o.json, failOnRegression: o["fail-on-regression"] }),
};

/** A subcommand of `ccx report`: the parsed options and the arguments after its name. */
export type ReportSubcommand = (
  o: OptionValues<typeof REPORT_OPTIONS>,
  args: string[],
) => Promise<number>;

/** The `ccx report` declaration. */
export const report: Command = defineCommand({
  name: "report",
  summary: "past runs: an HTML index of the runs under a directory; diff two runs",
  args: "DIR | diff A B",
  positionals: [
    ["DIR", "a directory of runs (test_outputs): every report.json under it is listed"],
    ["diff A B", "compare run B with run A (each a report.json or a run directory)"],
  ],
  options: REPORT_OPTIONS,
  notes: [
    "Writes DIR/index.html: one row per run, newest first (date, suite, ratio and verdict,",
    "cost, Claude Code version, model, duration), linking each run's report.html, which is",
    "written beside its report.json when missing (each task's conversation included).",
    "diff A B prints what ccx stress --baseline A shows for run B: regressed, fixed, still",
    "failing, new and gone tasks, and what differs in what ran.",
    "Exit: 0; 1 for diff --fail-on-regression when a task regressed; 2 for bad input.",
  ],
  run(o, positionals) {
    const [first, ...rest] = positionals;
    const sub = first === undefined ? undefined : REPORT_SUBCOMMANDS[first];
    if (sub) return sub(o, rest);
    if (first === undefined) throw new ConfigError("no DIR given (ccx report DIR)");
    if (rest.length) {
      throw new ConfigError(
        `one DIR at a time, got ${positionals.length} arguments` +
          (Object.keys(REPORT_SUBCOMMANDS).length
            ? ` (subcommands: ${Object.keys(REPORT_SUBCOMMANDS).join(", ")})`
            : ""),
      );
    }
    return reportIndex({ dir: first, out: o.out });
  },
});

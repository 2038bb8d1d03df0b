/**
 * `ccx stress`, last step: a run's verdicts made final: the reports written, the summary and the
 * hints printed, the exit code.
 *
 * @module
 */

import { compareRuns } from "../stress/compare.ts";
import { shellQuote } from "../stress/shell_template.ts";
import { rerunArgs } from "../stress/rerun.ts";
import { colorEnabled } from "../stress/progress.ts";
import { formatRatioLine } from "../stress/report/format.ts";
import { formatSummaryTable } from "../stress/report/console.ts";
import { summarize } from "../stress/report/model.ts";
import { writeReports } from "../stress/report/files.ts";
import type { OptionDecls } from "../common/cli.ts";
import { STRESS_OPTIONS } from "./stress_flags.ts";
import type { StressPlan } from "./stress_plan.ts";
import type { StressOutcome } from "./stress_run.ts";

/**
 * The command that reruns a run: `ccx stress FLAG…` followed by the flags and arguments the run
 * was given (`args`), shell-quoted, without `--resume`, `--last-failed`, `--out` and `--json`
 * (the rerun gets a run directory of its own, so the first run's report stays) and without
 * secrets, which the environment or `./.env` must hold (a note says so).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rerunHint } from "./stress_finish.ts";
 * import { STRESS_OPTIONS } from "./stress_flags.ts";
 * assert.equal(
 *   rerunHint(["--last-failed"], ["tasks/t.json", "--sandbox", "--claude", "my claude"], STRESS_OPTIONS),
 *   "ccx stress --last-failed tasks/t.json --sandbox --claude 'my claude'",
 * );
 * ```
 */
export function rerunHint(
  lead: string[],
  args: readonly string[] | undefined,
  options: OptionDecls,
): string {
  const kept = rerunArgs(args ?? [], options, ["resume", "last-failed", "out", "json"]);
  const line = ["ccx", "stress", ...lead, ...kept.args].map(shellQuote).join(" ");
  if (!kept.secrets.length) return line;
  return `${line}\n  (${kept.secrets.join(", ")} not repeated: ccx never prints a secret; set it ` +
    "in the environment or ./.env, e.g. CCX_TOKEN, CCX_QUEUE, REDIS_URL)";
}

/**
 * One line per Claude failure kind among `results` that has a fix, saying once what to do:
 * `root_refused (3 tasks): as root the CLI refuses …`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fixLines } from "./stress_finish.ts";
 * assert.deepEqual(fixLines([{ kind: "auth", fix: "check ANTHROPIC_API_KEY" }, { kind: "auth", fix: "…" }]), [
 *   "auth (2 tasks): check ANTHROPIC_API_KEY",
 * ]);
 * ```
 */
export function fixLines(results: { kind?: string; fix?: string }[]): string[] {
  const byKind = new Map<string, { fix: string; n: number }>();
  for (const r of results) {
    if (!r.kind || !r.fix) continue;
    const have = byKind.get(r.kind);
    if (have) have.n++;
    else byKind.set(r.kind, { fix: r.fix, n: 1 });
  }
  return [...byKind].map(([k, v]) => `${k} (${v.n} task${v.n === 1 ? "" : "s"}): ${v.fix}`);
}

/**
 * Ends a run of `ccx stress`: compares it with the `--baseline`, writes the JSON, JUnit and HTML
 * reports (each on its own), prints the summary table, the fixes, the reports written, what could
 * not be written and the rerun hints, and resolves with the exit code: 0 graduated, 1 ran but did
 * not graduate (or `--strict`, `--fail-on-regression`), 3 when a file was not written or every
 * task ended in a Claude or infrastructure failure, 130 interrupted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planStress } from "./stress_plan.ts";
 * import { runStress } from "./stress_run.ts";
 * import { finishStress } from "./stress_finish.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/suite.json`, JSON.stringify({
 *   tests: [{ id: "hello", command: "echo hello", expected_patterns: ["hello"] }],
 * }));
 * const cwd = Deno.cwd();
 * Deno.chdir(dir); // runs go to ./test_outputs/<run-id>/
 * try {
 *   const plan = await planStress({ suite: "suite.json", noHistory: true, junit: "junit.xml" });
 *   assert.ok(typeof plan === "object");
 *   const ran = await runStress(plan);
 *   assert.ok(typeof ran === "object");
 *   assert.equal(await finishStress(plan, ran), 0); // graduated
 *   assert.ok(Deno.statSync(plan.jsonPath).isFile);
 *   assert.ok(Deno.statSync("junit.xml").isFile);
 * } finally {
 *   Deno.chdir(cwd);
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function finishStress(plan: StressPlan, outcome: StressOutcome): Promise<number> {
  const { opts, planned, outDir, jsonPath, threshold, baseline } = plan;
  const { report, bad, unwritten } = outcome;
  const stopped = opts.maxFail !== undefined && bad >= opts.maxFail;
  if (baseline) report.comparison = compareRuns(baseline.report, report, baseline.path);
  const results = report.results;
  // Each report on its own: one that cannot be written does not keep the others from it.
  const written: string[] = [];
  for (
    const [path, paths] of [
      [jsonPath, { json: jsonPath }],
      [opts.junit, { junit: opts.junit }],
      [opts.html, { html: opts.html }],
    ] as const
  ) {
    if (path === undefined) continue;
    if (await unwritten.write(path, "report", () => writeReports(report, paths))) {
      written.push(path);
    } else if (path === jsonPath && await Deno.stat(path).then(() => true, () => false)) {
      unwritten.files.at(-1)!.stale = true;
    }
  }
  const color = colorEnabled(Deno.stdout.isTerminal());
  console.log(formatSummaryTable(report, { color }));
  const summary = summarize(results, threshold);
  for (const line of fixLines(results)) console.log(`Fix: ${line}`);
  if (written.length > 0) console.log(`Reports: ${written.join(", ")}`);
  const notWritten = unwritten.lines();
  for (const line of notWritten) console.error(`ccx stress: ${line}`);
  if (report.interrupted) {
    console.log(`Interrupted after ${results.length} of ${planned.length} task runs.`);
    console.log(
      `Continue with: ${rerunHint(["--resume", outDir], opts.args, STRESS_OPTIONS)}`,
    );
    return 130;
  }
  if (stopped && report.skipped?.length) {
    console.log(
      `Stopped after ${bad} failed or errored (--max-fail ${opts.maxFail}); ` +
        `${report.skipped.length} task runs skipped.`,
    );
  }
  if (bad > 0) {
    console.log(
      `Rerun the failures with: ${rerunHint(["--last-failed"], opts.args, STRESS_OPTIONS)}`,
    );
  }
  // The table ends with the ratio line already; repeat it only if it does not.
  const ratio = formatRatioLine(summary, threshold);
  if (!formatSummaryTable(report, { color: false }).includes(ratio)) console.log(ratio);
  if (notWritten.length > 0) {
    console.error(
      "ccx stress: the verdicts above are the tasks' own; the files listed were not written " +
        "(exit 3).",
    );
    return 3;
  }
  // Every task ended in a Claude or infrastructure failure (not logged in, CLI refused to start,
  // …): the model was never asked, so this is "could not run", not a regression.
  if (results.length > 0 && results.every((r) => r.status === "error" && r.kind !== undefined)) {
    console.log(
      "Nothing could run: every task ended in a Claude or infrastructure failure (exit 3).",
    );
    return 3;
  }
  const regressed = report.comparison?.regressed.length ?? 0;
  if (opts.failOnRegression && regressed > 0) {
    console.log(
      `${regressed} task${regressed === 1 ? "" : "s"} regressed since the baseline ` +
        "(--fail-on-regression): exit 1.",
    );
    return 1;
  }
  if (opts.strict && summary.failed + summary.errors > 0) {
    console.log(
      `--strict: ${summary.failed} failed and ${summary.errors} errored (exit 1, whatever the ratio)`,
    );
    return 1;
  }
  return summary.graduated ? 0 : 1;
}

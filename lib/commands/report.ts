/**
 * `ccx report diff A B`: compares two existing runs of `ccx stress` (each a `report.json` or a
 * run directory), A the baseline and B the later one, and prints what `--baseline` shows: the
 * tasks that regressed, were fixed, still fail, are new or gone, the ratio before and after,
 * and what differs in what was run (Claude Code versions, models, ccx, the suite).
 *
 * @example
 * ```ts
 * import { reportCommand } from "./report.ts";
 * const code = await reportCommand({ action: "diff", paths: ["runs/a", "runs/b"], json: false });
 * ```
 * @module
 */

import { readRun, reportPathOf } from "../stress/rerun.ts";
import { compareRuns } from "../stress/compare.ts";
import { comparisonJson } from "../stress/report/json.ts";
import { comparisonLines } from "../stress/report/format.ts";
import { type Command, defineCommand } from "../common/cli.ts";
import { ConfigError } from "../common/config.ts";

/** Options of `ccx report`. */
export interface ReportCommandOptions {
  /** What to do: `diff`. */
  action: string;
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
 * Runs `ccx report`; resolves with the exit code: 0, 1 with `--fail-on-regression` when a task
 * regressed, 2 for bad input (an unknown action, a run that cannot be read).
 */
export async function reportCommand(opts: ReportCommandOptions): Promise<number> {
  const out = opts.out ?? ((line: string) => console.log(line));
  if (opts.action !== "diff") {
    console.error(`ccx report: unknown action ${JSON.stringify(opts.action)}; known: diff`);
    return 2;
  }
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

/** The `ccx report` declaration. */
export const report: Command = defineCommand({
  name: "report",
  summary: "compare two runs of ccx stress: ccx report diff BASELINE RUN",
  args: "diff A B",
  positionals: [
    ["diff A B", "compare run B with run A (each a report.json or a run directory)"],
  ],
  options: {
    json: { type: "boolean", help: "print the comparison as JSON" },
    "fail-on-regression": { type: "boolean", help: "exit 1 when a task regressed" },
  },
  notes: ["Exit: 0; 1 with --fail-on-regression when a task regressed; 2 for bad input."],
  run(o, positionals) {
    if (positionals.length === 0) throw new ConfigError("no action given (ccx report diff A B)");
    return reportCommand({
      action: positionals[0],
      paths: positionals.slice(1),
      json: o.json,
      failOnRegression: o["fail-on-regression"],
    });
  },
});

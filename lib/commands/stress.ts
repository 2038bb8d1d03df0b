/**
 * `ccx stress`: load and validate a suite, run it through one or more ccx
 * servers (or an in-process one), show progress, write every report, and exit 0
 * only when the run graduates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stressCommand } from "./stress.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/suite.json`, JSON.stringify({
 *   tests: [{ id: "hello", command: "echo hello", expected_patterns: ["hello"] }],
 * }));
 * const cwd = Deno.cwd();
 * Deno.chdir(dir); // runs go to ./test_outputs/<run-id>/
 * try {
 *   assert.equal(await stressCommand({ suite: "suite.json", concurrency: 4, noHistory: true }), 0); // graduated
 * } finally {
 *   Deno.chdir(cwd);
 * }
 * assert.ok(Deno.statSync(`${dir}/test_outputs/.last-run`).isFile); // what --last-failed reruns
 * Deno.removeSync(dir, { recursive: true });
 * ```
 * @module
 */

import { type Command, defineCommand } from "../common/cli.ts";
import { ConfigError, readPemFile } from "../common/config.ts";
import { STRESS_OPTIONS } from "./stress_flags.ts";
import { planStress, type StressOptions } from "./stress_plan.ts";
import { runStress } from "./stress_run.ts";
import { finishStress } from "./stress_finish.ts";

// The three steps of `ccx stress`, one module each; what other modules and the tests import by
// the command's name is re-exported here.
export { autoTimeoutScale, DEFAULT_SUITE, type StressOptions } from "./stress_plan.ts";
export { pageNote } from "./stress_run.ts";
export { fixLines, rerunHint } from "./stress_finish.ts";

/**
 * Runs the suite; resolves with the exit code: 0 graduated, 1 ran but did not graduate, 2 bad
 * input, 3 could not run (a server, the token or the Claude CLI; see `preflight.ts`), 130
 * interrupted.
 *
 * Three steps: {@linkcode planStress} resolves the options (it ends the command on bad input,
 * `--validate` and `--list`), {@linkcode runStress} runs the pre-flight and the tasks, and
 * {@linkcode finishStress} writes the reports, prints the summary and picks the exit code.
 */
export async function stressCommand(opts: StressOptions): Promise<number> {
  const plan = await planStress(opts);
  if (typeof plan === "number") return plan; // nothing to run: bad input, --validate, --list
  const outcome = await runStress(plan);
  if (typeof outcome === "number") return outcome; // the pre-flight refused: nothing was run
  return await finishStress(plan, outcome);
}

/** The `ccx stress` declaration: its options, help and how they become {@linkcode StressOptions}. */
export const stress: Command = defineCommand({
  name: "stress",
  summary: "run a suite of tasks through ccx servers and report a pass ratio",
  args: "[SUITE]",
  positionals: [[
    "SUITE",
    "suite file (default: the resumed run's, else tasks/unified_stress_test_tasks.json)",
  ]],
  options: STRESS_OPTIONS,
  notes: [
    "Exit: 0 when the run graduates: passed >= R x (failed + errors), R being --threshold",
    "(10), and no task errored; so 10 passed and 1 failed exits 0 (10:1), 10 passed and 1",
    "error exits 1. --strict exits 1 on any failure or error. 1 ran but did not graduate;",
    "2 bad input; 3 could not run (server down, token refused, Claude CLI missing, root",
    "without --sandbox, the Claude API unreachable: checked before any task starts; or every",
    "task ended in a Claude/infrastructure failure); 130 after Ctrl+C (reports are written).",
    "With --queue the tasks run on `ccx worker` boxes (their concurrency applies, not",
    "--concurrency); runs are recorded in --redis, else by the workers in the queue's Redis.",
    "Ctrl+C removes the run's waiting tasks and cancels its running ones on the workers.",
    "Graders (suite fields check, check_files, rubric) run on the server where the task ran;",
    "a check that cannot run or a judge without a verdict makes the task an error.",
    "--fail-on-regression needs --baseline (exit 2 without); with it, any regression exits 1.",
  ],
  run(o, positionals, args) {
    if (positionals.length > 1) {
      throw new ConfigError(`one suite at a time, got ${positionals.length}`);
    }
    return stressCommand({
      suite: positionals[0],
      servers: o.server,
      token: o.token,
      ca: readPemFile("ca", o.ca),
      concurrency: o.concurrency,
      repeat: o.repeat,
      categories: o.category,
      filter: o.filter,
      exclude: o.exclude,
      list: o.list,
      maxFail: o["max-fail"] ?? (o.exitfirst ? 1 : undefined),
      resume: o.resume,
      lastFailed: o["last-failed"],
      out: o.out,
      json: o.json,
      junit: o.junit,
      html: o.html,
      patternMode: o["pattern-mode"],
      threshold: o.threshold,
      timeoutScale: o["timeout-scale"],
      claude: o.claude,
      redisUrl: o.redis,
      noHistory: o["no-history"],
      sandbox: o.sandbox,
      queue: o.queue,
      queueName: o["queue-name"],
      noWorkspace: o["no-workspace"],
      keepWorkspaces: o["keep-workspaces"],
      validate: o.validate,
      model: o.model,
      judgeModel: o["judge-model"],
      baseline: o.baseline,
      failOnRegression: o["fail-on-regression"],
      page: o.page,
      strict: o.strict,
      noApiCheck: o["no-api-check"],
      progressEveryS: o["progress-every"],
      args,
    });
  },
});

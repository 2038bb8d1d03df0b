/**
 * What a loaded suite is: the normalized {@linkcode Suite} and {@linkcode SuiteTask} that
 * `ccx stress`, the runner and the fleet work with, whichever of the two JSON schemas the file
 * used, and {@linkcode SuiteError}, which lists every problem of a suite that cannot be used.
 * Loading and validating live in `suite_load.ts`; the file format in `suite_schema.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSuite } from "./suite_load.ts";
 * import type { SuiteTask } from "./suite_model.ts";
 * const tasks: SuiteTask[] = (await loadSuite("tasks/selftest.json")).tasks;
 * assert.equal(tasks.length, 22);
 * assert.equal(tasks[0].id, "echo_basic");
 * ```
 * @module
 */

import type { JsonProblem } from "../common/json.ts";
import type { WorkspaceFile } from "../common/protocol.ts";
import type { EvaluationCriterion } from "../verdict/pick.ts";

/**
 * The timeout (seconds) of a task when neither the task, its category nor the suite's
 * `defaults` give one: the seed's minimum for a Claude prompt.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import { DEFAULT_TIMEOUT_S } from "./suite_model.ts";
 * const [task] = parseSuite({ tests: [{ id: "t", command: "true" }] }, "inline").tasks;
 * assert.equal(task.timeoutS, DEFAULT_TIMEOUT_S); // tasks without a timeout get the default
 * ```
 */
export const DEFAULT_TIMEOUT_S = 120;

/**
 * Thrown when a suite cannot be used. `problems` lists every problem found (not just the
 * first); the message lists them too, one a line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import { SuiteError } from "./suite_model.ts";
 * try {
 *   parseSuite({ categories: { a: { tests: [{ id: "x" }] } } }, "inline");
 *   assert.fail("a test without a command was accepted");
 * } catch (e) {
 *   assert.ok(e instanceof SuiteError);
 *   assert.deepEqual(e.problems.map((p) => p.path), ["categories.a.tests[0].command"]);
 * }
 * ```
 */
export class SuiteError extends Error {
  /** Every problem found, in document order. */
  readonly problems: JsonProblem[];
  /** The file (or other label) the suite came from. */
  readonly source: string;

  /**
   * Creates the error; the message names `source` and lists every problem, one a line.
   *
   * @param source where the suite came from (a path, or a label such as `inline`)
   * @param problems at least one problem
   */
  constructor(source: string, problems: JsonProblem[]) {
    const n = problems.length;
    super(
      `invalid suite ${source}: ${n} problem${n === 1 ? "" : "s"}\n` +
        problems.map((p) => `  ${p.path}: ${p.message}`).join("\n"),
    );
    this.name = "SuiteError";
    this.source = source;
    this.problems = problems;
  }
}

/**
 * The concurrent part of a task: run `instances` copies and pick the best answer by `criteria`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ConcurrentSpec } from "./suite_model.ts";
 * const spec: ConcurrentSpec = { instances: 3, models: ["sonnet", "haiku"], criteria: "FASTEST" };
 * assert.equal(spec.instances, 3);
 * ```
 */
export interface ConcurrentSpec {
  /** How many copies run at once (a positive integer). */
  instances: number;
  /** Models handed out round-robin to the instances (`${MODEL}` / `--model`). */
  models?: string[];
  /** Temperatures spread evenly over `[low, high]` across the instances (`${TEMPERATURE}`). */
  temperatureRange?: [number, number];
  /** How the best answer is chosen. */
  criteria: EvaluationCriterion;
}

/**
 * One task of a suite, normalized from either schema.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import { DEFAULT_TIMEOUT_S, type SuiteTask } from "./suite_model.ts";
 * const suite = parseSuite({ tests: [{ id: "echo", command: "echo hi", expected_patterns: ["hi"] }] }, "inline");
 * const task: SuiteTask = suite.tasks[0];
 * assert.equal(task.timeoutS, DEFAULT_TIMEOUT_S);
 * assert.deepEqual(task.expectedPatterns, ["hi"]);
 * ```
 */
export interface SuiteTask {
  /** Unique within the suite; letters, digits, `.`, `_`, `-` (it names output files). */
  id: string;
  /** Human name; the id when the suite gives none. */
  name: string;
  /** The category the task came from (`tests` for a top-level `tests[]`). */
  category: string;
  /** `natural_language_request` (seed schema). */
  request?: string;
  /** `metatags` (seed schema). */
  metatags?: string;
  /** The raw `command_template` (seed) or `command` (upstream), placeholders not yet replaced. */
  template?: string;
  /** Whole-run timeout, seconds: task, else category, else suite `defaults`, else 120. */
  timeoutS: number;
  /** Seconds without output before the run counts as stalled, when given anywhere. */
  stallTimeoutS?: number;
  /**
   * What the answer must contain; may be empty. Case-insensitive substrings, `word:` whole
   * words, `regex:` regular expressions (see `patterns.ts`).
   */
  expectedPatterns: string[];
  /** `whole_word`: plain patterns match whole words only. */
  wholeWord?: boolean;
  /** The task passes only when the command fails: `expect_non_zero_exit`, else `id` starts with `failure_`. */
  expectNonZeroExit: boolean;
  /** `verification.marker` as written (may contain `${TIMESTAMP}`); see {@link resolveMarker}. */
  marker?: string | boolean;
  /** Whether the runner saves the task's output (`save_output`, default true as in the seed). */
  saveOutput: boolean;
  /** Present for concurrent tasks (those with `concurrent_instances`). */
  concurrent?: ConcurrentSpec;
  /**
   * `workspace_template` of the task, else its category, else the suite, resolved against
   * the suite file's directory: copied into the task's workspace before it runs.
   */
  workspaceTemplate?: string;
  /** `expected_files`: files the task must leave in its workspace. */
  expectedFiles?: ExpectedFile[];
  /** `check`: shell commands run in the task's workspace after it ended; each must exit 0. */
  checks?: string[];
  /** `check_timeout`: seconds each check may run (default 120). */
  checkTimeoutS?: number;
  /**
   * `check_files` of the task, else its category, else the suite, resolved against the suite
   * file's directory: hidden tests copied into the workspace before the checks run.
   */
  checkFiles?: string;
  /** `rubric`: statements a judge model decides on the task's request, answer and files. */
  rubric?: string[];
  /**
   * The files of `checkFiles`, read on this machine before a run (`withCheckFiles`): they
   * travel with the task to the server, or to a fleet worker, that runs it.
   */
  checkFileData?: WorkspaceFile[];
}

/**
 * A file a task must leave in its workspace (`expected_files[]`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import type { ExpectedFile } from "./suite_model.ts";
 * const f: ExpectedFile = { path: "config.py", contains: "DATABASE_URL" };
 * const suite = parseSuite({ tests: [{ id: "t", command: "true", expected_files: [f] }] }, "inline");
 * assert.deepEqual(suite.tasks[0].expectedFiles, [f]);
 * ```
 */
export interface ExpectedFile {
  /** Path relative to the workspace. */
  path: string;
  /** Text it must contain, case-insensitively. */
  contains?: string;
}

/**
 * A loaded, validated suite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSuite } from "./suite_load.ts";
 * import type { Suite } from "./suite_model.ts";
 * const suite: Suite = await loadSuite("tasks/selftest.json");
 * assert.deepEqual([suite.name, suite.tasks.length], ["selftest", 22]);
 * ```
 */
export interface Suite {
  /** Top-level `name`, else the file name without `.json`. */
  name: string;
  /** Where the suite came from (the path given to {@link loadSuite}). */
  source: string;
  /** Top-level `description`, when given. */
  description?: string;
  /** Top-level `version` (numbers are turned into strings), when given. */
  version?: string;
  /** The claude executable this suite was loaded for (`opts.claude`, default `claude`). */
  claude: string;
  /** Every task, in file order (categories in key order, then tasks in array order). */
  tasks: SuiteTask[];
  /** Things that are valid but probably not meant, e.g. a task that checks nothing. */
  warnings?: JsonProblem[];
}

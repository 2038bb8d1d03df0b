/**
 * Stress suites: loading, validating and normalizing the two JSON suite schemas `ccx stress`
 * accepts, and turning a task into a command that is safe to run.
 *
 * Two schemas are accepted, also mixed within one file:
 *
 * - the seed's, `categories.<name>.tasks[]`, where a task has `id`, `name`,
 *   `natural_language_request`, `metatags`, an optional `command_template` with `${…}`
 *   placeholders and `verification{timeout, stall_timeout, expected_patterns, marker,
 *   expect_non_zero_exit, save_output}`, plus `concurrent_instances`, `models`,
 *   `temperature_range` and `evaluation_criteria` for concurrent tasks;
 * - the later upstream one, `categories.<name>.tests[]` (or a top-level `tests[]`), where a test
 *   has `id`, `name`, `command`, `expected_patterns` and optional `timeout`, `stall_timeout`,
 *   `expect_non_zero_exit`.
 *
 * A malformed suite is refused as a whole: {@link parseSuite} collects every problem with its
 * JSON path and throws one {@link SuiteError}.
 *
 * Substituted text (the request, the metatags, …) never becomes part of the shell source:
 * {@link buildTaskCommand} replaces each placeholder with a quoted reference to an environment
 * variable (`"${CCX_REQUEST}"`) and returns the values in `env`. The shell expands a variable
 * once and never parses its value again, so quotes, `$(…)`, backticks or newlines in a request
 * reach the program verbatim and execute nothing.
 *
 * @module
 */

import { basename, dirname, resolve as resolvePath } from "node:path";
import { EVALUATION_CRITERIA, type EvaluationCriterion } from "../verdict/pick.ts";
import { patternProblem } from "../verdict/patterns.ts";
import { joinPath as join, unknownKeys } from "./suite_schema.ts";

export { EVALUATION_CRITERIA, type EvaluationCriterion };

/**
 * Whether `value` names an evaluation criterion (exact and case-sensitive, as in the seed).
 *
 * @example
 * ```ts
 * import { isEvaluationCriterion } from "./suite.ts";
 * isEvaluationCriterion("CONSENSUS"); // true
 * isEvaluationCriterion("consensus"); // false
 * ```
 */
export function isEvaluationCriterion(value: unknown): value is EvaluationCriterion {
  return typeof value === "string" &&
    (EVALUATION_CRITERIA as readonly string[]).includes(value);
}

/**
 * The placeholders a `command_template` may use. Each is passed to the command through the
 * environment variable `CCX_<NAME>` (see {@link buildTaskCommand}).
 *
 * @example
 * ```ts
 * import { TEMPLATE_VARIABLES } from "./suite.ts";
 * console.log(TEMPLATE_VARIABLES.map((v) => "${" + v + "}").join(" "));
 * ```
 */
export const TEMPLATE_VARIABLES = [
  "METATAGS",
  "REQUEST",
  "TIMESTAMP",
  "MARKER",
  "TEMPERATURE",
  "MODEL",
] as const;

/**
 * One of {@link TEMPLATE_VARIABLES}.
 *
 * @example
 * ```ts
 * import type { TemplateVariable } from "./suite.ts";
 * const v: TemplateVariable = "REQUEST";
 * ```
 */
export type TemplateVariable = typeof TEMPLATE_VARIABLES[number];

/**
 * The timeout (seconds) of a task when neither the task, its category nor the suite's
 * `defaults` give one: the seed's minimum for a Claude prompt.
 *
 * @example
 * ```ts
 * import { DEFAULT_TIMEOUT_S } from "./suite.ts";
 * console.log(`tasks without a timeout get ${DEFAULT_TIMEOUT_S} s`);
 * ```
 */
export const DEFAULT_TIMEOUT_S = 120;

/**
 * One problem found in a suite: where (a JSON path such as
 * `categories.simple.tasks[2].verification.timeout`, or `$` for the document itself) and what.
 *
 * @example
 * ```ts
 * import type { SuiteProblem } from "./suite.ts";
 * const p: SuiteProblem = { path: "categories", message: "required" };
 * ```
 */
export interface SuiteProblem {
  /** JSON path of the offending value; `$` is the whole document. */
  path: string;
  /** What is wrong, in words a suite author can act on. */
  message: string;
}

/**
 * Thrown when a suite cannot be used. `problems` lists every problem found (not just the
 * first); the message lists them too, one a line.
 *
 * @example
 * ```ts
 * import { parseSuite, SuiteError } from "./suite.ts";
 * try {
 *   parseSuite({ categories: { a: { tests: [{ id: "x" }] } } }, "inline");
 * } catch (e) {
 *   if (e instanceof SuiteError) console.log(e.problems.map((p) => p.path));
 * }
 * ```
 */
export class SuiteError extends Error {
  /** Every problem found, in document order. */
  readonly problems: SuiteProblem[];
  /** The file (or other label) the suite came from. */
  readonly source: string;

  /**
   * Creates the error; the message names `source` and lists every problem, one a line.
   *
   * @param source where the suite came from (a path, or a label such as `inline`)
   * @param problems at least one problem
   */
  constructor(source: string, problems: SuiteProblem[]) {
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
 * import type { ConcurrentSpec } from "./suite.ts";
 * const spec: ConcurrentSpec = { instances: 3, models: ["sonnet", "haiku"], criteria: "FASTEST" };
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
 * import { parseSuite, type SuiteTask } from "./suite.ts";
 * const suite = parseSuite({ tests: [{ id: "echo", command: "echo hi", expected_patterns: ["hi"] }] }, "inline");
 * const task: SuiteTask = suite.tasks[0];
 * console.log(task.timeoutS, task.expectedPatterns);
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
}

/**
 * A file a task must leave in its workspace (`expected_files[]`).
 *
 * @example
 * ```ts
 * import type { ExpectedFile } from "./suite.ts";
 * const f: ExpectedFile = { path: "config.py", contains: "DATABASE_URL" };
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
 * import { loadSuite, type Suite } from "./suite.ts";
 * const suite: Suite = await loadSuite("tasks/selftest.json");
 * console.log(suite.name, suite.tasks.length);
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
  warnings?: SuiteProblem[];
}

/**
 * Options of {@link loadSuite} and {@link parseSuite}.
 *
 * @example
 * ```ts
 * import type { SuiteOptions } from "./suite.ts";
 * const opts: SuiteOptions = { claude: "./tests/fixtures/fake_claude" };
 * ```
 */
export interface SuiteOptions {
  /** The claude executable to run (recorded as `Suite.claude`); default `claude`. */
  claude?: string;
}

/**
 * Per-run values for the placeholders of a task's command.
 *
 * @example
 * ```ts
 * import type { CommandVars } from "./suite.ts";
 * const vars: CommandVars = { marker: "MATH_20250101_120000", timestamp: "20250101_120000", model: "haiku" };
 * ```
 */
export interface CommandVars {
  /** `${MARKER}`; also the `[marker:…]` prefix of the default Claude prompt (omitted when empty). */
  marker: string;
  /** `${TIMESTAMP}`. */
  timestamp: string;
  /** `${MODEL}`; with the default Claude command, adds `--model`. Empty when absent. */
  model?: string;
  /** `${TEMPERATURE}`. Empty when absent. The Claude CLI itself has no temperature option. */
  temperature?: number;
}

/**
 * What to run for a task: either `command` (for `/bin/sh -c`, with `env` to add to the job's
 * environment) or `argv` (no shell). `display` is for people (logs, reports): the command with
 * the values written in, not something to execute.
 *
 * @example
 * ```ts
 * import type { BuiltCommand } from "./suite.ts";
 * const built: BuiltCommand = { command: 'echo "${CCX_REQUEST}"', env: { CCX_REQUEST: "hi" }, display: 'echo "hi"' };
 * ```
 */
export interface BuiltCommand {
  /** Shell source for `/bin/sh -c`. */
  command?: string;
  /** Program and arguments, run without a shell. */
  argv?: string[];
  /** Variables the shell command reads (`CCX_REQUEST`, …); merge them into the job's environment. */
  env?: Record<string, string>;
  /** Human-readable form, values spliced in. Never execute it. */
  display: string;
}

// ---------------------------------------------------------------------------------------------
// Loading and validation

/**
 * Reads and validates a suite file. Every problem (unreadable file, invalid JSON with its line and
 * column, schema errors with their JSON paths) is reported through one {@link SuiteError}.
 *
 * @example
 * ```ts
 * import { loadSuite } from "./suite.ts";
 * const suite = await loadSuite("tasks/unified_stress_test_tasks.json", { claude: "claude" });
 * console.log(`${suite.tasks.length} tasks`);
 * ```
 */
export async function loadSuite(path: string, opts: SuiteOptions = {}): Promise<Suite> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new SuiteError(path, [{
      path: "$",
      message: `cannot read the file: ${e instanceof Error ? e.message : String(e)}`,
    }]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SuiteError(path, [{ path: "$", message: describeJsonError(e, text) }]);
  }
  return parseSuite(json, path, opts);
}

/** Turns a `JSON.parse` error into "not valid JSON: … (line L column C)". */
function describeJsonError(e: unknown, text: string): string {
  const raw = e instanceof Error ? e.message : String(e);
  const msg = raw.length > 200 ? raw.slice(0, 200) + "…" : raw;
  if (/\(line \d+ column \d+\)/.test(msg)) return `not valid JSON: ${msg}`;
  let pos: number | undefined;
  const m = /at position (\d+)/.exec(msg);
  if (m) pos = Number(m[1]);
  else if (/end of JSON input/i.test(msg)) pos = text.length;
  if (pos === undefined) return `not valid JSON: ${msg}`;
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  const column = pos - before.lastIndexOf("\n");
  return `not valid JSON: ${msg} (line ${line} column ${column})`;
}

/**
 * Validates parsed JSON as a suite and normalizes it. Throws {@link SuiteError} listing every
 * problem; returns a {@link Suite} only when there are none.
 *
 * @param json the parsed document
 * @param source where it came from, for messages and `Suite.source`
 * @param opts see {@link SuiteOptions}
 *
 * @example
 * ```ts
 * import { parseSuite } from "./suite.ts";
 * const suite = parseSuite({
 *   categories: {
 *     simple: {
 *       tasks: [{
 *         id: "simple_1",
 *         natural_language_request: "What is 2+2?",
 *         verification: { timeout: 120, expected_patterns: ["4"] },
 *       }],
 *     },
 *   },
 * }, "inline");
 * console.log(suite.tasks[0].request);
 * ```
 */
export function parseSuite(json: unknown, source: string, opts: SuiteOptions = {}): Suite {
  const v = new Validator();
  const suite: Suite = {
    name: basename(source).replace(/\.json$/i, "") || source,
    source,
    claude: opts.claude ?? "claude",
    tasks: [],
  };
  if (!isObject(json)) {
    v.problem("$", `expected an object, got ${describe(json)}`);
    throw new SuiteError(source, v.problems);
  }
  v.problems.push(...unknownKeys(json));
  v.optString(json, "$schema", "");
  const name = v.optString(json, "name", "");
  if (name !== undefined && name !== "") suite.name = name;
  const description = v.optString(json, "description", "");
  if (description !== undefined) suite.description = description;
  if (json.version !== undefined) {
    if (typeof json.version === "string" || typeof json.version === "number") {
      suite.version = String(json.version);
    } else v.problem("version", `expected a string or a number, got ${describe(json.version)}`);
  }
  const defaults: Timeouts = {};
  if (json.defaults !== undefined) {
    if (isObject(json.defaults)) {
      defaults.timeout = v.optDuration(json.defaults, "timeout", "defaults");
      defaults.stall = v.optDuration(json.defaults, "stall_timeout", "defaults");
    } else v.problem("defaults", `expected an object, got ${describe(json.defaults)}`);
  }
  v.base = source;
  defaults.template = v.templateDir(json, "");
  const ids = new Map<string, string>();
  const collect = (tasks: SuiteTask[]) => suite.tasks.push(...tasks);

  if (json.categories !== undefined) {
    if (!isObject(json.categories)) {
      v.problem("categories", `expected an object, got ${describe(json.categories)}`);
    } else {
      for (const [cat, body] of Object.entries(json.categories)) {
        const cpath = join("categories", cat);
        if (!isObject(body)) {
          v.problem(cpath, `expected an object, got ${describe(body)}`);
          continue;
        }
        v.optString(body, "description", cpath);
        const catDefaults: Timeouts = {
          timeout: v.optDuration(body, "timeout", cpath) ?? defaults.timeout,
          stall: v.optDuration(body, "stall_timeout", cpath) ?? defaults.stall,
          template: v.templateDir(body, cpath) ?? defaults.template,
        };
        if (body.tasks === undefined && body.tests === undefined) {
          v.problem(cpath, 'expected a "tasks" array (seed schema) or a "tests" array');
        }
        if (body.tasks !== undefined) {
          collect(v.taskList(body.tasks, join(cpath, "tasks"), cat, "tasks", catDefaults, ids));
        }
        if (body.tests !== undefined) {
          collect(v.taskList(body.tests, join(cpath, "tests"), cat, "tests", catDefaults, ids));
        }
      }
    }
  }
  if (json.tests !== undefined) {
    collect(v.taskList(json.tests, "tests", "tests", "tests", defaults, ids));
  }
  if (json.categories === undefined && json.tests === undefined) {
    v.problem("categories", "required: an object of categories, each with a tasks[] or tests[]");
  } else if (v.problems.length === 0 && suite.tasks.length === 0) {
    v.problem(
      json.categories !== undefined ? "categories" : "tests",
      "the suite defines no tasks",
    );
  }
  if (v.problems.length > 0) throw new SuiteError(source, v.problems);
  suite.warnings = v.warnings;
  return suite;
}

interface Timeouts {
  timeout?: number;
  stall?: number;
  /** The inherited `workspace_template`, already resolved. */
  template?: string;
}

type Obj = Record<string, unknown>;

function isObject(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A short description of a JSON value for "expected X, got Y" messages. */
function describe(x: unknown): string {
  if (x === undefined) return "nothing";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object" && x !== null) return "an object";
  const s = JSON.stringify(x);
  return s.length > 40 ? s.slice(0, 40) + "…" : s;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Collects problems while reading a suite; every reader returns undefined for a bad value. */
class Validator {
  problems: SuiteProblem[] = [];
  warnings: SuiteProblem[] = [];
  /** The suite's source path: relative `workspace_template`s resolve against its directory. */
  base = "";

  /** `workspace_template`: a directory path, resolved against the suite file's directory. */
  templateDir(o: Obj, at: string): string | undefined {
    const t = this.optText(o, "workspace_template", at);
    if (t === undefined) return undefined;
    if (t === "") {
      this.problem(
        join(at, "workspace_template"),
        "expected a directory path, got an empty string",
      );
      return undefined;
    }
    return resolvePath(dirname(this.base), t);
  }

  /** `expected_files`: `[{path, contains?}]` with relative paths that stay inside. */
  expectedFiles(o: Obj, at: string): ExpectedFile[] | undefined {
    const x = o.expected_files;
    if (x === undefined) return undefined;
    const path = join(at, "expected_files");
    if (!Array.isArray(x)) {
      this.problem(path, `expected an array of {path, contains?}, got ${describe(x)}`);
      return undefined;
    }
    const out: ExpectedFile[] = [];
    x.forEach((item, i) => {
      const ip = `${path}[${i}]`;
      if (!isObject(item)) {
        this.problem(ip, `expected an object {path, contains?}, got ${describe(item)}`);
        return;
      }
      const p = this.optText(item, "path", ip);
      const contains = this.optText(item, "contains", ip);
      if (p === undefined) {
        if (item.path === undefined) this.problem(join(ip, "path"), "required");
        return;
      }
      if (p === "" || p.startsWith("/") || p.split(/[\\/]/).includes("..")) {
        this.problem(
          join(ip, "path"),
          `expected a path relative to the workspace without "..", got ${JSON.stringify(p)}`,
        );
        return;
      }
      if (contains === "") this.problem(join(ip, "contains"), "expected non-empty text");
      out.push(contains ? { path: p, contains } : { path: p });
    });
    return out;
  }

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  optString(o: Obj, key: string, at: string): string | undefined {
    const x = o[key];
    if (x === undefined) return undefined;
    if (typeof x === "string") return x;
    this.problem(join(at, key), `expected a string, got ${describe(x)}`);
    return undefined;
  }

  optBoolean(o: Obj, key: string, at: string): boolean | undefined {
    const x = o[key];
    if (x === undefined) return undefined;
    if (typeof x === "boolean") return x;
    this.problem(join(at, key), `expected true or false, got ${describe(x)}`);
    return undefined;
  }

  /** A positive number of seconds. */
  optDuration(o: Obj, key: string, at: string): number | undefined {
    const x = o[key];
    if (x === undefined) return undefined;
    if (typeof x !== "number" || !Number.isFinite(x)) {
      this.problem(join(at, key), `expected a number, got ${describe(x)}`);
      return undefined;
    }
    if (x <= 0) {
      this.problem(join(at, key), `expected a positive number of seconds, got ${x}`);
      return undefined;
    }
    return x;
  }

  /** A string without NUL (which no program can receive in an argument or variable). */
  optText(o: Obj, key: string, at: string): string | undefined {
    const s = this.optString(o, key, at);
    if (s !== undefined && s.includes("\0")) {
      this.problem(join(at, key), "contains a NUL character, which cannot be passed to a program");
      return undefined;
    }
    return s;
  }

  /** `expected_patterns`: non-empty strings whose `regex:` patterns compile. */
  patterns(o: Obj, at: string): string[] {
    const list = this.stringList(o, "expected_patterns", at, true) ?? [];
    list.forEach((p, i) => {
      const why = patternProblem(p);
      if (why) this.problem(`${join(at, "expected_patterns")}[${i}]`, why);
    });
    return list;
  }

  stringList(o: Obj, key: string, at: string, nonEmpty: boolean): string[] | undefined {
    const x = o[key];
    if (x === undefined) return undefined;
    const path = join(at, key);
    if (!Array.isArray(x)) {
      this.problem(path, `expected an array of strings, got ${describe(x)}`);
      return undefined;
    }
    let ok = true;
    x.forEach((item, i) => {
      if (typeof item !== "string") {
        this.problem(`${path}[${i}]`, `expected a string, got ${describe(item)}`);
        ok = false;
      } else if (nonEmpty && item === "") {
        this.problem(`${path}[${i}]`, "expected a non-empty string");
        ok = false;
      }
    });
    return ok ? x as string[] : undefined;
  }

  taskList(
    list: unknown,
    path: string,
    category: string,
    schema: "tasks" | "tests",
    defaults: Timeouts,
    ids: Map<string, string>,
  ): SuiteTask[] {
    if (!Array.isArray(list)) {
      this.problem(path, `expected an array, got ${describe(list)}`);
      return [];
    }
    const out: SuiteTask[] = [];
    list.forEach((item, i) => {
      const at = `${path}[${i}]`;
      if (!isObject(item)) {
        this.problem(at, `expected an object, got ${describe(item)}`);
        return;
      }
      const before = this.problems.length;
      const task = schema === "tasks"
        ? this.seedTask(item, at, category, defaults)
        : this.upstreamTest(item, at, category, defaults);
      const id = task.id;
      if (id !== "") {
        const first = ids.get(id);
        if (first !== undefined) {
          this.problem(
            join(at, "id"),
            `duplicate id ${JSON.stringify(id)} (first defined at ${first})`,
          );
        } else ids.set(id, join(at, "id"));
      }
      if (this.problems.length !== before) return;
      out.push(task);
      if (
        task.expectedPatterns.length === 0 && !task.expectNonZeroExit && !task.concurrent &&
        !task.expectedFiles?.length
      ) {
        this.warnings.push({
          path: at,
          message: `task ${JSON.stringify(task.id)} checks nothing but exit code 0; ` +
            "add expected_patterns",
        });
      }
    });
    return out;
  }

  /** Reads `id` and `name`; returns id "" when missing or bad (a problem is recorded). */
  identity(o: Obj, at: string): { id: string; name: string } {
    let id = "";
    if (o.id === undefined) this.problem(join(at, "id"), "required");
    else if (typeof o.id !== "string") {
      this.problem(join(at, "id"), `expected a string, got ${describe(o.id)}`);
    } else if (!ID_RE.test(o.id)) {
      this.problem(
        join(at, "id"),
        `${
          JSON.stringify(o.id)
        } is not a valid id: use letters, digits, ".", "_" and "-", starting with a letter or digit (ids name output files)`,
      );
    } else id = o.id;
    const name = this.optString(o, "name", at);
    return { id, name: name !== undefined && name !== "" ? name : id };
  }

  seedTask(o: Obj, at: string, category: string, defaults: Timeouts): SuiteTask {
    const { id, name } = this.identity(o, at);
    const request = this.optText(o, "natural_language_request", at);
    const metatags = this.optText(o, "metatags", at);
    const template = this.template(o, "command_template", at, true);
    if (request === undefined && o.natural_language_request === undefined) {
      if (template === undefined && o.command_template === undefined) {
        this.problem(
          join(at, "natural_language_request"),
          "required when there is no command_template",
        );
      } else if (template !== undefined && placeholderNames(template).includes("REQUEST")) {
        this.problem(
          join(at, "natural_language_request"),
          "required: the command_template uses ${REQUEST}",
        );
      }
    }
    let timeout = defaults.timeout;
    let stall = defaults.stall;
    let patterns: string[] = [];
    let wholeWord: boolean | undefined;
    let marker: string | boolean | undefined;
    let expectFail: boolean | undefined;
    let save: boolean | undefined;
    let files: ExpectedFile[] | undefined;
    if (o.verification !== undefined) {
      const vp = join(at, "verification");
      if (!isObject(o.verification)) {
        this.problem(vp, `expected an object, got ${describe(o.verification)}`);
      } else {
        const ver = o.verification;
        timeout = this.optDuration(ver, "timeout", vp) ?? timeout;
        stall = this.optDuration(ver, "stall_timeout", vp) ?? stall;
        patterns = this.patterns(ver, vp);
        wholeWord = this.optBoolean(ver, "whole_word", vp);
        marker = this.marker(ver, vp);
        expectFail = this.optBoolean(ver, "expect_non_zero_exit", vp);
        save = this.optBoolean(ver, "save_output", vp);
        files = this.expectedFiles(ver, vp);
      }
    }
    const workspaceTemplate = this.templateDir(o, at) ?? defaults.template;
    const concurrent = this.concurrent(o, at);
    return {
      id,
      name,
      category,
      ...(request !== undefined ? { request } : {}),
      ...(metatags !== undefined ? { metatags } : {}),
      ...(template !== undefined ? { template } : {}),
      timeoutS: timeout ?? DEFAULT_TIMEOUT_S,
      ...(stall !== undefined ? { stallTimeoutS: stall } : {}),
      expectedPatterns: patterns,
      ...(wholeWord !== undefined ? { wholeWord } : {}),
      expectNonZeroExit: expectFail ?? id.startsWith("failure_"),
      ...(marker !== undefined ? { marker } : {}),
      saveOutput: save ?? true,
      ...(concurrent !== undefined ? { concurrent } : {}),
      ...(workspaceTemplate !== undefined ? { workspaceTemplate } : {}),
      ...(files?.length ? { expectedFiles: files } : {}),
    };
  }

  upstreamTest(o: Obj, at: string, category: string, defaults: Timeouts): SuiteTask {
    const { id, name } = this.identity(o, at);
    const template = this.template(o, "command", at, false);
    if (o.command === undefined) this.problem(join(at, "command"), "required");
    const timeout = this.optDuration(o, "timeout", at) ?? defaults.timeout;
    const stall = this.optDuration(o, "stall_timeout", at) ?? defaults.stall;
    const patterns = this.patterns(o, at);
    const wholeWord = this.optBoolean(o, "whole_word", at);
    const expectFail = this.optBoolean(o, "expect_non_zero_exit", at);
    const save = this.optBoolean(o, "save_output", at);
    const files = this.expectedFiles(o, at);
    const workspaceTemplate = this.templateDir(o, at) ?? defaults.template;
    const concurrent = this.concurrent(o, at);
    return {
      id,
      name,
      category,
      ...(template !== undefined ? { template } : {}),
      timeoutS: timeout ?? DEFAULT_TIMEOUT_S,
      ...(stall !== undefined ? { stallTimeoutS: stall } : {}),
      expectedPatterns: patterns,
      ...(wholeWord !== undefined ? { wholeWord } : {}),
      expectNonZeroExit: expectFail ?? id.startsWith("failure_"),
      saveOutput: save ?? true,
      ...(concurrent !== undefined ? { concurrent } : {}),
      ...(workspaceTemplate !== undefined ? { workspaceTemplate } : {}),
      ...(files?.length ? { expectedFiles: files } : {}),
    };
  }

  /**
   * A command template. In the seed's `command_template` every `${NAME}` must be a known
   * placeholder; in an upstream `command`, unknown `${NAME}`s are left for the shell.
   */
  template(o: Obj, key: string, at: string, strict: boolean): string | undefined {
    const t = this.optString(o, key, at);
    if (t === undefined) return undefined;
    if (t.trim() === "") {
      this.problem(join(at, key), "expected a non-empty command");
      return undefined;
    }
    if (!strict) return t;
    let ok = true;
    for (const name of placeholderNames(t)) {
      if ((TEMPLATE_VARIABLES as readonly string[]).includes(name)) continue;
      ok = false;
      const upper = name.toUpperCase();
      const hint = (TEMPLATE_VARIABLES as readonly string[]).includes(upper)
        ? ` (did you mean \${${upper}}?)`
        : "";
      this.problem(
        join(at, key),
        `unknown placeholder \${${name}}${hint}; known: ${
          TEMPLATE_VARIABLES.map((n) => `\${${n}}`).join(" ")
        }`,
      );
    }
    return ok ? t : undefined;
  }

  marker(ver: Obj, at: string): string | boolean | undefined {
    const m = ver.marker;
    if (m === undefined) return undefined;
    if (typeof m === "boolean") return m;
    if (typeof m !== "string") {
      this.problem(join(at, "marker"), `expected a string or a boolean, got ${describe(m)}`);
      return undefined;
    }
    let ok = true;
    for (const name of new Set(m.match(/\$\{[^}]*\}/g) ?? [])) {
      if (name === "${TIMESTAMP}") continue;
      ok = false;
      this.problem(
        join(at, "marker"),
        `unknown placeholder ${name}; a marker may use \${TIMESTAMP}`,
      );
    }
    return ok ? m : undefined;
  }

  concurrent(o: Obj, at: string): ConcurrentSpec | undefined {
    const given = ["models", "temperature_range", "evaluation_criteria"].filter((k) =>
      o[k] !== undefined
    );
    if (o.concurrent_instances === undefined) {
      if (given.length > 0) {
        this.problem(
          join(at, "concurrent_instances"),
          `required when ${given.join(", ")} ${given.length === 1 ? "is" : "are"} given`,
        );
      }
      return undefined;
    }
    const before = this.problems.length;
    const n = o.concurrent_instances;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
      this.problem(
        join(at, "concurrent_instances"),
        `expected a positive integer, got ${describe(n)}`,
      );
    }
    const models = this.stringList(o, "models", at, true);
    if (models !== undefined && models.length === 0) {
      this.problem(join(at, "models"), "expected at least one model (or leave models out)");
    }
    for (const m of models ?? []) {
      if (m.includes("\0")) this.problem(join(at, "models"), "contains a NUL character");
    }
    let range: [number, number] | undefined;
    const r = o.temperature_range;
    const rp = join(at, "temperature_range");
    if (r !== undefined) {
      if (!Array.isArray(r)) {
        this.problem(rp, `expected [low, high], got ${describe(r)}`);
      } else if (r.length !== 2) {
        this.problem(rp, `expected [low, high], got an array of ${r.length}`);
      } else {
        let ok = true;
        r.forEach((x, i) => {
          if (typeof x !== "number" || !Number.isFinite(x)) {
            this.problem(`${rp}[${i}]`, `expected a number, got ${describe(x)}`);
            ok = false;
          } else if (x < 0) {
            this.problem(`${rp}[${i}]`, `expected a temperature of 0 or more, got ${x}`);
            ok = false;
          }
        });
        if (ok && r[0] > r[1]) this.problem(rp, `low ${r[0]} is above high ${r[1]}`);
        else if (ok) range = [r[0], r[1]];
      }
    }
    const c = o.evaluation_criteria;
    const valid = `one of ${EVALUATION_CRITERIA.join(", ")}`;
    if (c === undefined) {
      this.problem(join(at, "evaluation_criteria"), `required for a concurrent task: ${valid}`);
    } else if (!isEvaluationCriterion(c)) {
      this.problem(
        join(at, "evaluation_criteria"),
        `unknown criterion ${describe(c)}; expected ${valid}`,
      );
    }
    if (this.problems.length > before) return undefined;
    return {
      instances: n as number,
      ...(models !== undefined ? { models } : {}),
      ...(range !== undefined ? { temperatureRange: range } : {}),
      criteria: c as EvaluationCriterion,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Shell-template scanning

/** Quoting context of a position in shell source. */
type ShellContext = "unquoted" | "single" | "double" | "backtick" | "subst";

type Token =
  | { kind: "text"; text: string }
  | { kind: "var"; name: string; raw: string; ctx: ShellContext }
  | { kind: "claude"; raw: string };

interface Frame {
  ctx: ShellContext;
  /** Open parentheses inside a `$(…)`. */
  depth: number;
  /** At a position where a command name may start (unquoted-like contexts). */
  atCommand: boolean;
}

const PLACEHOLDER_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/y;

/**
 * Splits shell source into text, `${NAME}` placeholders (with the quoting context they stand in)
 * and the word `claude` where it stands as a command name. Escaped `\${…}` is text.
 *
 * The scanner follows POSIX quoting (single and double quotes, backslashes, backticks, `$(…)`,
 * comments); it does not parse here-documents or `case` patterns inside `$(…)`. A misjudged
 * context can only make a value arrive differently quoted (split into words, with literal quote
 * characters): values are never part of the shell source, so nothing in them is executed.
 */
function scanShell(src: string): Token[] {
  const tokens: Token[] = [];
  let text = "";
  const flush = () => {
    if (text !== "") tokens.push({ kind: "text", text });
    text = "";
  };
  const stack: Frame[] = [{ ctx: "unquoted", depth: 0, atCommand: true }];
  let i = 0;
  while (i < src.length) {
    const top = stack[stack.length - 1];
    const ch = src[i];
    PLACEHOLDER_RE.lastIndex = i;
    const m = PLACEHOLDER_RE.exec(src);
    if (m) {
      flush();
      tokens.push({ kind: "var", name: m[1], raw: m[0], ctx: top.ctx });
      top.atCommand = false;
      i += m[0].length;
      continue;
    }
    if (top.ctx === "single") {
      if (ch === "'") stack.pop();
      text += ch;
      i++;
      continue;
    }
    if (ch === "\\") {
      text += src.slice(i, i + 2);
      i += 2;
      top.atCommand = false;
      continue;
    }
    if (top.ctx === "double") {
      if (ch === '"') stack.pop();
      else if (ch === "`") stack.push({ ctx: "backtick", depth: 0, atCommand: true });
      else if (src.startsWith("$(", i)) {
        stack.push({ ctx: "subst", depth: 0, atCommand: true });
        text += "$(";
        i += 2;
        continue;
      }
      text += ch;
      i++;
      continue;
    }
    // unquoted, subst, backtick: command-level syntax
    if (
      top.atCommand && src.startsWith("claude", i) &&
      (i + 6 === src.length || /[\s;&|)`]/.test(src[i + 6]))
    ) {
      flush();
      tokens.push({ kind: "claude", raw: "claude" });
      top.atCommand = false;
      i += 6;
      continue;
    }
    const wordStart = i === 0 || /[\s;&|(`]/.test(src[i - 1]);
    if (ch === "#" && wordStart) {
      const end = src.indexOf("\n", i);
      const stop = end === -1 ? src.length : end;
      text += src.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === "'") {
      stack.push({ ctx: "single", depth: 0, atCommand: false });
      top.atCommand = false;
    } else if (ch === '"') {
      stack.push({ ctx: "double", depth: 0, atCommand: false });
      top.atCommand = false;
    } else if (ch === "`") {
      if (top.ctx === "backtick") stack.pop();
      else {
        top.atCommand = false;
        stack.push({ ctx: "backtick", depth: 0, atCommand: true });
      }
    } else if (src.startsWith("$(", i)) {
      top.atCommand = false;
      stack.push({ ctx: "subst", depth: 0, atCommand: true });
      text += "$(";
      i += 2;
      continue;
    } else if (ch === "(") {
      if (top.ctx === "subst") top.depth++;
      top.atCommand = true;
    } else if (ch === ")") {
      if (top.ctx === "subst") {
        if (top.depth === 0) stack.pop();
        else top.depth--;
      }
      top.atCommand = false;
    } else if (ch === ";" || ch === "&" || ch === "|" || ch === "\n") {
      top.atCommand = true;
    } else if (ch !== " " && ch !== "\t") {
      top.atCommand = false;
    }
    text += ch;
    i++;
  }
  flush();
  return tokens;
}

/** The distinct `${NAME}` placeholder names of a template, in order of appearance. */
function placeholderNames(template: string): string[] {
  const names: string[] = [];
  for (const t of scanShell(template)) {
    if (t.kind === "var" && !names.includes(t.name)) names.push(t.name);
  }
  return names;
}

/**
 * Quotes a word for POSIX `sh`: unchanged when it only holds safe characters, else in single
 * quotes (an embedded `'` becomes `'\''`).
 *
 * @example
 * ```ts
 * import { shellQuote } from "./suite.ts";
 * shellQuote("claude"); // claude
 * shellQuote("it's"); // 'it'\''s'
 * ```
 */
export function shellQuote(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_\/.,:+=@%-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * Builds what to run for one task (one instance, for a concurrent task).
 *
 * - With a template (`command_template`, or an upstream `command`): returns `{command, env}`.
 *   Each known placeholder is replaced by a reference to `CCX_<NAME>` quoted for the context it
 *   stands in (`${CCX_X}` inside double quotes, `'"${CCX_X}"'` inside single quotes,
 *   `"${CCX_X}"` elsewhere), and `env` carries the values. Run it as `/bin/sh -c command` with
 *   `env` added to (not replacing) the environment. The word `claude` in command position is
 *   replaced by `opts.claude`, shell-quoted, so a stand-in executable can be used.
 * - Without a template (seed tasks that only give a request): returns `argv`, the seed's default
 *   Claude invocation, run without a shell:
 *   `[claude, "-p", "[marker:M] METATAGS REQUEST", "--output-format", "stream-json", "--verbose",
 *   "--dangerously-skip-permissions"]`, plus `--model M` when `vars.model` is given. The seed's
 *   `--allowedTools none` is left out: the real CLI reads `none` as a tool name and restricts
 *   nothing (a template that wants no tools says `--tools ""`); the seed suite's own templates
 *   keep it, as they ask for it.
 *
 * @example
 * ```ts
 * import { buildTaskCommand, parseSuite } from "./suite.ts";
 * const suite = parseSuite({ categories: { simple: { tasks: [{
 *   id: "simple_1",
 *   natural_language_request: "What is 2+2?",
 *   command_template: 'claude -p "[marker:${MARKER}] ${REQUEST}" --output-format stream-json --verbose',
 * }] } } }, "inline");
 * const built = buildTaskCommand(suite.tasks[0], { marker: "M1", timestamp: "20250101_000000" }, { claude: "claude" });
 * // built.command: claude -p "[marker:${CCX_MARKER}] ${CCX_REQUEST}" --output-format stream-json --verbose
 * // built.env: { CCX_MARKER: "M1", CCX_REQUEST: "What is 2+2?" }
 * ```
 */
export function buildTaskCommand(
  task: SuiteTask,
  vars: CommandVars,
  opts: { claude: string },
): BuiltCommand {
  const values: Record<TemplateVariable, string> = {
    METATAGS: task.metatags ?? "",
    REQUEST: task.request ?? "",
    TIMESTAMP: vars.timestamp,
    MARKER: vars.marker,
    TEMPERATURE: vars.temperature === undefined ? "" : String(vars.temperature),
    MODEL: vars.model ?? "",
  };
  if (task.template === undefined) {
    const prompt = [
      vars.marker !== "" ? `[marker:${vars.marker}]` : "",
      values.METATAGS,
      values.REQUEST,
    ]
      .filter((s) => s !== "").join(" ");
    const argv = [
      opts.claude,
      "-p",
      prompt,
      "--output-format",
      "stream-json",
      "--verbose",
      "--dangerously-skip-permissions",
    ];
    if (vars.model !== undefined && vars.model !== "") argv.push("--model", vars.model);
    return { argv, display: argv.map(shellQuote).join(" ") };
  }
  const known = TEMPLATE_VARIABLES as readonly string[];
  const env: Record<string, string> = {};
  let command = "";
  let display = "";
  for (const t of scanShell(task.template)) {
    if (t.kind === "text") {
      command += t.text;
      display += t.text;
    } else if (t.kind === "claude") {
      command += shellQuote(opts.claude);
      display += shellQuote(opts.claude);
    } else if (!known.includes(t.name)) {
      command += t.raw;
      display += t.raw;
    } else {
      const name = t.name as TemplateVariable;
      const ref = `\${CCX_${name}}`;
      env[`CCX_${name}`] = values[name];
      command += t.ctx === "double" ? ref : t.ctx === "single" ? `'"${ref}"'` : `"${ref}"`;
      display += values[name];
    }
  }
  return { command, env, display };
}

/**
 * Whether running the task starts the Claude CLI: a seed task without a template does, and so
 * does a template with `claude` where a command starts.
 *
 * @example
 * ```ts
 * import { parseSuite, usesClaude } from "./suite.ts";
 * const s = parseSuite({ tests: [{ id: "a", command: "echo hi | claude -p x" }] }, "inline");
 * usesClaude(s.tasks[0]); // true
 * ```
 */
export function usesClaude(task: SuiteTask): boolean {
  return task.template === undefined || scanShell(task.template).some((t) => t.kind === "claude");
}

/**
 * The marker for one run of a task: `verification.marker` with `${TIMESTAMP}` filled in; `""`
 * when the marker is `false`; `<id>_<timestamp>` when it is absent or `true`.
 *
 * @example
 * ```ts
 * import { parseSuite, resolveMarker } from "./suite.ts";
 * const [task] = parseSuite({ tests: [{ id: "t", command: "true" }] }, "inline").tasks;
 * resolveMarker(task, "20250101_000000"); // "t_20250101_000000"
 * ```
 */
export function resolveMarker(task: SuiteTask, timestamp: string): string {
  if (task.marker === false) return "";
  if (typeof task.marker === "string") return task.marker.replaceAll("${TIMESTAMP}", timestamp);
  return `${task.id}_${timestamp}`;
}

/**
 * Selects tasks: those in any of `categories` (case-insensitive names; all when absent or
 * empty) whose id or name matches the regular expression `filter` (case-insensitive; plain text
 * matches as a substring; all when absent or empty) and matches none of `exclude`, in suite
 * order. Throws `RangeError` naming the suite's categories when a category does not exist, so a
 * typo is not mistaken for an empty selection, and `SyntaxError` naming `--filter`/`--exclude`
 * for an invalid expression.
 *
 * @example
 * ```ts
 * import { filterTasks, loadSuite } from "./suite.ts";
 * const suite = await loadSuite("tasks/unified_stress_test_tasks.json");
 * const math = filterTasks(suite, { categories: ["simple"], filter: "math|fib", exclude: ["quick"] });
 * console.log(math.map((t) => t.id));
 * ```
 */
export function filterTasks(
  suite: Suite,
  sel: { categories?: string[]; filter?: string; exclude?: string[] },
): SuiteTask[] {
  const known = [...new Set(suite.tasks.map((t) => t.category))];
  const wanted = (sel.categories ?? []).map((c) => c.trim()).filter((c) => c !== "");
  const cats = new Set<string>();
  const unknown: string[] = [];
  for (const c of wanted) {
    const hit = known.find((k) => k.toLowerCase() === c.toLowerCase());
    if (hit === undefined) unknown.push(c);
    else cats.add(hit);
  }
  if (unknown.length > 0) {
    throw new RangeError(
      `unknown categor${unknown.length === 1 ? "y" : "ies"} ${
        unknown.map((c) => JSON.stringify(c)).join(", ")
      } in ${suite.source}; it has: ${known.join(", ")}`,
    );
  }
  const re = (flag: string, src: string) => {
    try {
      return new RegExp(src, "iu");
    } catch (e) {
      throw new SyntaxError(`${flag}: ${(e as Error).message}`);
    }
  };
  const keep = sel.filter ? re("--filter", sel.filter) : undefined;
  const drop = (sel.exclude ?? []).filter((x) => x !== "").map((x) => re("--exclude", x));
  const matches = (r: RegExp, t: SuiteTask) => r.test(t.id) || r.test(t.name);
  return suite.tasks.filter((t) =>
    (cats.size === 0 || cats.has(t.category)) &&
    (keep === undefined || matches(keep, t)) &&
    !drop.some((r) => matches(r, t))
  );
}

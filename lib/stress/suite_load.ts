/**
 * Loading a suite: reading the file, validating it against the suite format, and normalizing
 * the two JSON suite schemas `ccx stress` accepts into one {@linkcode Suite}.
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
 * @module
 */

import { basename, dirname, resolve as resolvePath } from "node:path";
import type { JsonProblem } from "../common/json.ts";
import {
  EVALUATION_CRITERIA,
  type EvaluationCriterion,
  isEvaluationCriterion,
} from "../verdict/pick.ts";
import { patternProblem } from "../verdict/patterns.ts";
import { joinPath as join, unknownKeys } from "./suite_schema.ts";
import {
  type ConcurrentSpec,
  DEFAULT_TIMEOUT_S,
  type ExpectedFile,
  type Suite,
  SuiteError,
  type SuiteTask,
} from "./suite_model.ts";
import { TEMPLATE_VARIABLES } from "./task_command.ts";
import { placeholderNames } from "./shell_template.ts";

/**
 * Options of {@link loadSuite} and {@link parseSuite}.
 *
 * @example
 * ```ts
 * import type { SuiteOptions } from "./suite_load.ts";
 * const opts: SuiteOptions = { claude: "./tests/fixtures/fake_claude" };
 * ```
 */
export interface SuiteOptions {
  /** The claude executable to run (recorded as `Suite.claude`); default `claude`. */
  claude?: string;
}

// ---------------------------------------------------------------------------------------------
// Loading and validation

/**
 * Reads and validates a suite file. Every problem (unreadable file, invalid JSON with its line and
 * column, schema errors with their JSON paths) is reported through one {@link SuiteError}.
 *
 * @example
 * ```ts
 * import { loadSuite } from "./suite_load.ts";
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
 * import { parseSuite } from "./suite_load.ts";
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
  problems: JsonProblem[] = [];
  warnings: JsonProblem[] = [];
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
      if (task.expectedPatterns.length === 0 && !task.expectNonZeroExit && !task.concurrent) {
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

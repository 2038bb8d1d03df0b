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
 * JSON path and throws one {@link SuiteError}. The structure (types, required keys, enums,
 * bounds, unknown keys) is checked against the declaration in `suite_schema.ts` by
 * `suite_shape.ts`; this module adds only the rules a JSON Schema cannot say: ids are safe and
 * unique, `regex:` patterns compile, template placeholders exist, expected files stay inside the
 * workspace, concurrent keys come together, no NUL reaches a program, `check_files` is a
 * directory and comes (like `check_timeout`) with a check. A valid document is then
 * normalized: timeouts, workspace templates and hidden tests inherited, defaults filled in.
 *
 * @module
 */

import { basename, dirname, resolve as resolvePath } from "node:path";
import {
  expectedMessage,
  isRecord,
  joinPath as join,
  type JsonObject,
  type JsonProblem,
  JsonShapeError,
  NUL_MESSAGE,
  parseJsonText,
} from "../common/json.ts";
import { EVALUATION_CRITERIA, type EvaluationCriterion } from "../verdict/pick.ts";
import { patternProblem } from "../verdict/patterns.ts";
import { checkShape, type ShapeVisit } from "./suite_shape.ts";
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
 * import assert from "node:assert/strict";
 * import { parseSuite, type SuiteOptions } from "./suite_load.ts";
 * const opts: SuiteOptions = { claude: "/opt/claude/bin/claude" };
 * const suite = parseSuite({ tests: [{ id: "t", command: "claude -p hi" }] }, "inline", opts);
 * assert.equal(suite.claude, "/opt/claude/bin/claude");
 * ```
 */
export interface SuiteOptions {
  /** The claude executable to run (recorded as `Suite.claude`); default `claude`. */
  claude?: string;
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * Reads and validates a suite file. Every problem (unreadable file, invalid JSON with its line and
 * column, schema errors with their JSON paths) is reported through one {@link SuiteError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSuite } from "./suite_load.ts";
 * const suite = await loadSuite("tasks/unified_stress_test_tasks.json", { claude: "claude" });
 * assert.equal(suite.tasks.length, 21);
 * await assert.rejects(loadSuite("tasks/nowhere.json"), /tasks\/nowhere\.json/);
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
  let json: unknown;
  try {
    json = parseJsonText(text);
  } catch (e) {
    if (e instanceof JsonShapeError) throw new SuiteError(path, [e.problem]);
    throw e;
  }
  return parseSuite(json, path, opts);
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
 * import assert from "node:assert/strict";
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
 * assert.equal(suite.tasks[0].request, "What is 2+2?");
 * assert.deepEqual(suite.tasks[0].expectedPatterns, ["4"]);
 * ```
 */
export function parseSuite(json: unknown, source: string, opts: SuiteOptions = {}): Suite {
  const ctx: RuleContext = { ids: new Map(), dir: dirname(source) };
  const problems = checkShape(json, (v) => RULES[v.name]?.(v, ctx));
  if (problems.length === 0 && isRecord(json)) {
    const suite = normalize(json, source, opts);
    if (suite.tasks.length > 0) return suite;
    problems.push({
      path: json.categories !== undefined ? "categories" : "tests",
      message: "the suite defines no tasks",
    });
  }
  throw new SuiteError(source, problems);
}

// ---------------------------------------------------------------------------------------------
// The rules a JSON Schema cannot say. Each runs after the structure of its object was checked
// and looks only at keys that passed (`ok`), so one mistake is reported once.

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** What the rules share: the ids seen so far, the suite file's directory. */
interface RuleContext {
  ids: Map<string, string>;
  dir: string;
}

type Rule = (v: ShapeVisit, ctx: RuleContext) => void;

const RULES: Partial<Record<ShapeVisit["name"], Rule>> = {
  suite(v, { dir }) {
    noNul(v, "workspace_template");
    checkFilesDir(v, dir);
    if (v.value.categories === undefined && v.value.tests === undefined) {
      v.report("categories", "required: an object of categories, each with a tasks[] or tests[]");
    }
  },
  category(v, { dir }) {
    noNul(v, "workspace_template");
    checkFilesDir(v, dir);
    if (v.value.tasks === undefined && v.value.tests === undefined) {
      v.report(v.path, 'expected a "tasks" array (seed schema) or a "tests" array');
    }
  },
  task(v, { ids }) {
    identity(v, ids);
    for (const k of ["natural_language_request", "metatags", "workspace_template"]) noNul(v, k);
    const template = command(v, "command_template", true);
    if (v.value.natural_language_request === undefined) {
      if (v.value.command_template === undefined) {
        v.report(
          join(v.path, "natural_language_request"),
          "required when there is no command_template",
        );
      } else if (template !== undefined && placeholderNames(template).includes("REQUEST")) {
        v.report(
          join(v.path, "natural_language_request"),
          "required: the command_template uses ${REQUEST}",
        );
      }
    }
    concurrent(v);
  },
  test(v, { ids, dir }) {
    identity(v, ids);
    noNul(v, "workspace_template");
    command(v, "command", false);
    patterns(v);
    graders(v, dir);
    concurrent(v);
  },
  verification(v, { dir }) {
    patterns(v);
    graders(v, dir);
    if (v.ok("marker") && typeof v.value.marker === "string") {
      for (const name of new Set(v.value.marker.match(/\$\{[^}]*\}/g) ?? [])) {
        if (name === "${TIMESTAMP}") continue;
        v.report(
          join(v.path, "marker"),
          `unknown placeholder ${name}; a marker may use \${TIMESTAMP}`,
        );
      }
    }
  },
  expected_file(v) {
    noNul(v, "path");
    noNul(v, "contains");
    const p = v.value.path;
    if (
      v.ok("path") && typeof p === "string" &&
      (p.startsWith("/") || p.split(/[\\/]/).includes(".."))
    ) {
      v.report(
        join(v.path, "path"),
        expectedMessage('a path relative to the workspace without ".."', p),
      );
    }
  },
};

/** A NUL cannot be passed to a program in an argument or a variable. */
function noNul(v: ShapeVisit, key: string): void {
  const x = v.value[key];
  if (v.ok(key) && typeof x === "string" && x.includes("\0")) {
    v.report(join(v.path, key), NUL_MESSAGE);
  }
}

/**
 * A task's graders (a seed task's `verification`, an upstream test): `check` and `rubric` hold
 * no blank text and no NUL, `check_timeout` and `check_files` come with a `check`, and
 * `check_files` is a directory.
 */
function graders(v: ShapeVisit, dir: string): void {
  for (const key of ["check", "rubric"]) {
    const x = v.value[key];
    if (!v.ok(key)) continue;
    const list = typeof x === "string" ? [x] : x as string[];
    list.forEach((item, i) => {
      const at = typeof x === "string" ? join(v.path, key) : join(join(v.path, key), i);
      if (item.trim() === "") v.report(at, expectedMessage("a non-empty string", item));
      else if (item.includes("\0")) v.report(at, NUL_MESSAGE);
    });
  }
  if (v.value.check === undefined) {
    if (v.ok("check_timeout")) {
      v.report(join(v.path, "check_timeout"), "given without a check");
    }
    if (v.ok("check_files")) {
      v.report(join(v.path, "check_files"), "given without a check to run the hidden files");
    }
  }
  checkFilesDir(v, dir);
}

/**
 * `check_files`: a directory on this machine (relative: to the suite file), whose files
 * `ccx stress` ships into a task's workspace before its checks run.
 */
function checkFilesDir(v: ShapeVisit, dir: string): void {
  const t = v.value.check_files;
  if (!v.ok("check_files") || typeof t !== "string") return;
  const at = join(v.path, "check_files");
  if (t.includes("\0")) return v.report(at, NUL_MESSAGE);
  const abs = resolvePath(dir, t);
  let isDir = false;
  try {
    isDir = Deno.statSync(abs).isDirectory;
  } catch { /* reported below */ }
  if (!isDir) v.report(at, `expected a directory, got ${JSON.stringify(t)} (${abs})`);
}

/** `id`: safe characters (it names output files) and unique across the suite. */
function identity(v: ShapeVisit, ids: Map<string, string>): void {
  const id = v.value.id;
  if (!v.ok("id") || typeof id !== "string") return;
  const at = join(v.path, "id");
  if (!ID_RE.test(id)) {
    v.report(
      at,
      `${
        JSON.stringify(id)
      } is not a valid id: use letters, digits, ".", "_" and "-", starting with a letter or digit (ids name output files)`,
    );
    return;
  }
  const first = ids.get(id);
  if (first !== undefined) {
    v.report(at, `duplicate id ${JSON.stringify(id)} (first defined at ${first})`);
  } else ids.set(id, at);
}

/** `expected_patterns`: `regex:` patterns must compile. */
function patterns(v: ShapeVisit): void {
  if (!v.ok("expected_patterns")) return;
  (v.value.expected_patterns as string[]).forEach((p, i) => {
    const why = patternProblem(p);
    if (why) v.report(join(join(v.path, "expected_patterns"), i), why);
  });
}

/**
 * A command template: not only white space; in the seed's `command_template` (`strict`) every
 * `${NAME}` must be a known placeholder, while an upstream `command` may use shell variables of
 * its own. Returns the template when it is usable.
 */
function command(v: ShapeVisit, key: string, strict: boolean): string | undefined {
  const t = v.value[key];
  if (!v.ok(key) || typeof t !== "string") return undefined;
  const at = join(v.path, key);
  if (t.trim() === "") {
    v.report(at, expectedMessage("a non-empty command", t));
    return undefined;
  }
  if (!strict) return t;
  const known = TEMPLATE_VARIABLES as readonly string[];
  const unknown = placeholderNames(t).filter((name) => !known.includes(name));
  for (const name of unknown) {
    const upper = name.toUpperCase();
    const hint = known.includes(upper) ? ` (did you mean \${${upper}}?)` : "";
    v.report(
      at,
      `unknown placeholder \${${name}}${hint}; known: ${known.map((n) => `\${${n}}`).join(" ")}`,
    );
  }
  return unknown.length === 0 ? t : undefined;
}

/** The concurrent keys come together; `temperature_range` is `[low, high]` with low <= high. */
function concurrent(v: ShapeVisit): void {
  const o = v.value;
  if (o.concurrent_instances === undefined) {
    const given = ["models", "temperature_range", "evaluation_criteria"].filter((k) =>
      o[k] !== undefined
    );
    if (given.length > 0) {
      v.report(
        join(v.path, "concurrent_instances"),
        `required when ${given.join(", ")} ${given.length === 1 ? "is" : "are"} given`,
      );
    }
    return;
  }
  if (v.ok("models")) {
    (o.models as string[]).forEach((m, i) => {
      if (m.includes("\0")) v.report(join(join(v.path, "models"), i), NUL_MESSAGE);
    });
  }
  const r = o.temperature_range as [number, number];
  if (v.ok("temperature_range") && r[0] > r[1]) {
    v.report(join(v.path, "temperature_range"), `low ${r[0]} is above high ${r[1]}`);
  }
  if (o.evaluation_criteria === undefined) {
    v.report(
      join(v.path, "evaluation_criteria"),
      `required for a concurrent task: one of ${EVALUATION_CRITERIA.join(", ")}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Normalizing a valid document (every check above passed, so the declared types hold)

/** What a task inherits from its category and the suite. */
interface Inherited {
  timeout?: number;
  stall?: number;
  /** The inherited `workspace_template`, already resolved. */
  template?: string;
  /** The inherited `check_files`, already resolved. */
  checkFiles?: string;
}

function normalize(doc: JsonObject, source: string, opts: SuiteOptions): Suite {
  const suite: Suite = {
    name: basename(source).replace(/\.json$/i, "") || source,
    source,
    claude: opts.claude ?? "claude",
    tasks: [],
  };
  if (typeof doc.name === "string" && doc.name !== "") suite.name = doc.name;
  if (typeof doc.description === "string") suite.description = doc.description;
  if (doc.version !== undefined) suite.version = String(doc.version);
  const warnings: JsonProblem[] = (suite.warnings = []);
  const dir = dirname(source);
  const pathOf: PathOf = (o, key) =>
    typeof o[key] === "string" ? resolvePath(dir, o[key]) : undefined;
  const template = (o: JsonObject) => pathOf(o, "workspace_template");
  const d = (doc.defaults ?? {}) as JsonObject;
  const defaults: Inherited = {
    timeout: d.timeout as number | undefined,
    stall: d.stall_timeout as number | undefined,
    template: template(doc),
    checkFiles: pathOf(doc, "check_files"),
  };
  const add = (list: unknown, path: string, category: string, from: Inherited, seed: boolean) => {
    (list as JsonObject[] | undefined)?.forEach((o, i) => {
      const task = toTask(o, seed, category, from, pathOf);
      suite.tasks.push(task);
      if (
        task.expectedPatterns.length === 0 && !task.expectNonZeroExit && !task.concurrent &&
        !task.checks && !task.rubric && !task.expectedFiles?.length
      ) {
        warnings.push({
          path: join(path, i),
          message: `task ${JSON.stringify(task.id)} checks nothing but exit code 0; ` +
            "add expected_patterns, a check or a rubric",
        });
      }
    });
  };
  for (const [cat, body] of Object.entries((doc.categories ?? {}) as Record<string, JsonObject>)) {
    const from: Inherited = {
      timeout: (body.timeout as number | undefined) ?? defaults.timeout,
      stall: (body.stall_timeout as number | undefined) ?? defaults.stall,
      template: template(body) ?? defaults.template,
      checkFiles: pathOf(body, "check_files") ?? defaults.checkFiles,
    };
    const at = join("categories", cat);
    add(body.tasks, join(at, "tasks"), cat, from, true);
    add(body.tests, join(at, "tests"), cat, from, false);
  }
  add(doc.tests, "tests", "tests", defaults, false);
  return suite;
}

/** The path `o[key]` names, resolved against the suite file's directory (absent: undefined). */
type PathOf = (o: JsonObject, key: string) => string | undefined;

/** `check` or `rubric`: one string, or a list of them. */
function textList(x: unknown): string[] | undefined {
  return x === undefined ? undefined : typeof x === "string" ? [x] : [...x as string[]];
}

/**
 * One task from either schema. A seed task (`seed`) keeps its timeouts, patterns, expected
 * files and graders under `verification` and its command in `command_template`; an upstream
 * test keeps them on itself and its command in `command`.
 */
function toTask(
  o: JsonObject,
  seed: boolean,
  category: string,
  from: Inherited,
  pathOf: PathOf,
): SuiteTask {
  const judged = (seed ? o.verification ?? {} : o) as JsonObject;
  const id = o.id as string;
  const name = o.name as string | undefined;
  const command = (seed ? o.command_template : o.command) as string | undefined;
  const timeout = (judged.timeout as number | undefined) ?? from.timeout;
  const stall = (judged.stall_timeout as number | undefined) ?? from.stall;
  const marker = seed ? judged.marker as string | boolean | undefined : undefined;
  const files = judged.expected_files as ExpectedFile[] | undefined;
  const workspaceTemplate = pathOf(o, "workspace_template") ?? from.template;
  const concurrent = concurrentSpec(o);
  const checks = textList(judged.check);
  const rubric = textList(judged.rubric);
  const checkFiles = pathOf(judged, "check_files") ?? from.checkFiles;
  return {
    id,
    name: name !== undefined && name !== "" ? name : id,
    category,
    ...(seed && o.natural_language_request !== undefined
      ? { request: o.natural_language_request as string }
      : {}),
    ...(seed && o.metatags !== undefined ? { metatags: o.metatags as string } : {}),
    ...(command !== undefined ? { template: command } : {}),
    timeoutS: timeout ?? DEFAULT_TIMEOUT_S,
    ...(stall !== undefined ? { stallTimeoutS: stall } : {}),
    expectedPatterns: (judged.expected_patterns as string[] | undefined) ?? [],
    ...(judged.whole_word !== undefined ? { wholeWord: judged.whole_word as boolean } : {}),
    expectNonZeroExit: (judged.expect_non_zero_exit as boolean | undefined) ??
      id.startsWith("failure_"),
    ...(marker !== undefined ? { marker } : {}),
    saveOutput: (judged.save_output as boolean | undefined) ?? true,
    ...(concurrent !== undefined ? { concurrent } : {}),
    ...(workspaceTemplate !== undefined ? { workspaceTemplate } : {}),
    ...(files?.length
      ? {
        expectedFiles: files.map((f) =>
          f.contains !== undefined ? { path: f.path, contains: f.contains } : { path: f.path }
        ),
      }
      : {}),
    ...(checks ? { checks } : {}),
    ...(judged.check_timeout !== undefined
      ? { checkTimeoutS: judged.check_timeout as number }
      : {}),
    ...(checks && checkFiles !== undefined ? { checkFiles } : {}),
    ...(rubric ? { rubric } : {}),
  };
}

function concurrentSpec(o: JsonObject): ConcurrentSpec | undefined {
  if (o.concurrent_instances === undefined) return undefined;
  const range = o.temperature_range as [number, number] | undefined;
  return {
    instances: o.concurrent_instances as number,
    ...(o.models !== undefined ? { models: o.models as string[] } : {}),
    ...(range !== undefined ? { temperatureRange: [range[0], range[1]] } : {}),
    criteria: o.evaluation_criteria as EvaluationCriterion,
  };
}

/**
 * The suite format, declared once: every object of a suite file with its keys,
 * their types, their bounds and what they mean. From this one declaration come
 * the structural checks of `parseSuite` (types, required keys, enums, bounds,
 * unknown keys with "did you mean": `suite_shape.ts` interprets it) and the
 * published JSON Schema `tasks/suite.schema.json` (a test keeps the file in
 * sync), which editors use to complete and check suites that name it in
 * `$schema`. So the validator and the published schema cannot drift apart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SUITE_OBJECTS, suiteJsonSchema } from "./suite_schema.ts";
 * assert.deepEqual(Object.keys(SUITE_OBJECTS.test.fields).slice(0, 3), ["id", "name", "command"]);
 * assert.equal(typeof suiteJsonSchema().$defs.test.properties.command.description, "string");
 * ```
 * @module
 */

import { EVALUATION_CRITERIA } from "../verdict/pick.ts";

/**
 * How messages name a key's value; not part of the published JSON Schema.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import type { Wording } from "./suite_schema.ts";
 * const w: Wording = { noun: "criterion" };
 * // How a bad value is named: unknown criterion "BEST"; expected one of …
 * const bad = { categories: { c: { tasks: [{ id: "t", concurrent_instances: 2, evaluation_criteria: "BEST" }] } } };
 * assert.throws(() => parseSuite(bad, "inline"), new RegExp(`unknown ${w.noun} "BEST"`));
 * ```
 */
export interface Wording {
  /**
   * What one value is called: `criterion` (unknown criterion "X"), `model` (expected at
   * least one model), `directory path` (expected a non-empty directory path).
   */
  noun?: string;
  /**
   * The whole of what the key holds, in place of the generated phrase in its messages:
   * `[low, high]` (expected [low, high], got 0.5).
   */
  expected?: string;
  /** What a number counts: `seconds` (expected a positive number of seconds). */
  unit?: string;
}

/** The type of one key: a JSON Schema fragment, or a reference to a declared object. */
export type Field =
  & Wording
  & (
    | { type: "string"; description: string; minLength?: number }
    | { type: "boolean"; description: string }
    | { type: "object"; description: string }
    | { type: "number"; description: string; exclusiveMinimum?: number; minimum?: number }
    | { type: "integer"; description: string; minimum?: number }
    | {
      type: "array";
      description: string;
      items: Field;
      minItems?: number;
      maxItems?: number;
    }
    | { anyOf: Field[]; description: string }
    | { enum: readonly string[]; description: string }
    | Ref
    | { map: ObjectName; description: string }
  );

/** A key holding one of the declared objects. */
export type Ref = { ref: ObjectName; description?: string };

/** The objects of a suite file. */
export type ObjectName =
  | "suite"
  | "defaults"
  | "category"
  | "task"
  | "verification"
  | "test"
  | "expected_file";

/** One declared object: its keys, the required ones and what it is. */
export interface ObjectDecl {
  /** What the object is. */
  description: string;
  /** Its keys. */
  fields: Record<string, Field>;
  /** Keys that must be present (further rules live in `parseSuite`). */
  required?: readonly string[];
}

const seconds = (what: string): Field => ({
  type: "number",
  exclusiveMinimum: 0,
  description: what,
  unit: "seconds",
});
const timeout = seconds(
  "Whole-run timeout in seconds (task, else category, else suite defaults, else 120).",
);
const stall = seconds("Seconds without output before the run is stopped as stalled.");
const patterns: Field = {
  type: "array",
  items: { type: "string", minLength: 1, description: "A pattern." },
  description: "What the answer must contain, case-insensitively. A plain pattern is a " +
    "substring; `word:TEXT` a whole word; `regex:RE` a regular expression. Markers are " +
    "removed before matching.",
};
const wholeWord: Field = {
  type: "boolean",
  description: "Match every plain expected pattern as a whole word (`4` does not match `42`).",
};
const expectFail: Field = {
  type: "boolean",
  description: "The task passes only when the command exits non-zero (default: true for ids " +
    "starting with failure_).",
};
const save: Field = {
  type: "boolean",
  description: "Save the task's output to <out>/<id>.txt (default true).",
};
const workspaceTemplate: Field = {
  type: "string",
  minLength: 1,
  noun: "directory path",
  description: "A directory copied into every task's workspace before it runs (relative: to " +
    "the suite file). It must exist where the server runs. The task, else its category, else " +
    "the suite decides.",
};
const expectedFiles: Field = {
  type: "array",
  items: { ref: "expected_file", expected: "an object {path, contains?}" },
  expected: "an array of {path, contains?}",
  description: "Files the task must leave in its workspace, judged on the server through " +
    "`files` (so remote servers and fleet workers work too).",
};
const checkFiles: Field = {
  type: "string",
  minLength: 1,
  noun: "directory path",
  description: "Hidden tests: a directory on the machine running ccx stress (relative: to the " +
    "suite file) whose files are copied into the task's workspace after the task ended and " +
    "before its checks run, replacing files of the same paths. The agent never sees them. The " +
    "task, else its category, else the suite decides; only tasks with a check use them.",
};
const graders: Record<string, Field> = {
  check: {
    anyOf: [
      { type: "string", minLength: 1, noun: "command", description: "A shell command." },
      {
        type: "array",
        items: { type: "string", minLength: 1, noun: "command", description: "A shell command." },
        minItems: 1,
        description: "Shell commands, run in order.",
      },
    ],
    description: "Checks: shell commands run after the task ended, in its workspace, on the " +
      "server where it ran (same isolation). The task passes only when each exits 0; one " +
      "that cannot start or times out makes the task an error.",
  },
  check_timeout: seconds("Seconds each check may run (default 120)."),
  check_files: checkFiles,
  rubric: {
    anyOf: [
      { type: "string", minLength: 1, noun: "statement", description: "A statement." },
      {
        type: "array",
        items: { type: "string", minLength: 1, noun: "statement", description: "A statement." },
        minItems: 1,
        description: "Statements; all must hold.",
      },
    ],
    description: "Statements a judge model (the Claude CLI, no tools, --judge-model) decides " +
      "from the task's request, final answer and changed files; its reason is reported. A " +
      "judge without a verdict makes the task an error.",
  },
};
const concurrent: Record<string, Field> = {
  concurrent_instances: {
    type: "integer",
    minimum: 1,
    description: "Run this many instances at once and pick the best by evaluation_criteria.",
  },
  models: {
    type: "array",
    items: { type: "string", minLength: 1, description: "A model.", noun: "model" },
    minItems: 1,
    description: "Models the instances use, in turn.",
  },
  temperature_range: {
    type: "array",
    items: { type: "number", minimum: 0, description: "A temperature.", noun: "temperature" },
    minItems: 2,
    maxItems: 2,
    expected: "[low, high]",
    description: "[low, high]: temperatures spread over the instances.",
  },
  evaluation_criteria: {
    enum: EVALUATION_CRITERIA,
    description: "How the best instance is picked.",
    noun: "criterion",
  },
};
const identity: Record<string, Field> = {
  id: {
    type: "string",
    minLength: 1,
    description: "Unique id: letters, digits, '.', '_', '-' (it names output files).",
  },
  name: { type: "string", description: "Human name (default: the id)." },
};

/**
 * Every object of a suite file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SUITE_OBJECTS } from "./suite_schema.ts";
 * assert.deepEqual(Object.keys(SUITE_OBJECTS.verification.fields).slice(0, 2), ["timeout", "stall_timeout"]);
 * ```
 */
export const SUITE_OBJECTS: Record<ObjectName, ObjectDecl> = {
  suite: {
    description: "A ccx stress suite: categories of tasks (seed schema) or tests (upstream " +
      "schema), or a top-level tests[].",
    fields: {
      $schema: { type: "string", description: "The JSON Schema of this file, for editors." },
      name: { type: "string", description: "Suite name (default: the file name)." },
      description: { type: "string", description: "What the suite is for." },
      version: {
        anyOf: [
          { type: "string", description: "A version." },
          { type: "number", description: "A version." },
        ],
        description: "Suite version.",
      },
      defaults: { ref: "defaults", description: "Timeouts for every task that gives none." },
      workspace_template: workspaceTemplate,
      check_files: checkFiles,
      categories: { map: "category", description: "Categories by name." },
      tests: { type: "array", items: { ref: "test" }, description: "Tests outside categories." },
      task_list_id: { type: "string", description: "From the seed's format; ignored." },
      execution_config: { type: "object", description: "From the seed's format; ignored." },
    },
  },
  defaults: {
    description: "Suite-wide defaults.",
    fields: { timeout, stall_timeout: stall },
  },
  category: {
    description: "A category: seed-schema tasks[] and/or upstream tests[].",
    fields: {
      description: { type: "string", description: "What the category covers." },
      timeout,
      stall_timeout: stall,
      workspace_template: workspaceTemplate,
      check_files: checkFiles,
      tasks: { type: "array", items: { ref: "task" }, description: "Seed-schema tasks." },
      tests: { type: "array", items: { ref: "test" }, description: "Upstream-schema tests." },
    },
  },
  task: {
    description: "A seed-schema task: a request for Claude, or a command_template.",
    required: ["id"],
    fields: {
      ...identity,
      natural_language_request: {
        type: "string",
        description: "The request (${REQUEST}); without a command_template it goes to " +
          "claude -p with stream-json output.",
      },
      metatags: { type: "string", description: "Metatags such as [category:x] (${METATAGS})." },
      command_template: {
        type: "string",
        minLength: 1,
        noun: "command",
        description: "A shell command with ${MARKER} ${TIMESTAMP} ${REQUEST} ${METATAGS} " +
          "${MODEL} ${TEMPERATURE} ${INSTANCE} placeholders, passed as quoted variables.",
      },
      verification: { ref: "verification", description: "How the run is judged." },
      workspace_template: workspaceTemplate,
      ...concurrent,
    },
  },
  verification: {
    description: "How a seed-schema task is judged.",
    fields: {
      timeout,
      stall_timeout: stall,
      expected_patterns: patterns,
      whole_word: wholeWord,
      marker: {
        anyOf: [
          { type: "string", description: "A marker; may use ${TIMESTAMP}." },
          { type: "boolean", description: "false: no marker; true: <id>_<timestamp>." },
        ],
        description: "The [marker:…] put in the prompt (removed before matching).",
      },
      expect_non_zero_exit: expectFail,
      save_output: save,
      expected_files: expectedFiles,
      ...graders,
    },
  },
  expected_file: {
    description: "A file the task must leave in its workspace.",
    required: ["path"],
    fields: {
      path: {
        type: "string",
        minLength: 1,
        noun: "path",
        description: "Path relative to the workspace (no `..`); without `contains` a " +
          "directory counts too.",
      },
      contains: {
        type: "string",
        minLength: 1,
        description: "Text the file must contain (case-insensitive).",
      },
    },
  },
  test: {
    description: "An upstream-schema test: a shell command and what its output must contain.",
    required: ["id", "command"],
    fields: {
      ...identity,
      command: {
        type: "string",
        minLength: 1,
        noun: "command",
        description: "The shell command (`claude` in it becomes the configured Claude CLI).",
      },
      expected_patterns: patterns,
      whole_word: wholeWord,
      timeout,
      stall_timeout: stall,
      expect_non_zero_exit: expectFail,
      save_output: save,
      expected_files: expectedFiles,
      workspace_template: workspaceTemplate,
      ...graders,
      ...concurrent,
    },
  },
};

/** A JSON object. */
export type Json = Record<string, unknown>;

function fieldSchema(field: Field): Json {
  const { noun: _noun, unit: _unit, expected: _expected, ...f } = field; // for messages only
  if ("ref" in f) {
    return { $ref: `#/$defs/${f.ref}`, ...(f.description ? { description: f.description } : {}) };
  }
  if ("map" in f) {
    return {
      type: "object",
      description: f.description,
      additionalProperties: { $ref: `#/$defs/${f.map}` },
    };
  }
  if ("anyOf" in f) {
    return { description: f.description, anyOf: f.anyOf.map(fieldSchema) };
  }
  if (!("type" in f)) return { ...f, enum: [...f.enum] };
  if (f.type === "array") return { ...f, items: fieldSchema(f.items) };
  return { ...f };
}

function objectSchema(d: ObjectDecl): Json {
  return {
    type: "object",
    description: d.description,
    properties: Object.fromEntries(
      Object.entries(d.fields).map(([k, f]) => [k, fieldSchema(f)]),
    ),
    ...(d.required ? { required: [...d.required] } : {}),
    additionalProperties: false,
  };
}

/** The JSON Schema document published as `tasks/suite.schema.json`. */
export interface SuiteJsonSchema {
  /** The JSON Schema dialect. */
  $schema: string;
  /** Named object schemas. */
  $defs: Record<ObjectName, Json & { properties: Record<string, Json> }>;
  /** The rest (title, root object). */
  [key: string]: unknown;
}

/**
 * The JSON Schema (draft 2020-12) of suite files, generated from {@linkcode SUITE_OBJECTS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { suiteJsonSchema } from "./suite_schema.ts";
 * const published = JSON.parse(Deno.readTextFileSync("tasks/suite.schema.json"));
 * assert.deepEqual(suiteJsonSchema(), published); // `deno task schema` writes it
 * ```
 */
export function suiteJsonSchema(): SuiteJsonSchema {
  const defs = Object.fromEntries(
    Object.entries(SUITE_OBJECTS).map(([k, d]) => [k, objectSchema(d)]),
  ) as SuiteJsonSchema["$defs"];
  const root = defs.suite;
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "ccx stress suite",
    ...root,
    $defs: defs,
  };
}

if (import.meta.main) {
  // `deno task schema` regenerates tasks/suite.schema.json from the declaration above.
  console.log(JSON.stringify(suiteJsonSchema(), null, 2));
}

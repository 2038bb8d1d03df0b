/**
 * The validator follows the declaration: every case below is generated from SUITE_OBJECTS
 * (the declaration that also generates tasks/suite.schema.json), so a key, a bound or an object
 * added there is tested here without a line written by hand, and a key the validator does not
 * check makes a test fail.
 */

import assert from "node:assert/strict";
import { joinPath, type JsonProblem } from "../lib/common/json.ts";
import { parseSuite } from "../lib/stress/suite_load.ts";
import { SuiteError } from "../lib/stress/suite_model.ts";
import { type Field, type ObjectName, SUITE_OBJECTS } from "../lib/stress/suite_schema.ts";
import { checkShape, valueProblem } from "../lib/stress/suite_shape.ts";

/** A valid suite holding every declared object at least once, each with every declared key. */
function fullSuite(): Record<string, unknown> {
  const concurrent = {
    concurrent_instances: 2,
    models: ["haiku", "sonnet"],
    temperature_range: [0, 1],
    evaluation_criteria: "FASTEST",
  };
  return {
    $schema: "./suite.schema.json",
    name: "all",
    description: "d",
    version: "1",
    task_list_id: "x",
    execution_config: {},
    defaults: { timeout: 5, stall_timeout: 4 },
    workspace_template: "/srv/base",
    check_files: "/tmp",
    categories: {
      c: {
        description: "d",
        timeout: 6,
        stall_timeout: 3,
        workspace_template: "/srv/cat",
        check_files: "/tmp",
        tasks: [{
          id: "t1",
          name: "n",
          natural_language_request: "What is 2+2?",
          metatags: "[a:b]",
          command_template: "claude -p ${REQUEST}",
          verification: {
            timeout: 7,
            stall_timeout: 2,
            expected_patterns: ["4"],
            whole_word: true,
            marker: "M_${TIMESTAMP}",
            expect_non_zero_exit: false,
            save_output: false,
            expected_files: [{ path: "a.py", contains: "x" }],
            check: ["sh t.sh", "make test"],
            check_timeout: 9,
            check_files: "/tmp",
            rubric: ["It says 4."],
          },
          workspace_template: "/srv/tpl",
          ...concurrent,
        }],
        tests: [{
          id: "t2",
          name: "n",
          command: "echo hi",
          expected_patterns: ["hi"],
          whole_word: true,
          timeout: 1,
          stall_timeout: 1,
          expect_non_zero_exit: false,
          save_output: true,
          expected_files: [{ path: "out/b.txt", contains: "y" }],
          check: "sh t.sh",
          check_timeout: 9,
          check_files: "/tmp",
          rubric: "It says hi.",
          workspace_template: "/srv/t",
          ...concurrent,
        }],
      },
    },
    tests: [{ id: "t3", command: "true", expected_patterns: ["x"] }],
  };
}

type Key = string | number;

/** Where each declared object occurs in `doc` (first occurrence), walking the declaration. */
function instances(doc: unknown): Map<ObjectName, Key[]> {
  const found = new Map<ObjectName, Key[]>();
  const object = (x: unknown, name: ObjectName, at: Key[]) => {
    if (!found.has(name)) found.set(name, at);
    const fields = SUITE_OBJECTS[name].fields;
    for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
      field(v, fields[k], [...at, k]);
    }
  };
  const field = (x: unknown, f: Field, at: Key[]) => {
    if ("ref" in f) object(x, f.ref, at);
    else if ("map" in f) {
      for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
        object(v, f.map, [...at, k]);
      }
    } else if ("type" in f && f.type === "array") {
      (x as unknown[]).forEach((item, i) => field(item, f.items, [...at, i]));
    }
  };
  object(doc, "suite", []);
  return found;
}

function pathOf(keys: Key[]): string {
  return keys.reduce<string>((p, k) => joinPath(p, k), "") || "$";
}

/** `doc` with the value at `keys` replaced (or removed, for `undefined`). */
function withValue(keys: Key[], value: unknown): Record<string, unknown> {
  const doc = fullSuite();
  let o = doc as Record<Key, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<Key, unknown>;
  const last = keys[keys.length - 1];
  if (value === undefined) delete o[last];
  else o[last] = value;
  return doc;
}

function valueAt(keys: Key[]): unknown {
  return keys.reduce<unknown>((o, k) => (o as Record<Key, unknown>)[k], fullSuite());
}

function problemsOf(doc: unknown): JsonProblem[] {
  try {
    parseSuite(doc, "inline");
  } catch (e) {
    if (e instanceof SuiteError) return e.problems;
    throw e;
  }
  return [];
}

/** Every (object, key, field) of the declaration, with where the key sits in fullSuite(). */
function declaredKeys(): { name: ObjectName; key: string; field: Field; at: Key[] }[] {
  const where = instances(fullSuite());
  return Object.entries(SUITE_OBJECTS).flatMap(([name, decl]) =>
    Object.entries(decl.fields).map(([key, field]) => ({
      name: name as ObjectName,
      key,
      field,
      at: [...where.get(name as ObjectName)!, key],
    }))
  );
}

/** The JSON types a field declares (`anyOf` branches included). */
function declaredTypes(f: Field): string[] {
  if ("anyOf" in f) return f.anyOf.flatMap(declaredTypes);
  if ("enum" in f) return ["string"];
  if (!("type" in f)) return ["object"]; // a reference or a map
  return [f.type === "integer" ? "number" : f.type];
}

const SAMPLES: [string, unknown][] = [
  ["null", null],
  ["string", "5"],
  ["number", 5],
  ["boolean", true],
  ["array", []],
  ["object", {}],
];

/** Values of every JSON type the field does not declare (null is never declared). */
function wrongType(f: Field): unknown[] {
  const ok = declaredTypes(f);
  return SAMPLES.filter(([type]) => !ok.includes(type)).map(([, v]) => v);
}

/** Values of the right type that break one bound of the field, with the bound's name. */
function outOfBounds(f: Field, valid: unknown): [string, unknown][] {
  const out: [string, unknown][] = [];
  if ("enum" in f) out.push(["enum", "NOT_DECLARED"]);
  if (!("type" in f)) return out;
  if (f.type === "string" && f.minLength) out.push(["minLength", "x".repeat(f.minLength - 1)]);
  if (f.type === "number" || f.type === "integer") {
    if (f.minimum !== undefined) out.push(["minimum", f.minimum - 1]);
    if ("exclusiveMinimum" in f && f.exclusiveMinimum !== undefined) {
      out.push(["exclusiveMinimum", f.exclusiveMinimum]);
    }
    if (f.type === "integer") out.push(["integer", 1.5]);
  }
  if (f.type === "array") {
    const items = valid as unknown[];
    if (f.minItems) out.push(["minItems", items.slice(0, f.minItems - 1)]);
    if (f.maxItems !== undefined) {
      out.push(["maxItems", Array.from({ length: f.maxItems + 1 }, () => items[0])]);
    }
    out.push(
      ...outOfBounds(f.items, items[0]).map(([b, v]): [string, unknown] => [
        `items.${b}`,
        [v, ...items.slice(1)],
      ]),
    );
  }
  return out;
}

Deno.test("the full suite is valid and holds every declared object and every declared key", () => {
  assert.deepEqual(problemsOf(fullSuite()), []);
  const where = instances(fullSuite());
  for (const name of Object.keys(SUITE_OBJECTS)) {
    assert.ok(where.has(name as ObjectName), `fullSuite() has no ${name}: add one`);
  }
  for (const { name, key, at } of declaredKeys()) {
    assert.notEqual(valueAt(at), undefined, `fullSuite() has no ${name}.${key}: add it`);
  }
});

Deno.test("every declared key refuses a value of the wrong type, naming its path", () => {
  let cases = 0;
  for (const { field, at } of declaredKeys()) {
    for (const bad of wrongType(field)) {
      const path = pathOf(at);
      const problems = problemsOf(withValue(at, bad));
      assert.deepEqual(
        problems.map((p) => p.path),
        [path],
        `${path} = ${JSON.stringify(bad)}: ${JSON.stringify(problems)}`,
      );
      assert.match(problems[0].message, /^(expected .*, got |unknown )/);
      cases++;
    }
  }
  assert.ok(cases >= 4 * declaredKeys().length, `${cases} cases`); // 4+ wrong types a key
});

Deno.test("every declared bound (minLength, minimum, enum, items, …) is enforced at its path", () => {
  const checked = new Set<string>();
  for (const { name, key, field, at } of declaredKeys()) {
    for (const [bound, bad] of outOfBounds(field, valueAt(at))) {
      const problems = problemsOf(withValue(at, bad));
      const path = bound.startsWith("items.") ? pathOf([...at, 0]) : pathOf(at);
      assert.deepEqual(
        problems.map((p) => p.path),
        [path],
        `${name}.${key} ${bound} = ${JSON.stringify(bad)}: ${JSON.stringify(problems)}`,
      );
      assert.match(problems[0].message, /^(expected .*, got |unknown )/);
      checked.add(bound);
    }
  }
  for (const b of ["minLength", "minimum", "exclusiveMinimum", "integer", "enum"]) {
    assert.ok(checked.has(b), `some declared key has ${b}`);
  }
  assert.ok(checked.has("minItems") && checked.has("maxItems") && checked.has("items.minLength"));
});

Deno.test("every required key is required and every object refuses undeclared keys", () => {
  const where = instances(fullSuite());
  for (const [name, decl] of Object.entries(SUITE_OBJECTS)) {
    const at = where.get(name as ObjectName)!;
    for (const key of decl.required ?? []) {
      assert.deepEqual(problemsOf(withValue([...at, key], undefined)), [
        { path: pathOf([...at, key]), message: "required" },
      ]);
    }
    const keys = Object.keys(decl.fields);
    const near = keys[0] + "x"; // a misspelling of a declared key
    const problems = problemsOf(withValue([...at, near], 1));
    assert.equal(problems.length, 1, `${name}: ${JSON.stringify(problems)}`);
    assert.equal(problems[0].path, pathOf([...at, near]));
    assert.match(problems[0].message, new RegExp(`^unknown key "${near.replace("$", "\\$")}"`));
  }
});

Deno.test("a value that is not an object where an object is declared is refused at its path", () => {
  assert.deepEqual(problemsOf([]), [{ path: "$", message: "expected an object, got an array" }]);
  assert.deepEqual(checkShape({ categories: { a: 5 } }), [
    { path: "categories.a", message: "expected an object, got 5" },
  ]);
});

Deno.test("messages say what the declaration expects: types, bounds, enums, anyOf", () => {
  const f = SUITE_OBJECTS;
  assert.equal(valueProblem(f.test.fields.timeout, "5"), 'expected a number, got "5"');
  assert.equal(
    valueProblem(f.test.fields.timeout, 0),
    "expected a positive number of seconds, got 0",
  );
  assert.equal(
    valueProblem(f.task.fields.concurrent_instances, "3"),
    'expected a positive integer, got "3"',
  );
  assert.equal(
    valueProblem(f.task.fields.concurrent_instances, 1.5),
    "expected a positive integer, got 1.5",
  );
  assert.equal(
    valueProblem(f.suite.fields.version, null),
    "expected a string or a number, got null",
  );
  assert.equal(
    valueProblem(f.verification.fields.marker, 5),
    "expected a string or a boolean, got 5",
  );
  assert.equal(
    valueProblem(f.task.fields.evaluation_criteria, "BEST"),
    'unknown criterion "BEST"; expected one of FASTEST, MOST_DETAILED, HIGHEST_MODEL_TEMP, ' +
      "PATTERN_MATCH, CONSENSUS, BEST_CODE_QUALITY",
  );
  assert.equal(
    valueProblem(f.task.fields.models, []),
    "expected at least one model, got an empty array",
  );
  assert.equal(valueProblem(f.task.fields.models, "m"), 'expected an array of strings, got "m"');
  assert.equal(
    valueProblem(f.task.fields.temperature_range, [1, 2, 3]),
    "expected [low, high], got an array of 3",
  );
  assert.equal(
    valueProblem(f.test.fields.workspace_template, ""),
    'expected a non-empty directory path, got ""',
  );
  assert.equal(valueProblem(f.test.fields.whole_word, 1), "expected true or false, got 1");
  assert.equal(
    valueProblem(f.test.fields.expected_files, "a.py"),
    'expected an array of {path, contains?}, got "a.py"',
  );
  assert.deepEqual(checkShape({ tests: [{ id: "t", command: "x", expected_files: [5] }] }), [
    { path: "tests[0].expected_files[0]", message: "expected an object {path, contains?}, got 5" },
  ]);
  assert.equal(valueProblem(f.suite.fields.tests, {}), "expected an array, got an object");
  assert.equal(valueProblem(f.test.fields.command, "ls"), undefined);
});

import assert from "node:assert/strict";
import {
  arrayLength,
  asRecord,
  collect,
  describeJson,
  enumPhrase,
  isRecord,
  joinPath,
  type JsonProblem,
  JsonShapeError,
  numberPhrase,
  optArray,
  optBool,
  optEnum,
  optNumber,
  optRecord,
  optString,
  optStringArray,
  parseJsonText,
  readArray,
  readBool,
  readEnum,
  readNumber,
  readRecord,
  readString,
  readStringArray,
} from "../lib/common/json.ts";

/** The message of the JsonShapeError `f` throws (fails when it throws nothing or something else). */
function shapeError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof JsonShapeError, `expected a JsonShapeError, got ${e}`);
    assert.equal(e.message, `${e.path}: ${e.detail}`);
    return e.message;
  }
  assert.fail("the reader accepted a bad value");
}

Deno.test("isRecord() holds for objects only: not null, arrays or scalars", () => {
  assert.equal(isRecord({}), true);
  assert.equal(isRecord({ a: 1 }), true);
  for (const v of [null, undefined, [], [1], "x", 1, true]) assert.equal(isRecord(v), false);
});

Deno.test("describeJson() names arrays and objects and quotes scalars, cut at 40 characters", () => {
  assert.equal(describeJson(undefined), "nothing");
  assert.equal(describeJson(null), "null");
  assert.equal(describeJson([]), "an array");
  assert.equal(describeJson({}), "an object");
  assert.equal(describeJson("60"), '"60"');
  assert.equal(describeJson(false), "false");
  assert.equal(describeJson("x".repeat(60)), `"${"x".repeat(39)}…`);
});

Deno.test("joinPath() writes names with dots, indexes and odd keys in brackets", () => {
  assert.equal(joinPath("", "categories"), "categories");
  assert.equal(joinPath("$", "categories"), "categories");
  assert.equal(joinPath("categories", "simple"), "categories.simple");
  assert.equal(joinPath("categories.simple.tasks", 2), "categories.simple.tasks[2]");
  assert.equal(joinPath("categories", "odd name"), 'categories["odd name"]');
  assert.equal(joinPath("", "odd name"), '$["odd name"]');
  assert.equal(joinPath("", 0), "$[0]");
  assert.equal(joinPath("x", "$schema"), "x.$schema");
});

Deno.test("readString() and optString(): the path, what was expected and what was found", () => {
  assert.equal(readString({ a: "x" }, "a", "p"), "x");
  assert.equal(shapeError(() => readString({}, "a", "p")), "p.a: required");
  assert.equal(shapeError(() => readString({ a: 5 }, "a", "p")), "p.a: expected a string, got 5");
  assert.equal(
    shapeError(() => readString({ a: "" }, "a", "", { nonEmpty: true })),
    'a: expected a non-empty string, got ""',
  );
  assert.equal(readString({ a: "  " }, "a", "", { nonEmpty: true }), "  ");
  assert.equal(
    shapeError(() => readString({ a: "  " }, "a", "", { nonEmpty: true, trim: true })),
    'a: expected a non-empty string, got "  "',
  );
  assert.match(shapeError(() => readString({ a: "x\0" }, "a", "", { noNul: true })), /^a: .*NUL/);
  assert.equal(optString({}, "a", ""), undefined);
  assert.equal(shapeError(() => optString({ a: null }, "a", "")), "a: expected a string, got null");
  assert.equal(optString({ a: null }, "a", "", { nullIsAbsent: true }), undefined);
  assert.equal(
    shapeError(() => readString({ a: null }, "a", "", { nullIsAbsent: true })),
    "a: required",
  );
});

Deno.test("readNumber() and optNumber() check finiteness, integers and bounds", () => {
  assert.equal(readNumber({ n: 1.5 }, "n", ""), 1.5);
  assert.equal(shapeError(() => readNumber({ n: "5" }, "n", "")), 'n: expected a number, got "5"');
  assert.equal(
    shapeError(() => readNumber({ n: null }, "n", "")),
    "n: expected a number, got null",
  );
  const seconds = { above: 0, unit: "seconds" };
  assert.equal(
    shapeError(() => optNumber({ t: 0 }, "t", "defaults", seconds)),
    "defaults.t: expected a positive number of seconds, got 0",
  );
  // A wrong type says the type; a number out of bounds says the bounds.
  assert.equal(
    shapeError(() => optNumber({ t: "1" }, "t", "", seconds)),
    't: expected a number, got "1"',
  );
  const positiveInt = { integer: true, min: 1 };
  for (const bad of [0, 1.5, "3"]) {
    assert.match(
      shapeError(() => readNumber({ n: bad }, "n", "", positiveInt)),
      /^n: expected a positive integer, got /,
    );
  }
  assert.equal(
    shapeError(() => readNumber({ p: 70000 }, "p", "", { integer: true, min: 1, max: 65535 })),
    "p: expected a positive integer, at most 65535, got 70000",
  );
  assert.equal(readNumber({ p: 65535 }, "p", "", { integer: true, min: 1, max: 65535 }), 65535);
  assert.equal(
    shapeError(() => readNumber({ n: Infinity }, "n", "")),
    "n: expected a number, got Infinity",
  );
  assert.equal(optNumber({ n: null }, "n", "", { nullIsAbsent: true }), undefined);
});

Deno.test("numberPhrase() says the bounds in words", () => {
  assert.equal(numberPhrase({}), "a number");
  assert.equal(numberPhrase({ integer: true }), "an integer");
  assert.equal(numberPhrase({ above: 0, unit: "seconds" }), "a positive number of seconds");
  assert.equal(numberPhrase({ integer: true, min: 1 }), "a positive integer");
  assert.equal(numberPhrase({ min: 0, noun: "temperature" }), "a temperature of 0 or more");
  assert.equal(numberPhrase({ above: 2 }), "a number greater than 2");
  assert.equal(numberPhrase({ max: 9 }), "a number of at most 9");
  assert.equal(numberPhrase({ min: 0, max: 2 }), "a number of 0 or more, at most 2");
});

Deno.test("readBool() and optBool() take true or false only", () => {
  assert.equal(readBool({ b: false }, "b", ""), false);
  assert.equal(optBool({}, "b", ""), undefined);
  assert.equal(
    shapeError(() => optBool({ b: "yes" }, "b", "tests[0]")),
    'tests[0].b: expected true or false, got "yes"',
  );
  assert.equal(shapeError(() => readBool({}, "b", "")), "b: required");
});

Deno.test("readStringArray() names the bad item by its index", () => {
  assert.deepEqual(readStringArray({ a: ["x", "y"] }, "a", ""), ["x", "y"]);
  assert.equal(
    shapeError(() => readStringArray({ a: "x" }, "a", "")),
    'a: expected an array of strings, got "x"',
  );
  assert.equal(
    shapeError(() => readStringArray({ a: ["x", 4] }, "a", "v")),
    "v.a[1]: expected a string, got 4",
  );
  assert.equal(
    shapeError(() => readStringArray({ a: [""] }, "a", "", { nonEmptyItems: true })),
    'a[0]: expected a non-empty string, got ""',
  );
  assert.equal(
    shapeError(() => readStringArray({ a: [] }, "a", "", { minItems: 1 })),
    "a: expected at least one string, got an empty array",
  );
  assert.match(
    shapeError(() => optStringArray({ a: ["ok", "\0"] }, "a", "", { noNul: true })),
    /^a\[1\]: contains a NUL character/,
  );
  assert.equal(optStringArray({}, "a", ""), undefined);
  assert.equal(arrayLength([1, 2, 3]), "an array of 3");
});

Deno.test("readRecord() and optRecord() take objects only", () => {
  assert.deepEqual(readRecord({ e: { A: "1" } }, "e", ""), { A: "1" });
  assert.equal(
    shapeError(() => optRecord({ e: [] }, "e", "")),
    "e: expected an object, got an array",
  );
  assert.equal(shapeError(() => readRecord({}, "e", "x")), "x.e: required");
  assert.equal(optRecord({ e: null }, "e", "", { nullIsAbsent: true }), undefined);
});

Deno.test("asRecord() checks an item or a whole document and names its path", () => {
  assert.deepEqual(asRecord({ a: 1 }, "x[0]"), { a: 1 });
  assert.equal(shapeError(() => asRecord([1], "")), "$: expected an object, got an array");
  assert.equal(
    shapeError(() => asRecord(null, "rules[2]")),
    "rules[2]: expected an object, got null",
  );
});

Deno.test("readArray() and optArray() take arrays only and say what the items should be", () => {
  assert.deepEqual(readArray({ a: [1, "x"] }, "a", ""), [1, "x"]);
  assert.equal(shapeError(() => readArray({}, "a", "p")), "p.a: required");
  assert.equal(
    shapeError(() => optArray({ output: "all" }, "output", "", { items: "{session_id, job_id}" })),
    'output: expected an array of {session_id, job_id}, got "all"',
  );
  assert.equal(
    shapeError(() => optArray({ a: {} }, "a", "")),
    "a: expected an array, got an object",
  );
  assert.equal(optArray({ a: null }, "a", "", { nullIsAbsent: true }), undefined);
  assert.equal(shapeError(() => optArray({ a: null }, "a", "")), "a: expected an array, got null");
});

Deno.test("readEnum() and optEnum() take one of the listed strings and list them when not", () => {
  const V = ["pass", "fail", "none"] as const;
  assert.equal(readEnum({ v: "fail" }, "v", "", V), "fail");
  assert.equal(
    shapeError(() => readEnum({}, "v", "r[0]", V)),
    "r[0].v: expected one of pass, fail or none, got nothing",
  );
  assert.equal(
    shapeError(() => readEnum({ v: "PASS" }, "v", "", V)),
    'v: expected one of pass, fail or none, got "PASS"',
  );
  assert.equal(
    shapeError(() => readEnum({ v: 1 }, "v", "", ["a", "b"])),
    "v: expected a or b, got 1",
  );
  assert.equal(optEnum({}, "v", "", V), undefined);
  assert.equal(optEnum({ v: null }, "v", "", V, { nullIsAbsent: true }), undefined);
  assert.equal(
    shapeError(() => optEnum({ v: null }, "v", "", V)),
    "v: expected one of pass, fail or none, got null",
  );
  assert.equal(enumPhrase(["only"]), "only");
});

Deno.test("collect() turns a reader's error into a problem and lets other errors through", () => {
  const problems: JsonProblem[] = [];
  const doc = { name: 1, id: "a", timeout: "5" };
  assert.equal(collect(problems, () => readString(doc, "name", "")), undefined);
  assert.equal(collect(problems, () => readString(doc, "id", "")), "a");
  assert.equal(collect(problems, () => readNumber(doc, "timeout", "t")), undefined);
  assert.deepEqual(problems, [
    { path: "name", message: "expected a string, got 1" },
    { path: "t.timeout", message: 'expected a number, got "5"' },
  ]);
  assert.throws(() => collect(problems, () => JSON.parse("{")), SyntaxError);
});

Deno.test("JsonShapeError shows an empty path as $", () => {
  const e = new JsonShapeError("", "expected an object, got 5");
  assert.equal(e.path, "$");
  assert.equal(e.message, "$: expected an object, got 5");
  assert.ok(e instanceof TypeError);
});

Deno.test("parseJsonText() skips a byte order mark and says where the syntax breaks", () => {
  assert.deepEqual(parseJsonText('\ufeff{"a":1}'), { a: 1 });
  const mid = shapeError(() => parseJsonText('{\n  "categories": {\n    "a" []\n  }\n}\n'));
  assert.match(mid, /^\$: not valid JSON: .*\(line 3 column 9\)$/);
  const end = shapeError(() => parseJsonText('{"tests": ['));
  assert.match(end, /^\$: not valid JSON: .*\(line 1 column 12\)$/);
});

/**
 * Reading parsed JSON whose shape is not yet known: one {@linkcode isRecord}, one way to write
 * a JSON path ({@linkcode joinPath}), one way to say what a value is ({@linkcode describeJson}),
 * and path-aware readers (`readString`, `optNumber`, …) that either return the value with its
 * type or throw a {@linkcode JsonShapeError} naming the JSON path, what was expected and what
 * was found:
 *
 * ```text
 * env.HOME: expected a string, got 5
 * ```
 *
 * A reader throws at the first problem; {@linkcode collect} turns a throw into an entry of a
 * problem list, for validators that report every problem at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optNumber, readString } from "./json.ts";
 * const params: Record<string, unknown> = { command: "echo hi", timeout: 5 };
 * assert.equal(readString(params, "command", "", { nonEmpty: true }), "echo hi");
 * assert.equal(optNumber(params, "timeout", "", { above: 0, unit: "seconds" }), 5);
 * assert.throws(() => readString({ env: { HOME: 5 } }.env, "HOME", "env"), {
 *   message: "env.HOME: expected a string, got 5",
 * });
 * ```
 * @module
 */

/**
 * A JSON object: any value for which {@linkcode isRecord} holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { JsonObject } from "./json.ts";
 * const o: JsonObject = JSON.parse('{"a": 1}');
 * assert.equal(o.a, 1);
 * ```
 */
export type JsonObject = Record<string, unknown>;

/**
 * Whether `v` is a JSON object: not `null`, not an array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRecord } from "./json.ts";
 * assert.equal(isRecord({}), true);
 * assert.equal(isRecord([]), false);
 * assert.equal(isRecord(null), false);
 * ```
 */
export function isRecord(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A short description of a JSON value for "expected X, got Y" messages: `nothing` for
 * `undefined`, `an array`, `an object`, else the JSON text (cut at 40 characters).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeJson } from "./json.ts";
 * assert.equal(describeJson("60"), '"60"');
 * assert.equal(describeJson([1]), "an array");
 * assert.equal(describeJson(undefined), "nothing");
 * ```
 */
export function describeJson(v: unknown): string {
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object" && v !== null) return "an object";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? s.slice(0, 40) + "…" : s;
}

/**
 * Appends a key or an array index to a JSON path: `a.b`, `a[2]`, or `a["odd key"]` for a key
 * that is not a plain name. `""` and `$` both stand for the document itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { joinPath } from "./json.ts";
 * assert.equal(joinPath("", "categories"), "categories");
 * assert.equal(joinPath("categories", "odd name"), 'categories["odd name"]');
 * assert.equal(joinPath("tests", 0), "tests[0]");
 * ```
 */
export function joinPath(path: string, key: string | number): string {
  const seg = typeof key === "number"
    ? `[${key}]`
    : /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)
    ? key
    : `[${JSON.stringify(key)}]`;
  if (path === "" || path === "$") return seg.startsWith("[") ? `$${seg}` : seg;
  return seg.startsWith("[") ? path + seg : `${path}.${seg}`;
}

/**
 * One problem in a JSON document: where (a JSON path, `$` for the document itself) and what.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collect, type JsonProblem, readNumber } from "./json.ts";
 * const problems: JsonProblem[] = [];
 * collect(problems, () => readNumber({ timeout: "5" }, "timeout", "tests[0]"));
 * assert.deepEqual(problems, [{ path: "tests[0].timeout", message: 'expected a number, got "5"' }]);
 * ```
 */
export interface JsonProblem {
  /** JSON path of the offending value; `$` is the whole document. */
  path: string;
  /** What is wrong, in words the author of the document can act on. */
  message: string;
}

/**
 * Thrown by the readers of this module: `path` names the value, `detail` says what is wrong,
 * and the message is `path: detail`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JsonShapeError, readString } from "./json.ts";
 * try {
 *   readString({ cwd: 3 }, "cwd", "params");
 *   assert.fail("readString accepted a number");
 * } catch (e) {
 *   assert.ok(e instanceof JsonShapeError);
 *   assert.equal(e.path, "params.cwd");
 *   assert.equal(e.detail, "expected a string, got 3");
 * }
 * ```
 */
export class JsonShapeError extends TypeError {
  /** JSON path of the offending value. */
  readonly path: string;
  /** What is wrong, without the path. */
  readonly detail: string;

  /**
   * Creates the error.
   *
   * @param path JSON path of the offending value (`""` is shown as `$`)
   * @param detail what is wrong, e.g. `expected a string, got 3`
   */
  constructor(path: string, detail: string) {
    const where = path === "" ? "$" : path;
    super(`${where}: ${detail}`);
    this.name = "JsonShapeError";
    this.path = where;
    this.detail = detail;
  }

  /** The error as a {@linkcode JsonProblem}. */
  get problem(): JsonProblem {
    return { path: this.path, message: this.detail };
  }
}

/**
 * The message for a value that is not what was expected: `expected WHAT, got VALUE`.
 *
 * @param what what the value should be, with its article (`a positive number of seconds`)
 * @param found the value found
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedMessage } from "./json.ts";
 * assert.equal(expectedMessage("a string", 5), "expected a string, got 5");
 * ```
 */
export function expectedMessage(what: string, found: unknown): string {
  return `expected ${what}, got ${describeJson(found)}`;
}

/**
 * Runs one reader; a {@linkcode JsonShapeError} becomes an entry of `problems` and the result
 * `undefined`. Other errors propagate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collect, type JsonProblem, readString } from "./json.ts";
 * const problems: JsonProblem[] = [];
 * const doc = { name: 1, id: "a" };
 * const name = collect(problems, () => readString(doc, "name", ""));
 * const id = collect(problems, () => readString(doc, "id", ""));
 * assert.equal(name, undefined);
 * assert.equal(id, "a");
 * assert.deepEqual(problems, [{ path: "name", message: "expected a string, got 1" }]);
 * ```
 */
export function collect<T>(problems: JsonProblem[], read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (!(e instanceof JsonShapeError)) throw e;
    problems.push(e.problem);
    return undefined;
  }
}

/**
 * Options of every reader.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optString, type ReadOptions } from "./json.ts";
 * const jsonRpcStyle: ReadOptions = { nullIsAbsent: true };
 * assert.equal(optString({ cwd: null }, "cwd", "params", jsonRpcStyle), undefined);
 * ```
 */
export interface ReadOptions {
  /** A `null` value counts as absent (JSON-RPC clients often send `null` for "not given"). */
  nullIsAbsent?: boolean;
}

/**
 * Options of {@linkcode readString} and {@linkcode optString}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readString, type StringOptions } from "./json.ts";
 * const opts: StringOptions = { nonEmpty: true, noNul: true };
 * assert.throws(() => readString({ command: "" }, "command", "", opts), /^JsonShapeError: command:/);
 * ```
 */
export interface StringOptions extends ReadOptions {
  /** Refuse `""` (and, with `trim`, text of only white space). */
  nonEmpty?: boolean;
  /** With `nonEmpty`: refuse white space only too. */
  trim?: boolean;
  /** Refuse a NUL character, which no program can receive in an argument or variable. */
  noNul?: boolean;
}

/**
 * Options of {@linkcode readNumber} and {@linkcode optNumber}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type NumberOptions, readNumber } from "./json.ts";
 * const seconds: NumberOptions = { above: 0, unit: "seconds" };
 * assert.equal(readNumber({ timeout: 1.5 }, "timeout", "", seconds), 1.5);
 * assert.throws(() => readNumber({ timeout: 0 }, "timeout", "", seconds), {
 *   message: "timeout: expected a positive number of seconds, got 0",
 * });
 * ```
 */
export interface NumberOptions extends ReadOptions {
  /** Refuse a number with a fraction. */
  integer?: boolean;
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** The value must be greater than this (exclusive). */
  above?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** What the number counts, for messages: `expected a positive number of seconds`. */
  unit?: string;
}

/**
 * Options of {@linkcode readStringArray} and {@linkcode optStringArray}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readStringArray, type StringArrayOptions } from "./json.ts";
 * const argv: StringArrayOptions = { minItems: 1, noNul: true };
 * assert.deepEqual(readStringArray({ argv: ["ls"] }, "argv", "", argv), ["ls"]);
 * assert.throws(() => readStringArray({ argv: [] }, "argv", "", argv), /^JsonShapeError: argv:/);
 * ```
 */
export interface StringArrayOptions extends ReadOptions {
  /** Fewest items allowed. */
  minItems?: number;
  /** Refuse `""` items. */
  nonEmptyItems?: boolean;
  /** Refuse items with a NUL character. */
  noNul?: boolean;
}

/**
 * The message for a string with a NUL character.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NUL_MESSAGE, readStringArray } from "./json.ts";
 * assert.throws(() => readStringArray({ argv: ["a", "b\0"] }, "argv", "", { noNul: true }), {
 *   message: `argv[1]: ${NUL_MESSAGE}`,
 * });
 * ```
 */
export const NUL_MESSAGE = "contains a NUL character, which cannot be passed to a program";

/**
 * A noun with its article: `a string`, `an integer`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withArticle } from "./json.ts";
 * assert.equal(withArticle("integer"), "an integer");
 * assert.equal(withArticle("number"), "a number");
 * ```
 */
export function withArticle(noun: string): string {
  return `${/^[aeiou]/i.test(noun) ? "an" : "a"} ${noun}`;
}

/**
 * What a number must be, in words: `a positive number of seconds`, `an integer of 1 or more`,
 * `a number from 0 to 2`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numberPhrase } from "./json.ts";
 * assert.equal(numberPhrase({ above: 0, unit: "seconds" }), "a positive number of seconds");
 * assert.equal(numberPhrase({ integer: true, min: 1 }), "a positive integer");
 * assert.equal(numberPhrase({ min: 0, noun: "temperature" }), "a temperature of 0 or more");
 * ```
 */
export function numberPhrase(
  o: {
    integer?: boolean;
    min?: number;
    above?: number;
    max?: number;
    unit?: string;
    noun?: string;
  },
): string {
  const noun = o.noun ?? (o.integer ? "integer" : "number");
  const unit = o.unit ? ` of ${o.unit}` : "";
  const positive = o.above === 0 || (o.integer === true && o.min === 1);
  const head = positive ? `a positive ${noun}${unit}` : `${withArticle(noun)}${unit}`;
  const lower = positive
    ? ""
    : o.min !== undefined
    ? ` of ${o.min} or more`
    : o.above !== undefined
    ? ` greater than ${o.above}`
    : "";
  const upper = o.max === undefined ? "" : `${positive || lower ? "," : " of"} at most ${o.max}`;
  return head + lower + upper;
}

function absent(v: unknown, opts: ReadOptions | undefined): boolean {
  return v === undefined || (v === null && opts?.nullIsAbsent === true);
}

function checkString(v: unknown, path: string, opts: StringOptions | undefined): string {
  if (typeof v !== "string") throw new JsonShapeError(path, expectedMessage("a string", v));
  if (opts?.nonEmpty && (opts.trim ? v.trim() : v) === "") {
    throw new JsonShapeError(path, expectedMessage("a non-empty string", v));
  }
  if (opts?.noNul && v.includes("\0")) throw new JsonShapeError(path, NUL_MESSAGE);
  return v;
}

function checkNumber(v: unknown, path: string, opts: NumberOptions | undefined): number {
  const o = opts ?? {};
  const phrase = numberPhrase(o);
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new JsonShapeError(path, expectedMessage(o.integer ? phrase : "a number", v));
  }
  if (
    (o.integer && !Number.isInteger(v)) ||
    (o.min !== undefined && v < o.min) ||
    (o.above !== undefined && v <= o.above) ||
    (o.max !== undefined && v > o.max)
  ) throw new JsonShapeError(path, expectedMessage(phrase, v));
  return v;
}

function checkStringArray(
  v: unknown,
  path: string,
  opts: StringArrayOptions | undefined,
): string[] {
  if (!Array.isArray(v)) throw new JsonShapeError(path, expectedMessage("an array of strings", v));
  const min = opts?.minItems ?? 0;
  if (v.length < min) {
    const what = `at least ${min === 1 ? "one string" : `${min} strings`}`;
    throw new JsonShapeError(path, `expected ${what}, got ${arrayLength(v)}`);
  }
  v.forEach((item, i) =>
    checkString(item, joinPath(path, i), { nonEmpty: opts?.nonEmptyItems, noNul: opts?.noNul })
  );
  return v as string[];
}

/**
 * What an array of the wrong length holds, for messages: `an empty array` or `an array of N`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrayLength } from "./json.ts";
 * assert.equal(arrayLength([1, 2, 3]), "an array of 3");
 * ```
 */
export function arrayLength(v: readonly unknown[]): string {
  return v.length === 0 ? "an empty array" : `an array of ${v.length}`;
}

/**
 * Reads `obj[key]` as a string; throws {@linkcode JsonShapeError} at `path.key` when it is
 * absent or not a string (or breaks `opts`).
 *
 * @param obj the object holding the value
 * @param key the key to read
 * @param path JSON path of `obj` (`""` for the document itself)
 * @param opts see {@linkcode StringOptions}
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readString } from "./json.ts";
 * assert.equal(readString({ job_id: "j1" }, "job_id", ""), "j1");
 * assert.throws(() => readString({}, "job_id", "params"), /^JsonShapeError: params\.job_id:/);
 * ```
 */
export function readString(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: StringOptions,
): string {
  const at = joinPath(path, key);
  if (absent(obj[key], opts)) throw new JsonShapeError(at, "required");
  return checkString(obj[key], at, opts);
}

/**
 * Like {@linkcode readString}, but an absent key gives `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optString } from "./json.ts";
 * assert.equal(optString({}, "cwd", ""), undefined);
 * assert.equal(optString({ cwd: null }, "cwd", "", { nullIsAbsent: true }), undefined);
 * assert.equal(optString({ cwd: "/tmp" }, "cwd", ""), "/tmp");
 * ```
 */
export function optString(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: StringOptions,
): string | undefined {
  if (absent(obj[key], opts)) return undefined;
  return checkString(obj[key], joinPath(path, key), opts);
}

/**
 * Reads `obj[key]` as a finite number within the bounds of `opts`; throws
 * {@linkcode JsonShapeError} at `path.key` otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readNumber } from "./json.ts";
 * assert.equal(readNumber({ port: 8004 }, "port", "", { integer: true, min: 1, max: 65535 }), 8004);
 * ```
 */
export function readNumber(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: NumberOptions,
): number {
  const at = joinPath(path, key);
  if (absent(obj[key], opts)) throw new JsonShapeError(at, "required");
  return checkNumber(obj[key], at, opts);
}

/**
 * Like {@linkcode readNumber}, but an absent key gives `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optNumber } from "./json.ts";
 * assert.equal(optNumber({}, "timeout", ""), undefined);
 * assert.throws(() => optNumber({ timeout: -1 }, "timeout", "", { above: 0, unit: "seconds" }), {
 *   message: "timeout: expected a positive number of seconds, got -1",
 * });
 * ```
 */
export function optNumber(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: NumberOptions,
): number | undefined {
  if (absent(obj[key], opts)) return undefined;
  return checkNumber(obj[key], joinPath(path, key), opts);
}

/**
 * Reads `obj[key]` as `true` or `false`; throws {@linkcode JsonShapeError} at `path.key`
 * otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readBool } from "./json.ts";
 * assert.equal(readBool({ keep: true }, "keep", "workspace"), true);
 * ```
 */
export function readBool(obj: JsonObject, key: string, path: string, opts?: ReadOptions): boolean {
  const at = joinPath(path, key);
  if (absent(obj[key], opts)) throw new JsonShapeError(at, "required");
  return optBool(obj, key, path, opts)!;
}

/**
 * Like {@linkcode readBool}, but an absent key gives `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optBool } from "./json.ts";
 * assert.equal(optBool({ save_output: true }, "save_output", "tests[0]"), true);
 * assert.throws(() => optBool({ save_output: "yes" }, "save_output", "tests[0]"), {
 *   message: 'tests[0].save_output: expected true or false, got "yes"',
 * });
 * ```
 */
export function optBool(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: ReadOptions,
): boolean | undefined {
  const v = obj[key];
  if (absent(v, opts)) return undefined;
  if (typeof v !== "boolean") {
    throw new JsonShapeError(joinPath(path, key), expectedMessage("true or false", v));
  }
  return v;
}

/**
 * Reads `obj[key]` as an array of strings; a bad item is named by its index
 * (`argv[2]: expected a string, got 5`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readStringArray } from "./json.ts";
 * assert.deepEqual(readStringArray({ argv: ["echo", "hi"] }, "argv", "", { minItems: 1 }), ["echo", "hi"]);
 * ```
 */
export function readStringArray(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: StringArrayOptions,
): string[] {
  const at = joinPath(path, key);
  if (absent(obj[key], opts)) throw new JsonShapeError(at, "required");
  return checkStringArray(obj[key], at, opts);
}

/**
 * Like {@linkcode readStringArray}, but an absent key gives `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optStringArray } from "./json.ts";
 * assert.equal(optStringArray({}, "models", "tasks[0]"), undefined);
 * assert.deepEqual(optStringArray({ models: ["haiku"] }, "models", "tasks[0]"), ["haiku"]);
 * ```
 */
export function optStringArray(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: StringArrayOptions,
): string[] | undefined {
  if (absent(obj[key], opts)) return undefined;
  return checkStringArray(obj[key], joinPath(path, key), opts);
}

/**
 * Reads `obj[key]` as a JSON object (see {@linkcode isRecord}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readRecord } from "./json.ts";
 * assert.deepEqual(readRecord({ env: { A: "1" } }, "env", ""), { A: "1" });
 * ```
 */
export function readRecord(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: ReadOptions,
): JsonObject {
  const at = joinPath(path, key);
  if (absent(obj[key], opts)) throw new JsonShapeError(at, "required");
  return optRecord(obj, key, path, opts)!;
}

/**
 * Like {@linkcode readRecord}, but an absent key gives `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optRecord } from "./json.ts";
 * assert.equal(optRecord({}, "env", ""), undefined);
 * assert.throws(() => optRecord({ env: [] }, "env", ""), {
 *   message: "env: expected an object, got an array",
 * });
 * ```
 */
export function optRecord(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: ReadOptions,
): JsonObject | undefined {
  const v = obj[key];
  if (absent(v, opts)) return undefined;
  if (!isRecord(v)) throw new JsonShapeError(joinPath(path, key), expectedMessage("an object", v));
  return v;
}

/**
 * Checks a value that is not under a key (a whole document, an array's item) is a JSON object;
 * throws {@linkcode JsonShapeError} at `path` otherwise.
 *
 * @param v the value
 * @param path JSON path of `v` (`""` for the document itself; use {@linkcode joinPath} for an item)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { asRecord, joinPath } from "./json.ts";
 * const rules: unknown[] = [{ match: "x" }, 5];
 * assert.deepEqual(asRecord(rules[0], joinPath("rules", 0)), { match: "x" });
 * assert.throws(() => asRecord(rules[1], joinPath("rules", 1)), {
 *   message: "rules[1]: expected an object, got 5",
 * });
 * ```
 */
export function asRecord(v: unknown, path: string): JsonObject {
  if (!isRecord(v)) throw new JsonShapeError(path, expectedMessage("an object", v));
  return v;
}

/**
 * Options of {@linkcode readArray} and {@linkcode optArray}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ArrayOptions, optArray } from "./json.ts";
 * const opts: ArrayOptions = { items: "{session_id, job_id}" };
 * assert.throws(() => optArray({ output: "all" }, "output", "", opts), {
 *   message: 'output: expected an array of {session_id, job_id}, got "all"',
 * });
 * ```
 */
export interface ArrayOptions extends ReadOptions {
  /** What the items are, for messages: `expected an array of ITEMS`. */
  items?: string;
}

/**
 * Reads `obj[key]` as an array whose items are left to the caller (check each one at
 * `joinPath(path, i)`, e.g. with {@linkcode asRecord}); throws {@linkcode JsonShapeError} at
 * `path.key` when it is absent or not an array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readArray } from "./json.ts";
 * assert.deepEqual(readArray({ rules: [1, "a"] }, "rules", ""), [1, "a"]);
 * assert.throws(() => readArray({}, "rules", "script"), { message: "script.rules: required" });
 * ```
 */
export function readArray(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: ArrayOptions,
): unknown[] {
  const at = joinPath(path, key);
  if (absent(obj[key], opts)) throw new JsonShapeError(at, "required");
  return optArray(obj, key, path, opts)!;
}

/**
 * Like {@linkcode readArray}, but an absent key gives `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optArray } from "./json.ts";
 * assert.equal(optArray({ rules: null }, "rules", "", { nullIsAbsent: true }), undefined);
 * assert.throws(() => optArray({ rules: {} }, "rules", ""), {
 *   message: "rules: expected an array, got an object",
 * });
 * ```
 */
export function optArray(
  obj: JsonObject,
  key: string,
  path: string,
  opts?: ArrayOptions,
): unknown[] | undefined {
  const v = obj[key];
  if (absent(v, opts)) return undefined;
  if (!Array.isArray(v)) {
    const what = opts?.items ? `an array of ${opts.items}` : "an array";
    throw new JsonShapeError(joinPath(path, key), expectedMessage(what, v));
  }
  return v;
}

/**
 * The words for a choice of strings: `a`, `a or b`, `one of a, b or c`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { enumPhrase } from "./json.ts";
 * assert.equal(enumPhrase(["pass", "fail", "none"]), "one of pass, fail or none");
 * assert.equal(enumPhrase(["on", "off"]), "on or off");
 * ```
 */
export function enumPhrase(values: readonly string[]): string {
  if (values.length <= 1) return values.join("");
  const list = `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
  return values.length === 2 ? list : `one of ${list}`;
}

/**
 * Reads `obj[key]` as one of the strings `values`; throws {@linkcode JsonShapeError} at
 * `path.key` otherwise, absent included (`expected one of a, b or c, got nothing`), since the
 * useful thing to tell whoever left the key out is the choice they have.
 *
 * @param values the allowed strings, in the order messages list them
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnum } from "./json.ts";
 * const TYPES = ["text", "tool", "hang"] as const;
 * const t: "text" | "tool" | "hang" = readEnum({ type: "tool" }, "type", "reply", TYPES);
 * assert.equal(t, "tool");
 * assert.throws(() => readEnum({}, "type", "reply", TYPES), {
 *   message: "reply.type: expected one of text, tool or hang, got nothing",
 * });
 * ```
 */
export function readEnum<T extends string>(
  obj: JsonObject,
  key: string,
  path: string,
  values: readonly T[],
  opts?: ReadOptions,
): T {
  const v = obj[key];
  if (absent(v, opts) || !values.includes(v as T)) {
    throw new JsonShapeError(joinPath(path, key), expectedMessage(enumPhrase(values), v));
  }
  return v as T;
}

/**
 * Like {@linkcode readEnum}, but an absent key gives `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optEnum } from "./json.ts";
 * const VERDICTS = ["pass", "fail", "none"] as const;
 * assert.equal(optEnum({}, "verdict", "", VERDICTS), undefined);
 * assert.throws(() => optEnum({ verdict: "yes" }, "verdict", "", VERDICTS), {
 *   message: 'verdict: expected one of pass, fail or none, got "yes"',
 * });
 * ```
 */
export function optEnum<T extends string>(
  obj: JsonObject,
  key: string,
  path: string,
  values: readonly T[],
  opts?: ReadOptions,
): T | undefined {
  if (absent(obj[key], opts)) return undefined;
  return readEnum(obj, key, path, values);
}

/**
 * Parses JSON text (a leading byte order mark is ignored); a syntax error becomes a
 * {@linkcode JsonShapeError} at `$` that says where: `not valid JSON: … (line L column C)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseJsonText } from "./json.ts";
 * assert.deepEqual(parseJsonText('{"a": 1}'), { a: 1 });
 * assert.throws(() => parseJsonText('{\n  "a" 1\n}'), /^JsonShapeError: \$: not valid JSON: .*\(line 2 column 7\)/);
 * ```
 */
export function parseJsonText(text: string): unknown {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(src);
  } catch (e) {
    throw new JsonShapeError("$", describeSyntaxError(e, src));
  }
}

/** Turns a `JSON.parse` error into "not valid JSON: … (line L column C)". */
function describeSyntaxError(e: unknown, text: string): string {
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

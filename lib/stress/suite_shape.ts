/**
 * The structural checks of a suite, read off the declaration in `suite_schema.ts` (the one
 * that also generates `tasks/suite.schema.json`): {@linkcode checkShape} walks a parsed
 * document beside the declaration and reports every value of the wrong type, every required
 * key that is missing, every value outside its enum or bounds and every undeclared key (with a
 * "did you mean"), each with its JSON path. A key added to the declaration is checked from
 * then on, with nothing written by hand: the validator and the published schema cannot drift.
 *
 * The interpreter knows the declaration's vocabulary: `type` (string, boolean, object, number,
 * integer, array), `minLength`, `minimum`, `exclusiveMinimum`, `minItems`, `maxItems`,
 * `items`, `enum`, `anyOf`, `required`, references to declared objects and maps of them, and
 * closed objects (JSON Schema's `additionalProperties: false`). Rules that a JSON Schema cannot
 * say (ids unique, regular expressions compile, paths stay inside the workspace, …) are
 * `suite_load.ts`'s; they run from the `visit` hook, in document order with the rest.
 *
 * Messages: a value of the wrong JSON type gets `expected a string, got 5`; a value of the
 * right type outside its bounds `expected a positive number of seconds, got 0`; a value outside
 * its enum `unknown criterion "BEST"; expected one of FASTEST, …`; a missing key `required`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkShape } from "./suite_shape.ts";
 * assert.deepEqual(checkShape({ tests: [{ id: "a", command: "true", timout: 5, timeout: "5" }] }), [
 *   { path: "tests[0].timout", message: 'unknown key "timout" (did you mean "timeout"?)' },
 *   { path: "tests[0].timeout", message: 'expected a number, got "5"' },
 * ]);
 * ```
 * @module
 */

import {
  arrayLength,
  describeJson,
  expectedMessage,
  isRecord,
  joinPath,
  type JsonObject,
  type JsonProblem,
  numberPhrase,
  withArticle,
} from "../common/json.ts";
import { didYouMean } from "../common/suggest.ts";
import { type Field, type ObjectName, SUITE_OBJECTS } from "./suite_schema.ts";

/**
 * One declared object of the document, handed to the `visit` hook of
 * {@linkcode checkShape} after its keys (and everything inside them) were checked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkShape, type ShapeVisit } from "./suite_shape.ts";
 * const seen: string[] = [];
 * const onTest = (v: ShapeVisit) => v.name === "test" && v.ok("command") && void seen.push(v.path);
 * checkShape({ tests: [{ id: "a", command: "true" }, { id: "b" }] }, onTest);
 * assert.deepEqual(seen, ["tests[0]"]);
 * ```
 */
export interface ShapeVisit {
  /** Which declared object this is. */
  name: ObjectName;
  /** The object itself. */
  value: JsonObject;
  /** Its JSON path (`""` for the document). */
  path: string;
  /**
   * Whether `key` is present and passed every structural check (nothing reported at or
   * below it): a rule may then rely on the declared type.
   */
  ok(key: string): boolean;
  /** Reports a problem at `path` (in document order with the structural ones). */
  report(path: string, message: string): void;
}

/**
 * Checks a parsed suite document against the declaration ({@linkcode SUITE_OBJECTS}) and
 * returns every problem, in document order. `visit` is called for each declared object that
 * is a JSON object, after its contents were checked.
 *
 * @param doc the parsed document
 * @param visit further rules for one object; they report through `ShapeVisit.report`
 * @param root the declared object `doc` should be (default: the whole suite)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkShape } from "./suite_shape.ts";
 * assert.deepEqual(checkShape({ categories: { a: { tests: [{ id: "t" }] } } }), [
 *   { path: "categories.a.tests[0].command", message: "required" },
 * ]);
 * ```
 */
export function checkShape(
  doc: unknown,
  visit?: (v: ShapeVisit) => void,
  root: ObjectName = "suite",
): JsonProblem[] {
  const out: JsonProblem[] = [];
  new Checker(out, visit).object(doc, root, "");
  return out;
}

/**
 * The message for a value of the wrong JSON type, or outside the bounds of `f`; `undefined`
 * when the value fits (objects and array items are not looked into).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SUITE_OBJECTS } from "./suite_schema.ts";
 * import { valueProblem } from "./suite_shape.ts";
 * assert.equal(valueProblem(SUITE_OBJECTS.test.fields.timeout, 0), "expected a positive number of seconds, got 0");
 * assert.equal(valueProblem(SUITE_OBJECTS.test.fields.timeout, 30), undefined);
 * ```
 */
export function valueProblem(f: Field, x: unknown): string | undefined {
  const p = generatedProblem(f, x);
  if (p === undefined || typeof p === "string") return p;
  return `expected ${f.expected ?? p.what}, got ${p.found}`;
}

/** What was expected and what was found, before a declared `expected` replaces the former. */
interface Miss {
  what: string;
  found: string;
}

const miss = (what: string, x: unknown): Miss => ({ what, found: describeJson(x) });

function generatedProblem(f: Field, x: unknown): Miss | string | undefined {
  if ("ref" in f || "map" in f) return isRecord(x) ? undefined : miss("an object", x);
  if ("anyOf" in f) {
    const fits = f.anyOf.find((b) => valueProblem(b, x) === undefined || sameType(b, x));
    if (fits !== undefined) return valueProblem(fits, x);
    return miss(f.anyOf.map(shortPhrase).join(" or "), x);
  }
  if ("enum" in f) {
    if ((f.enum as readonly unknown[]).includes(x)) return undefined;
    return `unknown ${f.noun ?? "value"} ${describeJson(x)}; expected one of ${f.enum.join(", ")}`;
  }
  switch (f.type) {
    case "string":
      if (typeof x !== "string") return miss("a string", x);
      if (f.minLength !== undefined && x.length < f.minLength) {
        const noun = f.noun ?? "string";
        const what = f.minLength === 1
          ? `a non-empty ${noun}`
          : `${withArticle(noun)} of at least ${f.minLength} characters`;
        return miss(what, x);
      }
      return undefined;
    case "boolean":
      return typeof x === "boolean" ? undefined : miss("true or false", x);
    case "object":
      return isRecord(x) ? undefined : miss("an object", x);
    case "number":
    case "integer": {
      const bounds = {
        integer: f.type === "integer",
        min: f.minimum,
        above: "exclusiveMinimum" in f ? f.exclusiveMinimum : undefined,
        unit: f.unit,
        noun: f.noun,
      };
      if (typeof x !== "number" || !Number.isFinite(x)) {
        // "integer" is a bound on a JSON number: say it whole, as for 1.5.
        return miss(bounds.integer ? numberPhrase(bounds) : "a number", x);
      }
      const outside = (bounds.integer && !Number.isInteger(x)) ||
        (bounds.min !== undefined && x < bounds.min) ||
        (bounds.above !== undefined && x <= bounds.above);
      return outside ? miss(numberPhrase(bounds), x) : undefined;
    }
    case "array": {
      if (!Array.isArray(x)) return miss(arrayPhrase(f.items), x);
      const min = f.minItems ?? 0;
      const max = f.maxItems ?? Infinity;
      if (x.length >= min && x.length <= max) return undefined;
      return { what: lengthPhrase(f.items, min, max), found: arrayLength(x) };
    }
  }
}

/** Whether `x` has the JSON type of a simple field (so its bounds, not its type, failed). */
function sameType(f: Field, x: unknown): boolean {
  if (!("type" in f)) return false;
  switch (f.type) {
    case "array":
      return Array.isArray(x);
    case "object":
      return isRecord(x);
    case "string":
      return typeof x === "string";
    case "boolean":
      return typeof x === "boolean";
    case "number":
    case "integer":
      return typeof x === "number";
  }
}

/** A field's type in a few words, for `anyOf` lists: `a string or a boolean`. */
function shortPhrase(f: Field): string {
  if (!("type" in f)) return "an object";
  if (f.type === "array") return arrayPhrase(f.items);
  return withArticle(f.type);
}

/** `an array of strings`, or `an array` when the items are objects. */
function arrayPhrase(items: Field): string {
  return "type" in items && items.type !== "object" && items.type !== "array"
    ? `an array of ${items.type}s`
    : "an array";
}

/** `at least one model`, `2 temperatures`, `at most 3 strings`. */
function lengthPhrase(items: Field, min: number, max: number): string {
  const noun = items.noun ?? ("type" in items ? items.type : "item");
  const count = (n: number) => n === 1 ? `one ${noun}` : `${n} ${noun}s`;
  if (min === max) return count(min);
  if (max === Infinity) return `at least ${count(min)}`;
  if (min === 0) return `at most ${count(max)}`;
  return `${min} to ${max} ${noun}s`;
}

class Checker {
  constructor(
    readonly out: JsonProblem[],
    readonly visit: ((v: ShapeVisit) => void) | undefined,
  ) {}

  report(path: string, message: string): void {
    this.out.push({ path: path === "" ? "$" : path, message });
  }

  object(x: unknown, name: ObjectName, path: string): void {
    if (!isRecord(x)) {
      this.report(path, expectedMessage("an object", x));
      return;
    }
    const decl = SUITE_OBJECTS[name];
    const start = this.out.length;
    for (const k of decl.required ?? []) {
      if (x[k] === undefined) this.report(joinPath(path, k), "required");
    }
    const keys = Object.keys(decl.fields);
    for (const [k, v] of Object.entries(x)) {
      const f = decl.fields[k];
      if (f === undefined) {
        this.report(joinPath(path, k), `unknown key ${JSON.stringify(k)}${didYouMean(k, keys)}`);
      } else if (v !== undefined) this.field(v, f, joinPath(path, k));
    }
    if (this.visit === undefined) return;
    const own = this.out.slice(start);
    this.visit({
      name,
      value: x,
      path,
      ok: (key) => {
        if (x[key] === undefined) return false;
        const at = joinPath(path, key);
        return !own.some((p) =>
          p.path === at || p.path.startsWith(`${at}.`) || p.path.startsWith(`${at}[`)
        );
      },
      report: (p, message) => this.report(p, message),
    });
  }

  field(x: unknown, f: Field, path: string): void {
    const why = valueProblem(f, x);
    if (why !== undefined) return this.report(path, why);
    if ("ref" in f) return this.object(x, f.ref, path);
    if ("map" in f) {
      for (const [k, v] of Object.entries(x as JsonObject)) {
        this.object(v, f.map, joinPath(path, k));
      }
    } else if ("anyOf" in f) {
      // The branch that fits is checked all the way down (an object's keys, an array's items).
      const branch = f.anyOf.find((b) => valueProblem(b, x) === undefined);
      if (branch !== undefined) this.field(x, branch, path);
    } else if ("type" in f && f.type === "array") {
      (x as unknown[]).forEach((item, i) => this.field(item, f.items, joinPath(path, i)));
    }
  }
}

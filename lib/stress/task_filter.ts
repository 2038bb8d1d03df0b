/**
 * Choosing which tasks of a suite run: `--category`, `--filter` and `--exclude` of
 * `ccx stress`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSuite } from "./suite_load.ts";
 * import { filterTasks } from "./task_filter.ts";
 * const suite = await loadSuite("tasks/selftest.json");
 * assert.deepEqual(filterTasks(suite, { filter: "echo" }).map((t) => t.id), ["echo_basic"]);
 * ```
 * @module
 */

import type { Suite, SuiteTask } from "./suite_model.ts";

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
 * import assert from "node:assert/strict";
 * import { filterTasks } from "./task_filter.ts";
 * import { loadSuite } from "./suite_load.ts";
 * const suite = await loadSuite("tasks/unified_stress_test_tasks.json");
 * const math = filterTasks(suite, { categories: ["simple"], filter: "math|fib", exclude: ["quick"] });
 * assert.deepEqual(math.map((t) => t.id), ["simple_1", "simple_2"]);
 * assert.throws(() => filterTasks(suite, { categories: ["simpel"] }), /^RangeError: unknown category "simpel"/);
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

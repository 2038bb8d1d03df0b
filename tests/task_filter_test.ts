import assert from "node:assert/strict";
import { parseSuite } from "../lib/stress/suite_load.ts";
import type { Suite } from "../lib/stress/suite_model.ts";
import { filterTasks } from "../lib/stress/task_filter.ts";

function sampleSuite(): Suite {
  return parseSuite({
    categories: {
      simple: {
        tasks: [
          { id: "simple_1", name: "basic_math", natural_language_request: "What is 2+2?" },
          { id: "simple_3", name: "quick_math", natural_language_request: "What is 1+1?" },
        ],
      },
      Creative: {
        tasks: [{ id: "creative_1", name: "haikus", natural_language_request: "What is a haiku?" }],
      },
      failure: { tests: [{ id: "failure_1", name: "Invalid flag", command: "false" }] },
    },
  }, "sample.json");
}

Deno.test("filterTasks() with no selection returns every task in order", () => {
  const suite = sampleSuite();
  assert.deepEqual(filterTasks(suite, {}).map((t) => t.id), suite.tasks.map((t) => t.id));
  assert.equal(filterTasks(suite, { categories: [], filter: "" }).length, 4);
});

Deno.test("filterTasks() selects categories case-insensitively", () => {
  const ids = filterTasks(sampleSuite(), { categories: ["creative", "FAILURE"] }).map((t) => t.id);
  assert.deepEqual(ids, ["creative_1", "failure_1"]);
});

Deno.test("filterTasks() matches the filter against id or name, case-insensitively", () => {
  const suite = sampleSuite();
  assert.deepEqual(filterTasks(suite, { filter: "MATH" }).map((t) => t.id), [
    "simple_1",
    "simple_3",
  ]);
  assert.deepEqual(filterTasks(suite, { filter: "_3" }).map((t) => t.id), ["simple_3"]);
  assert.deepEqual(filterTasks(suite, { filter: "invalid flag" }).map((t) => t.id), ["failure_1"]);
  assert.deepEqual(filterTasks(suite, { categories: ["creative"], filter: "math" }), []);
});

Deno.test("filterTasks() refuses an unknown category, naming the known ones", () => {
  assert.throws(
    () => filterTasks(sampleSuite(), { categories: ["simple", "nope"] }),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message === 'unknown category "nope" in sample.json; it has: simple, Creative, failure',
  );
});

/**
 * Small suites for tests of the suite modules: one valid task of either schema, with
 * overrides, and the single task a suite normalizes to.
 * @module
 */

import assert from "node:assert/strict";
import { parseSuite } from "../../lib/stress/suite_load.ts";
import type { SuiteTask } from "../../lib/stress/suite_model.ts";

/** A one-task seed-schema suite; `task` overrides the defaults of a valid task. */
export function seed(task: Record<string, unknown>, category = "simple"): unknown {
  return {
    categories: {
      [category]: {
        tasks: [{
          id: "simple_1",
          name: "basic_math",
          natural_language_request: "What is 2+2?",
          verification: { timeout: 120, expected_patterns: ["4"] },
          ...task,
        }],
      },
    },
  };
}

/** A one-test upstream-schema suite. */
export function upstream(test: Record<string, unknown>): unknown {
  return {
    categories: {
      simple: { tests: [{ id: "echo", command: "echo hi", expected_patterns: ["hi"], ...test }] },
    },
  };
}

/** The one task `json` normalizes to (fails unless there is exactly one). */
export function onlyTask(json: unknown): SuiteTask {
  const suite = parseSuite(json, "inline");
  assert.equal(suite.tasks.length, 1);
  return suite.tasks[0];
}

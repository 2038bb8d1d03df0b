import assert from "node:assert/strict";
import { PROMPT_CHARS, taskJobTag } from "../lib/stress/job_tag.ts";
import { parseSuite } from "../lib/stress/suite_load.ts";
import { validateExecute } from "../lib/common/protocol.ts";

const suite = parseSuite({
  categories: {
    simple: {
      tasks: [
        {
          id: "simple_1",
          name: "basic_math",
          natural_language_request: "What is 2+2?",
          verification: { expected_patterns: ["4"] },
        },
        {
          id: "failure_1",
          natural_language_request: "x".repeat(5000),
          command_template: "exit 3",
        },
      ],
    },
  },
}, "demo.json");

Deno.test("a task's job is labelled by its result id and name, with the run and task in meta", () => {
  const run = { suite: "demo", run_id: "r-1", run_total: 4 };
  const tag = taskJobTag(suite.tasks[0], "simple_1.r2", run);
  assert.equal(tag.label, "simple_1.r2 · basic_math");
  assert.deepEqual(tag.meta, {
    suite: "demo",
    run_id: "r-1",
    run_total: 4,
    task_id: "simple_1",
    result_id: "simple_1.r2",
    category: "simple",
    prompt: "What is 2+2?",
  });
  // An instance of a concurrent task says which.
  const inst = taskJobTag(suite.tasks[0], "simple_1", run, 1);
  assert.equal(inst.label, "simple_1.i2 · basic_math");
  assert.equal(inst.meta.instance, 2);
});

Deno.test("an expected failure says so, and a long request stays within execute's limits", () => {
  const tag = taskJobTag(suite.tasks[1], "failure_1");
  assert.equal(tag.label, "failure_1"); // no name: the id alone
  assert.equal(tag.meta.expect_exit, "non-zero");
  assert.equal([...tag.meta.prompt!].length, PROMPT_CHARS);
  const p = validateExecute({ command: "true", ...tag });
  assert.equal(p.label, "failure_1");
  // The worst case: every character of the prompt written as a 6-byte JSON escape.
  const worst = taskJobTag({ ...suite.tasks[1], request: "\u0001".repeat(5000) }, "f");
  validateExecute({ command: "true", ...worst });
});

Deno.test("a name with a newline or of any length still makes a valid label", () => {
  const t = { ...suite.tasks[0], name: "two\nlines " + "y".repeat(300) };
  const tag = taskJobTag(t, "simple_1");
  assert.doesNotMatch(tag.label, /\n/);
  assert.equal([...tag.label].length, 200);
  assert.equal(validateExecute({ command: "true", ...tag }).label, tag.label);
});

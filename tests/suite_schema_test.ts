import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { SUITE_OBJECTS, suiteJsonSchema } from "../lib/stress/suite_schema.ts";
import { checkShape } from "../lib/stress/suite_shape.ts";
import { loadSuite, parseSuite } from "../lib/stress/suite_load.ts";
import { ROOT } from "./_util/helpers.ts";

Deno.test("tasks/suite.schema.json is the schema generated from the declaration (deno task schema)", async () => {
  const file = JSON.parse(await Deno.readTextFile(join(ROOT, "tasks/suite.schema.json")));
  assert.deepEqual(file, suiteJsonSchema(), "run `deno task schema` to regenerate the file");
});

Deno.test("every key the declaration allows is one parseSuite reads, with the type declared", () => {
  // A suite using every declared key: the parser must accept it (no key declared but refused).
  const doc = {
    $schema: "./suite.schema.json",
    name: "all",
    description: "d",
    version: 2,
    task_list_id: "x",
    execution_config: {},
    defaults: { timeout: 5, stall_timeout: 4 },
    workspace_template: "templates/base",
    check_files: "tests",
    categories: {
      c: {
        description: "d",
        timeout: 6,
        stall_timeout: 3,
        workspace_template: "templates/cat",
        check_files: "tasks",
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
            check: "python3 -m pytest -q",
            check_timeout: 30,
            check_files: "tests/fixtures",
            rubric: "add() adds",
          },
          workspace_template: "/srv/tpl",
          concurrent_instances: 2,
          models: ["haiku"],
          temperature_range: [0, 1],
          evaluation_criteria: "FASTEST",
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
          expected_files: [{ path: "out/b.txt" }],
          check: ["true", "sh t.sh"],
          rubric: ["a", "b"],
          concurrent_instances: 1,
          models: ["m"],
          temperature_range: [0, 0],
          evaluation_criteria: "CONSENSUS",
        }],
      },
    },
    tests: [{ id: "t3", command: "true", expected_patterns: ["x"], check: "true" }],
  };
  const suite = parseSuite(doc, "inline");
  assert.deepEqual(suite.tasks.map((t) => t.id), ["t1", "t2", "t3"]);
  assert.equal(suite.tasks[0].wholeWord, true);
  assert.deepEqual(suite.tasks[0].expectedFiles, [{ path: "a.py", contains: "x" }]);
  assert.deepEqual(suite.tasks[1].expectedFiles, [{ path: "out/b.txt" }]);
  // workspace_template: the task's, else the category's, else the suite's (relative to the file).
  assert.equal(suite.tasks[0].workspaceTemplate, "/srv/tpl");
  assert.equal(suite.tasks[1].workspaceTemplate, resolve("templates/cat"));
  assert.equal(suite.tasks[2].workspaceTemplate, resolve("templates/base"));
  // Graders: check and rubric as a string or a list; check_files inherited like a template.
  assert.deepEqual(suite.tasks[0].checks, ["python3 -m pytest -q"]);
  assert.equal(suite.tasks[0].checkTimeoutS, 30);
  assert.deepEqual(suite.tasks[0].rubric, ["add() adds"]);
  assert.equal(suite.tasks[0].checkFiles, resolve("tests/fixtures"));
  assert.deepEqual(suite.tasks[1].checks, ["true", "sh t.sh"]);
  assert.deepEqual(suite.tasks[1].rubric, ["a", "b"]);
  assert.equal(suite.tasks[1].checkFiles, resolve("tasks"));
  assert.equal(suite.tasks[2].checkFiles, resolve("tests"));
  // Every declared key was used above (so the declaration has no key the parser ignores).
  const used = new Set<string>();
  const collect = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(collect);
    else if (x && typeof x === "object") {
      for (const [k, v] of Object.entries(x)) {
        used.add(k);
        collect(v);
      }
    }
  };
  collect(doc);
  for (const [name, d] of Object.entries(SUITE_OBJECTS)) {
    for (const k of Object.keys(d.fields)) assert.ok(used.has(k), `${name}.${k} is exercised`);
  }
});

Deno.test("the shipped suites name the schema and have the declared shape", async () => {
  for (
    const f of [
      "tasks/selftest.json",
      "tasks/unified_stress_test_tasks.json",
      "tasks/examples/graded.json",
    ]
  ) {
    const doc = JSON.parse(await Deno.readTextFile(join(ROOT, f)));
    assert.equal(
      doc.$schema,
      f.includes("examples/") ? "../suite.schema.json" : "./suite.schema.json",
      f,
    );
    assert.deepEqual(checkShape(doc), [], f);
    const suite = await loadSuite(join(ROOT, f));
    assert.deepEqual(suite.warnings, [], `${f} has a task that checks nothing`);
  }
});

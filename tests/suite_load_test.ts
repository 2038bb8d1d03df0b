import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { JsonProblem } from "../lib/common/json.ts";
import { loadSuite, parseSuite } from "../lib/stress/suite_load.ts";
import { DEFAULT_TIMEOUT_S, SuiteError } from "../lib/stress/suite_model.ts";
import { buildTaskCommand, resolveMarker } from "../lib/stress/task_command.ts";
import { filterTasks } from "../lib/stress/task_filter.ts";
import { EVALUATION_CRITERIA, isEvaluationCriterion } from "../lib/verdict/pick.ts";
import { onlyTask, seed, upstream } from "./_util/suite.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const UNIFIED = `${ROOT}tasks/unified_stress_test_tasks.json`;
const SELFTEST = `${ROOT}tasks/selftest.json`;
const FAKE_CLAUDE = `${ROOT}tests/fixtures/claude`;
/** The stand-in, like the real CLI, needs a key (see tests/_util/helpers.ts). */
const KEY_ENV = { ANTHROPIC_API_KEY: "sk-ant-stand-in-test" };

// ---------------------------------------------------------------------------------------------
// helpers

/** The problems parseSuite reports for `json` (fails when it accepts the suite). */
function problemsOf(json: unknown): JsonProblem[] {
  try {
    parseSuite(json, "inline");
  } catch (e) {
    if (e instanceof SuiteError) return e.problems;
    throw e;
  }
  assert.fail("parseSuite accepted a malformed suite");
}

/** Asserts that `json` is refused with exactly one problem at `path` whose message matches. */
function assertProblem(json: unknown, path: string, message: RegExp | string): void {
  const problems = problemsOf(json);
  assert.equal(problems.length, 1, `expected one problem, got ${JSON.stringify(problems)}`);
  assert.equal(problems[0].path, path);
  if (typeof message === "string") assert.equal(problems[0].message, message);
  else assert.match(problems[0].message, message);
}

// ---------------------------------------------------------------------------------------------
// the shipped suites

Deno.test("loadSuite() loads the shipped unified suite with the seed's categories", async () => {
  const suite = await loadSuite(UNIFIED);
  assert.equal(suite.source, UNIFIED);
  assert.equal(suite.name, "unified_stress_test_tasks");
  assert.equal(suite.claude, "claude");
  const categories = [...new Set(suite.tasks.map((t) => t.category))];
  assert.deepEqual(categories, [
    "simple",
    "code_generation",
    "creative",
    "complex",
    "failure",
    "concurrent_execution",
  ]);
});

Deno.test("the unified suite keeps quick_math at simple.tasks[2] with the seed's patterns", async () => {
  const json = JSON.parse(await Deno.readTextFile(UNIFIED));
  const quick = json.categories.simple.tasks[2];
  assert.equal(quick.id, "simple_3");
  assert.equal(quick.name, "quick_math");
  const suite = await loadSuite(UNIFIED);
  const task = suite.tasks.find((t) => t.id === "simple_3")!;
  assert.deepEqual(task.expectedPatterns, ["42", "37", "108", "256"]);
  assert.match(task.request!, /^What is the result of these calculations: 15\+27, 83-46, 12\*9/);
});

Deno.test("the unified suite asks only question-form prompts with the seed's timeouts", async () => {
  const suite = await loadSuite(UNIFIED);
  for (const t of suite.tasks) {
    if (t.request !== undefined) assert.match(t.request, /^What is .*\?$/, t.id);
    const min = t.category === "simple" ? 120 : t.category === "complex" ? 240 : 0;
    assert.ok(t.timeoutS >= min, `${t.id}: ${t.timeoutS} s`);
    if (t.category === "complex") assert.ok(t.timeoutS <= 300, t.id);
    if (["code_generation", "creative"].includes(t.category)) {
      assert.ok(t.timeoutS >= 180, `${t.id}: ${t.timeoutS} s`);
    }
    if (t.category !== "failure") {
      assert.ok(t.expectedPatterns.length > 0, `${t.id} has patterns`);
      assert.ok(t.stallTimeoutS !== undefined && t.stallTimeoutS < t.timeoutS, t.id);
    }
  }
});

Deno.test("the unified suite's templates run claude -p with stream-json, --verbose and no tools", async () => {
  const suite = await loadSuite(UNIFIED);
  // A stand-in for the CLI that prints the arguments it gets, one per NUL-terminated record:
  // what the shell made of each template, quoting included.
  const dir = await Deno.makeTempDir({ prefix: "ccx_argv_" });
  const recorder = `${dir}/claude`;
  await Deno.writeTextFile(recorder, `#!/bin/sh\nprintf '%s\\0' "$@"\n`);
  await Deno.chmod(recorder, 0o755);
  try {
    for (const t of suite.tasks) {
      assert.ok(t.template !== undefined, `${t.id} has a command_template`);
      assert.match(t.template, /^claude /, t.id);
      if (t.category === "failure") continue;
      assert.match(
        t.template,
        /^claude -p "\[marker:\$\{MARKER\}\] .*\$\{METATAGS\} \$\{REQUEST\}"/,
      );
      const built = buildTaskCommand(
        t,
        { marker: resolveMarker(t, "T"), timestamp: "T", model: "sonnet", temperature: 0.5 },
        { claude: recorder },
      );
      const out = await new Deno.Command("/bin/sh", {
        args: ["-c", built.command!],
        env: built.env,
        stdin: "null",
        stdout: "piped",
      }).output();
      assert.equal(out.code, 0, t.id);
      const argv = new TextDecoder().decode(out.stdout).split("\0").slice(0, -1);
      assert.equal(argv[0], "-p", t.id);
      for (const flag of ["--verbose", "--dangerously-skip-permissions"]) {
        assert.ok(argv.includes(flag), `${t.id} passes ${flag}: ${JSON.stringify(argv)}`);
      }
      assert.equal(argv[argv.indexOf("--output-format") + 1], "stream-json", t.id);
      // No tools: `--tools ""`, an empty argument (CLAUDE_CLI.md). `--allowedTools none`, the
      // seed's, restricts nothing: `none` is read as a tool name.
      const at = argv.indexOf("--tools");
      assert.ok(at > 0 && argv[at + 1] === "", `${t.id}: --tools "" in ${JSON.stringify(argv)}`);
      assert.ok(!argv.some((a) => /^--allowed-?tools$/i.test(a)), `${t.id}: ${argv}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a unified suite template run against the stand-in CLI gives the model no tools", async () => {
  const suite = await loadSuite(UNIFIED, { claude: FAKE_CLAUDE });
  const t = suite.tasks.find((t) => t.category === "simple")!;
  const built = buildTaskCommand(t, { marker: resolveMarker(t, "T"), timestamp: "T" }, {
    claude: suite.claude,
  });
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", built.command!],
    env: { ...built.env, IS_SANDBOX: "1", ...KEY_ENV },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const init = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l)).find((m) => m.type === "system" && m.subtype === "init");
  assert.deepEqual(init?.tools, [], JSON.stringify(init));
});

Deno.test("the unified suite's failure tasks all expect a non-zero exit", async () => {
  const suite = await loadSuite(UNIFIED);
  const failures = filterTasks(suite, { categories: ["failure"] });
  assert.ok(failures.length >= 2);
  for (const t of failures) {
    assert.match(t.id, /^failure_/);
    assert.equal(t.expectNonZeroExit, true, t.id);
  }
  assert.ok(failures.some((t) => t.template!.includes("--nonexistent-flag")));
  for (const t of suite.tasks.filter((t) => t.category !== "failure")) {
    assert.equal(t.expectNonZeroExit, false, t.id);
  }
});

Deno.test("the unified suite's failure tasks fail against the stand-in claude", async () => {
  const suite = await loadSuite(UNIFIED, { claude: FAKE_CLAUDE });
  const failures = filterTasks(suite, { categories: ["failure"] });
  assert.ok(failures.length >= 3, `only ${failures.length} failure tasks`);
  for (const t of failures) {
    const built = buildTaskCommand(t, { marker: resolveMarker(t, "T"), timestamp: "T" }, {
      claude: suite.claude,
    });
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", built.command!],
      env: { ...built.env, DENO_BIN: Deno.execPath(), IS_SANDBOX: "1", ...KEY_ENV },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    assert.notEqual(out.code, 0, `${t.id} exits non-zero`);
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    for (const p of t.expectedPatterns) {
      assert.ok(text.toLowerCase().includes(p.toLowerCase()), `${t.id}: ${p} in ${text}`);
    }
  }
});

Deno.test("the unified suite has a concurrent task for every evaluation criterion", async () => {
  const suite = await loadSuite(UNIFIED);
  const concurrent = filterTasks(suite, { categories: ["concurrent_execution"] });
  assert.ok(concurrent.every((t) => t.concurrent !== undefined));
  assert.deepEqual(
    [...new Set(concurrent.map((t) => t.concurrent!.criteria))].sort(),
    [...EVALUATION_CRITERIA].sort(),
  );
  const temp = concurrent.find((t) => t.concurrent!.criteria === "HIGHEST_MODEL_TEMP")!;
  assert.ok(temp.concurrent!.temperatureRange !== undefined);
  const withModel = concurrent.filter((t) => t.template!.includes("${MODEL}"));
  assert.ok(withModel.length > 0, "some concurrent task uses ${MODEL}");
  for (const t of withModel) {
    assert.ok(t.concurrent!.models!.length > 0, `${t.id} names models for \${MODEL}`);
  }
});

Deno.test("loadSuite() loads the shipped selftest (upstream schema, 15-25 tests)", async () => {
  const suite = await loadSuite(SELFTEST);
  assert.equal(suite.name, "selftest");
  assert.ok(suite.tasks.length >= 15 && suite.tasks.length <= 25, `${suite.tasks.length}`);
  assert.ok(suite.tasks.every((t) => t.template !== undefined && t.request === undefined));
  assert.ok(suite.tasks.some((t) => t.expectNonZeroExit));
});

Deno.test("every selftest task passes when run directly with /bin/sh -c and stdin closed", async () => {
  const suite = await loadSuite(SELFTEST);
  await Promise.all(suite.tasks.map(async (t) => {
    const built = buildTaskCommand(t, { marker: resolveMarker(t, "T"), timestamp: "T" }, {
      claude: "claude",
    });
    assert.deepEqual(built.env, {}, `${t.id} needs no substitution`);
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", built.command!],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(t.timeoutS * 1000),
    }).output();
    assert.equal(out.signal, null, `${t.id} was not killed`);
    if (t.expectNonZeroExit) assert.notEqual(out.code, 0, `${t.id} exits non-zero`);
    else assert.equal(out.code, 0, `${t.id} exits 0`);
    const dec = new TextDecoder();
    const text = (dec.decode(out.stdout) + dec.decode(out.stderr)).toLowerCase();
    for (const p of t.expectedPatterns) {
      assert.ok(text.includes(p.toLowerCase()), `${t.id}: pattern ${JSON.stringify(p)}`);
    }
  }));
});

// ---------------------------------------------------------------------------------------------
// normalization

Deno.test("parseSuite() normalizes a seed task", () => {
  const task = onlyTask(seed({
    metatags: "[category:stress_test]",
    command_template: 'claude -p "${METATAGS} ${REQUEST}"',
    verification: {
      timeout: 60,
      stall_timeout: 20,
      expected_patterns: ["4", "four"],
      marker: "MATH_${TIMESTAMP}",
      save_output: false,
    },
  }));
  assert.deepEqual(task, {
    id: "simple_1",
    name: "basic_math",
    category: "simple",
    request: "What is 2+2?",
    metatags: "[category:stress_test]",
    template: 'claude -p "${METATAGS} ${REQUEST}"',
    timeoutS: 60,
    stallTimeoutS: 20,
    expectedPatterns: ["4", "four"],
    expectNonZeroExit: false,
    marker: "MATH_${TIMESTAMP}",
    saveOutput: false,
  });
});

Deno.test("parseSuite() normalizes an upstream test", () => {
  const task = onlyTask(upstream({ timeout: 5, stall_timeout: 2, expect_non_zero_exit: true }));
  assert.deepEqual(task, {
    id: "echo",
    name: "echo",
    category: "simple",
    template: "echo hi",
    timeoutS: 5,
    stallTimeoutS: 2,
    expectedPatterns: ["hi"],
    expectNonZeroExit: true,
    saveOutput: true,
  });
});

Deno.test("parseSuite() normalizes a concurrent task", () => {
  const task = onlyTask(seed({
    id: "concurrent_1",
    concurrent_instances: 4,
    models: ["sonnet", "haiku"],
    temperature_range: [0.5, 1.2],
    evaluation_criteria: "CONSENSUS",
  }, "concurrent_execution"));
  assert.deepEqual(task.concurrent, {
    instances: 4,
    models: ["sonnet", "haiku"],
    temperatureRange: [0.5, 1.2],
    criteria: "CONSENSUS",
  });
});

Deno.test("a concurrent_execution task without concurrent_instances is a plain task", () => {
  const task = onlyTask(seed({ id: "concurrent_1" }, "concurrent_execution"));
  assert.equal(task.concurrent, undefined);
});

Deno.test("timeouts come from the task, else the category, else defaults, else 120 s", () => {
  const suite = parseSuite({
    defaults: { timeout: 50, stall_timeout: 5 },
    categories: {
      a: {
        timeout: 70,
        tests: [
          { id: "own", command: "true", timeout: 90 },
          { id: "category", command: "true" },
        ],
      },
      b: { tests: [{ id: "defaults", command: "true" }] },
      c: { stall_timeout: 7, tasks: [{ id: "seed", natural_language_request: "What is 1?" }] },
    },
  }, "inline");
  const by = Object.fromEntries(suite.tasks.map((t) => [t.id, [t.timeoutS, t.stallTimeoutS]]));
  assert.deepEqual(by, {
    own: [90, 5],
    category: [70, 5],
    defaults: [50, 5],
    seed: [50, 7],
  });
  const bare = onlyTask({ tests: [{ id: "x", command: "true" }] });
  assert.equal(bare.timeoutS, DEFAULT_TIMEOUT_S);
  assert.equal(bare.stallTimeoutS, undefined);
});

Deno.test("expectNonZeroExit is true for a failure_ id unless the task says otherwise", () => {
  assert.equal(onlyTask(upstream({ id: "failure_x" })).expectNonZeroExit, true);
  assert.equal(
    onlyTask(upstream({ id: "failure_x", expect_non_zero_exit: false })).expectNonZeroExit,
    false,
  );
  assert.equal(
    onlyTask(seed({ id: "failure_y", verification: { timeout: 5 } })).expectNonZeroExit,
    true,
  );
  assert.equal(onlyTask(upstream({ id: "fail_z" })).expectNonZeroExit, false);
});

Deno.test("parseSuite() fills defaults: name from id, empty patterns, output saved", () => {
  const task = onlyTask({ categories: { x: { tests: [{ id: "t", command: "true" }] } } });
  assert.equal(task.name, "t");
  assert.deepEqual(task.expectedPatterns, []);
  assert.equal(task.saveOutput, true);
});

Deno.test("parseSuite() accepts an empty expected_patterns list", () => {
  assert.deepEqual(onlyTask(upstream({ expected_patterns: [] })).expectedPatterns, []);
  const t = onlyTask(seed({ verification: { timeout: 10, expected_patterns: [] } }));
  assert.deepEqual(t.expectedPatterns, []);
});

Deno.test("parseSuite() reads top-level name, description, version and a top-level tests[]", () => {
  const suite = parseSuite(
    {
      name: "smoke",
      description: "d",
      version: 2,
      tests: [{ id: "t", command: "true" }],
    },
    "dir/whatever.json",
    { claude: "/opt/claude" },
  );
  assert.equal(suite.name, "smoke");
  assert.equal(suite.description, "d");
  assert.equal(suite.version, "2");
  assert.equal(suite.claude, "/opt/claude");
  assert.equal(suite.tasks[0].category, "tests");
  assert.equal(
    parseSuite({ tests: [{ id: "t", command: "true" }] }, "dir/quick.json").name,
    "quick",
  );
});

Deno.test("parseSuite() accepts the seed's own root keys and $schema", () => {
  const suite = parseSuite({
    $schema: "./suite.schema.json",
    task_list_id: "UNIFIED",
    execution_config: { base_url: "http://x" },
    categories: {
      simple: {
        description: "d",
        tasks: [{
          id: "simple_1",
          natural_language_request: "What is 2+2?",
          verification: { timeout: 30, expected_patterns: ["4"] },
        }],
      },
    },
  }, "inline");
  assert.equal(suite.tasks.length, 1);
  assert.deepEqual(suite.warnings, []);
});

Deno.test("parseSuite() refuses misspelled keys, naming the path and the likely key", () => {
  const problems = problemsOf({
    categories: {
      simple: {
        whatever: [1, 2],
        tasks: [{
          id: "simple_1",
          natural_language_request: "What is 2+2?",
          verification: { timout: 5, expected_pattern: ["hi"] },
        }],
      },
    },
    tests: [{ id: "t", command: "true", expected_patterns: ["x"], timout: 5 }],
  });
  const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
  assert.match(byPath["categories.simple.whatever"], /^unknown key "whatever"$/);
  assert.match(
    byPath["categories.simple.tasks[0].verification.timout"],
    /unknown key "timout" \(did you mean "timeout"\?\)/,
  );
  assert.match(
    byPath["categories.simple.tasks[0].verification.expected_pattern"],
    /\(did you mean "expected_patterns"\?\)/,
  );
  assert.match(byPath["tests[0].timout"], /did you mean "timeout"/);
});

Deno.test("parseSuite() warns about a task that checks nothing but its exit code", () => {
  const suite = parseSuite({
    tests: [
      { id: "nothing", command: "true" },
      { id: "failure_x", command: "false" },
      { id: "ok", command: "echo hi", expected_patterns: ["hi"] },
    ],
  }, "inline");
  assert.deepEqual(suite.warnings?.map((w) => w.path), ["tests[0]"]);
  assert.match(suite.warnings![0].message, /"nothing" checks nothing but exit code 0/);
});

Deno.test("parseSuite() does not say a task with expected_files checks nothing but its exit code", () => {
  const suite = parseSuite({
    tests: [{ id: "writes", command: "echo x > a.txt", expected_files: [{ path: "a.txt" }] }],
  }, "inline");
  assert.deepEqual(suite.warnings ?? [], []);
});

Deno.test("parseSuite() refuses a regex: pattern that does not compile", () => {
  const problems = problemsOf({
    tests: [{ id: "r", command: "true", expected_patterns: ["regex:(a"] }],
  });
  assert.equal(problems[0].path, "tests[0].expected_patterns[0]");
  assert.match(problems[0].message, /invalid regular expression/);
});

Deno.test("parseSuite() keeps categories and tasks in file order", () => {
  const suite = parseSuite({
    categories: {
      b: { tests: [{ id: "b1", command: "true" }, { id: "b2", command: "true" }] },
      a: { tasks: [{ id: "a1", natural_language_request: "What is 1?" }] },
    },
  }, "inline");
  assert.deepEqual(suite.tasks.map((t) => t.id), ["b1", "b2", "a1"]);
});

// ---------------------------------------------------------------------------------------------
// validation

Deno.test("the task timeout must be a number: the exact path and message", () => {
  const problems = problemsOf({
    categories: {
      simple: {
        tasks: [
          { id: "a", natural_language_request: "What is 1?" },
          { id: "b", natural_language_request: "What is 1?" },
          { id: "c", natural_language_request: "What is 1?", verification: { timeout: "60" } },
        ],
      },
    },
  });
  assert.deepEqual(problems, [{
    path: "categories.simple.tasks[2].verification.timeout",
    message: 'expected a number, got "60"',
  }]);
});

Deno.test("every problem is collected and listed in the error message", () => {
  let error: SuiteError | undefined;
  try {
    parseSuite({
      version: [],
      categories: {
        simple: {
          tasks: [
            { natural_language_request: 3 },
            { id: "x", natural_language_request: "q", verification: { stall_timeout: -1 } },
          ],
        },
        other: { tests: [{ id: "x", command: 7 }] },
      },
    }, "suite.json");
  } catch (e) {
    if (e instanceof SuiteError) error = e;
  }
  assert.ok(error);
  assert.equal(error.source, "suite.json");
  assert.deepEqual(error.problems.map((p) => p.path), [
    "version",
    "categories.simple.tasks[0].id",
    "categories.simple.tasks[0].natural_language_request",
    "categories.simple.tasks[1].verification.stall_timeout",
    "categories.other.tests[0].command",
    "categories.other.tests[0].id",
  ]);
  assert.match(error.message, /^invalid suite suite\.json: 6 problems\n/);
  for (const p of error.problems) assert.ok(error.message.includes(`  ${p.path}: ${p.message}`));
});

Deno.test("the document must be an object with categories (or tests)", () => {
  assertProblem([], "$", "expected an object, got an array");
  assertProblem("x", "$", 'expected an object, got "x"');
  assertProblem({}, "categories", /^required/);
  assertProblem({ categories: [] }, "categories", "expected an object, got an array");
  assertProblem({ categories: {} }, "categories", "the suite defines no tasks");
  assertProblem({ categories: { a: { tasks: [] } } }, "categories", "the suite defines no tasks");
  assertProblem({ tests: [] }, "tests", "the suite defines no tasks");
  assertProblem({ tests: {} }, "tests", "expected an array, got an object");
});

Deno.test("top-level name, description, version and defaults are type-checked", () => {
  const ok = { tests: [{ id: "t", command: "true" }] };
  assertProblem({ ...ok, name: 1 }, "name", "expected a string, got 1");
  assertProblem({ ...ok, description: false }, "description", "expected a string, got false");
  assertProblem({ ...ok, version: null }, "version", /expected a string or a number, got null/);
  assertProblem({ ...ok, defaults: 5 }, "defaults", "expected an object, got 5");
  assertProblem({ ...ok, defaults: { timeout: "1" } }, "defaults.timeout", /expected a number/);
  assertProblem(
    { ...ok, defaults: { stall_timeout: 0 } },
    "defaults.stall_timeout",
    "expected a positive number of seconds, got 0",
  );
});

Deno.test("a category must be an object with a tasks[] or tests[] array", () => {
  assertProblem({ categories: { a: 1 } }, "categories.a", "expected an object, got 1");
  assertProblem({ categories: { a: {} } }, "categories.a", /"tasks" array .* or a "tests" array/);
  assertProblem({ categories: { a: { tasks: {} } } }, "categories.a.tasks", /expected an array/);
  assertProblem({ categories: { a: { tests: "x" } } }, "categories.a.tests", /expected an array/);
  assertProblem(
    { categories: { a: { timeout: "x", tests: [{ id: "t", command: "true" }] } } },
    "categories.a.timeout",
    'expected a number, got "x"',
  );
  assertProblem(
    { categories: { "odd name": { tasks: [5] } } },
    'categories["odd name"].tasks[0]',
    "expected an object, got 5",
  );
});

Deno.test("ids are required strings of safe characters", () => {
  assertProblem(seed({ id: undefined }), "categories.simple.tasks[0].id", "required");
  assertProblem(seed({ id: 1 }), "categories.simple.tasks[0].id", "expected a string, got 1");
  assertProblem(
    seed({ id: "" }),
    "categories.simple.tasks[0].id",
    'expected a non-empty string, got ""',
  );
  assertProblem(seed({ id: "a/b" }), "categories.simple.tasks[0].id", /"a\/b" is not a valid id/);
  assertProblem(upstream({ id: undefined }), "categories.simple.tests[0].id", "required");
});

Deno.test("duplicate ids are refused, naming both places", () => {
  const problems = problemsOf({
    categories: {
      a: { tests: [{ id: "t1", command: "true" }] },
      b: {
        tasks: [
          { id: "t2", natural_language_request: "q" },
          { id: "t1", natural_language_request: "q" },
        ],
      },
    },
  });
  assert.deepEqual(problems, [{
    path: "categories.b.tasks[1].id",
    message: 'duplicate id "t1" (first defined at categories.a.tests[0].id)',
  }]);
});

Deno.test("seed task fields are type-checked", () => {
  const at = "categories.simple.tasks[0]";
  assertProblem(seed({ name: 3 }), `${at}.name`, "expected a string, got 3");
  assertProblem(
    seed({ natural_language_request: 3 }),
    `${at}.natural_language_request`,
    "expected a string, got 3",
  );
  assertProblem(seed({ metatags: ["a"] }), `${at}.metatags`, "expected a string, got an array");
  assertProblem(
    seed({ command_template: 5 }),
    `${at}.command_template`,
    "expected a string, got 5",
  );
  assertProblem(seed({ command_template: "  " }), `${at}.command_template`, /non-empty/);
  assertProblem(seed({ verification: [] }), `${at}.verification`, /expected an object/);
  assertProblem(
    seed({ verification: { timeout: -5 } }),
    `${at}.verification.timeout`,
    "expected a positive number of seconds, got -5",
  );
  assertProblem(
    seed({ verification: { stall_timeout: "10" } }),
    `${at}.verification.stall_timeout`,
    'expected a number, got "10"',
  );
  assertProblem(
    seed({ verification: { expected_patterns: "4" } }),
    `${at}.verification.expected_patterns`,
    'expected an array of strings, got "4"',
  );
  assertProblem(
    seed({ verification: { expected_patterns: ["4", 4] } }),
    `${at}.verification.expected_patterns[1]`,
    "expected a string, got 4",
  );
  assertProblem(
    seed({ verification: { expected_patterns: [""] } }),
    `${at}.verification.expected_patterns[0]`,
    'expected a non-empty string, got ""',
  );
  assertProblem(
    seed({ verification: { marker: 5 } }),
    `${at}.verification.marker`,
    "expected a string or a boolean, got 5",
  );
  assertProblem(
    seed({ verification: { expect_non_zero_exit: "yes" } }),
    `${at}.verification.expect_non_zero_exit`,
    'expected true or false, got "yes"',
  );
  assertProblem(
    seed({ verification: { save_output: 1 } }),
    `${at}.verification.save_output`,
    "expected true or false, got 1",
  );
});

Deno.test("a seed task needs a request unless its template does without one", () => {
  const at = "categories.simple.tasks[0].natural_language_request";
  assertProblem(
    seed({ natural_language_request: undefined }),
    at,
    "required when there is no command_template",
  );
  assertProblem(
    seed({ natural_language_request: undefined, command_template: 'claude -p "${REQUEST}"' }),
    at,
    "required: the command_template uses ${REQUEST}",
  );
  const t = onlyTask(seed({
    natural_language_request: undefined,
    command_template: 'claude --nonexistent-flag "this will fail"',
  }));
  assert.equal(t.request, undefined);
});

Deno.test("requests and metatags may not contain NUL", () => {
  assertProblem(
    seed({ natural_language_request: "a\0b" }),
    "categories.simple.tasks[0].natural_language_request",
    /NUL/,
  );
  assertProblem(seed({ metatags: "\0" }), "categories.simple.tasks[0].metatags", /NUL/);
});

Deno.test("unknown ${VAR} placeholders in a command_template are refused", () => {
  const at = "categories.simple.tasks[0].command_template";
  assertProblem(
    seed({ command_template: 'claude -p "${REQUEST} ${PROMPT}"' }),
    at,
    "unknown placeholder ${PROMPT}; known: ${METATAGS} ${REQUEST} ${TIMESTAMP} ${MARKER} " +
      "${TEMPERATURE} ${MODEL}",
  );
  assertProblem(
    seed({ command_template: 'claude -p "${request}"', natural_language_request: "q" }),
    at,
    /^unknown placeholder \$\{request\} \(did you mean \$\{REQUEST\}\?\)/,
  );
  // An escaped placeholder is literal text for the shell, not a placeholder.
  onlyTask(seed({ command_template: 'echo "\\${PROMPT}"' }));
});

Deno.test("an upstream command may use shell variables of its own", () => {
  const t = onlyTask(upstream({ command: 'echo "${HOME}" "${MARKER}"' }));
  assert.equal(t.template, 'echo "${HOME}" "${MARKER}"');
});

Deno.test("markers may use ${TIMESTAMP} only", () => {
  assertProblem(
    seed({ verification: { marker: "M_${DATE}" } }),
    "categories.simple.tasks[0].verification.marker",
    "unknown placeholder ${DATE}; a marker may use ${TIMESTAMP}",
  );
  assert.equal(onlyTask(seed({ verification: { marker: true } })).marker, true);
});

Deno.test("upstream test fields are type-checked", () => {
  const at = "categories.simple.tests[0]";
  assertProblem(upstream({ command: undefined }), `${at}.command`, "required");
  assertProblem(
    upstream({ command: ["echo"] }),
    `${at}.command`,
    /expected a string, got an array/,
  );
  assertProblem(upstream({ command: "" }), `${at}.command`, /non-empty/);
  assertProblem(upstream({ timeout: "5" }), `${at}.timeout`, 'expected a number, got "5"');
  assertProblem(upstream({ stall_timeout: {} }), `${at}.stall_timeout`, /got an object/);
  assertProblem(upstream({ expected_patterns: [null] }), `${at}.expected_patterns[0]`, /got null/);
  assertProblem(
    upstream({ expect_non_zero_exit: 1 }),
    `${at}.expect_non_zero_exit`,
    /true or false/,
  );
});

Deno.test("concurrent_instances must be a positive integer", () => {
  const at = "categories.concurrent_execution.tasks[0].concurrent_instances";
  for (const bad of [0, -1, 1.5, "3", null]) {
    assertProblem(
      seed({ concurrent_instances: bad, evaluation_criteria: "FASTEST" }, "concurrent_execution"),
      at,
      /^expected a positive integer, got /,
    );
  }
  assertProblem(
    seed({ models: ["haiku"], evaluation_criteria: "FASTEST" }, "concurrent_execution"),
    at,
    "required when models, evaluation_criteria are given",
  );
});

Deno.test("evaluation_criteria must be one of the six, listed in the message", () => {
  const at = "categories.concurrent_execution.tasks[0].evaluation_criteria";
  assertProblem(
    seed({ concurrent_instances: 2, evaluation_criteria: "SMARTEST" }, "concurrent_execution"),
    at,
    'unknown criterion "SMARTEST"; expected one of FASTEST, MOST_DETAILED, HIGHEST_MODEL_TEMP, ' +
      "PATTERN_MATCH, CONSENSUS, BEST_CODE_QUALITY",
  );
  assertProblem(
    seed({ concurrent_instances: 2 }, "concurrent_execution"),
    at,
    /^required for a concurrent task: one of FASTEST, /,
  );
  assert.ok(EVALUATION_CRITERIA.every(isEvaluationCriterion));
  assert.equal(isEvaluationCriterion("fastest"), false);
});

Deno.test("models and temperature_range are checked", () => {
  const base = { concurrent_instances: 2, evaluation_criteria: "FASTEST" };
  const at = "categories.concurrent_execution.tasks[0]";
  const c = (extra: Record<string, unknown>) => seed({ ...base, ...extra }, "concurrent_execution");
  assertProblem(c({ models: "haiku" }), `${at}.models`, /expected an array of strings/);
  assertProblem(c({ models: [] }), `${at}.models`, /at least one model/);
  assertProblem(c({ models: ["haiku", 3] }), `${at}.models[1]`, "expected a string, got 3");
  assertProblem(c({ temperature_range: 0.5 }), `${at}.temperature_range`, /expected \[low, high\]/);
  assertProblem(
    c({ temperature_range: [0.1, 0.2, 0.3] }),
    `${at}.temperature_range`,
    "expected [low, high], got an array of 3",
  );
  assertProblem(
    c({ temperature_range: [0.1, "hot"] }),
    `${at}.temperature_range[1]`,
    'expected a number, got "hot"',
  );
  assertProblem(c({ temperature_range: [-1, 1] }), `${at}.temperature_range[0]`, /0 or more/);
  assertProblem(
    c({ temperature_range: [1.2, 0.5] }),
    `${at}.temperature_range`,
    "low 1.2 is above high 0.5",
  );
});

Deno.test("loadSuite() reports invalid JSON with its line and column", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_suite_test_" });
  try {
    const path = `${dir}/bad.json`;
    await Deno.writeTextFile(path, '{\n  "categories": {\n    "a" []\n  }\n}\n');
    const e = await loadSuite(path).then(() => undefined, (e) => e);
    assert.ok(e instanceof SuiteError);
    assert.equal(e.problems.length, 1);
    assert.equal(e.problems[0].path, "$");
    assert.match(e.problems[0].message, /^not valid JSON: .*line 3 column 9/);

    await Deno.writeTextFile(path, '{"tests": [');
    const end = await loadSuite(path).then(() => undefined, (e) => e);
    assert.ok(end instanceof SuiteError);
    assert.match(end.problems[0].message, /^not valid JSON: .*\(line 1 column 12\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSuite() reports a missing file as a SuiteError", async () => {
  const e = await loadSuite("/nonexistent/ccx/suite.json").then(() => undefined, (e) => e);
  assert.ok(e instanceof SuiteError);
  assert.equal(e.problems[0].path, "$");
  assert.match(e.problems[0].message, /^cannot read the file: /);
});

Deno.test("loadSuite() accepts a UTF-8 byte order mark", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_suite_test_" });
  try {
    await Deno.writeTextFile(`${dir}/bom.json`, '\ufeff{"tests":[{"id":"t","command":"true"}]}');
    assert.equal((await loadSuite(`${dir}/bom.json`)).tasks.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("expected_files and workspace_template are refused with their JSON paths when malformed", () => {
  const test = (extra: Record<string, unknown>) => ({
    tests: [{ id: "t", command: "true", ...extra }],
  });
  assertProblem(test({ expected_files: "a.py" }), "tests[0].expected_files", /expected an array/);
  assertProblem(
    test({ expected_files: [{ contains: "x" }] }),
    "tests[0].expected_files[0].path",
    "required",
  );
  assertProblem(
    test({ expected_files: [{ path: "../etc/passwd" }] }),
    "tests[0].expected_files[0].path",
    /without ".."/,
  );
  assertProblem(
    test({ expected_files: [{ path: "/etc/passwd" }] }),
    "tests[0].expected_files[0].path",
    /relative/,
  );
  assertProblem(
    test({ expected_files: [{ path: "a", contans: "x" }] }),
    "tests[0].expected_files[0].contans",
    /did you mean "contains"/,
  );
  assertProblem(test({ workspace_template: "" }), "tests[0].workspace_template", /directory path/);
  assertProblem(
    test({ workspace_template: 3 }),
    "tests[0].workspace_template",
    /expected a string/,
  );
});

Deno.test("graders: a bad check, rubric, check_timeout or check_files is refused with its path", () => {
  const problems = problemsOf({
    check_files: "no/such/dir/anywhere",
    categories: {
      c: {
        tasks: [
          { id: "a", natural_language_request: "x", verification: { check: [] } },
          { id: "b", natural_language_request: "x", verification: { check: "true", rubric: 5 } },
          { id: "c", natural_language_request: "x", verification: { check_timeout: 5 } },
          {
            id: "d",
            natural_language_request: "x",
            verification: { check: ["true", ""], check_timeout: -1 },
          },
        ],
        tests: [{ id: "e", command: "true", check_files: "tests", rubric: [] }],
      },
    },
  });
  const at = (path: string) => problems.find((p) => p.path === path)?.message;
  assert.match(at("check_files") ?? "", /expected a directory, got "no\/such\/dir\/anywhere"/);
  assert.match(
    at("categories.c.tasks[0].verification.check") ?? "",
    /expected at least one command, got an empty array/,
  );
  assert.match(at("categories.c.tasks[1].verification.rubric") ?? "", /expected a string or/);
  assert.match(at("categories.c.tasks[2].verification.check_timeout") ?? "", /without a check/);
  assert.match(at("categories.c.tasks[3].verification.check[1]") ?? "", /non-empty command/);
  assert.match(at("categories.c.tasks[3].verification.check_timeout") ?? "", /positive number/);
  assert.match(at("categories.c.tests[0].check_files") ?? "", /without a check/);
  assert.match(at("categories.c.tests[0].rubric") ?? "", /at least one statement/);
});

Deno.test("graders: a task with only a check or a rubric is not warned about checking nothing", () => {
  const s = parseSuite({
    tests: [
      { id: "a", command: "true", check: "true" },
      { id: "b", command: "true", rubric: "it is fine" },
      { id: "c", command: "true" },
    ],
  }, "inline");
  assert.deepEqual(s.warnings?.map((w) => w.path), ["tests[2]"]);
});

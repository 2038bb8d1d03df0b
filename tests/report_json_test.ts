import assert from "node:assert/strict";
import { fromJson, toJson } from "../lib/stress/report/json.ts";
import { many, modelSaid, result, run } from "./_util/report.ts";

Deno.test("toJson() has the documented snake_case shape", () => {
  const concurrent = result("concurrent_1", "passed", {
    category: "concurrent_execution",
    outputFile: "out/concurrent_1.txt",
    attempts: 2,
    exitCode: 0,
    filesCreated: ["config.py"],
    workspace: "/srv/ws/1/work",
    instances: [
      {
        index: 0,
        model: "sonnet",
        temperature: 0.7,
        status: "passed",
        reason: "ok",
        durationS: 2.00049,
        exitCode: 0,
        picked: true,
        score: 0.9,
        outputFile: "out/c1_0.txt",
      },
      {
        index: 1,
        status: "failed",
        reason: "timeout",
        durationS: 3,
        exitCode: null,
        picked: false,
      },
    ],
  });
  const j = JSON.parse(toJson(run([result("simple_1", "failed"), concurrent])));
  assert.deepEqual(Object.keys(j), [
    "run_id",
    "suite",
    "started_at",
    "duration_s",
    "interrupted",
    "threshold",
    "repeat",
    "run",
    "summary",
    "repeats",
    "comparison",
    "categories",
    "errors_by_kind",
    "tests",
  ]);
  assert.equal(j.run_id, "run-42");
  assert.equal(j.started_at, "2025-01-02T03:04:05.678Z");
  assert.equal(j.duration_s, 12.346);
  assert.equal(j.interrupted, false);
  assert.deepEqual(j.summary, {
    total: 2,
    passed: 1,
    failed: 1,
    errors: 0,
    skipped: 0,
    ratio: 1,
    graduated: false,
    cost_usd: null,
    tokens: null,
    pass_at_1: null,
    flaky: [],
  });
  assert.deepEqual(j.run, {
    ccx_version: null,
    host: null,
    command_line: null,
    suite_hash: null,
    model: null,
    judge_model: null,
    claude_code_versions: [],
    models: [],
  });
  assert.equal(j.comparison, null);
  assert.deepEqual(j.repeats, []);
  assert.deepEqual(j.tests[0], {
    id: "simple_1",
    name: "name of simple_1",
    category: "simple",
    status: "failed",
    reason: "simple_1 went wrong",
    duration_s: 1,
    exit_code: 0,
    patterns_found: [],
    patterns_missing: ["4"],
    output_file: null,
    attempts: 1,
    answer: null,
    stderr_tail: null,
    model: null,
    turns: null,
    tokens: null,
    cost_usd: null,
    claude_code_version: null,
    request: null,
    kind: null,
    fix: null,
    started_at: j.tests[0].started_at,
    files_created: [],
    workspace: null,
    checks: [],
    rubric: null,
  });
  assert.equal(j.tests[1].attempts, 2);
  assert.equal(j.tests[1].output_file, "out/concurrent_1.txt");
  assert.deepEqual(j.tests[1].files_created, ["config.py"]);
  assert.equal(j.tests[1].workspace, "/srv/ws/1/work");
  assert.deepEqual(j.tests[1].instances, [
    {
      index: 0,
      model: "sonnet",
      temperature: 0.7,
      status: "passed",
      reason: "ok",
      duration_s: 2,
      exit_code: 0,
      picked: true,
      score: 0.9,
      output_file: "out/c1_0.txt",
    },
    {
      index: 1,
      model: null,
      temperature: null,
      status: "failed",
      reason: "timeout",
      duration_s: 3,
      exit_code: null,
      picked: false,
      score: null,
      output_file: null,
    },
  ]);
});

Deno.test("toJson() writes ratio null and graduated true when nothing failed", () => {
  const j = JSON.parse(toJson(run(many(2, "passed"), { interrupted: true })));
  assert.equal(j.summary.ratio, null);
  assert.equal(j.summary.graduated, true);
  assert.equal(j.interrupted, true);
});

Deno.test("toJson() keeps task data verbatim (JSON escaping is lossless)", () => {
  const j = JSON.parse(toJson(run([result("x", "failed", { reason: 'a\nb "q" <t>' })])));
  assert.equal(j.tests[0].reason, 'a\nb "q" <t>');
});

Deno.test("toJson() shows what the model said, why, and what it cost; categories and error kinds", () => {
  const rep = modelSaid();
  const j = JSON.parse(toJson(rep));
  assert.equal(j.tests[0].answer, "The answer is five.\nSecond line.");
  assert.equal(j.tests[0].stderr_tail, "npm warn: old\nreal problem here");
  assert.deepEqual(j.tests[0].tokens, { input: 100, output: 20, cache_read: 5, cache_creation: 1 });
  assert.equal(j.tests[0].model, "claude-haiku");
  assert.equal(j.tests[0].turns, 2);
  assert.equal(j.summary.cost_usd, 0.015);
  assert.deepEqual(j.summary.tokens, { input: 150, output: 30, cache_read: 5, cache_creation: 1 });
  assert.equal(j.summary.skipped, 1);
  assert.deepEqual(j.tests.at(-1), {
    id: "later",
    name: "later",
    category: "other",
    status: "skipped",
    reason: "--max-fail 1 reached",
  });
  assert.deepEqual(j.categories, [
    { name: "simple", total: 3, passed: 0, failed: 1, errors: 2, skipped: 0 },
    { name: "other", total: 2, passed: 1, failed: 0, errors: 0, skipped: 1 },
  ]);
  assert.deepEqual(j.errors_by_kind, [
    { kind: "not_logged_in", fix: "run claude /login", count: 2, tests: ["e1", "e2"] },
  ]);
});

Deno.test("fromJson() reads back what toJson() wrote, skipped tasks included", () => {
  const rep = run([
    result("a", "failed", {
      answer: "x",
      tokens: { input: 1, output: 2, cacheRead: 3, cacheCreation: 4 },
      costUsd: 0.5,
      kind: "k",
      fix: "f",
      outputFile: "o/a.txt",
    }),
    result("b", "passed"),
  ], { skipped: [{ id: "c", name: "c", category: "simple", reason: "interrupted" }] });
  const back = fromJson(toJson(rep));
  assert.deepEqual(back.results, rep.results);
  assert.deepEqual(back.skipped, rep.skipped);
  assert.equal(back.runId, "run-42");
  assert.throws(() => fromJson("{}"), /not a ccx stress report/);
});

Deno.test("toJson() and fromJson(): checks, rubric, what ran and repeats survive the round trip", () => {
  const graded = result("add.r1", "failed", {
    cliVersion: "2.1.197",
    model: "claude-x",
    checks: [{
      command: "sh test_add.sh",
      status: "failed",
      exitCode: 1,
      durationS: 0.25,
      stdoutTail: "AssertionError: add 2 3 gave -1",
    }],
    rubric: { status: "passed", statements: ["add adds"], reason: "it adds", durationS: 2 },
  });
  const report = run([
    graded,
    result("add.r2", "passed"),
    result("b.r1", "passed"),
    result("b.r2", "passed"),
  ], {
    repeat: 2,
    meta: {
      ccxVersion: "0.1.0",
      host: "box",
      commandLine: ["stress", "s.json", "--repeat", "2"],
      suiteHash: "sha256:abc",
      model: "claude-x",
    },
  });
  const text = toJson(report);
  const j = JSON.parse(text);
  assert.deepEqual(j.tests[0].checks, [{
    command: "sh test_add.sh",
    status: "failed",
    exit_code: 1,
    duration_s: 0.25,
    stdout_tail: "AssertionError: add 2 3 gave -1",
    stderr_tail: null,
    reason: null,
  }]);
  assert.deepEqual(j.tests[0].rubric, {
    status: "passed",
    statements: ["add adds"],
    reason: "it adds",
    model: null,
    duration_s: 2,
    cost_usd: null,
  });
  assert.deepEqual(j.run.claude_code_versions, ["2.1.197"]);
  assert.deepEqual(j.run.models, ["claude-x"]);
  assert.equal(j.run.suite_hash, "sha256:abc");
  assert.equal(j.repeat, 2);
  assert.equal(j.summary.pass_at_1, 0.75);
  assert.deepEqual(j.summary.flaky, ["add"]);
  assert.deepEqual(j.repeats, [
    { id: "add", category: "simple", runs: 2, passed: 1, flaky: true },
    { id: "b", category: "simple", runs: 2, passed: 2, flaky: false },
  ]);
  const back = fromJson(text);
  assert.deepEqual(back.results[0].checks, graded.checks);
  assert.deepEqual(back.results[0].rubric, graded.rubric);
  assert.equal(back.results[0].cliVersion, "2.1.197");
  assert.deepEqual(back.meta, report.meta);
  assert.equal(back.repeat, 2);
});

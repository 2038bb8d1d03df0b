/**
 * A suite task's graders (lib/stress/grade.ts, run through lib/exec/graders.ts): checks in the
 * workspace the task left, hidden `check_files` written in after it ended, errors that are not
 * verdicts. Plain shell tasks on a real in-process server; the Claude parts (rubric, a real
 * agent) are in graders_real_test.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunnerOptions, runTasks } from "../lib/stress/runner.ts";
import { parseSuite } from "../lib/stress/suite_load.ts";
import { withCheckFiles } from "../lib/stress/check_files.ts";
import type { TestResult } from "../lib/stress/report/model.ts";
import type { ServerOptions } from "../lib/serve/options.ts";
import { cli, FAKE_CLAUDE, serveProcess, waitFor, withServer } from "./_util/helpers.ts";
import { startCoordinator, startWorker, withFleet, work } from "./_util/fleet.ts";
import { bwrapTier, redisTier } from "./_util/tier.ts";

const bwrapIgnore = bwrapTier();
const redisIgnore = redisTier();

interface Ran {
  byId: Map<string, TestResult>;
  dir: string;
}

/** Writes `files` under a temp dir (the suite's directory), runs `suite` there, checks. */
async function runGraded(
  suite: unknown,
  files: Record<string, string>,
  check: (ran: Ran) => void | Promise<void>,
  opts: Partial<RunnerOptions> = {},
  server: Partial<ServerOptions> = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_grade_test_" });
  try {
    for (const [path, content] of Object.entries(files)) {
      await Deno.mkdir(join(dir, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(dir, path), content);
    }
    const source = join(dir, "suite.json");
    const { tasks } = parseSuite(suite, source, { claude: FAKE_CLAUDE });
    const results = await withServer(
      { graceMs: 200, ...server },
      async (s) =>
        runTasks(await withCheckFiles(tasks), {
          servers: [{ url: s.url }],
          outDir: join(dir, "out"),
          claude: FAKE_CLAUDE,
          ...opts,
        }),
    );
    await check({ byId: new Map(results.map((r) => [r.id, r])), dir });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ADD_TEST = `#!/bin/sh
# The hidden test: add.sh must print the sum of its arguments.
out=$(sh add.sh 2 3)
[ "$out" = 5 ] || { echo "AssertionError: add 2 3 gave '$out', expected 5"; exit 1; }
echo "1 passed"
`;

Deno.test("checks grade the workspace: a correct file passes a hidden test, a buggy one fails with the assertion", async () => {
  await runGraded(
    {
      check_files: "hidden",
      tests: [
        {
          id: "right",
          command: `echo 'echo $(($1 + $2))' > add.sh; echo Created add.sh`,
          check: "sh test_add.sh",
        },
        {
          id: "wrong",
          command: `echo 'echo $(($1 - $2))' > add.sh; echo Created add.sh`,
          expected_patterns: ["Created add.sh"],
          check: "sh test_add.sh",
        },
        {
          // The agent writes its own trivial test of the same name: the hidden one replaces it.
          id: "own_test",
          command: `echo 'echo $(($1 - $2))' > add.sh; echo 'echo ok' > test_add.sh`,
          check: "sh test_add.sh",
        },
        {
          // The hidden files are not there while the task runs.
          id: "no_peeking",
          command: `ls; test ! -e test_add.sh && echo 'echo $(($1 + $2))' > add.sh`,
          check: ["sh test_add.sh", "test -s add.sh"],
        },
      ],
    },
    { "hidden/test_add.sh": ADD_TEST },
    ({ byId }) => {
      const right = byId.get("right")!;
      assert.equal(right.status, "passed", right.reason);
      assert.match(right.reason, /1\/1 checks/);
      assert.equal(right.checks?.[0].status, "passed");
      assert.equal(right.checks?.[0].exitCode, 0);
      assert.match(right.checks?.[0].stdoutTail ?? "", /1 passed/);
      const wrong = byId.get("wrong")!;
      assert.equal(wrong.status, "failed");
      assert.deepEqual(wrong.patternsFound, ["Created add.sh"], "what it said was right");
      assert.match(
        wrong.reason,
        /check "sh test_add.sh" exited 1: AssertionError: add 2 3 gave '-1'/,
      );
      assert.equal(wrong.checks?.[0].exitCode, 1);
      assert.ok(wrong.workspace, "the failed check kept the workspace (keep failed)");
      assert.equal(byId.get("own_test")?.status, "failed", "the agent's own test was replaced");
      const peek = byId.get("no_peeking")!;
      assert.equal(peek.status, "passed", peek.reason);
      assert.deepEqual(peek.checks?.map((c) => c.status), ["passed", "passed"]);
    },
  );
});

Deno.test("errors are not verdicts: a failed run skips its checks; a check that times out or cannot start is an error", async () => {
  const marker = join(Deno.makeTempDirSync(), "check-ran");
  await runGraded(
    {
      tests: [
        {
          // The task's own run timed out: an error, and its check never runs.
          id: "run_timeout",
          command: "sleep 5",
          timeout: 0.5,
          check: `touch ${marker}`,
        },
        { id: "check_timeout", command: "true", check: "sleep 5", check_timeout: 0.5 },
        {
          id: "two_checks",
          command: "true",
          check: ["sleep 5", `touch ${marker}`],
          check_timeout: 0.5,
        },
        { id: "check_missing", command: "true", check: "no-such-program-ccx" },
      ],
    },
    {},
    ({ byId }) => {
      const run = byId.get("run_timeout")!;
      assert.equal(run.status, "error");
      assert.equal(run.checks, undefined);
      const to = byId.get("check_timeout")!;
      assert.equal(to.status, "error");
      assert.match(to.reason, /check "sleep 5" timed out after 0\.5 s/);
      const two = byId.get("two_checks")!;
      assert.equal(two.checks?.length, 1, "the checks stop at the first that errs");
      assert.throws(() => Deno.statSync(marker), "no check of a failed run or after an error ran");
      // `sh -c` reports a missing program as exit 127: the code under test did not provide it,
      // which is a failed check.
      const missing = byId.get("check_missing")!;
      assert.equal(missing.status, "failed");
      assert.equal(missing.checks?.[0].exitCode, 127);
    },
  );
});

Deno.test("a check cannot start without the task's workspace: hidden files with --no-workspace are an error", async () => {
  await runGraded(
    { check_files: "hidden", tests: [{ id: "t", command: "true", check: "sh test_add.sh" }] },
    { "hidden/test_add.sh": ADD_TEST },
    ({ byId }) => {
      const t = byId.get("t")!;
      assert.equal(t.status, "error");
      assert.match(t.reason, /could not start: check_files need the task to run in a workspace/);
    },
    { workspace: false },
  );
});

Deno.test("checks run under --isolate bwrap, confined to the task's workspace", {
  ignore: bwrapIgnore,
}, async () => {
  await runGraded(
    {
      check_files: "hidden",
      tests: [
        { id: "right", command: `echo 'echo $(($1 + $2))' > add.sh`, check: "sh test_add.sh" },
        {
          id: "confined",
          command: "true",
          // The check runs in the sandbox (its own PID namespace, bwrap as PID 1), in its
          // workspace, and cannot write outside it.
          check: 'test -e test_add.sh && [ "$(cat /proc/1/comm)" = bwrap ] && ' +
            "! touch /usr/ccx_grade_test 2>/dev/null && touch written_here",
        },
      ],
    },
    { "hidden/test_add.sh": ADD_TEST },
    ({ byId }) => {
      assert.equal(byId.get("right")?.status, "passed", byId.get("right")?.reason);
      assert.equal(byId.get("confined")?.status, "passed", JSON.stringify(byId.get("confined")));
    },
    {},
    { isolate: "bwrap" },
  );
});

Deno.test("a check's job is named after the task it grades: its label and meta, grader check", async () => {
  const started: Record<string, unknown>[] = [];
  await runGraded(
    { tests: [{ id: "t1", name: "adds", command: "true", check: ["true", "test -d ."] }] },
    {},
    ({ byId }) => assert.equal(byId.get("t1")?.status, "passed", byId.get("t1")?.reason),
    { jobMeta: { suite: "graded", run_id: "r1" } },
    {
      log: (_msg, fields) => {
        if (fields?.event === "job_started") started.push(fields as Record<string, unknown>);
      },
    },
  );
  assert.deepEqual(started.map((f) => f.label), [
    "t1 · adds",
    "t1 · adds · check: true",
    "t1 · adds · check: test -d .",
  ]);
  const meta = started.map((f) => f.meta as Record<string, unknown>);
  assert.equal(meta[0].grader, undefined);
  for (const m of meta.slice(1)) {
    assert.equal(m.grader, "check");
    assert.equal(m.result_id, "t1");
    assert.equal(m.run_id, "r1");
  }
});

Deno.test("a rubric's judge is the Claude CLI: a suite of shell tasks with a rubric needs it before any task runs", async () => {
  const w = await work();
  try {
    const suite = await w.suite({
      tests: [{ id: "says_hi", command: "echo hi", rubric: "The answer greets." }],
    });
    const r = await cli([
      "stress",
      suite,
      "--claude",
      w.path("no-such-claude"),
      "--no-history",
      "--out",
      w.path("out"),
    ]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /cannot run: .*no-such-claude/);
    assert.match(r.stderr, /nothing was run \(exit 3\)/);
  } finally {
    await w.cleanup();
  }
});

/** A suite (beside its hidden test) of a right and a wrong add.sh, graded by the hidden test. */
function addSuite(): unknown {
  return {
    check_files: "hidden",
    tests: [
      { id: "right", command: `echo 'echo $(($1 + $2))' > add.sh`, check: "sh test_add.sh" },
      { id: "wrong", command: `echo 'echo $(($1 - $2))' > add.sh`, check: "sh test_add.sh" },
    ],
  };
}

/** Reads the tests of a JSON report by id. */
async function testsById(path: string): Promise<Map<string, Record<string, unknown>>> {
  const j = JSON.parse(await Deno.readTextFile(path));
  return new Map(j.tests.map((t: { id: string }) => [t.id, t]));
}

Deno.test("checks through --server: the client ships the hidden files, the remote server writes them into the task's workspace", async () => {
  const w = await work();
  const srv = await serveProcess(["--workspace-root", w.path("ws")], {}, { cwd: "/" });
  try {
    await Deno.mkdir(w.path("hidden"));
    await Deno.writeTextFile(w.path("hidden/test_add.sh"), ADD_TEST);
    const suite = await w.suite(addSuite());
    const r = await cli([
      "stress",
      suite,
      "--server",
      srv.url,
      "--no-history",
      "--out",
      w.path("out"),
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const byId = await testsById(w.path("out/report.json"));
    assert.equal(byId.get("right")?.status, "passed", JSON.stringify(byId.get("right")));
    assert.equal(byId.get("wrong")?.status, "failed");
    assert.match(String(byId.get("wrong")?.reason), /AssertionError: add 2 3 gave '-1'/);
    // The console line of the failed task shows the check and what it printed.
    assert.match(
      r.stdout,
      /check "sh test_add\.sh": FAIL, exit 1, .*\n {4}\| AssertionError: add 2 3 gave '-1'/,
    );
    // The workspace the failed check kept is on the server's disk, with the hidden test in it.
    const ws = String(byId.get("wrong")?.workspace);
    assert.ok(ws.startsWith(w.path("ws")), ws);
    assert.equal(await Deno.readTextFile(join(ws, "test_add.sh")), ADD_TEST);
  } finally {
    await srv.stop();
    await w.cleanup();
  }
});

Deno.test({
  name: "checks through a ccx worker: the hidden files travel with the task in the queue",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, workers }) => {
      await Deno.mkdir(w.path("hidden"));
      await Deno.writeTextFile(w.path("hidden/test_add.sh"), ADD_TEST);
      const suite = await w.suite(addSuite());
      const json = w.path("report.json");
      const coord = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
      await waitFor(
        () => coord.out().includes("no worker takes tasks"),
        "the tasks on the queue",
        60_000,
      );
      // Once the tasks are queued the directory is gone: the worker cannot have read it.
      await Deno.rename(w.path("hidden"), w.path("hidden.gone"));
      workers.push(await startWorker(redis.url, "grader"));
      assert.equal(await coord.code, 1, coord.out());
      const byId = await testsById(json);
      assert.equal(byId.get("right")?.status, "passed", JSON.stringify(byId.get("right")));
      assert.equal(byId.get("right")?.worker, "grader");
      assert.equal(byId.get("wrong")?.status, "failed");
      const checks = byId.get("wrong")?.checks as { exit_code: number; stdout_tail: string }[];
      assert.equal(checks[0].exit_code, 1);
      assert.match(checks[0].stdout_tail, /AssertionError: add 2 3 gave '-1'/);
    }),
});

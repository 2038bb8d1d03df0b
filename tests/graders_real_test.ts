/**
 * The real-CLI tier of the graders: `ccx stress` and `ccx exec` run the real Claude Code CLI (the
 * pinned `@anthropic-ai/claude-code` of real_claude.ts) against `ccx mock-api`, and grade what it
 * did: hidden tests in the workspace it left, checks, and a rubric the CLI itself judges (the mock
 * answering the judge's prompt). Only the model is mocked.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { mockApiEnv, MockApiServer } from "../lib/claude/mock_api/server.ts";
import { parseMockScript } from "../lib/claude/mock_api/script.ts";
import { execTask } from "../lib/exec/exec.ts";
import { cli, ROOT } from "./_util/helpers.ts";
import { claudeTier } from "./_util/real_claude.ts";

const real = await claudeTier();
const CLAUDE = real ?? "claude";
const ignore = real === undefined;

/** A temp dir (also the CLI's HOME) and a mock with `script`, both gone afterwards. */
async function withMock<T>(
  fn: (api: MockApiServer, dir: string) => Promise<T>,
  script?: unknown,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_graders_real_" });
  const api = MockApiServer.start(script ? { script: parseMockScript(script) } : {});
  try {
    return await fn(api, dir);
  } finally {
    await api.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The hidden test: `add.sh A B` must print A + B. */
const HIDDEN_TEST = `out=$(sh add.sh 2 3)
[ "$out" = 5 ] || { echo "AssertionError: add.sh 2 3 printed '$out', expected 5"; exit 1; }
echo "1 passed"
`;

const write = (body: string) => `[[mock:write:add.sh=${body}]]`;
const PLUS = write("echo $(($1 + $2))");
const MINUS = write("echo $(($1 - $2))");

Deno.test({
  name:
    "real CLI + ccx stress: hidden tests grade the workspace; a 401 is an error whose check never runs; a rubric judged by the CLI passes, fails, or has no verdict",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      await Deno.mkdir(join(dir, "hidden"));
      await Deno.writeTextFile(join(dir, "hidden", "test_add.sh"), HIDDEN_TEST);
      const ranCheck = join(dir, "the-check-ran");
      const task = (id: string, request: string, verification: Record<string, unknown>) => ({
        id,
        natural_language_request: request,
        verification: { marker: false, ...verification },
      });
      const check = { check: "sh test_add.sh" };
      const rubric = { rubric: "The answer says that 2 + 2 is 4" };
      const suite = join(dir, "suite.json");
      await Deno.writeTextFile(
        suite,
        JSON.stringify({
          check_files: "hidden",
          categories: {
            code: {
              tasks: [
                task("right", `Create add.sh printing the sum of its arguments ${PLUS}`, check),
                task("buggy", `Create add.sh printing the sum of its arguments ${MINUS}`, {
                  ...check,
                  expected_patterns: ["add.sh"],
                }),
                // The agent writes buggy code and a trivial test_add.sh of its own.
                task(
                  "own_test",
                  "Create add.sh and a test for it " +
                    "[[mock:bash:echo 'echo $(($1 - $2))' > add.sh; echo 'echo 1 passed' > test_add.sh]]",
                  check,
                ),
                // The hidden test is not there while the agent works.
                task(
                  "no_peeking",
                  "Create add.sh [[mock:bash:ls -a > seen.txt; echo 'echo $(($1 + $2))' > add.sh]]",
                  { check: ["sh test_add.sh", "! grep -q test_add seen.txt"] },
                ),
                task("auth", `What is 2+2? [[mock:401]]`, { check: `touch ${ranCheck}` }),
              ],
            },
            judged: {
              tasks: [
                task("rubric_pass", "What is 2+2? [[mock:judge:if:2 + 2 = 4]]", rubric),
                task(
                  "rubric_fail",
                  "What is 2+2? [[mock:answer:five]] [[mock:judge:if:2 + 2 = 4]]",
                  rubric,
                ),
                task("no_verdict", "What is 2+2? [[mock:judge:none]]", rubric),
                // A template that names no model gets --model through ANTHROPIC_MODEL.
                {
                  id: "template",
                  command_template: "claude -p 'What is 2+2?' --output-format stream-json " +
                    "--verbose --dangerously-skip-permissions",
                  verification: { expected_patterns: ["2 + 2 = 4"] },
                },
              ],
            },
          },
        }),
      );
      const json = join(dir, "report.json");
      const r = await cli([
        "stress",
        suite,
        "--claude",
        CLAUDE,
        "--sandbox",
        "--concurrency",
        "4",
        "--no-history",
        "--model",
        "claude-task-model",
        "--judge-model",
        "claude-judge-model",
        "--out",
        join(dir, "out"),
        "--json",
        json,
        "--junit",
        join(dir, "junit.xml"),
        "--html",
        join(dir, "report.html"),
      ], { env: { ...mockApiEnv(api.url, 0), HOME: dir, CCX_STATE_DIR: join(dir, "state") } });
      const report = JSON.parse(await Deno.readTextFile(json));
      const byId = new Map<string, Record<string, unknown>>(
        report.tests.map((t: { id: string }) => [t.id, t]),
      );
      const t = (id: string) => byId.get(id)!;
      const checks = (id: string) => t(id).checks as Record<string, unknown>[];
      assert.equal(r.code, 1, r.stdout + r.stderr);

      assert.equal(t("right").status, "passed", JSON.stringify(t("right")));
      assert.match(String(checks("right")[0].stdout_tail), /1 passed/);
      // It said the right thing and wrote the wrong code: the hidden test fails it.
      assert.equal(t("buggy").status, "failed");
      assert.deepEqual(t("buggy").patterns_found, ["add.sh"]);
      assert.match(
        String(t("buggy").reason),
        /AssertionError: add\.sh 2 3 printed '-1', expected 5/,
      );
      assert.equal(checks("buggy")[0].exit_code, 1);
      assert.equal(t("own_test").status, "failed", "its own test was replaced by the hidden one");
      assert.equal(t("no_peeking").status, "passed", JSON.stringify(t("no_peeking")));
      // A Claude failure is an error, and its check never ran.
      assert.equal(t("auth").status, "error");
      assert.equal(t("auth").kind, "auth");
      assert.deepEqual(t("auth").checks, []);
      assert.equal(existsSync(ranCheck), false);

      const judged = (id: string) => t(id).rubric as Record<string, unknown>;
      assert.equal(t("rubric_pass").status, "passed", JSON.stringify(t("rubric_pass")));
      assert.equal(judged("rubric_pass").reason, 'the answer contains "2 + 2 = 4"');
      assert.equal(t("rubric_fail").status, "failed");
      assert.equal(
        t("rubric_fail").reason,
        'rubric failed: the answer does not contain "2 + 2 = 4"',
      );
      assert.equal(t("no_verdict").status, "error");
      assert.match(String(t("no_verdict").reason), /^judge: answered without a verdict: "I looked/);
      // --model reached every task's CLI, --judge-model the judge's; what ran is recorded.
      assert.equal(t("right").model, "claude-task-model");
      assert.equal(t("template").model, "claude-task-model");
      assert.equal(judged("rubric_pass").model, "claude-judge-model");
      assert.deepEqual(report.run.claude_code_versions, ["2.1.197"]);
      assert.deepEqual(report.run.models, ["claude-task-model"]);
      assert.equal(report.run.model, "claude-task-model");
      assert.match(report.run.suite_hash, /^sha256:[0-9a-f]{64}$/);
      // The reason reaches every report.
      const junit = await Deno.readTextFile(join(dir, "junit.xml"));
      assert.match(junit, /rubric failed: the answer does not contain &quot;2 \+ 2 = 4&quot;/);
      assert.match(junit, /AssertionError: add\.sh 2 3 printed &apos;-1&apos;, expected 5/);
      const html = await Deno.readTextFile(join(dir, "report.html"));
      assert.match(html, /the answer does not contain &quot;2 \+ 2 = 4&quot;/);
      assert.match(r.stdout, /rubric \(1 statement, judge claude-judge-model\): FAIL: the answer/);
      // The judge was asked with its own prompt, through the real CLI.
      assert.equal(api.requests.filter((q) => q.prompt.startsWith("[ccx rubric judge]")).length, 3);
    }),
});

Deno.test({
  name:
    "real CLI + ccx exec --check: a failed check's output reaches the next attempt, which fixes the code; --rubric judges it",
  ignore,
  fn: () =>
    withMock(
      async (api, dir) => {
        await Deno.writeTextFile(
          join(dir, "t.sh"),
          HIDDEN_TEST.replace("add.sh 2 3", "add.sh 2 3"),
        );
        const lines: string[] = [];
        const r = await execTask({
          task:
            `Create add.sh printing the sum of its arguments ${MINUS} [[mock:judge:pass:it adds]]`,
          checks: ["sh t.sh"],
          rubric: ["add.sh prints the sum of its two arguments"],
          retries: 1,
          claude: CLAUDE,
          cwd: dir,
          timeout: 60,
          sandbox: true,
          env: { ...mockApiEnv(api.url, 0), HOME: dir },
          onProgress: (l) => lines.push(l),
        });
        assert.equal(r.success, true, lines.join("\n"));
        assert.deepEqual(r.attempts.map((a) => a.error_type), ["check_failed", null]);
        assert.match(
          r.attempts[1].prompt,
          /The check `sh t\.sh` failed \(exit 1\); its output ends with:\n {4}AssertionError: add\.sh 2 3 printed '-1'/,
        );
        assert.equal(await Deno.readTextFile(join(dir, "add.sh")), "echo $(($1 + $2))\n");
        assert.equal(r.checks?.[0].status, "passed");
        assert.deepEqual(r.rubric, { status: "passed", reason: "it adds", model: r.rubric?.model });
      },
      {
        rules: [{
          match: "The check `sh t.sh` failed",
          // Bash, not Write: the CLI's Write refuses a file it has not read first.
          reply: {
            type: "tool",
            name: "Bash",
            input: { command: "echo 'echo $(($1 + $2))' > add.sh", description: "Fix add.sh" },
            then: "I fixed add.sh.",
          },
        }],
      },
    ),
});

const hasPython = (() => {
  try {
    return new Deno.Command("python3", { args: ["-c", "pass"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "the shipped example suite (tasks/examples/graded.json) grades real code offline: a good mock passes, a worse one regresses against it",
  ignore: ignore || !hasPython,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ccx_graders_example_" });
    const run = async (script: string, extra: string[] = []) => {
      const path = join(ROOT, "tasks", "examples", script);
      const api = MockApiServer.start({
        script: parseMockScript(JSON.parse(await Deno.readTextFile(path))),
      });
      try {
        return await cli([
          "stress",
          join(ROOT, "tasks", "examples", "graded.json"),
          "--claude",
          CLAUDE,
          "--sandbox",
          "--no-history",
          ...extra,
        ], {
          cwd: dir,
          env: { ...mockApiEnv(api.url, 0), HOME: dir, CCX_STATE_DIR: join(dir, "state") },
        });
      } finally {
        await api.shutdown();
      }
    };
    try {
      const good = await run("graded.mock.json");
      assert.equal(good.code, 0, good.stdout + good.stderr);
      assert.match(good.stdout, /3 tests: 3 passed, 0 failed, 0 errors/);
      const worse = await run("graded.buggy.mock.json", [
        "--baseline",
        "last",
        "--fail-on-regression",
      ]);
      assert.equal(worse.code, 1, worse.stdout);
      assert.match(
        worse.stdout,
        /AssertionError: slugify\('ccx 0\.1 -- release'\) returned 'ccx-release'/,
      );
      assert.match(worse.stdout, /\n {2}REGRESSED \(3\): slugify \(passed → failed/);
      assert.match(
        worse.stdout,
        /3 tasks regressed since the baseline \(--fail-on-regression\): exit 1\./,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

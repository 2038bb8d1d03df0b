/**
 * The real-CLI tier: `ccx exec` and `ccx stress` run the real Claude Code CLI (a pinned
 * `@anthropic-ai/claude-code`, installed once into `.cache/claude-code/`, see real_claude.ts)
 * against the project's mock Messages API (lib/claude/mock_api/). Only the model is mocked: the
 * CLI's flags, texts, exit codes, retries, root refusal and tools are the real ones.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type ExecOptions, execTask } from "../lib/exec/exec.ts";
import { mockApiEnv, MockApiServer } from "../lib/claude/mock_api/server.ts";
import { buildClaudeArgv } from "../lib/claude/argv.ts";
import { classifyFailure } from "../lib/claude/classify.ts";
import { type ClaudeTranscript, parseClaudeOutput } from "../lib/claude/stream.ts";
import { cli, FAKE_CLAUDE, pidsMatching, uniqueTag, waitFor } from "./_util/helpers.ts";
import { claudeTier } from "./_util/real_claude.ts";

const real = await claudeTier();
const CLAUDE = real ?? "claude";
const ignore = real === undefined;
const isRoot = Deno.uid() === 0;

/** A temp dir (also the CLI's HOME) and a mock, both gone afterwards. */
async function withMock<T>(fn: (api: MockApiServer, dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_real_claude_" });
  const api = MockApiServer.start();
  try {
    return await fn(api, dir);
  } finally {
    await api.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The CLI's environment against `api` (HOME a fresh dir, `retries` CLI retries). */
function envFor(api: MockApiServer, home: string, retries = 0): Record<string, string> {
  return { ...mockApiEnv(api.url, retries), HOME: home };
}

/** execTask with the real CLI in `dir` against `api`, progress lines kept. */
async function exec(
  api: MockApiServer,
  dir: string,
  opts: Partial<ExecOptions> & { task: string },
  retries = 0,
) {
  const lines: string[] = [];
  const r = await execTask({
    claude: CLAUDE,
    cwd: dir,
    timeout: 60,
    sandbox: true,
    env: envFor(api, dir, retries),
    backoffBaseS: 0.05,
    onProgress: (l) => lines.push(l),
    ...opts,
  });
  return { ...r, lines };
}

/** Runs the real CLI directly; resolves with its parsed output. */
async function direct(
  api: MockApiServer,
  dir: string,
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; t: ClaudeTranscript; stdout: string; stderr: string }> {
  const o = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: dir,
    env: { ...envFor(api, dir), IS_SANDBOX: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(o.stdout);
  return { code: o.code, t: parseClaudeOutput(stdout), stdout, stderr: dec.decode(o.stderr) };
}

Deno.test({
  name: "real CLI: an answer passes and a wrong answer fails, against the mock",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      const [ok, wrong] = await Promise.all([
        exec(api, dir, { task: "What is 2+2?", criteria: ["Contains 4"] }),
        exec(api, dir, {
          task: "What is 2+2? [[mock:answer:five]]",
          criteria: ["Contains 4"],
          retries: 0,
        }),
      ]);
      assert.equal(ok.success, true, ok.lines.join("\n"));
      assert.match(ok.result, /2 \+ 2 = 4/);
      assert.equal(ok.attempts[0].marker_seen, true);
      assert.equal(wrong.success, false);
      assert.deepEqual(wrong.attempts.map((a) => a.error_type), ["criteria_not_met"]);
    }),
});

Deno.test({
  name: "real CLI: a Write tool call leaves the file, and 'File X exists' is met by the disk",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      const r = await exec(api, dir, {
        task: "Create notes.txt [[mock:write:notes.txt=hello from the mock]]",
        criteria: ["File notes.txt exists", "notes.txt contains hello"],
        retries: 0,
      });
      assert.equal(r.success, true, r.lines.join("\n"));
      assert.equal(await Deno.readTextFile(join(dir, "notes.txt")), "hello from the mock");
      assert.deepEqual(r.files_created, [join(dir, "notes.txt")]);
    }),
});

Deno.test({
  name: "real CLI: 401 and 403 are auth, one attempt; a 401 in api_retry ends the run at once",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      // With its default retries the CLI would fight a 401 for minutes; ccx stops at the first
      // api_retry line.
      const t0 = performance.now();
      const [r401, r403, retrying] = await Promise.all([
        exec(api, dir, { task: "What is 2+2? [[mock:401]]", retries: 2 }),
        exec(api, dir, { task: "What is 2+2? [[mock:403]]", retries: 2 }),
        exec(api, dir, { task: "What is 3+3? [[mock:401]]", retries: 2 }, 10),
      ]);
      assert.deepEqual(r401.attempts.map((a) => a.error_type), ["auth"]);
      assert.deepEqual(r403.attempts.map((a) => a.error_type), ["auth"]);
      assert.ok(r403.lines.some((l) => /Fix: .*ANTHROPIC_API_KEY/.test(l)));
      assert.deepEqual(retrying.attempts.map((a) => a.error_type), ["auth"]);
      assert.ok(
        retrying.lines.some((l) => /ending it now: auth/.test(l)),
        retrying.lines.join("\n"),
      );
      assert.ok(performance.now() - t0 < 20_000);
    }),
});

Deno.test({
  name: "real CLI: 429 then success is one wait and no refinement; 529 backs off, then overloaded",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      const [limited, overloaded] = await Promise.all([
        exec(api, dir, {
          task: "What is 5+5? [[mock:fail-first:1:429]]",
          criteria: ["Contains 10"],
        }),
        exec(api, dir, { task: "What is 2+2? [[mock:529]]", limitRetries: 1 }),
      ]);
      assert.equal(limited.success, true, limited.lines.join("\n"));
      assert.deepEqual(limited.attempts.map((a) => a.error_type), ["rate_limit", null]);
      assert.ok(!limited.attempts[1].prompt.includes("IMPORTANT:"), "no refinement spent");
      assert.equal(limited.lines.filter((l) => /waiting .* before retrying/.test(l)).length, 1);
      assert.equal(overloaded.success, false);
      assert.deepEqual(overloaded.attempts.map((a) => a.error_type), ["overloaded", "overloaded"]);
      assert.ok(overloaded.attempts.every((a) => !a.prompt.includes("IMPORTANT:")));
    }),
});

Deno.test({
  name: "real CLI: the CLI's error text is never the answer, even when it holds the pattern",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      // The CLI prints "API Error: Request rejected (429) · … rate limit" as its result text.
      const r = await exec(api, dir, {
        task: "What is 2+2? [[mock:429]]",
        criteria: ["Contains rate limit", "Contains 429"],
        limitRetries: 0,
      });
      assert.equal(r.success, false);
      assert.deepEqual(r.criteria.map((c) => c.met), [false, false]);
      assert.match(r.criteria[0].evidence, /the run failed \(rate_limit\)/);
    }),
});

Deno.test({
  name: "real CLI: --tools '' gives no tools, --allowedTools none keeps them all",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      const none = await direct(
        api,
        dir,
        buildClaudeArgv({ claude: CLAUDE, prompt: "What is 2+2?", tools: "none" }),
      );
      assert.deepEqual(none.t.init?.tools, []);
      const allowed = await direct(api, dir, [
        ...buildClaudeArgv({ claude: CLAUDE, prompt: "What is 2+2?" }),
        "--allowedTools",
        "none",
      ]);
      assert.ok((allowed.t.init?.tools.length ?? 0) > 10, "none is not a keyword");
    }),
});

Deno.test({
  name: "the stand-in agrees with the real CLI: Not logged in without a key, the same 24 tools",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      const argv = (claude: string) =>
        buildClaudeArgv({ claude, prompt: "What is 2+2?", skipPermissions: true });
      const noKey = {
        ANTHROPIC_API_KEY: "",
        ANTHROPIC_AUTH_TOKEN: "",
        CLAUDE_CODE_OAUTH_TOKEN: "",
      };
      const [real, stand] = await Promise.all([
        direct(api, dir, argv(CLAUDE), noKey),
        direct(api, dir, argv(FAKE_CLAUDE), noKey),
      ]);
      for (const [who, r] of [["real", real], ["stand-in", stand]] as const) {
        assert.equal(r.code, 1, `${who}: ${r.stdout}`);
        assert.equal(r.stderr, "", who);
        assert.equal(r.t.result?.text, "Not logged in · Please run /login", who);
        assert.equal(r.t.result?.isError, true, who);
        assert.equal(r.t.result?.subtype, "success", who);
        assert.deepEqual(r.t.assistantErrors, ["authentication_failed"], who);
      }
      assert.equal(api.requests.length, 0, "neither called the API");
      // With a key: the same init.tools, in the same order.
      const [realTools, standTools] = await Promise.all([
        direct(api, dir, argv(CLAUDE)),
        direct(api, dir, argv(FAKE_CLAUDE)),
      ]);
      assert.equal(realTools.code, 0, realTools.stdout);
      assert.deepEqual(standTools.t.init?.tools, realTools.t.init?.tools);
      assert.equal(realTools.t.init?.tools.length, 24);
    }),
});

Deno.test({
  name: "real CLI: as root without IS_SANDBOX its refusal is root_refused",
  ignore: ignore || !isRoot,
  fn: () =>
    withMock(async (api, dir) => {
      const r = await direct(
        api,
        dir,
        buildClaudeArgv({ claude: CLAUDE, prompt: "What is 2+2?", skipPermissions: true }),
        { IS_SANDBOX: "true" },
      );
      assert.equal(r.code, 1);
      const f = classifyFailure(r.t, { exitCode: r.code, status: "failed", stderr: r.stderr });
      assert.equal(f?.kind, "root_refused", r.stderr);
    }),
});

Deno.test({
  name: "ccx exec with the real CLI: as root it stops before spawning; --sandbox runs (README)",
  ignore: ignore || !isRoot,
  fn: () =>
    withMock(async (api, dir) => {
      const tag = uniqueTag();
      const env = { ...envFor(api, dir), CCX_STATE_DIR: join(dir, "state"), IS_SANDBOX: "" };
      const args = ["exec", `What is 2+2? ${tag}`, "--criterion", "Contains 4", "--claude", CLAUDE];
      const refused = await cli([...args, "--cwd", dir], { env });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /running as root: .*IS_SANDBOX=1/s);
      assert.equal(api.requests.length, 0, "nothing reached the API");
      assert.deepEqual(pidsMatching(tag), []);
      const ran = await cli([...args, "--cwd", dir, "--sandbox"], { env });
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /2 \+ 2 = 4/);
    }),
});

Deno.test({
  name: "ccx stress with the real CLI: verdicts by kind, patterns never matched against errors",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      const suite = join(dir, "suite.json");
      await Deno.writeTextFile(
        suite,
        JSON.stringify({
          categories: {
            real: {
              tasks: [
                {
                  id: "answer",
                  natural_language_request: "What is 2+2?",
                  verification: { expected_patterns: ["2 + 2 = 4"] },
                },
                {
                  id: "wrong",
                  natural_language_request: "What is 2+2? [[mock:answer:five]]",
                  verification: { expected_patterns: ["4"] },
                },
                {
                  id: "auth",
                  natural_language_request: "What is 2+2? [[mock:401]]",
                  verification: { expected_patterns: ["API key"] },
                },
              ],
            },
          },
        }),
      );
      const env = { ...envFor(api, dir), CCX_STATE_DIR: join(dir, "state") };
      const run = async (extra: string[], name: string) => {
        const json = join(dir, `${name}.json`);
        const r = await cli([
          "stress",
          suite,
          "--claude",
          CLAUDE,
          "--concurrency",
          "3",
          "--no-history",
          "--out",
          join(dir, name),
          "--json",
          json,
          ...extra,
        ], { env });
        const report = JSON.parse(await Deno.readTextFile(json).catch(() => '{"tests":[]}'));
        const byId = new Map<string, Record<string, unknown>>(
          report.tests.map((t: { id: string }) => [t.id, t]),
        );
        return { r, byId };
      };
      const [sandboxed, refused] = await Promise.all([
        run(["--sandbox"], "sandboxed"),
        isRoot ? run([], "refused") : Promise.resolve(undefined),
      ]);
      assert.equal(sandboxed.byId.get("answer")?.status, "passed", sandboxed.r.stdout);
      assert.equal(sandboxed.byId.get("wrong")?.status, "failed");
      const auth = sandboxed.byId.get("auth")!;
      assert.equal(auth.status, "error");
      assert.equal(auth.kind, "auth");
      assert.deepEqual(auth.patterns_found, [], "the error text is not matched");
      if (refused) {
        // As root without --sandbox the run stops before spawning the CLI: exit 3, no report,
        // one message naming the fix (the pre-flight of lib/stress/preflight.ts).
        assert.equal(refused.r.code, 3, refused.r.stdout + refused.r.stderr);
        assert.equal(refused.byId.size, 0);
        assert.match(refused.r.stderr, /cannot run: running as root, and 3 Claude tasks pass/);
        assert.match(refused.r.stderr, /--sandbox .*non-root user/);
      }
    }),
});

Deno.test({
  name: "real CLI: SIGINT ends it without an answer, which is an interruption, not a success",
  ignore,
  fn: () =>
    withMock(async (api, dir) => {
      const argv = buildClaudeArgv({ claude: CLAUDE, prompt: "What is 2+2? [[mock:hang]]" });
      const child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        cwd: dir,
        env: envFor(api, dir),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait until the request is in (the mock holds it), then interrupt.
      await waitFor(() => api.requests.length > 0, "the CLI's request at the mock", 60_000);
      child.kill("SIGINT");
      const o = await child.output();
      const stdout = new TextDecoder().decode(o.stdout);
      const t = parseClaudeOutput(stdout);
      // Exit 0 and no result line; or, when the signal lands mid-stream, an
      // error_during_execution result with terminal_reason aborted_streaming. Both are
      // interruptions, never a success.
      assert.ok(
        t.result === undefined || t.result.terminalReason?.startsWith("aborted"),
        stdout,
      );
      assert.equal(
        classifyFailure(t, { exitCode: o.code, status: o.code === 0 ? "completed" : "failed" })
          ?.kind,
        "interrupted",
      );
    }),
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { explainConnectError, preflight, rootStop, serverUrl } from "../lib/stress/preflight.ts";
import { ConfigError } from "../lib/common/config.ts";
import { cli, FAKE_CLAUDE, newTag, pidsMatching, withServer } from "./_util/helpers.ts";

Deno.test("serverUrl() accepts ws:// and wss:// and names --server for anything else", () => {
  assert.equal(serverUrl("wss://box:8004/ws").port, "8004");
  assert.throws(() => serverUrl("box:8004"), ConfigError);
  assert.throws(() => serverUrl("http://box/ws"), /--server: .* \(did you mean ws:\/\/box\/ws\?\)/);
  assert.throws(() => serverUrl("not a url"), /--server: "not a url" is not a URL/);
});

Deno.test("preflight() passes a healthy server and names each problem otherwise", async () => {
  await withServer({ token: "t0k" }, async (server) => {
    const ok = await preflight({
      servers: [{ url: server.url, token: "t0k" }],
      claude: FAKE_CLAUDE,
      needClaude: true,
    });
    assert.deepEqual(ok, []);
    const noToken = await preflight({
      servers: [{ url: server.url }],
      claude: "x",
      needClaude: false,
    });
    assert.match(noToken[0], /requires a token: pass --token or set CCX_TOKEN/);
    const missing = await preflight({
      servers: [{ url: server.url, token: "t0k" }],
      claude: "/nonexistent/claude",
      needClaude: true,
    });
    assert.match(missing[0], /Claude CLI not found: .*could not start it.*--claude PATH/);
  });
  const down = await preflight({
    servers: [{ url: "ws://127.0.0.1:1/ws" }],
    claude: "claude",
    needClaude: true,
    timeoutMs: 2000,
  });
  assert.equal(down.length, 1, "a server that is down is one problem, the CLI is not probed");
  assert.match(down[0], /no answer from http:\/\/127\.0\.0\.1:1\/health/);
});

Deno.test("explainConnectError() names --token for a 401 and --server for a refused connection", () => {
  assert.match(
    explainConnectError("… Invalid status code: 401", "ws://h/ws"),
    /--token or CCX_TOKEN/,
  );
  assert.equal(
    explainConnectError("… Invalid status code: 401: the server refused the token", "wss://h/ws"),
    "wss://h/ws refused the token: check --token or CCX_TOKEN",
  );
  assert.match(explainConnectError("… tcp connect error", "ws://h/ws"), /check --server/);
  assert.equal(explainConnectError("other", "ws://h/ws"), "other");
});

Deno.test("rootStop() stops a root run whose Claude tasks skip permissions, once, naming --sandbox", () => {
  const skip = {
    display: "claude -p hi --output-format stream-json --dangerously-skip-permissions",
  };
  const bypass = { display: "claude -p hi --permission-mode bypassPermissions" };
  const asks = { display: "claude -p hi --allowedTools Write" };
  const own = { display: "IS_SANDBOX=1 claude -p hi --dangerously-skip-permissions" };
  const stop = rootStop({ isRoot: true, sandbox: false, commands: [skip, bypass, asks, own] });
  assert.ok(stop);
  assert.match(stop, /^running as root, and 2 Claude tasks pass --dangerously-skip-permissions/);
  assert.match(stop, /Fix: .*pass --sandbox \(or set CCX_SANDBOX=1\)/);
  assert.equal(rootStop({ isRoot: true, sandbox: true, commands: [skip] }), undefined);
  assert.equal(rootStop({ isRoot: false, sandbox: false, commands: [skip] }), undefined);
  assert.equal(rootStop({ isRoot: true, sandbox: false, commands: [asks, own] }), undefined);
});

Deno.test({
  name: "ccx stress as root without --sandbox stops before any Claude task: exit 3, the fix once",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ccx_root_stop_" });
    const tag = newTag();
    try {
      const suite = join(dir, "suite.json");
      await Deno.writeTextFile(
        suite,
        JSON.stringify({
          categories: {
            c: {
              tasks: ["a", "b", "c"].map((id) => ({
                id,
                natural_language_request: `${tag} What is 2+2?`,
                verification: { expected_patterns: ["4"] },
              })),
            },
          },
        }),
      );
      const out = join(dir, "out");
      // CCX_SANDBOX and IS_SANDBOX cleared: the tests' own environment may set them.
      const env = {
        CCX_SANDBOX: "",
        IS_SANDBOX: "",
        CCX_STATE_DIR: join(dir, "state"),
        ANTHROPIC_API_KEY: "sk-ant-stand-in-test", // the stand-in wants a key, as the real CLI does
      };
      const r = await cli(["stress", suite, "--claude", FAKE_CLAUDE, "--out", out], {
        cwd: dir,
        env,
      });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stderr, /cannot run: running as root, and 3 Claude tasks pass/);
      assert.equal(r.stderr.match(/--sandbox/g)?.length, 1, r.stderr);
      assert.match(r.stderr, /nothing was run \(exit 3\)/);
      assert.doesNotMatch(r.stdout + r.stderr, /root_refused/);
      // Nothing ran: no task output, no report, no process of the run.
      assert.equal(await Deno.stat(out).then(() => true, () => false), false);
      assert.deepEqual(pidsMatching(tag), []);
      // With --sandbox the same run goes ahead and passes.
      const ok = await cli(
        ["stress", suite, "--claude", FAKE_CLAUDE, "--out", out, "--sandbox"],
        { cwd: dir, env },
      );
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

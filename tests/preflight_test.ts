import assert from "node:assert/strict";
import { explainConnectError, preflight, serverUrl } from "../lib/stress/preflight.ts";
import { ConfigError } from "../lib/common/config.ts";
import { FAKE_CLAUDE, withServer } from "./_util/helpers.ts";

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

import assert from "node:assert/strict";
import { join } from "node:path";
import { apiEndpoint, checkApiEndpoint, tcpConnects } from "../lib/claude/endpoint.ts";
import { cli, FAKE_CLAUDE } from "./_util/helpers.ts";

/** A loopback port nothing listens on: bound, then let go. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("apiEndpoint() is ANTHROPIC_BASE_URL, else Anthropic's API, or the proxy that applies", () => {
  // Parsing only: nothing here connects anywhere.
  assert.deepEqual(apiEndpoint({}), {
    url: "https://api.anthropic.com",
    host: "api.anthropic.com",
    port: 443,
    source: "the default API, ANTHROPIC_BASE_URL being unset",
  });
  const mock = apiEndpoint({ ANTHROPIC_BASE_URL: "http://127.0.0.1:8088" });
  assert.equal(mock.host, "127.0.0.1");
  assert.equal(mock.port, 8088);
  assert.equal(mock.source, "ANTHROPIC_BASE_URL=http://127.0.0.1:8088");
  assert.equal(apiEndpoint({ ANTHROPIC_BASE_URL: "http://[::1]/v" }).host, "::1");
  assert.equal(apiEndpoint({ ANTHROPIC_BASE_URL: "http://[::1]/v" }).port, 80);
  const proxied = apiEndpoint({ HTTPS_PROXY: "http://u:secret@proxy.lan:3128" });
  assert.equal(proxied.host, "proxy.lan");
  assert.equal(proxied.port, 3128);
  assert.match(proxied.source, /^the proxy HTTPS_PROXY=http:\/\/u:\*\*\*@proxy\.lan:3128 for/);
  assert.doesNotMatch(proxied.source, /secret/);
  // An http endpoint is not sent through HTTPS_PROXY; NO_PROXY exempts a host.
  assert.equal(
    apiEndpoint({ ANTHROPIC_BASE_URL: "http://127.0.0.1:9", HTTPS_PROXY: "http://p:1" }).port,
    9,
  );
  assert.equal(
    apiEndpoint({ HTTPS_PROXY: "http://p:1", NO_PROXY: "localhost,.anthropic.com" }).host,
    "api.anthropic.com",
  );
  assert.throws(() => apiEndpoint({ ANTHROPIC_BASE_URL: "ftp://x" }), /ANTHROPIC_BASE_URL/);
});

Deno.test("tcpConnects() says why a closed loopback port fails, and accepts an open one", async () => {
  assert.equal(await tcpConnects("127.0.0.1", closedPort(), 3000), "connection refused");
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assert.equal(await tcpConnects("127.0.0.1", (l.addr as Deno.NetAddr).port, 3000), undefined);
  } finally {
    l.close();
  }
});

Deno.test("checkApiEndpoint() names the address that failed and the way out", async () => {
  const port = closedPort();
  const problem = await checkApiEndpoint({ ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}` });
  assert.ok(problem);
  assert.match(problem, new RegExp(`endpoint 127\\.0\\.0\\.1:${port} \\(ANTHROPIC_BASE_URL=`));
  assert.match(problem, /connection refused/);
  assert.match(problem, /--no-api-check/);
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const open = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
    assert.equal(await checkApiEndpoint({ ANTHROPIC_BASE_URL: open }), undefined);
  } finally {
    l.close();
  }
});

Deno.test("ccx stress and ccx exec stop (exit 3) naming a Claude API that refuses connections; an open one runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_api_check_" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const suite = join(dir, "suite.json");
    await Deno.writeTextFile(
      suite,
      JSON.stringify({
        categories: {
          c: {
            tasks: [{
              id: "math",
              natural_language_request: "What is 2+2?",
              verification: { expected_patterns: ["4"] },
            }],
          },
        },
      }),
    );
    const closed = closedPort();
    // The check is on (the tests' default turns it off), and always at a loopback address.
    const env = (port: number) => ({
      CCX_NO_API_CHECK: "",
      ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`,
      HTTPS_PROXY: "",
      HTTP_PROXY: "",
      ALL_PROXY: "",
      CCX_SANDBOX: "1",
      CCX_STATE_DIR: join(dir, "state"),
      ANTHROPIC_API_KEY: "sk-ant-stand-in-test",
    });
    const args = ["stress", suite, "--claude", FAKE_CLAUDE, "--no-history"];
    const down = await cli([...args, "--out", join(dir, "o1")], { cwd: dir, env: env(closed) });
    assert.equal(down.code, 3, down.stdout + down.stderr);
    assert.match(
      down.stderr,
      new RegExp(`cannot run: the Claude API endpoint 127\\.0\\.0\\.1:${closed} .*refused`),
    );
    assert.match(down.stderr, /nothing was run \(exit 3\)/);
    assert.doesNotMatch(down.stdout, /PASS|FAIL|ERROR/);
    const open = (listener.addr as Deno.NetAddr).port;
    const up = await cli([...args, "--out", join(dir, "o2")], { cwd: dir, env: env(open) });
    assert.equal(up.code, 0, up.stdout + up.stderr);
    // --no-api-check skips it.
    const skipped = await cli([...args, "--out", join(dir, "o3"), "--no-api-check"], {
      cwd: dir,
      env: env(closed),
    });
    assert.equal(skipped.code, 0, skipped.stdout + skipped.stderr);
    const exec = await cli(["exec", "What is 2+2?", "--claude", FAKE_CLAUDE], {
      cwd: dir,
      env: env(closed),
    });
    assert.equal(exec.code, 3, exec.stdout + exec.stderr);
    assert.match(exec.stderr, new RegExp(`endpoint 127\\.0\\.0\\.1:${closed} `));
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { ConfigError, dotEnvOpenToOthers, readDotEnv, Settings } from "../lib/common/config.ts";
import { cli, serveProcess } from "./_util/helpers.ts";

Deno.test("Settings: a flag wins over the environment, which wins over the default", () => {
  const s = new Settings({ port: "9001" }, { CCX_PORT: "9002", CCX_HOST: "127.0.0.2" });
  assert.equal(s.int("port", "CCX_PORT", 8004), 9001);
  assert.equal(s.string("host", "CCX_HOST", "127.0.0.1"), "127.0.0.2");
  assert.equal(s.int("max-sessions", "CCX_MAX_SESSIONS", 64), 64);
});

Deno.test("Settings: errors name the flag or the variable", () => {
  assert.throws(
    () => new Settings({ port: "x" }, {}).int("port", "CCX_PORT", 1),
    (e: unknown) => e instanceof ConfigError && e.message.startsWith("--port:"),
  );
  assert.throws(
    () => new Settings({}, { CCX_PORT: "70000" }).int("port", "CCX_PORT", 1, { max: 65535 }),
    (e: unknown) => e instanceof ConfigError && /^CCX_PORT: must be at most 65535/.test(e.message),
  );
  assert.throws(
    () => new Settings({ t: "abc" }, {}).number("t", undefined),
    /--t: expected a number/,
  );
});

Deno.test("Settings: lists come from repeated flags or a comma-separated variable", () => {
  assert.deepEqual(new Settings({ o: ["a", "b"] }, {}).list("o", "O"), ["a", "b"]);
  assert.deepEqual(new Settings({}, { O: "a, b,,c" }).list("o", "O"), ["a", "b", "c"]);
  assert.deepEqual(new Settings({}, {}).list("o", "O"), []);
});

Deno.test("readDotEnv() reads NAME=value lines and tolerates a missing file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(readDotEnv(dir), {});
    await Deno.writeTextFile(`${dir}/.env`, '# comment\nCCX_PORT=9100\nCCX_TOKEN="a b"\n');
    assert.deepEqual(readDotEnv(dir), { CCX_PORT: "9100", CCX_TOKEN: "a b" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ccx serve takes its settings from ./.env: it listens where .env says, with its limits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/.env`, "CCX_HOST=127.0.0.1\nCCX_PORT=0\nCCX_MAX_SESSIONS=3\n");
    const srv = await serveProcess([], undefined, { cwd: dir, bare: true });
    try {
      assert.equal(new URL(srv.url).hostname, "127.0.0.1");
      const health = await (await fetch(`http://127.0.0.1:${srv.port}/health`)).json();
      assert.equal(health.max_sessions, 3, "CCX_MAX_SESSIONS came from .env");
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ccx serve refuses a non-loopback host from ./.env without a token, and a bad --port", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A non-loopback host from .env without a token must refuse to start, naming the fix.
    await Deno.writeTextFile(`${dir}/.env`, "CCX_HOST=0.0.0.0\nCCX_PORT=0\n");
    const r = await cli(["serve"], { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without a token/);
    assert.match(r.stderr, /--token or the CCX_TOKEN/);
    const bad = await cli(["serve", "--port", "nope"], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--port: expected an integer, got "nope"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dotEnvOpenToOthers: a .env that group or others may read, not one of mode 600", () => {
  const dir = Deno.makeTempDirSync();
  try {
    assert.equal(dotEnvOpenToOthers(dir), false, "no .env");
    Deno.writeTextFileSync(`${dir}/.env`, "CCX_TOKEN=t\n");
    Deno.chmodSync(`${dir}/.env`, 0o600);
    assert.equal(dotEnvOpenToOthers(dir), false);
    Deno.chmodSync(`${dir}/.env`, 0o640);
    assert.equal(dotEnvOpenToOthers(dir), true);
    Deno.chmodSync(`${dir}/.env`, 0o604);
    assert.equal(dotEnvOpenToOthers(dir), true);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

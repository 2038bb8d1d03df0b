import assert from "node:assert/strict";
import { cli, ROOT, withServer } from "./_util/helpers.ts";

Deno.test("ccx --version and --help", async () => {
  const v = await cli(["--version"]);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), "ccx 0.1.0");
  const h = await cli(["--help"]);
  assert.equal(h.code, 0);
  for (const c of ["serve", "run", "stress", "exec", "history"]) {
    assert.match(h.stdout, new RegExp(`\\b${c}\\b`));
  }
});

Deno.test("every command has --help naming its options", async () => {
  const expect: Record<string, string> = {
    serve: "--max-jobs-per-session",
    run: "--timeout",
    stress: "--pattern-mode",
    exec: "--criterion",
    history: "--redis",
  };
  for (const [cmd, flag] of Object.entries(expect)) {
    const r = await cli([cmd, "--help"]);
    assert.equal(r.code, 0, `${cmd} --help`);
    assert.ok(r.stdout.includes(flag), `${cmd} --help mentions ${flag}`);
  }
});

Deno.test("an unknown command or flag is a usage error (exit 2) that says what was wrong", async () => {
  const c = await cli(["frobnicate"]);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /unknown command "frobnicate"/);
  assert.equal(c.stdout, "");
  const typo = await cli(["strees"]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown command "strees" \(did you mean "stress"\?\)/);
  const f = await cli(["stress", "--no-such-flag"]);
  assert.equal(f.code, 2);
  assert.match(f.stderr, /--no-such-flag/);
  const g = await cli(["stress", "--concurency", "2"]);
  assert.equal(g.code, 2);
  assert.match(g.stderr, /unknown option --concurency \(did you mean --concurrency\?\)/);
  assert.equal(g.stdout, "", "usage errors go to stderr only");
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.equal(none.stdout, "");
  assert.match(none.stderr, /Usage: ccx COMMAND/);
});

Deno.test("errors name the command once, not twice", async () => {
  const r = await cli(["run"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /^ccx run: no command given/);
  assert.doesNotMatch(r.stderr, /ccx run: run:/);
  const s = await cli(["stress", "a.json", "b.json"]);
  assert.equal(s.code, 2);
  assert.match(s.stderr, /^ccx stress: one suite at a time, got 2/);
});

Deno.test("a port in use is one line naming it and --port, exit 2", async () => {
  await withServer({}, async (server) => {
    const port = new URL(server.url).port;
    const r = await cli(["serve", "--port", port]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`^ccx serve: --port ${port}: 127\\.0\\.0\\.1:${port} is already in use;.*--port`),
    );
  });
});

Deno.test("a server URL that is not ws:// or wss:// is exit 2 naming --server", async () => {
  const e = await cli(["exec", "hi", "--server", "127.0.0.1:8004"]);
  assert.equal(e.code, 2);
  assert.match(
    e.stderr,
    /^ccx exec: --server: "127\.0\.0\.1:8004" is not a URL; expected ws:/,
  );
  const s = await cli(["stress", "--server", "https://box:8004/ws", "--list"]);
  assert.equal(s.code, 2);
  assert.match(s.stderr, /--server: .* \(did you mean wss:\/\/box:8004\/ws\?\)/);
});

Deno.test("a first run (empty Deno cache) prints no 'Ignored build scripts' box for msgpackr-extract", async () => {
  const denoDir = await Deno.makeTempDir({ prefix: "ccx_empty_deno_dir_" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "--version"],
      cwd: ROOT,
      env: { DENO_DIR: denoDir, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    if (r.code !== 0 && /registry\.npmjs\.org|error sending request|dns error/i.test(stderr)) {
      console.warn("skipped: the npm registry cannot be reached to fill an empty Deno cache");
      return;
    }
    assert.equal(r.code, 0, stderr);
    assert.match(stderr, /Download .*msgpackr-extract/, "the cache really started empty");
    assert.doesNotMatch(stderr, /Ignored build scripts|msgpackr-extract@/);
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});

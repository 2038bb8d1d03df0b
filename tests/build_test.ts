import assert from "node:assert/strict";
import { ROOT } from "./_util/helpers.ts";

async function sh(
  cmd: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, stdout: d.decode(r.stdout), stderr: d.decode(r.stderr) };
}

Deno.test("build.sh bundles dist/ccx.js, which runs `run`, `serve`, --version and --help", async () => {
  const out = await Deno.makeTempDir();
  try {
    const b = await sh(["bash", "build.sh"], { OUT_DIR: out, SKIP_COMPILE: "1" });
    assert.equal(b.code, 0, b.stderr);
    const js = `${out}/ccx.js`;
    const deno = Deno.execPath();
    const v = await sh([deno, "run", "-A", js, "--version"]);
    assert.equal(v.stdout.trim(), "ccx 0.1.0");
    const h = await sh([deno, "run", "-A", js, "--help"]);
    assert.match(h.stdout, /serve/);
    const r = await sh([deno, "run", "-A", js, "run", "--", "echo", "from-bundle"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "from-bundle\n");
    // serve: starts, answers /health, and stops on SIGTERM.
    const srv = new Deno.Command(deno, {
      args: ["run", "-A", js, "serve", "--port", "0", "--quiet"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    const reader = srv.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/health at (\S+)\/health/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const base = text.match(/health at (\S+)\/health/)![1];
    const health = await (await fetch(`${base}/health`)).json();
    assert.equal(health.status, "ok");
    // The web page travels inside the bundle.
    const html = await (await fetch(`${base}/`)).text();
    assert.match(html, /<title>ccx serve<\/title>/);
    assert.match(html, /new WebSocket\(url, protocols\)/);
    srv.kill("SIGTERM");
    assert.equal((await srv.status).code, 0);
    await reader.cancel();
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("build.sh names DENORT_BIN when it cannot build the executable", async () => {
  const out = await Deno.makeTempDir();
  try {
    const b = await sh(["bash", "build.sh"], { OUT_DIR: out, DENORT_BIN: "/nonexistent/denort" });
    assert.equal(b.code, 3);
    assert.match(b.stderr, /DENORT_BIN=\/nonexistent\/denort is not an executable file/);
    // The bundle is still there.
    assert.ok((await Deno.stat(`${out}/ccx.js`)).size > 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

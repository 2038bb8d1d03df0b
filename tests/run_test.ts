import assert from "node:assert/strict";
import { exitCodeFor, ownFailureCode } from "../lib/commands/run.ts";
import {
  assertOwnServerTokened,
  cli,
  FAKE_CLAUDE,
  pidsMatching,
  ROOT,
  serveProcess,
  uniqueTag,
  waitFor,
  withServer,
} from "./_util/helpers.ts";

Deno.test("ccx run streams stdout and stderr separately and exits with the job's code", async () => {
  const r = await cli(["run", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 7"]);
  assert.equal(r.code, 7);
  assert.equal(r.stdout, "to-out\n");
  assert.equal(r.stderr, "to-err\n");
});

Deno.test("ccx run passes arguments verbatim (no shell) unless --shell", async () => {
  const r = await cli(["run", "--", "printf", "%s|", "$HOME", "`id`", "a b"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "$HOME|`id`|a b|");
  const sh = await cli(["run", "--shell", "--", "echo", "$((6*7))"]);
  assert.equal(sh.stdout, "42\n");
});

Deno.test("ccx run exits 124 when the timeout fires", async () => {
  const r = await cli(["run", "--timeout", "0.3", "--", "sleep", "30"]);
  assert.equal(r.code, 124);
  assert.match(r.stderr, /job timeout/);
});

Deno.test("ccx run --server uses a running server", async () => {
  const lines: string[] = [];
  await withServer({ log: (l) => lines.push(l) }, async (server) => {
    const r = await cli(["run", "--server", server.url, "--", "echo", "remote"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "remote\n");
  });
  assert.ok(lines.some((l) => l.includes("started") && l.includes("echo")));
});

Deno.test("ccx run's own failures exit 125/126/127 as timeout(1), never the command's codes", async () => {
  const usage = await cli(["run"]);
  assert.equal(usage.code, 125);
  assert.match(usage.stderr, /^ccx run: no command given/);
  const flag = await cli(["run", "--nope", "--", "true"]);
  assert.equal(flag.code, 125);
  const missing = await cli(["run", "--", "no-such-program-ccx"]);
  assert.equal(missing.code, 127, missing.stderr);
  assert.match(missing.stderr, /program not found: no-such-program-ccx/);
  const dir = await Deno.makeTempDir();
  try {
    const noexec = `${dir}/script.sh`;
    await Deno.writeTextFile(noexec, "echo hi\n");
    const denied = await cli(["run", "--", noexec]);
    assert.equal(denied.code, 126, denied.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const down = await cli(["run", "--server", "ws://127.0.0.1:1/ws", "--", "true"]);
  assert.equal(down.code, 125);
  assert.match(down.stderr, /no ccx server answers at ws:\/\/127\.0\.0\.1:1\/ws \(check --server/);
  const badUrl = await cli(["run", "--server", "localhost:8004", "--", "true"]);
  assert.equal(badUrl.code, 125);
  assert.match(badUrl.stderr, /--server: "localhost:8004" is not a ws:\/\/ or wss:\/\/ URL/);
  await withServer({ token: "sekrit" }, async (server) => {
    const r = await cli(["run", "--server", server.url, "--", "true"]);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /a valid token is required \(--token or CCX_TOKEN\)/);
  });
});

Deno.test("Ctrl+C cancels the job, nothing is left, and ccx run exits 130", async () => {
  const tag = uniqueTag();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}main.ts`,
      "run",
      "--",
      "sh",
      "-c",
      `echo started; sleep 100 # ${tag}`,
    ],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("started")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  await waitFor(() => pidsMatching(tag).length > 0, "the job");
  child.kill("SIGINT");
  const status = await child.status;
  await reader.cancel();
  assert.equal(status.code, 130);
  await waitFor(() => pidsMatching(tag).length === 0, "no process of the job");
});

Deno.test("ccx run says the server shut down (1001) and exits 125 when the server is stopped mid-job", async () => {
  const srv = await serveProcess(["--grace-ms", "200"]);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}main.ts`,
        "run",
        "--server",
        srv.url,
        "--",
        "sh",
        "-c",
        "echo started; sleep 100",
      ],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("started\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const srvStatus = srv.stop("SIGTERM");
    const [status, err] = await Promise.all([child.status, new Response(child.stderr).text()]);
    await reader.cancel();
    assert.equal((await srvStatus).code, 0);
    assert.equal(out, "started\n");
    assert.equal(status.code, 125, err);
    assert.match(err, /^ccx run: the server shut down while the job ran and killed it \(SIGTERM\)/);
    assert.doesNotMatch(err, /connection closed|1006/);
  } finally {
    await srv.stop("SIGKILL");
  }
});

Deno.test("exitCodeFor() maps statuses to process exit codes", () => {
  assert.equal(exitCodeFor({ status: "completed", exitCode: 0 }), 0);
  assert.equal(exitCodeFor({ status: "failed", exitCode: 3 }), 3);
  assert.equal(exitCodeFor({ status: "timeout", exitCode: 143 }), 124);
  assert.equal(exitCodeFor({ status: "stalled", exitCode: 143 }), 124);
  assert.equal(exitCodeFor({ status: "canceled", exitCode: 143 }), 130);
  assert.equal(exitCodeFor({ status: "killed", exitCode: 137 }), 137);
});

Deno.test("ownFailureCode() follows timeout(1)", () => {
  assert.equal(ownFailureCode("argv: program not found: x"), 127);
  assert.equal(ownFailureCode("argv: permission denied: ./x"), 126);
  assert.equal(ownFailureCode("could not connect"), 125);
});

Deno.test("ccx run --env K=V and --sandbox reach the job on top of the server's allow-list", async () => {
  // A real `ccx serve`: its own SECRET_X is not allow-listed, so the job never sees it.
  const srv = await serveProcess([], { SECRET_X: "server-only" });
  try {
    const r = await cli([
      "run",
      "--server",
      srv.url,
      "--env",
      "FOO=bar",
      "--env",
      "EQ=a=b",
      "--sandbox",
      "--",
      "sh",
      "-c",
      'echo "$FOO|$EQ|$IS_SANDBOX|${SECRET_X:-unset}"',
    ], { env: { CCX_SANDBOX: "" } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "bar|a=b|1|unset\n");
    // Asking for a server variable by name is not how a job gets it: the error says whose rule.
    const byName = await cli(["run", "--server", srv.url, "--env", "SECRET_X", "--", "true"]);
    assert.equal(byName.code, 125);
    assert.match(byName.stderr, /--env "SECRET_X": expected NAME=VALUE; .*ccx serve --pass-env/);
  } finally {
    await srv.stop();
  }
});

Deno.test({
  name:
    "ccx run --sandbox lets the Claude CLI skip permissions as root; without it the CLI refuses",
  ignore: Deno.uid() !== 0,
  async fn() {
    const argv = [FAKE_CLAUDE, "-p", "What is 2+2?", "--dangerously-skip-permissions"];
    const env = { CCX_SANDBOX: "", IS_SANDBOX: "", ANTHROPIC_API_KEY: "sk-ant-stand-in-test" };
    const refused = await cli(["run", "--", ...argv], { env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot be used with root\/sudo privileges/);
    const ok = await cli(["run", "--sandbox", "--", ...argv], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /4/);
  },
});

Deno.test("ccx run's in-process server refuses a connection without its token while the job runs", async () => {
  const tag = uniqueTag();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "run", "--", "sh", "-c", `: ${tag}; sleep 30`],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    // The tag is in this command line too; the job is the other process that has it.
    await waitFor(() => pidsMatching(tag).some((p) => p !== child.pid), "the job", 30_000);
    await assertOwnServerTokened(child.pid);
  } finally {
    child.kill("SIGINT");
  }
  const r = await output;
  assert.equal(r.code, 130, new TextDecoder().decode(r.stderr));
});

import assert from "node:assert/strict";
import { exitCodeFor } from "../lib/commands/run.ts";
import { cli, pidsMatching, ROOT, uniqueTag, waitFor, withServer } from "./helpers.ts";

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

Deno.test("ccx run without a command is a usage error", async () => {
  const r = await cli(["run"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no command given/);
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
  await waitFor(() => pidsMatching(tag).length === 0, "no process of the job", 3000);
});

Deno.test("exitCodeFor() maps statuses to process exit codes", () => {
  assert.equal(exitCodeFor({ status: "completed", exitCode: 0 }), 0);
  assert.equal(exitCodeFor({ status: "failed", exitCode: 3 }), 3);
  assert.equal(exitCodeFor({ status: "timeout", exitCode: 143 }), 124);
  assert.equal(exitCodeFor({ status: "stalled", exitCode: 143 }), 124);
  assert.equal(exitCodeFor({ status: "canceled", exitCode: 143 }), 130);
  assert.equal(exitCodeFor({ status: "killed", exitCode: 137 }), 137);
});

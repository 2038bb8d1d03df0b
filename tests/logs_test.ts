/** `ccx logs` against a real `ccx serve` process, following jobs another client started. */
import assert from "node:assert/strict";
import { cli, ROOT, serveProcess, STATE_DIR } from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";

async function started(s: RawSession, params: Record<string, unknown>) {
  const r = await s.call(String(params.job_id), "execute", params);
  assert.ok(r.result, `execute failed: ${JSON.stringify(r.error)}`);
}

/** `ccx logs ARGS` as a running process, its stdout read as it comes. */
function spawnLogs(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "logs", ...args],
    env: { CCX_STATE_DIR: STATE_DIR, CCX_TOKEN: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  return {
    child,
    /** Reads stdout until it contains `text`; then resolves with all of it so far. */
    async until(text: string): Promise<string> {
      while (!out.includes(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`ccx logs ended before printing ${text}: ${out}`);
        out += value;
      }
      return out;
    },
    async rest(): Promise<{ code: number; stdout: string; stderr: string }> {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      const stderr = await new Response(child.stderr).text();
      return { code: (await child.status).code, stdout: out, stderr };
    },
  };
}

Deno.test("ccx logs prints what a job wrote so far (stdout and stderr apart); -f follows it to its end", async () => {
  const srv = await serveProcess();
  const other = await RawSession.open(srv.url);
  const dir = await Deno.makeTempDir({ prefix: "ccx-logs-" });
  try {
    const gate = `${dir}/go`;
    await started(other, {
      job_id: "build-42",
      label: "nightly build",
      command: `echo first; echo oops >&2; while [ ! -e ${gate} ]; do sleep 0.02; done; ` +
        `echo second; exit 3`,
    });
    await other.next((m) => m.method === "process.output" && m.params?.type === "stderr");
    await other.next((m) => m.method === "process.output" && m.params?.data === "first\n");
    // Without -f: what it wrote so far, and back at once though the job still runs.
    const now = await cli(["logs", "-s", srv.url, "build"]);
    assert.equal(now.code, 0, now.stderr);
    assert.equal(now.stdout, "first\n");
    assert.equal(now.stderr, "oops\n");
    // With -f (by label): the same, then what comes, until the job ends.
    const follow = spawnLogs(["-f", "-s", srv.url, "nightly build"]);
    await follow.until("first\n");
    await Deno.writeTextFile(gate, "");
    const r = await follow.rest();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "first\nsecond\n");
    assert.equal(r.stderr, "oops\n");
    // A finished job's output is still there (the server keeps finished jobs for a while).
    const after = await cli(["logs", "-f", "-s", srv.url, "build-42"]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, "first\nsecond\n");
  } finally {
    await other.close();
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ccx logs says when the start of the output is gone, and names a missing or ambiguous job", async () => {
  const srv = await serveProcess();
  const other = await RawSession.open(srv.url);
  try {
    // 200 KiB of output: the server keeps the last 128 KiB of it.
    await started(other, {
      job_id: "big",
      command: "i=0; while [ $i -lt 2000 ]; do printf '%0100d\\n' $i; i=$((i+1)); done",
    });
    await other.completed("big");
    const r = await cli(["logs", "-s", srv.url, "big"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the server kept only the end of this job's output; the start is gone/);
    assert.ok(
      r.stdout.length <= 128 * 1024 + 101 && r.stdout.length > 100 * 1024,
      `${r.stdout.length}`,
    );
    assert.ok(r.stdout.endsWith(`${"1999".padStart(100, "0")}\n`));
    await started(other, { job_id: "bigger", command: "true" });
    const amb = await cli(["logs", "-s", srv.url, "bi"]);
    assert.equal(amb.code, 1);
    assert.match(
      amb.stderr,
      /^ccx logs: "bi" matches 2 jobs \(\w{8}\/big, \w{8}\/bigger\): give more of its id/,
    );
    const none = await cli(["logs", "-s", srv.url, "nope"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^ccx logs: no job "nope" among the 2 jobs the server lists/);
    const usage = await cli(["logs", "-s", srv.url]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^ccx logs: which job\? give its id \(see ccx ps\)/);
  } finally {
    await other.close();
    await srv.stop();
  }
});

/**
 * `ccx ps` against a real `ccx serve` process with jobs of another client, and the token rules
 * it shares with `ccx logs` and `ccx cancel` (those of the web page).
 */
import assert from "node:assert/strict";
import { formatJobs, groupByRun, runHeader } from "../lib/commands/ps.ts";
import type { ObservedJob } from "../lib/client/watcher.ts";
import { cli, serveProcess } from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";

async function started(s: RawSession, params: Record<string, unknown>) {
  const r = await s.call(String(params.job_id), "execute", params);
  assert.ok(r.result, `execute failed: ${JSON.stringify(r.error)}`);
  return r.result as { job_id: string; pid: number };
}

const run = (task: string, extra: Record<string, unknown> = {}) => ({
  suite: "demo",
  run_id: "run-1",
  run_total: 3,
  result_id: task,
  ...extra,
});

Deno.test("ccx ps lists every session's jobs by label, grouped by run with its progress", async () => {
  const token = "ps-" + crypto.randomUUID();
  const srv = await serveProcess([], { CCX_TOKEN: token });
  const other = await RawSession.open(srv.url, { authorization: `Bearer ${token}` });
  try {
    await started(other, {
      job_id: "t1-job",
      command: "echo one",
      label: "t1 · first task",
      meta: run("t1"),
    });
    await other.completed("t1-job");
    await started(other, {
      job_id: "t2-job",
      command: "echo two; sleep 60",
      label: "t2 · second task",
      meta: run("t2"),
    });
    await started(other, {
      job_id: "t3-job",
      command: "exit 4",
      label: "failure_1",
      meta: run("t3", { expect_exit: "non-zero" }),
    });
    await other.completed("t3-job");
    const plain = await started(other, {
      job_id: "0123456789abcdef",
      argv: ["sh", "-c", "echo plain; sleep 60"],
    });
    const env = { CCX_TOKEN: token };
    const r = await cli(["ps", "--server", srv.url], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^JOB +STATUS +ELAPSED +OUTPUT +PID +EXIT +TASK$/);
    assert.equal(lines[1], "# run run-1 (demo): 2 of 3 done, 1 running");
    assert.match(lines[2], /^t2-job +running +\d+\.\ds +\d+ B +\d+ +t2 · second task$/);
    assert.equal(lines[3], "# other jobs");
    // A long id is cut to 12 characters; an argv is shown as a shell line.
    assert.match(
      lines[4],
      new RegExp(`^0123456789ab +running .* ${plain.pid} +sh -c 'echo plain; sleep 60'$`),
    );
    assert.equal(lines.length, 5, r.stdout);

    const all = await cli(["ps", "--all", "--server", srv.url], { env });
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /\nt1-job +completed +.* 0 +t1 · first task\n/);
    // An expected failure says so.
    assert.match(all.stdout, /\nt3-job +failed \(expected\) +.* 4 +failure_1\n/);

    const json = await cli(["ps", "--json", "--server", srv.url], { env });
    const doc = JSON.parse(json.stdout);
    assert.equal(doc.server.version, "0.1.0");
    assert.deepEqual(doc.jobs.map((j: ObservedJob) => j.job_id).sort(), [
      "0123456789abcdef",
      "t2-job",
    ]);
    assert.equal(doc.jobs.find((j: ObservedJob) => j.job_id === "t2-job").meta.run_id, "run-1");
  } finally {
    await other.close();
    await srv.stop();
  }
});

Deno.test("ccx ps keeps the page's token rules: needed, refused, no server (exit 3)", async () => {
  const token = "ps-" + crypto.randomUUID();
  const srv = await serveProcess([], { CCX_TOKEN: token });
  try {
    const none = await cli(["ps", "-s", srv.url], { env: { CCX_TOKEN: "" } });
    assert.equal(none.code, 3);
    assert.match(
      none.stderr,
      /^ccx ps: ws:\/\/127\.0\.0\.1:\d+\/ws needs its token: give it with --token or the CCX_TOKEN/,
    );
    const wrong = await cli(["ps", "-s", srv.url, "--token", "wrong"]);
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /refused the token \(check --token or CCX_TOKEN\)/);
    // The page's URL, as `ccx stress --page` prints it, names the server too.
    const page = `http://127.0.0.1:${srv.port}/`;
    const ok = await cli(["ps", "-s", page], { env: { CCX_TOKEN: token } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "no jobs\n");
  } finally {
    await srv.stop();
  }
  const gone = await cli(["ps", "-s", srv.url]);
  assert.equal(gone.code, 3);
  assert.match(gone.stderr, /no ccx server answers at ws:\/\/127\.0\.0\.1:\d+\/ws/);
  const bad = await cli(["ps", "-s", "127.0.0.1:8004"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^ccx ps: --server: "127\.0\.0\.1:8004" is not a URL/);
});

Deno.test("the observer commands send the token as the page does: WebSocket subprotocol, no header", async () => {
  const seen: { protocol: string | null; authorization: string | null; url: string }[] = [];
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push({
      protocol: req.headers.get("sec-websocket-protocol"),
      authorization: req.headers.get("authorization"),
      url: req.url,
    });
    return new Response("no", { status: 401 });
  });
  try {
    const token = "tök/en+?=";
    const url = `ws://127.0.0.1:${http.addr.port}/ws`;
    const r = await cli(["ps", "-s", url], { env: { CCX_TOKEN: token } });
    assert.equal(r.code, 3);
    const b64 = new TextEncoder().encode(token).toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
    assert.deepEqual(seen, [{
      protocol: `ccx, ccx.token.${b64}`,
      authorization: null,
      url: `http://127.0.0.1:${http.addr.port}/ws`,
    }]);
  } finally {
    await http.shutdown();
  }
});

Deno.test("groupByRun() counts a run's task runs done (all of their jobs ended) and running jobs", () => {
  const j = (
    id: string,
    state: string,
    meta?: Record<string, unknown>,
    t = 0,
  ) => ({ session_id: "s", job_id: id, state, started_at: t, meta } as unknown as ObservedJob);
  const groups = groupByRun([
    j("x", "running", undefined, 1),
    j("a1", "done", { run_id: "r", result_id: "a", run_total: 4, suite: "S" }, 2),
    j("a2", "running", { run_id: "r", result_id: "a" }, 3),
    j("b", "done", { run_id: "r", result_id: "b" }, 4),
    j("c", "done", { run_id: "q" }, 5),
  ]);
  assert.deepEqual(groups.map(runHeader), [
    "run r (S): 1 of 4 done, 1 running",
    "run q: 1 done, 0 running",
    "other jobs",
  ]);
  assert.equal(formatJobs([]), "no jobs");
  assert.equal(
    formatJobs([j("c", "done")]),
    "no running jobs (ccx ps --all also lists the 1 finished one)",
  );
});

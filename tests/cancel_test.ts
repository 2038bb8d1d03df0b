/** `ccx cancel` against a real `ccx serve` process, on jobs another client started. */
import assert from "node:assert/strict";
import { cli, processesInGroup, serveProcess, waitFor } from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";

async function started(s: RawSession, params: Record<string, unknown>) {
  const r = await s.call(String(params.job_id), "execute", params);
  assert.ok(r.result, `execute failed: ${JSON.stringify(r.error)}`);
  return r.result as { pid: number };
}

Deno.test("ccx cancel ends another client's job and its whole process group; again, it says it ended", async () => {
  const srv = await serveProcess(["--grace-ms", "500"]);
  const other = await RawSession.open(srv.url);
  try {
    // A job whose children ignore SIGTERM: only the group's SIGKILL after the grace ends them.
    const r = await started(other, {
      job_id: "runaway",
      label: "t9 · stubborn task",
      command: `trap '' TERM; sh -c "trap '' TERM; sleep 1000" & echo ready; sleep 1000; wait`,
    });
    await waitFor(
      () => processesInGroup(r.pid).filter((p) => p.cmd === "sleep").length === 2,
      "the job's two sleeps",
      15000,
    );
    const c = await cli(["cancel", "-s", srv.url, "t9 · stubborn task"]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(
      c.stdout,
      new RegExp(
        `^canceled runaway \\(t9 · stubborn task\\): canceled after \\d+\\.\\ds \\(signal SIGKILL\\), ` +
          `pid ${r.pid} and its process group ended\\n$`,
      ),
    );
    // Its owner was told, and nothing of the group is left.
    const done = await other.completed("runaway");
    assert.equal(done.params?.status, "canceled");
    assert.deepEqual(processesInGroup(r.pid), []);
    const again = await cli(["cancel", "-s", srv.url, "runaway"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^ccx cancel: job runaway has already ended \(canceled, exit \d+\)/);
  } finally {
    await other.close();
    await srv.stop();
  }
});

Deno.test("ccx cancel with an unknown name among several cancels nothing", async () => {
  const srv = await serveProcess();
  const other = await RawSession.open(srv.url);
  try {
    const r = await started(other, { job_id: "keep-me", command: "sleep 1000" });
    const c = await cli(["cancel", "-s", srv.url, "keep-me", "typo"]);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /^ccx cancel: no job "typo" among the 1 job the server lists/);
    assert.equal(c.stdout, "");
    const w = await other.call("j", "jobs");
    const jobs = w.result?.jobs as { job_id: string; state: string }[];
    assert.equal(jobs.find((j) => j.job_id === "keep-me")?.state, "running");
    assert.ok(processesInGroup(r.pid).length > 0);
    const usage = await cli(["cancel", "-s", srv.url]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /which job\?/);
  } finally {
    await other.close();
    await srv.stop();
  }
});

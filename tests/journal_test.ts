import assert from "node:assert/strict";
import { join } from "node:path";
import { JobJournal, reapOrphans } from "../lib/serve/journal.ts";
import { processStartTime } from "../lib/common/proc.ts";
import {
  pidsMatching,
  processesInGroup,
  type ServeProcess,
  serveProcess,
  waitFor,
} from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";

/** A detached `sleep` (its own group) carrying `tag` in its command line. */
function detachedSleep(tag: string): Deno.ChildProcess {
  return new Deno.Command("/bin/sh", {
    args: ["-c", `: ${tag}; exec sleep 1000`],
    detached: true,
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test("reapOrphans ends groups of a dead owner only when the start time matches", async () => {
  const dir = await Deno.makeTempDir();
  const ours = detachedSleep("journal_ours");
  const reused = detachedSleep("journal_reused");
  try {
    await waitFor(() => processStartTime(ours.pid) !== undefined, "the sleeps");
    const lines = [
      { owner: { pid: 999_999_999, start: 1 } },
      { add: { pgid: ours.pid, start: processStartTime(ours.pid), session: "s", job_id: "a" } },
      // Same pid, other start time: the pid was reused by something that is not our job.
      {
        add: {
          pgid: reused.pid,
          start: processStartTime(reused.pid)! - 1,
          session: "s",
          job_id: "b",
        },
      },
      { add: { pgid: 999_999_998, start: 5, session: "s", job_id: "c" } },
      { del: 999_999_998 },
    ];
    await Deno.writeTextFile(
      join(dir, "1-x.journal"),
      lines.map((l) => JSON.stringify(l)).join("\n"),
    );
    const reaped = await reapOrphans(dir, { graceMs: 200 });
    assert.deepEqual(reaped.map((g) => [g.job_id, g.processes, g.owner_pid]), [[
      "a",
      1,
      999_999_999,
    ]]);
    assert.deepEqual(processesInGroup(ours.pid), []);
    assert.equal(processesInGroup(reused.pid).length, 1, "a reused pid is left alone");
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the dead server's journal is removed");
  } finally {
    for (const c of [ours, reused]) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a live server's journal is never reaped; a closed journal is deleted", async () => {
  const dir = await Deno.makeTempDir();
  const child = detachedSleep("journal_live");
  try {
    const journal = JobJournal.open(dir);
    await waitFor(() => processStartTime(child.pid) !== undefined, "the sleep");
    journal.add(child.pid, "s", "j");
    assert.deepEqual(await reapOrphans(dir, { graceMs: 100 }), []);
    assert.equal(processesInGroup(child.pid).length, 1);
    // Many jobs come and go: the file is compacted instead of growing without end.
    for (let i = 0; i < 600; i++) {
      journal.add(Deno.pid, "s", `x${i}`);
      journal.remove(Deno.pid);
    }
    const lines = Deno.readTextFileSync(journal.path).trim().split("\n");
    assert.ok(lines.length < 600, `${lines.length} lines after 600 jobs`);
    assert.ok(lines.some((l) => l.includes(`"pgid":${child.pid}`)), "the live entry is kept");
    journal.remove(child.pid);
    journal.close();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

/** `ccx serve` with its state in `state`; resolves once it prints where it listens. */
function serve(state: string, extra: string[] = []): Promise<ServeProcess> {
  return serveProcess(["--port", "0", ...extra], { CCX_STATE_DIR: state }, { bare: true });
}

Deno.test("kill -9 of a server with running, paused and TERM-proof jobs: the next start reaps them all in grace + 1 s", async () => {
  const state = await Deno.makeTempDir();
  const tag = `reaptest_${crypto.randomUUID().slice(0, 8)}`;
  const first = await serve(state, ["--grace-ms", "500", "--quiet"]);
  let second: ServeProcess | undefined;
  try {
    const s = await RawSession.open(first.url);
    const cmds = [
      `: ${tag}; sleep 1000`,
      `: ${tag}; echo ready; sleep 1000`,
      `: ${tag}; trap '' TERM; sh -c "trap '' TERM; : ${tag}; sleep 1000" & echo ready; wait`,
    ];
    const jobs: { job_id: string; pgid: number }[] = [];
    for (const [i, command] of cmds.entries()) {
      const r = await s.call(i + 1, "execute", { command });
      jobs.push(r.result as { job_id: string; pgid: number });
    }
    await waitFor(() => s.output(jobs[2].job_id).includes("ready"), "the TERM-proof job");
    await waitFor(() => s.output(jobs[1].job_id).includes("ready"), "the job to pause");
    assert.equal(
      (await s.call(9, "control", { type: "PAUSE", job_id: jobs[1].job_id })).result?.status,
      "paused",
    );
    const before = pidsMatching(tag).length;
    assert.ok(before >= 4, `expected the jobs' processes, found ${before}`);
    const tmp = Deno.env.get("TMPDIR") || "/tmp";
    const socketDirs = () =>
      [...Deno.readDirSync(tmp)].filter((e) => e.name.startsWith(`ccx-serve-${first.child.pid}-`));
    assert.equal(socketDirs().length, 1, "the server's private socket directory");
    first.child.kill("SIGKILL");
    await first.child.status;
    await s.closed;
    // The jobs outlive their server...
    assert.equal(pidsMatching(tag).length, before, "orphans exist before the restart");
    // ...until the next server starts in the same state directory.
    const t0 = performance.now();
    second = await serve(state, ["--grace-ms", "500"]);
    // The dead server's private socket directory is cleared away too (once its socket refuses
    // connections, which the new server checks in the background as it starts).
    await waitFor(
      () => socketDirs().length === 0,
      "the dead server's socket directory to go",
      10_000,
    );
    await waitFor(() => pidsMatching(tag).length === 0, "every orphan to be reaped", 10_000);
    const took = performance.now() - t0;
    // Grace (500 ms) + 1 s, plus the start of a Deno process, which takes up to a few seconds on
    // a loaded 2-core machine (2.7 s seen with the test suite and stress-ng beside it). A server
    // that did not reap would leave them for good: the TERM-proof ones sleep 1000 s.
    assert.ok(took < 500 + 1000 + 4000, `reaping took ${Math.round(took)} ms`);
    for (const j of jobs) assert.deepEqual(processesInGroup(j.pgid), []);
    second.child.kill("SIGTERM");
    const [, err] = await Promise.all([
      second.child.status,
      new Response(second.child.stderr).text(),
    ]);
    for (const j of jobs) {
      assert.match(err, new RegExp(`reaping job ${j.job_id} \\(pgid ${j.pgid}`));
    }
    assert.deepEqual(
      [...Deno.readDirSync(join(state, "jobs"))],
      [],
      "a clean stop leaves no journal",
    );
  } finally {
    for (const srv of [first, second]) {
      if (!srv) continue;
      await srv.stop("SIGKILL");
    }
    for (const pid of pidsMatching(tag)) Deno.kill(pid, "SIGKILL");
    await Deno.remove(state, { recursive: true });
  }
});

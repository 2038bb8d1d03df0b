import assert from "node:assert/strict";
import { join } from "node:path";
import { JobJournal, NEAR_TICKS, reapOrphans, REMOVAL_DELAY_MS } from "../lib/serve/journal.ts";
import { processStartTime } from "../lib/common/proc.ts";
import {
  listenUrl,
  pidsMatching,
  processesInGroup,
  ROOT,
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
    journal.flush();
    assert.deepEqual(await reapOrphans(dir, { graceMs: 100 }), []);
    assert.equal(processesInGroup(child.pid).length, 1);
    // Many jobs come and go: the file is compacted instead of growing without end.
    for (let i = 0; i < 600; i++) {
      journal.add(Deno.pid, "s", `x${i}`);
      journal.flush();
      journal.remove(Deno.pid);
      journal.flush();
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

Deno.test("the journal writes a task's changes in one write, before the event loop goes on", async () => {
  const dir = await Deno.makeTempDir();
  const child = detachedSleep("journal_batch");
  try {
    await waitFor(() => processStartTime(child.pid) !== undefined, "the sleep");
    const journal = JobJournal.open(dir);
    const text = () => Deno.readTextFileSync(journal.path);
    const header = text();
    // A batch of `execute` requests in one message: all written at the end of the task.
    for (let i = 0; i < 100; i++) journal.add(Deno.pid, "s", `job${i}`);
    journal.add(child.pid, "s", "kept");
    assert.equal(text(), header, "nothing written within the task");
    // The next microtask: before any timer, I/O or other message (a kill -9 after the answer
    // to `execute` finds the job on disk).
    await Promise.resolve();
    assert.equal(text().split("\n").length, header.split("\n").length + 101, text());
    // The start time is noted from the clock, within NEAR_TICKS of the kernel's.
    const line = text().split("\n").find((l) => l.includes(`"pgid":${child.pid},`))!;
    const entry = JSON.parse(line).add;
    assert.equal(entry.near, NEAR_TICKS);
    assert.ok(
      Math.abs(entry.start - processStartTime(child.pid)!) < 2 * 100 + NEAR_TICKS,
      `noted ${entry.start}, kernel ${processStartTime(child.pid)}`,
    );
    // Removals go with the next batch, or on their own REMOVAL_DELAY_MS later.
    journal.remove(Deno.pid);
    journal.add(Deno.pid, "s", "next");
    await Promise.resolve();
    assert.ok(text().endsWith(`{"del":${Deno.pid}}\n${text().split("\n").at(-2)}\n`), text());
    for (let i = 0; i < 100; i++) journal.remove(Deno.pid);
    assert.ok(!text().endsWith(`{"del":${Deno.pid}}\n`));
    await new Promise((r) => setTimeout(r, REMOVAL_DELAY_MS + 20));
    assert.ok(text().endsWith(`{"del":${Deno.pid}}\n`), text());
    journal.close();
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an entry whose start time was noted from the clock is reaped within NEAR_TICKS only", async () => {
  const dir = await Deno.makeTempDir();
  const near = detachedSleep("journal_near");
  const far = detachedSleep("journal_far");
  try {
    await waitFor(() => processStartTime(far.pid) !== undefined, "the sleeps");
    const start = (pid: number) => processStartTime(pid)!;
    const lines = [
      { owner: { pid: 2 ** 22 + 1, start: 1 } },
      {
        add: {
          pgid: near.pid,
          start: start(near.pid) + 50,
          near: NEAR_TICKS,
          session: "s",
          job_id: "n",
        },
      },
      {
        add: {
          pgid: far.pid,
          start: start(far.pid) + 150,
          near: NEAR_TICKS,
          session: "s",
          job_id: "f",
        },
      },
    ];
    Deno.writeTextFileSync(
      join(dir, `${2 ** 22 + 1}-1-abcd1234.journal`),
      lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
    );
    const reaped = await reapOrphans(dir, { graceMs: 200 });
    assert.deepEqual(reaped.map((g) => g.job_id), ["n"]);
    assert.deepEqual(processesInGroup(near.pid), []);
    assert.equal(processesInGroup(far.pid).length, 1, "1.5 s off: another process, left alone");
  } finally {
    for (const c of [near, far]) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Why a small tmpfs cannot be mounted here, or undefined when it can (root or CAP_SYS_ADMIN).
 * A full disk is simulated with one.
 */
const mountProblem = (() => {
  const dir = Deno.makeTempDirSync({ prefix: "ccx-tmpfs-probe-" });
  try {
    const out = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!out.success) return new TextDecoder().decode(out.stderr).trim() || `exit ${out.code}`;
    new Deno.Command("umount", { args: [dir] }).outputSync();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    Deno.removeSync(dir);
  }
})();
/** Under CI=true these tests never skip: a box that cannot mount must fail them, and say why. */
const noMount = mountProblem !== undefined && Deno.env.get("CI") !== "true";

/**
 * Runs `fn` with a 64 KiB tmpfs mounted on a fresh directory and filled to the last byte; `free`
 * makes room again. The tmpfs is unmounted whatever happens.
 */
async function withFullDisk(fn: (dir: string, free: () => void) => Promise<void>): Promise<void> {
  if (mountProblem !== undefined) {
    throw new Error(
      `cannot mount a tmpfs to simulate a full disk (needs root or CAP_SYS_ADMIN): ${mountProblem}`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "ccx-full-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
    stderr: "piped",
  }).output();
  try {
    assert.ok(mount.success, `mount: ${new TextDecoder().decode(mount.stderr)}`);
    Deno.mkdirSync(join(dir, "jobs"));
    const filler = join(dir, "filler");
    const f = Deno.openSync(filler, { write: true, create: true });
    try {
      for (const block = new Uint8Array(4096);;) f.writeSync(block);
    } catch (e) {
      assert.match((e as Error).message, /No space left/);
    } finally {
      f.close();
    }
    await fn(dir, () => Deno.removeSync(filler));
  } finally {
    if (mount.success) {
      const um = await new Deno.Command("umount", { args: ["-l", dir] }).output();
      assert.ok(um.success, `umount ${dir} failed`);
    }
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "a journal that cannot be written says so, retries, and is whole once there is room",
  ignore: noMount,
  fn: () =>
    withFullDisk(async (state, free) => {
      const child = detachedSleep("journal_full");
      const logs: { msg: string; event?: unknown }[] = [];
      const journal = JobJournal.open(join(state, "jobs"), {
        log: (msg, f) => logs.push({ msg, event: f?.event }),
        retryMs: 50,
      });
      try {
        await waitFor(() => processStartTime(child.pid) !== undefined, "the sleep");
        assert.equal(journal.failing, true);
        assert.equal(logs.length, 1, JSON.stringify(logs));
        assert.equal(logs[0].event, "journal_unwritable");
        assert.match(logs[0].msg, /cannot write the crash journal .*No space left/);
        journal.add(child.pid, "s", "started-while-full");
        journal.add(Deno.pid, "s", "gone-while-full");
        journal.flush();
        journal.remove(Deno.pid);
        journal.flush();
        assert.equal(logs.length, 1, "said once, not at every change");
        free();
        await waitFor(() => !journal.failing, "the journal to be written again");
        assert.equal(logs.at(-1)?.event, "journal_written");
        const text = Deno.readTextFileSync(journal.path);
        assert.match(text.split("\n")[0], /"owner":\{"pid":\d+/);
        assert.ok(text.includes(`"pgid":${child.pid}`), text);
        assert.ok(!text.includes("gone-while-full"), text);
      } finally {
        journal.close();
        child.kill("SIGKILL");
        await child.status;
      }
    }),
});

Deno.test("a journal whose first line is unreadable is judged by its file name", async () => {
  const dir = await Deno.makeTempDir();
  const orphan = detachedSleep("journal_cut_orphan");
  const kept = detachedSleep("journal_cut_kept");
  try {
    await waitFor(
      () => processStartTime(orphan.pid) !== undefined && processStartTime(kept.pid) !== undefined,
      "the sleeps",
    );
    const body = (pgid: number) =>
      `{"owner":{"pid":12\n` + // the first line, cut short
      JSON.stringify({ add: { pgid, start: processStartTime(pgid), session: "s", job_id: "j" } }) +
      "\n";
    // A dead owner (no such pid) and this very process, which is alive.
    Deno.writeTextFileSync(join(dir, "999999999-1-abcd1234.journal"), body(orphan.pid));
    const mine = `${Deno.pid}-${processStartTime(Deno.pid)}-abcd1234.journal`;
    Deno.writeTextFileSync(join(dir, mine), body(kept.pid));
    const reaped = await reapOrphans(dir, { graceMs: 200 });
    assert.deepEqual(reaped.map((g) => [g.pgid, g.owner_pid]), [[orphan.pid, 999_999_999]]);
    assert.deepEqual(processesInGroup(orphan.pid), []);
    assert.equal(processesInGroup(kept.pid).length, 1, "a live owner's journal is left alone");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [mine]);
  } finally {
    for (const c of [orphan, kept]) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});

/** A process that has exited but that its parent never reaps (a zombie), and that parent. */
async function zombie(): Promise<{ pid: number; parent: Deno.ChildProcess }> {
  const parent = new Deno.Command("/bin/sh", {
    // The child ends after the shell has become `sleep`: a shell could still reap it.
    args: ["-c", "(sleep 0.3; exit 0) & echo $!; exec sleep 1000"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await reader.read()).value ?? "";
  await reader.cancel();
  const pid = Number(text.trim());
  const state = () => Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1][0];
  await waitFor(() => state() === "Z", "the zombie");
  return { pid, parent };
}

Deno.test("a journal whose owner is a zombie (killed, not yet reaped) is reaped", async () => {
  const dir = await Deno.makeTempDir();
  const orphan = detachedSleep("journal_zombie_owner");
  const z = await zombie();
  try {
    await waitFor(() => processStartTime(orphan.pid) !== undefined, "the sleep");
    const lines = [
      { owner: { pid: z.pid, start: processStartTime(z.pid) } },
      { add: { pgid: orphan.pid, start: processStartTime(orphan.pid), session: "s", job_id: "z" } },
    ];
    Deno.writeTextFileSync(
      join(dir, `${z.pid}-${processStartTime(z.pid)}-abcd1234.journal`),
      lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
    );
    const reaped = await reapOrphans(dir, { graceMs: 200 });
    assert.deepEqual(reaped.map((g) => [g.job_id, g.owner_pid]), [["z", z.pid]]);
    assert.deepEqual(processesInGroup(orphan.pid), []);
  } finally {
    for (const c of [orphan, z.parent]) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    }
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

/** The journals in `state`'s journal directory, as text. */
function journals(state: string): string[] {
  const dir = join(state, "jobs");
  return [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".journal"))
    .map((e) => Deno.readTextFileSync(join(dir, e.name)));
}

Deno.test({
  name:
    "a server whose state directory is full says so, writes its journal once there is room, and a kill -9 then leaves no orphan",
  ignore: noMount,
  fn: () =>
    withFullDisk(async (state, free) => {
      const tag = `reapfull_${crypto.randomUUID().slice(0, 8)}`;
      // --quiet silences job lines, not this: it is about the server's own safety.
      const first = await serve(state, ["--grace-ms", "500", "--quiet"]);
      let second: ServeProcess | undefined;
      try {
        const s = await RawSession.open(first.url);
        const pgids: number[] = [];
        for (const i of [1, 2]) {
          const r = await s.call(i, "execute", { command: `: ${tag}; sleep 1000` });
          pgids.push((r.result as { pgid: number }).pgid);
        }
        await waitFor(() => pidsMatching(tag).length === 2, "the jobs");
        free();
        // Retried every 2 s: the jobs started while the disk was full get into the journal.
        await waitFor(
          () => journals(state).some((t) => pgids.every((p) => t.includes(`"pgid":${p}`))),
          "the journal to name both jobs",
        );
        first.child.kill("SIGKILL");
        await first.child.status;
        await s.closed;
        const err = await new Response(first.child.stderr).text();
        assert.match(err, /cannot write the crash journal .*No space left on device/);
        assert.match(err, /crash journal .* written again \(2 running job groups noted\)/);
        second = await serve(state, ["--grace-ms", "500", "--quiet"]);
        await waitFor(() => pidsMatching(tag).length === 0, "every orphan to be reaped");
      } finally {
        for (const srv of [first, second]) await srv?.stop("SIGKILL");
        for (const pid of pidsMatching(tag)) Deno.kill(pid, "SIGKILL");
      }
    }),
});

Deno.test("a killed server that is still a zombie has its orphans reaped by the next start", async () => {
  const state = await Deno.makeTempDir();
  const tag = `reapzombie_${crypto.randomUUID().slice(0, 8)}`;
  // The server's parent becomes `sleep` (the shell execs it), which never reaps it: once
  // killed, the server stays a zombie as long as this parent lives.
  const parent = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      `"$0" run -A "$1" serve --port 0 --quiet --grace-ms 500 & exec sleep 1000`,
      Deno.execPath(),
      join(ROOT, "main.ts"),
    ],
    env: { CCX_STATE_DIR: state },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let second: ServeProcess | undefined;
  try {
    const url = await listenUrl(reader);
    let serverPid = 0;
    // The server is the child of the shell, now `sleep`.
    for (const p of pidsMatching(`${join(ROOT, "main.ts")}`)) {
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`).split(") ")[1].split(" ");
      if (Number(stat[1]) === parent.pid) serverPid = p;
    }
    assert.ok(serverPid > 0, "the server under the shell");
    const s = await RawSession.open(url);
    await s.call(1, "execute", { command: `: ${tag}; sleep 1000` });
    await waitFor(() => pidsMatching(tag).length === 1, "the job");
    Deno.kill(serverPid, "SIGKILL");
    const state0 = () => Deno.readTextFileSync(`/proc/${serverPid}/stat`).split(") ")[1][0];
    await waitFor(() => state0() === "Z", "the killed server to be a zombie");
    await s.closed;
    second = await serve(state, ["--grace-ms", "500", "--quiet"]);
    await waitFor(() => pidsMatching(tag).length === 0, "the zombie server's orphan to be reaped");
    assert.equal(state0(), "Z", "the owner was still a zombie when it was judged dead");
  } finally {
    await second?.stop("SIGKILL");
    await reader.cancel().catch(() => {});
    parent.kill("SIGKILL");
    await parent.status;
    for (const pid of pidsMatching(tag)) Deno.kill(pid, "SIGKILL");
    await Deno.remove(state, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  JobJournal,
  NEAR_TICKS,
  readJournalLine,
  reapOrphans,
  REMOVAL_DELAY_MS,
} from "../lib/serve/journal.ts";
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
import { FULL_DISK, withFullDisk } from "./_util/full_disk.ts";

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

Deno.test("readJournalLine() names the JSON path of each part that is not what the writer writes", () => {
  const entry = { pgid: 4242, start: 77, session: "s", job_id: "j" };
  assert.deepEqual(readJournalLine({ add: entry }), { add: entry, problems: [] });
  // A key the reader does not check is kept, as the reaper kept the whole entry before.
  assert.deepEqual(readJournalLine({ add: { ...entry, near: 100 } }).add, { ...entry, near: 100 });
  assert.deepEqual(readJournalLine({ owner: { pid: 9, start: 1 }, created: 5 }), {
    owner: { pid: 9, start: 1 },
    problems: [],
  });
  // Each part is read on its own: a bad owner does not lose the add of the same line.
  assert.deepEqual(readJournalLine({ owner: { pid: "9", start: 1 }, add: entry }), {
    add: entry,
    problems: [{ path: "owner.pid", message: 'expected an integer, got "9"' }],
  });
  const problems = (v: unknown) => readJournalLine(v).problems;
  assert.deepEqual(problems(42), [{ path: "$", message: "expected an object, got 42" }]);
  assert.deepEqual(problems({ add: 5 }), [{ path: "add", message: "expected an object, got 5" }]);
  assert.deepEqual(problems({ add: { ...entry, pgid: 1 } }), [
    { path: "add.pgid", message: "expected an integer of 2 or more, got 1" },
  ]);
  assert.deepEqual(problems({ add: { ...entry, start: "77" } }), [
    { path: "add.start", message: 'expected an integer, got "77"' },
  ]);
  assert.deepEqual(problems({ add: { ...entry, job_id: undefined } }), [
    { path: "add.job_id", message: "required" },
  ]);
  assert.deepEqual(problems({ del: "4242" }), [
    { path: "del", message: 'expected a number, got "4242"' },
  ]);
});

Deno.test("reapOrphans skips lines that are not what the writer writes and reaps the rest", async () => {
  const dir = await Deno.makeTempDir();
  const ours = detachedSleep("journal_malformed");
  try {
    await waitFor(() => processStartTime(ours.pid) !== undefined, "the sleep");
    const good = { pgid: ours.pid, start: processStartTime(ours.pid), session: "s", job_id: "a" };
    const text = [
      JSON.stringify({ owner: { pid: 999_999_999, start: 1 } }),
      "42",
      "[1,2]",
      JSON.stringify({ add: 5 }),
      JSON.stringify({ add: { pgid: 999_999_997, session: "s", job_id: "no-start" } }),
      JSON.stringify({ owner: { pid: "x" }, add: good }),
      JSON.stringify({ del: "x" }),
      '{"add": {"pgid"',
    ].join("\n");
    await Deno.writeTextFile(join(dir, "1-x.journal"), text);
    const reaped = await reapOrphans(dir, { graceMs: 200 });
    assert.deepEqual(reaped.map((g) => [g.job_id, g.owner_pid]), [["a", 999_999_999]]);
    assert.deepEqual(processesInGroup(ours.pid), []);
  } finally {
    try {
      ours.kill("SIGKILL");
    } catch { /* gone */ }
    await ours.status;
    await Deno.remove(dir, { recursive: true });
  }
});

/** Kills and awaits test children, whatever state they are in. */
async function endAll(children: Deno.ChildProcess[]): Promise<void> {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
    await c.status;
  }
}

Deno.test("fault paths: a journal cut mid-line by the crash is read up to the cut; a live pid that is another process now counts as a dead owner", async () => {
  const dir = await Deno.makeTempDir();
  const job = detachedSleep("journal_cut");
  const impostor = detachedSleep("journal_impostor"); // holds the owner's pid, not its start
  try {
    await waitFor(
      () => processStartTime(job.pid) !== undefined && processStartTime(impostor.pid) !== undefined,
      "the sleeps",
    );
    const owner = { pid: impostor.pid, start: processStartTime(impostor.pid)! - 7 };
    const text = [
      JSON.stringify({ owner }),
      JSON.stringify({
        add: { pgid: job.pid, start: processStartTime(job.pid), session: "s", job_id: "cut" },
      }),
      // The server died while writing this line.
      '{"add":{"pgid":12',
    ].join("\n");
    await Deno.writeTextFile(join(dir, `${impostor.pid}-1-x.journal`), text);
    const reaped = await reapOrphans(dir, { graceMs: 200 });
    assert.deepEqual(reaped.map((g) => [g.job_id, g.owner_pid]), [["cut", impostor.pid]]);
    assert.deepEqual(processesInGroup(job.pid), [], "the whole entry before the cut was reaped");
    assert.equal(processesInGroup(impostor.pid).length, 1, "the impostor owner is not touched");
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the journal is removed");
  } finally {
    await endAll([job, impostor]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fault paths: an entry whose pgid is now a process of another group is left alone", async () => {
  const dir = await Deno.makeTempDir();
  // Not detached: its pid is not a process group (it is in this test process's group).
  const other = new Deno.Command("/bin/sh", {
    args: ["-c", ": journal_not_a_group; exec sleep 1000"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor(() => processStartTime(other.pid) !== undefined, "the sleep");
    const lines = [
      { owner: { pid: 999_999_997, start: 1 } },
      {
        add: {
          pgid: other.pid,
          start: processStartTime(other.pid),
          session: "s",
          job_id: "mismatch",
        },
      },
    ];
    await Deno.writeTextFile(
      join(dir, "999999997-1-x.journal"),
      lines.map((l) => JSON.stringify(l)).join("\n"),
    );
    const reaped = await reapOrphans(dir, { graceMs: 200 });
    assert.deepEqual(reaped, [], "no group of that pgid: nothing to reap");
    const st = Deno.readTextFileSync(`/proc/${other.pid}/stat`);
    assert.notEqual(st.slice(st.lastIndexOf(")") + 2)[0], "Z", "the process still runs");
  } finally {
    await endAll([other]);
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Makes `n` jobs come and go in `journal`: past 256 removals it compacts the file (rewrites it
 * through `<journal>.tmp`).
 */
function churn(journal: JobJournal, n: number): void {
  for (let i = 0; i < n; i++) {
    journal.add(Deno.pid, "s", `churn${i}`);
    journal.remove(Deno.pid);
  }
}

Deno.test("fault paths: a compaction that cannot be written is said once, leaves the journal naming every running group, and is made once it can", async () => {
  const dir = await Deno.makeTempDir();
  const child = detachedSleep("journal_compact");
  const logs: { msg: string; event?: unknown }[] = [];
  const journal = JobJournal.open(dir, {
    log: (msg, f) => logs.push({ msg, event: f?.event }),
    retryMs: 50,
  });
  try {
    await waitFor(() => processStartTime(child.pid) !== undefined, "the sleep");
    journal.add(child.pid, "s", "running");
    // The compaction writes `<journal>.tmp` first: a directory in its place, which the
    // journal cannot remove (it holds a file), makes it fail until the test removes it.
    Deno.mkdirSync(`${journal.path}.tmp`);
    Deno.writeTextFileSync(`${journal.path}.tmp/obstacle`, "");
    churn(journal, 300);
    // The batch (and with it the compaction, 300 removals) is written at the end of this task.
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(journal.failing, true);
    assert.equal(logs.length, 1, JSON.stringify(logs));
    assert.equal(logs[0].event, "journal_unwritable");
    assert.match(
      logs[0].msg,
      /cannot write the crash journal .*\.journal: .*retrying every 0\.05 s/,
    );
    // The journal on disk was left as it was, not cut short: it still names the running group.
    const during = Deno.readTextFileSync(journal.path);
    assert.match(during.split("\n")[0], /"owner":\{"pid":\d+/);
    assert.ok(during.includes(`"pgid":${child.pid}`), during);
    Deno.removeSync(`${journal.path}.tmp`, { recursive: true });
    await waitFor(() => !journal.failing, "the compaction to be made");
    assert.equal(logs.at(-1)?.event, "journal_written");
    assert.equal(logs.length, 2, JSON.stringify(logs));
    const after = Deno.readTextFileSync(journal.path).trim().split("\n");
    assert.equal(after.length, 2, `the header and the running group: ${after}`);
    assert.ok(after[1].includes(`"pgid":${child.pid}`), after[1]);
  } finally {
    journal.close();
    await endAll([child]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fault paths: a server killed while its journal's compaction fails has its running group reaped by the next start", async () => {
  const dir = await Deno.makeTempDir();
  const orphan = detachedSleep("journal_compact_crash");
  // A server stand-in: it journals the group, has its compaction fail, says so, and waits to be
  // killed (a crash while the journal lags).
  const script = join(dir, "server.ts");
  await Deno.writeTextFile(
    script,
    `import { JobJournal } from ${JSON.stringify(`${ROOT}lib/serve/journal.ts`)};
const [journals, pgid] = Deno.args;
const journal = JobJournal.open(journals, {
  log: (msg, f) => console.log(JSON.stringify({ msg, event: f?.event })),
});
journal.add(Number(pgid), "s", "orphan");
Deno.mkdirSync(journal.path + ".tmp");
Deno.writeTextFileSync(journal.path + ".tmp/obstacle", "");
for (let i = 0; i < 300; i++) {
  journal.add(Deno.pid, "s", "churn" + i);
  journal.remove(Deno.pid);
}
await new Promise((r) => setTimeout(r, 0)); // the batch is written at the end of the task
console.log(JSON.stringify({ failing: journal.failing }));
await new Promise(() => {});
`,
  );
  const journals = join(dir, "jobs");
  await waitFor(() => processStartTime(orphan.pid) !== undefined, "the sleep");
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", script, journals, String(orphan.pid)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes('"failing"')) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    await lines.cancel();
    assert.match(out, /"event":"journal_unwritable"/);
    assert.match(out, /\{"failing":true\}/);
    server.kill("SIGKILL");
    await server.status;
    const reaped = await reapOrphans(journals, { graceMs: 200 });
    assert.deepEqual(reaped.map((g) => [g.job_id, g.pgid, g.processes]), [[
      "orphan",
      orphan.pid,
      1,
    ]]);
    assert.equal((await orphan.status).signal, "SIGTERM");
  } finally {
    await endAll([server, orphan]);
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

Deno.test({
  name: "a journal that cannot be written says so, retries, and is whole once there is room",
  ignore: FULL_DISK.ignore,
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
        journal.remove(Deno.pid);
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

/**
 * A process that has exited but that its parent never reaps (a zombie), and that parent. The
 * child outlives the shell's exec of `sleep`: a child that exits at once may be reaped by the
 * shell itself before the exec (seen: the test then failed on its missing /proc entry).
 */
async function zombie(): Promise<{ pid: number; parent: Deno.ChildProcess }> {
  const parent = new Deno.Command("/bin/sh", {
    // The child outlives the exec (so the shell, which would reap it, is gone by then) and ends
    // under `sleep 1000`, which never reaps: a zombie, even on a loaded machine.
    args: ["-c", "sleep 0.5 & echo $!; exec sleep 1000"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await reader.read()).value ?? "";
  await reader.cancel();
  const pid = Number(text.trim());
  const state = () => Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1][0];
  await waitFor(() => state() === "Z", "the zombie", 15_000);
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

Deno.test("kill -9 of a server with running, paused and TERM-proof jobs: the next start reaps them all within 0.5 s + grace, by its own clock", async () => {
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
    second = await serve(state, ["--grace-ms", "500", "--log-format", "json"]);
    // The dead server's private socket directory is cleared away too (once its socket refuses
    // connections, which the new server checks in the background as it starts).
    await waitFor(
      () => socketDirs().length === 0,
      "the dead server's socket directory to go",
      10_000,
    );
    await waitFor(() => pidsMatching(tag).length === 0, "every orphan to be reaped", 10_000);
    for (const j of jobs) assert.deepEqual(processesInGroup(j.pgid), []);
    second.child.kill("SIGTERM");
    await second.child.status;
    const err = await second.stderrEnded;
    // How long the reaping took, by the server's own clock from its start to the last group
    // gone: no Deno start-up in it. README: 0.5 s + grace (here 1 s); the test allows 5.5 s for
    // a loaded machine. A server that did not reap would leave them for good (they sleep 1000 s).
    const gone = err.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .filter((l) => l.event === "orphans_gone");
    assert.equal(gone.length, 1, err);
    assert.equal(gone[0].groups, 3);
    assert.ok(gone[0].elapsed_ms <= 5500, `reaping took ${gone[0].elapsed_ms} ms`);
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
  ignore: FULL_DISK.ignore,
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
        const err = await first.stderrEnded;
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

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  readWorkspace,
  resolveInside,
  UNREMOVABLE_DIR,
  WorkspaceError,
  WorkspaceManager,
} from "../lib/serve/workspace.ts";
import { validateExecute } from "../lib/common/protocol.ts";
import {
  cli,
  listenUrl,
  newTag,
  pidsMatching,
  ROOT,
  serveProcess,
  STATE_DIR,
  waitFor,
  withServer,
} from "./_util/helpers.ts";
import { type Msg, RawSession } from "./_util/ws.ts";
import { HINTS, probeBindMount, probeChattr, requireCapability } from "./_util/capability.ts";

/** Reads a `ccx serve` banner from its stdout and returns the WebSocket URL. */
async function bannerUrl(stdout: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  const url = await listenUrl(reader);
  reader.releaseLock();
  return url;
}

function tempRoot(): string {
  return Deno.makeTempDirSync({ prefix: "ccx-ws-test-" });
}

async function run(s: RawSession, id: string, params: Record<string, unknown>): Promise<Msg> {
  const r = await s.call(id, "execute", { job_id: id, ...params });
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  return await s.completed(id);
}

Deno.test("two concurrent jobs writing the same file name into their workspaces do not collide", async () => {
  const root = tempRoot();
  await withServer({ workspaceRoot: root }, async (server) => {
    const s = await RawSession.open(server.url);
    const write = (who: string) => ({
      command: `printf '${who}' > config.py; sleep 0.2; cat config.py`,
      workspace: { keep: "always" },
    });
    s.send({ jsonrpc: "2.0", id: 1, method: "execute", params: { job_id: "a", ...write("A") } });
    s.send({ jsonrpc: "2.0", id: 2, method: "execute", params: { job_id: "b", ...write("B") } });
    const [a, b] = await Promise.all([s.completed("a"), s.completed("b")]);
    assert.equal(s.output("a"), "A");
    assert.equal(s.output("b"), "B");
    const pa = a.params!.workspace as string;
    const pb = b.params!.workspace as string;
    assert.notEqual(pa, pb);
    assert.ok(pa.startsWith(root) && pb.startsWith(root));
    // process.started names the same directory.
    assert.equal(s.forJob("a", "process.started")[0].params!.workspace, pa);
    assert.equal(Deno.readTextFileSync(join(pa, "config.py")), "A");
    assert.equal(Deno.readTextFileSync(join(pb, "config.py")), "B");
    assert.deepEqual(a.params!.files, [{ path: "config.py", size: 1 }]);
    assert.equal(a.params!.files_total, 1);
    assert.equal(a.params!.workspace_kept, true);
    await s.close();
  });
  Deno.removeSync(root, { recursive: true });
});

Deno.test("files lists a job's workspace and reads one file; binary comes as base64", async () => {
  const root = tempRoot();
  await withServer({ workspaceRoot: root }, async (server) => {
    const s = await RawSession.open(server.url);
    await run(s, "j", {
      command: "mkdir -p src && echo 'print(1)' > src/main.py && printf '\\377\\000\\001' > blob",
      workspace: true,
    });
    const list = await s.call(1, "files", { job_id: "j" });
    const entries = list.result!.entries as { path: string; type: string; size: number }[];
    assert.deepEqual(entries.map((e) => `${e.type}:${e.path}`), [
      "file:blob",
      "dir:src",
      "file:src/main.py",
    ]);
    const f = await s.call(2, "files", { job_id: "j", path: "src/main.py" });
    assert.equal(f.result!.content, "print(1)\n");
    assert.equal(f.result!.encoding, "utf-8");
    assert.equal(f.result!.size, 9);
    const bin = await s.call(3, "files", { job_id: "j", path: "blob" });
    assert.equal(bin.result!.encoding, "base64");
    assert.deepEqual([...Uint8Array.fromBase64(bin.result!.content as string)], [255, 0, 1]);
    const missing = await s.call(4, "files", { job_id: "j", path: "nope.txt" });
    assert.equal(missing.result!.exists, false);
    const none = await s.call(5, "files", { job_id: "ghost" });
    assert.equal(none.error?.code, -32003);
    await s.close();
  });
  Deno.removeSync(root, { recursive: true });
});

Deno.test("files refuses ../../etc/passwd, absolute paths and symlinks that leave the workspace", async () => {
  const root = tempRoot();
  await withServer({ workspaceRoot: root }, async (server) => {
    const s = await RawSession.open(server.url);
    await run(s, "j", {
      command: "ln -s /etc etc_link && ln -s /etc/passwd pw && ln -s ../../../../../../tmp up && " +
        "echo inside > ok.txt && ln -s ok.txt alias",
      workspace: true,
    });
    for (
      const path of ["../../etc/passwd", "/etc/passwd", "pw", "etc_link/passwd", "up", "etc_link"]
    ) {
      const r = await s.call(path, "files", { job_id: "j", path });
      assert.equal(r.error?.code, -32602, `${path}: ${JSON.stringify(r)}`);
      assert.equal(r.error?.data?.field, "path", path);
      assert.ok(!JSON.stringify(r).includes("root:x:0:0"), path);
    }
    // A symlink that stays inside is followed.
    const alias = await s.call("alias", "files", { job_id: "j", path: "alias" });
    assert.equal(alias.result!.content, "inside\n");
    await s.close();
  });
  Deno.removeSync(root, { recursive: true });
});

Deno.test("only the session that ran a job reads it by job_id; an observer names the session", async () => {
  const root = tempRoot();
  await withServer({ workspaceRoot: root, token: "t0k" }, async (server) => {
    const auth = { authorization: "Bearer t0k" };
    const owner = await RawSession.open(server.url, auth);
    const sessionId = (await owner.next((m) => m.method === "connected")).params!.session_id;
    await run(owner, "mine", { command: "echo shared > s.txt", workspace: true });
    const other = await RawSession.open(server.url, auth);
    const byId = await other.call(1, "files", { job_id: "mine", path: "s.txt" });
    assert.equal(byId.error?.code, -32003, "a job id alone means this session's job");
    const observed = await other.call(2, "files", {
      session_id: sessionId,
      job_id: "mine",
      path: "s.txt",
    });
    assert.equal(observed.result?.content, "shared\n");
    const wrong = await other.call(3, "files", { session_id: "nope", job_id: "mine" });
    assert.equal(wrong.error?.code, -32003);
    await other.close();
    await owner.close();
  });
  Deno.removeSync(root, { recursive: true });
});

Deno.test("keep: always stays, never goes when the session ends, failed keeps only failures", async () => {
  const root = tempRoot();
  await withServer({ workspaceRoot: root }, async (server) => {
    const s = await RawSession.open(server.url);
    const cases = [
      ["always-ok", "always", "exit 0", true],
      ["never-bad", "never", "exit 1", false],
      ["failed-ok", "failed", "exit 0", false],
      ["failed-bad", "failed", "exit 3", true],
      ["default-bad", undefined, "exit 3", true],
    ] as const;
    const paths: Record<string, string> = {};
    for (const [id, keep, end] of cases) {
      const done = await run(s, id, {
        command: `echo x > f.txt; ${end}`,
        workspace: keep ? { keep } : true,
      });
      paths[id] = done.params!.workspace as string;
      assert.equal(done.params!.workspace_kept, cases.find((c) => c[0] === id)![3], id);
    }
    // Not kept is still readable while the session lasts.
    const r = await s.call(1, "files", { job_id: "never-bad", path: "f.txt" });
    assert.equal(r.result!.content, "x\n");
    await s.close();
    // The server removes what is not kept once the session has gone (each off the event loop,
    // in no particular order).
    const going = cases.filter((c) => !c[3]).map((c) => paths[c[0]]);
    await waitFor(() => !going.some(existsSync), "the workspaces not kept to go", 5000);
    for (const [id, , , kept] of cases) assert.equal(existsSync(paths[id]), kept, id);
  });
  Deno.removeSync(root, { recursive: true });
});

Deno.test("--workspace-max-mb removes the oldest kept workspaces first", async () => {
  const root = tempRoot();
  const spaces = new WorkspaceManager({ root, maxBytes: 2500 });
  const made = [];
  for (const i of [1, 2, 3]) {
    const ws = spaces.create(`j${i}`, { keep: "always" });
    Deno.writeFileSync(join(ws.path, "data"), new Uint8Array(1000));
    await spaces.finish(ws, "completed");
    made.push(ws);
  }
  await spaces.idle();
  assert.deepEqual(made.map((w) => existsSync(w.dir)), [false, true, true]);
  assert.equal(made[0].removed, true);
  assert.equal(spaces.keptBytes, 2000);
  // A manager started later counts what is on disk, oldest (by modification time) first.
  Deno.utimeSync(made[1].dir, new Date(1000), new Date(1000));
  Deno.utimeSync(made[2].dir, new Date(2000), new Date(2000));
  const again = new WorkspaceManager({ root, maxBytes: 1500 });
  await again.ready;
  await again.idle();
  assert.equal(again.keptBytes, 1000);
  assert.deepEqual(made.map((w) => existsSync(w.dir)), [false, false, true]);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("a template is copied in; only files the job created or changed are reported", async () => {
  const root = tempRoot();
  const template = tempRoot();
  Deno.writeTextFileSync(join(template, "keep.txt"), "same");
  Deno.writeTextFileSync(join(template, "edit.txt"), "old");
  Deno.mkdirSync(join(template, "pkg"));
  Deno.writeTextFileSync(join(template, "pkg", "a.py"), "a = 1\n");
  await withServer({ workspaceRoot: root, templateRoots: [template] }, async (server) => {
    const s = await RawSession.open(server.url);
    const done = await run(s, "t", {
      command: "cat keep.txt pkg/a.py && echo newer > edit.txt && echo n > new.txt",
      workspace: { template, keep: "never" },
    });
    assert.equal(s.output("t"), "samea = 1\n");
    assert.deepEqual(done.params!.files, [
      { path: "edit.txt", size: 6 },
      { path: "new.txt", size: 2 },
    ]);
    const bad = await s.call(9, "execute", {
      command: "true",
      workspace: { template: "/no/such" },
    });
    assert.equal(bad.error?.code, -32602);
    assert.equal(bad.error?.data?.field, "workspace.template");
    await s.close();
  });
  assert.equal(Deno.readTextFileSync(join(template, "edit.txt")), "old", "template untouched");
  Deno.removeSync(root, { recursive: true });
  Deno.removeSync(template, { recursive: true });
});

Deno.test("the list of changed files is bounded and says how many there were", async () => {
  const root = tempRoot();
  const spaces = new WorkspaceManager({ root, maxListed: 3 });
  const ws = spaces.create("many", {});
  for (let i = 0; i < 10; i++) Deno.writeTextFileSync(join(ws.path, `f${i}`), "x");
  const c = await ws.changes();
  assert.equal(c.files.length, 3);
  assert.equal(c.total, 10);
  assert.equal(c.truncated, true);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("execute validates workspace: keys, keep values, and not together with cwd", () => {
  assert.deepEqual(validateExecute({ command: "true", workspace: true }).workspace, {});
  assert.equal(validateExecute({ command: "true", workspace: false }).workspace, undefined);
  const field = (params: unknown) => {
    try {
      validateExecute(params);
    } catch (e) {
      return ((e as { data?: { field?: string } }).data?.field);
    }
    return "accepted";
  };
  assert.equal(field({ command: "true", workspace: { keep: "sometimes" } }), "workspace.keep");
  assert.equal(field({ command: "true", workspace: { tmpl: "x" } }), "workspace.tmpl");
  assert.equal(field({ command: "true", workspace: "yes" }), "workspace");
  assert.equal(field({ command: "true", workspace: true, cwd: "/tmp" }), "cwd");
});

Deno.test("resolveInside and readWorkspace confine paths and bound file size", async () => {
  const root = tempRoot();
  Deno.writeTextFileSync(join(root, "big.txt"), "é".repeat(100));
  Deno.symlinkSync("/nonexistent-outside", join(root, "dangling"));
  const refuse = (p: string) => assert.throws(() => resolveInside(root, p), WorkspaceError, p);
  refuse("../x");
  refuse("a/../../x");
  refuse("/etc");
  refuse("dangling");
  refuse("dangling/below");
  refuse("nul\0byte");
  assert.equal(resolveInside(root, "new/dir/file"), join(Deno.realPathSync(root), "new/dir/file"));
  const r = await readWorkspace(root, "big.txt", { maxBytes: 51 });
  assert.ok(r.exists && r.type === "file");
  if (r.exists && r.type === "file") {
    assert.equal(r.truncated, true);
    assert.equal(r.size, 200);
    assert.equal(r.encoding, "utf-8");
    assert.equal(r.content, "é".repeat(25)); // cut before the split character
  }
  Deno.removeSync(root, { recursive: true });
});

Deno.test("a server starting on a root removes what a dead server was due to remove, keeps the rest", async () => {
  const state = tempRoot();
  const tag = newTag();
  // The first server: a finished job whose workspace waits for its session to end (keep
  // failed, exit 0), and two running jobs (keep never, keep failed); then it is killed.
  const first = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "serve", "--port", "0", "--quiet"],
    env: { CCX_STATE_DIR: state },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const url = await bannerUrl(first.stdout);
  const s = await RawSession.open(url);
  const done = await run(s, "done", { command: "echo x > f", workspace: true });
  for (const [id, keep] of [["never", "never"], ["failed", "failed"]]) {
    const r = await s.call(id, "execute", {
      job_id: id,
      command: `sleep 30.${tag}`,
      workspace: { keep },
    });
    assert.equal(r.error, undefined);
  }
  const path = (id: string) =>
    String(s.forJob(id, "process.started")[0]?.params?.workspace ?? done.params!.workspace);
  await s.next((m) => m.method === "process.started" && m.params?.job_id === "failed");
  const dirs = { done: path("done"), never: path("never"), failed: path("failed") };
  first.kill("SIGKILL");
  await first.status;
  await s.closed;
  for (const d of Object.values(dirs)) assert.ok(existsSync(d), d);
  // The next server on the same state directory sweeps at start, before any job.
  const second = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "serve", "--port", "0"],
    env: { CCX_STATE_DIR: state },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await bannerUrl(second.stdout);
  second.kill("SIGTERM");
  const log = await new Response(second.stderr).text();
  await second.status;
  assert.equal(existsSync(dirs.done), false, "a finished job's workspace not kept");
  assert.equal(existsSync(dirs.never), false, "keep never: " + log);
  assert.equal(existsSync(dirs.failed), true, "a job that died with its server is a failure: kept");
  assert.equal(existsSync(join(dirs.failed, "..", "owner.json")), false, "adopted as kept");
  assert.match(log, /removed 2 workspaces left by a server that died/);
  // The second server's crash journal reaps the first one's jobs; make sure before leaving.
  for (const pid of pidsMatching(tag)) Deno.kill(pid, "SIGKILL");
  Deno.removeSync(state, { recursive: true });
});

// A server killed with SIGKILL whose parent has not reaped it yet is a zombie: its /proc entry
// stays, but it is gone, and its workspaces must be swept like any dead server's (issue 17: the
// crash journal had the same flaw).

/** The state letter of a process (`R`, `S`, `Z`, …), from /proc/PID/stat; "" once it is gone. */
function procState(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1][0];
  } catch {
    return "";
  }
}

Deno.test("a killed server that is still a zombie has its workspaces swept by the next start", async () => {
  const root = tempRoot();
  const state = tempRoot();
  const tag = newTag();
  // The server's parent becomes `sleep` (the shell execs it), which never reaps it: once
  // killed, the server stays a zombie as long as this parent lives.
  const parent = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      `"$0" run -A "$1" serve --port 0 --quiet --workspace-root "$2" & exec sleep 1000.${tag}`,
      Deno.execPath(),
      join(ROOT, "main.ts"),
      root,
    ],
    env: { CCX_STATE_DIR: state },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const url = await bannerUrl(parent.stdout);
    const server = pidsMatching(join(ROOT, "main.ts")).find((p) =>
      Deno.readTextFileSync(`/proc/${p}/stat`).split(") ")[1].split(" ")[1] === String(parent.pid)
    );
    assert.ok(server, "the server under the shell");
    const s = await RawSession.open(url);
    const r = await s.call(1, "execute", {
      job_id: "j",
      command: `sleep 1001.${tag}`,
      workspace: { keep: "never" },
    });
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    const started = await s.next((m) => m.method === "process.started");
    const dir = String(started.params?.workspace).replace(/\/work$/, "");
    assert.ok(existsSync(join(dir, "owner.json")), "the workspace names its server");
    Deno.kill(server, "SIGKILL");
    await waitFor(() => procState(server) === "Z", "the killed server to be a zombie");
    await s.closed;
    const next = new WorkspaceManager({ root });
    await next.ready;
    assert.equal(procState(server), "Z", "its server was still a zombie when it was judged");
    assert.equal(next.swept, 1, "the zombie's workspace is swept");
    assert.ok(!existsSync(dir), `${dir} removed`);
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
    for (const pid of pidsMatching(tag)) Deno.kill(pid, "SIGKILL");
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(state, { recursive: true });
  }
});

Deno.test("a workspace whose server's pid now belongs to another process is swept", async () => {
  const root = tempRoot();
  const dir = join(root, "20260101T000000-reused-0123abcd");
  Deno.mkdirSync(join(dir, "work"), { recursive: true });
  // Pid 1 is alive, but it did not start at tick 1: the server that wrote this is gone.
  Deno.writeTextFileSync(
    join(dir, "owner.json"),
    JSON.stringify({ pid: 1, start: 1, keep: "never", remove: true }),
  );
  // An older server's file has no start time: then any live process with the pid counts.
  const older = join(root, "20260101T000000-older-0123abcd");
  Deno.mkdirSync(join(older, "work"), { recursive: true });
  Deno.writeTextFileSync(
    join(older, "owner.json"),
    JSON.stringify({ pid: 1, keep: "never", remove: true }),
  );
  const spaces = new WorkspaceManager({ root });
  await spaces.ready;
  assert.equal(spaces.swept, 1);
  assert.ok(!existsSync(dir), "the reused pid's workspace is removed");
  assert.ok(existsSync(older), "a live pid without a start time is taken at its word");
  Deno.removeSync(root, { recursive: true });
});

// ---------------------------------------------------------------------------------------------
// What a job leaves that cannot be removed (issue 17, point 1). As root, permissions do not stop
// a removal; what does: an immutable file (chattr +i), a mount point inside the workspace, and,
// for a server without CAP_DAC_OVERRIDE (any non-root user), a read-only directory with files
// in it: Go's module cache.

/** `setpriv` starts a process without CAP_DAC_OVERRIDE (permissions then bind root). */
function probeDropDac(): true | string {
  const out = new Deno.Command("setpriv", {
    args: ["--bounding-set=-dac_override,-dac_read_search", "true"],
    stderr: "piped",
  }).outputSync();
  return out.success || `setpriv --bounding-set: ${new TextDecoder().decode(out.stderr).trim()}`;
}

const CHATTR = requireCapability("chattr", probeChattr, HINTS.chattr);
const MOUNT = requireCapability("mount", probeBindMount, HINTS.mount);
const NO_DAC = requireCapability("setpriv", probeDropDac, HINTS.setpriv);

/** Clears the immutable flag of every file below `dir` (test clean-up). */
function unfreeze(dir: string): void {
  new Deno.Command("chattr", { args: ["-R", "-i", dir], stderr: "null" }).outputSync();
}

/** The entries of `ROOT/.unremovable` (empty when it does not exist). */
function movedAside(root: string): string[] {
  try {
    return [...Deno.readDirSync(join(root, UNREMOVABLE_DIR))].map((e) => e.name);
  } catch {
    return [];
  }
}

Deno.test({
  name: "a read-only directory a job leaves (Go's module cache) is made writable and removed " +
    "when its client leaves; the server lives on",
  ignore: NO_DAC.ignore,
  async fn() {
    NO_DAC.need();
    const root = tempRoot();
    // A server bound by permissions, as any non-root user is.
    const child = new Deno.Command("setpriv", {
      args: [
        "--bounding-set=-dac_override,-dac_read_search",
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}main.ts`,
        "serve",
        "--port",
        "0",
        "--workspace-root",
        root,
      ],
      env: { CCX_STATE_DIR: STATE_DIR },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    try {
      const url = await bannerUrl(child.stdout);
      const s = await RawSession.open(url);
      const done = await run(s, "gomod", {
        command: "mkdir -p pkg/mod/x@v1/sub && echo 'package x' > pkg/mod/x@v1/sub/x.go && " +
          "chmod -R a-w pkg/mod",
        workspace: { keep: "never" },
      });
      const dir = join(String(done.params!.workspace), "..");
      assert.ok(existsSync(dir));
      await s.close();
      await waitFor(() => !existsSync(dir), "the workspace removed");
      // Still serving: a new session is answered.
      const again = await RawSession.open(url);
      assert.equal((await again.call(1, "ping")).result?.pong, true);
      await again.close();
      assert.deepEqual(movedAside(root), [], "removed, not moved aside");
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    }
    const log = await stderr;
    assert.doesNotMatch(log, /Uncaught|PermissionDenied/);
    Deno.removeSync(root, { recursive: true });
  },
});

Deno.test({
  name: "an immutable file in a workspace: moved to .unremovable and logged once, never thrown, " +
    "under --workspace-max-mb as at a client's leaving",
  ignore: CHATTR.ignore,
  async fn() {
    CHATTR.need();
    const root = tempRoot();
    const logs: string[] = [];
    try {
      await withServer({
        workspaceRoot: root,
        workspaceMaxMb: 0,
        log: (line, f) => void (f?.event === "workspace_unremovable" && logs.push(line)),
      }, async (server) => {
        const s = await RawSession.open(server.url);
        // Kept (policy always), then at once over the bound of 0 MiB: removed at completion.
        const kept = await run(s, "kept", {
          command: "echo x > f && chattr +i f",
          workspace: { keep: "always" },
        });
        assert.equal(kept.params!.workspace_kept, false, "taken by the bound");
        // Not kept: removed when the session ends.
        const gone = await run(s, "gone", {
          command: "echo x > f && chattr +i f",
          workspace: { keep: "never" },
        });
        await s.close();
        const names = [kept, gone].map((m) => String(m.params!.workspace).split("/").at(-2)!);
        await waitFor(() => movedAside(root).length === 2, "both moved aside");
        assert.deepEqual(movedAside(root).sort(), names.sort());
        for (const n of names) assert.ok(!existsSync(join(root, n)), n);
        // The server still answers.
        const again = await RawSession.open(server.url);
        assert.equal((await again.call(1, "ping")).result?.pong, true);
        await again.close();
      });
      assert.equal(logs.length, 2, logs.join("\n"));
      for (const line of logs) assert.match(line, /cannot be removed .*: moved to .*\.unremovable/);
    } finally {
      unfreeze(root);
      Deno.removeSync(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "ccx serve --workspace-max-mb starts over an old workspace it cannot remove",
  ignore: CHATTR.ignore,
  async fn() {
    CHATTR.need();
    const root = tempRoot();
    // What an earlier server kept: a workspace with an immutable file, over a bound of 0 MiB.
    const old = join(root, "20260101T000000-old-0123abcd");
    Deno.mkdirSync(join(old, "work"), { recursive: true });
    Deno.writeTextFileSync(join(old, "work", "f"), "x");
    new Deno.Command("chattr", { args: ["+i", join(old, "work", "f")] }).outputSync();
    try {
      const server = await serveProcess(
        ["--port", "0", "--workspace-root", root, "--workspace-max-mb", "0"],
        undefined,
        { bare: true },
      );
      const s = await RawSession.open(server.url);
      assert.equal((await s.call(1, "ping")).result?.pong, true);
      await waitFor(() => movedAside(root).length === 1, "moved aside");
      await s.close();
      const status = await server.stop();
      assert.equal(status.code, 0, "stopped by its signal, not by an error");
      assert.deepEqual(movedAside(root), ["20260101T000000-old-0123abcd"]);
      assert.ok(!existsSync(old));
    } finally {
      unfreeze(root);
      Deno.removeSync(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "a mount inside a workspace is not descended into: the mounted files survive, the " +
    "workspace is moved aside",
  ignore: MOUNT.ignore,
  async fn() {
    MOUNT.need();
    const root = tempRoot();
    const outside = tempRoot();
    Deno.writeTextFileSync(join(outside, "precious.txt"), "keep me");
    const logs: string[] = [];
    let mountPoint = "";
    try {
      await withServer({
        workspaceRoot: root,
        log: (line, f) => void (f?.event === "workspace_unremovable" && logs.push(line)),
      }, async (server) => {
        const s = await RawSession.open(server.url);
        const done = await run(s, "m", {
          command: `mkdir m && mount --bind '${outside}' m`,
          workspace: { keep: "never" },
        });
        const name = String(done.params!.workspace).split("/").at(-2)!;
        await s.close();
        await waitFor(() => movedAside(root).length === 1, "moved aside");
        assert.deepEqual(movedAside(root), [name]);
        mountPoint = join(root, UNREMOVABLE_DIR, name, "work", "m");
      });
      assert.equal(Deno.readTextFileSync(join(outside, "precious.txt")), "keep me");
      assert.equal(logs.length, 1);
      assert.match(logs[0], /holds a mount point/);
    } finally {
      if (mountPoint) new Deno.Command("umount", { args: [mountPoint] }).outputSync();
      Deno.removeSync(root, { recursive: true });
      Deno.removeSync(outside, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Templates only from where the operator allows (issue 17, point 5).

Deno.test("a template outside --template-root is refused -32602 naming workspace.template", async () => {
  const root = tempRoot();
  const allowed = tempRoot();
  Deno.mkdirSync(join(allowed, "py"));
  Deno.writeTextFileSync(join(allowed, "py", "main.py"), "print(1)\n");
  Deno.symlinkSync("/etc", join(allowed, "etc"));
  const refused = async (roots: string[] | undefined, template: string, why: RegExp) => {
    await withServer({ workspaceRoot: root, templateRoots: roots }, async (server) => {
      const s = await RawSession.open(server.url);
      const r = await s.call(1, "execute", { command: "true", workspace: { template } });
      assert.equal(r.error?.code, -32602, `${template}: ${JSON.stringify(r)}`);
      assert.equal(r.error?.data?.field, "workspace.template", template);
      assert.match(r.error!.message, why, template);
      await s.close();
    });
  };
  await refused(undefined, "/", /takes no templates .*--template-root/);
  await refused(undefined, join(allowed, "py"), /takes no templates/);
  await refused([allowed], "/", /not under a template root/);
  await refused([allowed], join(allowed, ".."), /not under a template root/);
  await refused([allowed], join(allowed, "etc"), /leads out of the template roots/);
  await refused([allowed], join(allowed, "nope"), /no such directory/);
  // Below a root is fine.
  await withServer({ workspaceRoot: root, templateRoots: [allowed] }, async (server) => {
    const s = await RawSession.open(server.url);
    await run(s, "ok", { command: "cat main.py", workspace: { template: join(allowed, "py") } });
    assert.equal(s.output("ok"), "print(1)\n");
    await s.close();
  });
  Deno.removeSync(root, { recursive: true });
  Deno.removeSync(allowed, { recursive: true });
});

Deno.test("ccx serve takes template roots from CCX_TEMPLATE_ROOT and refuses a missing one", async () => {
  const allowed = tempRoot();
  Deno.writeTextFileSync(join(allowed, "t.txt"), "from the template\n");
  const root = tempRoot();
  const server = await serveProcess(["--workspace-root", root], { CCX_TEMPLATE_ROOT: allowed });
  const s = await RawSession.open(server.url);
  await run(s, "t", { command: "cat t.txt", workspace: { template: allowed } });
  assert.equal(s.output("t"), "from the template\n");
  const r = await s.call(2, "execute", { command: "true", workspace: { template: ROOT } });
  assert.equal(r.error?.data?.field, "workspace.template");
  await s.close();
  await server.stop();
  const bad = await cli(["serve", "--port", "0", "--template-root", join(allowed, "nope")]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--template-root.*no such directory: .*nope/);
  Deno.removeSync(root, { recursive: true });
  Deno.removeSync(allowed, { recursive: true });
});

// ---------------------------------------------------------------------------------------------
// Nothing holds the event loop for other sessions (issue 17, point 5). The server runs in its
// own process; a second session's ping must be answered while the first one's big workspace is
// being copied or walked, which a server that does it in one go cannot do: it answers the ping
// only after the job's own message.

Deno.test("a second session's ping is answered while a big template is still being copied", async () => {
  const root = tempRoot();
  const template = tempRoot();
  for (let i = 0; i < 4; i++) {
    Deno.writeFileSync(join(template, `big${i}`), new Uint8Array(48 << 20));
  }
  for (let d = 0; d < 5; d++) {
    Deno.mkdirSync(join(template, `d${d}`));
    for (let i = 0; i < 200; i++) Deno.writeTextFileSync(join(template, `d${d}`, `f${i}`), "x");
  }
  const server = await serveProcess(["--workspace-root", root, "--template-root", template]);
  try {
    const a = await RawSession.open(server.url);
    const b = await RawSession.open(server.url);
    a.send({
      jsonrpc: "2.0",
      id: "copy",
      method: "execute",
      params: { job_id: "copy", command: "true", workspace: { template, keep: "never" } },
    });
    // The copy has begun once the workspace holds something.
    const copying = () =>
      [...Deno.readDirSync(root)].some((e) => {
        try {
          return e.isDirectory && [...Deno.readDirSync(join(root, e.name, "work"))].length > 0;
        } catch {
          return false;
        }
      });
    await waitFor(copying, "the copy to begin", 30_000);
    const pong = await b.call("p", "ping");
    assert.equal(pong.result?.pong, true);
    const answered = a.messages.some((m) => m.id === "copy");
    assert.equal(answered, false, "the ping was answered only once the copy was over");
    const r = await a.next((m) => m.id === "copy", 60_000);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    await a.completed("copy");
    await a.close();
    await b.close();
  } finally {
    await server.stop();
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(template, { recursive: true });
  }
});

Deno.test("a 100,000-file workspace: pings are answered while it is walked; files_total counts every file", async () => {
  const root = tempRoot();
  // Not --quiet: the "job … completed" line says the walk is about to begin.
  const server = await serveProcess(["--port", "0", "--workspace-root", root], undefined, {
    bare: true,
  });
  try {
    const a = await RawSession.open(server.url);
    const b = await RawSession.open(server.url);
    const r = await a.call(1, "execute", {
      job_id: "many",
      command: "mkdir d && cd d && seq 1 100000 | xargs touch",
      workspace: { keep: "never" },
      timeout: 120,
    });
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    await server.waitStderr(/job many completed/, 120_000);
    const pong = await b.call("p", "ping");
    assert.equal(pong.result?.pong, true);
    assert.equal(a.forJob("many", "process.completed").length, 0, "answered only after the walk");
    const done = await a.completed("many", 120_000);
    assert.equal(done.params!.status, "completed");
    assert.equal(done.params!.files_total, 100_000);
    assert.equal((done.params!.files as unknown[]).length, 100);
    assert.equal(done.params!.files_truncated, true);
    assert.deepEqual((done.params!.files as { path: string }[])[0], { path: "d/1", size: 0 });
    await a.close();
    await b.close();
  } finally {
    await server.stop();
    Deno.removeSync(root, { recursive: true });
  }
});

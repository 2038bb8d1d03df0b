/**
 * `execute`'s `workspace.files` (lib/serve/workspace_files.ts) and `workspace.reuse`: files
 * written into a workspace never through what the job left there, and a later job of the same
 * session running in a finished job's workspace (what a check of `ccx stress` is).
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeWorkspaceFiles } from "../lib/serve/workspace_files.ts";
import { WorkspaceError } from "../lib/serve/workspace.ts";
import { validateExecute } from "../lib/common/protocol.ts";
import { withServer } from "./_util/helpers.ts";
import { type Msg, RawSession } from "./_util/ws.ts";

function tempRoot(): string {
  return Deno.makeTempDirSync({ prefix: "ccx-wsf-test-" });
}

async function run(s: RawSession, id: string, params: Record<string, unknown>): Promise<Msg> {
  const r = await s.call(id, "execute", { job_id: id, ...params });
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  return await s.completed(id);
}

Deno.test("writeWorkspaceFiles replaces what is at each path and never writes through a symlink", async () => {
  const root = tempRoot();
  const outside = tempRoot();
  try {
    Deno.writeTextFileSync(join(outside, "victim.txt"), "untouched");
    // What a job could leave: a link where a directory goes, a link where a file goes, a
    // directory where a file goes, and a file of the same name.
    Deno.symlinkSync(outside, join(root, "tests"));
    Deno.symlinkSync(join(outside, "victim.txt"), join(root, "link.txt"));
    Deno.mkdirSync(join(root, "dir_in_the_way", "deep"), { recursive: true });
    Deno.writeTextFileSync(join(root, "test_add.py"), "assert True  # the agent's own test\n");
    const bytes = await writeWorkspaceFiles(root, [
      { path: "tests/victim.txt", content: "hidden" },
      { path: "link.txt", content: "replaced" },
      { path: "dir_in_the_way", content: "now a file" },
      { path: "test_add.py", content: "assert add(2, 3) == 5\n" },
      {
        path: "./bin/run.sh",
        content: "IyEvYmluL3NoCmV4aXQgMAo=",
        encoding: "base64",
        mode: 0o755,
      },
    ]);
    assert.equal(Deno.readTextFileSync(join(outside, "victim.txt")), "untouched");
    assert.ok(Deno.lstatSync(join(root, "tests")).isDirectory);
    assert.equal(Deno.readTextFileSync(join(root, "tests", "victim.txt")), "hidden");
    assert.ok(Deno.lstatSync(join(root, "link.txt")).isFile);
    assert.equal(Deno.readTextFileSync(join(root, "dir_in_the_way")), "now a file");
    assert.equal(Deno.readTextFileSync(join(root, "test_add.py")), "assert add(2, 3) == 5\n");
    assert.equal(Deno.readTextFileSync(join(root, "bin", "run.sh")), "#!/bin/sh\nexit 0\n");
    assert.equal(Deno.statSync(join(root, "bin", "run.sh")).mode! & 0o777, 0o755);
    assert.equal(Deno.statSync(join(root, "test_add.py")).mode! & 0o777, 0o644);
    assert.ok(bytes > 0);
    await assert.rejects(
      () =>
        writeWorkspaceFiles(root, [{ path: "ok.txt", content: "" }, { path: "../x", content: "" }]),
      (e: unknown) => e instanceof WorkspaceError && e.field === "workspace.files[1].path",
    );
    assert.equal(existsSync(join(root, "..", "x")), false);
  } finally {
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(outside, { recursive: true });
  }
});

Deno.test("validateExecute: workspace.files and workspace.reuse are checked, naming the field", () => {
  const bad = (workspace: unknown, field: string) =>
    assert.throws(
      () => validateExecute({ command: "true", workspace }),
      (e: Error & { data?: { field?: string } }) => e.data?.field === field,
      `${JSON.stringify(workspace)} → ${field}`,
    );
  bad({ files: "x" }, "workspace.files");
  bad({ files: [{ path: "/etc/passwd", content: "" }] }, "workspace.files[0].path");
  bad({ files: [{ path: "a/../../b", content: "" }] }, "workspace.files[0].path");
  bad({ files: [{ path: ".", content: "" }] }, "workspace.files[0].path");
  bad(
    { files: [{ path: "a", content: "" }, { path: "./a", content: "" }] },
    "workspace.files[1].path",
  );
  bad({ files: [{ path: "a", content: 5 }] }, "workspace.files[0].content");
  bad({ files: [{ path: "a", content: "", encoding: "hex" }] }, "workspace.files[0].encoding");
  bad({ files: [{ path: "a", content: "", mode: 0o4755 }] }, "workspace.files[0].mode");
  bad({ files: [{ path: "a", content: "", owner: "root" }] }, "workspace.files[0].owner");
  bad({ reuse: "no spaces allowed" }, "workspace.reuse");
  bad({ reuse: "j1", template: "/tmp" }, "workspace.template");
  bad({ reuse: "j1", keep: "always" }, "workspace.keep");
  assert.deepEqual(
    validateExecute({
      command: "true",
      workspace: { reuse: "j1", files: [{ path: "t", content: "x" }] },
    })
      .workspace,
    { reuse: "j1", files: [{ path: "t", content: "x" }] },
  );
});

Deno.test("workspace.reuse runs a job in a finished job's workspace, with files written in first", async () => {
  const root = tempRoot();
  try {
    await withServer({ workspaceRoot: root }, async (server) => {
      const s = await RawSession.open(server.url);
      const task = await run(s, "task", {
        command: "echo 'def add(a, b): return a - b' > add.py; echo 'exit 0' > test_add.sh",
        workspace: { keep: "failed" },
      });
      const path = task.params!.workspace as string;
      assert.equal(task.params!.workspace_kept, false, "exit 0: not kept by policy");
      // The hidden test replaces the agent's own test_add.sh; the check runs where the task ran.
      const check = await run(s, "check", {
        command: "pwd; cat add.py; sh test_add.sh",
        workspace: {
          reuse: "task",
          files: [{
            path: "test_add.sh",
            content: "grep -q 'a + b' add.py || { echo 'FAIL: add subtracts'; exit 1; }\n",
          }],
        },
      });
      assert.match(s.output("check"), new RegExp(`^${path}\n`));
      assert.match(s.output("check"), /FAIL: add subtracts/);
      assert.equal(check.params!.exit_code, 1);
      assert.equal(check.params!.workspace, path);
      assert.equal(check.params!.workspace_kept, true, "the failed check keeps it (policy failed)");
      // Still the same session's: its files can be read through either job.
      const read = await s.call("r", "files", { job_id: "check", path: "test_add.sh" });
      assert.match(String((read.result as { content: string }).content), /a \+ b/);
      await s.close();
      // Kept beyond the session.
      assert.ok(existsSync(join(path, "add.py")));
    });
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("workspace.reuse is refused for another session's job, a running one, one without a workspace, and after its workspace went", async () => {
  const root = tempRoot();
  try {
    await withServer({ workspaceRoot: root }, async (server) => {
      const a = await RawSession.open(server.url);
      const b = await RawSession.open(server.url);
      await run(a, "done", { command: "true", workspace: { keep: "never" } });
      await run(a, "bare", { command: "true" });
      const r0 = await a.call("sleeper", "execute", {
        job_id: "sleeper",
        command: "sleep 30",
        workspace: true,
      });
      assert.equal(r0.error, undefined);
      const refused = async (s: RawSession, reuse: string, code: number, re: RegExp) => {
        const r = await s.call(`x-${reuse}`, "execute", {
          job_id: `x-${reuse}-${Math.random().toString(36).slice(2)}`,
          command: "true",
          workspace: { reuse },
        });
        assert.equal(r.error?.code, code, JSON.stringify(r.error));
        assert.match(r.error!.message, re);
        assert.equal((r.error!.data as { field?: string }).field, "workspace.reuse");
      };
      await refused(b, "done", -32003, /no job done in this session/);
      await refused(a, "sleeper", -32602, /still running/);
      await refused(a, "bare", -32602, /ran without a workspace/);
      await a.call("c", "control", { type: "CANCEL", job_id: "sleeper" });
      await a.completed("sleeper");
      // keep never: the workspace stays while the session lasts.
      await run(a, "again", { command: "true", workspace: { reuse: "done" } });
      await b.close();
      await a.close();
    });
    // A workspace the size bound removed cannot be reused.
    await withServer({ workspaceRoot: root, workspaceMaxMb: 1e-6 }, async (server) => {
      const s = await RawSession.open(server.url);
      await run(s, "big", { command: "echo hello > out.txt", workspace: { keep: "always" } });
      const r = await s.call("y", "execute", { command: "true", workspace: { reuse: "big" } });
      assert.equal(r.error?.code, -32003, JSON.stringify(r.error));
      assert.match(r.error!.message, /workspace of job big was removed/);
      await s.close();
    });
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

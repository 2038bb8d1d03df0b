import assert from "node:assert/strict";
import { checkBwrap } from "../lib/serve/isolate.ts";
import { resolveRunAs, RunAsError } from "../lib/serve/run_as.ts";
import {
  cli,
  newTag,
  pidsMatching,
  processesInGroup,
  serveProcess,
  waitFor,
  waitForPause,
  waitForResume,
  withServer,
} from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";
import {
  HINTS,
  probeBwrap,
  probeRoot,
  probeSetpriv,
  requireCapability,
} from "./_util/capability.ts";

// Switching user needs root; .ci/run runs the tests as root, so under CI these fail, never skip.
const ROOT_USER = requireCapability("root", probeRoot, HINTS.root);
const SETPRIV = requireCapability("setpriv", probeSetpriv, HINTS.setpriv);
const BWRAP = requireCapability("bwrap", () => {
  checkBwrap();
  return probeBwrap();
}, HINTS.bwrap);

/** A workspace root that `nobody` can enter (temp dirs are made with mode 700). */
async function openRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "ccx-runas-ws-" });
  await Deno.chmod(root, 0o755);
  return root;
}

/** The real uid of a process, from /proc/PID/status. */
function uidOf(pid: number): number {
  const line = Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")
    .find((l) => l.startsWith("Uid:"))!;
  return Number(line.split(/\s+/)[1]);
}

Deno.test({
  name: "--run-as is checked at start: an unknown user, the server's own, an unreachable root",
  ignore: ROOT_USER.ignore || SETPRIV.ignore,
  fn: async () => {
    ROOT_USER.need();
    SETPRIV.need();
    assert.throws(() => resolveRunAs("no_such_user_ccx"), RunAsError);
    assert.throws(() => resolveRunAs("root"), /--run-as root: that is the server's own user/);
    const unknown = await cli(["serve", "--port", "0", "--run-as", "no_such_user_ccx"]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /--run-as no_such_user_ccx: no such user on this machine/);
    // The tests' state directory is a temp dir of mode 700: its workspaces are closed to nobody.
    const closed = await cli(["serve", "--port", "0", "--run-as", "nobody"]);
    assert.equal(closed.code, 2, closed.stderr);
    assert.match(
      closed.stderr,
      /--run-as nobody: nobody cannot enter the workspace root .* is closed to it \(mode 700\)\); give --workspace-root/,
    );
  },
});

Deno.test({
  name:
    "a job under --run-as cannot read the server's environment and has its uid; without it the token is within reach and the server warns",
  ignore: ROOT_USER.ignore || SETPRIV.ignore,
  fn: async () => {
    ROOT_USER.need();
    SETPRIV.need();
    const root = await openRoot();
    const token = `s3cret-${newTag()}`;
    // Reads the server's (its parent's) environment, as any job could try.
    const probe = `echo uid=$(id -u) ppid=$PPID; ` +
      `if tr '\\0' '\\n' < /proc/$PPID/environ | grep -q '^CCX_TOKEN=${token}$'; ` +
      `then echo token=LEAKED; else echo token=hidden; fi`;
    try {
      for (const runAs of [undefined, "nobody"]) {
        const srv = await serveProcess(
          ["--workspace-root", root, ...(runAs ? ["--run-as", runAs] : [])],
          { CCX_TOKEN: token },
        );
        try {
          const s = await RawSession.open(`${srv.url}?token=${token}`);
          const r = await s.call(1, "execute", { job_id: "p", command: probe });
          assert.equal(r.error, undefined, JSON.stringify(r.error));
          const w = await s.call(2, "execute", {
            job_id: "w",
            command: "echo hi > made.txt && stat -c %u made.txt",
            workspace: { keep: "never" },
          });
          assert.equal(w.error, undefined, JSON.stringify(w.error));
          for (const id of ["p", "w"]) {
            assert.equal(
              (await s.completed(id)).params?.status,
              "completed",
              s.output(id, "stderr"),
            );
          }
          await s.close();
          const out = s.output("p");
          assert.match(out, new RegExp(`ppid=${srv.child.pid}\\b`), "its parent is the server");
          srv.child.kill("SIGTERM");
          const [, err] = await Promise.all([
            srv.child.status,
            srv.stderrEnded,
          ]);
          if (runAs) {
            assert.match(out, /uid=65534 /);
            assert.match(out, /token=hidden/);
            assert.equal(s.output("w").trim(), "65534", "the workspace is the job user's");
            assert.doesNotMatch(err, /can read its secrets/);
          } else {
            assert.match(out, /uid=0 /);
            assert.match(out, /token=LEAKED/, "the allow-list alone does not hide /proc/$PPID");
            assert.match(
              err,
              /warning: jobs run unconfined as the server's own user, so they can read its secrets \(the token \(CCX_TOKEN\) in the environment\).*--run-as USER/,
            );
          }
        } finally {
          await srv.stop("SIGKILL");
        }
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "a job under --run-as keeps pid = pgid: pause, resume and cancel reach the whole group",
  ignore: ROOT_USER.ignore || SETPRIV.ignore,
  fn: async () => {
    ROOT_USER.need();
    SETPRIV.need();
    const root = await openRoot();
    const tag = newTag();
    try {
      await withServer({ runAs: "nobody", workspaceRoot: root, graceMs: 300 }, async (server) => {
        const s = await RawSession.open(server.url);
        const r = await s.call(1, "execute", {
          job_id: "g",
          command: `: ${tag}; sleep 1000 & sleep 1000; wait`,
        });
        const { pid, pgid } = r.result as { pid: number; pgid: number };
        assert.equal(pid, pgid);
        await waitFor(() => processesInGroup(pgid).length === 3, "the shell and its two sleeps");
        for (const p of processesInGroup(pgid)) assert.equal(uidOf(p.pid), 65534, p.cmd);
        assert.equal(processesInGroup(pgid).find((p) => p.pid === pid)?.cmd, "sh");
        assert.equal(
          (await s.call(2, "control", { type: "PAUSE", job_id: "g" })).result?.status,
          "paused",
        );
        await waitForPause(pgid);
        assert.equal(
          (await s.call(3, "control", { type: "RESUME", job_id: "g" })).result?.status,
          "resumed",
        );
        await waitForResume(pgid);
        assert.equal(
          (await s.call(4, "control", { type: "CANCEL", job_id: "g" })).result?.status,
          "canceled",
        );
        assert.equal((await s.completed("g")).params?.status, "canceled");
        assert.deepEqual(processesInGroup(pgid), []);
        const missing = await s.call(5, "execute", { argv: ["no-such-program-ccx"] });
        assert.equal(missing.error?.code, -32602);
        assert.match(
          String(missing.error?.message),
          /argv: program not found: no-such-program-ccx/,
        );
        await s.close();
      });
    } finally {
      for (const p of pidsMatching(tag)) Deno.kill(p, "SIGKILL");
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "--isolate bwrap with --run-as: the job is the user inside the sandbox and still writes its workspace, HOME and /tmp",
  ignore: ROOT_USER.ignore || SETPRIV.ignore || BWRAP.ignore,
  fn: async () => {
    ROOT_USER.need();
    SETPRIV.need();
    BWRAP.need();
    const root = await openRoot();
    try {
      await withServer(
        { isolate: "bwrap", runAs: "nobody", workspaceRoot: root },
        async (server) => {
          const s = await RawSession.open(server.url);
          const r = await s.call(1, "execute", {
            job_id: "b",
            command: "echo uid=$(id -u) user=$USER; echo x > out.txt && echo ws-ok; " +
              'echo h > "$HOME/h" && echo home-ok; echo t > /tmp/t && echo tmp-ok; ' +
              "cat /proc/1/environ > /dev/null 2>&1 && echo environ=LEAKED || echo environ=hidden",
          });
          assert.equal(r.error, undefined, JSON.stringify(r.error));
          const done = await s.completed("b");
          assert.equal(done.params?.status, "completed", s.output("b", "stderr"));
          const out = s.output("b");
          for (
            const want of ["uid=65534 user=nobody", "ws-ok", "home-ok", "tmp-ok", "environ=hidden"]
          ) {
            assert.ok(out.includes(want), `${want} in ${out}`);
          }
          await s.close();
        },
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

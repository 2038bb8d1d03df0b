import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { bwrapArgv } from "../lib/serve/isolate.ts";
import { CcxClient } from "../lib/client/client.ts";
import {
  cli,
  listenUrl,
  newTag,
  pidsMatching,
  ROOT,
  serveProcess,
  waitFor,
  withServer,
} from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";
import { execTask } from "../lib/exec/exec.ts";
import { mockApiEnv, MockApiServer } from "../lib/claude/mock_api/server.ts";
import { claudeTier } from "./_util/real_claude.ts";
import { bwrapTier } from "./_util/tier.ts";

// The tier rule (tests/_util/tier.ts): missing bwrap is a skip with one line, or a failure under
// CI=true / CCX_REQUIRE=bwrap; a bwrap that cannot make a sandbox is always a failure.
const ignore = bwrapTier();

/** Sleep processes carrying `tag` (bwrap's own command line carries it too). */
function sleeps(tag: string): number {
  return pidsMatching(tag).filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/comm`).trim() === "sleep";
    } catch {
      return false;
    }
  }).length;
}

Deno.test({
  name:
    "under --isolate bwrap a write outside the workspace fails and the workspace write succeeds",
  ignore,
  fn: async () => {
    const root = Deno.makeTempDirSync({ prefix: "ccx-iso-" });
    const outside = `/var/tmp/ccx-outside-${newTag()}`;
    await withServer({ workspaceRoot: root, isolate: "bwrap" }, async (server) => {
      const s = await RawSession.open(server.url);
      const r = await s.call(1, "execute", {
        job_id: "w",
        command: `echo in > inside.txt && echo ok-inside; ` +
          `echo out > ${outside} || echo refused-outside; ` +
          `echo home > "$HOME/h.txt" && echo ok-home; ` +
          `echo t > /tmp/t.txt && echo ok-tmp; ` +
          `echo pids=$(ls /proc | grep -c '^[0-9]')`,
      });
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const done = await s.completed("w");
      const out = s.output("w");
      const err = s.output("w", "stderr");
      assert.match(out, /ok-inside/);
      assert.match(out, /refused-outside/);
      assert.match(err, /Read-only file system/);
      assert.match(out, /ok-home/);
      assert.match(out, /ok-tmp/);
      // Its own PID namespace: bwrap's init, the shell, ls and grep, not the host's processes.
      const pids = Number(out.match(/pids=(\d+)/)?.[1]);
      assert.ok(pids > 0 && pids < 10, `processes visible in the sandbox: ${pids}`);
      assert.equal(existsSync(outside), false);
      const ws = done.params!.workspace as string;
      assert.ok(ws.startsWith(root));
      assert.equal(Deno.readTextFileSync(join(ws, "inside.txt")), "in\n");
      assert.deepEqual(done.params!.files, [{ path: "inside.txt", size: 3 }]);
      // A request cwd cannot take the job out of its workspace.
      const bad = await s.call(2, "execute", { command: "true", cwd: "/" });
      assert.equal(bad.error?.data?.field, "cwd");
      await s.close();
    });
    Deno.removeSync(root, { recursive: true });
  },
});

Deno.test({
  name: "confined jobs cannot see other workspaces; --isolate-net none leaves only loopback",
  ignore,
  fn: async () => {
    const root = Deno.makeTempDirSync({ prefix: "ccx-iso-" });
    await withServer(
      { workspaceRoot: root, isolate: "bwrap", isolateNet: "none" },
      async (server) => {
        const c = await CcxClient.connect(server.url);
        const first = await c.execute({
          command: "echo secret > s.txt",
          workspace: { keep: "always" },
        });
        const a = await first.done;
        const out: string[] = [];
        const second = await c.execute({
          command: `cat ${a.workspace!.path}/s.txt || echo hidden; cat /proc/net/dev`,
        }, { onOutput: (_t, d) => out.push(d) });
        await second.done;
        const text = out.join("");
        assert.match(text, /hidden/);
        assert.doesNotMatch(text, /secret/);
        const ifaces = [...text.matchAll(/^\s*(\w+):\s+\d/gm)].map((m) => m[1]);
        assert.deepEqual(ifaces, ["lo"]);
        await c.close();
      },
    );
    Deno.removeSync(root, { recursive: true });
  },
});

Deno.test({
  name: "kill -9 of a server with --isolate bwrap leaves no job behind",
  ignore,
  fn: async () => {
    const root = Deno.makeTempDirSync({ prefix: "ccx-iso-" });
    const tag = newTag();
    const server = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "serve", "--port", "0", "--isolate", "bwrap"],
      env: { CCX_WORKSPACE_ROOT: root },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const url = await listenUrl(reader);
    const c = await CcxClient.connect(url);
    const started: string[] = [];
    await c.execute({ command: `sleep 300.${tag} & sleep 301.${tag}; wait` }, {
      onEvent: (m) => started.push(m),
    });
    await waitFor(() => sleeps(tag) === 2, "the job's two sleeps");
    server.kill("SIGKILL");
    await server.status;
    await reader.cancel();
    await waitFor(() => pidsMatching(tag).length === 0, "no process of the job left", 10_000);
    await c.close().catch(() => {});
    Deno.removeSync(root, { recursive: true });
  },
});

Deno.test({
  name: "under --isolate bwrap a program that lives under /tmp still runs (its folder read-only)",
  ignore,
  fn: async () => {
    // CI may clone the project (and install the real CLI) under /tmp, which the job sees as
    // its own empty /tmp.
    const bin = Deno.makeTempDirSync({ dir: "/tmp", prefix: "ccx-iso-bin-" });
    const tool = join(bin, "tool");
    Deno.writeTextFileSync(tool, '#!/bin/sh\necho tool-ran; echo x > "$0.out" || echo ro\n');
    Deno.chmodSync(tool, 0o755);
    const root = Deno.makeTempDirSync({ prefix: "ccx-iso-" });
    try {
      await withServer({ workspaceRoot: root, isolate: "bwrap" }, async (server) => {
        const s = await RawSession.open(server.url);
        const r = await s.call(1, "execute", { job_id: "t", argv: [tool] });
        assert.equal(r.error, undefined, JSON.stringify(r.error));
        const done = await s.completed("t");
        assert.equal(done.params!.exit_code, 0, s.output("t", "stderr"));
        assert.match(s.output("t"), /tool-ran\nro\n/);
        assert.match(s.output("t", "stderr"), /Read-only file system/);
        assert.equal(existsSync(`${tool}.out`), false);
        await s.close();
      });
    } finally {
      Deno.removeSync(bin, { recursive: true });
      Deno.removeSync(root, { recursive: true });
    }
  },
});

Deno.test("bwrapArgv: read-only root, private /tmp, the workspace bound, PID namespace, die with parent", () => {
  const a = bwrapArgv(["sh", "-c", "x"], {
    dir: "/w/1",
    work: "/w/1/work",
    home: "/w/1/home",
    hide: ["/w"],
    readOnly: [["/root/.claude/.credentials.json", ".claude/.credentials.json"]],
  });
  const s = a.join(" ");
  assert.match(s, /^bwrap --ro-bind \/ \/ /);
  assert.ok(s.indexOf("--tmpfs /tmp") < s.indexOf("--bind /w/1 /w/1"));
  assert.ok(s.indexOf("--tmpfs /w") < s.indexOf("--bind /w/1 /w/1"), "the root is hidden first");
  assert.match(
    s,
    /--ro-bind \/root\/\.claude\/\.credentials\.json \/w\/1\/home\/\.claude\/\.credentials\.json/,
  );
  assert.match(s, /--unshare-pid --die-with-parent/);
  assert.match(s, /--unsetenv CLAUDE_CONFIG_DIR/);
  assert.doesNotMatch(s, /--unshare-net/);
  assert.match(s, /--chdir \/w\/1\/work --setenv HOME \/w\/1\/home/);
  assert.deepEqual(a.slice(-4), ["--", "sh", "-c", "x"]);
});

Deno.test({
  name: "--isolate bwrap refuses to start when bwrap cannot run",
  fn: async () => {
    // A server process whose PATH has no bwrap (this process's PATH, shared by every test file
    // running beside this one, is left alone).
    const r = await cli(["serve", "--port", "0", "--isolate", "bwrap"], {
      env: { PATH: "/nonexistent" },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--isolate bwrap: bwrap is not installed.*apt-get install bubblewrap/);
  },
});

Deno.test({
  name: "a confined job's HOME is in its workspace, with the Claude login read-only when present",
  ignore,
  fn: async () => {
    const root = Deno.makeTempDirSync({ prefix: "ccx-iso-" });
    const userHome = Deno.makeTempDirSync({ prefix: "ccx-iso-home-" });
    Deno.mkdirSync(join(userHome, ".claude"));
    Deno.writeTextFileSync(join(userHome, ".claude", ".credentials.json"), '{"token":"t"}');
    Deno.writeTextFileSync(join(userHome, ".claude.json"), '{"config":1}');
    // The login is found where CLAUDE_CONFIG_DIR says; inside, the job's home holds it. The
    // server is a process of its own with that environment: HOME set in this process would reach
    // every process that test modules running in parallel start meanwhile.
    const srv = await serveProcess(["--workspace-root", root, "--isolate", "bwrap"], {
      HOME: userHome,
      CLAUDE_CONFIG_DIR: join(userHome, ".claude"),
      // Deno's cache stays where it is (it defaults to $HOME/.cache/deno).
      DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache", "deno"),
    });
    try {
      const s = await RawSession.open(srv.url);
      await s.call(1, "execute", {
        job_id: "h",
        command:
          'echo "home=$HOME cfg=${CLAUDE_CONFIG_DIR:-unset}"; cat "$HOME/.claude/.credentials.json"; echo; ' +
          'echo x >> "$HOME/.claude/.credentials.json" || echo creds-read-only; ' +
          'echo \'{"config":2}\' > "$HOME/.claude.json" && echo config-writable',
      });
      const done = await s.completed("h");
      const out = s.output("h");
      const ws = done.params!.workspace as string;
      assert.match(out, new RegExp(`home=${join(ws, "..", "home")} cfg=unset`));
      assert.match(out, /\{"token":"t"\}/);
      assert.match(out, /creds-read-only/);
      assert.match(out, /config-writable/);
      // The job changed its own copy; the user's files are untouched.
      assert.equal(
        Deno.readTextFileSync(join(ws, "..", "home", ".claude.json")),
        '{"config":2}\n',
      );
      assert.equal(Deno.readTextFileSync(join(userHome, ".claude.json")), '{"config":1}');
      assert.equal(
        Deno.readTextFileSync(join(userHome, ".claude", ".credentials.json")),
        '{"token":"t"}',
      );
      await s.close();
    } finally {
      await srv.stop();
      Deno.removeSync(root, { recursive: true });
      Deno.removeSync(userHome, { recursive: true });
    }
  },
});

// The real Claude CLI (tests/real_claude.ts installs the pinned one) inside a confined workspace,
// against the mock model: only the model is mocked; the CLI and its Write and Bash tools are real.
const real = await claudeTier();

Deno.test({
  name:
    "real Claude CLI completes a Write tool call inside a confined workspace against the mock model",
  ignore: ignore || real === undefined,
  fn: async () => {
    const root = Deno.makeTempDirSync({ prefix: "ccx-iso-real-" });
    const outside = `/var/tmp/ccx-real-outside-${newTag()}`;
    const api = MockApiServer.start();
    try {
      await withServer({ workspaceRoot: root, isolate: "bwrap" }, async (server) => {
        const lines: string[] = [];
        const r = await execTask({
          claude: real!,
          server: server.url,
          task: "Create notes.txt [[mock:write:notes.txt=hello from the sandbox]]",
          criteria: ["File notes.txt exists", "notes.txt contains sandbox"],
          retries: 0,
          timeout: 90,
          sandbox: true,
          env: mockApiEnv(api.url),
          onProgress: (l) => lines.push(l),
        });
        assert.equal(r.success, true, lines.join("\n"));
        const ws = r.attempts[0].workspace!;
        assert.ok(ws.startsWith(root), ws);
        assert.deepEqual(r.files_created, [join(ws, "notes.txt")]);
        assert.equal(Deno.readTextFileSync(join(ws, "notes.txt")), "hello from the sandbox");
        // The CLI kept its own state in the workspace's home, not the server user's.
        assert.ok(
          existsSync(join(ws, "..", "home", ".claude.json")),
          "no ~/.claude.json in the job's home",
        );

        // Its Bash tool cannot write outside the workspace.
        const bash = await execTask({
          claude: real!,
          server: server.url,
          task:
            `Write inside and outside [[mock:bash:echo in > bash_inside.txt; echo x > ${outside}]]`,
          tools: ["Bash"],
          retries: 0,
          timeout: 90,
          sandbox: true,
          env: mockApiEnv(api.url),
        });
        assert.equal(bash.attempts.length, 1);
        const ws2 = bash.attempts[0].workspace!;
        assert.equal(Deno.readTextFileSync(join(ws2, "bash_inside.txt")), "in\n", "Bash ran");
        assert.equal(existsSync(outside), false, "the sandboxed Bash tool wrote outside");
        assert.ok(
          api.requests.some((q) => q.prompt.includes(outside)),
          "the mock was asked for the Bash call",
        );
      });
    } finally {
      await api.shutdown();
      Deno.removeSync(root, { recursive: true });
    }
  },
});

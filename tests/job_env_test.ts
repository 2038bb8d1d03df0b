import assert from "node:assert/strict";
import {
  DEFAULT_PASS_ENV,
  heldSecrets,
  jobEnvironment,
  passEnvProblem,
  secretWarnings,
} from "../lib/serve/job_env.ts";
import { FAKE_CLAUDE, ROOT, serveProcess, TEST_API_KEY } from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";
import { parseClaudeOutput } from "../lib/claude/stream.ts";
import { bwrapTier } from "./_util/tier.ts";

const bwrapIgnore = bwrapTier();

Deno.test("jobEnvironment keeps allow-listed names and prefixes, never CCX_*", () => {
  const server = {
    PATH: "/bin",
    LC_ALL: "C",
    ANTHROPIC_API_KEY: "k",
    CCX_TOKEN: "t",
    CCX_PORT: "1",
    AWS_SECRET_ACCESS_KEY: "s",
    GOPATH: "/go",
  };
  assert.deepEqual(jobEnvironment(server), { PATH: "/bin", LC_ALL: "C", ANTHROPIC_API_KEY: "k" });
  // Even "*" (everything) leaves the server's CCX_* settings out.
  assert.deepEqual(Object.keys(jobEnvironment(server, {}, ["*"])).sort(), [
    "ANTHROPIC_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "GOPATH",
    "LC_ALL",
    "PATH",
  ]);
  // The request may set any name, CCX_* included (suites pass CCX_REQUEST this way).
  const env = jobEnvironment(server, { CCX_REQUEST: "r", PATH: "/x" }, [...DEFAULT_PASS_ENV]);
  assert.equal(env.CCX_REQUEST, "r");
  assert.equal(env.PATH, "/x");
});

Deno.test("passEnvProblem refuses CCX_* names and malformed ones", () => {
  assert.equal(passEnvProblem(["GOPATH", "AWS_*", "*"]), undefined);
  assert.match(passEnvProblem(["CCX_TOKEN"])!, /^CCX_TOKEN: .*never passed/);
  assert.match(passEnvProblem(["CCX_*"])!, /never passed/);
  assert.match(passEnvProblem(["A-B"])!, /expected a variable name/);
});

Deno.test("a job started by the supervisor does not inherit CCX_TOKEN from its parent", async () => {
  // The parent is a process of its own: CCX_TOKEN set in this one would reach every server that
  // test modules running in parallel start meanwhile (and make them ask for a token).
  const code = `import { startJob } from ${JSON.stringify(`${ROOT}lib/serve/supervisor.ts`)};
    let out = "";
    const job = startJob({ command: 'echo "[$CCX_TOKEN][\${PATH:+path}]"' }, {
      output: (_s, t) => out += t,
    });
    console.log(JSON.stringify({ status: (await job.done).status, out }));`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { CCX_TOKEN: "parent-secret" },
    stdin: "null",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, err);
  const { status, out } = JSON.parse(new TextDecoder().decode(r.stdout));
  assert.equal(status, "completed");
  assert.equal(out, "[][path]\n");
});

Deno.test("heldSecrets finds the token and CCX_* URL passwords, and where they are", () => {
  const pw = "redis://:pw@h:6379";
  assert.deepEqual(
    heldSecrets({ token: "t", args: ["serve"], env: { CCX_TOKEN: "t" }, dotEnv: {} }),
    [{ what: "the token (CCX_TOKEN)", where: "environment" }],
  );
  assert.deepEqual(
    heldSecrets({ token: "t", args: ["serve", "--token=t"], env: {}, dotEnv: {} }),
    [{ what: "the token (CCX_TOKEN)", where: "command line" }],
  );
  // A .env token that the environment overrides is still a secret within reach.
  assert.deepEqual(
    heldSecrets({ token: "t", args: [], env: { CCX_TOKEN: "t" }, dotEnv: { CCX_TOKEN: "old" } }),
    [
      { what: "the token (CCX_TOKEN)", where: "environment" },
      { what: "the token (CCX_TOKEN)", where: ".env" },
    ],
  );
  assert.deepEqual(
    heldSecrets({
      token: "t",
      args: ["serve"],
      env: { REDIS_URL: pw, CCX_QUEUE: "redis://h:6379" },
      dotEnv: { CCX_TOKEN: "t", CCX_QUEUE: pw },
    }),
    [
      { what: "the token (CCX_TOKEN)", where: ".env" },
      { what: "the password in CCX_QUEUE", where: ".env" },
    ],
  );
  assert.deepEqual(heldSecrets({ args: ["--queue", pw], env: {}, dotEnv: {} }), [
    { what: "a password in a URL", where: "command line" },
  ]);
  assert.deepEqual(heldSecrets({ args: ["serve"], env: { PATH: "/bin" }, dotEnv: {} }), []);
});

Deno.test("secretWarnings says which setups leave secrets within a job's reach", () => {
  const env = [{ what: "the token (CCX_TOKEN)", where: "environment" as const }];
  const dot = [{ what: "the token (CCX_TOKEN)", where: ".env" as const }];
  const cmd = [{ what: "the token (CCX_TOKEN)", where: "command line" as const }];
  assert.match(secretWarnings(env, { isolate: "none" }).join(), /--run-as USER.*--isolate bwrap/);
  assert.deepEqual(secretWarnings([], { isolate: "none" }), []);
  // Confined as the server's user: /proc is the sandbox's own, but ./.env is in the read-only root.
  assert.deepEqual(secretWarnings(env, { isolate: "bwrap" }), []);
  assert.deepEqual(secretWarnings(cmd, { isolate: "bwrap" }), []);
  assert.match(secretWarnings(dot, { isolate: "bwrap" }).join(), /can read \.\/\.env/);
  // Another user: the command line is world-readable, and so is a .env of mode 644.
  assert.deepEqual(secretWarnings(env, { isolate: "none", runAs: "nobody" }), []);
  assert.match(secretWarnings(cmd, { isolate: "none", runAs: "nobody" }).join(), /ps, \/proc/);
  assert.deepEqual(secretWarnings(dot, { isolate: "none", runAs: "nobody" }), []);
  assert.match(
    secretWarnings(dot, { isolate: "bwrap", runAs: "nobody", dotEnvOpenToOthers: true }).join(),
    /chmod 600 \.env/,
  );
  // ccx worker says whose secrets they are.
  const queue = [{ what: "the password in CCX_QUEUE", where: "environment" as const }];
  assert.match(
    secretWarnings(queue, { isolate: "none", who: "worker" }).join(),
    /^warning: jobs run unconfined as the worker's own user, so they can read its secrets \(the password in CCX_QUEUE in the environment\)/,
  );
  assert.match(secretWarnings(env, { isolate: "none" }).join(), /as the server's own user/);
});

/**
 * Runs the stand-in as a job of a `ccx serve` process started with `serverEnv` (plus `flags`),
 * the request adding `requestEnv`; returns its exit code and parsed transcript.
 */
async function claudeJob(
  serverEnv: Record<string, string>,
  requestEnv: Record<string, string> = {},
  flags: string[] = [],
  params: Record<string, unknown> = {},
) {
  const srv = await serveProcess(flags, serverEnv);
  try {
    const s = await RawSession.open(srv.url);
    try {
      const r = await s.call(1, "execute", {
        job_id: "c",
        argv: [
          FAKE_CLAUDE,
          "-p",
          "What is 2+2?",
          "--output-format",
          "stream-json",
          "--verbose",
          "--dangerously-skip-permissions",
        ],
        env: { IS_SANDBOX: "1", ...requestEnv },
        ...params,
      });
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const done = await s.completed("c", 60_000);
      const stdout = s.output("c");
      return {
        exit: done.params?.exit_code as number,
        t: parseClaudeOutput(stdout),
        stdout,
        stderr: s.output("c", "stderr"),
      };
    } finally {
      await s.close();
    }
  } finally {
    await srv.stop();
  }
}

/** A server environment with no credentials in it (the test process may have some). */
const NO_KEY = {
  ANTHROPIC_API_KEY: "",
  ANTHROPIC_AUTH_TOKEN: "",
  CLAUDE_CODE_OAUTH_TOKEN: "",
  CLAUDE_CONFIG_DIR: "",
};

Deno.test("a Claude job succeeds only when the key reaches it: from the server's allow-listed environment or the request", async () => {
  const home = await Deno.makeTempDir({ prefix: "ccx-nokey-home-" }); // no login in it either
  try {
    const bare = { ...NO_KEY, HOME: home };
    const without = await claudeJob(bare);
    assert.equal(without.exit, 1, without.stdout + without.stderr);
    assert.equal(without.t.result?.text, "Not logged in · Please run /login");

    const fromServer = await claudeJob({ ...bare, ANTHROPIC_API_KEY: TEST_API_KEY });
    assert.equal(fromServer.exit, 0, fromServer.stdout + fromServer.stderr);
    assert.equal(fromServer.t.result?.text, "2 + 2 = 4");

    const fromRequest = await claudeJob(bare, { ANTHROPIC_API_KEY: TEST_API_KEY });
    assert.equal(fromRequest.exit, 0, fromRequest.stdout + fromRequest.stderr);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test({
  name: "under --isolate bwrap a Claude job in its workspace succeeds only when the key reaches it",
  ignore: bwrapIgnore,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "ccx-key-iso-" });
    const home = await Deno.makeTempDir({ prefix: "ccx-nokey-home-" });
    try {
      const flags = ["--isolate", "bwrap", "--workspace-root", root];
      const bare = { ...NO_KEY, HOME: home };
      const without = await claudeJob(bare, {}, flags, { workspace: true });
      assert.equal(without.exit, 1, without.stdout + without.stderr);
      assert.equal(without.t.result?.text, "Not logged in · Please run /login");
      const keyed = await claudeJob(
        { ...bare, ANTHROPIC_API_KEY: TEST_API_KEY },
        {},
        flags,
        { workspace: true },
      );
      assert.equal(keyed.exit, 0, keyed.stdout + keyed.stderr);
      assert.equal(keyed.t.result?.text, "2 + 2 = 4");
      // It ran confined: its cwd was the workspace the server made, under the root.
      assert.ok(keyed.t.init?.cwd?.startsWith(root), keyed.t.init?.cwd);
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(home, { recursive: true });
    }
  },
});

import assert from "node:assert/strict";
import { DEFAULT_PASS_ENV, jobEnvironment, passEnvProblem } from "../lib/serve/job_env.ts";
import { ROOT } from "./_util/helpers.ts";

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

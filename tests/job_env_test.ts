import assert from "node:assert/strict";
import { DEFAULT_PASS_ENV, jobEnvironment, passEnvProblem } from "../lib/job_env.ts";
import { startJob } from "../lib/supervisor.ts";

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
  const saved = Deno.env.get("CCX_TOKEN");
  Deno.env.set("CCX_TOKEN", "parent-secret");
  try {
    let out = "";
    const job = startJob({ command: 'echo "[$CCX_TOKEN][${PATH:+path}]"' }, {
      output: (_s, t) => out += t,
    });
    assert.equal((await job.done).status, "completed");
    assert.equal(out, "[][path]\n");
  } finally {
    if (saved === undefined) Deno.env.delete("CCX_TOKEN");
    else Deno.env.set("CCX_TOKEN", saved);
  }
});

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  findLastRun,
  LiveReport,
  readRun,
  rememberLastRun,
  rerunArgs,
} from "../lib/stress/rerun.ts";
import type { RunReport } from "../lib/stress/report/model.ts";
import { stress } from "../lib/commands/stress.ts";
import { cli, FAKE_CLAUDE, ROOT } from "./_util/helpers.ts";

function report(n: number): RunReport {
  return {
    runId: "r1",
    suite: "s.json",
    startedAt: new Date(0),
    durationS: n,
    results: [],
    interrupted: false,
    threshold: 10,
    skipped: Array.from({ length: n }, (_, i) => ({
      id: `t${i}`,
      name: `t${i}`,
      category: "c",
      reason: "not run yet",
    })),
  };
}

Deno.test("LiveReport writes the latest snapshot, never two writes at once, each one whole", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "sub", "report.json");
    const live = new LiveReport(path);
    let taken = 0;
    for (let i = 1; i <= 50; i++) live.update(() => (taken++, report(i)));
    await live.flush();
    // A burst of updates is coalesced; the file holds the last snapshot.
    assert.ok(taken < 50, `${taken} snapshots written for 50 updates`);
    const back = await readRun(path);
    assert.equal(back.skipped?.length, 50);
    // No temporary file is left beside it.
    assert.deepEqual([...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name), ["report.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findLastRun() prefers the remembered run, else the newest run directory", async () => {
  const root = await Deno.makeTempDir();
  try {
    assert.equal(await findLastRun(root), undefined);
    for (const name of ["old", "new"]) {
      await Deno.mkdir(join(root, name));
      await Deno.writeTextFile(join(root, name, "report.json"), "{}");
      await Deno.utime(join(root, name, "report.json"), 0, name === "old" ? 1000 : 2000);
    }
    assert.equal(await findLastRun(root), join(root, "new", "report.json"));
    await rememberLastRun(join(root, "old", "report.json"), root);
    assert.equal(await findLastRun(root), join(root, "old", "report.json"));
    await assert.rejects(readRun(join(root, "old")), /not a ccx stress report/);
    await assert.rejects(readRun(join(root, "missing")), /no report\.json at/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rerunArgs() keeps every flag as given but the run's own and the secrets", () => {
  const o = stress.decl.options;
  const r = rerunArgs(
    [
      "s.json",
      "--sandbox",
      "-c",
      "4",
      "--out",
      "x",
      "--json=r.json",
      "--resume",
      "d",
      "--last-failed",
      "--token",
      "t0k",
      "--queue",
      "redis://:pw@h:6379",
      "--filter=a b",
      "-x",
    ],
    o,
    ["resume", "last-failed", "out", "json"],
  );
  assert.deepEqual(r.args, ["s.json", "--sandbox", "-c", "4", "--filter=a b", "-x"]);
  assert.deepEqual(r.secrets, ["--token", "--queue"]);
});

Deno.test("the --last-failed hint of ccx stress repeats every flag, quoted, and works when pasted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_rerun_hint_" });
  try {
    // The Claude executable sits where only proper quoting reaches it.
    const odd = join(dir, "my claude's $HOME");
    await Deno.mkdir(odd);
    await Deno.symlink(FAKE_CLAUDE, join(odd, "claude"));
    const suite = join(dir, "suite.json");
    await Deno.writeTextFile(
      suite,
      JSON.stringify({
        categories: {
          c: {
            tasks: [
              {
                id: "flaky",
                natural_language_request: "[[fail-first:1:exit:3]] What is 2+2?",
                verification: { expected_patterns: ["4"] },
              },
              {
                id: "fine",
                natural_language_request: "What is 2+2?",
                verification: { expected_patterns: ["4"] },
              },
            ],
          },
          other: { tasks: [{ id: "elsewhere", command_template: "echo ok" }] },
        },
      }),
    );
    // --sandbox and --claude are on the command line only: a hint without them fails (root
    // stop, or no `claude` on PATH).
    const env = {
      CCX_SANDBOX: "",
      IS_SANDBOX: "",
      CCX_CLAUDE: "",
      FAKE_CLAUDE_STATE: join(dir, "fake_state"),
      ANTHROPIC_API_KEY: "sk-ant-stand-in-test",
      CCX_STATE_DIR: join(dir, "state"),
    };
    const first = await cli(
      [
        "stress",
        suite,
        "--sandbox",
        "--claude",
        join(odd, "claude"),
        "--category",
        "c",
        "--out",
        join(dir, "first"),
        "--no-history",
      ],
      { cwd: dir, env },
    );
    assert.equal(first.code, 1, first.stdout + first.stderr);
    const hint = first.stdout.match(/^Rerun the failures with: (ccx stress .*)$/m)?.[1];
    assert.ok(hint, first.stdout);
    assert.match(hint, /^ccx stress --last-failed /);
    assert.match(hint, / --sandbox /);
    assert.match(hint, / --category c /);
    assert.match(hint, / --no-history$/);
    assert.doesNotMatch(hint, /--out/);
    // Pasted into a shell, with `ccx` standing for this checkout's main.ts.
    const ccx = `'${Deno.execPath()}' run -A '${ROOT}main.ts'`;
    const pasted = await new Deno.Command("sh", {
      args: ["-c", hint.replace(/^ccx /, `${ccx} `)],
      cwd: dir,
      env: { ...env, NO_COLOR: "1", CCX_NO_API_CHECK: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(pasted.stdout) + new TextDecoder().decode(pasted.stderr);
    assert.equal(pasted.code, 0, text);
    const rerun = await readRun((await findLastRun(join(dir, "test_outputs")))!);
    assert.deepEqual(rerun.results.map((r) => [r.id, r.status]), [["flaky", "passed"]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

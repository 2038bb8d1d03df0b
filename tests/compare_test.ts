/** Comparing two runs (lib/stress/compare.ts): regressed, fixed, still failing, new, gone. */

import assert from "node:assert/strict";
import { compareRuns } from "../lib/stress/compare.ts";
import { join } from "node:path";
import { result, run } from "./_util/report.ts";
import { cli } from "./_util/helpers.ts";

Deno.test("compareRuns: tasks that regressed, were fixed, still fail, are new or gone; ratios", () => {
  const before = run([
    result("keeps", "passed"),
    result("breaks", "passed"),
    result("heals", "failed"),
    result("stays_bad", "error", { reason: 'check "x" timed out' }),
    result("goes", "passed"),
  ]);
  const after = run([
    result("keeps", "passed"),
    result("breaks", "failed", { reason: 'check "sh t.sh" exited 1: AssertionError' }),
    result("heals", "passed"),
    result("stays_bad", "failed"),
    result("arrives", "passed"),
  ], { runId: "run-43" });
  const c = compareRuns(before, after, "old/report.json");
  assert.deepEqual(c.baseline, {
    runId: "run-42",
    suite: "smoke",
    startedAt: before.startedAt,
    path: "old/report.json",
  });
  assert.deepEqual(c.regressed, [{
    id: "breaks",
    before: "passed",
    after: "failed",
    reason: 'check "sh t.sh" exited 1: AssertionError',
  }]);
  assert.deepEqual(c.fixed.map((t) => t.id), ["heals"]);
  assert.deepEqual(c.stillFailing.map((t) => [t.id, t.before, t.after]), [
    ["stays_bad", "error", "failed"],
  ]);
  assert.deepEqual(c.added.map((t) => t.id), ["arrives"]);
  assert.deepEqual(c.gone, [{ id: "goes", before: "passed" }]);
  assert.equal(c.before.passed, 3);
  assert.equal(c.after.passed, 3);
  assert.deepEqual(c.differences, []);
});

Deno.test("compareRuns: repeats fold per task (flaky is not passing); what ran differs is said", () => {
  const before = run([
    result("a.r1", "passed", { cliVersion: "2.1.197", model: "claude-a" }),
    result("a.r2", "passed"),
    result("b.r1", "passed"),
    result("b.r2", "passed"),
  ], {
    repeat: 2,
    meta: { ccxVersion: "0.1.0", host: "box1", commandLine: [], suiteHash: "sha256:1" },
  });
  const after = run([
    result("a.r1", "passed", { cliVersion: "2.1.200", model: "claude-b" }),
    result("a.r2", "failed"),
    result("b.r1", "passed"),
    result("b.r2", "passed"),
  ], {
    repeat: 2,
    meta: { ccxVersion: "0.2.0", host: "box1", commandLine: [], suiteHash: "sha256:2" },
  });
  const c = compareRuns(before, after);
  assert.deepEqual(c.regressed.map((t) => [t.id, t.before, t.after]), [["a", "passed", "flaky"]]);
  assert.deepEqual(c.differences, [
    "Claude Code 2.1.197 → 2.1.200",
    "models claude-a → claude-b",
    "ccx 0.1.0 → 0.2.0",
    "suite file changed (sha256:1 → sha256:2)",
  ]);
});

/** `ccx stress SUITE ARGS` in `cwd` (its test_outputs/ go there). */
function stress(cwd: string, suite: string, ...args: string[]) {
  return cli(["stress", suite, "--no-history", ...args], { cwd });
}

Deno.test("ccx stress --baseline PATH|last and ccx report diff on two real runs; --fail-on-regression exit codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_compare_test_" });
  try {
    const flag = join(dir, "second");
    const suite = join(dir, "suite.json");
    await Deno.writeTextFile(
      suite,
      JSON.stringify({
        tests: [
          { id: "keeps", command: "echo ok", expected_patterns: ["ok"] },
          { id: "breaks", command: `test ! -e ${flag} && echo ok`, expected_patterns: ["ok"] },
          { id: "heals", command: `test -e ${flag} && echo ok`, expected_patterns: ["ok"] },
        ],
      }),
    );
    const first = await stress(dir, suite, "--out", join(dir, "run1"));
    assert.equal(first.code, 1, first.stdout + first.stderr);
    await Deno.writeTextFile(flag, "");
    // Against run 1: breaks regressed, heals was fixed (2:1 does not graduate: exit 1).
    const second = await stress(
      dir,
      suite,
      "--out",
      join(dir, "run2"),
      "--baseline",
      join(dir, "run1"),
    );
    assert.equal(second.code, 1, second.stdout + second.stderr);
    const report = JSON.parse(await Deno.readTextFile(join(dir, "run2", "report.json")));
    assert.deepEqual(report.comparison.regressed.map((t: { id: string }) => t.id), ["breaks"]);
    assert.deepEqual(report.comparison.fixed.map((t: { id: string }) => t.id), ["heals"]);
    assert.equal(report.comparison.baseline.path, join(dir, "run1", "report.json"));
    assert.deepEqual([report.comparison.before.passed, report.comparison.after.passed], [2, 2]);
    assert.match(
      second.stdout,
      /\n {2}REGRESSED \(1\): breaks \(passed → failed: exit code 1, expected exit 0\)\n {2}fixed \(1\): heals \(failed → passed\)\n/,
    );
    // --fail-on-regression turns a graduating run with a regression into exit 1.
    const graduating = ["--threshold", "0", "--baseline", join(dir, "run1")];
    const plain = await stress(dir, suite, "--out", join(dir, "run3"), ...graduating);
    assert.equal(plain.code, 0, plain.stdout);
    const strict = await stress(
      dir,
      suite,
      "--out",
      join(dir, "run4"),
      ...graduating,
      "--fail-on-regression",
    );
    assert.equal(strict.code, 1, strict.stdout);
    assert.match(
      strict.stdout,
      /1 task regressed since the baseline \(--fail-on-regression\): exit 1\./,
    );
    // Nothing regressed against run 2: exit 0 with --fail-on-regression.
    const calm = await stress(
      dir,
      suite,
      "--out",
      join(dir, "run5"),
      "--threshold",
      "0",
      "--baseline",
      join(dir, "run2"),
      "--fail-on-regression",
      "--html",
      join(dir, "run5.html"),
    );
    assert.equal(calm.code, 0, calm.stdout);
    assert.match(calm.stdout, /no task changed its verdict/);
    assert.match(await Deno.readTextFile(join(dir, "run5.html")), /<section id="comparison">/);
    // ccx report diff A B: the same comparison, as text or JSON, for two existing runs.
    const diff = await cli(["report", "diff", join(dir, "run1"), join(dir, "run2", "report.json")]);
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(
      diff.stdout,
      /^Compared with \S+ \(.*run1\/report\.json\):\n {2}ratio 2\.0:1 → 2\.0:1/,
    );
    assert.match(diff.stdout, /REGRESSED \(1\): breaks/);
    const asJson = await cli([
      "report",
      "diff",
      join(dir, "run1"),
      join(dir, "run2"),
      "--json",
      "--fail-on-regression",
    ]);
    assert.equal(asJson.code, 1);
    assert.deepEqual(JSON.parse(asJson.stdout).fixed.map((t: { id: string }) => t.id), ["heals"]);
    const alone = await stress(dir, suite, "--fail-on-regression");
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--fail-on-regression needs --baseline PATH\|last/);
    const bad = await cli(["report", "diff", join(dir, "run1"), join(dir, "nowhere")]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /ccx report diff: no report\.json at .*nowhere/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ccx stress --baseline last compares with the previous run of the same suite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_compare_test_" });
  try {
    const suite = join(dir, "suite.json");
    const other = join(dir, "other.json");
    await Deno.writeTextFile(
      suite,
      JSON.stringify({ tests: [{ id: "a", command: "echo ok", expected_patterns: ["ok"] }] }),
    );
    await Deno.writeTextFile(
      other,
      JSON.stringify({ tests: [{ id: "b", command: "echo ok", expected_patterns: ["ok"] }] }),
    );
    const none = await stress(dir, suite, "--baseline", "last");
    assert.equal(none.code, 0);
    assert.match(
      none.stderr,
      /--baseline last: no earlier run of .*suite\.json under test_outputs\/; nothing to compare with/,
    );
    await stress(dir, other);
    const again = await stress(dir, suite, "--baseline", "last");
    assert.equal(again.code, 0, again.stderr);
    const last = (await Deno.readTextFile(join(dir, "test_outputs", ".last-run"))).trim();
    const report = JSON.parse(await Deno.readTextFile(join(dir, last)));
    // The run of other.json in between is not this suite's.
    assert.equal(report.comparison.after.total, 1);
    assert.notEqual(report.comparison.baseline.run_id, report.run_id);
    assert.deepEqual(report.comparison.gone, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ccx stress --repeat N: a task that alternates is flaky, k/N passed, pass@1 in every report", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_compare_test_" });
  try {
    const count = join(dir, "count");
    const suite = join(dir, "suite.json");
    await Deno.writeTextFile(
      suite,
      JSON.stringify({
        tests: [
          {
            id: "alt",
            command: `n=$(($(cat ${count} 2>/dev/null || echo 0) + 1)); echo $n > ${count}; ` +
              `[ $((n % 2)) = 0 ] && echo ok`,
            expected_patterns: ["ok"],
          },
          { id: "steady", command: "echo ok", expected_patterns: ["ok"] },
        ],
      }),
    );
    const r = await stress(
      dir,
      suite,
      "--repeat",
      "4",
      "--out",
      join(dir, "out"),
      "--junit",
      join(dir, "j.xml"),
      "--html",
      join(dir, "r.html"),
    );
    assert.equal(r.code, 1);
    const report = JSON.parse(await Deno.readTextFile(join(dir, "out", "report.json")));
    assert.equal(report.repeat, 4);
    assert.deepEqual(report.summary.flaky, ["alt"]);
    assert.equal(report.summary.pass_at_1, 0.75);
    assert.deepEqual(report.repeats, [
      { id: "alt", category: "tests", runs: 4, passed: 2, flaky: true },
      { id: "steady", category: "tests", runs: 4, passed: 4, flaky: false },
    ]);
    assert.match(
      r.stdout,
      /\nRepeats: 4 runs a task; pass@1 75\.0%; flaky \(1\): alt\n {2}alt: 2\/4 passed \(flaky\)\n/,
    );
    assert.match(
      await Deno.readTextFile(join(dir, "j.xml")),
      /<property name="flaky" value="alt"\/>/,
    );
    assert.match(
      await Deno.readTextFile(join(dir, "r.html")),
      /<td><code>alt<\/code><\/td><td>2\/4<\/td>/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

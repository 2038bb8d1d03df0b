import assert from "node:assert/strict";
import { formatSummaryTable } from "../lib/stress/report/console.ts";
import { modelSaid, result, run } from "./_util/report.ts";

Deno.test("formatSummaryTable() without colour has no escape codes and ends with the ratio line", () => {
  const text = formatSummaryTable(
    run([
      result("simple_1", "passed", {
        patternsFound: ["4", "four", "IV", "2+2"],
        outputFile: "o/1.txt",
      }),
      result("simple_2", "failed", { reason: "\x1b[31mmissing\x1b[0m 4\nsecond line" }),
      result("simple_3", "error", { reason: "could not connect" }),
    ]),
    { color: false },
  );
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f]/);
  const lines = text.trimEnd().split("\n");
  assert.match(lines[0], /^Test ID\s+Category\s+Status\s+Duration\s+Info\s+Output$/);
  assert.match(
    lines[2],
    /^simple_1\s+simple\s+PASS\s+1\.0s\s+patterns: 4, four, IV \+1\s+o\/1\.txt$/,
  );
  assert.match(lines[3], /^simple_2\s+simple\s+FAIL\s+1\.0s\s+missing 4 second line\s+-$/);
  assert.match(lines[4], /^simple_3\s+simple\s+ERROR\s+1\.0s\s+could not connect/);
  assert.equal(lines.at(-2), "3 tests: 1 passed, 1 failed, 1 error in 12.3s — NOT GRADUATED");
  assert.equal(lines.at(-1), "Success ratio: 0.5:1 (need 10:1 to graduate)");
  // Columns line up.
  assert.equal(lines[2].indexOf("PASS"), lines[0].indexOf("Status"));
  assert.equal(lines[4].indexOf("ERROR"), lines[0].indexOf("Status"));
});

Deno.test("formatSummaryTable() with colour keeps the status words and the exact ratio line", () => {
  const text = formatSummaryTable(run([result("a", "passed"), result("b", "failed")]), {
    color: true,
  });
  assert.ok(text.includes("\x1b[32mPASS"));
  assert.ok(text.includes("\x1b[31mFAIL"));
  assert.ok(text.trimEnd().endsWith("\nSuccess ratio: 1.0:1 (need 10:1 to graduate)"));
});

Deno.test("formatSummaryTable() of an empty, interrupted run says so", () => {
  const text = formatSummaryTable(run([], { interrupted: true }), { color: false });
  assert.ok(text.includes("(no tests ran)"));
  assert.ok(text.includes("(interrupted)"));
});

Deno.test("formatSummaryTable() shows what the model said, why, and what it cost", () => {
  const rep = modelSaid();
  const text = formatSummaryTable(rep, { color: false });
  assert.match(
    text,
    /FAIL math: missing pattern: 4\n {2}answer: The answer is five\. Second line\.\n {2}stderr: real problem here/,
  );
  // The fix is said once per kind by ccx stress, not under every task.
  assert.doesNotMatch(text, /run claude \/login/);
  assert.match(text, /By category: simple 0\/3 \(1 failed, 2 errors\); other 1\/2/);
  assert.match(text, /Cost \$0\.0150; tokens 150 in, 30 out/);
  assert.match(text, /later\s+other\s+SKIP\s+-\s+--max-fail 1 reached/);
  assert.match(text, /4 tests: 1 passed, 1 failed, 2 errors, 1 skipped in/);
});

Deno.test("console: a failed task's checks (exit, time, the end of their output) and rubric; what ran, repeats, comparison", async () => {
  const { compareRuns } = await import("../lib/stress/compare.ts");
  const bad = result("add.r1", "failed", {
    reason: 'check "sh test_add.sh" exited 1: AssertionError',
    checks: [{
      command: "sh test_add.sh",
      status: "failed",
      exitCode: 1,
      durationS: 0.25,
      stdoutTail: "running\nAssertionError: add 2 3 gave -1",
    }],
    rubric: {
      status: "failed",
      statements: ["s"],
      reason: "add subtracts",
      durationS: 1,
      model: "j",
    },
    cliVersion: "2.1.197",
    model: "claude-x",
  });
  const before = run([result("add.r1", "passed"), result("add.r2", "passed")], { repeat: 2 });
  const report = run([bad, result("add.r2", "passed")], {
    repeat: 2,
    meta: { ccxVersion: "0.1.0", host: "box", commandLine: ["stress"], suiteHash: "sha256:x" },
  });
  report.comparison = compareRuns(before, report, "prev/report.json");
  const text = formatSummaryTable(report, { color: false });
  assert.match(
    text,
    /\n {2}check "sh test_add\.sh": FAIL, exit 1, 0\.3s\n {4}\| running\n {4}\| AssertionError: add 2 3 gave -1\n/,
  );
  assert.match(text, /\n {2}rubric \(1 statement, judge j\): FAIL: add subtracts\n/);
  assert.match(
    text,
    /\nRun: ccx 0\.1\.0 on box; Claude Code 2\.1\.197; models claude-x; suite sha256:x; command: ccx stress\n/,
  );
  assert.match(
    text,
    /\nRepeats: 2 runs a task; pass@1 50\.0%; flaky \(1\): add\n {2}add: 1\/2 passed \(flaky\)\n/,
  );
  assert.match(text, /\nCompared with run-42 \(prev\/report\.json\):\n {2}ratio ∞:1 → 1\.0:1/);
  assert.match(
    text,
    /\n {2}REGRESSED \(1\): add \(passed → flaky: check "sh test_add\.sh" exited 1: AssertionError\)\n/,
  );
  // The ratio line stays last.
  assert.match(text.trimEnd().split("\n").at(-1)!, /^Success ratio: /);
});

Deno.test("formatSummaryTable() puts a skipped task's row in the table's columns, and counts in the singular", () => {
  const rep = modelSaid();
  rep.results = rep.results.filter((r) => r.id !== "e2");
  rep.skipped = [
    ...rep.skipped ?? [],
    { id: "a_much_longer_task_id", name: "x", category: "other", reason: "interrupted" },
  ];
  const lines = formatSummaryTable(rep, { color: false }).split("\n");
  const header = lines[0];
  // Where each column starts in the header is where it starts in every row, SKIP rows included.
  const starts = ["Category", "Status", "Duration", "Info", "Output"].map((h) => header.indexOf(h));
  const rows = lines.slice(2, lines.indexOf(""));
  assert.equal(rows.filter((l) => l.includes(" SKIP ")).length, 2);
  for (const row of rows) {
    for (const at of starts) {
      assert.equal(row[at - 1], " ", `column at ${at} of ${JSON.stringify(row)}`);
      assert.notEqual(row[at], " ", `column at ${at} of ${JSON.stringify(row)}`);
    }
  }
  assert.match(lines.join("\n"), /simple 0\/2 \(1 failed, 1 error\)/);
});

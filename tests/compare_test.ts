/** Comparing two runs (lib/stress/compare.ts): regressed, fixed, still failing, new, gone. */

import assert from "node:assert/strict";
import { compareRuns } from "../lib/stress/compare.ts";
import { result, run } from "./_util/report.ts";

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
    result("a.r1", "passed", { claudeVersion: "2.1.197", model: "claude-a" }),
    result("a.r2", "passed"),
    result("b.r1", "passed"),
    result("b.r2", "passed"),
  ], {
    repeat: 2,
    meta: { ccxVersion: "0.1.0", host: "box1", commandLine: [], suiteHash: "sha256:1" },
  });
  const after = run([
    result("a.r1", "passed", { claudeVersion: "2.1.200", model: "claude-b" }),
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

/** What a check's run means (lib/verdict/check.ts): results, the verdict of several, feedback. */

import assert from "node:assert/strict";
import {
  checkNotRun,
  checkResult,
  checksVerdict,
  describeCheck,
  refineWithChecks,
} from "../lib/verdict/check.ts";

const run = (status: string, exitCode: number | null, stdout = "", stderr = "", signal = null) => ({
  status,
  exitCode,
  signal,
  executionTime: 0.25,
  stdout,
  stderr,
});

Deno.test("checkResult: exit 0 passes, another exit fails, a timeout or an interruption is an error", () => {
  const ok = checkResult("pytest -q", run("completed", 0, "1 passed\n"), 120);
  assert.deepEqual(ok, {
    command: "pytest -q",
    status: "passed",
    exitCode: 0,
    durationS: 0.25,
    stdoutTail: "1 passed",
  });
  const bad = checkResult(
    "pytest -q",
    run("failed", 1, "E  assert 1 == 5\n1 failed\n", "warn\n"),
    120,
  );
  assert.equal(bad.status, "failed");
  assert.equal(bad.stderrTail, "warn");
  assert.equal(checkResult("x", run("timeout", null), 7).reason, "timed out after 7 s");
  assert.equal(checkResult("x", run("timeout", null), 7).status, "error");
  assert.equal(checkResult("x", run("canceled", null), 7).reason, "interrupted");
  const crashed = checkResult("x", { ...run("failed", null), signal: "SIGSEGV" as never }, 7);
  assert.equal(crashed.status, "failed", "code that crashes fails its check");
  assert.equal(crashed.reason, "killed by SIGSEGV");
  // The tail is bounded: the last 30 lines.
  const long = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
  const tail = checkResult("x", run("failed", 1, long), 1).stdoutTail!.split("\n");
  assert.equal(tail.length, 30);
  assert.equal(tail.at(-1), "line 99");
});

Deno.test("checksVerdict: an error wins over a failure, which names the check and its last line", () => {
  const pass = checkResult("a", run("completed", 0), 1);
  const fail = checkResult("make test", run("failed", 2, "compiling\nFAIL: test_add\n"), 1);
  const err = checkNotRun("pytest", "program not found");
  assert.deepEqual(checksVerdict([pass, pass]), { status: "passed", reason: "2/2 checks" });
  assert.deepEqual(checksVerdict([pass, fail, fail]), {
    status: "failed",
    reason: 'check "make test" exited 2: FAIL: test_add (and 1 more failed)',
  });
  assert.deepEqual(checksVerdict([fail, err]), {
    status: "error",
    reason: 'check "pytest" could not start: program not found',
  });
  assert.equal(describeCheck(pass), 'check "a" passed');
});

Deno.test("refineWithChecks: what a failed check printed goes into the next prompt's IMPORTANT block", () => {
  const fail = checkResult("sh t.sh", run("failed", 1, "AssertionError: add(2, 3) == -1\n"), 1);
  const pass = checkResult("true", run("completed", 0), 1);
  assert.equal(refineWithChecks("Write add.sh", [pass]), "Write add.sh");
  assert.equal(
    refineWithChecks("Write add.sh", [pass, fail]),
    "Write add.sh\n\nIMPORTANT:\n- The check `sh t.sh` failed (exit 1); its output ends with:\n" +
      "    AssertionError: add(2, 3) == -1",
  );
  // Added to a refinement block that is there already.
  assert.equal(
    refineWithChecks("Write add.sh\n\nIMPORTANT:\n- File add.sh was not created.", [fail]),
    "Write add.sh\n\nIMPORTANT:\n- File add.sh was not created.\n- The check `sh t.sh` failed " +
      "(exit 1); its output ends with:\n    AssertionError: add(2, 3) == -1",
  );
});

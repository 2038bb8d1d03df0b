/**
 * Shared fixtures of the report tests (`report_*_test.ts`): results, runs, and text that must
 * never reach a report raw.
 * @module
 */

import type { RunReport, TestResult, TestStatus } from "../../lib/stress/report/model.ts";

/** Start of every fixture run: 2025-01-02T03:04:05.678Z. */
export const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

/** A result of `status` with plausible defaults, overridden by `extra`. */
export function result(
  id: string,
  status: TestStatus,
  extra: Partial<TestResult> = {},
): TestResult {
  return {
    id,
    name: `name of ${id}`,
    category: "simple",
    status,
    reason: status === "passed" ? "all patterns found" : `${id} went wrong`,
    durationS: 1,
    exitCode: status === "error" ? null : 0,
    patternsFound: status === "passed" ? ["4"] : [],
    patternsMissing: status === "passed" ? [] : ["4"],
    attempts: 1,
    startedAt: T0,
    ...extra,
  };
}

/** `n` results of one status, ids `<status>_<i>`. */
export function many(n: number, status: TestStatus): TestResult[] {
  return Array.from({ length: n }, (_, i) => result(`${status}_${i}`, status));
}

/** A run of `results` (run id `run-42`, suite `smoke`, threshold 10), overridden by `extra`. */
export function run(results: TestResult[], extra: Partial<RunReport> = {}): RunReport {
  return {
    runId: "run-42",
    suite: "smoke",
    startedAt: new Date(T0),
    durationS: 12.3456,
    results,
    interrupted: false,
    threshold: 10,
    ...extra,
  };
}

/** Data that must never reach a report raw. */
export const NASTY =
  `<script>alert("x&y")</script> it's \x00\x07\x1b[31mred\x1b[0m\ufffe\ud800 end`;
/** What survives: markup characters kept (escaped on output), ANSI and XML-illegal characters gone. */
export const NASTY_CLEAN = `<script>alert("x&y")</script> it's red end`;

/**
 * A run whose results carry what the model said (answer, stderr), why (reason, kind, fix) and what
 * it cost (model, turns, tokens, cost), with two errors of one kind and a skipped task.
 */
export function modelSaid(): RunReport {
  const results = [
    result("math", "failed", {
      reason: "missing pattern: 4",
      answer: "The answer is five.\nSecond line.",
      stderrTail: "npm warn: old\nreal problem here",
      model: "claude-haiku",
      turns: 2,
      tokens: { input: 100, output: 20, cacheRead: 5, cacheCreation: 1 },
      costUsd: 0.0125,
    }),
    result("ok", "passed", {
      category: "other",
      answer: "4",
      costUsd: 0.0025,
      tokens: { input: 50, output: 10, cacheRead: 0, cacheCreation: 0 },
    }),
    result("e1", "error", { kind: "not_logged_in", fix: "run claude /login" }),
    result("e2", "error", { kind: "not_logged_in", fix: "run claude /login" }),
  ];
  const rep = run(results, {
    skipped: [{ id: "later", name: "later", category: "other", reason: "--max-fail 1 reached" }],
  });
  return rep;
}

/**
 * Checks: shell commands run in a task's workspace after the task ended (`verification.check`,
 * `ccx exec --check`), the way SWE-bench and terminal-bench grade an agent: by what it left,
 * not by what it said. This module holds what a check's run becomes ({@linkcode checkResult}),
 * what a list of them decides ({@linkcode checksVerdict}) and what a retry's prompt is told
 * ({@linkcode checkFeedback}). Running them is the client's job (`lib/exec/graders.ts`).
 *
 * A check `passed` when it exited 0 and `failed` when it exited otherwise (a signal included:
 * the code under test crashed). It is an `error` when it could not start, timed out, or was
 * ended from outside: then nothing was learned about the task, and the task is an `error`
 * naming the check, never `failed`.
 *
 * @example
 * ```ts
 * import { checkResult, checksVerdict } from "./check.ts";
 * const r = checkResult("python3 -m pytest -q", {
 *   status: "failed", exitCode: 1, signal: null, executionTime: 0.8,
 *   stdout: "F\nE   assert 1 == 5\n1 failed\n", stderr: "",
 * }, 120);
 * checksVerdict([r]); // { status: "failed", reason: 'check "python3 -m pytest -q" exited 1: 1 failed' }
 * ```
 * @module
 */

import { tail } from "./answer.ts";

/** Seconds a check may run when `check_timeout` is not given. */
export const DEFAULT_CHECK_TIMEOUT_S = 120;

/** Lines of a check's output kept in its result (and shown in the reports). */
export const CHECK_TAIL_LINES = 30;

/** What one check did. */
export interface CheckResult {
  /** The shell command, as the suite (or `--check`) gave it. */
  command: string;
  /** `passed` (exit 0), `failed` (exited otherwise), `error` (could not run or finish). */
  status: "passed" | "failed" | "error";
  /** Its exit code; `null` when it did not exit on its own or never started. */
  exitCode: number | null;
  /** Seconds it ran. */
  durationS: number;
  /** The last lines of its stdout, when it wrote any. */
  stdoutTail?: string;
  /** The last lines of its stderr, when it wrote any. */
  stderrTail?: string;
  /** Why it is an `error` (`timed out after 120 s`, `could not start: …`), or the signal. */
  reason?: string;
}

/** How a check's job ended: what `process.completed` and the collected output say. */
export interface CheckRun {
  /** `completed`, `failed`, `timeout`, `stalled`, `canceled` or `killed`. */
  status: string;
  /** Its exit code, `null` without one. */
  exitCode: number | null;
  /** The signal that ended it, if any. */
  signal?: string | null;
  /** Seconds it ran. */
  executionTime: number;
  /** Its whole stdout. */
  stdout: string;
  /** Its whole stderr. */
  stderr: string;
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/**
 * The result of one check from how its job ended; `timeoutS` is the limit it had (for the
 * reason of a timeout).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkResult } from "./check.ts";
 * const r = checkResult("sleep 9", {
 *   status: "timeout", exitCode: null, signal: "SIGTERM", executionTime: 1, stdout: "", stderr: "",
 * }, 1);
 * assert.deepEqual([r.status, r.reason], ["error", "timed out after 1 s"]);
 * ```
 */
export function checkResult(command: string, run: CheckRun, timeoutS: number): CheckResult {
  const out: CheckResult = {
    command,
    status: "passed",
    exitCode: run.exitCode,
    durationS: round3(run.executionTime),
  };
  const so = tail(run.stdout, CHECK_TAIL_LINES);
  const se = tail(run.stderr, CHECK_TAIL_LINES);
  if (so !== undefined) out.stdoutTail = so;
  if (se !== undefined) out.stderrTail = se;
  switch (run.status) {
    case "completed":
      return out;
    case "failed":
      out.status = "failed";
      if (run.signal) out.reason = `killed by ${run.signal}`;
      return out;
    case "timeout":
      return { ...out, status: "error", reason: `timed out after ${timeoutS} s` };
    case "stalled":
      return { ...out, status: "error", reason: "stalled" };
    case "canceled":
      return { ...out, status: "error", reason: "interrupted" };
    default:
      return { ...out, status: "error", reason: `ended ${run.status}` };
  }
}

/**
 * The result of a check that never ran: the server refused it or the connection broke.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkNotRun } from "./check.ts";
 * assert.equal(checkNotRun("pytest", "program not found").reason, "could not start: program not found");
 * ```
 */
export function checkNotRun(command: string, why: string): CheckResult {
  return {
    command,
    status: "error",
    exitCode: null,
    durationS: 0,
    reason: `could not start: ${why}`,
  };
}

/** The last non-blank line of a check's output (stdout, else stderr), for one-line reasons. */
export function lastLine(c: Pick<CheckResult, "stdoutTail" | "stderrTail">): string | undefined {
  for (const t of [c.stdoutTail, c.stderrTail]) {
    const line = t?.split("\n").map((l) => l.trim()).filter((l) => l !== "").at(-1);
    if (line) return line.length > 200 ? line.slice(0, 199) + "…" : line;
  }
  return undefined;
}

/**
 * One line about one check: `check "pytest -q" exited 1: 1 failed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeCheck } from "./check.ts";
 * assert.equal(
 *   describeCheck({ command: "make test", status: "error", exitCode: null, durationS: 120, reason: "timed out after 120 s" }),
 *   'check "make test" timed out after 120 s',
 * );
 * ```
 */
export function describeCheck(c: CheckResult): string {
  const name = `check ${
    JSON.stringify(c.command.length > 80 ? c.command.slice(0, 79) + "…" : c.command)
  }`;
  if (c.status === "error") return `${name} ${c.reason ?? "could not run"}`;
  if (c.status === "passed") return `${name} passed`;
  const how = c.reason ?? `exited ${c.exitCode}`;
  const line = lastLine(c);
  return `${name} ${how}${line ? `: ${line}` : ""}`;
}

/**
 * What a task's checks decide: `error` when one could not run or finish (naming it), else
 * `failed` when one did not pass (naming the first), else `passed` (`2/2 checks`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checksVerdict } from "./check.ts";
 * assert.deepEqual(checksVerdict([]), { status: "passed", reason: "0/0 checks" });
 * ```
 */
export function checksVerdict(
  checks: readonly CheckResult[],
): { status: CheckResult["status"]; reason: string } {
  const err = checks.find((c) => c.status === "error");
  if (err) return { status: "error", reason: describeCheck(err) };
  const failed = checks.filter((c) => c.status === "failed");
  if (failed.length) {
    const more = failed.length > 1 ? ` (and ${failed.length - 1} more failed)` : "";
    return { status: "failed", reason: describeCheck(failed[0]) + more };
  }
  return { status: "passed", reason: `${checks.length}/${checks.length} checks` };
}

/**
 * The next attempt's prompt with what failed checks printed (`ccx exec --check`): one
 * `IMPORTANT:` item per failed check, with the last `lines` lines of its output indented under
 * it, added to the prompt's `IMPORTANT:` block (made when it has none). Unchanged when no
 * check failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refineWithChecks } from "./check.ts";
 * const prompt = refineWithChecks("Write add.py", [
 *   { command: "sh t.sh", status: "failed", exitCode: 1, durationS: 0.1, stdoutTail: "FAIL: add(2, 3) == -1" },
 * ]);
 * assert.equal(
 *   prompt,
 *   "Write add.py\n\nIMPORTANT:\n- The check `sh t.sh` failed (exit 1); its output ends with:\n    FAIL: add(2, 3) == -1",
 * );
 * ```
 */
export function refineWithChecks(
  prompt: string,
  checks: readonly CheckResult[],
  lines = 15,
): string {
  const items = checks.filter((c) => c.status === "failed").map((c) => {
    const out = [c.stdoutTail, c.stderrTail].filter((t) => t !== undefined).join("\n");
    const end = out.split("\n").slice(-lines).map((l) => `    ${l}`).join("\n");
    return `- The check \`${c.command}\` failed (${c.reason ?? `exit ${c.exitCode}`})` +
      (end.trim() ? `; its output ends with:\n${end}` : ".");
  });
  return addImportant(prompt, items);
}

/**
 * `prompt` with `items` (each a `- …` line, continuation lines indented) added to its
 * `IMPORTANT:` block at the end, made when it has none; unchanged without items.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addImportant } from "./check.ts";
 * assert.equal(
 *   addImportant("Write add.py", ["- A reviewer found: add() subtracts."]),
 *   "Write add.py\n\nIMPORTANT:\n- A reviewer found: add() subtracts.",
 * );
 * ```
 */
export function addImportant(prompt: string, items: readonly string[]): string {
  if (items.length === 0) return prompt;
  const head = /\n\nIMPORTANT:\n/.test(prompt)
    ? prompt.trimEnd()
    : `${prompt.trimEnd()}\n\nIMPORTANT:`;
  return `${head}\n${items.join("\n")}`;
}

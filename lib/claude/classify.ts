/**
 * Why a Claude run failed: the failure kinds, each kind's retry policy and one-line fix (the one
 * table `exec`, `stress` and the reports read), and the classifier that reads a run's transcript
 * (`stream.ts`) and how its process ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyFailure } from "./classify.ts";
 * import { parseClaudeOutput } from "./stream.ts";
 * const t = parseClaudeOutput('{"type":"result","subtype":"error_max_turns","is_error":false,"num_turns":3}\n');
 * assert.equal(classifyFailure(t, { exitCode: 0, status: "completed" })?.kind, "max_turns");
 * ```
 *
 * @module
 */

import { type ClaudeLimit, detectClaudeLimit, rateLimitOf } from "./limits.ts";
import type { ClaudeApiRetry, ClaudeTranscript } from "./stream.ts";

/**
 * Why a Claude run failed. See {@linkcode FAILURE_POLICIES} for what each kind means and how
 * ccx retries it. `canceled` is a run ended on request (CANCEL, disconnect); `interrupted` is a
 * CLI that was stopped by a signal from elsewhere (SIGINT: exit 0 without a result);
 * `api_error` is any other error the API returned (a 400); `error` is a non-zero exit with
 * nothing that says it was Claude's own failure (a plain command that failed).
 */
export type ClaudeFailureKind =
  | "root_refused"
  | "not_logged_in"
  | "auth"
  | "network"
  | "overloaded"
  | "rate_limit"
  | "token_limit"
  | "prompt_too_long"
  | "max_turns"
  | "bad_invocation"
  | "api_error"
  | "crash"
  | "timeout"
  | "stall"
  | "interrupted"
  | "canceled"
  | "cli_missing"
  | "error";

/**
 * How ccx retries a failure kind: `never` (a retry cannot help: fix the setup first),
 * `backoff` (wait, then run the same prompt again, within bounds; no refinement is spent) or
 * `refine` (spend one refinement retry: run again with a prompt that says what went wrong).
 */
export type RetryPolicy = "never" | "backoff" | "refine";

/** The retry policy of one failure kind and the one-line fix to show the user, if any. */
export interface FailurePolicy {
  /** How ccx retries it. */
  retry: RetryPolicy;
  /** What the user can do about it, in one line; absent when there is nothing to say. */
  fix?: string;
}

/**
 * Every failure kind's retry policy and one-line fix: the single table `exec`, `stress` and the
 * reports read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FAILURE_POLICIES } from "./classify.ts";
 * assert.equal(FAILURE_POLICIES.auth.retry, "never");
 * assert.equal(FAILURE_POLICIES.rate_limit.retry, "backoff");
 * assert.equal(FAILURE_POLICIES.max_turns.retry, "refine");
 * ```
 */
export const FAILURE_POLICIES: Readonly<Record<ClaudeFailureKind, FailurePolicy>> = {
  root_refused: {
    retry: "never",
    fix: "as root the CLI refuses --dangerously-skip-permissions: on a sandbox box pass " +
      "--sandbox (or CCX_SANDBOX=1, which sets IS_SANDBOX=1 for the CLI), else run as a non-root user",
  },
  not_logged_in: {
    retry: "never",
    fix: "log in once with `claude` (/login) or set ANTHROPIC_API_KEY for the CLI",
  },
  auth: {
    retry: "never",
    fix: "the API rejected the credentials (401/403): check ANTHROPIC_API_KEY or log in again",
  },
  network: {
    retry: "backoff",
    fix: "the API cannot be reached: check the network, DNS, proxy and ANTHROPIC_BASE_URL",
  },
  overloaded: {
    retry: "backoff",
    fix: "the API is overloaded or failing (529/5xx): wait and run again later",
  },
  rate_limit: {
    retry: "backoff",
    fix: "wait for the limit to reset, or lower --concurrency",
  },
  token_limit: {
    retry: "refine",
    fix: "ask for a shorter answer or raise CLAUDE_CODE_MAX_OUTPUT_TOKENS",
  },
  prompt_too_long: {
    retry: "never",
    fix: "shorten the prompt or the files and tools it brings into context",
  },
  max_turns: { retry: "refine", fix: "raise --max-turns or split the task" },
  bad_invocation: {
    retry: "never",
    fix: "fix the command line: unknown flag, stream-json without --verbose, or a prompt " +
      "swallowed by a variadic flag such as --allowedTools (put the prompt right after -p)",
  },
  api_error: { retry: "never", fix: "the API rejected the request; read its message" },
  crash: { retry: "refine", fix: "the CLI died without a result; see its stderr" },
  timeout: { retry: "refine", fix: "raise the timeout (--timeout) or split the task" },
  stall: {
    retry: "refine",
    fix: "raise the stall timeout, or look for a command waiting on input",
  },
  interrupted: { retry: "never" },
  canceled: { retry: "never" },
  cli_missing: {
    retry: "never",
    fix: "install Claude Code (npm install -g @anthropic-ai/claude-code) or point --claude " +
      "(CCX_CLAUDE) at it",
  },
  error: { retry: "refine" },
};

/** A classified failure. */
export interface ClaudeFailure {
  /** What kind of failure this is; retries depend on it ({@linkcode FAILURE_POLICIES}). */
  kind: ClaudeFailureKind;
  /** One line for humans: the CLI's own message where there is one. */
  message: string;
  /** The kind's retry policy. */
  retry: RetryPolicy;
  /** One-line fix, when there is one. */
  fix?: string;
  /** The detected limit, for `rate_limit` and `token_limit`. */
  limit?: ClaudeLimit;
  /** Epoch seconds when a usage limit resets (`rate_limit` only, when known). */
  resetTimestamp?: number;
  /** Seconds to wait before retrying (`rate_limit` only, when known). */
  retryAfter?: number;
  /** HTTP status of the API error, when the CLI reported one. */
  status?: number;
}

/** How the process ended, as the server reports it in `process.completed`. */
export interface ClaudeExit {
  /** Exit code, or null when the process died by a signal. */
  exitCode: number | null;
  /** `completed`, `failed`, `timeout`, `stalled`, `canceled`, `killed`. */
  status: string;
  /** Captured stderr, when available. */
  stderr?: string;
  /** The signal that ended it, when the server says (`SIGTERM`, …). */
  signal?: string | null;
}

/**
 * Builds a {@linkcode ClaudeFailure} of `kind` with its policy filled in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { failureOf } from "./classify.ts";
 * const f = failureOf("auth", "Invalid API key");
 * assert.equal(f.retry, "never");
 * assert.equal(f.message, "Invalid API key");
 * ```
 */
export function failureOf(
  kind: ClaudeFailureKind,
  message: string,
  extra: Partial<Omit<ClaudeFailure, "kind" | "message" | "retry" | "fix">> = {},
): ClaudeFailure {
  const p = FAILURE_POLICIES[kind];
  return { kind, message, retry: p.retry, ...(p.fix ? { fix: p.fix } : {}), ...extra };
}

const ROOT_REFUSED_RE = /cannot be used with root\/sudo privileges/;
const NOT_LOGGED_IN_RE = /Not logged in|Please run \/login|OAuth token (?:has expired|revoked)/;
const AUTH_RE =
  /Invalid API key|authentication_error|permission_error|API Error: 40[13]\b|Failed to authenticate|\bauthentication_failed\b/;
const BAD_INVOCATION_RE =
  /error: unknown option|requires --verbose|Input must be provided either through stdin|was read as a value of|error: option '[^']+' argument|error: missing required argument/;
const NETWORK_RE =
  /\b(?:ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ConnectionRefused|StreamTruncated)\b|Can't reach the API|Unable to connect to API|Connection to the API was lost|Stream ended without|Request timed out|Connection refused|connection_failed/;
const OVERLOADED_RE =
  /API Error: (?:529|50[0234])\b|overloaded_error|Overloaded|Internal server error/;
const PROMPT_TOO_LONG_RE = /Prompt is too long|prompt is too long/;
const API_ERROR_RE = /^API Error: \d{3}\b/;

function firstLine(s: string, max = 300): string {
  const line = s.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}

/** The error line of a Node/Bun stack trace (`TypeError: …`), else the last non-blank line. */
function crashLine(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const err = lines.find((l) => /^(?:[A-Z]\w*Error|Error)\b.*:/.test(l) && !l.startsWith("at "));
  return firstLine(err ?? lines[lines.length - 1] ?? "");
}

/** The kind an HTTP status or API error type names, if it names one. */
function kindOfStatus(status?: number | null, type?: string): ClaudeFailureKind | undefined {
  if (status === 401 || status === 403) return "auth";
  if (type === "authentication_error" || type === "permission_error") return "auth";
  if (status === 429 || type === "rate_limit_error") return "rate_limit";
  if (status === 529 || type === "overloaded_error") return "overloaded";
  if (status !== undefined && status !== null && status >= 500) return "overloaded";
  if (type === "api_error") return "overloaded";
  return undefined;
}

/** The kind an assistant line's `error` names (`authentication_failed`, `rate_limit`, …). */
function kindOfAssistantError(error: string): ClaudeFailureKind | undefined {
  switch (error) {
    case "authentication_failed":
    case "billing_error":
      return "auth";
    case "rate_limit":
      return "rate_limit";
    case "server_error":
    case "overloaded":
      return "overloaded";
    case "max_output_tokens":
      return "token_limit";
    case "connection_failed":
      return "network";
  }
  return undefined;
}

/** The kind an `api_retry` line names: what the CLI is fighting while it retries. */
function kindOfRetry(r: ClaudeApiRetry): ClaudeFailureKind {
  const k = kindOfStatus(r.errorStatus) ?? (r.error ? kindOfAssistantError(r.error) : undefined);
  if (k) return k;
  return r.errorStatus === null ? "network" : "api_error";
}

/** Refines a kind from the CLI's text: not logged in is auth's special case, and so on. */
function kindOfText(text: string): ClaudeFailureKind | undefined {
  if (ROOT_REFUSED_RE.test(text)) return "root_refused";
  if (NOT_LOGGED_IN_RE.test(text)) return "not_logged_in";
  if (AUTH_RE.test(text)) return "auth";
  if (PROMPT_TOO_LONG_RE.test(text)) return "prompt_too_long";
  if (NETWORK_RE.test(text)) return "network";
  if (OVERLOADED_RE.test(text)) return "overloaded";
  if (API_ERROR_RE.test(text)) return "api_error";
  return undefined;
}

function fromLimit(limit: ClaudeLimit, status?: number): ClaudeFailure {
  return failureOf(limit.kind, limit.message, {
    limit,
    ...(limit.resetTimestamp !== undefined ? { resetTimestamp: limit.resetTimestamp } : {}),
    ...(limit.retryAfter !== undefined ? { retryAfter: limit.retryAfter } : {}),
    ...(status !== undefined ? { status } : {}),
  });
}

/**
 * What the live stream of a run says about its failure so far: the kind the last
 * `system/api_retry` line names (`auth` for 401/403, `network` for no response, …), or
 * `undefined` when the CLI is not retrying anything.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryFailure } from "./classify.ts";
 * assert.equal(retryFailure({ attempt: 1, errorStatus: 401, error: "authentication_failed" })?.kind, "auth");
 * ```
 */
export function retryFailure(r: ClaudeApiRetry): ClaudeFailure {
  const kind = kindOfRetry(r);
  const cause = r.errorStatus !== null ? `HTTP ${r.errorStatus}` : "no response";
  return failureOf(
    kind,
    `the CLI was retrying the API (${cause}${r.error ? `, ${r.error}` : ""}; retry ` +
      `${r.attempt}${r.maxRetries !== undefined ? ` of ${r.maxRetries}` : ""})`,
    r.errorStatus !== null ? { status: r.errorStatus } : {},
  );
}

/**
 * Classifies how a Claude run went wrong, or returns `undefined` when it succeeded. The
 * structured fields come first: the result's `is_error`, `api_error_status`, `api_error_type`,
 * `terminal_reason`, `errors[]` and `startup_failure_reason`, the assistant line's `error`, and
 * the `system/api_retry` lines' `error_status`/`error`; the CLI's texts (its error message on
 * stdout, stderr) only second. Then how the process ended (`timeout`, `stalled`, `canceled`),
 * the result subtype (`error_max_turns`), and finally an exit without a result: `interrupted`
 * (exit 0, or the CLI's own 143/130, after its `init` line), `crash` (a stack trace, or a
 * non-zero exit after `init`), or `error` (nothing says it was Claude's own failure).
 *
 * Every kind comes with its retry policy and one-line fix from {@linkcode FAILURE_POLICIES}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyFailure } from "./classify.ts";
 * import { parseClaudeOutput } from "./stream.ts";
 * const t = parseClaudeOutput(
 *   '{"type":"result","subtype":"success","is_error":true,"api_error_status":429,' +
 *     '"result":"API Error: Request rejected (429) · slow down"}',
 * );
 * const f = classifyFailure(t, { exitCode: 1, status: "failed" });
 * assert.equal(f?.kind, "rate_limit");
 * assert.equal(f?.retry, "backoff");
 * ```
 */
export function classifyFailure(t: ClaudeTranscript, exit: ClaudeExit): ClaudeFailure | undefined {
  const stderr = exit.stderr ?? "";
  const r = t.result;
  const errored = exit.exitCode !== 0 || r?.isError === true || exit.status !== "completed" ||
    (r !== undefined && r.subtype !== "success");

  if (errored) {
    // The CLI's own error text: what it printed as the error (synthetic assistant message, error
    // result, errors[]), non-JSON lines and stderr. Never the model's answer.
    const cliText = [...t.errorTexts, ...(r?.errors ?? [])].join("\n");
    const evidence = [cliText, ...t.nonJsonLines, stderr].join("\n");
    const message = firstLine(cliText) || firstLine(r?.errors.join("\n") ?? "");
    const lastRetry = t.apiRetries[t.apiRetries.length - 1];

    // 1. Startup failures and bad command lines (nothing ran).
    if (r?.startupFailureReason === "bypass_root" || ROOT_REFUSED_RE.test(evidence)) {
      const line = evidence.split("\n").find((l) => ROOT_REFUSED_RE.test(l)) ?? "";
      return failureOf(
        "root_refused",
        firstLine(line) ||
          "--dangerously-skip-permissions cannot be used with root/sudo privileges",
      );
    }
    if (!r && BAD_INVOCATION_RE.test(stderr)) {
      const line = stderr.split("\n").find((l) => BAD_INVOCATION_RE.test(l)) ?? stderr;
      return failureOf("bad_invocation", firstLine(line));
    }
    if (r?.startupFailureReason) {
      return failureOf(
        "bad_invocation",
        `the CLI failed to start (${r.startupFailureReason})${message ? `: ${message}` : ""}`,
      );
    }

    // An interrupted CLI (SIGINT) that still wrote its result: terminal_reason aborted_*.
    if (r?.terminalReason?.startsWith("aborted")) {
      return failureOf(
        "interrupted",
        `the CLI was interrupted (${r.terminalReason}) before it gave a result`,
      );
    }

    // 2. The structured API error of the result and of the assistant line.
    if (r?.subtype !== "error_max_turns") {
      const status = r?.apiErrorStatus;
      let kind = kindOfStatus(status, r?.apiErrorType);
      for (const e of t.assistantErrors) kind ??= kindOfAssistantError(e);
      if (r?.terminalReason === "prompt_too_long") kind = "prompt_too_long";
      const limit = detectClaudeLimit(evidence);
      if (kind === undefined && limit) kind = limit.kind;
      if (kind === undefined && r?.isError) kind = kindOfText(cliText);
      // A run that never finished (ccx ended it) says what it fought in its api_retry lines.
      if (kind === undefined && !r && lastRetry) {
        const f = retryFailure(lastRetry);
        return f.kind === "rate_limit" ? fromLimit(rateLimitOf(evidence), f.status) : f;
      }
      if (kind === undefined && !r) kind = kindOfText(evidence);
      if (kind === "auth" && NOT_LOGGED_IN_RE.test(cliText)) kind = "not_logged_in";
      if (kind === "rate_limit") {
        return fromLimit(
          limit?.kind === "rate_limit" ? limit : rateLimitOf(evidence),
          status,
        );
      }
      if (limit?.kind === "token_limit" && kind === "token_limit") {
        return fromLimit(limit, status);
      }
      if (kind !== undefined) {
        return failureOf(kind, message || firstLine(evidence) || `the CLI reported ${kind}`, {
          ...(status !== undefined ? { status } : {}),
        });
      }
    }
  }

  switch (exit.status) {
    case "timeout":
      return failureOf("timeout", "the run exceeded its timeout and was killed");
    case "stalled":
    case "stall":
      return failureOf("stall", "the run produced no output for too long and was killed");
    case "canceled":
      return failureOf("canceled", "the run was canceled");
    case "killed":
      return failureOf("canceled", "the run was killed");
  }

  if (r?.subtype === "error_max_turns") {
    return failureOf(
      "max_turns",
      `reached the maximum number of turns${r.numTurns ? ` (${r.numTurns} turns)` : ""}`,
    );
  }
  if (r && r.subtype !== "success") {
    const why = r.errors.length ? `: ${firstLine(r.errors.join("\n"))}` : "";
    return failureOf(
      "error",
      r.text ? firstLine(r.text) : `the CLI ended with ${r.subtype}${why}`,
    );
  }
  if (r?.isError) {
    return failureOf(
      "api_error",
      firstLine(t.errorTexts.join("\n")) || "the CLI reported an error",
    );
  }
  if (!r && t.init) {
    // Started (init seen) and ended without a result.
    if (exit.exitCode === 0 || exit.exitCode === 130 || exit.exitCode === 143) {
      return failureOf(
        "interrupted",
        `the CLI was interrupted (exit ${exit.exitCode}${exit.signal ? `, ${exit.signal}` : ""}) ` +
          "before it gave a result",
      );
    }
  }
  if (exit.exitCode !== 0) {
    const code = exit.exitCode === null ? "a signal" : `code ${exit.exitCode}`;
    if (!r) {
      const stack = /^\s+at .+[:(]\d+/m.test(stderr);
      if (stack || t.init) {
        const why = crashLine(stderr);
        return failureOf(
          "crash",
          `the CLI died (exit ${code}) without a result${why ? `: ${why}` : ""}`,
        );
      }
    }
    const why = crashLine(stderr);
    return failureOf("error", `exited with ${code}${why ? `: ${why}` : ""}`);
  }
  return undefined;
}

/**
 * Claude usage/rate limits and output-token limits in the CLI's output: what `ccx serve` looks
 * for in every output chunk (and reports as `claude_limit`), and what the failure classifier
 * (`classify.ts`) reads the limit and its reset time from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectClaudeLimit } from "./limits.ts";
 * assert.equal(detectClaudeLimit("Claude AI usage limit reached|1751299200")?.kind, "rate_limit");
 * ```
 *
 * @module
 */

/** A usage/rate limit or output-token limit reported by the CLI. */
export interface ClaudeLimit {
  /** `rate_limit` (usage limit, HTTP 429) or `token_limit` (output token maximum). */
  kind: "rate_limit" | "token_limit";
  /** `usage_limit`, `rate_limit_error` or `output_token_limit`. */
  errorType: string;
  /** Human-readable description. */
  message: string;
  /** When the limit resets (epoch seconds), from `Claude AI usage limit reached|<epoch>`. */
  resetTimestamp?: number;
  /** Seconds to wait, when the output says so (`retry-after`). */
  retryAfter?: number;
  /** True when waiting or retrying differently can succeed (all known limits are). */
  recoverable: boolean;
}

const USAGE_LIMIT_RE = /Claude AI usage limit reached\|(\d{9,11})/;
const TOKEN_LIMIT_RE = /Claude(?:'|’|\\u0027)s response exceeded the (\d+) output token maximum/;
const API_429_RE = /API Error: (?:429\b|Request rejected \(429\))/;
const RATE_LIMIT_ERROR_RE = /\brate_limit_error\b|\\*"error_status\\*"\s*:\s*429\b/;
const RATE_LIMIT_MESSAGE_RE = /rate_limit_error\\*"\s*,\s*\\*"message\\*"\s*:\s*\\*"([^"\\]*)/;
const REJECTED_429_RE = /Request rejected \(429\) [·∙-] ([^\n"\\]{1,200})/;
const RESETS_RE =
  /(?:(?:5-hour|[Ww]eekly|Opus weekly|[Ss]ession) limit reached|You've hit your [^\n"\\·∙]{1,60}?) [∙·-] resets ([^\n"\\]{1,60})/;
const USAGE_LIMIT_PLAIN_RE = /\busage limit reached\b/i;
const RETRY_AFTER_RE =
  /retry[-_ ]after\\*"?\s*[:=]?\s*\\*"?\s*(\d{1,6})\b|try again in (\d{1,6}) seconds/i;

function retryAfterOf(text: string): number | undefined {
  const m = text.match(RETRY_AFTER_RE);
  return m ? Number(m[1] ?? m[2]) : undefined;
}

/**
 * Finds a Claude usage/rate limit or output-token limit in raw output (a chunk of stream-json,
 * JSON-escaped strings included, or plain text). Cheap enough to run on every chunk: text that
 * contains none of `limit`, `429`, `You've hit` and `token maximum` is rejected before any regex
 * runs. Prose that merely talks about rate limits does not match; the CLI's own messages do:
 * `Claude AI usage limit reached|<epoch>`, `API Error: 429 …`,
 * `API Error: Request rejected (429) · …`, `rate_limit_error`, an `api_retry` line with
 * `error_status` 429, `… usage limit reached`, `5-hour limit reached ∙ resets 3pm`,
 * `You've hit your <limit> · resets <time>`, and
 * `Claude's response exceeded the N output token maximum`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectClaudeLimit } from "./limits.ts";
 * const limit = detectClaudeLimit('{"result":"Claude AI usage limit reached|1751299200"}');
 * assert.equal(limit?.resetTimestamp, 1751299200);
 * assert.equal(detectClaudeLimit("Retry with backoff when you hit a rate limit."), undefined);
 * ```
 */
export function detectClaudeLimit(text: string): ClaudeLimit | undefined {
  if (
    !text.includes("limit") && !text.includes("429") && !text.includes("token maximum") &&
    !text.includes("You've hit")
  ) {
    return undefined;
  }

  let m = text.match(USAGE_LIMIT_RE);
  if (m) {
    const reset = Number(m[1]);
    return {
      kind: "rate_limit",
      errorType: "usage_limit",
      message: `Claude AI usage limit reached; resets at ${new Date(reset * 1000).toISOString()}`,
      resetTimestamp: reset,
      recoverable: true,
    };
  }
  m = text.match(TOKEN_LIMIT_RE);
  if (m) {
    return {
      kind: "token_limit",
      errorType: "output_token_limit",
      message: `Claude's response exceeded the ${m[1]} output token maximum ` +
        "(ask for a shorter response or raise CLAUDE_CODE_MAX_OUTPUT_TOKENS)",
      recoverable: true,
    };
  }
  m = text.match(RESETS_RE);
  if (m) {
    return {
      kind: "rate_limit",
      errorType: "usage_limit",
      message: `${m[0].trim()}`,
      recoverable: true,
    };
  }
  if (API_429_RE.test(text) || RATE_LIMIT_ERROR_RE.test(text)) {
    const detail = text.match(RATE_LIMIT_MESSAGE_RE)?.[1] ?? text.match(REJECTED_429_RE)?.[1];
    return {
      kind: "rate_limit",
      errorType: "rate_limit_error",
      message: detail ? `API rate limit (429): ${detail.trim()}` : "API rate limit (429)",
      retryAfter: retryAfterOf(text),
      recoverable: true,
    };
  }
  if (USAGE_LIMIT_PLAIN_RE.test(text)) {
    return {
      kind: "rate_limit",
      errorType: "usage_limit",
      message: "Claude usage limit reached",
      retryAfter: retryAfterOf(text),
      recoverable: true,
    };
  }
  return undefined;
}

const NO_LIMITS: readonly ClaudeLimit[] = [];

/**
 * Every Claude limit (at most one per kind) that `text` shows. One read of a job's output can
 * hold several lines, say a usage limit and a token limit; each line is looked at only once a
 * limit was seen at all, so the usual read costs one {@linkcode detectClaudeLimit} and no
 * allocation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectClaudeLimits } from "./limits.ts";
 * const limits = detectClaudeLimits(
 *   "Claude AI usage limit reached|1751299200\nClaude's response exceeded the 32000 output token maximum",
 * );
 * assert.deepEqual(limits.map((l) => l.kind), ["rate_limit", "token_limit"]);
 * ```
 */
export function detectClaudeLimits(text: string): readonly ClaudeLimit[] {
  const first = detectClaudeLimit(text);
  if (!first) return NO_LIMITS;
  const byKind = new Map<string, ClaudeLimit>();
  for (const line of text.split("\n")) {
    const l = detectClaudeLimit(line);
    if (l && !byKind.has(l.kind)) byKind.set(l.kind, l);
  }
  if (byKind.size === 0) byKind.set(first.kind, first);
  return [...byKind.values()];
}

/**
 * A rate limit from whatever the evidence says, for runs known to be rate limited (an HTTP 429,
 * a `rate_limit_error`): the limit {@linkcode detectClaudeLimit} finds when it finds a rate
 * limit, else a plain `API rate limit (429)` with the `Request rejected (429) · …` detail and the
 * `retry-after` seconds when the evidence has them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rateLimitOf } from "./limits.ts";
 * assert.equal(rateLimitOf("HTTP 429, retry-after: 30").retryAfter, 30);
 * ```
 */
export function rateLimitOf(evidence: string): ClaudeLimit {
  const found = detectClaudeLimit(evidence);
  if (found?.kind === "rate_limit") return found;
  const detail = evidence.match(REJECTED_429_RE)?.[1];
  return {
    kind: "rate_limit",
    errorType: "rate_limit_error",
    message: detail ? `API rate limit (429): ${detail.trim()}` : "API rate limit (429)",
    retryAfter: retryAfterOf(evidence),
    recoverable: true,
  };
}

/**
 * Claude Code's `claude -p --output-format stream-json --verbose` output: an incremental parser,
 * the text patterns should be matched against, usage/rate/token limit detection, failure
 * classification, and the argv to start the CLI with.
 *
 * Shared by `ccx serve` (limit detection on every output chunk), `ccx stress` (pattern checks
 * against what the model said) and `ccx exec` (failure kinds drive retries).
 *
 * @example
 * ```ts
 * import { parseClaudeOutput } from "./claude.ts";
 * const t = parseClaudeOutput('{"type":"result","subtype":"success","is_error":false,"result":"4"}\n');
 * console.log(t.result?.text); // "4"
 * ```
 *
 * @module
 */

import { isRecord } from "../common/json.ts";

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** The `system`/`init` line: what the CLI started with. */
export interface ClaudeInit {
  /** Session id shared by every line of the run. */
  sessionId?: string;
  /** Resolved model id, e.g. `claude-sonnet-4-5-20250929`. */
  model?: string;
  /** Working directory of the CLI. */
  cwd?: string;
  /** Tools the model can call. */
  tools: string[];
  /** `default`, `bypassPermissions`, `acceptEdits` or `plan`. */
  permissionMode?: string;
  /** `claude_code_version`, when the CLI reports it. */
  version?: string;
}

/** A tool call the model made (`tool_use` content block). */
export interface ClaudeToolUse {
  /** `toolu_…` id, matched by the tool result. */
  id: string;
  /** Tool name, e.g. `Write`, `Bash`. */
  name: string;
  /** The tool's input, e.g. `{file_path, content}` for `Write`. */
  input: Record<string, unknown>;
}

/** What a tool returned (`tool_result` content block of a `user` line). */
export interface ClaudeToolResult {
  /** The `tool_use` this answers. */
  toolUseId: string;
  /** The result as text (text blocks joined). */
  content: string;
  /** True when the tool failed or permission was denied. */
  isError: boolean;
}

/** The final `result` line. */
export interface ClaudeResult {
  /** `success`, `error_max_turns`, `error_during_execution`, … */
  subtype: string;
  /** `is_error`: true for API errors (limits, auth) even when `subtype` is `success`. */
  isError: boolean;
  /** The final answer (absent for `error_*` subtypes). */
  text?: string;
  /** `num_turns`. */
  numTurns?: number;
  /** `total_cost_usd` (`cost_usd` in older CLIs). */
  costUsd?: number;
  /** `duration_ms`. */
  durationMs?: number;
  /** `session_id`. */
  sessionId?: string;
  /** `api_error_status`: the HTTP status of the API error that ended the run (401, 429, 529…). */
  apiErrorStatus?: number;
  /** `api_error_type` (`authentication_error`, `rate_limit_error`, `overloaded_error`, …). */
  apiErrorType?: string;
  /** `terminal_reason` (`completed`, `api_error`, `prompt_too_long`, …). */
  terminalReason?: string;
  /** `errors[]` of `error_*` subtypes and startup failures. */
  errors: string[];
  /** `startup_failure_reason` (e.g. `bypass_root`). */
  startupFailureReason?: string;
  /** `stop_reason` of the last model turn (`end_turn`, `max_tokens`, …). */
  stopReason?: string;
}

/** A `system`/`api_retry` line: the CLI is retrying an API call and says why. */
export interface ClaudeApiRetry {
  /** 1-based retry number. */
  attempt: number;
  /** The CLI's retry budget (`CLAUDE_CODE_MAX_RETRIES`, default 10). */
  maxRetries?: number;
  /** How long the CLI waits before this retry, ms. */
  retryDelayMs?: number;
  /** HTTP status of the failed call; `null` when no response came (network). */
  errorStatus: number | null;
  /** The CLI's cause: `authentication_failed`, `rate_limit`, `server_error`, `unknown`, … */
  error?: string;
}

/** One parsed line of stream-json output, discriminated on `type`. */
export type ClaudeEvent =
  | {
    type: "system";
    subtype: string;
    init?: ClaudeInit;
    /** Set for `api_retry` lines. */
    apiRetry?: ClaudeApiRetry;
    raw: Record<string, unknown>;
  }
  | {
    type: "assistant";
    /** Text blocks of this message. */
    text: string[];
    /** Tool calls of this message. */
    toolUses: ClaudeToolUse[];
    /**
     * The line's `error` (`authentication_failed`, `rate_limit`, `server_error`, …): set on the
     * synthetic message (model `<synthetic>`) by which the CLI reports an API error.
     */
    error?: string;
    /** True for the CLI's own messages (model `<synthetic>`), which are not model output. */
    synthetic: boolean;
    raw: Record<string, unknown>;
  }
  | {
    type: "user";
    /** Tool results carried by this message. */
    toolResults: ClaudeToolResult[];
    /** Plain text the user side sent (prompt replays); not model output. */
    text: string[];
    raw: Record<string, unknown>;
  }
  | { type: "result"; result: ClaudeResult; raw: Record<string, unknown> }
  | {
    type: "unknown";
    /** The line as received. */
    line: string;
    /** The parsed JSON when the line was JSON of an unknown shape; absent for non-JSON lines. */
    raw?: unknown;
  };

/** Everything a run said, accumulated from its events. */
export interface ClaudeTranscript {
  /** The `system`/`init` line, if one was seen. */
  init?: ClaudeInit;
  /** Text blocks of assistant messages, in order. */
  assistantText: string[];
  /** Tool calls, in order. */
  toolUses: ClaudeToolUse[];
  /** Tool results, in order. */
  toolResults: ClaudeToolResult[];
  /** The final `result` line, if the run got that far. */
  result?: ClaudeResult;
  /** Lines that were not JSON objects (warnings, plain output), without their newline. */
  nonJsonLines: string[];
  /** `system`/`api_retry` lines, in order. */
  apiRetries: ClaudeApiRetry[];
  /** `error` fields of assistant lines (the CLI's API-error messages), in order. */
  assistantErrors: string[];
  /**
   * The CLI's own error texts: synthetic assistant messages and an error result's text. These
   * are never part of {@linkcode ClaudeTranscript.text}: an error is not an answer.
   */
  errorTexts: string[];
  /**
   * What the model said: the assistant text blocks joined by newlines, followed by the result
   * text when it differs from the last block (it usually repeats it). Never the JSON envelope,
   * never the CLI's error texts.
   */
  text: string;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Text of a `tool_result` content: a string, or an array of `{type:"text", text}` blocks. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((b) => (isRecord(b) && typeof b.text === "string" ? b.text : ""))
      .filter((s) => s !== "")
      .join("\n");
  }
  return "";
}

function toEvent(line: string, raw: Record<string, unknown>): ClaudeEvent {
  const message = isRecord(raw.message) ? raw.message : undefined;
  switch (raw.type) {
    case "system": {
      const subtype = str(raw.subtype) ?? "";
      const init: ClaudeInit | undefined = subtype === "init"
        ? {
          sessionId: str(raw.session_id),
          model: str(raw.model),
          cwd: str(raw.cwd),
          tools: Array.isArray(raw.tools) ? raw.tools.filter((t) => typeof t === "string") : [],
          permissionMode: str(raw.permissionMode),
          version: str(raw.claude_code_version),
        }
        : undefined;
      const apiRetry: ClaudeApiRetry | undefined = subtype === "api_retry"
        ? {
          attempt: num(raw.attempt) ?? 0,
          maxRetries: num(raw.max_retries),
          retryDelayMs: num(raw.retry_delay_ms),
          errorStatus: num(raw.error_status) ?? null,
          error: str(raw.error),
        }
        : undefined;
      return { type: "system", subtype, init, ...(apiRetry ? { apiRetry } : {}), raw };
    }
    case "assistant": {
      const text: string[] = [];
      const toolUses: ClaudeToolUse[] = [];
      const content = message?.content;
      if (typeof content === "string") text.push(content);
      else if (Array.isArray(content)) {
        for (const block of content) {
          if (!isRecord(block)) continue;
          if (block.type === "text" && typeof block.text === "string") text.push(block.text);
          else if (block.type === "tool_use") {
            toolUses.push({
              id: str(block.id) ?? "",
              name: str(block.name) ?? "",
              input: isRecord(block.input) ? block.input : {},
            });
          }
        }
      }
      const error = str(raw.error);
      const synthetic = message?.model === "<synthetic>";
      return { type: "assistant", text, toolUses, ...(error ? { error } : {}), synthetic, raw };
    }
    case "user": {
      const text: string[] = [];
      const toolResults: ClaudeToolResult[] = [];
      const content = message?.content;
      if (typeof content === "string") text.push(content);
      else if (Array.isArray(content)) {
        for (const block of content) {
          if (!isRecord(block)) continue;
          if (block.type === "tool_result") {
            toolResults.push({
              toolUseId: str(block.tool_use_id) ?? "",
              content: contentText(block.content),
              isError: block.is_error === true,
            });
          } else if (block.type === "text" && typeof block.text === "string") {
            text.push(block.text);
          }
        }
      }
      return { type: "user", toolResults, text, raw };
    }
    case "result":
      return {
        type: "result",
        result: {
          subtype: str(raw.subtype) ?? "",
          isError: raw.is_error === true,
          text: str(raw.result),
          numTurns: num(raw.num_turns),
          costUsd: num(raw.total_cost_usd) ?? num(raw.cost_usd),
          durationMs: num(raw.duration_ms),
          sessionId: str(raw.session_id),
          apiErrorStatus: num(raw.api_error_status),
          apiErrorType: str(raw.api_error_type),
          terminalReason: str(raw.terminal_reason),
          errors: Array.isArray(raw.errors)
            ? raw.errors.map((e) => typeof e === "string" ? e : JSON.stringify(e))
            : [],
          startupFailureReason: str(raw.startup_failure_reason),
          stopReason: str(raw.stop_reason),
        },
        raw,
      };
    default:
      return { type: "unknown", line, raw };
  }
}

/**
 * Parses one line into its events: one for a JSON object, one per element for the JSON array
 * `--output-format json --verbose` prints, none for a blank line.
 */
function parseLine(line: string): ClaudeEvent[] {
  const trimmed = line.trim();
  if (trimmed === "") return [];
  if (trimmed[0] === "{" || trimmed[0] === "[") {
    try {
      const raw: unknown = JSON.parse(trimmed);
      if (isRecord(raw)) return [toEvent(line, raw)];
      if (Array.isArray(raw) && raw.length > 0 && raw.every(isRecord) && raw.some(isStreamRecord)) {
        return raw.map((r) => toEvent(JSON.stringify(r), r));
      }
    } catch {
      // not JSON after all
    }
  }
  return [{ type: "unknown", line }];
}

/**
 * Incremental parser for stream-json output. Feed it chunks as they arrive (split anywhere, even
 * inside a line or a multi-byte character already decoded to text); it returns the events of the
 * lines completed so far and keeps the partial last line until its newline arrives. Lines that
 * are not JSON objects become `unknown` events and are kept in `nonJsonLines`.
 *
 * @example
 * ```ts
 * import { ClaudeStreamParser } from "./claude.ts";
 * const p = new ClaudeStreamParser();
 * p.push('{"type":"assistant","message":{"content":[{"type":"te');
 * p.push('xt","text":"2 + 2 = 4"}]}}\n');
 * p.end();
 * console.log(p.transcript().text); // "2 + 2 = 4"
 * ```
 */
export class ClaudeStreamParser {
  #partial = "";
  #init?: ClaudeInit;
  #assistantText: string[] = [];
  #toolUses: ClaudeToolUse[] = [];
  #toolResults: ClaudeToolResult[] = [];
  #result?: ClaudeResult;
  #nonJson: string[] = [];
  #apiRetries: ClaudeApiRetry[] = [];
  #assistantErrors: string[] = [];
  #errorTexts: string[] = [];

  /** Adds a chunk of output; returns the events of every line it completed. */
  push(chunk: string): ClaudeEvent[] {
    const events: ClaudeEvent[] = [];
    let start = 0;
    let nl = chunk.indexOf("\n");
    if (nl < 0) {
      this.#partial += chunk;
      return events;
    }
    let line = this.#partial + chunk.slice(0, nl);
    this.#partial = "";
    for (;;) {
      this.#take(line.endsWith("\r") ? line.slice(0, -1) : line, events);
      start = nl + 1;
      nl = chunk.indexOf("\n", start);
      if (nl < 0) break;
      line = chunk.slice(start, nl);
    }
    this.#partial = chunk.slice(start);
    return events;
  }

  /** Ends the stream: parses a last line that had no newline. */
  end(): ClaudeEvent[] {
    const events: ClaudeEvent[] = [];
    if (this.#partial !== "") {
      const line = this.#partial;
      this.#partial = "";
      this.#take(line.endsWith("\r") ? line.slice(0, -1) : line, events);
    }
    return events;
  }

  /** A snapshot of everything parsed so far (complete lines only). */
  transcript(): ClaudeTranscript {
    const assistantText = [...this.#assistantText];
    const last = assistantText[assistantText.length - 1];
    const resultText = this.#result?.text;
    const parts = [...assistantText];
    const errorTexts = [...this.#errorTexts];
    if (this.#result?.isError) {
      if (resultText && !errorTexts.includes(resultText)) errorTexts.push(resultText);
    } else if (resultText !== undefined && resultText !== "" && resultText !== last) {
      parts.push(resultText);
    }
    return {
      init: this.#init,
      assistantText,
      toolUses: [...this.#toolUses],
      toolResults: [...this.#toolResults],
      result: this.#result,
      nonJsonLines: [...this.#nonJson],
      apiRetries: [...this.#apiRetries],
      assistantErrors: [...this.#assistantErrors],
      errorTexts,
      text: parts.join("\n"),
    };
  }

  #take(line: string, events: ClaudeEvent[]): void {
    for (const ev of parseLine(line)) {
      events.push(ev);
      this.#record(ev, line);
    }
  }

  #record(ev: ClaudeEvent, line: string): void {
    switch (ev.type) {
      case "system":
        if (ev.init) this.#init = ev.init;
        if (ev.apiRetry) this.#apiRetries.push(ev.apiRetry);
        break;
      case "assistant":
        if (ev.error) this.#assistantErrors.push(ev.error);
        if (ev.synthetic || ev.error) this.#errorTexts.push(...ev.text);
        else this.#assistantText.push(...ev.text);
        this.#toolUses.push(...ev.toolUses);
        break;
      case "user":
        this.#toolResults.push(...ev.toolResults);
        break;
      case "result":
        this.#result = ev.result;
        break;
      case "unknown":
        if (ev.raw === undefined) this.#nonJson.push(line);
        break;
    }
  }
}

/**
 * Parses a whole captured output at once.
 *
 * @example
 * ```ts
 * import { parseClaudeOutput } from "./claude.ts";
 * const t = parseClaudeOutput('{"type":"system","subtype":"init","tools":["Write"]}\nnot json\n');
 * console.log(t.init?.tools, t.nonJsonLines); // ["Write"] ["not json"]
 * ```
 */
export function parseClaudeOutput(text: string): ClaudeTranscript {
  const p = new ClaudeStreamParser();
  p.push(text);
  p.end();
  return p.transcript();
}

const STREAM_TYPES = new Set(["system", "assistant", "user", "result"]);
function isStreamRecord(v: unknown): boolean {
  return isRecord(v) && typeof v.type === "string" && STREAM_TYPES.has(v.type);
}

/**
 * True when `text` looks like Claude's stream-json (or json) output: one of its first few
 * non-blank lines is a JSON object whose `type` is `system`, `assistant`, `user` or `result`.
 * A warning line or two before the stream does not hide it.
 *
 * @example
 * ```ts
 * import { looksLikeStreamJson } from "./claude.ts";
 * looksLikeStreamJson('{"type":"system","subtype":"init"}\n'); // true
 * looksLikeStreamJson("2 + 2 = 4\n"); // false
 * ```
 */
export function looksLikeStreamJson(text: string): boolean {
  let seen = 0;
  let start = 0;
  while (start < text.length && seen < 5) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === "") continue;
    seen++;
    if (line[0] === "[" && line.startsWith('[{"type":')) {
      try {
        const v: unknown = JSON.parse(line);
        if (Array.isArray(v) && v.some(isStreamRecord)) return true;
      } catch {
        // keep looking
      }
    }
    if (line[0] !== "{") continue;
    try {
      const v: unknown = JSON.parse(line);
      if (isStreamRecord(v)) return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

/**
 * The text that expected patterns should be matched against. For stream-json (or json) output:
 * what the model said (assistant text, then the result text) plus any non-JSON lines mixed into
 * the stream, never the JSON envelope, where a pattern like `4` would match a uuid or a token
 * count. For any other output: the output itself.
 *
 * @example
 * ```ts
 * import { modelText } from "./claude.ts";
 * modelText('{"type":"result","subtype":"success","is_error":false,"duration_ms":4444,"result":"Paris"}');
 * // "Paris"
 * modelText("plain output\n"); // "plain output\n"
 * ```
 */
export function modelText(output: string): string {
  if (!looksLikeStreamJson(output)) return output;
  const t = parseClaudeOutput(output);
  return t.nonJsonLines.length === 0 ? t.text : [t.text, ...t.nonJsonLines].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

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
 * import { detectClaudeLimit } from "./claude.ts";
 * detectClaudeLimit('{"result":"Claude AI usage limit reached|1751299200"}')?.resetTimestamp;
 * // 1751299200
 * detectClaudeLimit("Retry with backoff when you hit a rate limit."); // undefined
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
 * import { detectClaudeLimits } from "./claude.ts";
 * detectClaudeLimits(
 *   "Claude AI usage limit reached|1751299200\nClaude's response exceeded the 32000 output token maximum",
 * ).map((l) => l.kind); // ["rate_limit", "token_limit"]
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

// ---------------------------------------------------------------------------------------------
// Failure classification
// ---------------------------------------------------------------------------------------------

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
 * import { FAILURE_POLICIES } from "./claude.ts";
 * FAILURE_POLICIES.auth.retry; // "never"
 * FAILURE_POLICIES.rate_limit.retry; // "backoff"
 * FAILURE_POLICIES.max_turns.retry; // "refine"
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
 * import { failureOf } from "./claude.ts";
 * failureOf("auth", "Invalid API key").retry; // "never"
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
 * import { retryFailure } from "./claude.ts";
 * retryFailure({ attempt: 1, errorStatus: 401, error: "authentication_failed" })?.kind; // "auth"
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
 * import { classifyFailure, parseClaudeOutput } from "./claude.ts";
 * const t = parseClaudeOutput(
 *   '{"type":"result","subtype":"success","is_error":true,"api_error_status":429,' +
 *     '"result":"API Error: Request rejected (429) · slow down"}',
 * );
 * const f = classifyFailure(t, { exitCode: 1, status: "failed" });
 * f?.kind; // "rate_limit"
 * f?.retry; // "backoff"
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

/**
 * Seconds a Claude job may stay silent before its first output, whatever its stall timeout: the
 * real CLI prints nothing for ~19 s at startup when an API key is set and the Anthropic host
 * cannot be reached (it retries fetching settings first), and a stall clock must not kill every
 * attempt before it begins.
 */
export const CLAUDE_STARTUP_GRACE_S = 60;

/**
 * How long ccx lets the CLI retry an unreachable API (`api_retry` lines with no HTTP status)
 * before it ends the attempt as `network`; the CLI alone would go on for ~3 minutes.
 */
export const NETWORK_GIVE_UP_S = 30;

/** Options of {@linkcode ClaudeLiveWatch}. */
export interface LiveWatchOptions {
  /** Seconds without output before the run counts as stalled (none: no stall clock). */
  stallTimeoutS?: number;
  /** Silence allowed before the first output (default {@linkcode CLAUDE_STARTUP_GRACE_S}). */
  startupGraceS?: number;
  /** Network retries allowed, seconds (default {@linkcode NETWORK_GIVE_UP_S}). */
  networkGiveUpS?: number;
  /** Called once, when the watch decides the attempt must end now. */
  onFailure(failure: ClaudeFailure): void;
}

/**
 * Watches a Claude run as it streams and decides when it must end early: at once on an
 * `api_retry` line whose cause cannot heal (401/403: `auth`); after `networkGiveUpS` of retries
 * without any HTTP response (`network`); and when the output stops for `stallTimeoutS` (`stall`),
 * with a grace of `startupGraceS` before the first output. The caller cancels the job in
 * `onFailure` and reports {@linkcode ClaudeLiveWatch.failure} instead of the classification of
 * the canceled run.
 *
 * @example
 * ```ts
 * import { ClaudeLiveWatch, ClaudeStreamParser } from "./claude.ts";
 * const parser = new ClaudeStreamParser();
 * const watch = new ClaudeLiveWatch({ onFailure: (f) => console.log(f.kind) });
 * watch.output(parser.push(
 *   '{"type":"system","subtype":"api_retry","attempt":1,"error_status":401,"error":"authentication_failed"}\n',
 * )); // logs "auth"
 * watch.stop();
 * ```
 */
export class ClaudeLiveWatch {
  #opts: LiveWatchOptions;
  #failure?: ClaudeFailure;
  #stallTimer?: ReturnType<typeof setTimeout>;
  #netTimer?: ReturnType<typeof setTimeout>;
  #netSince?: number;
  #lastRetry?: ClaudeApiRetry;
  #stopped = false;

  /** Starts the watch (and the stall clock, with its startup grace). */
  constructor(opts: LiveWatchOptions) {
    this.#opts = opts;
    const stall = opts.stallTimeoutS;
    if (stall !== undefined) {
      const grace = Math.max(stall, opts.startupGraceS ?? CLAUDE_STARTUP_GRACE_S);
      this.#stallTimer = setTimeout(
        () =>
          this.#end(failureOf(
            "stall",
            `no output at all for ${grace} s (the stall timeout of ${stall} s, with a startup grace)`,
          )),
        grace * 1000,
      );
    }
  }

  /** The failure that ended the run early, if the watch ended it. */
  get failure(): ClaudeFailure | undefined {
    return this.#failure;
  }

  /** Feed every output chunk's parsed events (an empty list for a chunk with no full line). */
  output(events: ClaudeEvent[]): void {
    if (this.#stopped) return;
    const stall = this.#opts.stallTimeoutS;
    if (stall !== undefined) {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = setTimeout(
        () => this.#end(failureOf("stall", `no output for ${stall} s`)),
        stall * 1000,
      );
    }
    for (const ev of events) {
      if (ev.type === "system" && ev.apiRetry) {
        this.#retry(ev.apiRetry);
        if (this.#stopped) return;
      } else if (ev.type !== "unknown" && ev.type !== "system") {
        this.#healed();
      }
    }
  }

  /** Stops the clocks; call it when the run ended. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#stallTimer);
    clearTimeout(this.#netTimer);
  }

  #retry(r: ClaudeApiRetry): void {
    this.#lastRetry = r;
    const f = retryFailure(r);
    if (f.kind === "auth") return this.#end(f);
    if (f.kind !== "network") return this.#healed();
    if (this.#netSince !== undefined) return;
    this.#netSince = Date.now();
    const giveUp = this.#opts.networkGiveUpS ?? NETWORK_GIVE_UP_S;
    this.#netTimer = setTimeout(() => {
      const last = this.#lastRetry;
      this.#end(failureOf(
        "network",
        `the API could not be reached for ${giveUp} s` +
          (last
            ? ` (the CLI was at retry ${last.attempt}${
              last.maxRetries ? ` of ${last.maxRetries}` : ""
            })`
            : ""),
      ));
    }, giveUp * 1000);
  }

  #healed(): void {
    this.#netSince = undefined;
    clearTimeout(this.#netTimer);
  }

  #end(f: ClaudeFailure): void {
    if (this.#stopped) return;
    this.stop();
    this.#failure = f;
    this.#opts.onFailure(f);
  }
}

/** A rate limit from whatever the evidence says, for runs known to be rate limited. */
function rateLimitOf(evidence: string): ClaudeLimit {
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

// ---------------------------------------------------------------------------------------------
// Starting the CLI
// ---------------------------------------------------------------------------------------------

/** Options for {@link buildClaudeArgv}. */
export interface ClaudeArgvOptions {
  /** The CLI to run: `claude`, or a path to a stand-in. */
  claude: string;
  /** The prompt, passed as one argv element (no shell, no quoting needed). */
  prompt: string;
  /**
   * The tools the model gets, as `--tools` (the flag the real CLI honours): `"none"` passes
   * `--tools ""` (no tools at all); a list passes `--tools A,B`; absent or empty: no flag (every
   * tool). `--allowedTools none` is never produced: the real CLI reads `none` as a tool name and
   * restricts nothing.
   */
  tools?: string[] | "none";
  /** `--model`. */
  model?: string;
  /** `--max-turns` (0 is accepted, as the real CLI does). */
  maxTurns?: number;
  /** `--dangerously-skip-permissions` (default false). */
  skipPermissions?: boolean;
}

/**
 * The argv that runs Claude non-interactively with stream-json output:
 * `[claude, "-p", prompt, "--output-format", "stream-json", "--verbose", …]`. The prompt is one
 * argv element right after `-p`, so quotes, `$` and backticks reach the CLI untouched and no
 * variadic flag can swallow it. A prompt starting with `-` would be taken for an option, so it
 * goes last, after `--`.
 *
 * @example
 * ```ts
 * import { buildClaudeArgv } from "./claude.ts";
 * buildClaudeArgv({ claude: "claude", prompt: "What is 2+2?", tools: "none" });
 * // ["claude", "-p", "What is 2+2?", "--output-format", "stream-json", "--verbose",
 * //  "--tools", ""]
 * ```
 */
export function buildClaudeArgv(opts: ClaudeArgvOptions): string[] {
  const dashed = opts.prompt.startsWith("-");
  const argv = [opts.claude, "-p"];
  if (!dashed) argv.push(opts.prompt);
  argv.push("--output-format", "stream-json", "--verbose");
  if (opts.model) argv.push("--model", opts.model);
  if (opts.maxTurns !== undefined) {
    if (!Number.isInteger(opts.maxTurns) || opts.maxTurns < 0) {
      throw new RangeError(`maxTurns must be an integer >= 0, got ${opts.maxTurns}`);
    }
    argv.push("--max-turns", String(opts.maxTurns));
  }
  if (opts.tools === "none") argv.push("--tools", "");
  else if (opts.tools && opts.tools.length > 0) argv.push("--tools", opts.tools.join(","));
  if (opts.skipPermissions) argv.push("--dangerously-skip-permissions");
  if (dashed) argv.push("--", opts.prompt);
  return argv;
}

/**
 * Picks the tools (`--tools`) from the task's verbs, as the seed's cc_execute did, but on whole words
 * (so "truncate" does not mean "run"): create/file → Write; run/execute → Bash;
 * check/verify → Bash and Read; Read always.
 *
 * @example
 * ```ts
 * import { chooseTools } from "./claude.ts";
 * chooseTools("Create a config.py file with DATABASE_URL"); // ["Write", "Read"]
 * chooseTools("Run the tests and verify they pass"); // ["Bash", "Read"]
 * ```
 */
export function chooseTools(task: string): string[] {
  const t = task.toLowerCase();
  const tools: string[] = [];
  const add = (name: string) => {
    if (!tools.includes(name)) tools.push(name);
  };
  if (/\bcreat(?:e|es|ed|ing)\b|\bfiles?\b/.test(t)) add("Write");
  if (/\b(?:run|runs|running|execut(?:e|es|ed|ing))\b/.test(t)) add("Bash");
  if (/\b(?:check|checks|checking|verif(?:y|ies|ied|ying))\b/.test(t)) {
    add("Bash");
    add("Read");
  }
  add("Read");
  return tools;
}

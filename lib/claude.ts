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
}

/** One parsed line of stream-json output, discriminated on `type`. */
export type ClaudeEvent =
  | { type: "system"; subtype: string; init?: ClaudeInit; raw: Record<string, unknown> }
  | {
    type: "assistant";
    /** Text blocks of this message. */
    text: string[];
    /** Tool calls of this message. */
    toolUses: ClaudeToolUse[];
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
  /**
   * What the model said: the assistant text blocks joined by newlines, followed by the result
   * text when it differs from the last block (it usually repeats it). Never the JSON envelope.
   */
  text: string;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
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
      return { type: "system", subtype, init, raw };
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
      return { type: "assistant", text, toolUses, raw };
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
        },
        raw,
      };
    default:
      return { type: "unknown", line, raw };
  }
}

/** Parses one line; blank lines give `undefined`. */
function parseLine(line: string): ClaudeEvent | undefined {
  const trimmed = line.trim();
  if (trimmed === "") return undefined;
  if (trimmed[0] === "{") {
    try {
      const raw: unknown = JSON.parse(trimmed);
      if (isRecord(raw)) return toEvent(line, raw);
    } catch {
      // not JSON after all
    }
  }
  return { type: "unknown", line };
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
    if (resultText !== undefined && resultText !== "" && resultText !== last) {
      parts.push(resultText);
    }
    return {
      init: this.#init,
      assistantText,
      toolUses: [...this.#toolUses],
      toolResults: [...this.#toolResults],
      result: this.#result,
      nonJsonLines: [...this.#nonJson],
      text: parts.join("\n"),
    };
  }

  #take(line: string, events: ClaudeEvent[]): void {
    const ev = parseLine(line);
    if (!ev) return;
    events.push(ev);
    switch (ev.type) {
      case "system":
        if (ev.init) this.#init = ev.init;
        break;
      case "assistant":
        this.#assistantText.push(...ev.text);
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
    if (line[0] !== "{") continue;
    try {
      const v: unknown = JSON.parse(line);
      if (isRecord(v) && typeof v.type === "string" && STREAM_TYPES.has(v.type)) return true;
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
const API_429_RE = /API Error: 429\b/;
const RATE_LIMIT_ERROR_RE = /\brate_limit_error\b/;
const RATE_LIMIT_MESSAGE_RE = /rate_limit_error\\*"\s*,\s*\\*"message\\*"\s*:\s*\\*"([^"\\]*)/;
const RESETS_RE =
  /(?:(?:5-hour|[Ww]eekly|Opus weekly|[Ss]ession) limit reached|You've hit your limit) [∙·-] resets ([^\n"\\]{1,60})/;
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
 * contains none of `limit`, `429` and `token maximum` is rejected before any regex runs. Prose that merely talks
 * about rate limits does not match; the CLI's own messages do:
 * `Claude AI usage limit reached|<epoch>`, `API Error: 429 …`, `rate_limit_error`,
 * `… usage limit reached`, `5-hour limit reached ∙ resets 3pm`, and
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
  if (!text.includes("limit") && !text.includes("429") && !text.includes("token maximum")) {
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
  if (API_429_RE.test(text) || RATE_LIMIT_ERROR_RE.test(text)) {
    const detail = text.match(RATE_LIMIT_MESSAGE_RE)?.[1];
    return {
      kind: "rate_limit",
      errorType: "rate_limit_error",
      message: detail ? `API rate limit (429): ${detail}` : "API rate limit (429)",
      retryAfter: retryAfterOf(text),
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

// ---------------------------------------------------------------------------------------------
// Failure classification
// ---------------------------------------------------------------------------------------------

/** Why a Claude run failed. `canceled` is a run ended on request (CANCEL, disconnect). */
export type ClaudeFailureKind =
  | "rate_limit"
  | "token_limit"
  | "auth"
  | "max_turns"
  | "timeout"
  | "stall"
  | "canceled"
  | "crash"
  | "error";

/** A classified failure. */
export interface ClaudeFailure {
  /** What kind of failure this is; retries depend on it. */
  kind: ClaudeFailureKind;
  /** One line for humans. */
  message: string;
  /** The detected limit, for `rate_limit` and `token_limit`. */
  limit?: ClaudeLimit;
  /** Epoch seconds when a usage limit resets (`rate_limit` only, when known). */
  resetTimestamp?: number;
  /** Seconds to wait before retrying (`rate_limit` only, when known). */
  retryAfter?: number;
}

/** How the process ended, as the server reports it in `process.completed`. */
export interface ClaudeExit {
  /** Exit code, or null when the process died by a signal. */
  exitCode: number | null;
  /** `completed`, `failed`, `timeout`, `stalled`, `canceled`, `killed`. */
  status: string;
  /** Captured stderr, when available. */
  stderr?: string;
}

const AUTH_RE =
  /Invalid API key|Please run \/login|OAuth token (?:has expired|revoked)|authentication_error|API Error: 401\b|\bauthentication_failed\b/;

function firstLine(s: string, max = 200): string {
  const line = s.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}

/** The error line of a Node/Bun stack trace (`TypeError: …`), else the last non-blank line. */
function crashLine(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const err = lines.find((l) => /^(?:[A-Z]\w*Error|Error)\b.*:/.test(l) && !l.startsWith("at "));
  return firstLine(err ?? lines[lines.length - 1] ?? "");
}

/**
 * Classifies how a Claude run went wrong, or returns `undefined` when it succeeded (exit 0 and no
 * error result). Limits are checked first, because a CLI that hits a 429 may then time out while
 * retrying; then auth errors, the process status (`timeout`, `stalled`, `canceled`/`killed`),
 * the result subtype (`error_max_turns`), an error result, and finally a non-zero exit without a
 * result line (`crash`).
 *
 * @example
 * ```ts
 * import { classifyFailure, parseClaudeOutput } from "./claude.ts";
 * const t = parseClaudeOutput(
 *   '{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|1751299200"}',
 * );
 * classifyFailure(t, { exitCode: 1, status: "failed" })?.kind; // "rate_limit"
 * ```
 */
export function classifyFailure(t: ClaudeTranscript, exit: ClaudeExit): ClaudeFailure | undefined {
  const stderr = exit.stderr ?? "";
  const r = t.result;
  const errored = exit.exitCode !== 0 || r?.isError === true || exit.status !== "completed";

  if (errored) {
    // Only the CLI's own error text counts as evidence: an error result's text, or, when the run
    // never produced a result, everything it printed. A model explaining rate limits in a
    // successful answer is not a rate limit, and an error_max_turns result outranks an earlier
    // API error string in the transcript.
    const evidence = (r ? [r.isError ? r.text ?? "" : ""] : [t.text])
      .concat(t.nonJsonLines, stderr)
      .join("\n");
    const limit = detectClaudeLimit(evidence);
    if (limit && r?.subtype !== "error_max_turns") {
      return {
        kind: limit.kind,
        message: limit.message,
        limit,
        ...(limit.resetTimestamp !== undefined ? { resetTimestamp: limit.resetTimestamp } : {}),
        ...(limit.retryAfter !== undefined ? { retryAfter: limit.retryAfter } : {}),
      };
    }
    const auth = evidence.match(AUTH_RE);
    if (auth && r?.subtype !== "error_max_turns") {
      const text = r?.isError && r.text ? r.text : auth[0];
      return { kind: "auth", message: `authentication failed: ${firstLine(text)}` };
    }
  }

  switch (exit.status) {
    case "timeout":
      return { kind: "timeout", message: "the run exceeded its timeout and was killed" };
    case "stalled":
    case "stall":
      return { kind: "stall", message: "the run produced no output for too long and was killed" };
    case "canceled":
      return { kind: "canceled", message: "the run was canceled" };
    case "killed":
      return { kind: "canceled", message: "the run was killed" };
  }

  if (r?.subtype === "error_max_turns") {
    return {
      kind: "max_turns",
      message: `reached the maximum number of turns${r.numTurns ? ` (${r.numTurns} turns)` : ""}`,
    };
  }
  if (r && r.subtype !== "success") {
    return {
      kind: "error",
      message: r.text ? firstLine(r.text) : `the CLI ended with ${r.subtype}`,
    };
  }
  if (r?.isError) {
    return { kind: "error", message: firstLine(r.text ?? "the CLI reported an error") };
  }
  if (exit.exitCode !== 0) {
    const code = exit.exitCode === null ? "a signal" : `code ${exit.exitCode}`;
    if (!r) {
      const stack = /^\s+at .+[:(]\d+/m.test(stderr);
      if (stack || t.init) {
        const why = crashLine(stderr);
        return {
          kind: "crash",
          message: `the CLI died (exit ${code}) without a result${why ? `: ${why}` : ""}`,
        };
      }
    }
    const why = crashLine(stderr);
    return { kind: "error", message: `exited with ${code}${why ? `: ${why}` : ""}` };
  }
  return undefined;
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
  /** `--allowedTools` list; `"none"` passes `--allowedTools none`; absent or empty: no flag. */
  tools?: string[] | "none";
  /** `--model`. */
  model?: string;
  /** `--max-turns`. */
  maxTurns?: number;
  /** `--dangerously-skip-permissions` (default false). */
  skipPermissions?: boolean;
}

/**
 * The argv that runs Claude non-interactively with stream-json output:
 * `[claude, "-p", prompt, "--output-format", "stream-json", "--verbose", …]`. The prompt is one
 * argv element, so quotes, `$` and backticks reach the CLI untouched. A prompt starting with `-`
 * would be taken for an option, so it goes last, after `--`.
 *
 * @example
 * ```ts
 * import { buildClaudeArgv } from "./claude.ts";
 * buildClaudeArgv({ claude: "claude", prompt: "What is 2+2?", tools: "none" });
 * // ["claude", "-p", "What is 2+2?", "--output-format", "stream-json", "--verbose",
 * //  "--allowedTools", "none"]
 * ```
 */
export function buildClaudeArgv(opts: ClaudeArgvOptions): string[] {
  const dashed = opts.prompt.startsWith("-");
  const argv = [opts.claude, "-p"];
  if (!dashed) argv.push(opts.prompt);
  argv.push("--output-format", "stream-json", "--verbose");
  if (opts.model) argv.push("--model", opts.model);
  if (opts.maxTurns !== undefined) {
    if (!Number.isInteger(opts.maxTurns) || opts.maxTurns < 1) {
      throw new RangeError(`maxTurns must be a positive integer, got ${opts.maxTurns}`);
    }
    argv.push("--max-turns", String(opts.maxTurns));
  }
  if (opts.tools === "none") argv.push("--allowedTools", "none");
  else if (opts.tools && opts.tools.length > 0) argv.push("--allowedTools", opts.tools.join(","));
  if (opts.skipPermissions) argv.push("--dangerously-skip-permissions");
  if (dashed) argv.push("--", opts.prompt);
  return argv;
}

/**
 * Picks `--allowedTools` from the task's verbs, as the seed's cc_execute did, but on whole words
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

/**
 * Claude Code's `claude -p --output-format stream-json --verbose` output: an incremental parser
 * of its lines into events, the transcript they add up to (init info, what the model said, tool
 * calls and results, the result line with its cost and turns, `api_retry` lines, the CLI's own
 * error texts), and the text patterns should be matched against.
 *
 * `ccx stress` checks patterns against what the model said ({@linkcode modelText}); `ccx exec`
 * parses each attempt as it streams. `classify.ts` classifies the transcripts, `live_watch.ts`
 * watches the events.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseClaudeOutput } from "./stream.ts";
 * const t = parseClaudeOutput('{"type":"result","subtype":"success","is_error":false,"result":"4"}\n');
 * assert.equal(t.result?.text, "4");
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
 * import assert from "node:assert/strict";
 * import { ClaudeStreamParser } from "./stream.ts";
 * const p = new ClaudeStreamParser();
 * assert.deepEqual(p.push('{"type":"assistant","message":{"content":[{"type":"te'), []); // no full line yet
 * assert.equal(p.push('xt","text":"2 + 2 = 4"}]}}\n').length, 1);
 * p.end();
 * assert.equal(p.transcript().text, "2 + 2 = 4");
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
 * import assert from "node:assert/strict";
 * import { parseClaudeOutput } from "./stream.ts";
 * const t = parseClaudeOutput('{"type":"system","subtype":"init","tools":["Write"]}\nnot json\n');
 * assert.deepEqual(t.init?.tools, ["Write"]);
 * assert.deepEqual(t.nonJsonLines, ["not json"]);
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
 * import assert from "node:assert/strict";
 * import { looksLikeStreamJson } from "./stream.ts";
 * assert.equal(looksLikeStreamJson('{"type":"system","subtype":"init"}\n'), true);
 * assert.equal(looksLikeStreamJson("2 + 2 = 4\n"), false);
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
 * import assert from "node:assert/strict";
 * import { modelText } from "./stream.ts";
 * const out = '{"type":"result","subtype":"success","is_error":false,"duration_ms":4444,"result":"Paris"}';
 * assert.equal(modelText(out), "Paris"); // not the envelope, where "4" would match the duration
 * assert.equal(modelText("plain output\n"), "plain output\n");
 * ```
 */
export function modelText(output: string): string {
  if (!looksLikeStreamJson(output)) return output;
  const t = parseClaudeOutput(output);
  return t.nonJsonLines.length === 0 ? t.text : [t.text, ...t.nonJsonLines].join("\n");
}

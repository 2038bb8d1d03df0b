/**
 * JSON-RPC 2.0 for ccx: message shapes, error codes, and validation of every
 * request the server accepts. Nothing here touches a socket or a process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ErrorCode, parseIncoming } from "./protocol.ts";
 * const { items, batch } = parseIncoming('{"jsonrpc":"2.0","id":1,"method":"ping"}');
 * assert.equal(batch, false);
 * assert.deepEqual(items[0], { kind: "request", id: 1, method: "ping", params: undefined });
 * assert.equal(ErrorCode.MethodNotFound, -32601);
 * ```
 * @module
 */

import {
  expectedMessage,
  isRecord,
  joinPath,
  type JsonObject,
  JsonShapeError,
  NUL_MESSAGE,
  optNumber,
  optRecord,
  optString,
  type ReadOptions,
  readString,
  readStringArray,
} from "./json.ts";

/** The version string sent in `connected`, `/health` and `--version`. */
export const VERSION = "0.1.0";

/** JSON-RPC error codes used by ccx (standard ones and the server-defined -320xx range). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  SessionLimit: -32001,
  CommandNotAllowed: -32002,
  JobNotFound: -32003,
  LimitExceeded: -32004,
} as const;

/**
 * A number id exactly as the client wrote it (`-0`, `1.50`, `12345678901234567890`),
 * made with `JSON.rawJSON`: `JSON.stringify` writes its text back unchanged.
 */
export interface RawNumberId {
  /** The id's JSON text. */
  readonly rawJSON: string;
}

/**
 * A JSON-RPC request id: string, number or null, echoed back exactly as sent
 * (numbers as their original text, so ids past 2^53 and `-0` survive).
 */
export type RpcId = string | number | RawNumberId | null;

/** The largest `timeout` / `stall_timeout` in seconds a request may give: 365 days. */
export const MAX_TIMEOUT_S = 365 * 24 * 3600;

/** The error object of a JSON-RPC error response. */
export interface RpcErrorObject {
  /** The error code (see {@linkcode ErrorCode}). */
  code: number;
  /** A one-line description of the error. */
  message: string;
  /** Extra detail (e.g. `{field}` for invalid params); absent when there is none. */
  data?: unknown;
}

/**
 * An error that becomes a JSON-RPC error response.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ErrorCode, errorResponse, RpcError } from "./protocol.ts";
 * const e = new RpcError(ErrorCode.InvalidParams, "timeout must be a positive number", { field: "timeout" });
 * // A method handler throws it; the session answers the request with it:
 * assert.deepEqual(errorResponse(3, e), {
 *   jsonrpc: "2.0",
 *   id: 3,
 *   error: { code: -32602, message: "timeout must be a positive number", data: { field: "timeout" } },
 * });
 * ```
 */
export class RpcError extends Error {
  /** The JSON-RPC error code. */
  readonly code: number;
  /** Extra detail; for invalid params, `{field}` names the offending field. */
  readonly data?: unknown;
  /** Creates the error with its JSON-RPC `code`, `message` and optional `data`. */
  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
  /** The wire form of this error. */
  toObject(): RpcErrorObject {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

/** One parsed item of an incoming message. */
export type Incoming =
  | { kind: "request"; id: RpcId; method: string; params: unknown }
  | { kind: "notification"; method: string; params: unknown }
  | { kind: "response"; id: RpcId }
  | { kind: "invalid"; id: RpcId; error: RpcError };

/** Result of {@linkcode parseIncoming}: the items, and whether they came as a batch. */
export interface ParsedMessage {
  /** The items in order (one for a single message); empty when `error` is set. */
  items: Incoming[];
  /** True when the text was a JSON array (a batch), even one that failed. */
  batch: boolean;
  /** Set when the text is not JSON at all or an empty batch: answer with this error, id null. */
  error?: RpcError;
}

function validId(v: unknown): v is RpcId {
  return v === null || typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
}

const rawNumber = (text: string): RawNumberId =>
  (JSON as unknown as { rawJSON(text: string): RawNumberId }).rawJSON(text);

/** The source text of numeric `id` members, by the object that holds them. */
type RawIds = WeakMap<object, string>;

function classify(v: unknown, rawIds?: RawIds): Incoming {
  if (!isRecord(v)) {
    return {
      kind: "invalid",
      id: null,
      error: new RpcError(ErrorCode.InvalidRequest, "a request must be a JSON object"),
    };
  }
  const raw = typeof v.id === "number" ? rawIds?.get(v) : undefined;
  // A number past a double's range (`1e400`, which JSON.parse makes Infinity) is still a
  // valid JSON number: like any number id it is echoed as the client wrote it.
  const overflow = raw !== undefined && !Number.isFinite(v.id);
  // Only a number whose text JSON.stringify would change keeps its text.
  const id: RpcId = "id" in v && (overflow || validId(v.id))
    ? (raw !== undefined && raw !== String(v.id) ? rawNumber(raw) : v.id as RpcId)
    : null;
  if (v.jsonrpc !== "2.0") {
    return {
      kind: "invalid",
      id,
      error: new RpcError(ErrorCode.InvalidRequest, 'jsonrpc must be "2.0"', { field: "jsonrpc" }),
    };
  }
  if ("id" in v && !overflow && !validId(v.id)) {
    return {
      kind: "invalid",
      id: null,
      error: new RpcError(ErrorCode.InvalidRequest, "id must be a string, a number or null", {
        field: "id",
      }),
    };
  }
  if (!("method" in v)) {
    if ("result" in v || "error" in v) return { kind: "response", id };
    return {
      kind: "invalid",
      id,
      error: new RpcError(ErrorCode.InvalidRequest, "method is missing", { field: "method" }),
    };
  }
  if (typeof v.method !== "string" || v.method === "") {
    return {
      kind: "invalid",
      id,
      error: new RpcError(ErrorCode.InvalidRequest, "method must be a non-empty string", {
        field: "method",
      }),
    };
  }
  if ("params" in v && v.params !== undefined && typeof v.params !== "object") {
    return {
      kind: "invalid",
      id,
      error: new RpcError(ErrorCode.InvalidRequest, "params must be an object or an array", {
        field: "params",
      }),
    };
  }
  if (!("id" in v)) return { kind: "notification", method: v.method, params: v.params };
  return { kind: "request", id, method: v.method, params: v.params };
}

/**
 * Parses one WebSocket text frame into JSON-RPC items (a single message or a batch).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIncoming } from "./protocol.ts";
 * const m = parseIncoming("[1]");
 * assert.equal(m.batch, true);
 * assert.equal(m.items[0].kind, "invalid");
 * ```
 */
export function parseIncoming(text: string): ParsedMessage {
  let value: unknown;
  const rawIds: RawIds = new WeakMap();
  try {
    // Keep the text of numeric ids so they are echoed exactly (2^53 + 1, -0).
    value = JSON.parse(
      text,
      function (this: unknown, key: string, v: unknown, context?: { source?: string }) {
        if (key === "id" && typeof v === "number" && context?.source !== undefined) {
          if (typeof this === "object" && this !== null) rawIds.set(this, context.source);
        }
        return v;
      },
    );
  } catch (e) {
    return {
      items: [],
      batch: false,
      error: new RpcError(ErrorCode.ParseError, `parse error: ${(e as Error).message}`),
    };
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      return {
        items: [],
        batch: true,
        error: new RpcError(ErrorCode.InvalidRequest, "an empty batch is not a request"),
      };
    }
    return { items: value.map((v) => classify(v, rawIds)), batch: true };
  }
  return { items: [classify(value, rawIds)], batch: false };
}

/**
 * A success response.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { response } from "./protocol.ts";
 * assert.deepEqual(response(7, { pong: true }), { jsonrpc: "2.0", id: 7, result: { pong: true } });
 * ```
 */
export function response(id: RpcId, result: unknown): Record<string, unknown> {
  return { jsonrpc: "2.0", id, result };
}

/**
 * An error response.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ErrorCode, errorResponse, RpcError } from "./protocol.ts";
 * assert.deepEqual(errorResponse(1, new RpcError(ErrorCode.MethodNotFound, "no method frobnicate")), {
 *   jsonrpc: "2.0",
 *   id: 1,
 *   error: { code: -32601, message: "no method frobnicate" },
 * });
 * ```
 */
export function errorResponse(id: RpcId, error: RpcError): Record<string, unknown> {
  return { jsonrpc: "2.0", id, error: error.toObject() };
}

/**
 * A notification (no id) from server to client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notification } from "./protocol.ts";
 * assert.equal(
 *   JSON.stringify(notification("heartbeat", { timestamp: 0, running_jobs: 0 })),
 *   '{"jsonrpc":"2.0","method":"heartbeat","params":{"timestamp":0,"running_jobs":0}}',
 * );
 * ```
 */
export function notification(method: string, params: unknown): Record<string, unknown> {
  return { jsonrpc: "2.0", method, params };
}

/** The final status of a job: exactly one of these. */
export type JobStatus = "completed" | "failed" | "timeout" | "stalled" | "canceled" | "killed";

/** How a job ended. */
export interface JobResult {
  /** How the job ended (see {@linkcode JobStatus}). */
  status: JobStatus;
  /** Exit code; 128 + signal number when a signal ended the leader. */
  exitCode: number | null;
  /** The signal that ended the leader process, if any. */
  signal: string | null;
  /** Wall-clock seconds from start to end. */
  executionTime: number;
  /** Bytes read from the job's stdout. */
  stdoutBytes: number;
  /** Bytes read from the job's stderr. */
  stderrBytes: number;
  /** Chunks (lines, in lines mode) that held bytes which were not valid UTF-8. */
  invalidUtf8Chunks: number;
}

/** One file in a listing. Paths are relative to the workspace and use `/`. */
export interface FileEntry {
  /** Path relative to the workspace. */
  path: string;
  /** Size in bytes (for a symlink: the length of its target). */
  size: number;
  /** Only in listings of `files`: `file`, `dir` or `symlink`. */
  type?: "file" | "dir" | "symlink";
}

/** What the `files` method answers about a path of a job's workspace (besides `job_id`, `workspace`). */
export type WorkspaceRead =
  | { path: string; exists: false }
  | {
    path: string;
    exists: true;
    type: "dir";
    /** Entries below `path`, recursively, relative to the workspace. */
    entries: FileEntry[];
    /** True when the listing was cut at its bound. */
    truncated: boolean;
  }
  | {
    path: string;
    exists: true;
    type: "file";
    /** Size of the whole file. */
    size: number;
    /** `utf-8` for text, `base64` for anything that is not valid UTF-8. */
    encoding: "utf-8" | "base64";
    /** The content (at most `maxBytes` of it). */
    content: string;
    /** True when only the first `maxBytes` bytes are in `content`. */
    truncated: boolean;
  };

/** Validated parameters of `execute`. */
export interface ExecuteParams {
  /** A shell command, run by `/bin/sh -c`. Exactly one of command/argv. */
  command?: string;
  /** An argument vector, run without a shell. */
  argv?: string[];
  /** Working directory of the job (default: the server's); it must exist. */
  cwd?: string;
  /** Variables added to the server's environment for this job. */
  env?: Record<string, string>;
  /** Whole-run timeout in seconds. */
  timeout?: number;
  /** Seconds without output before the job is stalled. */
  stall_timeout?: number;
  /** Written to the job's stdin, which is then closed. */
  stdin?: string;
  /**
   * The job's id, 1-128 characters of `A-Z a-z 0-9 . _ : -`, unique in the session
   * (default: a random UUID chosen by the server).
   */
  job_id?: string;
  /**
   * How output is cut into `process.output` messages: `lines` (the default) sends one
   * line per message, as the seed's clients expect; `chunks` coalesces what one read of
   * the pipe gave, up to its last newline, into one message (far fewer messages).
   */
  output_mode?: "lines" | "chunks";
  /**
   * Run in a fresh directory that the server makes (and reports): `true`, or
   * `{template, keep}` (see {@linkcode WorkspaceParam}). Not together with `cwd`.
   */
  workspace?: WorkspaceParam;
  /**
   * What observers (the page, `ccx ps`, `jobs`) and the server log call the job, e.g.
   * `simple_1 · basic_math`: 1-{@linkcode MAX_LABEL_CHARS} characters, no control characters.
   */
  label?: string;
  /**
   * Free facts about the job shown to observers and logged, at most
   * {@linkcode MAX_META_BYTES} bytes as JSON. The page reads the keys of {@linkcode JobMeta}.
   */
  meta?: JobMeta;
}

/** Longest `label` of `execute`, in characters. */
export const MAX_LABEL_CHARS = 200;

/** Largest `meta` of `execute`, in bytes of its JSON text (UTF-8). */
export const MAX_META_BYTES = 16 * 1024;

/**
 * The `meta` object of `execute`: free JSON, of which the page understands these keys (all
 * optional). `ccx stress` and `ccx exec` set them.
 */
export interface JobMeta {
  /** The suite the job's task comes from (`ccx stress`). */
  suite?: string;
  /** The run the job belongs to: the page groups jobs by it. */
  run_id?: string;
  /** Task runs in that run, for the page's progress of the run (`3 of 10 done`). */
  run_total?: number;
  /** The task's id in its suite. */
  task_id?: string;
  /** The task run's id in its report (`task_id`, with `.rN` under `--repeat`). */
  result_id?: string;
  /** The instance of a concurrent task, from 1. */
  instance?: number;
  /** The attempt of `ccx exec`, from 1. */
  attempt?: number;
  /** What the job asks Claude, shown at the top of its conversation. */
  prompt?: string;
  /** `non-zero`: the task passes when the command fails, so a failure is not shown as one. */
  expect_exit?: "non-zero";
  /** Anything else. */
  [key: string]: unknown;
}

/**
 * Shortens text to at most `max` characters (an ellipsis ends it when cut), for a `label` or a
 * `meta` value that must stay within the `execute` limits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clip } from "./protocol.ts";
 * assert.equal(clip("abcdef", 4), "abc…");
 * assert.equal(clip("abc", 4), "abc");
 * ```
 */
export function clip(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, Math.max(0, max - 1)).join("") + "…";
}

/**
 * Makes any text a valid `label`: runs of control characters (a newline, a tab) become one
 * space, and it is clipped to {@linkcode MAX_LABEL_CHARS} characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toLabel } from "./protocol.ts";
 * assert.equal(toLabel("Write a haiku\nabout pipes"), "Write a haiku about pipes");
 * ```
 */
export function toLabel(text: string): string {
  const one = text.replace(/[\p{Cc}\u2028\u2029]+/gu, " ").trim();
  return clip(one === "" ? "(no label)" : one, MAX_LABEL_CHARS);
}

/** The `workspace` param of `execute`, validated (`true` becomes `{}`). */
export interface WorkspaceParam {
  /**
   * A directory on the server copied into the workspace before the job starts; it must be
   * under one of the server's `--template-root` directories.
   */
  template?: string;
  /** What is removed after the job: `always` kept, `never` kept, or kept when it `failed` (default). */
  keep?: "always" | "never" | "failed";
  /**
   * Run in the workspace of this finished job of the same session instead of a fresh one
   * (while the server still has it: until the session ends, or for good when it was kept).
   * Its keep policy stays; a job that fails in it keeps it under `failed`. Not with
   * `template` or `keep`.
   */
  reuse?: string;
  /**
   * Files written into the workspace before the job starts (after the template), replacing
   * whatever is at their paths: what `ccx stress` ships as a task's hidden tests.
   */
  files?: WorkspaceFile[];
}

/** One file of `workspace.files`. */
export interface WorkspaceFile {
  /** Path relative to the workspace, `/`-separated, without `..`. */
  path: string;
  /** The content: text, or base64 with `encoding: "base64"`. */
  content: string;
  /** `utf-8` (default) or `base64`. */
  encoding?: "utf-8" | "base64";
  /** Permission bits, e.g. `0o755` (default `0o644`). */
  mode?: number;
}

/** Most files one `workspace.files` may carry. */
export const MAX_WORKSPACE_FILES = 1000;

/** Validated parameters of `files`. */
export interface FilesParams {
  /** The job whose workspace is read. */
  job_id: string;
  /** A path relative to the workspace; absent: the whole listing. */
  path?: string;
  /** Another session's id: an observer reading that session's job (see `watch`). */
  session_id?: string;
}

/** Validated parameters of `control`. */
export interface ControlParams {
  /** PAUSE stops the job's process group (SIGSTOP), RESUME continues it, CANCEL ends it. */
  type: "PAUSE" | "RESUME" | "CANCEL";
  /** The job to act on; may be left out when the session runs exactly one job. */
  job_id?: string;
  /**
   * Another session's id, to control one of its jobs (observers only, see `watch`); `job_id`
   * is then required.
   */
  session_id?: string;
}

function invalid(field: string, message: string): RpcError {
  return new RpcError(ErrorCode.InvalidParams, `${field}: ${message}`, { field });
}

function paramsObject(params: unknown, method: string): JsonObject {
  if (params === undefined || params === null) return {};
  if (!isRecord(params)) {
    throw new RpcError(ErrorCode.InvalidParams, `${method} takes its params as an object`, {
      field: "params",
    });
  }
  return params;
}

/** JSON-RPC clients send `null` for "not given": every param reads it as absent. */
const PARAM: ReadOptions = { nullIsAbsent: true };

/**
 * Runs a validator; a {@linkcode JsonShapeError} becomes -32602 naming its JSON path in the
 * message and in `data.field` (or `field`, when given).
 */
function params<T>(read: () => T, field?: string): T {
  try {
    return read();
  } catch (e) {
    if (!(e instanceof JsonShapeError)) throw e;
    if (field === undefined) throw invalid(e.path, e.detail);
    throw new RpcError(ErrorCode.InvalidParams, e.message, { field });
  }
}

function optSeconds(p: JsonObject, field: string): number | undefined {
  const v = optNumber(p, field, "", { ...PARAM, above: 0, unit: "seconds" });
  if (v !== undefined && v > MAX_TIMEOUT_S) {
    throw invalid(field, `at most ${MAX_TIMEOUT_S} seconds (365 days), got ${v}`);
  }
  return v;
}

const JOB_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Validates `execute` params; throws {@linkcode RpcError} -32602 naming the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateExecute } from "./protocol.ts";
 * const p = validateExecute({ argv: ["echo", "hi"], timeout: 5 });
 * assert.deepEqual([p.argv, p.timeout], [["echo", "hi"], 5]);
 * assert.throws(() => validateExecute({ argv: ["echo"], timeout: -1 }), /timeout/);
 * ```
 */
export function validateExecute(raw: unknown): ExecuteParams {
  return params(() => readExecute(paramsObject(raw, "execute")));
}

function readExecute(p: JsonObject): ExecuteParams {
  const out: ExecuteParams = {};
  if (p.command !== undefined && p.argv !== undefined) {
    throw invalid("command", "give either command or argv, not both");
  }
  if (p.argv !== undefined) {
    // data.field stays "argv" for a malformed array (the message names the item).
    const argv = params(() => readStringArray(p, "argv", "", { minItems: 1 }), "argv");
    argv.forEach((a, i) => {
      if (a.includes("\0")) throw invalid(`argv[${i}]`, NUL_MESSAGE);
    });
    if (argv[0] === "") throw invalid("argv", "argv[0] must name a program");
    out.argv = argv;
  } else {
    const command = optString(p, "command", "", { ...PARAM, noNul: true });
    if (command === undefined || command.trim() === "") {
      throw invalid("command", "expected a non-empty string (or give argv)");
    }
    out.command = command;
  }
  out.cwd = optString(p, "cwd", "", { ...PARAM, noNul: true });
  out.stdin = optString(p, "stdin", "", PARAM);
  const env = optRecord(p, "env", "", PARAM);
  if (env !== undefined) {
    for (const k of Object.keys(env)) {
      readString(env, k, "env", { noNul: true });
      if (k === "" || k.includes("=") || k.includes("\0")) {
        throw invalid(joinPath("env", k), "not a valid variable name");
      }
    }
    out.env = env as Record<string, string>;
  }
  out.timeout = optSeconds(p, "timeout");
  out.stall_timeout = optSeconds(p, "stall_timeout");
  const jobId = optString(p, "job_id", "", PARAM);
  if (jobId !== undefined && !JOB_ID.test(jobId)) {
    throw invalid("job_id", "expected 1-128 characters of A-Z a-z 0-9 . _ : -");
  }
  out.job_id = jobId;
  const mode = p.output_mode;
  if (mode !== undefined && mode !== null) {
    if (mode !== "lines" && mode !== "chunks") {
      throw invalid("output_mode", `expected "lines" or "chunks", got ${JSON.stringify(mode)}`);
    }
    out.output_mode = mode;
  }
  const ws = p.workspace;
  if (ws !== undefined && ws !== null && ws !== false) {
    out.workspace = validateWorkspace(ws);
    if (out.cwd !== undefined) {
      throw invalid("cwd", "give either cwd or workspace: a workspace is the job's directory");
    }
  }
  if (p.label !== undefined && p.label !== null) out.label = checkLabel(p.label);
  if (p.meta !== undefined && p.meta !== null) out.meta = checkMeta(p.meta);
  return out;
}

function checkLabel(label: unknown): string {
  if (typeof label !== "string") throw invalid("label", expectedMessage("a string", label));
  const n = [...label].length;
  if (n === 0 || label.trim() === "") throw invalid("label", "expected a non-blank string");
  if (n > MAX_LABEL_CHARS) {
    throw invalid("label", `at most ${MAX_LABEL_CHARS} characters, got ${n}`);
  }
  // One line in the log and on the page: no newline, tab or other control character.
  // deno-lint-ignore no-control-regex
  const bad = label.match(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    throw invalid("label", `contains the control character U+${code} at index ${bad.index}`);
  }
  return label;
}

function checkMeta(meta: unknown): JobMeta {
  if (!isRecord(meta)) throw invalid("meta", expectedMessage("an object", meta));
  const bytes = new TextEncoder().encode(JSON.stringify(meta)).length;
  if (bytes > MAX_META_BYTES) {
    throw invalid("meta", `at most ${MAX_META_BYTES} bytes as JSON, got ${bytes}`);
  }
  return meta as JobMeta;
}

const WORKSPACE_KEYS = ["template", "keep", "reuse", "files"];

/** Validates the `workspace` param of `execute` (`true` becomes `{}`). */
function validateWorkspace(ws: unknown): WorkspaceParam {
  if (ws === true) return {};
  if (!isRecord(ws)) {
    throw invalid("workspace", "expected true or an object {template?, keep?, reuse?, files?}");
  }
  for (const k of Object.keys(ws)) {
    if (!WORKSPACE_KEYS.includes(k)) {
      throw invalid(`workspace.${k}`, `unknown key (known: ${WORKSPACE_KEYS.join(", ")})`);
    }
  }
  const w: WorkspaceParam = {};
  const template = optString(ws, "template", "workspace", PARAM);
  if (template !== undefined) {
    if (template === "") throw invalid("workspace.template", "expected a directory path");
    w.template = template;
  }
  if (ws.keep !== undefined && ws.keep !== null) {
    if (ws.keep !== "always" && ws.keep !== "never" && ws.keep !== "failed") {
      throw invalid(
        "workspace.keep",
        `expected always, never or failed, got ${JSON.stringify(ws.keep)}`,
      );
    }
    w.keep = ws.keep;
  }
  if (ws.reuse !== undefined && ws.reuse !== null) {
    if (typeof ws.reuse !== "string" || !JOB_ID.test(ws.reuse)) {
      throw invalid("workspace.reuse", "expected the job_id of a finished job of this session");
    }
    const other = w.template !== undefined ? "template" : w.keep !== undefined ? "keep" : "";
    if (other) {
      throw invalid(
        `workspace.${other}`,
        "not with reuse: the reused workspace exists and keeps its own policy",
      );
    }
    w.reuse = ws.reuse;
  }
  if (ws.files !== undefined && ws.files !== null) {
    if (!Array.isArray(ws.files)) {
      throw invalid("workspace.files", "expected an array of {path, content, encoding?, mode?}");
    }
    if (ws.files.length > MAX_WORKSPACE_FILES) {
      throw invalid(
        "workspace.files",
        `at most ${MAX_WORKSPACE_FILES} files, got ${ws.files.length}`,
      );
    }
    const seen = new Set<string>();
    w.files = ws.files.map((f, i) => {
      const at = `workspace.files[${i}]`;
      if (!isRecord(f)) throw invalid(at, "expected an object {path, content, encoding?, mode?}");
      for (const k of Object.keys(f)) {
        if (!["path", "content", "encoding", "mode"].includes(k)) {
          throw invalid(`${at}.${k}`, "unknown key (known: path, content, encoding, mode)");
        }
      }
      const path = readString(f, "path", at, { noNul: true });
      if (path === "") throw invalid(`${at}.path`, "expected a path relative to the workspace");
      const parts = path.split("/");
      if (
        path.startsWith("/") || parts.includes("..") || parts.every((x) => x === "" || x === ".")
      ) {
        throw invalid(
          `${at}.path`,
          `expected a relative path without "..", got ${JSON.stringify(path)}`,
        );
      }
      const key = parts.filter((x) => x !== "" && x !== ".").join("/");
      if (seen.has(key)) throw invalid(`${at}.path`, `${path} is given twice`);
      seen.add(key);
      readString(f, "content", at);
      const file: WorkspaceFile = { path, content: f.content as string };
      if (f.encoding !== undefined && f.encoding !== null) {
        if (f.encoding !== "utf-8" && f.encoding !== "base64") {
          throw invalid(
            `${at}.encoding`,
            `expected utf-8 or base64, got ${JSON.stringify(f.encoding)}`,
          );
        }
        file.encoding = f.encoding;
      }
      if (f.mode !== undefined && f.mode !== null) {
        if (
          typeof f.mode !== "number" || !Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o777
        ) {
          throw invalid(
            `${at}.mode`,
            `expected permission bits 0-0o777, got ${JSON.stringify(f.mode)}`,
          );
        }
        file.mode = f.mode;
      }
      return file;
    });
  }
  return w;
}

/**
 * Validates `files` params: `job_id` is required, `path` optional (checked for
 * confinement by the server, which knows the workspace).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateFiles } from "./protocol.ts";
 * assert.deepEqual(validateFiles({ job_id: "j1", path: "src/main.py" }), { job_id: "j1", path: "src/main.py" });
 * ```
 */
export function validateFiles(raw: unknown): FilesParams {
  const p = paramsObject(raw, "files");
  return params(() => {
    const jobId = optString(p, "job_id", "", PARAM);
    if (jobId === undefined || jobId === "") throw invalid("job_id", "required");
    const out: FilesParams = { job_id: jobId, path: optString(p, "path", "", PARAM) };
    const sessionId = optString(p, "session_id", "", PARAM);
    if (sessionId !== undefined) out.session_id = sessionId;
    return out;
  });
}

/**
 * Validates `control` params.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateControl } from "./protocol.ts";
 * assert.deepEqual(validateControl({ type: "CANCEL" }), { type: "CANCEL", job_id: undefined });
 * assert.throws(() => validateControl({ type: "STOP" }), /type/);
 * ```
 */
export function validateControl(raw: unknown): ControlParams {
  const p = paramsObject(raw, "control");
  const type = typeof p.type === "string" ? p.type.toUpperCase() : p.type;
  if (type !== "PAUSE" && type !== "RESUME" && type !== "CANCEL") {
    throw invalid("type", `expected PAUSE, RESUME or CANCEL, got ${JSON.stringify(p.type)}`);
  }
  return params(() => {
    const out: ControlParams = { type, job_id: optString(p, "job_id", "", PARAM) };
    const sessionId = optString(p, "session_id", "", PARAM);
    if (sessionId !== undefined) {
      if (out.job_id === undefined) throw invalid("job_id", "required with session_id");
      out.session_id = sessionId;
    }
    return out;
  });
}

/** What a job is doing now. */
export type JobState = "running" | "paused" | "ending" | "done";

/** One job as observers see it (`observe.job` and the `watch` snapshot). */
export interface ObservedJob {
  /** The owning session's id. */
  session_id: string;
  /** The job's id in that session. */
  job_id: string;
  /** The shell command, or the argv as JSON. */
  command: string;
  /** The argument vector, when the job was started with one (no shell). */
  argv?: string[];
  /** What the job is called (`execute`'s `label`), when it was given one. */
  label?: string;
  /** Facts about the job (`execute`'s `meta`: suite, run, task, …), when given. */
  meta?: JobMeta;
  /** Leader pid, also the process group id. */
  pid: number;
  /** running, paused, ending or done. */
  state: JobState;
  /** Final status once done (`completed`, `failed`, `timeout`, `stalled`, `canceled`, `killed`). */
  status?: string;
  /** Exit code once done (`null` when the exit was not observed). */
  exit_code?: number | null;
  /** The signal that ended the leader, if any. */
  signal?: string | null;
  /** When the job started, epoch seconds. */
  started_at: number;
  /** When it ended, epoch seconds. */
  ended_at?: number;
  /** Seconds run so far (or in all, once done). */
  elapsed: number;
  /** Bytes the job wrote to stdout. */
  stdout_bytes: number;
  /** Bytes the job wrote to stderr. */
  stderr_bytes: number;
  /** Who started it: the session id and the peer address of that session. */
  started_by: { session_id: string; remote: string };
}

/** The `watch` result: server facts and every listed job. */
export interface WatchSnapshot {
  /** Server facts (version, uptime, sessions, running jobs, memory, …). */
  server: Record<string, unknown>;
  /** Every running job and every finished job still kept, oldest first. */
  jobs: ObservedJob[];
}

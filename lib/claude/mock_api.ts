/**
 * A mock of the Anthropic Messages API, enough of it for the real Claude Code CLI: point the CLI
 * at it with `ANTHROPIC_BASE_URL` and it answers, calls tools (which the CLI really runs), fails
 * with 401/403/429/529/500, cuts its stream, runs into `max_tokens` or never answers, as the
 * prompt or a script says. Tests use it to drive the real CLI offline; users use it (through
 * `ccx mock-api`) to run a whole suite with the real CLI and no credentials.
 *
 * What it serves (see CLAUDE_CLI.md): `POST /v1/messages` (any query string; unknown body fields
 * and betas are accepted), streaming (`event:` + `data:` lines) or not; any other path is 404.
 *
 * How it picks a reply, for each request: the rules of the script, in order (the first whose
 * `match` is found in the conversation's user text, and whose `times` is not used up); else a
 * `[[mock:…]]` directive in the prompt; else a small built-in answerer (`What is 2+2?` →
 * `2 + 2 = 4`, otherwise `You asked: …`). Every `[marker:…]` of the prompt is echoed at the end
 * of a text answer. After a tool call, the next request (it ends with the tool's result) gets
 * the rule's follow-up text.
 *
 * Directives (`[[mock:NAME]]` or `[[mock:NAME:ARG]]` in the prompt):
 * `answer:TEXT`, `write:PATH=CONTENT`, `bash:COMMAND`, `401`, `403`, `429` (`429:SECONDS` sets
 * `retry-after`), `529`, `500`, `cut`, `max-tokens`, `hang` (no response at all), `stall`
 * (the stream starts, then nothing), and `fail-first:N:NAME[:ARG]` (the first N requests of this
 * prompt get NAME, later ones are answered normally; counted per prompt, markers and refinements
 * ignored).
 *
 * @example
 * ```ts
 * import { MockApiServer } from "./mock_api.ts";
 * const api = MockApiServer.start({ port: 0 });
 * console.log(`ANTHROPIC_BASE_URL=${api.url}`);
 * await api.shutdown();
 * ```
 * @module
 */

import { isRecord } from "../common/json.ts";

// ---------------------------------------------------------------------------------------------
// Replies and scripts
// ---------------------------------------------------------------------------------------------

/**
 * One reply of the mock: a text answer; a tool call (answered, once the CLI sends the tool's
 * result, by `then`); an HTTP error; a stream cut in the middle; a `max_tokens` stop; a request
 * never answered (`hang`); or a stream that starts and then stalls.
 *
 * @example
 * ```ts
 * import type { MockReply } from "./mock_api.ts";
 * const r: MockReply = { type: "tool", name: "Write", input: { file_path: "a.txt", content: "x" }, then: "Done." };
 * ```
 */
export type MockReply =
  | { type: "text"; text: string }
  | { type: "tool"; name: string; input: Record<string, unknown>; then: string }
  | { type: "error"; status: number; message?: string; retryAfter?: number }
  | { type: "cut"; text?: string }
  | { type: "max_tokens"; text?: string }
  | { type: "hang" }
  | { type: "stall" };

/**
 * One rule of a script: when `match` is found in the conversation's user text (a substring,
 * case-insensitive, or `/regex/flags`), reply with `reply`, at most `times` times (default: every
 * time).
 *
 * @example
 * ```ts
 * import type { MockRule } from "./mock_api.ts";
 * const rule: MockRule = { match: "capital of France", reply: { type: "text", text: "Paris" } };
 * ```
 */
export interface MockRule {
  /** Substring (case-insensitive) or `/regex/flags`. */
  match: string;
  /** What to answer. */
  reply: MockReply;
  /** How many times the rule applies (default: always). */
  times?: number;
}

/**
 * A script: rules tried in order, and an optional default reply for requests no rule matches
 * (without one, directives and the built-in answerer decide).
 *
 * @example
 * ```ts
 * import type { MockScript } from "./mock_api.ts";
 * const s: MockScript = { rules: [{ match: "2+2", reply: { type: "text", text: "4" } }] };
 * ```
 */
export interface MockScript {
  /** Tried in order. */
  rules: MockRule[];
  /** The reply when no rule matches. */
  default?: MockReply;
}

/**
 * A script that does not have the expected shape; the message names the JSON path.
 *
 * @example
 * ```ts
 * import { MockScriptError } from "./mock_api.ts";
 * new MockScriptError("rules[0].reply.type: expected one of text, tool, …").name; // "MockScriptError"
 * ```
 */
export class MockScriptError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MockScriptError";
  }
}

const REPLY_TYPES = ["text", "tool", "error", "cut", "max_tokens", "hang", "stall"] as const;

function parseReply(v: unknown, path: string): MockReply {
  if (!isRecord(v)) throw new MockScriptError(`${path}: expected an object`);
  const type = v.type;
  const str = (key: string, required: boolean): string | undefined => {
    const x = v[key];
    if (x === undefined && !required) return undefined;
    if (typeof x !== "string") throw new MockScriptError(`${path}.${key}: expected a string`);
    return x;
  };
  switch (type) {
    case "text":
      return { type, text: str("text", true)! };
    case "tool": {
      if (!isRecord(v.input)) throw new MockScriptError(`${path}.input: expected an object`);
      return {
        type,
        name: str("name", true)!,
        input: v.input,
        then: str("then", false) ?? "Done.",
      };
    }
    case "error": {
      const status = v.status;
      if (typeof status !== "number" || !Number.isInteger(status) || status < 400 || status > 599) {
        throw new MockScriptError(`${path}.status: expected an HTTP error status (400-599)`);
      }
      const ra = v.retry_after ?? v.retryAfter;
      if (ra !== undefined && (typeof ra !== "number" || !(ra >= 0))) {
        throw new MockScriptError(`${path}.retry_after: expected seconds (a number >= 0)`);
      }
      return {
        type,
        status,
        ...(str("message", false) !== undefined ? { message: str("message", false) } : {}),
        ...(ra !== undefined ? { retryAfter: ra as number } : {}),
      };
    }
    case "cut":
    case "max_tokens": {
      const text = str("text", false);
      return text === undefined ? { type } : { type, text };
    }
    case "hang":
    case "stall":
      return { type };
  }
  throw new MockScriptError(
    `${path}.type: expected one of ${REPLY_TYPES.join(", ")}, got ${JSON.stringify(type)}`,
  );
}

/**
 * Checks a parsed script file and returns it typed; throws {@linkcode MockScriptError} naming
 * the JSON path of the first problem.
 *
 * @example
 * ```ts
 * import { parseMockScript } from "./mock_api.ts";
 * const s = parseMockScript({ rules: [{ match: "hi", reply: { type: "text", text: "hello" } }] });
 * s.rules.length; // 1
 * ```
 */
export function parseMockScript(v: unknown): MockScript {
  if (!isRecord(v)) throw new MockScriptError("script: expected an object with rules[]");
  for (const key of Object.keys(v)) {
    if (key !== "rules" && key !== "default") {
      throw new MockScriptError(`${key}: unknown key (expected rules, default)`);
    }
  }
  const rulesIn = v.rules ?? [];
  if (!Array.isArray(rulesIn)) throw new MockScriptError("rules: expected an array");
  const rules = rulesIn.map((r, i): MockRule => {
    const path = `rules[${i}]`;
    if (!isRecord(r)) throw new MockScriptError(`${path}: expected an object`);
    if (typeof r.match !== "string" || r.match === "") {
      throw new MockScriptError(`${path}.match: expected a non-empty string`);
    }
    matcher(r.match, `${path}.match`);
    const times = r.times;
    if (
      times !== undefined && (typeof times !== "number" || !Number.isInteger(times) || times < 1)
    ) {
      throw new MockScriptError(`${path}.times: expected a positive integer`);
    }
    return {
      match: r.match,
      reply: parseReply(r.reply, `${path}.reply`),
      ...(times !== undefined ? { times } : {}),
    };
  });
  return {
    rules,
    ...(v.default !== undefined ? { default: parseReply(v.default, "default") } : {}),
  };
}

/**
 * Reads and checks a script file (JSON).
 *
 * @example
 * ```ts
 * import { loadMockScript } from "./mock_api.ts";
 * const script = await loadMockScript("tests/fixtures/mock_script.json");
 * ```
 */
export async function loadMockScript(path: string): Promise<MockScript> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new MockScriptError(`${path}: cannot read it (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MockScriptError(`${path}: not JSON (${(e as Error).message})`);
  }
  try {
    return parseMockScript(json);
  } catch (e) {
    throw new MockScriptError(`${path}: ${(e as Error).message}`);
  }
}

function matcher(m: string, path = "match"): (text: string) => boolean {
  const re = m.match(/^\/(.*)\/([a-z]*)$/s);
  if (re) {
    let r: RegExp;
    try {
      r = new RegExp(re[1], re[2]);
    } catch (e) {
      throw new MockScriptError(`${path}: bad regular expression (${(e as Error).message})`);
    }
    return (t) => r.test(t);
  }
  const lower = m.toLowerCase();
  return (t) => t.toLowerCase().includes(lower);
}

// ---------------------------------------------------------------------------------------------
// Reading a request
// ---------------------------------------------------------------------------------------------

/** The conversation of a Messages API request, as the mock reads it. */
export interface MockConversation {
  /** Every text of every user message, in order (the prompt first). */
  userText: string;
  /** The prompt: the first user message's text. */
  prompt: string;
  /** The last message is a user message carrying a `tool_result`. */
  afterTool: boolean;
  /** The tool call the last `tool_result` answers (its `tool_use_id`). */
  toolUseId?: string;
}

function textOf(content: unknown): string[] {
  if (typeof content === "string") return [content];
  if (!Array.isArray(content)) return [];
  const out: string[] = [];
  for (const b of content) {
    if (isRecord(b) && b.type === "text" && typeof b.text === "string") out.push(b.text);
  }
  return out;
}

/**
 * Reads the conversation of a request body: the user's texts, and whether it ends with a tool
 * result (the CLI ran the tool the mock asked for).
 *
 * @example
 * ```ts
 * import { readConversation } from "./mock_api.ts";
 * readConversation({ messages: [{ role: "user", content: "What is 2+2?" }] }).prompt; // "What is 2+2?"
 * ```
 */
export function readConversation(body: unknown): MockConversation {
  const messages = isRecord(body) && Array.isArray(body.messages) ? body.messages : [];
  const user = messages.filter((m) => isRecord(m) && m.role === "user") as Record<
    string,
    unknown
  >[];
  const texts = user.flatMap((m) => textOf(m.content));
  // The CLI wraps context in <system-reminder> blocks; the prompt is the rest.
  const plain = texts.filter((t) => !t.trimStart().startsWith("<system-reminder>"));
  const last = messages[messages.length - 1];
  let toolUseId: string | undefined;
  if (isRecord(last) && last.role === "user" && Array.isArray(last.content)) {
    for (const b of last.content) {
      if (isRecord(b) && b.type === "tool_result") toolUseId = String(b.tool_use_id ?? "");
    }
  }
  return {
    userText: texts.join("\n"),
    prompt: plain[0] ?? texts[0] ?? "",
    afterTool: toolUseId !== undefined,
    ...(toolUseId !== undefined ? { toolUseId } : {}),
  };
}

const DIRECTIVE_RE = /\[\[mock:([a-z0-9-]+)(?::([\s\S]*?))?\]\]/g;

function directiveReply(name: string, arg: string | undefined): MockReply | undefined {
  switch (name) {
    case "answer":
      return { type: "text", text: (arg ?? "").replaceAll("\\n", "\n") };
    case "write": {
      const s = arg ?? "";
      const eq = s.indexOf("=");
      const path = eq < 0 ? s : s.slice(0, eq);
      const content = eq < 0 ? "" : s.slice(eq + 1).replaceAll("\\n", "\n");
      return {
        type: "tool",
        name: "Write",
        input: { file_path: path, content },
        then: `I created ${path}.`,
      };
    }
    case "bash":
      return {
        type: "tool",
        name: "Bash",
        input: { command: arg ?? "true", description: "Run the command" },
        then: "I ran the command.",
      };
    case "401":
    case "403":
    case "429":
    case "529":
    case "500": {
      const status = Number(name);
      const ra = arg !== undefined && arg !== "" ? Number(arg) : undefined;
      return {
        type: "error",
        status,
        ...(ra !== undefined && Number.isFinite(ra) ? { retryAfter: ra } : {}),
      };
    }
    case "cut":
      return { type: "cut" };
    case "max-tokens":
      return { type: "max_tokens" };
    case "hang":
      return { type: "hang" };
    case "stall":
      return { type: "stall" };
  }
  return undefined;
}

/** The prompt without markers and refinements: what `fail-first` counts by. */
function promptKey(prompt: string): string {
  return prompt.replace(/\[marker:[^\]\s]*\]/g, "").replace(/\n\s*IMPORTANT:[\s\S]*$/, "").trim();
}

function builtInAnswer(prompt: string): string {
  const q = prompt.replace(DIRECTIVE_RE, " ").replace(/\[[A-Za-z_][\w-]*:[^\]\n]*\]/g, " ")
    .replace(/Repeat this marker at the end of your final answer\./, " ").replace(/\s+/g, " ")
    .trim();
  const m = q.match(/(-?\d+(?:\.\d+)?)\s*([-+*/×x])\s*(-?\d+(?:\.\d+)?)/);
  if (m) {
    const a = Number(m[1]), b = Number(m[3]);
    const op = m[2] === "×" || m[2] === "x" ? "*" : m[2];
    const r = op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : a / b;
    return `${m[1]} ${op} ${m[3]} = ${Number.isInteger(r) ? r : Number(r.toFixed(4))}`;
  }
  return `You asked: ${q.slice(0, 200)}`;
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/** Options of {@linkcode MockApiServer.start}. */
export interface MockApiOptions {
  /** Port (default 0: any free port). */
  port?: number;
  /** Address (default 127.0.0.1). */
  hostname?: string;
  /** Rules that pick the replies. */
  script?: MockScript;
  /** One line per request (default: none). */
  log?: (line: string) => void;
}

/** What the mock saw of one request, for tests. */
export interface MockRequestRecord {
  /** Path and query. */
  path: string;
  /** The prompt of the conversation. */
  prompt: string;
  /** What the mock replied: the reply type, or `error 429` etc. */
  reply: string;
}

function sse(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The Messages API mock. */
export class MockApiServer {
  /** Every `/v1/messages` request so far, in order. */
  readonly requests: MockRequestRecord[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #script?: MockScript;
  #used = new Map<number, number>();
  #failCounts = new Map<string, number>();
  #closing = new AbortController();
  #log: (line: string) => void;
  #ids = 0;
  /** The tool call each tool_use id stands for, to answer its result with the `then` text. */
  #pending = new Map<string, string>();

  private constructor(opts: MockApiOptions) {
    this.#script = opts.script;
    this.#log = opts.log ?? (() => {});
    this.#server = Deno.serve({
      port: opts.port ?? 0,
      hostname: opts.hostname ?? "127.0.0.1",
      onListen: () => {},
      signal: this.#closing.signal,
    }, (req) => this.#handle(req));
  }

  /**
   * Starts the mock on `hostname:port` (default a free loopback port).
   *
   * @example
   * ```ts
   * import { MockApiServer } from "./mock_api.ts";
   * const api = MockApiServer.start({ port: 0 });
   * console.log(api.port > 0); // true
   * await api.shutdown();
   * ```
   */
  static start(opts: MockApiOptions = {}): MockApiServer {
    return new MockApiServer(opts);
  }

  /** The port it listens on. */
  get port(): number {
    return this.#server.addr.port;
  }

  /** The base URL to give the CLI as `ANTHROPIC_BASE_URL`. */
  get url(): string {
    return `http://${this.#server.addr.hostname}:${this.port}`;
  }

  /** Stops it; requests left hanging are ended. */
  async shutdown(): Promise<void> {
    this.#closing.abort();
    await this.#server.finished;
  }

  /** The reply for a conversation (exported through the server for tests and scripts). */
  choose(conv: MockConversation): MockReply {
    if (conv.afterTool) {
      const then = conv.toolUseId !== undefined ? this.#pending.get(conv.toolUseId) : undefined;
      return { type: "text", text: this.#withMarkers(then ?? "Done.", conv.prompt) };
    }
    const rules = this.#script?.rules ?? [];
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (!matcher(r.match)(conv.userText)) continue;
      const used = this.#used.get(i) ?? 0;
      if (r.times !== undefined && used >= r.times) continue;
      this.#used.set(i, used + 1);
      return this.#finish(r.reply, conv.prompt);
    }
    const directives = [...conv.prompt.matchAll(DIRECTIVE_RE)];
    const failFirst = directives.find((d) => d[1] === "fail-first");
    if (failFirst) {
      const m = (failFirst[2] ?? "").match(/^(\d+):([a-z0-9-]+)(?::([\s\S]*))?$/);
      const key = promptKey(conv.prompt);
      const n = this.#failCounts.get(key) ?? 0;
      this.#failCounts.set(key, n + 1);
      if (m && n < Number(m[1])) {
        const r = directiveReply(m[2], m[3]);
        if (r) return this.#finish(r, conv.prompt);
      }
    }
    for (const d of directives) {
      if (d[1] === "fail-first") continue;
      const r = directiveReply(d[1], d[2]);
      if (r) return this.#finish(r, conv.prompt);
    }
    if (this.#script?.default) return this.#finish(this.#script.default, conv.prompt);
    return { type: "text", text: this.#withMarkers(builtInAnswer(conv.prompt), conv.prompt) };
  }

  #finish(r: MockReply, prompt: string): MockReply {
    if (r.type === "text") return { type: "text", text: this.#withMarkers(r.text, prompt) };
    if (r.type === "tool") return { ...r, then: this.#withMarkers(r.then, prompt) };
    return r;
  }

  #withMarkers(text: string, prompt: string): string {
    const markers = [...prompt.matchAll(/\[marker:[^\]\s]+\]/g)].map((m) => m[0]);
    const missing = markers.filter((m) => !text.includes(m));
    return missing.length ? `${text}\n\n${missing.join(" ")}` : text;
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/v1/messages") {
      return new Response("not found", { status: 404 });
    }
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      return this.#error(400, "invalid_request_error", "the body is not JSON");
    }
    const conv = readConversation(body);
    const reply = this.choose(conv);
    const label = reply.type === "error" ? `error ${reply.status}` : reply.type;
    this.requests.push({ path: url.pathname + url.search, prompt: conv.prompt, reply: label });
    this.#log(`POST ${url.pathname} → ${label}`);
    const model = isRecord(body) && typeof body.model === "string" ? body.model : "claude-mock";
    const stream = isRecord(body) && body.stream === true;
    const maxTokens = isRecord(body) && typeof body.max_tokens === "number" ? body.max_tokens : 0;
    switch (reply.type) {
      case "error":
        return this.#error(
          reply.status,
          errorType(reply.status),
          reply.message ?? defaultMessage(reply.status),
          reply.retryAfter,
        );
      case "hang":
        return await this.#hang(req);
    }
    const id = `msg_mock_${++this.#ids}`;
    if (!stream) return Response.json(this.#message(id, model, reply, maxTokens));
    return this.#stream(id, model, reply, req);
  }

  #error(status: number, type: string, message: string, retryAfter?: number): Response {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
    return new Response(JSON.stringify({ type: "error", error: { type, message } }), {
      status,
      headers,
    });
  }

  /** Never answers: the response resolves only when the client goes away or the mock stops. */
  #hang(req: Request): Promise<Response> {
    return new Promise((resolve) => {
      const end = () => resolve(new Response(null, { status: 499 }));
      req.signal.addEventListener("abort", end, { once: true });
      this.#closing.signal.addEventListener("abort", end, { once: true });
    });
  }

  #toolId(then: string): string {
    const id = `toolu_mock_${++this.#ids}`;
    this.#pending.set(id, then);
    return id;
  }

  #message(id: string, model: string, reply: MockReply, maxTokens: number) {
    const usage = { input_tokens: 10, output_tokens: 10 };
    if (reply.type === "tool") {
      return {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [{
          type: "tool_use",
          id: this.#toolId(reply.then),
          name: reply.name,
          input: reply.input,
        }],
        stop_reason: "tool_use",
        stop_sequence: null,
        usage,
      };
    }
    const text = reply.type === "text"
      ? reply.text
      : ("text" in reply && reply.text) || "This answer goes on and on";
    return {
      id,
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text }],
      stop_reason: reply.type === "max_tokens" ? "max_tokens" : "end_turn",
      stop_sequence: null,
      usage: { ...usage, output_tokens: reply.type === "max_tokens" ? maxTokens : 10 },
    };
  }

  #stream(id: string, model: string, reply: MockReply, req: Request): Response {
    const enc = new TextEncoder();
    const closing = this.#closing.signal;
    const toolId = reply.type === "tool" ? this.#toolId(reply.then) : "";
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const send = (name: string, data: unknown) =>
          controller.enqueue(enc.encode(sse(name, data)));
        send("message_start", {
          type: "message_start",
          message: {
            id,
            type: "message",
            role: "assistant",
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 10, output_tokens: 1 },
          },
        });
        if (reply.type === "stall") {
          // Started, then nothing: only the client going away (or the mock stopping) ends it.
          const end = () => {
            try {
              controller.close();
            } catch { /* already closed */ }
          };
          req.signal.addEventListener("abort", end, { once: true });
          closing.addEventListener("abort", end, { once: true });
          return;
        }
        if (reply.type === "tool") {
          send("content_block_start", {
            type: "content_block_start",
            index: 0,
            content_block: { type: "tool_use", id: toolId, name: reply.name, input: {} },
          });
          const json = JSON.stringify(reply.input);
          const half = Math.floor(json.length / 2);
          for (const piece of [json.slice(0, half), json.slice(half)]) {
            send("content_block_delta", {
              type: "content_block_delta",
              index: 0,
              delta: { type: "input_json_delta", partial_json: piece },
            });
          }
          send("content_block_stop", { type: "content_block_stop", index: 0 });
          send("message_delta", {
            type: "message_delta",
            delta: { stop_reason: "tool_use", stop_sequence: null },
            usage: { output_tokens: 20 },
          });
          send("message_stop", { type: "message_stop" });
          controller.close();
          return;
        }
        const text = reply.type === "text"
          ? reply.text
          : reply.type === "cut"
          ? reply.text ?? "The beginning of an answer that"
          : (reply.type === "max_tokens" && reply.text) || "This answer goes on and on";
        send("content_block_start", {
          type: "content_block_start",
          index: 0,
          content_block: { type: "text", text: "" },
        });
        send("content_block_delta", {
          type: "content_block_delta",
          index: 0,
          delta: { type: "text_delta", text },
        });
        if (reply.type === "cut") {
          // The stream ends in the middle of the message: no block stop, no message_stop.
          controller.close();
          return;
        }
        send("content_block_stop", { type: "content_block_stop", index: 0 });
        send("message_delta", {
          type: "message_delta",
          delta: {
            stop_reason: reply.type === "max_tokens" ? "max_tokens" : "end_turn",
            stop_sequence: null,
          },
          usage: { output_tokens: 10 },
        });
        send("message_stop", { type: "message_stop" });
        controller.close();
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }
}

function errorType(status: number): string {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
  }
  return status >= 500 ? "api_error" : "invalid_request_error";
}

function defaultMessage(status: number): string {
  switch (status) {
    case 401:
      return "invalid x-api-key";
    case 403:
      return "Request not allowed";
    case 429:
      return "Number of request tokens has exceeded your per-minute rate limit";
    case 529:
      return "Overloaded";
    case 500:
      return "Internal server error";
  }
  return `mock error ${status}`;
}

/**
 * The environment that points the real Claude CLI at a mock (CLAUDE_CLI.md): the base URL, a
 * dummy key, no other traffic, `maxRetries` CLI retries (default 0, so error runs stay short),
 * no silent non-streaming fallback. Add `HOME` (a temp dir) and, as root, `IS_SANDBOX=1`.
 *
 * @example
 * ```ts
 * import { mockApiEnv } from "./mock_api.ts";
 * mockApiEnv("http://127.0.0.1:9999").ANTHROPIC_BASE_URL; // "http://127.0.0.1:9999"
 * ```
 */
export function mockApiEnv(url: string, maxRetries = 0): Record<string, string> {
  return {
    ANTHROPIC_BASE_URL: url,
    ANTHROPIC_API_KEY: "sk-ant-mock",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    CLAUDE_CODE_MAX_RETRIES: String(maxRetries),
    CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK: "1",
  };
}

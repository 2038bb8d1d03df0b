/**
 * A mock of the Anthropic Messages API, enough of it for the real Claude Code CLI: point the CLI
 * at it with `ANTHROPIC_BASE_URL` and it answers, calls tools (which the CLI really runs), fails
 * with 401/403/429/529/500, cuts its stream, runs into `max_tokens` or never answers, as the
 * prompt or a script says. Tests use it to drive the real CLI offline; users use it (through
 * `ccx mock-api`) to run a whole suite with the real CLI and no credentials.
 *
 * What it serves (see CLAUDE_CLI.md): `POST /v1/messages` (any query string; unknown body fields
 * and betas are accepted), streaming (`event:` + `data:` lines) or not; any other path is 404.
 * The reply to each request comes from `script.ts` (rules, `[[mock:…]]` directives, the built-in
 * answerer); after a tool call, the next request (it ends with the tool's result) gets the
 * rule's follow-up text. `wire.ts` reads the requests and writes the responses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MockApiServer } from "./server.ts";
 * const api = MockApiServer.start({ port: 0 }); // the CLI gets ANTHROPIC_BASE_URL=api.url
 * const res = await fetch(`${api.url}/v1/messages`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ model: "m", max_tokens: 100, messages: [{ role: "user", content: "What is 2+2?" }] }),
 * });
 * assert.deepEqual((await res.json()).content, [{ type: "text", text: "2 + 2 = 4" }]);
 * assert.equal(api.requests.length, 1);
 * await api.shutdown();
 * ```
 * @module
 */

import {
  type MockConversation,
  MockReplier,
  type MockReply,
  type MockScript,
  withMarkers,
} from "./script.ts";
import {
  defaultErrorMessage,
  errorResponse,
  errorType,
  messageResponse,
  readConversation,
  streamResponse,
} from "./wire.ts";
import { isRecord } from "../../common/json.ts";

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

/** The Messages API mock. */
export class MockApiServer {
  /** Every `/v1/messages` request so far, in order. */
  readonly requests: MockRequestRecord[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #replier: MockReplier;
  #closing = new AbortController();
  #log: (line: string) => void;
  #ids = 0;
  /** The tool call each tool_use id stands for, to answer its result with the `then` text. */
  #pending = new Map<string, string>();

  private constructor(opts: MockApiOptions) {
    this.#replier = new MockReplier(opts.script);
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
   * import assert from "node:assert/strict";
   * import { MockApiServer } from "./server.ts";
   * const api = MockApiServer.start({ port: 0 });
   * assert.ok(api.port > 0);
   * assert.equal(api.url, `http://127.0.0.1:${api.port}`);
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
      return { type: "text", text: withMarkers(then ?? "Done.", conv.prompt) };
    }
    return this.#replier.choose(conv);
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
      return errorResponse(400, "invalid_request_error", "the body is not JSON");
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
        return errorResponse(
          reply.status,
          errorType(reply.status),
          reply.message ?? defaultErrorMessage(reply.status),
          reply.retryAfter,
        );
      case "hang":
        return await this.#hang(req);
    }
    const id = `msg_mock_${++this.#ids}`;
    const toolId = reply.type === "tool" ? this.#toolId(reply.then) : "";
    if (!stream) return messageResponse(id, model, reply, maxTokens, toolId);
    return streamResponse(id, model, reply, toolId, [req.signal, this.#closing.signal]);
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
}

/**
 * The environment that points the real Claude CLI at a mock (CLAUDE_CLI.md): the base URL, a
 * dummy key, no other traffic, `maxRetries` CLI retries (default 0, so error runs stay short),
 * no silent non-streaming fallback. Add `HOME` (a temp dir) and, as root, `IS_SANDBOX=1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mockApiEnv } from "./server.ts";
 * const env = mockApiEnv("http://127.0.0.1:9999");
 * assert.equal(env.ANTHROPIC_BASE_URL, "http://127.0.0.1:9999");
 * assert.equal(env.CLAUDE_CODE_MAX_RETRIES, "0");
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

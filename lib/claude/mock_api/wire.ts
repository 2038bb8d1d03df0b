/**
 * The mock's side of the Anthropic Messages API wire format: reading a request's conversation,
 * and answering with a message as JSON or as the server-sent events of a streamed message
 * (`message_start`, content block start/delta/stop, `message_delta`, `message_stop`), or with
 * the API's error body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { messageResponse, readConversation } from "./wire.ts";
 * const conv = readConversation({ messages: [{ role: "user", content: "What is 2+2?" }] });
 * const res = messageResponse("msg_1", "claude-mock", { type: "text", text: "4" }, 100, "");
 * assert.equal(conv.prompt, "What is 2+2?");
 * assert.deepEqual((await res.json()).content, [{ type: "text", text: "4" }]);
 * ```
 * @module
 */

import type { MockConversation, MockReply } from "./script.ts";
import { isRecord } from "../../common/json.ts";

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
 * import assert from "node:assert/strict";
 * import { readConversation } from "./wire.ts";
 * const conv = readConversation({ messages: [{ role: "user", content: "What is 2+2?" }] });
 * assert.equal(conv.prompt, "What is 2+2?");
 * assert.equal(conv.afterTool, false);
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

function sse(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * An API error: HTTP `status` with the API's JSON error body (`{"type": "error", "error":
 * {type, message}}`) and a `retry-after` header when `retryAfter` is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorResponse } from "./wire.ts";
 * const res = errorResponse(429, "rate_limit_error", "slow down", 30);
 * assert.equal(res.status, 429);
 * assert.equal(res.headers.get("retry-after"), "30");
 * assert.equal((await res.json()).error.type, "rate_limit_error");
 * ```
 */
export function errorResponse(
  status: number,
  type: string,
  message: string,
  retryAfter?: number,
): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
  return new Response(JSON.stringify({ type: "error", error: { type, message } }), {
    status,
    headers,
  });
}

/**
 * A whole message as JSON (a request without `stream: true`): the text of a text, cut or
 * `max_tokens` reply (its `stop_reason` and usage say which), or the tool call of a tool reply
 * under the id `toolId`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { messageResponse } from "./wire.ts";
 * const res = messageResponse("msg_1", "claude-mock", { type: "max_tokens" }, 100, "");
 * assert.equal((await res.json()).stop_reason, "max_tokens");
 * ```
 */
export function messageResponse(
  id: string,
  model: string,
  reply: MockReply,
  maxTokens: number,
  toolId: string,
): Response {
  const usage = { input_tokens: 10, output_tokens: 10 };
  if (reply.type === "tool") {
    return Response.json({
      id,
      type: "message",
      role: "assistant",
      model,
      content: [{
        type: "tool_use",
        id: toolId,
        name: reply.name,
        input: reply.input,
      }],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage,
    });
  }
  const text = reply.type === "text"
    ? reply.text
    : ("text" in reply && reply.text) || "This answer goes on and on";
  return Response.json({
    id,
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text }],
    stop_reason: reply.type === "max_tokens" ? "max_tokens" : "end_turn",
    stop_sequence: null,
    usage: { ...usage, output_tokens: reply.type === "max_tokens" ? maxTokens : 10 },
  });
}

/**
 * A streamed message (a request with `stream: true`) as server-sent events: a text answer in one
 * delta; a tool call (id `toolId`) with its input JSON in two pieces; a `cut` stream that ends
 * in the middle of the message; or a `stall` that starts and then sends nothing until one of
 * `ends` aborts (the client going away, the mock stopping).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { streamResponse } from "./wire.ts";
 * const res = streamResponse("msg_1", "claude-mock", { type: "text", text: "4" }, "", []);
 * const text = await res.text();
 * assert.ok(text.startsWith("event: message_start\n"));
 * assert.ok(text.includes("event: message_stop\n"));
 * ```
 */
export function streamResponse(
  id: string,
  model: string,
  reply: MockReply,
  toolId: string,
  ends: readonly AbortSignal[],
): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      const send = (name: string, data: unknown) => controller.enqueue(enc.encode(sse(name, data)));
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
        for (const s of ends) s.addEventListener("abort", end, { once: true });
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

/**
 * The API's error `type` for an HTTP status (`authentication_error` for 401, `rate_limit_error`
 * for 429, `overloaded_error` for 529, `api_error` for other 5xx, …).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorType } from "./wire.ts";
 * assert.equal(errorType(529), "overloaded_error");
 * assert.equal(errorType(429), "rate_limit_error");
 * ```
 */
export function errorType(status: number): string {
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

/**
 * The error message the mock sends for `status` when the reply gives none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultErrorMessage } from "./wire.ts";
 * assert.equal(defaultErrorMessage(401), "invalid x-api-key");
 * ```
 */
export function defaultErrorMessage(status: number): string {
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

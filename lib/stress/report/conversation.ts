/**
 * A task's conversation, read back from its saved output file (`writeOutputFile`: header
 * lines, a line of 80 `-`, then what the task printed, then `----- stderr -----` and its
 * stderr): for Claude's stream-json, the session line, what the model said, each tool call and
 * its result, the CLI's retries and errors, and the final result, as the live page shows a
 * job's conversation. The HTML report shows it under each task.
 *
 * Every text is bounded ({@linkcode MAX_ITEM_CHARS} a message, {@linkcode MAX_ITEMS} a task),
 * so a task that printed megabytes does not make a report of megabytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { conversationOf } from "./conversation.ts";
 * const items = conversationOf(
 *   '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}\n' +
 *     '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"a.txt"}]}}\n' +
 *     '{"type":"result","subtype":"success","is_error":false,"result":"Done.","num_turns":2}\n',
 * );
 * assert.deepEqual(items.map((i) => i.kind), ["tool-call", "tool-result", "result"]);
 * ```
 * @module
 */

import { ClaudeStreamParser, looksLikeStreamJson } from "../../claude/stream.ts";
import { stripMarkerTags } from "../../verdict/answer.ts";

/** One entry of a conversation. */
export interface ConversationItem {
  /**
   * `system` (session start, retries), `assistant` (what the model said), `tool-call`,
   * `tool-result`, `error` (the CLI's own error text), `result` (the final answer), `stderr`,
   * `output` (plain, non-JSON lines).
   */
  kind:
    | "system"
    | "assistant"
    | "tool-call"
    | "tool-result"
    | "error"
    | "result"
    | "stderr"
    | "output";
  /** Who or what, in a few words: `tool call · Bash`, `result · success · 2 turns`. */
  who: string;
  /** The text, bounded. */
  text: string;
  /** A failed tool result, or a result that is an error. */
  isError?: boolean;
}

/** Longest text kept of one item (characters). */
export const MAX_ITEM_CHARS = 4000;

/** Most items kept of one task (the first ones and the last ones, with a note between). */
export const MAX_ITEMS = 400;

/** The separator line between an output file's header and the output. */
const HEADER_END = "\n" + "-".repeat(80) + "\n";

/** The marker between stdout and stderr in an output file. */
const STDERR_MARK = "\n----- stderr -----\n";

function bounded(text: string, max = MAX_ITEM_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

function inputText(input: Record<string, unknown>): string {
  // The usual one-field inputs read better bare: a command, a path, a pattern.
  const keys = Object.keys(input);
  if (keys.length === 1 && typeof input[keys[0]] === "string") return input[keys[0]] as string;
  return JSON.stringify(input, null, 2);
}

/**
 * The conversation in a task's output (stdout and, when given, stderr). For output that is not
 * Claude's stream-json, one `output` item with the text (and one `stderr` item).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { conversationOf } from "./conversation.ts";
 * assert.deepEqual(conversationOf("hello\n"), [{ kind: "output", who: "output", text: "hello" }]);
 * ```
 */
export function conversationOf(stdout: string, stderr = ""): ConversationItem[] {
  const items: ConversationItem[] = [];
  if (!looksLikeStreamJson(stdout)) {
    if (stdout.trim() !== "") {
      items.push({ kind: "output", who: "output", text: bounded(stdout.trimEnd()) });
    }
  } else {
    const parser = new ClaudeStreamParser();
    const names = new Map<string, string>(); // tool_use id → tool name
    for (const ev of [...parser.push(stdout), ...parser.end()]) {
      switch (ev.type) {
        case "system":
          if (ev.init) {
            const i = ev.init;
            const bits = [
              i.version ? `Claude Code ${i.version}` : "",
              i.model ? `model ${i.model}` : "",
              `${i.tools.length} tools`,
              i.permissionMode ?? "",
              i.cwd ? `cwd ${i.cwd}` : "",
            ].filter((b) => b !== "");
            items.push({ kind: "system", who: "session", text: bits.join(" · ") });
          } else if (ev.apiRetry) {
            const r = ev.apiRetry;
            items.push({
              kind: "system",
              who: "api retry",
              text: `attempt ${r.attempt}${r.maxRetries ? ` of ${r.maxRetries}` : ""}: ` +
                `${r.error ?? "error"}${r.errorStatus !== null ? ` (HTTP ${r.errorStatus})` : ""}`,
            });
          } else {
            items.push({ kind: "system", who: "system", text: ev.subtype || "(no subtype)" });
          }
          break;
        case "assistant":
          for (const t of ev.text) {
            if (t.trim() === "") continue;
            items.push(
              ev.synthetic || ev.error
                ? { kind: "error", who: "Claude Code error", text: bounded(t), isError: true }
                : { kind: "assistant", who: "assistant", text: bounded(stripMarkerTags(t)) },
            );
          }
          for (const u of ev.toolUses) {
            names.set(u.id, u.name);
            items.push({
              kind: "tool-call",
              who: `tool call · ${u.name}`,
              text: bounded(inputText(u.input)),
            });
          }
          break;
        case "user":
          for (const r of ev.toolResults) {
            const name = names.get(r.toolUseId);
            items.push({
              kind: "tool-result",
              who: `tool result${name ? ` · ${name}` : ""}${r.isError ? " · error" : ""}`,
              text: bounded(r.content),
              ...(r.isError ? { isError: true } : {}),
            });
          }
          break;
        case "result": {
          const r = ev.result;
          const bad = r.isError || r.subtype !== "success";
          const bits = [r.subtype || "result"];
          if (r.numTurns !== undefined) {
            bits.push(`${r.numTurns} turn${r.numTurns === 1 ? "" : "s"}`);
          }
          if (r.costUsd !== undefined) bits.push(`$${r.costUsd.toFixed(4)}`);
          if (r.durationMs !== undefined) bits.push(`${(r.durationMs / 1000).toFixed(1)} s`);
          const text = r.text ?? r.errors.join("\n");
          items.push({
            kind: "result",
            who: `result · ${bits.join(" · ")}`,
            text: bounded(bad ? text : stripMarkerTags(text)),
            ...(bad ? { isError: true } : {}),
          });
          break;
        }
        case "unknown":
          if (ev.raw === undefined && ev.line.trim() !== "") {
            items.push({ kind: "output", who: "output", text: bounded(ev.line) });
          }
          break;
      }
    }
  }
  if (stderr.trim() !== "") {
    items.push({ kind: "stderr", who: "stderr", text: bounded(stderr.trimEnd()) });
  }
  if (items.length <= MAX_ITEMS) return items;
  const head = items.slice(0, MAX_ITEMS / 2);
  const tail = items.slice(items.length - MAX_ITEMS / 2);
  const skipped = items.length - head.length - tail.length;
  return [
    ...head,
    { kind: "system", who: "…", text: `${skipped} entries not shown (see the output file)` },
    ...tail,
  ];
}

/**
 * The stdout and stderr of a saved output file (see `writeOutputFile`): what follows the
 * header's line of dashes, split at `----- stderr -----`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitOutputFile } from "./conversation.ts";
 * assert.deepEqual(splitOutputFile("Task: a - a\n" + "-".repeat(80) + "\nhi\n"), { stdout: "hi\n", stderr: "" });
 * ```
 */
export function splitOutputFile(text: string): { stdout: string; stderr: string } {
  const h = text.indexOf(HEADER_END);
  const body = h < 0 ? text : text.slice(h + HEADER_END.length);
  const e = body.lastIndexOf(STDERR_MARK);
  return e < 0
    ? { stdout: body, stderr: "" }
    : { stdout: body.slice(0, e), stderr: body.slice(e + STDERR_MARK.length) };
}

/**
 * Reads the conversation of a task from its output file; `undefined` when the file cannot be
 * read (not saved, moved, deleted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readConversation } from "./conversation.ts";
 * assert.equal(await readConversation("/nonexistent.txt"), undefined);
 * ```
 */
export async function readConversation(path: string): Promise<ConversationItem[] | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  const { stdout, stderr } = splitOutputFile(text);
  return conversationOf(stdout, stderr);
}

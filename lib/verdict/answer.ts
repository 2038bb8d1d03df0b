/**
 * What one run said, for the reports: the model's final answer, the tail of
 * stderr, and, when the output is Claude's stream-json, the model, turns,
 * tokens and cost from its `system`/`result` lines (parsed by `stream.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFacts } from "./answer.ts";
 * const out = '{"type":"system","subtype":"init","model":"claude-haiku","tools":[]}\n' +
 *   '{"type":"result","subtype":"success","is_error":false,"result":"4","num_turns":1,' +
 *   '"total_cost_usd":0.002,"usage":{"input_tokens":10,"output_tokens":3}}\n';
 * assert.deepEqual(runFacts(out, ""), {
 *   answer: "4", model: "claude-haiku", turns: 1, costUsd: 0.002,
 *   tokens: { input: 10, output: 3, cacheRead: 0, cacheCreation: 0 },
 * });
 * ```
 * @module
 */

import { ClaudeStreamParser, looksLikeStreamJson } from "../claude/stream.ts";
import { isRecord } from "../common/json.ts";

/**
 * `text` without its `[marker:…]` tags (and the blanks that set them off), as reports show an
 * answer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stripMarkerTags } from "./answer.ts";
 * assert.equal(stripMarkerTags("2 + 2 = 4\n\n[marker:MATH_20260101_120000]"), "2 + 2 = 4");
 * ```
 */
export function stripMarkerTags(text: string): string {
  if (!/\[marker:/i.test(text)) return text;
  return text.replace(
    /([ \t]*)\[marker:[^\]\n]*\]([ \t]*)/gi,
    (_m, before, after) => before && after ? " " : "",
  ).trimEnd();
}

/** Tokens a Claude run used (`usage` of its result line). */
export interface TokenCounts {
  /** `input_tokens`. */
  input: number;
  /** `output_tokens`. */
  output: number;
  /** `cache_read_input_tokens`. */
  cacheRead: number;
  /** `cache_creation_input_tokens`. */
  cacheCreation: number;
}

/** The facts {@linkcode runFacts} finds. */
export interface RunFacts {
  /** The final answer: the result text (or last assistant text); plain output as is. */
  answer?: string;
  /** The last lines of stderr, when there was any. */
  stderrTail?: string;
  /** The model the CLI reported. */
  model?: string;
  /** `num_turns`. */
  turns?: number;
  /** Token counts. */
  tokens?: TokenCounts;
  /** `total_cost_usd`. */
  costUsd?: number;
  /** The Claude Code version the CLI reported (`claude_code_version` of its `init` line). */
  cliVersion?: string;
}

/** Longest answer kept (characters); the rest is cut with a note. */
export const MAX_ANSWER_CHARS = 64 * 1024;

/**
 * The last `lines` lines of `text` (at most `chars` characters), or `undefined`
 * for blank text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tail } from "./answer.ts";
 * assert.equal(tail("a\nb\nc\n", 2), "b\nc");
 * assert.equal(tail("\n"), undefined);
 * ```
 */
export function tail(text: string, lines = 20, chars = 4000): string | undefined {
  const t = text.trimEnd();
  if (t.trim() === "") return undefined;
  let out = t.split("\n").slice(-lines).join("\n");
  if (out.length > chars) out = "…" + out.slice(out.length - chars + 1);
  return out;
}

function num(x: unknown): number | undefined {
  return typeof x === "number" && Number.isFinite(x) ? x : undefined;
}

/**
 * The facts of one run from its stdout and stderr.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFacts } from "./answer.ts";
 * assert.deepEqual(runFacts("hello\n", "warning: x\n"), { answer: "hello", stderrTail: "warning: x" });
 * ```
 */
export function runFacts(stdout: string, stderr: string): RunFacts {
  const facts: RunFacts = {};
  const st = tail(stderr);
  if (st !== undefined) facts.stderrTail = st;
  let answer: string | undefined;
  if (looksLikeStreamJson(stdout)) {
    const p = new ClaudeStreamParser();
    let usage: Record<string, unknown> | undefined;
    for (const ev of [...p.push(stdout), ...p.end()]) {
      if (ev.type === "result" && isRecord(ev.raw.usage)) usage = ev.raw.usage;
    }
    const t = p.transcript();
    answer = t.result?.text ?? t.assistantText[t.assistantText.length - 1];
    if (t.init?.model) facts.model = t.init.model;
    if (t.init?.version) facts.cliVersion = t.init.version;
    if (t.result?.numTurns !== undefined) facts.turns = t.result.numTurns;
    if (t.result?.costUsd !== undefined) facts.costUsd = t.result.costUsd;
    if (usage) {
      facts.tokens = {
        input: num(usage.input_tokens) ?? 0,
        output: num(usage.output_tokens) ?? 0,
        cacheRead: num(usage.cache_read_input_tokens) ?? 0,
        cacheCreation: num(usage.cache_creation_input_tokens) ?? 0,
      };
    }
  } else {
    answer = stdout.trimEnd();
  }
  // The `[marker:…]` a task's prompt carries and the answer echoes is the harness's, not the
  // model's answer: reports show the answer without it.
  if (answer !== undefined) answer = stripMarkerTags(answer);
  if (answer !== undefined && answer.trim() !== "") {
    facts.answer = answer.length > MAX_ANSWER_CHARS
      ? answer.slice(0, MAX_ANSWER_CHARS) + `\n… (${answer.length - MAX_ANSWER_CHARS} more chars)`
      : answer;
  }
  return facts;
}

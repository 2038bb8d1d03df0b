/**
 * The mock's script language: the replies it can give ({@linkcode MockReply}), the rules of a
 * script file and their checks, the `[[mock:…]]` directives a prompt can carry, and the
 * {@linkcode MockReplier} that picks the reply for each request.
 *
 * How a reply is picked, for each request: the rules of the script, in order (the first whose
 * `match` is found in the conversation's user text, and whose `times` is not used up); else a
 * `[[mock:…]]` directive in the prompt; else the script's default; else a small built-in answerer
 * (`What is 2+2?` → `2 + 2 = 4`, otherwise `You asked: …`). Every `[marker:…]` of the prompt is
 * echoed at the end of a text answer.
 *
 * Directives (`[[mock:NAME]]` or `[[mock:NAME:ARG]]` in the prompt):
 * `answer:TEXT`, `write:PATH=CONTENT`, `bash:COMMAND`, `401`, `403`, `429` (`429:SECONDS` sets
 * `retry-after`), `529`, `500`, `cut`, `max-tokens`, `hang` (no response at all), `stall`
 * (the stream starts, then nothing), and `fail-first:N:NAME[:ARG]` (the first N requests of this
 * prompt get NAME, later ones are answered normally; counted per prompt, markers and refinements
 * ignored).
 *
 * A ccx rubric judge's prompt ({@linkcode isJudgePrompt}) is answered as a judge: by a rule (a
 * `judge` reply gives the verdict JSON, or none), else by a `judge` directive found in it
 * (`[[mock:judge:pass:REASON]]`, `[[mock:judge:fail:REASON]]`, `[[mock:judge:none]]` for an
 * answer without a verdict, `[[mock:judge:if:TEXT]]` to pass when the judged answer holds TEXT),
 * usually carried there by the task's own request; else with `pass`. Its other directives are
 * the task's, quoted, and are ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MockReplier, parseMockScript } from "./script.ts";
 * const replier = new MockReplier(
 *   parseMockScript({ rules: [{ match: "capital of France", reply: { type: "text", text: "Paris" } }] }),
 * );
 * const conv = { userText: "What is the capital of France?", prompt: "What is the capital of France?", afterTool: false };
 * assert.deepEqual(replier.choose(conv), { type: "text", text: "Paris" });
 * ```
 * @module
 */

import {
  asRecord,
  joinPath,
  JsonShapeError,
  optArray,
  optEnum,
  optNumber,
  optString,
  readEnum,
  readNumber,
  readRecord,
  readString,
} from "../../common/json.ts";

/**
 * One reply of the mock: a text answer; a tool call (answered, once the CLI sends the tool's
 * result, by `then`); an HTTP error; a stream cut in the middle; a `max_tokens` stop; a request
 * never answered (`hang`); or a stream that starts and then stalls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MockReplier, type MockReply, parseMockScript } from "./script.ts";
 * const r: MockReply = { type: "tool", name: "Write", input: { file_path: "a.txt", content: "x" }, then: "Done." };
 * const replier = new MockReplier(parseMockScript({ rules: [{ match: "write", reply: r }] }));
 * assert.equal(replier.choose({ userText: "write a.txt", prompt: "write a.txt", afterTool: false }).type, "tool");
 * ```
 */
export type MockReply =
  | { type: "text"; text: string }
  | { type: "tool"; name: string; input: Record<string, unknown>; then: string }
  | { type: "error"; status: number; message?: string; retryAfter?: number }
  | { type: "cut"; text?: string }
  | { type: "max_tokens"; text?: string }
  | { type: "hang" }
  | { type: "stall" }
  | MockJudgeReply;

/**
 * A judge's answer to a ccx rubric prompt (see {@linkcode isJudgePrompt}): the JSON object
 * `{"verdict", "reason"}` a judge must give, or, for `verdict: "none"`, an answer without one.
 * With `if` (a substring, case-insensitive, or `/regex/flags`) the verdict is decided on the
 * task's answer shown to the judge: `pass` when it matches, else `fail`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MockJudgeReply, parseMockScript } from "./script.ts";
 * const r: MockJudgeReply = { type: "judge", if: "2 + 2 = 4", reason: "the answer says 4" };
 * assert.equal(parseMockScript({ rules: [{ match: "[ccx rubric judge]", reply: r }] }).rules.length, 1);
 * ```
 */
export interface MockJudgeReply {
  /** A judge's reply. */
  type: "judge";
  /** The verdict (default `pass`; ignored with `if`); `none`: an answer without a verdict. */
  verdict?: "pass" | "fail" | "none";
  /** Decide on the answer: `pass` when it holds this text (or matches `/regex/`). */
  if?: string;
  /** The reason given (default: one saying what the mock decided on). */
  reason?: string;
}

/**
 * One rule of a script: when `match` is found in the conversation's user text (a substring,
 * case-insensitive, or `/regex/flags`), reply with `reply`, at most `times` times (default: every
 * time).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MockRule, parseMockScript } from "./script.ts";
 * const rule: MockRule = { match: "capital of France", reply: { type: "text", text: "Paris" } };
 * assert.equal(parseMockScript({ rules: [rule] }).rules.length, 1);
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
 * import assert from "node:assert/strict";
 * import { MockReplier, type MockScript } from "./script.ts";
 * const s: MockScript = { rules: [{ match: "2+2", reply: { type: "text", text: "4" } }] };
 * const conv = { userText: "What is 2+2?", prompt: "What is 2+2?", afterTool: false };
 * assert.deepEqual(new MockReplier(s).choose(conv), { type: "text", text: "4" });
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
 * import assert from "node:assert/strict";
 * import { MockScriptError, parseMockScript } from "./script.ts";
 * assert.throws(() => parseMockScript({ rules: [{ match: "x", reply: { type: "poem" } }] }), MockScriptError);
 * assert.equal(new MockScriptError("rules[0].reply.type: …").name, "MockScriptError");
 * ```
 */
export class MockScriptError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MockScriptError";
  }
}

const REPLY_TYPES = [
  "text",
  "tool",
  "error",
  "cut",
  "max_tokens",
  "hang",
  "stall",
  "judge",
] as const;

const VERDICTS = ["pass", "fail", "none"] as const;

function parseReply(raw: unknown, path: string): MockReply {
  const v = asRecord(raw, path);
  const type = readEnum(v, "type", path, REPLY_TYPES);
  switch (type) {
    case "text":
      return { type, text: readString(v, "text", path) };
    case "tool":
      return {
        type,
        name: readString(v, "name", path),
        input: readRecord(v, "input", path),
        then: optString(v, "then", path) ?? "Done.",
      };
    case "error": {
      const status = readNumber(v, "status", path, { integer: true, min: 400, max: 599 });
      // `retryAfter` is the older spelling; `null` for `retry_after` falls back to it.
      const raKey = v.retry_after !== undefined && v.retry_after !== null
        ? "retry_after"
        : "retryAfter";
      const ra = optNumber(v, raKey, path, { min: 0, unit: "seconds" });
      const message = optString(v, "message", path);
      return {
        type,
        status,
        ...(message !== undefined ? { message } : {}),
        ...(ra !== undefined ? { retryAfter: ra } : {}),
      };
    }
    case "cut":
    case "max_tokens": {
      const text = optString(v, "text", path);
      return text === undefined ? { type } : { type, text };
    }
    case "hang":
    case "stall":
      return { type };
    case "judge": {
      const verdict = optEnum(v, "verdict", path, VERDICTS);
      const cond = optString(v, "if", path);
      if (cond !== undefined) matcher(cond, joinPath(path, "if"));
      const reason = optString(v, "reason", path);
      return {
        type,
        ...(verdict !== undefined ? { verdict } : {}),
        ...(cond !== undefined ? { if: cond } : {}),
        ...(reason !== undefined ? { reason } : {}),
      };
    }
  }
}

/**
 * Checks a parsed script file and returns it typed; throws {@linkcode MockScriptError} naming
 * the JSON path of the first problem.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMockScript } from "./script.ts";
 * const s = parseMockScript({ rules: [{ match: "hi", reply: { type: "text", text: "hello" } }] });
 * assert.equal(s.rules.length, 1);
 * assert.throws(() => parseMockScript({ rules: [{ match: "hi", times: 0 }] }), {
 *   message: "rules[0].times: expected a positive integer, got 0",
 * });
 * ```
 */
export function parseMockScript(v: unknown): MockScript {
  try {
    return readScript(v);
  } catch (e) {
    if (e instanceof JsonShapeError) throw new MockScriptError(e.message);
    throw e;
  }
}

function readScript(raw: unknown): MockScript {
  const v = asRecord(raw, "");
  for (const key of Object.keys(v)) {
    if (key !== "rules" && key !== "default") {
      throw new JsonShapeError(joinPath("", key), "unknown key (expected rules, default)");
    }
  }
  const rulesIn = optArray(v, "rules", "", { nullIsAbsent: true }) ?? [];
  const rules = rulesIn.map((item, i): MockRule => {
    const path = joinPath("rules", i);
    const r = asRecord(item, path);
    const match = readString(r, "match", path, { nonEmpty: true });
    matcher(match, joinPath(path, "match"));
    const times = optNumber(r, "times", path, { integer: true, min: 1 });
    return {
      match,
      reply: parseReply(r.reply, joinPath(path, "reply")),
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
 * import assert from "node:assert/strict";
 * import { loadMockScript } from "./script.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".json" });
 * Deno.writeTextFileSync(path, '{"rules": [{"match": "hi", "reply": {"type": "text", "text": "hello"}}]}');
 * assert.equal((await loadMockScript(path)).rules.length, 1);
 * Deno.removeSync(path);
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

/**
 * The test of a rule's `match`: a case-insensitive substring, or `/regex/flags`. Throws
 * {@linkcode MockScriptError} naming `path` for a bad regular expression.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matcher } from "./script.ts";
 * assert.equal(matcher("paris")("Is it PARIS?"), true);
 * assert.equal(matcher("/^what/i")("What is 2+2?"), true);
 * assert.equal(matcher("/^what/")("What is 2+2?"), false);
 * ```
 */
export function matcher(m: string, path = "match"): (text: string) => boolean {
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

/**
 * The first line of a ccx judge's prompt (`JUDGE_PROMPT_TAG` of `lib/verdict/rubric.ts`, which
 * the mock cannot import: it sits below the verdict layer; a test keeps the two the same).
 */
const JUDGE_TAG = "[ccx rubric judge]";

/**
 * Whether a prompt is a ccx rubric judge's. In one, the task's request and answer are quoted
 * material: of their `[[mock:…]]` directives only `judge` ones count, and markers are not
 * echoed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isJudgePrompt } from "./script.ts";
 * assert.equal(isJudgePrompt("[ccx rubric judge]\nYou are grading…"), true);
 * assert.equal(isJudgePrompt("What is 2+2?"), false);
 * ```
 */
export function isJudgePrompt(prompt: string): boolean {
  return prompt.startsWith(JUDGE_TAG);
}

/** The task's answer quoted in a judge prompt (between its fence lines), or `""`. */
function judgedAnswer(prompt: string): string {
  const m = prompt.match(
    /^----- answer \(([^)\n]+)\) -----\n([\s\S]*?)\n----- end of answer \(\1\) -----$/m,
  );
  return m ? m[2] : "";
}

/** The text a judge reply stands for, decided (for `if`) on the prompt's answer. */
function judgeText(r: MockJudgeReply, prompt: string): string {
  if (r.verdict === "none" && r.if === undefined) {
    return r.reason ?? "I looked at the work but cannot say whether the statements hold.";
  }
  let verdict = r.verdict ?? "pass";
  let reason = r.reason;
  if (r.if !== undefined) {
    const hit = matcher(r.if)(judgedAnswer(prompt));
    verdict = hit ? "pass" : "fail";
    reason ??= `the answer ${hit ? "contains" : "does not contain"} ${JSON.stringify(r.if)}`;
  }
  reason ??= `the mock judge says ${verdict}`;
  return JSON.stringify({ verdict, reason });
}

/** A `[[mock:judge:…]]` directive's reply: `pass[:REASON]`, `fail[:REASON]`, `none`, `if:TEXT`. */
function judgeDirective(arg: string | undefined): MockJudgeReply | undefined {
  const m = (arg ?? "").match(/^(pass|fail|none|if)(?::([\s\S]*))?$/);
  if (!m) return undefined;
  if (m[1] === "if") return { type: "judge", if: m[2] ?? "" };
  return {
    type: "judge",
    verdict: m[1] as "pass" | "fail" | "none",
    ...(m[2] ? { reason: m[2] } : {}),
  };
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

/**
 * `text` with every `[marker:…]` of `prompt` that it does not already hold appended, so a
 * task's marker check passes on the mock's answers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withMarkers } from "./script.ts";
 * assert.equal(withMarkers("4", "[marker:abc] What is 2+2?"), "4\n\n[marker:abc]");
 * ```
 */
export function withMarkers(text: string, prompt: string): string {
  const markers = [...prompt.matchAll(/\[marker:[^\]\s]+\]/g)].map((m) => m[0]);
  const missing = markers.filter((m) => !text.includes(m));
  return missing.length ? `${text}\n\n${missing.join(" ")}` : text;
}

/**
 * Picks the reply to each new request (not a tool result: the server answers those itself)
 * from a script, the prompt's directives and the built-in answerer, keeping count of each rule's
 * uses and of each prompt's `fail-first` requests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MockReplier } from "./script.ts";
 * const replier = new MockReplier();
 * const conv = { userText: "[[mock:fail-first:1:429]] hi", prompt: "[[mock:fail-first:1:429]] hi", afterTool: false };
 * assert.equal(replier.choose(conv).type, "error");
 * assert.equal(replier.choose(conv).type, "text");
 * ```
 */
export class MockReplier {
  #script?: MockScript;
  #used = new Map<number, number>();
  #failCounts = new Map<string, number>();

  /** A replier for `script` (none: directives and the built-in answerer only). */
  constructor(script?: MockScript) {
    this.#script = script;
  }

  /** The reply for a conversation that does not end with a tool result. */
  choose(conv: MockConversation): MockReply {
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
    if (isJudgePrompt(conv.prompt)) {
      // The request and answer in it are material to judge: only `judge` directives count.
      const d = directives.find((d) => d[1] === "judge" && judgeDirective(d[2]));
      return this.#finish(judgeDirective(d?.[2]) ?? { type: "judge" }, conv.prompt);
    }
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
    return { type: "text", text: withMarkers(builtInAnswer(conv.prompt), conv.prompt) };
  }

  #finish(r: MockReply, prompt: string): MockReply {
    if (r.type === "judge") return { type: "text", text: judgeText(r, prompt) };
    if (r.type === "text") return { type: "text", text: withMarkers(r.text, prompt) };
    if (r.type === "tool") return { ...r, then: withMarkers(r.then, prompt) };
    return r;
  }
}

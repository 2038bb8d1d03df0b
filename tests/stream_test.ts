/** The stream-json parser (lib/claude/stream.ts): events, transcripts, modelText. */

import assert from "node:assert/strict";
import {
  ClaudeStreamParser,
  looksLikeStreamJson,
  modelText,
  parseClaudeOutput,
} from "../lib/claude/stream.ts";
import { assistantLine, resultLine, SID, STREAM } from "./_util/stream_json.ts";

Deno.test("ClaudeStreamParser reads the init line", () => {
  const p = new ClaudeStreamParser();
  const [ev] = p.push(STREAM.split("\n")[0] + "\n");
  assert.equal(ev.type, "system");
  const t = p.transcript();
  assert.deepEqual(t.init, {
    sessionId: SID,
    model: "claude-sonnet-4-5-20250929",
    cwd: "/tmp/work",
    tools: ["Bash", "Read", "Write"],
    permissionMode: "bypassPermissions",
    version: "2.1.197",
  });
});

Deno.test("ClaudeStreamParser collects assistant text, tool uses, tool results and the result", () => {
  const p = new ClaudeStreamParser();
  const events = p.push(STREAM);
  assert.deepEqual(events.map((e) => e.type), [
    "system",
    "assistant",
    "assistant",
    "user",
    "assistant",
    "result",
  ]);
  const t = p.transcript();
  assert.deepEqual(t.assistantText, ["I'll create hello.txt · ×", "Done: Paris"]);
  assert.deepEqual(t.toolUses, [{
    id: "toolu_01X",
    name: "Write",
    input: { file_path: "/tmp/work/hello.txt", content: "hi" },
  }]);
  assert.deepEqual(t.toolResults, [{
    toolUseId: "toolu_01X",
    content: "File created successfully at: /tmp/work/hello.txt",
    isError: false,
  }]);
  assert.deepEqual(t.result, {
    subtype: "success",
    isError: false,
    text: "Done: Paris",
    numTurns: 2,
    costUsd: 0.0414,
    durationMs: 4242,
    sessionId: SID,
    apiErrorStatus: undefined,
    apiErrorType: undefined,
    terminalReason: undefined,
    errors: [],
    startupFailureReason: undefined,
    stopReason: undefined,
  });
  assert.deepEqual(t.nonJsonLines, []);
});

Deno.test("transcript().text is what the model said, without repeating the result text", () => {
  const t = parseClaudeOutput(STREAM);
  assert.equal(t.text, "I'll create hello.txt · ×\nDone: Paris");
  const different = parseClaudeOutput(assistantLine("thinking") + resultLine({ result: "42" }));
  assert.equal(different.text, "thinking\n42");
});

Deno.test("tool results with block-array content and is_error are flattened", () => {
  const line = JSON.stringify({
    type: "user",
    message: {
      role: "user",
      content: [{
        type: "tool_result",
        tool_use_id: "toolu_9",
        is_error: true,
        content: [{ type: "text", text: "permission denied" }, { type: "text", text: "again" }],
      }],
    },
  });
  const t = parseClaudeOutput(line);
  assert.deepEqual(t.toolResults, [{
    toolUseId: "toolu_9",
    content: "permission denied\nagain",
    isError: true,
  }]);
  assert.equal(t.text, "");
});

Deno.test("error results keep their subtype and have no text", () => {
  const t = parseClaudeOutput(
    resultLine({ subtype: "error_max_turns", is_error: true, num_turns: 3, result: undefined }),
  );
  assert.equal(t.result?.subtype, "error_max_turns");
  assert.equal(t.result?.isError, true);
  assert.equal(t.result?.text, undefined);
  assert.equal(t.result?.numTurns, 3);
});

Deno.test("garbage and unknown lines never throw: non-JSON is kept, unknown JSON is an event", () => {
  const input = [
    "(node:123) Warning: something deprecated",
    "{not json",
    '"a string"',
    "[1,2,3]",
    "",
    "   ",
    '{"type":"stream_event","event":{"type":"content_block_delta"}}',
    '{"no_type":true}',
    assistantLine("ok").trimEnd(),
  ].join("\r\n");
  const p = new ClaudeStreamParser();
  const events = [...p.push(input), ...p.end()];
  assert.deepEqual(events.map((e) => e.type), [
    "unknown",
    "unknown",
    "unknown",
    "unknown",
    "unknown",
    "unknown",
    "assistant",
  ]);
  const t = p.transcript();
  assert.deepEqual(t.nonJsonLines, [
    "(node:123) Warning: something deprecated",
    "{not json",
    '"a string"',
    "[1,2,3]",
  ]);
  assert.equal(t.text, "ok");
  const unknownJson = events[4];
  assert.equal(unknownJson.type, "unknown");
  assert.ok(unknownJson.type === "unknown" && unknownJson.raw !== undefined);
});

Deno.test("ClaudeStreamParser keeps partial lines until the newline arrives, split at every position", () => {
  const whole = parseClaudeOutput(STREAM);
  for (let i = 0; i <= STREAM.length; i++) {
    const p = new ClaudeStreamParser();
    const events = [...p.push(STREAM.slice(0, i)), ...p.push(STREAM.slice(i)), ...p.end()];
    assert.equal(events.length, 6, `split at ${i}`);
    assert.deepEqual(p.transcript(), whole, `split at ${i}`);
  }
});

Deno.test("ClaudeStreamParser handles one character at a time and returns events only for complete lines", () => {
  const p = new ClaudeStreamParser();
  let count = 0;
  for (const ch of STREAM) {
    const events = p.push(ch);
    if (ch !== "\n") assert.equal(events.length, 0);
    count += events.length;
  }
  assert.equal(count, 6);
  assert.deepEqual(p.transcript(), parseClaudeOutput(STREAM));
});

Deno.test("end() parses a last line that has no newline", () => {
  const p = new ClaudeStreamParser();
  assert.deepEqual(p.push(resultLine({ result: "x" }).trimEnd()), []);
  assert.equal(p.transcript().result, undefined);
  assert.equal(p.end().length, 1);
  assert.equal(p.transcript().result?.text, "x");
  assert.deepEqual(p.end(), []);
});

Deno.test("looksLikeStreamJson() recognises stream-json and json output, even after a warning line", () => {
  assert.equal(looksLikeStreamJson(STREAM), true);
  assert.equal(looksLikeStreamJson(resultLine({ result: "4" })), true);
  assert.equal(looksLikeStreamJson("Warning: x\n\n" + STREAM), true);
  assert.equal(looksLikeStreamJson("2 + 2 = 4\n"), false);
  assert.equal(looksLikeStreamJson('{"type":"other"}\n{"a":1}\n'), false);
  assert.equal(looksLikeStreamJson(""), false);
  assert.equal(
    looksLikeStreamJson("a\nb\nc\nd\ne\n" + STREAM),
    false,
    "only the first lines count",
  );
});

Deno.test("modelText() never exposes the JSON envelope to pattern matching", () => {
  assert.ok(STREAM.includes("4"), "the envelope is full of 4s");
  const text = modelText(STREAM);
  assert.equal(text, "I'll create hello.txt · ×\nDone: Paris");
  assert.ok(!text.includes("4"));
  assert.ok(!text.includes("session_id"));
});

Deno.test("modelText() keeps non-JSON lines of a stream and returns plain output unchanged", () => {
  assert.equal(
    modelText("warning: slow disk\n" + STREAM),
    modelText(STREAM) + "\nwarning: slow disk",
  );
  assert.equal(modelText("2 + 2 = 4\n"), "2 + 2 = 4\n");
  assert.equal(modelText(""), "");
});

Deno.test("parseClaudeOutput() reads the one JSON array of --output-format json --verbose", () => {
  const arr = JSON.stringify([
    { type: "system", subtype: "init", tools: ["Read"] },
    { type: "assistant", message: { content: [{ type: "text", text: "2 + 2 = 4" }] } },
    { type: "result", subtype: "success", is_error: false, result: "2 + 2 = 4" },
  ]);
  const t = parseClaudeOutput(arr + "\n");
  assert.deepEqual(t.init?.tools, ["Read"]);
  assert.equal(t.result?.text, "2 + 2 = 4");
  assert.equal(modelText(arr), "2 + 2 = 4");
});

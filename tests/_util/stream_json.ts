/**
 * Claude Code stream-json lines for the tests of `lib/claude/`: a realistic run (init, text, a
 * tool call and its result, the final text, the result line) and builders for single lines.
 * @module
 */

/** The session id of every line. */
export const SID = "0b5a3f53-4c1e-4d6e-9f4a-2e4d4a7c4b41";

/** A realistic stream: init, text, tool use, tool result, final text, result. */
export const STREAM = [
  JSON.stringify({
    type: "system",
    subtype: "init",
    cwd: "/tmp/work",
    session_id: SID,
    tools: ["Bash", "Read", "Write"],
    mcp_servers: [],
    model: "claude-sonnet-4-5-20250929",
    permissionMode: "bypassPermissions",
    apiKeySource: "none",
    claude_code_version: "2.1.197",
    uuid: "44444444-4444-4444-8444-444444444444",
  }),
  JSON.stringify({
    type: "assistant",
    message: {
      id: "msg_01A",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5-20250929",
      content: [{ type: "text", text: "I'll create hello.txt · ×" }],
      stop_reason: null,
      usage: { input_tokens: 4, output_tokens: 44 },
    },
    parent_tool_use_id: null,
    session_id: SID,
    uuid: "a4",
  }),
  JSON.stringify({
    type: "assistant",
    message: {
      id: "msg_01A",
      role: "assistant",
      content: [{
        type: "tool_use",
        id: "toolu_01X",
        name: "Write",
        input: { file_path: "/tmp/work/hello.txt", content: "hi" },
      }],
    },
    session_id: SID,
  }),
  JSON.stringify({
    type: "user",
    message: {
      role: "user",
      content: [{
        tool_use_id: "toolu_01X",
        type: "tool_result",
        content: "File created successfully at: /tmp/work/hello.txt",
      }],
    },
    session_id: SID,
  }),
  JSON.stringify({
    type: "assistant",
    message: { id: "msg_01B", role: "assistant", content: [{ type: "text", text: "Done: Paris" }] },
    session_id: SID,
  }),
  JSON.stringify({
    type: "result",
    subtype: "success",
    is_error: false,
    duration_ms: 4242,
    duration_api_ms: 4444,
    num_turns: 2,
    result: "Done: Paris",
    session_id: SID,
    total_cost_usd: 0.0414,
    usage: { input_tokens: 44, output_tokens: 444 },
    permission_denials: [],
    uuid: "44",
  }),
].join("\n") + "\n";

/** A `result` line (success, no error) with `fields` on top, newline-terminated. */
export function resultLine(fields: Record<string, unknown>): string {
  return JSON.stringify({
    type: "result",
    subtype: "success",
    is_error: false,
    duration_ms: 1234,
    num_turns: 1,
    session_id: SID,
    ...fields,
  }) + "\n";
}

/** An assistant line with one text block, newline-terminated. */
export function assistantLine(text: string): string {
  return JSON.stringify({
    type: "assistant",
    message: { role: "assistant", content: [{ type: "text", text }] },
    session_id: SID,
  }) + "\n";
}

/** One JSON object as a stream-json line. */
export function line(o: Record<string, unknown>): string {
  return JSON.stringify(o) + "\n";
}

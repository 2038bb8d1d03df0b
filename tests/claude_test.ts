import assert from "node:assert/strict";
import { FAKE_CLAUDE, KEY_ENV } from "./_util/helpers.ts";
import {
  buildClaudeArgv,
  chooseTools,
  classifyFailure,
  ClaudeLiveWatch,
  ClaudeStreamParser,
  type ClaudeTranscript,
  detectClaudeLimit,
  detectClaudeLimits,
  FAILURE_POLICIES,
  looksLikeStreamJson,
  modelText,
  parseClaudeOutput,
  retryFailure,
} from "../lib/claude/claude.ts";

const SID = "0b5a3f53-4c1e-4d6e-9f4a-2e4d4a7c4b41";

// A realistic stream: init, text, tool use, tool result, final text, result.
const STREAM = [
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

function resultLine(fields: Record<string, unknown>): string {
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

function assistantLine(text: string): string {
  return JSON.stringify({
    type: "assistant",
    message: { role: "assistant", content: [{ type: "text", text }] },
    session_id: SID,
  }) + "\n";
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

Deno.test("detectClaudeLimit() finds the usage limit and its reset epoch in a raw JSON line", () => {
  const line = resultLine({ is_error: true, result: "Claude AI usage limit reached|1751299200" });
  const limit = detectClaudeLimit(line);
  assert.equal(limit?.kind, "rate_limit");
  assert.equal(limit?.errorType, "usage_limit");
  assert.equal(limit?.resetTimestamp, 1751299200);
  assert.equal(limit?.recoverable, true);
  assert.match(limit?.message ?? "", /2025-06-30T16:00:00\.000Z/);
});

Deno.test("detectClaudeLimit() finds a JSON-escaped API 429 and its message", () => {
  const text = 'API Error: 429 {"type":"error","error":{"type":"rate_limit_error",' +
    '"message":"Number of request tokens has exceeded your per-minute rate limit"}}';
  for (const raw of [text, assistantLine(text), JSON.stringify(JSON.stringify(text))]) {
    const limit = detectClaudeLimit(raw);
    assert.equal(limit?.kind, "rate_limit", raw);
    assert.equal(limit?.errorType, "rate_limit_error");
    assert.equal(
      limit?.message,
      "API rate limit (429): Number of request tokens has exceeded your per-minute rate limit",
    );
    assert.equal(limit?.resetTimestamp, undefined);
  }
  assert.equal(
    detectClaudeLimit("API Error: 429 Too Many Requests")?.message,
    "API rate limit (429)",
  );
  assert.equal(detectClaudeLimit('Error: 429 {"type":"rate_limit_error"}')?.kind, "rate_limit");
  assert.equal(detectClaudeLimit("API Error: 429 retry-after: 30")?.retryAfter, 30);
});

Deno.test("detectClaudeLimit() finds the output token limit", () => {
  const text =
    "API Error: Claude's response exceeded the 32000 output token maximum. To configure " +
    "this behavior, set the CLAUDE_CODE_MAX_OUTPUT_TOKENS environment variable.";
  for (const raw of [text, resultLine({ is_error: true, result: text })]) {
    const limit = detectClaudeLimit(raw);
    assert.equal(limit?.kind, "token_limit");
    assert.equal(limit?.errorType, "output_token_limit");
    assert.match(limit?.message ?? "", /32000 output token maximum/);
  }
});

Deno.test("detectClaudeLimit() finds the newer session-limit messages and a bare usage limit", () => {
  assert.equal(detectClaudeLimit("5-hour limit reached ∙ resets 3pm")?.kind, "rate_limit");
  assert.equal(
    detectClaudeLimit("You've hit your limit · resets Feb 7, 11am (Asia/Seoul)")?.message,
    "You've hit your limit · resets Feb 7, 11am (Asia/Seoul)",
  );
  assert.equal(
    detectClaudeLimit("Claude usage limit reached. Try later")?.errorType,
    "usage_limit",
  );
});

Deno.test("detectClaudeLimit() ignores prose that merely talks about limits", () => {
  for (
    const prose of [
      "",
      "2 + 2 = 4",
      "When you hit a rate limit, back off and retry later.",
      "HTTP 429 means Too Many Requests; the rate_limit header tells you more.",
      "Set a token limit so responses stay short.",
      "The output token maximum for this model is 32000.",
      "Usage limits reset every five hours.",
      "limit=429",
      assistantLine("Rate limiting (429) protects the API; see the usage limit docs."),
    ]
  ) {
    assert.equal(detectClaudeLimit(prose), undefined, prose);
  }
});

// ---------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------

const ok = { exitCode: 0, status: "completed" };
const failed = { exitCode: 1, status: "failed" };

function errorResult(text: string, extra: Record<string, unknown> = {}): ClaudeTranscript {
  return parseClaudeOutput(
    assistantLine(text) + resultLine({ is_error: true, result: text, ...extra }),
  );
}

Deno.test("classifyFailure() returns undefined for a successful run, even if it talks about limits", () => {
  assert.equal(classifyFailure(parseClaudeOutput(STREAM), ok), undefined);
  const prose =
    "A 429 means rate_limit_error: Claude AI usage limit reached|1751299200 is the CLI text.";
  assert.equal(
    classifyFailure(parseClaudeOutput(assistantLine(prose) + resultLine({ result: prose })), ok),
    undefined,
  );
  assert.equal(classifyFailure(parseClaudeOutput("plain output\n"), ok), undefined);
});

Deno.test("classifyFailure() recognises limits, with the reset time", () => {
  const usage = classifyFailure(errorResult("Claude AI usage limit reached|1751299200"), failed);
  assert.equal(usage?.kind, "rate_limit");
  assert.equal(usage?.resetTimestamp, 1751299200);
  assert.equal(usage?.limit?.errorType, "usage_limit");
  // Newer CLIs exit 0 with is_error: true; still a limit.
  assert.equal(classifyFailure(errorResult("API Error: 429 {}"), ok)?.kind, "rate_limit");
  const token = classifyFailure(
    errorResult("API Error: Claude's response exceeded the 32000 output token maximum."),
    failed,
  );
  assert.equal(token?.kind, "token_limit");
  // A limit seen before a timeout explains the timeout.
  const retrying = parseClaudeOutput("API Error: 429 rate_limit_error, retrying in 30 seconds\n");
  assert.equal(
    classifyFailure(retrying, { exitCode: null, status: "timeout" })?.kind,
    "rate_limit",
  );
});

Deno.test("classifyFailure() recognises authentication failures, and not being logged in", () => {
  const f = classifyFailure(errorResult("Invalid API key · Fix external API key"), failed);
  assert.equal(f?.kind, "auth");
  assert.equal(f?.retry, "never");
  assert.match(f?.message ?? "", /Invalid API key/);
  const forbidden = classifyFailure(
    errorResult("Failed to authenticate. API Error: 403 nope", { api_error_status: 403 }),
    failed,
  );
  assert.deepEqual([forbidden?.kind, forbidden?.status], ["auth", 403]);
  const login = classifyFailure(errorResult("Not logged in · Please run /login"), failed);
  assert.equal(login?.kind, "not_logged_in");
  const oauth = classifyFailure(errorResult("OAuth token has expired. Please run /login"), failed);
  assert.equal(oauth?.kind, "not_logged_in");
});

Deno.test("classifyFailure() maps timeout, stall and cancel statuses", () => {
  const partial = parseClaudeOutput(STREAM.split("\n").slice(0, 2).join("\n"));
  assert.equal(classifyFailure(partial, { exitCode: null, status: "timeout" })?.kind, "timeout");
  assert.equal(classifyFailure(partial, { exitCode: null, status: "stalled" })?.kind, "stall");
  assert.equal(classifyFailure(partial, { exitCode: null, status: "canceled" })?.kind, "canceled");
  assert.equal(classifyFailure(partial, { exitCode: null, status: "killed" })?.kind, "canceled");
});

Deno.test("classifyFailure() reports max turns, and it outranks an earlier API error in the transcript", () => {
  const t = parseClaudeOutput(
    assistantLine("API Error: 429 rate_limit_error") +
      resultLine({ subtype: "error_max_turns", is_error: true, num_turns: 3 }),
  );
  const f = classifyFailure(t, failed);
  assert.equal(f?.kind, "max_turns");
  assert.match(f?.message ?? "", /3 turns/);
});

Deno.test("classifyFailure() calls a stack trace without a result a crash", () => {
  const t = parseClaudeOutput(STREAM.split("\n").slice(0, 2).join("\n") + "\n");
  const stderr =
    "file:///x/cli.js:1\nTypeError: Cannot read properties of undefined (reading 'a')\n" +
    "    at Foo (file:///x/cli.js:1:2)\n\nNode.js v22.17.0\n";
  const f = classifyFailure(t, { exitCode: 1, status: "failed", stderr });
  assert.equal(f?.kind, "crash");
  assert.match(f?.message ?? "", /TypeError: Cannot read properties/);
});

Deno.test("classifyFailure() calls other failures errors", () => {
  const during = parseClaudeOutput(
    resultLine({ subtype: "error_during_execution", is_error: true }),
  );
  assert.equal(classifyFailure(during, failed)?.kind, "error");
  // An error result the CLI printed without any field or text ccx knows: an API error.
  assert.equal(classifyFailure(errorResult("Something odd happened"), failed)?.kind, "api_error");
  // A success result but a non-zero exit code.
  const f = classifyFailure(parseClaudeOutput(STREAM), { exitCode: 3, status: "failed" });
  assert.equal(f?.kind, "error");
  assert.match(f?.message ?? "", /code 3/);
  // Plain output, non-zero exit, no stack trace.
  const plain = classifyFailure(parseClaudeOutput("nope\n"), {
    exitCode: 2,
    status: "failed",
    stderr: "Error: bad flag\n",
  });
  assert.deepEqual(plain, {
    kind: "error",
    message: "exited with code 2: Error: bad flag",
    retry: "refine",
  });
});

// ---------------------------------------------------------------------------------------------
// argv and tools
// ---------------------------------------------------------------------------------------------

Deno.test("buildClaudeArgv() builds the stream-json command line", () => {
  assert.deepEqual(buildClaudeArgv({ claude: "claude", prompt: "What is 2+2?" }), [
    "claude",
    "-p",
    "What is 2+2?",
    "--output-format",
    "stream-json",
    "--verbose",
  ]);
  assert.deepEqual(
    buildClaudeArgv({
      claude: "/opt/claude",
      prompt: "Create x",
      tools: ["Write", "Read"],
      model: "sonnet",
      maxTurns: 5,
      skipPermissions: true,
    }),
    [
      "/opt/claude",
      "-p",
      "Create x",
      "--output-format",
      "stream-json",
      "--verbose",
      "--model",
      "sonnet",
      "--max-turns",
      "5",
      "--tools",
      "Write,Read",
      "--dangerously-skip-permissions",
    ],
  );
  // `--allowedTools none` restricts nothing in the real CLI; `--tools ""` gives no tools.
  assert.deepEqual(buildClaudeArgv({ claude: "c", prompt: "q", tools: "none" }).slice(-2), [
    "--tools",
    "",
  ]);
  assert.equal(buildClaudeArgv({ claude: "c", prompt: "q", tools: [] }).length, 6);
  assert.deepEqual(buildClaudeArgv({ claude: "c", prompt: "q", maxTurns: 0 }).slice(-2), [
    "--max-turns",
    "0",
  ]);
  assert.throws(() => buildClaudeArgv({ claude: "c", prompt: "q", maxTurns: -1 }), RangeError);
});

Deno.test("buildClaudeArgv() passes quotes, $ and backticks as one untouched argument", () => {
  const prompt = `What is "it's" $HOME \`whoami\` $(id) \\n; rm -rf / #?`;
  const argv = buildClaudeArgv({ claude: "claude", prompt });
  assert.equal(argv[2], prompt);
  assert.equal(argv.filter((a) => a === prompt).length, 1);
});

Deno.test("buildClaudeArgv() puts a prompt that starts with a dash after --", () => {
  const argv = buildClaudeArgv({ claude: "claude", prompt: "--help me", skipPermissions: true });
  assert.deepEqual(argv.slice(-2), ["--", "--help me"]);
  assert.equal(argv[1], "-p");
  assert.ok(!argv.slice(0, -1).includes("--help me"));
});

Deno.test("chooseTools() picks tools from whole-word verbs and always includes Read", () => {
  assert.deepEqual(chooseTools("Create a config.py file with DATABASE_URL"), ["Write", "Read"]);
  assert.deepEqual(chooseTools("Run the tests"), ["Bash", "Read"]);
  assert.deepEqual(chooseTools("Execute the script, then verify the output"), ["Bash", "Read"]);
  assert.deepEqual(chooseTools("Check the FILES and run them"), ["Write", "Bash", "Read"]);
  assert.deepEqual(chooseTools("What is 2+2?"), ["Read"]);
  assert.deepEqual(chooseTools("Truncate the profile of a runner"), ["Read"]);
});

// ---------------------------------------------------------------------------------------------
// The classifier on what the CLI prints (CLAUDE_CLI.md), structured fields first
// ---------------------------------------------------------------------------------------------

function line(o: Record<string, unknown>): string {
  return JSON.stringify(o) + "\n";
}
function synthetic(text: string, error: string): string {
  return line({
    type: "assistant",
    message: { model: "<synthetic>", role: "assistant", content: [{ type: "text", text }] },
    error,
  });
}
function apiResult(text: string, fields: Record<string, unknown> = {}): string {
  return line({
    type: "result",
    subtype: "success",
    is_error: true,
    api_error_status: null,
    result: text,
    terminal_reason: "completed",
    ...fields,
  });
}
const INIT = line({ type: "system", subtype: "init", tools: [], session_id: "s" });

Deno.test("classifyFailure() reads the real CLI's API errors by their fields, each with its policy", () => {
  const cases: [string, string, string, string][] = [
    [
      synthetic("Invalid API key · Fix external API key", "authentication_failed") +
      apiResult("Invalid API key · Fix external API key", { api_error_status: 401 }),
      "auth",
      "never",
      "Invalid API key",
    ],
    [
      synthetic("Failed to authenticate. API Error: 403 forbidden", "authentication_failed") +
      apiResult("Failed to authenticate. API Error: 403 forbidden", { api_error_status: 403 }),
      "auth",
      "never",
      "403",
    ],
    [
      synthetic("Not logged in · Please run /login", "authentication_failed") +
      apiResult("Not logged in · Please run /login", { terminal_reason: "api_error" }),
      "not_logged_in",
      "never",
      "Not logged in",
    ],
    [
      synthetic("API Error: Request rejected (429) · slow down", "rate_limit") +
      apiResult("API Error: Request rejected (429) · slow down", { api_error_status: 429 }),
      "rate_limit",
      "backoff",
      "slow down",
    ],
    [
      synthetic("API Error: 529 Overloaded. This is a server-side issue", "server_error") +
      apiResult("API Error: 529 Overloaded. This is a server-side issue", {
        api_error_status: 529,
      }),
      "overloaded",
      "backoff",
      "529",
    ],
    [
      apiResult("API Error: 500 Internal server error.", { api_error_type: "api_error" }),
      "overloaded",
      "backoff",
      "500",
    ],
    [
      synthetic("API Error: Unable to connect to API (ConnectionRefused)", "unknown") +
      apiResult("API Error: Unable to connect to API (ConnectionRefused)"),
      "network",
      "backoff",
      "ConnectionRefused",
    ],
    [
      apiResult("API Error: Can't reach the API server — check your internet or DNS (ENOTFOUND)"),
      "network",
      "backoff",
      "ENOTFOUND",
    ],
    [
      synthetic("Prompt is too long · the request is ~300000 tokens", "invalid_request") +
      apiResult("Prompt is too long · the request is ~300000 tokens", {
        api_error_status: 400,
        terminal_reason: "prompt_too_long",
      }),
      "prompt_too_long",
      "never",
      "Prompt is too long",
    ],
    [
      apiResult("API Error: Claude's response exceeded the 64000 output token maximum."),
      "token_limit",
      "refine",
      "64000",
    ],
    [
      apiResult("You've hit your weekly limit · resets Oct 9, 2pm"),
      "rate_limit",
      "backoff",
      "resets Oct 9, 2pm",
    ],
    [
      apiResult("API Error: 400 bad request body", { api_error_status: 400 }),
      "api_error",
      "never",
      "400",
    ],
  ];
  for (const [out, kind, retry, words] of cases) {
    const f = classifyFailure(parseClaudeOutput(INIT + out), { exitCode: 1, status: "failed" });
    assert.equal(f?.kind, kind, out);
    assert.equal(f?.retry, retry, out);
    assert.equal(f?.retry, FAILURE_POLICIES[f!.kind].retry);
    assert.ok(f?.message.includes(words), `${f?.message} names ${words}`);
  }
});

Deno.test("classifyFailure(): an error is never the model's text; the error text is kept apart", () => {
  const t = parseClaudeOutput(
    INIT + synthetic("API Error: Request rejected (429) · Contains 4", "rate_limit") +
      apiResult("API Error: Request rejected (429) · Contains 4", { api_error_status: 429 }),
  );
  assert.equal(t.text, "");
  assert.deepEqual(t.errorTexts, ["API Error: Request rejected (429) · Contains 4"]);
  assert.equal(modelText(INIT + apiResult("API Error: 529 Overloaded 4")), "");
});

Deno.test("classifyFailure() knows startup failures: root refusal, bad invocations", () => {
  const root = classifyFailure(parseClaudeOutput(""), {
    exitCode: 1,
    status: "failed",
    stderr:
      "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n",
  });
  assert.equal(root?.kind, "root_refused");
  assert.match(root?.fix ?? "", /IS_SANDBOX=1/);
  assert.match(root?.fix ?? "", /non-root user/);
  const startup = classifyFailure(
    parseClaudeOutput(line({
      type: "result",
      subtype: "error_during_execution",
      is_error: true,
      errors: ["--dangerously-skip-permissions cannot be used with root/sudo privileges"],
      startup_failure_reason: "bypass_root",
    })),
    { exitCode: 1, status: "failed" },
  );
  assert.equal(startup?.kind, "root_refused");
  for (
    const stderr of [
      "error: unknown option '--x'\n",
      "Error: When using --print, --output-format=stream-json requires --verbose\n",
      '"What is it?" was read as a value of --allowedTools, not as a prompt\nError: Input must be provided either through stdin or as a prompt argument when using --print\n',
    ]
  ) {
    const f = classifyFailure(parseClaudeOutput(""), { exitCode: 1, status: "failed", stderr });
    assert.equal(f?.kind, "bad_invocation", stderr);
    assert.equal(f?.retry, "never");
  }
  // errors[] of any other startup failure reaches the message.
  const other = classifyFailure(
    parseClaudeOutput(line({
      type: "result",
      subtype: "error_during_execution",
      is_error: true,
      errors: ["MCP config is broken"],
    })),
    { exitCode: 1, status: "failed" },
  );
  assert.match(other?.message ?? "", /MCP config is broken/);
});

Deno.test("classifyFailure(): SIGINT (exit 0, no result) is an interruption, not a success", () => {
  const t = parseClaudeOutput(INIT + assistantLine("Let me think"));
  assert.equal(classifyFailure(t, { exitCode: 0, status: "completed" })?.kind, "interrupted");
  assert.equal(classifyFailure(t, { exitCode: 143, status: "failed" })?.kind, "interrupted");
  // Plain output without a Claude stream is not judged so.
  assert.equal(
    classifyFailure(parseClaudeOutput("hi\n"), { exitCode: 0, status: "completed" }),
    undefined,
  );
});

Deno.test("classifyFailure(): SIGINT mid-stream (terminal_reason aborted_streaming) is an interruption", () => {
  const t = parseClaudeOutput(
    INIT +
      line({
        type: "user",
        message: {
          role: "user",
          content: [{ type: "text", text: "[Request interrupted by user]" }],
        },
      }) +
      line({
        type: "result",
        subtype: "error_during_execution",
        is_error: true,
        terminal_reason: "aborted_streaming",
        errors: ["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],
      }),
  );
  const f = classifyFailure(t, { exitCode: 0, status: "completed" });
  assert.equal(f?.kind, "interrupted");
  assert.equal(f?.retry, "never");
});

Deno.test("classifyFailure() of a run ccx ended: what the api_retry lines said", () => {
  const retry = (status: number | null, error: string) =>
    line({
      type: "system",
      subtype: "api_retry",
      attempt: 1,
      max_retries: 10,
      error_status: status,
      error,
    });
  const canceled = { exitCode: null, status: "canceled" };
  assert.equal(
    classifyFailure(parseClaudeOutput(INIT + retry(401, "authentication_failed")), canceled)?.kind,
    "auth",
  );
  assert.equal(
    classifyFailure(parseClaudeOutput(INIT + retry(null, "unknown")), canceled)?.kind,
    "network",
  );
  assert.equal(
    classifyFailure(parseClaudeOutput(INIT + retry(529, "server_error")), canceled)?.kind,
    "overloaded",
  );
  assert.equal(
    classifyFailure(parseClaudeOutput(INIT + retry(429, "rate_limit")), canceled)?.kind,
    "rate_limit",
  );
  assert.equal(retryFailure({ attempt: 2, errorStatus: 403, error: "x" }).kind, "auth");
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

Deno.test("ClaudeLiveWatch ends at once on a 401/403 retry and after the network bound, not on a 429", async () => {
  const kinds: string[] = [];
  const watch = (o: Partial<ConstructorParameters<typeof ClaudeLiveWatch>[0]> = {}) =>
    new ClaudeLiveWatch({ onFailure: (f) => kinds.push(f.kind), ...o });
  const p = () => new ClaudeStreamParser();
  const retry = (status: number | null, error: string) =>
    line({ type: "system", subtype: "api_retry", attempt: 1, error_status: status, error });

  const auth = watch();
  auth.output(p().push(retry(403, "authentication_failed")));
  assert.equal(auth.failure?.kind, "auth");
  auth.stop();

  const rate = watch();
  rate.output(p().push(retry(429, "rate_limit")));
  assert.equal(rate.failure, undefined);
  rate.stop();

  const done = Promise.withResolvers<void>();
  const net = new ClaudeLiveWatch({
    networkGiveUpS: 0.05,
    onFailure: (f) => {
      kinds.push(f.kind);
      done.resolve();
    },
  });
  net.output(p().push(retry(null, "unknown")));
  await done.promise;
  assert.equal(net.failure?.kind, "network");
  net.stop();
  assert.deepEqual(kinds, ["auth", "network"]);
});

Deno.test("ClaudeLiveWatch: the stall clock waits out the startup grace before the first output", async () => {
  const t0 = performance.now();
  const done = Promise.withResolvers<string>();
  const w = new ClaudeLiveWatch({
    stallTimeoutS: 0.02,
    startupGraceS: 0.3,
    onFailure: (f) => done.resolve(f.message),
  });
  const message = await done.promise;
  w.stop();
  assert.ok(performance.now() - t0 >= 290, "not before the grace");
  assert.match(message, /no output at all for 0.3 s/);
  // After the first output, the stall timeout itself applies.
  const after = Promise.withResolvers<string>();
  const w2 = new ClaudeLiveWatch({
    stallTimeoutS: 0.02,
    startupGraceS: 30,
    onFailure: (f) => after.resolve(f.kind),
  });
  w2.output([]);
  assert.equal(await after.promise, "stall");
  w2.stop();
});

Deno.test("classifyFailure() on the stand-in's real processes: each scenario of CLAUDE_CLI.md", async () => {
  const cases: [string, string][] = [
    ["[[auth-fail]]", "auth"],
    ["[[auth-403]]", "auth"],
    ["[[not-logged-in]]", "not_logged_in"],
    ["[[rate-limit-429]]", "rate_limit"],
    ["[[rate-limit-429-old]]", "rate_limit"],
    ["[[hit-limit:weekly limit]]", "rate_limit"],
    ["[[overloaded]]", "overloaded"],
    ["[[server-error]]", "overloaded"],
    ["[[network:ENOTFOUND]]", "network"],
    ["[[network:ECONNREFUSED]]", "network"],
    ["[[prompt-too-long]]", "prompt_too_long"],
    ["[[token-limit]]", "token_limit"],
    ["[[max-turns]]", "max_turns"],
    ["[[crash]]", "crash"],
  ];
  const outs = await Promise.all(cases.map(async ([d]) => {
    const argv = buildClaudeArgv({ claude: FAKE_CLAUDE, prompt: `What is 2+2? ${d}` });
    const o = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: { FAKE_CLAUDE_MODE: "", ...KEY_ENV },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
  }));
  outs.forEach((o, i) => {
    const f = classifyFailure(parseClaudeOutput(o.stdout), {
      exitCode: o.code,
      status: o.code === 0 ? "completed" : "failed",
      stderr: o.stderr,
    });
    assert.equal(f?.kind, cases[i][1], cases[i][0]);
    assert.equal(modelText(o.stdout).includes("API Error"), false, "no error text as the answer");
  });
});

Deno.test("detectClaudeLimits() finds one limit of each kind in a read of several lines", () => {
  const read = [
    "Claude AI usage limit reached|1751299200",
    "Claude's response exceeded the 32000 output token maximum",
    "Claude AI usage limit reached|1751302800",
  ].join("\n");
  const limits = detectClaudeLimits(read);
  assert.deepEqual(limits.map((l) => l.kind), ["rate_limit", "token_limit"]);
  assert.equal(limits[0].resetTimestamp, 1751299200, "the first of a kind is kept");
  assert.deepEqual(detectClaudeLimits("all fine\nno limits here"), []);
});

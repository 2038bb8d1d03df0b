import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  buildClaudeArgv,
  chooseTools,
  classifyFailure,
  ClaudeStreamParser,
  type ClaudeTranscript,
  detectClaudeLimit,
  looksLikeStreamJson,
  modelText,
  parseClaudeOutput,
} from "../lib/claude.ts";

const FAKE = fileURLToPath(new URL("./fixtures/claude", import.meta.url));
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
    claude_code_version: "2.0.14",
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
    version: "2.0.14",
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

Deno.test("classifyFailure() recognises authentication failures", () => {
  const f = classifyFailure(errorResult("Invalid API key · Please run /login"), failed);
  assert.equal(f?.kind, "auth");
  assert.match(f?.message ?? "", /Invalid API key/);
  const oauth = classifyFailure(errorResult("OAuth token has expired. Please run /login"), failed);
  assert.equal(oauth?.kind, "auth");
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
  assert.equal(classifyFailure(errorResult("Something odd happened"), failed)?.kind, "error");
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
  assert.deepEqual(plain, { kind: "error", message: "exited with code 2: Error: bad flag" });
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
      "--allowedTools",
      "Write,Read",
      "--dangerously-skip-permissions",
    ],
  );
  assert.deepEqual(buildClaudeArgv({ claude: "c", prompt: "q", tools: "none" }).slice(-2), [
    "--allowedTools",
    "none",
  ]);
  assert.equal(buildClaudeArgv({ claude: "c", prompt: "q", tools: [] }).length, 6);
  assert.throws(() => buildClaudeArgv({ claude: "c", prompt: "q", maxTurns: 0 }), RangeError);
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
// End to end: the stand-in CLI as a real process
// ---------------------------------------------------------------------------------------------

interface Run {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  transcript: ClaudeTranscript;
}

async function run(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<Run> {
  const cmd = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd,
    env: { FAKE_CLAUDE_MODE: "", ...opts.env },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  let out: Deno.CommandOutput;
  if (opts.stdin === undefined) {
    out = await cmd.output();
  } else {
    const child = cmd.spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
    out = await child.output();
  }
  const stdout = new TextDecoder().decode(out.stdout);
  return {
    code: out.code,
    signal: out.signal,
    stdout,
    stderr: new TextDecoder().decode(out.stderr),
    transcript: parseClaudeOutput(stdout),
  };
}

function claude(prompt: string, extra: Partial<Parameters<typeof buildClaudeArgv>[0]> = {}) {
  return buildClaudeArgv({ claude: FAKE, prompt, skipPermissions: true, ...extra });
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_claude_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Reads stdout until `pattern` appears; returns what was read. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  pattern: RegExp,
): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
    text += dec.decode(value, { stream: true });
  }
  return text;
}

Deno.test("fake claude: --version prints the version like the real CLI", async () => {
  const r = await run([FAKE, "--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "2.0.14 (Claude Code)\n");
});

Deno.test("fake claude: stream-json without --verbose is refused as by the real CLI", async () => {
  const r = await run([FAKE, "-p", "hi", "--output-format", "stream-json"]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    "Error: When using --print, --output-format=stream-json requires --verbose\n",
  );
});

Deno.test("fake claude: answers arithmetic in stream-json, and the envelope alone would fool a pattern", async () => {
  const r = await run(claude("What is 2+2?"));
  assert.equal(r.code, 0);
  assert.equal(r.transcript.init?.permissionMode, "bypassPermissions");
  assert.equal(r.transcript.result?.text, "2 + 2 = 4");
  assert.equal(modelText(r.stdout), "2 + 2 = 4");
  const envelopeOnly = r.stdout.replaceAll("2 + 2 = 4", "");
  assert.ok(envelopeOnly.includes("4"), "uuids and token counts contain 4");
  assert.equal(classifyFailure(r.transcript, { exitCode: r.code, status: "completed" }), undefined);
  for (const line of r.stdout.trimEnd().split("\n")) assert.doesNotThrow(() => JSON.parse(line));
});

Deno.test("fake claude: answers the seed's calculation list and echoes the marker", async () => {
  const r = await run(claude(
    "[marker:LOCAL_simple_3_20250627_120000] Calculate these 10 math problems quickly: 15+27, " +
      "83-46, 12*9, 144/12, 2^8, sqrt(169), 15% of 200, 3! (factorial), fibonacci(10), " +
      "prime factors of 60",
  ));
  const text = modelText(r.stdout);
  for (
    const p of ["42", "37", "108", "256", "13", "55", "[marker:LOCAL_simple_3_20250627_120000]"]
  ) {
    assert.ok(text.includes(p), `${p} in ${text}`);
  }
  const quiet = await run(claude("What is 2+2? [marker:M1] [[no-marker]]"));
  assert.equal(quiet.transcript.result?.text, "2 + 2 = 4");
});

Deno.test("fake claude: canned answers carry the obvious keywords; text and json formats", async () => {
  const code = await run(claude("What is a Python function to reverse a string?"));
  assert.match(modelText(code.stdout), /def reverse_string\(s\):\s+return s\[::-1\]/);
  const text = await run([FAKE, "-p", "What is the 10th Fibonacci number?"]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /^The 10th Fibonacci number is 55\./);
  const json = await run([
    FAKE,
    "-p",
    "What is a quick chicken and rice recipe?",
    "--output-format",
    "json",
  ]);
  const obj = JSON.parse(json.stdout);
  assert.equal(obj.type, "result");
  assert.match(obj.result, /chicken/i);
  assert.match(obj.result, /rice/i);
});

Deno.test("fake claude: a prompt with quotes, $ and backticks arrives untouched", async () => {
  const prompt = `What is "it's" $HOME \`whoami\` $(id)?`;
  const r = await run(claude(prompt));
  assert.ok(modelText(r.stdout).includes(prompt), modelText(r.stdout));
  const dashed = await run(claude("--version of what?"));
  assert.equal(dashed.code, 0);
  assert.ok(modelText(dashed.stdout).includes("--version of what?"));
});

Deno.test("fake claude: [[write]] really writes the file with Write tool_use and tool_result lines", async () => {
  await withTempDir(async (dir) => {
    const r = await run(claude("Create it [[write:sub/hello.txt=hi\\nthere]]"), { cwd: dir });
    assert.equal(r.code, 0);
    const abs = join(dir, "sub/hello.txt");
    assert.equal(await Deno.readTextFile(abs), "hi\nthere");
    assert.deepEqual(r.transcript.toolUses.map((u) => [u.name, u.input]), [
      ["Write", { file_path: abs, content: "hi\nthere" }],
    ]);
    assert.deepEqual(r.transcript.toolResults, [{
      toolUseId: r.transcript.toolUses[0].id,
      content: `File created successfully at: ${abs}`,
      isError: false,
    }]);
    assert.match(r.transcript.text, /I created sub\/hello\.txt/);
  });
});

Deno.test("fake claude: without permission the Write is denied, as by the real CLI", async () => {
  await withTempDir(async (dir) => {
    const r = await run(claude("Create it [[write:a.txt=x]]", { skipPermissions: false }), {
      cwd: dir,
    });
    assert.equal(r.code, 0);
    assert.equal(await exists(join(dir, "a.txt")), false);
    assert.equal(r.transcript.toolResults[0].isError, true);
    assert.match(r.transcript.toolResults[0].content, /requested permissions to write/);
    const allowed = await run(
      claude("Create it [[write:a.txt=x]]", { skipPermissions: false, tools: ["Write", "Read"] }),
      { cwd: dir },
    );
    assert.equal(allowed.transcript.toolResults[0].isError, false);
    assert.equal(await Deno.readTextFile(join(dir, "a.txt")), "x");
  });
});

Deno.test("fake claude: [[claim-write]] claims a file it never wrote", async () => {
  await withTempDir(async (dir) => {
    const r = await run(claude("Make config.py [[claim-write:config.py]]"), { cwd: dir });
    assert.equal(r.code, 0);
    assert.match(r.transcript.text, /I created config\.py/);
    assert.deepEqual(r.transcript.toolUses, []);
    assert.equal(await exists(join(dir, "config.py")), false);
  });
});

Deno.test("fake claude: [[usage-limit:+S]] exits 1 with a parseable reset time", async () => {
  const before = Math.floor(Date.now() / 1000);
  const r = await run(claude("What is 2+2? [[usage-limit:+3600]]"));
  assert.equal(r.code, 1);
  assert.equal(r.transcript.result?.isError, true);
  const limit = detectClaudeLimit(r.stdout);
  assert.equal(limit?.kind, "rate_limit");
  assert.ok(limit!.resetTimestamp! >= before + 3600 && limit!.resetTimestamp! <= before + 3700);
  const f = classifyFailure(r.transcript, { exitCode: r.code, status: "failed" });
  assert.equal(f?.kind, "rate_limit");
  assert.equal(f?.resetTimestamp, limit?.resetTimestamp);
  const fixed = await run(claude("[[usage-limit:1751299200]]"));
  assert.equal(detectClaudeLimit(fixed.stdout)?.resetTimestamp, 1751299200);
});

Deno.test("fake claude: [[rate-limit-429]], [[token-limit]] and [[auth-fail]] are classified", async () => {
  const cases: [string, string][] = [
    ["[[rate-limit-429]]", "rate_limit"],
    ["[[token-limit]]", "token_limit"],
    ["[[auth-fail]]", "auth"],
  ];
  const runs = await Promise.all(cases.map(([d]) => run(claude(`What is 2+2? ${d}`))));
  runs.forEach((r, i) => {
    assert.equal(r.code, 1, cases[i][0]);
    const f = classifyFailure(r.transcript, { exitCode: r.code, status: "failed" });
    assert.equal(f?.kind, cases[i][1], cases[i][0]);
  });
  assert.equal(detectClaudeLimit(runs[0].stdout)?.errorType, "rate_limit_error");
  assert.equal(detectClaudeLimit(runs[1].stdout)?.kind, "token_limit");
  assert.equal(detectClaudeLimit(runs[2].stdout), undefined);
});

Deno.test("fake claude: [[crash]] prints a stack trace and no result", async () => {
  const r = await run(claude("What is 2+2? [[crash]]"));
  assert.equal(r.code, 1);
  assert.equal(r.transcript.result, undefined);
  assert.match(r.stderr, /TypeError: .*\n\s+at /);
  const f = classifyFailure(r.transcript, { exitCode: r.code, status: "failed", stderr: r.stderr });
  assert.equal(f?.kind, "crash");
});

Deno.test("fake claude: [[max-turns]] and a real --max-turns both end in error_max_turns", async () => {
  const forced = await run(claude("What is 2+2? [[max-turns]]"));
  assert.equal(forced.code, 1);
  assert.equal(forced.transcript.result?.subtype, "error_max_turns");
  assert.equal(
    classifyFailure(forced.transcript, { exitCode: 1, status: "failed" })?.kind,
    "max_turns",
  );
  await withTempDir(async (dir) => {
    const natural = await run(claude("[[write:a.txt=1]] [[write:b.txt=2]]", { maxTurns: 1 }), {
      cwd: dir,
    });
    assert.equal(natural.code, 1);
    assert.equal(natural.transcript.result?.subtype, "error_max_turns");
    assert.equal(await exists(join(dir, "a.txt")), true);
    assert.equal(await exists(join(dir, "b.txt")), false);
  });
});

Deno.test("fake claude: [[exit:N]], [[answer]], [[lines]] and FAKE_CLAUDE_MODE", async () => {
  const r = await run(claude("q [[exit:7]] [[answer:exactly this]] [[lines:3]] [[delay:1]]"));
  assert.equal(r.code, 7);
  assert.equal(r.transcript.result?.text, "exactly this");
  assert.equal(r.transcript.assistantText.length, 4);
  const env = await run(claude("What is 2+2?"), {
    env: { FAKE_CLAUDE_MODE: "answer:from-env startup:1" },
  });
  assert.equal(env.transcript.result?.text, "from-env");
  const both = await run(claude("q [[answer:prompt wins]]"), {
    env: { FAKE_CLAUDE_MODE: "[[answer:env]] [[silent:1]]" },
  });
  assert.equal(both.transcript.result?.text, "prompt wins");
});

Deno.test("fake claude: reads the prompt from stdin only when none is given, and [[stdin]] reads input", async () => {
  const piped = await run([FAKE, "-p"], { stdin: "What is 6*7?" });
  assert.equal(piped.stdout, "6 * 7 = 42\n");
  const withInput = await run([FAKE, "-p", "Summarize [[stdin]] [[no-marker]]"], { stdin: "abc" });
  assert.match(withInput.stdout, /Input received \(3 characters\):\nabc/);
  const none = await run([FAKE, "-p"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /Input must be provided/);
});

Deno.test("fake claude: output streamed chunk by chunk parses like the whole output", async () => {
  const child = new Deno.Command(FAKE, {
    args: claude("What is 2+2? [[lines:200]]").slice(1),
    env: { FAKE_CLAUDE_MODE: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const parser = new ClaudeStreamParser();
  const dec = new TextDecoder();
  let raw = "";
  let events = 0;
  for await (const chunk of child.stdout) {
    const text = dec.decode(chunk, { stream: true });
    raw += text;
    events += parser.push(text).length;
  }
  events += parser.end().length;
  assert.equal((await child.status).code, 0);
  assert.equal(events, 203);
  assert.deepEqual(parser.transcript(), parseClaudeOutput(raw));
});

Deno.test("fake claude: [[hang]] prints init, then waits until the test kills it", async () => {
  const child = new Deno.Command(FAKE, {
    args: claude("What is 2+2? [[hang]]").slice(1),
    env: { FAKE_CLAUDE_MODE: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  try {
    const text = await readUntil(reader, /\n/);
    assert.equal(JSON.parse(text).subtype, "init");
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.signal, "SIGTERM");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await reader.cancel();
    await child.status;
  }
});

Deno.test("fake claude: [[grandchild]] leaves a SIGTERM-proof grandchild that only a group SIGKILL ends", async () => {
  const child = new Deno.Command(FAKE, {
    args: claude("What is 2+2? [[grandchild]]").slice(1),
    env: { FAKE_CLAUDE_MODE: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    detached: true,
  }).spawn();
  const reader = child.stdout.getReader();
  let grandchild = 0;
  try {
    const text = await readUntil(reader, /grandchild pid (\d+)/);
    grandchild = Number(text.match(/grandchild pid (\d+)/)![1]);
    assert.ok(await alive(grandchild));
    Deno.kill(-child.pid, "SIGTERM");
    // Both ignore SIGTERM: give them a moment to (not) die.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await alive(child.pid), "the CLI ignores SIGTERM");
    assert.ok(await alive(grandchild), "the grandchild ignores SIGTERM");
    Deno.kill(-child.pid, "SIGKILL");
    assert.equal((await child.status).signal, "SIGKILL");
    for (let i = 0; i < 100 && await alive(grandchild); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await alive(grandchild), false);
  } finally {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* already gone */ }
    await reader.cancel();
    await child.status;
  }
});

Deno.test("fake claude: [[fail-first:N:DIRECTIVE]] fails N times per prompt, then succeeds", async () => {
  await withTempDir(async (state) => {
    const env = { FAKE_CLAUDE_STATE: state };
    const prompt = "What is 2+2? [[fail-first:2:usage-limit:+60]]";
    const kinds: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      // Retries carry a new marker and a refinement; it is still the same prompt.
      const p = i === 0
        ? prompt
        : `[marker:RETRY_${i}] ${prompt}\n\nIMPORTANT: Include '4' in your answer`;
      const r = await run(claude(p), { env });
      kinds.push(
        classifyFailure(r.transcript, { exitCode: r.code, status: r.code ? "failed" : "completed" })
          ?.kind,
      );
    }
    assert.deepEqual(kinds, ["rate_limit", "rate_limit", undefined]);
    // Another prompt has its own count.
    const other = await run(claude("What is 3+3? [[fail-first:1:exit:9]]"), { env });
    assert.equal(other.code, 9);
  });
});

Deno.test("fake claude: a failing attempt does not write; the retry does", async () => {
  await withTempDir(async (dir) => {
    const env = { FAKE_CLAUDE_STATE: join(dir, "state") };
    const prompt =
      "Create config.py [[fail-first:1:claim-write:config.py]] [[write:config.py=X=1]]";
    const first = await run(claude(prompt), { cwd: dir, env });
    assert.match(first.transcript.text, /I created config\.py/);
    assert.equal(await exists(join(dir, "config.py")), false);
    const second = await run(claude(prompt), { cwd: dir, env });
    assert.equal(second.code, 0);
    assert.equal(await Deno.readTextFile(join(dir, "config.py")), "X=1");
  });
});

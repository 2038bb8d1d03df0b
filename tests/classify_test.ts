/**
 * The failure classifier (lib/claude/classify.ts): kinds, policies, the structured fields first,
 * and the stand-in CLI's real processes.
 */

import assert from "node:assert/strict";
import { FAKE_CLAUDE, KEY_ENV } from "./_util/helpers.ts";
import { buildClaudeArgv } from "../lib/claude/argv.ts";
import { classifyFailure, FAILURE_POLICIES, retryFailure } from "../lib/claude/classify.ts";
import { type ClaudeTranscript, modelText, parseClaudeOutput } from "../lib/claude/stream.ts";
import { assistantLine, line, resultLine, STREAM } from "./_util/stream_json.ts";

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
// The classifier on what the CLI prints (CLAUDE_CLI.md), structured fields first
// ---------------------------------------------------------------------------------------------

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

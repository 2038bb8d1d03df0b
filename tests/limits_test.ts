/** Claude limit detection (lib/claude/limits.ts) in raw output. */

import assert from "node:assert/strict";
import { detectClaudeLimit, detectClaudeLimits } from "../lib/claude/limits.ts";
import { assistantLine, resultLine } from "./_util/stream_json.ts";

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

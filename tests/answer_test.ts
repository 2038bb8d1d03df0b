import assert from "node:assert/strict";
import { MAX_ANSWER_CHARS, runFacts, stripMarkerTags, tail } from "../lib/verdict/answer.ts";
import { FAKE_CLAUDE, KEY_ENV } from "./_util/helpers.ts";

Deno.test("runFacts() takes the answer, model, turns, tokens and cost from the stand-in's stream-json", async () => {
  const out = await new Deno.Command(FAKE_CLAUDE, {
    args: ["-p", "What is 2+2?", "--output-format", "stream-json", "--verbose", "--model", "haiku"],
    env: { ...KEY_ENV },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const f = runFacts(stdout, "");
  assert.match(f.answer ?? "", /2 \+ 2 = 4/);
  assert.doesNotMatch(f.answer ?? "", /"type"/, "the answer, not the envelope");
  assert.match(f.model ?? "", /haiku/);
  assert.equal(f.turns, 1);
  assert.ok(f.tokens && f.tokens.output > 0, JSON.stringify(f.tokens));
  assert.ok(typeof f.costUsd === "number" && f.costUsd > 0);
  assert.equal(f.stderrTail, undefined);
});

Deno.test("runFacts() of plain output is the output; stderr keeps its last lines", () => {
  const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n");
  const f = runFacts("hello\n", lines + "\n");
  assert.equal(f.answer, "hello");
  assert.equal(f.model, undefined);
  assert.equal(f.stderrTail?.split("\n").length, 20);
  assert.match(f.stderrTail ?? "", /^line 11\n[\s\S]*line 30$/);
  assert.equal(runFacts("", "  \n").answer, undefined);
  const big = runFacts("x".repeat(MAX_ANSWER_CHARS + 10), "");
  assert.match(big.answer ?? "", /… \(10 more chars\)$/);
  assert.equal(tail("a\nb\nc\n", 2), "b\nc");
  assert.equal(tail("x".repeat(100), 20, 10), "…" + "x".repeat(9));
});

Deno.test("runFacts() shows the answer without the [marker:…] tag the harness's prompt made it echo", async () => {
  const out = [
    '{"type":"system","subtype":"init","model":"m","tools":[],"claude_code_version":"2.1.197"}',
    JSON.stringify({
      type: "result",
      subtype: "success",
      is_error: false,
      result: "2 + 2 = 4\n\n[marker:MATH_20260101_120000]",
    }),
    "",
  ].join("\n");
  const facts = runFacts(out, "");
  assert.equal(facts.answer, "2 + 2 = 4");
  assert.equal(facts.cliVersion, "2.1.197");
  assert.equal(runFacts("five [marker:X] six\n", "").answer, "five six");
  // The stand-in echoes the prompt's marker at the end of its answer, as the seed's prompts ask.
  const real = await new Deno.Command(FAKE_CLAUDE, {
    args: ["-p", "[marker:M_1] What is 2+2?", "--output-format", "stream-json", "--verbose"],
    env: { ANTHROPIC_API_KEY: "sk-ant-stand-in-test" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const said = new TextDecoder().decode(real.stdout);
  assert.match(said, /\[marker:M_1\]/);
  assert.equal(runFacts(said, "").answer, "2 + 2 = 4");
  assert.equal(stripMarkerTags("  indented\ncode\n"), "  indented\ncode\n", "no tag: unchanged");
});

import assert from "node:assert/strict";
import {
  type Candidate,
  denoLint,
  EVALUATION_CRITERIA,
  type EvaluationCriterion,
  extractCodeBlocks,
  pickBest,
} from "../lib/verdict/pick.ts";

const CLEAN_JS = "```js\nexport const sum = (a, b) => a + b;\n```";
const SLOPPY_JS = "```javascript\nvar total = 0;\nif (total == 0) {}\nvar unused = 1;\n" +
  "function add(a, b) { let c; return a + b; }\n```";

/**
 * Six responses to "What is 2+2?" built so that every criterion picks a
 * different one, plus a seventh that would win everything but did not end well.
 */
function panel(): Candidate[] {
  return [
    { index: 0, text: "5", durationS: 1, ok: true, model: "claude-haiku", temperature: 0.2 },
    {
      index: 1,
      text: "Let me walk through this carefully, step by step.\n\n" +
        "- Start from the first number, two.\n- Count two more steps forward.\n" +
        "- Land on the result.\n\nIn code:\n" + SLOPPY_JS +
        "\nWe can double-check by counting on fingers, or with a number line, or with " +
        "blocks, which all land on the same place. The answer is 4.",
      durationS: 9,
      ok: true,
      model: "claude-sonnet",
      temperature: 0.5,
    },
    {
      index: 2,
      text: "2 + 2 = 4",
      durationS: 4,
      ok: true,
      model: "claude-sonnet",
      temperature: 0.9,
    },
    {
      index: 3,
      text: "Answer: 4. Addition of two and two gives four.",
      durationS: 3,
      ok: true,
      model: "claude-sonnet",
      temperature: 0.3,
    },
    {
      index: 4,
      text: "The answer is 4",
      durationS: 2,
      ok: true,
      model: "claude-sonnet",
      temperature: 0.4,
    },
    {
      index: 5,
      text: "The answer is 4. " + "Addition of two and two gives four, a long answer. ".repeat(30) +
        CLEAN_JS,
      durationS: 0.1,
      ok: false,
      model: "claude-opus",
      temperature: 1.5,
    },
    {
      index: 6,
      text: `${CLEAN_JS}\nThe answer is 4.`,
      durationS: 6,
      ok: true,
      model: "claude-sonnet",
      temperature: 0.1,
    },
  ];
}

const PATTERNS = ["addition", "four", "answer"];

Deno.test("pickBest() picks a different response for each criterion on the same panel", async () => {
  const expected: Record<EvaluationCriterion, number> = {
    FASTEST: 0,
    MOST_DETAILED: 1,
    HIGHEST_MODEL_TEMP: 2,
    PATTERN_MATCH: 3,
    CONSENSUS: 4,
    BEST_CODE_QUALITY: 6,
  };
  const picked: Record<string, number | undefined> = {};
  for (const criterion of EVALUATION_CRITERIA) {
    const { best } = await pickBest(panel(), criterion, { expectedPatterns: PATTERNS });
    picked[criterion] = best?.index;
  }
  assert.deepEqual(picked, expected);
  assert.equal(new Set(Object.values(picked)).size, EVALUATION_CRITERIA.length);
});

Deno.test("pickBest() never picks a candidate that did not end well and scores it NaN", async () => {
  for (const criterion of EVALUATION_CRITERIA) {
    const { best, scores } = await pickBest(panel(), criterion, { expectedPatterns: PATTERNS });
    assert.notEqual(best?.index, 5, criterion);
    const s5 = scores.find((s) => s.index === 5)!;
    assert.ok(Number.isNaN(s5.score), criterion);
    assert.match(s5.note, /not eligible/);
    assert.deepEqual(scores.map((s) => s.index), [0, 1, 2, 3, 4, 5, 6]);
  }
});

Deno.test("pickBest() returns no best when no candidate ended well", async () => {
  const cands = panel().map((c) => ({ ...c, ok: false }));
  for (const criterion of EVALUATION_CRITERIA) {
    const { best, scores } = await pickBest(cands, criterion);
    assert.equal(best, undefined);
    assert.equal(scores.length, cands.length);
  }
  assert.equal((await pickBest([], "FASTEST")).best, undefined);
});

Deno.test("pickBest() FASTEST breaks equal durations by index", async () => {
  const { best, scores } = await pickBest([
    { index: 3, text: "a", durationS: 2, ok: true },
    { index: 1, text: "b", durationS: 2, ok: true },
    { index: 2, text: "c", durationS: 5, ok: true },
  ], "FASTEST");
  assert.equal(best?.index, 1);
  assert.deepEqual(scores.map((s) => s.score), [2, 2, 5]);
});

Deno.test("pickBest() MOST_DETAILED breaks equal word counts by code blocks and list items", async () => {
  const { best } = await pickBest([
    { index: 0, text: "one two three four five six", durationS: 1, ok: true },
    { index: 1, text: "- one two\n- three four\n- five six", durationS: 2, ok: true },
  ], "MOST_DETAILED");
  assert.equal(best?.index, 1);
});

Deno.test("pickBest() HIGHEST_MODEL_TEMP breaks ties by model name, then speed; missing temperature ranks last", async () => {
  const base = { text: "x", ok: true };
  let r = await pickBest([
    { ...base, index: 0, durationS: 1, model: "sonnet", temperature: 0.7 },
    { ...base, index: 1, durationS: 5, model: "opus", temperature: 0.7 },
    { ...base, index: 2, durationS: 1, model: "haiku" },
  ], "HIGHEST_MODEL_TEMP");
  assert.equal(r.best?.index, 1);
  r = await pickBest([
    { ...base, index: 0, durationS: 3, model: "opus", temperature: 0.7 },
    { ...base, index: 1, durationS: 2, model: "opus", temperature: 0.7 },
  ], "HIGHEST_MODEL_TEMP");
  assert.equal(r.best?.index, 1);
});

Deno.test("pickBest() PATTERN_MATCH counts patterns case-insensitively, or uses patternsFound without patterns", async () => {
  const cands: Candidate[] = [
    { index: 0, text: "def FIB(n): return n", durationS: 1, ok: true, patternsFound: 0 },
    { index: 1, text: "fib, memo", durationS: 2, ok: true, patternsFound: 5 },
  ];
  const r = await pickBest(cands, "PATTERN_MATCH", { expectedPatterns: ["def ", "fib"] });
  assert.equal(r.best?.index, 0);
  assert.match(r.scores[1].note, /1\/2 patterns; missing "def "/);
  assert.equal((await pickBest(cands, "PATTERN_MATCH")).best?.index, 1);
});

Deno.test("pickBest() CONSENSUS prefers the biggest agreeing group over a faster lone answer", async () => {
  const { best, scores } = await pickBest([
    { index: 0, text: "**5**", durationS: 0.5, ok: true },
    { index: 1, text: "After careful thought, the answer is **4**.", durationS: 3, ok: true },
    { index: 2, text: "4.0", durationS: 2, ok: true },
    { index: 3, text: "Four!", durationS: 4, ok: true },
  ], "CONSENSUS");
  assert.equal(best?.index, 2);
  assert.deepEqual(scores.map((s) => s.score), [1, 3, 3, 3]);
});

Deno.test("pickBest() CONSENSUS compares whole texts by word overlap when there is no short answer", async () => {
  const para = (extra: string) =>
    `Recursion is when a function calls itself on a smaller input until it reaches a base case ${extra}`;
  const { best } = await pickBest([
    {
      index: 0,
      text: "Iteration repeats a loop body; no self calls at all here",
      durationS: 1,
      ok: true,
    },
    { index: 1, text: para("and then returns."), durationS: 3, ok: true },
    { index: 2, text: para("before unwinding."), durationS: 2, ok: true },
    { index: 3, text: para(""), durationS: 5, ok: true },
  ], "CONSENSUS");
  // 3 is the common core of 1 and 2, so it is closest to the others.
  assert.equal(best?.index, 3);
});

Deno.test("pickBest() BEST_CODE_QUALITY ranks clean JS above sloppy JS with the real deno lint", async () => {
  const { best, scores } = await pickBest([
    { index: 0, text: SLOPPY_JS, durationS: 1, ok: true },
    { index: 1, text: CLEAN_JS, durationS: 5, ok: true },
    { index: 2, text: "No code, just prose.", durationS: 0.5, ok: true },
  ], "BEST_CODE_QUALITY");
  assert.equal(best?.index, 1);
  assert.ok(scores[0].score > 0, scores[0].note);
  assert.equal(scores[1].score, 0);
  assert.ok(Number.isNaN(scores[2].score));
  assert.match(scores[2].note, /no code blocks/);
});

Deno.test("pickBest() BEST_CODE_QUALITY uses the given linter and breaks ties by speed; a failing lint ranks last", async () => {
  const lint = (blocks: { code: string }[]) => {
    if (blocks[0].code.includes("boom")) return Promise.reject(new Error("boom"));
    return Promise.resolve(blocks[0].code.length % 2);
  };
  const { best, scores } = await pickBest(
    [
      { index: 0, text: "```\nboom\n```", durationS: 0.1, ok: true },
      { index: 1, text: "```\nab\n```", durationS: 3, ok: true },
      { index: 2, text: "```\ncd\n```", durationS: 2, ok: true },
    ],
    "BEST_CODE_QUALITY",
    { lint },
  );
  assert.equal(best?.index, 2);
  assert.match(scores[0].note, /lint failed.*boom/);
});

Deno.test("denoLint() counts deno lint diagnostics, and a syntax error heavily", async () => {
  assert.equal(await denoLint([{ lang: "js", code: "export const x = 1;\n" }]), 0);
  assert.equal(await denoLint([{ lang: "js", code: "var x = 1;\nif (x) {}\n" }]), 2);
  assert.equal(await denoLint([{ lang: "ts", code: "const = ;\n" }]), 10);
});

Deno.test("denoLint() ignores unused top-level declarations but not unused locals", async () => {
  assert.equal(
    await denoLint([{ lang: "js", code: "function add(a, b) {\n  return a + b;\n}\n" }]),
    0,
  );
  assert.equal(
    await denoLint([{
      lang: "js",
      code: "function add(a, b) {\n  const c = 1;\n  return a + b;\n}\n",
    }]),
    1,
  );
});

Deno.test("denoLint() lints unlabeled blocks only when they parse, and skips other languages", async () => {
  assert.equal(await denoLint([{ lang: "", code: "hello world, this is prose\n" }]), 0);
  assert.equal(await denoLint([{ lang: "", code: "var y = 2;\nexport { y };\n" }]), 1);
  assert.equal(await denoLint([{ lang: "bash", code: "ls -la\n" }]), 0);
});

Deno.test("denoLint() checks Python syntax and a few documented smells", async () => {
  const clean = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n";
  assert.equal(await denoLint([{ lang: "python", code: clean }]), 0);
  const sloppy =
    "import os\nfrom math import *\n\ndef f(x):\n    try:\n        return x == None\n" +
    "    except:\n        pass\n";
  // unused `os`, star import, `== None`, bare except
  assert.equal(await denoLint([{ lang: "python", code: sloppy }]), 4);
  assert.ok(await denoLint([{ lang: "py", code: "def f(:\n  pass\n" }]) >= 10);
});

Deno.test("extractCodeBlocks() reads labeled, unlabeled, indented and unclosed fences", () => {
  const text = "Intro\n```Python title=x\nprint(1)\n```\n\n1. step\n   ```\n   a = 1\n   ```\n" +
    "~~~ts\nconst x = 1;\n~~~\n```js\nlet cut";
  assert.deepEqual(extractCodeBlocks(text), [
    { lang: "python", code: "print(1)\n" },
    { lang: "", code: "a = 1\n" },
    { lang: "ts", code: "const x = 1;\n" },
    { lang: "js", code: "let cut\n" },
  ]);
  assert.deepEqual(extractCodeBlocks("no code here"), []);
});

import assert from "node:assert/strict";
import {
  compilePattern,
  matchPatterns,
  patternProblem,
  stripMarkers,
} from "../lib/verdict/patterns.ts";

Deno.test("markers are removed before matching: a timestamp never satisfies a pattern", () => {
  const answer = "five\n\n[marker:BASIC_MATH_20261201_144200]";
  assert.deepEqual(matchPatterns(answer, ["4", "2026", "five"]), {
    found: ["five"],
    missing: ["4", "2026"],
  });
  // The run's own marker is removed wherever it appears, with or without the tag.
  assert.deepEqual(
    matchPatterns("echoed M_2026_4 and done", ["2026", "done"], { markers: ["M_2026_4"] }),
    { found: ["done"], missing: ["2026"] },
  );
  assert.equal(stripMarkers("a [MARKER:x4] b [marker:] c"), "a  b  c");
});

Deno.test("plain patterns are case-insensitive substrings", () => {
  assert.deepEqual(matchPatterns("The answer is 42. PARIS", ["4", "paris", "Paris", "london"]), {
    found: ["4", "paris", "Paris"],
    missing: ["london"],
  });
  // Regex metacharacters in a plain pattern are literal.
  assert.deepEqual(matchPatterns("f(x) = 2*x", ["f(x)", "2*x", "a.b"]).missing, ["a.b"]);
});

Deno.test("word: patterns and whole_word match whole words only", () => {
  assert.deepEqual(matchPatterns("2 + 2 = 4.", ["word:4"]).found, ["word:4"]);
  assert.deepEqual(matchPatterns("The answer is 42", ["word:4"]).missing, ["word:4"]);
  assert.deepEqual(matchPatterns("concatenate", ["word:cat"]).missing, ["word:cat"]);
  assert.deepEqual(matchPatterns("Über alles", ["word:über"]).found, ["word:über"]);
  // whole_word applies to every plain pattern; regex: patterns are left as written.
  const o = { wholeWord: true };
  assert.deepEqual(matchPatterns("42 apples", ["4", "42", "apple", "regex:appl"], o), {
    found: ["42", "regex:appl"],
    missing: ["4", "apple"],
  });
});

Deno.test("regex: patterns are case-insensitive, multi-line regular expressions", () => {
  assert.deepEqual(
    matchPatterns("Result:\n55 IS the answer", ["regex:^\\d+ is", "regex:^result:$", "regex:x{3}"]),
    { found: ["regex:^\\d+ is", "regex:^result:$"], missing: ["regex:x{3}"] },
  );
  assert.ok(compilePattern("regex:a|b").test("B"));
  assert.match(patternProblem("regex:(a") ?? "", /^invalid regular expression: /);
  assert.match(patternProblem("regex:") ?? "", /empty/);
  assert.match(patternProblem("word:") ?? "", /empty/);
  assert.equal(patternProblem("regex:a+"), undefined);
});

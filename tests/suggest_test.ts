import assert from "node:assert/strict";
import { didYouMean, editDistance, suggest } from "../lib/common/suggest.ts";

Deno.test("editDistance() counts insertions, deletions, substitutions and swaps", () => {
  assert.equal(editDistance("timout", "timeout"), 1);
  assert.equal(editDistance("strees", "stress"), 1);
  assert.equal(editDistance("ab", "ba"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("same", "same"), 0);
});

Deno.test("suggest() offers a close candidate and nothing for an unrelated word", () => {
  assert.equal(suggest("expected_pattern", ["expected_patterns", "prompt"]), "expected_patterns");
  assert.equal(suggest("Stress", ["serve", "stress"]), "stress");
  assert.equal(suggest("conc", ["concurrency", "category"]), "concurrency");
  assert.equal(suggest("zzz", ["prompt", "timeout"]), undefined);
  assert.equal(suggest("x", []), undefined);
  assert.equal(didYouMean("timout", ["timeout"]), ' (did you mean "timeout"?)');
  assert.equal(didYouMean("qqqq", ["timeout"]), "");
});

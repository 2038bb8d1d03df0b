import assert from "node:assert/strict";
import { formatRatioLine } from "../lib/stress/report/format.ts";
import { summarize } from "../lib/stress/report/model.ts";
import { many } from "./_util/report.ts";

Deno.test("summarize() graduates at exactly the threshold and not below it", () => {
  const at = summarize([...many(10, "passed"), ...many(1, "failed")], 10);
  assert.deepEqual(at, {
    total: 11,
    passed: 10,
    failed: 1,
    errors: 0,
    ratio: 10,
    graduated: true,
  });
  const below = summarize([...many(19, "passed"), ...many(2, "failed")], 10);
  assert.equal(below.ratio, 9.5);
  assert.equal(below.graduated, false);
});

Deno.test("summarize() reports an infinite ratio as null when nothing failed, and graduates", () => {
  const s = summarize(many(3, "passed"), 10);
  assert.equal(s.ratio, null);
  assert.equal(s.graduated, true);
  assert.equal(formatRatioLine(s, 10), "Success ratio: ∞:1 (need 10:1 to graduate)");
});

Deno.test("summarize() never graduates a run with errors, whatever the ratio", () => {
  const s = summarize([...many(50, "passed"), ...many(1, "error")], 10);
  assert.equal(s.ratio, 50);
  assert.equal(s.errors, 1);
  assert.equal(s.graduated, false);
});

Deno.test("summarize() of all errors is ratio 0 and not graduated", () => {
  const s = summarize(many(4, "error"), 10);
  assert.deepEqual(s, { total: 4, passed: 0, failed: 0, errors: 4, ratio: 0, graduated: false });
  assert.equal(formatRatioLine(s, 10), "Success ratio: 0.0:1 (need 10:1 to graduate)");
});

Deno.test("summarize() of an empty run is ratio 0 and not graduated", () => {
  const s = summarize([], 10);
  assert.deepEqual(s, { total: 0, passed: 0, failed: 0, errors: 0, ratio: 0, graduated: false });
  assert.equal(formatRatioLine(s, 10), "Success ratio: 0.0:1 (need 10:1 to graduate)");
});

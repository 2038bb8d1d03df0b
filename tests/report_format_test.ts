import assert from "node:assert/strict";
import { formatRatioLine, oneLine } from "../lib/stress/report/format.ts";
import { summarize } from "../lib/stress/report/model.ts";
import { many } from "./_util/report.ts";

Deno.test("formatRatioLine() has one decimal, truncated so it never overstates", () => {
  const line = (p: number, f: number, e = 0) =>
    formatRatioLine(
      summarize([...many(p, "passed"), ...many(f, "failed"), ...many(e, "error")], 10),
      10,
    );
  assert.equal(line(10, 1), "Success ratio: 10.0:1 (need 10:1 to graduate)");
  assert.equal(line(3, 1), "Success ratio: 3.0:1 (need 10:1 to graduate)");
  assert.equal(line(20, 3), "Success ratio: 6.6:1 (need 10:1 to graduate)");
  assert.equal(line(199, 20), "Success ratio: 9.9:1 (need 10:1 to graduate)"); // 9.95, not 10.0
  assert.equal(line(5, 1, 1), "Success ratio: 2.5:1 (need 10:1 to graduate)");
  assert.equal(line(1, 3), "Success ratio: 0.3:1 (need 10:1 to graduate)");
});

Deno.test("formatRatioLine() names the threshold it was given", () => {
  const s = summarize([...many(4, "passed"), ...many(1, "failed")], 5);
  assert.equal(formatRatioLine(s, 5), "Success ratio: 4.0:1 (need 5:1 to graduate)");
});

Deno.test("oneLine() strips ANSI and control characters and joins lines", () => {
  assert.equal(oneLine("\x1b[31mexit 1\x1b[0m\nstderr:\tboom\x07"), "exit 1 stderr: boom");
  assert.equal(oneLine("x".repeat(10), 5), "xxxx…");
});

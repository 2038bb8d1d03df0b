/** Shared formatting (lib/common/format.ts): durations, timestamps, run ids, error texts. */

import assert from "node:assert/strict";
import {
  errorText,
  formatDuration,
  formatElapsed,
  formatSeconds,
  formatTimestamp,
  newRunId,
} from "../lib/common/format.ts";

Deno.test("formatDuration() reads like the seed's report", () => {
  assert.equal(formatDuration(0.42), "0.4s");
  assert.equal(formatDuration(59.96), "1m 00.0s");
  assert.equal(formatDuration(123.5), "2m 03.5s");
  assert.equal(formatDuration(3723), "1h 02m 03s");
  assert.equal(formatDuration(-1), "0.0s");
});

Deno.test("formatElapsed() shows whole seconds and two units at most, for the live line", () => {
  assert.equal(formatElapsed(0), "0s");
  assert.equal(formatElapsed(12.9), "12s");
  assert.equal(formatElapsed(59.99), "59s");
  assert.equal(formatElapsed(60), "1m 00s");
  assert.equal(formatElapsed(185), "3m 05s");
  assert.equal(formatElapsed(3599), "59m 59s");
  assert.equal(formatElapsed(3725), "1h 02m");
  assert.equal(formatElapsed(-5), "0s");
});

Deno.test("formatSeconds() keeps at most one decimal and drops a trailing zero", () => {
  assert.equal(formatSeconds(30), "30s");
  assert.equal(formatSeconds(56.25), "56.3s");
  assert.equal(formatSeconds(0.04), "0s");
  assert.equal(formatSeconds(120.0), "120s");
});

Deno.test("formatTimestamp() uses the seed's YYYYMMDD_HHMMSS", () => {
  assert.equal(formatTimestamp(new Date(2025, 5, 27, 9, 5, 3)), "20250627_090503");
});

Deno.test("newRunId() is the local timestamp and six random hex digits, new every time", () => {
  const d = new Date(2025, 5, 27, 9, 5, 3);
  const a = newRunId(d);
  assert.match(a, /^20250627_090503_[0-9a-f]{6}$/);
  assert.notEqual(newRunId(d), a);
  assert.match(newRunId(), /^\d{8}_\d{6}_[0-9a-f]{6}$/);
});

Deno.test("errorText() gives a message, else a code, and joins an AggregateError's errors", () => {
  assert.equal(errorText(new Error("boom")), "boom");
  assert.equal(errorText(Object.assign(new Error(""), { code: "ECONNREFUSED" })), "ECONNREFUSED");
  assert.equal(errorText(new TypeError("")), "TypeError");
  assert.equal(
    errorText(
      new AggregateError([new Error("ECONNREFUSED ::1"), new Error("ECONNREFUSED 127.0.0.1")]),
    ),
    "ECONNREFUSED ::1; ECONNREFUSED 127.0.0.1",
  );
  assert.equal(errorText(new AggregateError([], "none at all")), "none at all");
  assert.equal(errorText("plain"), "plain");
});

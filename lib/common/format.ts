/**
 * Formatting shared across ccx: durations (reports, the live line, timeout estimates), the
 * seed's `YYYYMMDD_HHMMSS` timestamp, run ids, and the one-line text of an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration, formatElapsed, formatSeconds, newRunId } from "./format.ts";
 * assert.equal(formatDuration(123.5), "2m 03.5s"); // reports
 * assert.equal(formatElapsed(185.9), "3m 05s"); // the live line
 * assert.equal(formatSeconds(56.25), "56.3s"); // timeout estimates
 * assert.match(newRunId(new Date(2025, 5, 27, 9, 5, 3)), /^20250627_090503_[0-9a-f]{6}$/);
 * ```
 * @module
 */

/**
 * The text of an error for a message: its `message`, else its `code` (Node's `ECONNREFUSED`…),
 * else its name; the errors of an `AggregateError` (a connection tried on several addresses)
 * joined by `; `; anything else as a string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorText } from "./format.ts";
 * assert.equal(errorText(Object.assign(new Error(""), { code: "ENOENT" })), "ENOENT");
 * assert.equal(errorText(new Error("boom")), "boom");
 * assert.equal(errorText("plain"), "plain");
 * ```
 */
export function errorText(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) {
    return e.errors.map(errorText).join("; ");
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return e.message || (typeof code === "string" ? code : e.name);
  }
  return String(e);
}

/**
 * A duration as reports show it: tenths of a second under a minute, then minutes and seconds,
 * then whole hours, minutes and seconds: `0.4s`, `12.3s`, `2m 03.5s`, `1h 02m 03s`. Negative and
 * non-finite values read `0.0s`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./format.ts";
 * assert.equal(formatDuration(0.42), "0.4s");
 * assert.equal(formatDuration(123.5), "2m 03.5s");
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const tenths = Math.round(seconds * 10);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  const whole = Math.floor(tenths / 10);
  if (whole < 3600) {
    const m = Math.floor(whole / 60);
    const s = ((tenths - m * 600) / 10).toFixed(1).padStart(4, "0");
    return `${m}m ${s}s`;
  }
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  return `${h}h ${String(m).padStart(2, "0")}m ${String(s).padStart(2, "0")}s`;
}

/**
 * Elapsed time for the live line, in whole seconds (rounded down) and two units at most:
 * `12s`, `3m 05s`, `1h 02m`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatElapsed } from "./format.ts";
 * assert.equal(formatElapsed(12.9), "12s");
 * assert.equal(formatElapsed(185), "3m 05s");
 * assert.equal(formatElapsed(3725), "1h 02m");
 * ```
 */
export function formatElapsed(seconds: number): string {
  const secs = Math.max(0, Math.floor(seconds));
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ${String(secs % 60).padStart(2, "0")}s`;
  return `${Math.floor(secs / 3600)}h ${String(Math.floor(secs % 3600 / 60)).padStart(2, "0")}m`;
}

/**
 * Seconds with at most one decimal and no trailing zero, as timeout estimates explain
 * themselves: `30s`, `56.3s`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSeconds } from "./format.ts";
 * assert.equal(formatSeconds(30), "30s");
 * assert.equal(formatSeconds(56.25), "56.3s");
 * ```
 */
export function formatSeconds(s: number): string {
  return `${Number(s.toFixed(1))}s`;
}

/**
 * The seed's timestamp format, `YYYYMMDD_HHMMSS` in local time, for `${TIMESTAMP}` and run ids.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTimestamp } from "./format.ts";
 * assert.equal(formatTimestamp(new Date(2025, 5, 27, 9, 5, 3)), "20250627_090503");
 * ```
 */
export function formatTimestamp(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}_` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/**
 * A run id: the local {@linkcode formatTimestamp} of `d` plus a short random suffix, safe in
 * file names (`ccx stress` runs and fleet queue runs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newRunId } from "./format.ts";
 * const id = newRunId(new Date(2025, 5, 27, 9, 5, 3)); // e.g. "20250627_090503_3f9a1c"
 * assert.match(id, /^20250627_090503_[0-9a-f]{6}$/);
 * ```
 */
export function newRunId(d: Date = new Date()): string {
  return `${formatTimestamp(d)}_${crypto.randomUUID().slice(0, 6)}`;
}

/**
 * A count with its noun, singular for exactly one: `1 error`, `2 errors`, `0 errors`. `many`
 * gives an irregular plural.
 *
 * @example
 * ```ts
 * import { plural } from "./format.ts";
 * console.log(plural(1, "warning"), plural(3, "category", "categories")); // 1 warning 3 categories
 * ```
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * A byte count for people: `512 B`, `2.1 KB`, `3.4 MB`, `1.2 GB` (powers of 1024).
 *
 * @example
 * ```ts
 * import { formatBytes } from "./format.ts";
 * console.log(formatBytes(2150)); // 2.1 KB
 * ```
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * How long to wait before retrying after a Claude usage/rate limit: until the
 * limit's reset when the CLI says when, else exponential backoff with jitter,
 * always bounded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { limitWaitMs } from "./backoff.ts";
 * const now = () => 1_750_000_000_000;
 * // The CLI said when the limit resets: wait until then, plus a second.
 * assert.equal(limitWaitMs({ resetTimestamp: 1_750_000_030 }, 0, { now, maxWaitS: 600 }), 31_000);
 * // It did not: 2^attempt steps of baseS, plus up to 25 % jitter.
 * assert.equal(limitWaitMs({}, 2, { baseS: 1, maxWaitS: 60, random: () => 0.5 }), 4_500);
 * // A reset beyond maxWaitS: not worth waiting for.
 * assert.equal(limitWaitMs({ retryAfter: 3600 }, 0, { maxWaitS: 600 }), undefined);
 * ```
 * @module
 */

/** What a limit said about when to try again. */
export interface LimitTiming {
  /** Epoch seconds at which the limit resets. */
  resetTimestamp?: number;
  /** Seconds to wait, as the API said. */
  retryAfter?: number;
}

/** Bounds of {@linkcode limitWaitMs}. */
export interface BackoffOptions {
  /** First backoff step in seconds (default 2). */
  baseS?: number;
  /** Never wait longer than this (default 300). */
  maxWaitS?: number;
  /** Clock, for tests (default Date.now). */
  now?: () => number;
  /** Random source in [0,1), for tests (default Math.random). */
  random?: () => number;
}

/**
 * Milliseconds to wait before retry number `attempt` (0-based). Returns
 * `undefined` when the reset lies beyond `maxWaitS`: waiting is pointless then.
 */
export function limitWaitMs(
  limit: LimitTiming,
  attempt: number,
  opts: BackoffOptions = {},
): number | undefined {
  const now = (opts.now ?? Date.now)();
  const maxMs = (opts.maxWaitS ?? 300) * 1000;
  if (limit.resetTimestamp !== undefined) {
    const ms = Math.max(0, limit.resetTimestamp * 1000 - now) + 1000;
    return ms > maxMs ? undefined : ms;
  }
  if (limit.retryAfter !== undefined) {
    const ms = limit.retryAfter * 1000;
    return ms > maxMs ? undefined : ms;
  }
  const base = (opts.baseS ?? 2) * 1000 * 2 ** attempt;
  const jitter = (opts.random ?? Math.random)() * base * 0.25;
  return Math.min(maxMs, base + jitter);
}

/**
 * Sleeps `ms`, or less when `signal` aborts (then resolves false).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sleepUnlessAborted } from "./backoff.ts";
 * assert.equal(await sleepUnlessAborted(10), true);
 * assert.equal(await sleepUnlessAborted(60_000, AbortSignal.abort()), false);
 * ```
 */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

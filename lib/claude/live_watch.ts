/**
 * The live watch of a Claude run: decides, while the run streams, when it must end early (an
 * `api_retry` for bad credentials, an API unreachable for too long, output that stopped), so
 * `ccx exec` and `ccx stress` do not wait out a run that cannot succeed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClaudeLiveWatch } from "./live_watch.ts";
 * const ended = Promise.withResolvers<string>();
 * const watch = new ClaudeLiveWatch({
 *   stallTimeoutS: 0.05,
 *   startupGraceS: 0,
 *   onFailure: (f) => ended.resolve(f.kind), // the caller cancels the job here
 * });
 * watch.output([]); // an output chunk: the stall clock starts over
 * assert.equal(await ended.promise, "stall"); // then 50 ms of silence
 * assert.equal(watch.failure?.kind, "stall");
 * watch.stop();
 * ```
 *
 * @module
 */

import { type ClaudeFailure, failureOf, retryFailure } from "./classify.ts";
import type { ClaudeApiRetry, ClaudeEvent } from "./stream.ts";

/**
 * Seconds a Claude job may stay silent before its first output, whatever its stall timeout: the
 * real CLI prints nothing for ~19 s at startup when an API key is set and the Anthropic host
 * cannot be reached (it retries fetching settings first), and a stall clock must not kill every
 * attempt before it begins.
 */
export const CLAUDE_STARTUP_GRACE_S = 60;

/**
 * How long ccx lets the CLI retry an unreachable API (`api_retry` lines with no HTTP status)
 * before it ends the attempt as `network`; the CLI alone would go on for ~3 minutes.
 */
export const NETWORK_GIVE_UP_S = 30;

/** Options of {@linkcode ClaudeLiveWatch}. */
export interface LiveWatchOptions {
  /** Seconds without output before the run counts as stalled (none: no stall clock). */
  stallTimeoutS?: number;
  /** Silence allowed before the first output (default {@linkcode CLAUDE_STARTUP_GRACE_S}). */
  startupGraceS?: number;
  /** Network retries allowed, seconds (default {@linkcode NETWORK_GIVE_UP_S}). */
  networkGiveUpS?: number;
  /** Called once, when the watch decides the attempt must end now. */
  onFailure(failure: ClaudeFailure): void;
}

/**
 * Watches a Claude run as it streams and decides when it must end early: at once on an
 * `api_retry` line whose cause cannot heal (401/403: `auth`); after `networkGiveUpS` of retries
 * without any HTTP response (`network`); and when the output stops for `stallTimeoutS` (`stall`),
 * with a grace of `startupGraceS` before the first output. The caller cancels the job in
 * `onFailure` and reports {@linkcode ClaudeLiveWatch.failure} instead of the classification of
 * the canceled run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClaudeLiveWatch } from "./live_watch.ts";
 * import { ClaudeStreamParser } from "./stream.ts";
 * const parser = new ClaudeStreamParser();
 * const kinds: string[] = [];
 * const watch = new ClaudeLiveWatch({ onFailure: (f) => kinds.push(f.kind) });
 * watch.output(parser.push(
 *   '{"type":"system","subtype":"api_retry","attempt":1,"error_status":401,"error":"authentication_failed"}\n',
 * ));
 * assert.deepEqual(kinds, ["auth"]); // at once: a bad key does not heal
 * watch.stop();
 * ```
 */
export class ClaudeLiveWatch {
  #opts: LiveWatchOptions;
  #failure?: ClaudeFailure;
  #stallTimer?: ReturnType<typeof setTimeout>;
  #netTimer?: ReturnType<typeof setTimeout>;
  #netSince?: number;
  #lastRetry?: ClaudeApiRetry;
  #stopped = false;

  /** Starts the watch (and the stall clock, with its startup grace). */
  constructor(opts: LiveWatchOptions) {
    this.#opts = opts;
    const stall = opts.stallTimeoutS;
    if (stall !== undefined) {
      const grace = Math.max(stall, opts.startupGraceS ?? CLAUDE_STARTUP_GRACE_S);
      this.#stallTimer = setTimeout(
        () =>
          this.#end(failureOf(
            "stall",
            `no output at all for ${grace} s (the stall timeout of ${stall} s, with a startup grace)`,
          )),
        grace * 1000,
      );
    }
  }

  /** The failure that ended the run early, if the watch ended it. */
  get failure(): ClaudeFailure | undefined {
    return this.#failure;
  }

  /** Feed every output chunk's parsed events (an empty list for a chunk with no full line). */
  output(events: ClaudeEvent[]): void {
    if (this.#stopped) return;
    const stall = this.#opts.stallTimeoutS;
    if (stall !== undefined) {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = setTimeout(
        () => this.#end(failureOf("stall", `no output for ${stall} s`)),
        stall * 1000,
      );
    }
    for (const ev of events) {
      if (ev.type === "system" && ev.apiRetry) {
        this.#retry(ev.apiRetry);
        if (this.#stopped) return;
      } else if (ev.type !== "unknown" && ev.type !== "system") {
        this.#healed();
      }
    }
  }

  /** Stops the clocks; call it when the run ended. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#stallTimer);
    clearTimeout(this.#netTimer);
  }

  #retry(r: ClaudeApiRetry): void {
    this.#lastRetry = r;
    const f = retryFailure(r);
    if (f.kind === "auth") return this.#end(f);
    if (f.kind !== "network") return this.#healed();
    if (this.#netSince !== undefined) return;
    this.#netSince = Date.now();
    const giveUp = this.#opts.networkGiveUpS ?? NETWORK_GIVE_UP_S;
    this.#netTimer = setTimeout(() => {
      const last = this.#lastRetry;
      this.#end(failureOf(
        "network",
        `the API could not be reached for ${giveUp} s` +
          (last
            ? ` (the CLI was at retry ${last.attempt}${
              last.maxRetries ? ` of ${last.maxRetries}` : ""
            })`
            : ""),
      ));
    }, giveUp * 1000);
  }

  #healed(): void {
    this.#netSince = undefined;
    clearTimeout(this.#netTimer);
  }

  #end(f: ClaudeFailure): void {
    if (this.#stopped) return;
    this.stop();
    this.#failure = f;
    this.#opts.onFailure(f);
  }
}

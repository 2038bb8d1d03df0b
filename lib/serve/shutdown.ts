/**
 * The server's orderly shutdown, phase by phase: every job's group is ended
 * (SIGCONT, SIGTERM, grace, SIGKILL), and each session, as soon as its own jobs
 * have ended, is drained (everything queued for it, its `process.completed` and
 * `process.exit` included, reaches the client) and closed with 1001, up to a
 * deadline of grace + drain after the signal; a client that has not read its
 * output by then is dropped, and the log says so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type DrainSession, drainSessions } from "./shutdown.ts";
 * // A session whose client answers the close at once, and one that never reads.
 * const session = (answers: boolean): DrainSession => {
 *   const closed = Promise.withResolvers<void>();
 *   return {
 *     queued: () => (answers ? 0 : 4096),
 *     unfinished: () => 0,
 *     settled: () => Promise.resolve(),
 *     close: () => answers && closed.resolve(),
 *     closed: closed.promise,
 *     drop: () => closed.resolve(),
 *   };
 * };
 * const r = await drainSessions([session(true), session(false)], performance.now() + 100);
 * assert.deepEqual(r, { delivered: 1, gone: 0, dropped: 1 });
 * ```
 * @module
 */

import type { LogFields, Logger } from "../common/log.ts";

/** The close code of every connection the shutdown ends: 1001, going away. */
export const SHUTDOWN_CLOSE_CODE = 1001;

/** The close reason of a session that received all its output. */
export const SHUTDOWN_REASON = "server shutting down";

/** The close reason of a session dropped at the drain deadline. */
export const DROPPED_REASON = "server shut down: output not read by the drain deadline";

/** What the drain needs of a session. */
export interface DrainSession {
  /** Bytes its WebSocket still holds, not yet handed to the connection. */
  queued(): number;
  /** Jobs of the session whose `process.completed` has not been sent yet. */
  unfinished(): number;
  /** Resolves once every job of the session has sent its `process.completed` and `process.exit`. */
  settled(): Promise<unknown>;
  /** Starts the WebSocket closing handshake; what was sent before goes first. */
  close(code: number, reason: string): void;
  /** Resolves once the socket is closed: the client answered the close, or the connection ended. */
  readonly closed: Promise<unknown>;
  /**
   * Ends the connection now, with a close frame at the next frame boundary if it can
   * still go out, and logs it with `fields`.
   */
  drop(code: number, reason: string, fields: LogFields): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How often a drained session's socket queue is looked at, in ms. */
const POLL_MS = 5;

/** How the drain of each session ended. */
export interface DrainResult {
  /** Sessions closed with 1001 after their client had read everything. */
  delivered: number;
  /** Sessions whose client closed the connection itself meanwhile. */
  gone: number;
  /** Sessions dropped at the deadline, their output not all read. */
  dropped: number;
}

/**
 * Drains and closes every session: once its jobs have sent their completion and its
 * socket has handed everything to the connection, it is closed with 1001, and it counts
 * as delivered when the client answers the close (it has then read all that came
 * before). Sessions still open at `deadline` (a `performance.now()` time) are dropped
 * with 1001 and {@linkcode DROPPED_REASON}, each logged by its `drop` (event
 * `shutdown_client_dropped`; `waiting_for` says what was still awaited: `completions`
 * of its jobs, its `queue` of output to empty, or the client's `close_answer`; with the
 * bytes still queued in the server and the jobs whose completion was not sent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { drainSessions } from "./shutdown.ts";
 * assert.deepEqual(await drainSessions([], performance.now() + 1000), { delivered: 0, gone: 0, dropped: 0 });
 * ```
 */
export async function drainSessions(
  sessions: readonly DrainSession[],
  deadline: number,
): Promise<DrainResult> {
  let past = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => {
      past = true;
      resolve("expired");
    }, Math.max(0, deadline - performance.now()));
  });
  type Stage = "completions" | "queue" | "close_answer";
  const stage = new Map<DrainSession, Stage>();
  const drainOne = async (s: DrainSession): Promise<"delivered" | "gone" | "expired"> => {
    const closed = s.closed.then(() => "gone" as const);
    // Its jobs' last output and completion first; then nothing left in the socket's queue.
    stage.set(s, "completions");
    const settled = s.settled().then(() => "settled" as const);
    const first = await Promise.race([settled, closed, expired]);
    if (first !== "settled") return first;
    stage.set(s, "queue");
    const empty = async () => {
      while (!past && s.queued() > 0) await sleep(POLL_MS);
      return "empty" as const;
    };
    const second = await Promise.race([empty(), closed, expired]);
    if (second !== "empty") return second;
    // The client answers the close once it has read everything sent before it.
    stage.set(s, "close_answer");
    s.close(SHUTDOWN_CLOSE_CODE, SHUTDOWN_REASON);
    return await Promise.race([closed.then(() => "delivered" as const), expired]);
  };
  const ends = await Promise.all(sessions.map(drainOne));
  clearTimeout(timer);
  past = true;
  const result: DrainResult = { delivered: 0, gone: 0, dropped: 0 };
  for (const [i, end] of ends.entries()) {
    if (end !== "expired") {
      result[end]++;
      continue;
    }
    result.dropped++;
    const s = sessions[i];
    s.drop(SHUTDOWN_CLOSE_CODE, DROPPED_REASON, {
      event: "shutdown_client_dropped",
      waiting_for: stage.get(s),
      queued_bytes: s.queued(),
      unfinished_jobs: s.unfinished(),
    });
  }
  return result;
}

/** The server's part in {@linkcode orderlyShutdown}. */
export interface ShutdownSteps {
  /** Milliseconds between SIGTERM and SIGKILL. */
  graceMs: number;
  /** Milliseconds clients have, after the grace, to read what is left. */
  drainMs: number;
  /** The operator log. */
  log: Logger;
  /** Every session open when the shutdown began. */
  sessions: readonly DrainSession[];
  /** Ends every job's group; resolves with how many jobs it ended, once their groups are gone. */
  endJobs(): Promise<number>;
  /** Stops listening and releases what is left (workspaces, sockets, journal). */
  release(): Promise<void>;
}

/**
 * Runs the shutdown: ends every job's group and, meanwhile, drains and closes each
 * session once its own jobs have ended (see {@linkcode drainSessions}), by the deadline of
 * grace + drain after the start; then releases the rest. Each phase is logged with `elapsed_ms` since the start (events
 * `shutdown_started`, `shutdown_jobs_ended`, `shutdown_drained`, `shutdown_done`),
 * so a test reads its timing from the server's own log.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orderlyShutdown } from "./shutdown.ts";
 * const events: unknown[] = [];
 * await orderlyShutdown({
 *   graceMs: 2000,
 *   drainMs: 5000,
 *   log: (_line, fields) => events.push(fields?.event),
 *   sessions: [],
 *   endJobs: () => Promise.resolve(0),
 *   release: () => Promise.resolve(),
 * });
 * assert.deepEqual(events, ["shutdown_started", "shutdown_jobs_ended", "shutdown_drained", "shutdown_done"]);
 * ```
 */
export async function orderlyShutdown(steps: ShutdownSteps): Promise<void> {
  const t0 = performance.now();
  const deadline = t0 + steps.graceMs + steps.drainMs;
  const elapsed = () => Math.round(performance.now() - t0);
  const { log, sessions } = steps;
  log(
    `shutdown: ending every job (grace ${steps.graceMs} ms), then up to ` +
      `${steps.drainMs / 1000} s more for ${sessions.length} clients to read the rest`,
    {
      event: "shutdown_started",
      elapsed_ms: 0,
      grace_ms: steps.graceMs,
      drain_ms: steps.drainMs,
      sessions: sessions.length,
    },
  );
  // Each session is drained and closed as soon as its own jobs have ended: a client whose
  // jobs died at SIGTERM is told at once (close 1001), not once another client's job that
  // ignores SIGTERM has lasted the whole grace.
  const draining = drainSessions(sessions, deadline);
  const jobs = await steps.endJobs();
  log(`shutdown: ${jobs} jobs ended`, {
    event: "shutdown_jobs_ended",
    elapsed_ms: elapsed(),
    jobs,
  });
  const r = await draining;
  log(
    `shutdown: ${r.delivered} clients got all their output and were closed 1001` +
      `${r.gone > 0 ? `, ${r.gone} had gone` : ""}` +
      `${r.dropped > 0 ? `, ${r.dropped} dropped at the drain deadline` : ""}`,
    { event: "shutdown_drained", elapsed_ms: elapsed(), ...r },
  );
  await steps.release();
  log("shutdown: done", { event: "shutdown_done", elapsed_ms: elapsed() });
}

/**
 * The terminal observer: what `ccx ps`, `ccx logs` and `ccx cancel` share. It connects to a
 * `ccx serve` as the web page does (the token as the WebSocket subprotocol `ccx.token.…`), lists
 * every session's jobs with `watch`, follows one job's output and cancels a job with `control`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { CcxClient } from "./client.ts";
 * import { Watcher } from "./watcher.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const client = await CcxClient.connect(server.url); // some session runs a job
 * const job = await client.execute({ command: "sleep 30", label: "nightly" });
 * const w = await Watcher.connect(server.url, { token: Deno.env.get("CCX_TOKEN") });
 * const { jobs } = await w.snapshot();
 * assert.deepEqual(jobs.map((j) => [j.job_id, j.state, j.label]), [[job.jobId, "running", "nightly"]]);
 * await w.close();
 * await job.cancel();
 * await client.close();
 * await server.shutdown();
 * ```
 * @module
 */

import { CcxClient, ClientError } from "./client.ts";
import type { ObservedJob, WatchSnapshot } from "../common/protocol.ts";

export type { ObservedJob, WatchSnapshot };

/**
 * Why a watcher could not do its work: `connect` (no server, refused token, not allowed to
 * observe, connection lost) or `job` (no such job, or more than one matches).
 *
 * @example
 * ```ts
 * import { WatcherError } from "./watcher.ts";
 * const e = new WatcherError("job", "no job abc among the 3 jobs listed");
 * console.log(e.kind, e.message);
 * ```
 */
export class WatcherError extends Error {
  /** `connect`: the server could not be observed; `job`: the job is unknown or ambiguous. */
  readonly kind: "connect" | "job";
  /** The error, and what it is about. */
  constructor(kind: "connect" | "job", message: string) {
    super(message);
    this.name = "WatcherError";
    this.kind = kind;
  }
}

/** The server `ccx ps`, `logs` and `cancel` observe when given none. */
export const DEFAULT_OBSERVE_URL = "ws://127.0.0.1:8004/ws";

/**
 * The WebSocket URL of a server given as such (`ws://…/ws`, `wss://…`) or by its page
 * (`http://127.0.0.1:8004/`, as `ccx stress --page` prints it). Throws a plain `Error` naming
 * the value otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { observeUrl } from "./watcher.ts";
 * assert.equal(observeUrl("http://127.0.0.1:43117/"), "ws://127.0.0.1:43117/ws"); // the page's address
 * assert.equal(observeUrl("wss://box:8004/ws"), "wss://box:8004/ws");
 * ```
 */
export function observeUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(
      `${JSON.stringify(value)} is not a URL; expected ws://HOST:PORT/ws or the page's ` +
        `http://HOST:PORT/`,
    );
  }
  if (u.protocol === "http:" || u.protocol === "https:") {
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    if (u.pathname === "/" || u.pathname === "") u.pathname = "/ws";
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new Error(
      `${JSON.stringify(value)} is not a ws://, wss://, http:// or https:// URL`,
    );
  }
  return u.href;
}

/** Options of {@linkcode Watcher.connect}. */
export interface WatcherOptions {
  /** The server's token (`--token`, `CCX_TOKEN`); sent as the page sends it. */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
  /** Give up connecting after this many ms (default 10000). */
  timeoutMs?: number;
}

/** What {@linkcode Watcher.follow} calls with a followed job's output and end. */
export interface FollowHandlers {
  /** A chunk of the job's output, in order; `backlog` for the retained tail sent first. */
  output(type: "stdout" | "stderr", data: string, backlog: boolean): void;
  /** The server kept only the end of the output: what came before is gone. */
  truncated?(): void;
  /** This client fell behind and the server skipped this many characters. */
  skipped?(chars: number): void;
}

/**
 * Explains why connecting failed, the way the page does: a refused token, a token that is
 * needed, or no server.
 */
function connectProblem(message: string, url: string, token: string | undefined): string {
  const status = message.match(/status code:? (\d{3})\b/i)?.[1];
  if (status === "401") {
    return token
      ? `${url} refused the token (check --token or CCX_TOKEN)`
      : `${url} needs its token: give it with --token or the CCX_TOKEN environment variable`;
  }
  if (status === "403") return `${url} refused the connection (403): ${message}`;
  if (/tcp connect error|connection refused|dns error|failed to lookup|os error/i.test(message)) {
    return `no ccx server answers at ${url} (give it with --server or CCX_SERVER; is ` +
      "`ccx serve` running?)";
  }
  return `${url}: ${message}`;
}

/**
 * A connection to a ccx server as an observer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { CcxClient } from "./client.ts";
 * import { findJob, Watcher } from "./watcher.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const client = await CcxClient.connect(server.url);
 * const running = await client.execute({ command: "sleep 30", job_id: "build-42" });
 * const w = await Watcher.connect(server.url); // another session: an observer
 * const job = findJob((await w.snapshot()).jobs, "build-42");
 * const end = await w.cancel(job);
 * assert.equal(end?.status, "canceled");
 * assert.equal((await running.done).status, "canceled");
 * await w.close();
 * await client.close();
 * await server.shutdown();
 * ```
 */
export class Watcher {
  readonly #client: CcxClient;
  readonly #url: string;
  readonly #listeners = new Set<(method: string, params: Record<string, unknown>) => void>();

  private constructor(client: CcxClient, url: string) {
    this.#client = client;
    this.#url = url;
    client.onNotification = (method, params) => {
      for (const l of this.#listeners) l(method, params);
    };
  }

  /** Connects; throws {@linkcode WatcherError} (`connect`) saying what is wrong. */
  static async connect(url: string, opts: WatcherOptions = {}): Promise<Watcher> {
    try {
      const client = await CcxClient.connect(url, {
        token: opts.token,
        ca: opts.ca,
        timeoutMs: opts.timeoutMs,
        tokenAs: "subprotocol",
      });
      return new Watcher(client, url);
    } catch (e) {
      if (!(e instanceof ClientError)) throw e;
      throw new WatcherError("connect", connectProblem(e.message, url, opts.token));
    }
  }

  /** Server facts and every listed job (running ones, and finished ones the server keeps). */
  async snapshot(): Promise<WatchSnapshot> {
    return await this.#request("watch", {}) as WatchSnapshot;
  }

  /**
   * Follows a job's output: first the tail the server kept (`backlog`), then, with `live`,
   * what it writes until it ends. Resolves with the job as it ended (or as it is, without
   * `live`, once the tail is through).
   */
  async follow(job: ObservedJob, h: FollowHandlers, live: boolean): Promise<ObservedJob> {
    const mine = (p: Record<string, unknown>) =>
      p.session_id === job.session_id && p.job_id === job.job_id;
    let last = job;
    let ended: (j: ObservedJob) => void = () => {};
    const end = new Promise<ObservedJob>((r) => ended = r);
    const listener = (method: string, p: Record<string, unknown>) => {
      if (method === "observe.output" && mine(p)) {
        if (p.truncated === true) h.truncated?.();
        if (typeof p.dropped_chars === "number") h.skipped?.(p.dropped_chars);
        h.output(p.type === "stderr" ? "stderr" : "stdout", String(p.data ?? ""), !!p.backlog);
      } else if (method === "observe.job") {
        const j = p.job as ObservedJob | undefined;
        if (!j || !mine(j as unknown as Record<string, unknown>)) return;
        last = j;
        if (p.event === "completed" || p.event === "removed") ended(j);
      }
    };
    this.#listeners.add(listener);
    try {
      const snap = await this.#request("watch", {
        output: [{ session_id: job.session_id, job_id: job.job_id }],
      }) as WatchSnapshot;
      last = snap.jobs.find((j) => j.session_id === job.session_id && j.job_id === job.job_id) ??
        last;
      // The tail is sent right after the reply: a ping answered later means it is all here.
      await this.#request("ping");
      if (!live || last.state === "done") return last;
      return await Promise.race([end, this.#lost()]);
    } finally {
      this.#listeners.delete(listener);
    }
  }

  /**
   * Cancels a job of any session (its whole process group ends) and waits up to `waitMs` for
   * its end. Resolves with the job as it ended, or `undefined` when it had not ended by then.
   * Throws {@linkcode WatcherError} (`job`) when it had already ended.
   */
  async cancel(job: ObservedJob, waitMs = 60_000): Promise<ObservedJob | undefined> {
    let ended: (j: ObservedJob) => void = () => {};
    const end = new Promise<ObservedJob>((r) => ended = r);
    const listener = (method: string, p: Record<string, unknown>) => {
      const j = p.job as ObservedJob | undefined;
      if (method !== "observe.job" || p.event !== "completed" || !j) return;
      if (j.session_id === job.session_id && j.job_id === job.job_id) ended(j);
    };
    this.#listeners.add(listener);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      try {
        await this.#client.request("control", {
          type: "CANCEL",
          session_id: job.session_id,
          job_id: job.job_id,
        });
      } catch (e) {
        if (e instanceof ClientError && e.code === -32003) {
          throw new WatcherError("job", `job ${job.job_id} ${e.message.replace(/^job \S+ /, "")}`);
        }
        throw this.#refused(e);
      }
      const late = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), waitMs));
      return await Promise.race([end, late, this.#lost()]);
    } finally {
      clearTimeout(timer);
      this.#listeners.delete(listener);
    }
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#client.close();
  }

  async #request(method: string, params?: unknown): Promise<unknown> {
    try {
      return await this.#client.request(method, params);
    } catch (e) {
      throw this.#refused(e);
    }
  }

  /** Rejects once the connection is closed (the server shut down): the end of any wait. */
  #lost(): Promise<never> {
    const lost = this.#client.whenClosed().then((): never => {
      throw new WatcherError("connect", this.#lostMessage());
    });
    lost.catch(() => {});
    return lost;
  }

  #refused(e: unknown): unknown {
    if (!(e instanceof ClientError)) return e;
    if (e.code === -32003) return new WatcherError("job", e.message);
    if (e.code === -32002) {
      return new WatcherError(
        "connect",
        `${this.#url} does not let this connection observe: ${e.message}`,
      );
    }
    if (this.#client.closed) return new WatcherError("connect", this.#lostMessage());
    return e;
  }

  #lostMessage(): string {
    const c = this.#client.closeInfo;
    if (c?.code === 1001) return `${this.#url}: the server shut down`;
    return `${this.#url}: connection closed${c?.reason ? ` (${c.reason})` : ""}`;
  }
}

/**
 * The job `spec` names among `jobs`: `SESSION/JOB` (either part may be a prefix), a job id, its
 * label, or a prefix of a job id. Throws {@linkcode WatcherError} (`job`) when none or more than
 * one matches, listing the candidates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findJob, type ObservedJob } from "./watcher.ts";
 * const jobs = [{ session_id: "s1", job_id: "build-42", label: "nightly" }] as ObservedJob[];
 * assert.equal(findJob(jobs, "build").job_id, "build-42"); // a unique prefix
 * assert.equal(findJob(jobs, "nightly").job_id, "build-42"); // its label
 * assert.throws(() => findJob(jobs, "deploy"));
 * ```
 */
export function findJob(jobs: ObservedJob[], spec: string): ObservedJob {
  let found: ObservedJob[];
  const slash = spec.indexOf("/");
  if (slash > 0) {
    const [sid, jid] = [spec.slice(0, slash), spec.slice(slash + 1)];
    const inSession = jobs.filter((j) => j.session_id.startsWith(sid));
    const exact = inSession.filter((j) => j.job_id === jid);
    found = exact.length ? exact : inSession.filter((j) => j.job_id.startsWith(jid));
  } else {
    const exact = jobs.filter((j) => j.job_id === spec || j.label === spec);
    found = exact.length ? exact : jobs.filter((j) => j.job_id.startsWith(spec));
  }
  if (spec !== "" && found.length === 1) return found[0];
  if (found.length === 0 || spec === "") {
    throw new WatcherError(
      "job",
      `no job ${JSON.stringify(spec)} among the ${jobs.length} job${
        jobs.length === 1 ? "" : "s"
      } the server lists (running ones, and finished ones it keeps): see \`ccx ps --all\``,
    );
  }
  const names = found.slice(0, 5).map((j) => `${j.session_id.slice(0, 8)}/${j.job_id}`);
  throw new WatcherError(
    "job",
    `${JSON.stringify(spec)} matches ${found.length} jobs (${names.join(", ")}` +
      `${found.length > 5 ? ", …" : ""}): give more of its id, or SESSION/JOB`,
  );
}

/**
 * A shell line for an argument vector, each word quoted only when it needs to be.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shellLine } from "./watcher.ts";
 * assert.equal(shellLine(["claude", "-p", "What is 2+2?"]), "claude -p 'What is 2+2?'");
 * ```
 */
export function shellLine(argv: string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

/**
 * What a job is called: its label, else its command as a shell line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jobTitle, type ObservedJob } from "./watcher.ts";
 * assert.equal(jobTitle({ command: '["echo","hi there"]', argv: ["echo", "hi there"] } as ObservedJob), "echo 'hi there'");
 * ```
 */
export function jobTitle(j: Pick<ObservedJob, "label" | "argv" | "command">): string {
  return j.label ?? (j.argv ? shellLine(j.argv) : j.command);
}

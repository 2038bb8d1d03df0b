/**
 * One WebSocket session of the server: its transport (sending, the heartbeat, backpressure
 * shared by its jobs and the drop of a client too slow to read) and the dispatch of each
 * JSON-RPC request to its method. Its jobs are a {@linkcode SessionJobs} (jobs.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { methodNames } from "./session.ts";
 * assert.deepEqual(methodNames(false), ["execute", "control", "jobs", "ping", "files"]);
 * ```
 * @module
 */

import {
  ErrorCode,
  errorResponse,
  type Incoming,
  notification,
  parseIncoming,
  response,
  RpcError,
  type RpcId,
  validateControl,
  validateExecute,
  validateFiles,
} from "../common/protocol.ts";
import type { LogFields } from "../common/log.ts";
import type { DrainSession } from "./shutdown.ts";
import { type Observer, validateWatch } from "./observer.ts";
import { type Answer, type JobServer, type JobSession, SessionJobs } from "./jobs.ts";

/** What a session needs of the server, besides what its jobs need. */
export interface SessionServer extends JobServer {
  /** Socket queue in bytes at which the session's job pipes stop being read. */
  readonly highWater: number;
  /** Socket queue in bytes at or below which reading resumes. */
  readonly lowWater: number;
  /** Seconds a client may leave its output unread above the high-water mark. */
  readonly slowClientS: number;
  /** Seconds of silence after which a session with running jobs gets a heartbeat; 0: none. */
  readonly heartbeatS: number;
  /** Largest accepted incoming message, in bytes. */
  readonly maxMessageBytes: number;
  /** Jobs running now, across sessions (the heartbeat says it). */
  readonly runningJobs: number;
  /** Closes `session` with `code` and cancels its jobs, as for a disconnect; logged once. */
  dropSession(session: Session, code: number, reason: string, fields?: LogFields): void;
}

const OPEN = 1;

/** One method of the table: its handler, and whether only observers may call it. */
interface Method {
  /**
   * Only for a session that may observe every session's jobs; any other is answered
   * -32002 before the params are looked at.
   */
  observer?: true;
  /** Checks the raw `params` and answers (later, for a promise). */
  handler(session: Session, params: unknown, server: SessionServer): Answer | Promise<Answer>;
}

/**
 * Every method a session answers, in the order `connected` lists them. A handler that
 * throws fails the call (an {@linkcode RpcError} as it is, anything else as -32603).
 */
const METHODS: Record<string, Method> = {
  execute: { handler: (s, params) => s.jobs.execute(validateExecute(params)) },
  control: { handler: (s, params) => s.jobs.control(validateControl(params)) },
  jobs: { handler: (s) => ({ result: s.jobs.list() }) },
  ping: { handler: () => ({ result: { pong: true, timestamp: Date.now() / 1000 } }) },
  files: { handler: (s, params) => s.jobs.files(validateFiles(params)) },
  watch: {
    observer: true,
    handler: (s, params, server) => server.observers.watch(s.asObserver, validateWatch(params)),
  },
  history: {
    observer: true,
    handler: (_s, _params, server) => server.observers.history().then((result) => ({ result })),
  },
};

/**
 * The methods a session may call (`watch` and `history` only for observers).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { methodNames } from "./session.ts";
 * assert.deepEqual(methodNames(true), ["execute", "control", "jobs", "ping", "files", "watch", "history"]);
 * ```
 */
export function methodNames(observer: boolean): string[] {
  return Object.keys(METHODS).filter((name) => observer || !METHODS[name].observer);
}

/** One item of a message, handled: the reply to send (if any) and what follows it. */
interface Handled {
  reply?: unknown;
  after?: () => void;
}

/** One WebSocket connection and its jobs; what a shutdown drains ({@linkcode DrainSession}). */
export class Session implements DrainSession, JobSession {
  /** The session's id (a random UUID), sent in `connected`. */
  readonly id: string = crypto.randomUUID();
  /** The session's jobs. */
  readonly jobs: SessionJobs;
  #drain: Promise<void> | undefined;
  #closed = false;
  /**
   * When this session last sent a message (for its heartbeat), from Date.now():
   * it runs once per message, and performance.now() is a call into the runtime.
   */
  #lastSent = Date.now();
  #heartbeat: ReturnType<typeof setTimeout> | undefined;

  /** Ends the underlying connection at once (set by the connection gate). */
  abort?: (code: number, reason: string) => void;

  /** This session as an observer: what `watch` registers with the hub. */
  readonly asObserver: Observer = {
    send: (msg) => this.send(msg),
    congested: () => this.ws.bufferedAmount >= this.server.highWater,
  };

  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;

  /**
   * The session of the WebSocket `ws`, opened by `remote` (`host:port`); `mayObserve` when
   * it may observe every session's jobs.
   */
  constructor(
    readonly ws: WebSocket,
    private readonly server: SessionServer,
    readonly remote: string,
    readonly mayObserve: boolean,
  ) {
    this.closed = new Promise((r) => ws.addEventListener("close", () => r()));
    this.jobs = new SessionJobs(this, server);
  }

  /** True once the session is closing (client gone): no job starts any more. */
  get closing(): boolean {
    return this.#closed;
  }

  queued(): number {
    return this.ws.bufferedAmount;
  }

  unfinished(): number {
    return this.running;
  }

  settled(): Promise<unknown> {
    return this.jobs.settled();
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch { /* already closing */ }
  }

  drop(code: number, reason: string, fields: LogFields): void {
    this.server.dropSession(this, code, reason, fields);
  }

  /** Jobs of this session that have not ended yet. */
  get running(): number {
    return this.jobs.running;
  }

  /** Sends a message (serialized here), if the socket is still open. */
  send(msg: unknown): void {
    this.sendText(JSON.stringify(msg));
  }

  /** Sends JSON text that is already serialized. */
  sendText(text: string): void {
    if (this.ws.readyState !== OPEN) return;
    this.ws.send(text);
    this.#lastSent = Date.now();
  }

  /**
   * Sends `pre`, `text` as a JSON string, then `post`: one `process.output` message. The gate's
   * socket writes the JSON straight into its output (gate_output.ts); any other socket gets the
   * joined text.
   */
  sendOutput(pre: string, text: string, post: string): void {
    const ws = this.ws as WebSocket & { sendJson?: (pre: string, s: string, post: string) => void };
    if (ws.sendJson && ws.readyState === OPEN) {
      ws.sendJson(pre, text, post);
      this.#lastSent = Date.now();
    } else this.sendText(`${pre}${JSON.stringify(text)}${post}`);
  }

  /**
   * Heartbeats go only to a session with running jobs, after `heartbeatS` in
   * which it was sent nothing else: an idle session goes quiet (seed clients read
   * until the connection has been silent for a while).
   */
  armHeartbeat(): void {
    const ms = this.server.heartbeatS * 1000;
    if (ms <= 0 || this.#heartbeat !== undefined || this.#closed) return;
    const check = () => {
      this.#heartbeat = undefined;
      if (this.#closed || this.ws.readyState > OPEN || this.running === 0) return;
      const quiet = Date.now() - this.#lastSent;
      if (quiet >= ms) {
        this.send(notification("heartbeat", {
          timestamp: Date.now() / 1000,
          running_jobs: this.server.runningJobs,
        }));
        this.#heartbeat = setTimeout(check, ms);
      } else this.#heartbeat = setTimeout(check, ms - quiet);
    };
    this.#heartbeat = setTimeout(check, ms);
  }

  /** Stops the heartbeat timer (session closing or server shutting down). */
  stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  /** Backpressure gate shared by all of this session's jobs. */
  ready = (): Promise<void> | undefined => {
    if (this.#closed || this.ws.bufferedAmount < this.server.highWater) return undefined;
    this.#drain ??= this.#waitDrain();
    return this.#drain;
  };

  async #waitDrain(): Promise<void> {
    let wait = 1;
    let since = performance.now();
    // Progress is the queue shrinking by a quarter of the gap between the marks: a
    // queue that hovers just under the high mark (lines mode stops within 256 lines
    // of it, and the kernel takes a little more) is a client that is not reading.
    const step = Math.max(1, (this.server.highWater - this.server.lowWater) / 4);
    let mark = this.ws.bufferedAmount;
    while (!this.#closed && this.ws.readyState === OPEN) {
      const queued = this.ws.bufferedAmount;
      if (queued <= this.server.lowWater) break;
      if (queued <= mark - step) {
        mark = queued;
        since = performance.now();
      } else if (performance.now() - since >= this.server.slowClientS * 1000) {
        // The peer has not taken its output for too long: drop it as for a disconnect.
        this.server.dropSession(this, 1008, "client too slow: output unread", {
          event: "slow_client_dropped",
          queued_bytes: queued,
        });
        break;
      }
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 20);
    }
    this.#drain = undefined;
  }

  /** Answers one incoming WebSocket message: a request, a notification or a batch. */
  onMessage(data: unknown): void {
    if (typeof data !== "string") {
      const err = new RpcError(ErrorCode.InvalidRequest, "only text frames carry JSON-RPC");
      return this.send(errorResponse(null, err));
    }
    if (data.length > this.server.maxMessageBytes) {
      const err = new RpcError(
        ErrorCode.LimitExceeded,
        `message of ${data.length} bytes exceeds the limit of ${this.server.maxMessageBytes}`,
        { limit: "max_message_bytes", max: this.server.maxMessageBytes },
      );
      return this.send(errorResponse(null, err));
    }
    const parsed = parseIncoming(data);
    if (parsed.error) return this.send(errorResponse(null, parsed.error));
    // What follows each answer runs once all of the message's replies have been sent: those
    // answered at once first, in the message's order, then the later ones as they answer.
    const after: (() => void)[] = [];
    const keep = (h: Handled) => {
      if (h.after) after.push(h.after);
      return h.reply;
    };
    const replies: unknown[] = [];
    for (const item of parsed.items) {
      const handled = this.#handle(item);
      const reply = handled instanceof Promise ? handled.then(keep) : keep(handled);
      if (reply) replies.push(reply);
    }
    const settle = (replies: unknown[]) => {
      if (parsed.batch) {
        if (replies.length > 0) this.send(replies);
      } else if (replies.length > 0) this.send(replies[0]);
      for (const f of after) f();
    };
    // Methods that read a store (`history`), a workspace (`files`) or copy a template
    // (`execute` with one) answer later; the rest answer at once.
    if (replies.some((r) => r instanceof Promise)) void Promise.all(replies).then(settle);
    else settle(replies);
  }

  /** One item of a message: its reply (none for a notification) and what follows it. */
  #handle(item: Incoming): Handled | Promise<Handled> {
    if (item.kind === "response") return {};
    if (item.kind === "invalid") return { reply: errorResponse(item.id, item.error) };
    const request = item.kind === "request";
    const id: RpcId = request ? item.id : null;
    const fail = (e: unknown): Handled => {
      if (!request) return {};
      if (e instanceof RpcError) return { reply: errorResponse(id, e) };
      const err = new RpcError(ErrorCode.Internal, `internal error: ${(e as Error).message}`);
      return { reply: errorResponse(id, err) };
    };
    const answered = (a: Answer): Handled => {
      if ("error" in a) {
        return { reply: request ? errorResponse(id, a.error) : undefined, after: a.after };
      }
      return { reply: request ? response(id, a.result) : undefined, after: a.after };
    };
    try {
      const answer = this.#call(item.method, item.params);
      return answer instanceof Promise ? answer.then(answered, fail) : answered(answer);
    } catch (e) {
      return fail(e);
    }
  }

  /** Looks `name` up in the method table and calls its handler. */
  #call(name: string, params: unknown): Answer | Promise<Answer> {
    const method = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined;
    if (!method) {
      throw new RpcError(ErrorCode.MethodNotFound, `method not found: ${name}`, {
        method: name,
        methods: methodNames(this.mayObserve),
      });
    }
    if (method.observer) this.mustObserve(name);
    return method.handler(this, params, this.server);
  }

  /** Throws -32002 unless the session may observe every session's jobs. */
  mustObserve(what: string): void {
    if (this.mayObserve) return;
    throw new RpcError(
      ErrorCode.CommandNotAllowed,
      `${what} is for observers: connect with the server's token (a server without a token ` +
        `allows it only from loopback)`,
      { method: what },
    );
  }

  /** Ends every job of the session (client gone). */
  endAll(reason: "canceled"): Promise<unknown> {
    this.#closed = true;
    this.stopHeartbeat();
    return this.jobs.cancelAll(reason);
  }
}

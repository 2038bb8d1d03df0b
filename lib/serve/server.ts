/**
 * The ccx WebSocket JSON-RPC server: sessions, jobs, streaming with backpressure,
 * security (token, Origin allow-list, limits) and orderly shutdown.
 *
 * @example
 * ```ts
 * import { CcxServer } from "./server.ts";
 * const server = CcxServer.start({ port: 0 });
 * console.log(server.url); // ws://127.0.0.1:PORT/ws
 * await server.shutdown();
 * ```
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import {
  type ControlParams,
  ErrorCode,
  errorResponse,
  type ExecuteParams,
  type FilesParams,
  type Incoming,
  MAX_TIMEOUT_S,
  notification,
  parseIncoming,
  response,
  RpcError,
  type RpcId,
  validateControl,
  validateExecute,
  validateFiles,
  VERSION,
} from "../common/protocol.ts";
import { readWorkspace, type Workspace, WorkspaceError, WorkspaceManager } from "./workspace.ts";
import {
  bwrapArgv,
  checkBwrap,
  claudeCredentials,
  type IsolateMode,
  type IsolateNet,
} from "./isolate.ts";
import { stateDir } from "../common/config.ts";
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { type Job, type JobResult, StartError, startJob } from "./supervisor.ts";
import { detectClaudeLimits } from "../claude/limits.ts";
import { DEFAULT_PASS_ENV, passEnvProblem } from "./job_env.ts";
import {
  ConnectionGate,
  defaultMaxConnections,
  GATE_CONN_HEADER,
  gatePeer,
  type GateStats,
  upgradeWebSocket,
} from "./gate.ts";
import { JobJournal, type ReapedGroup, reapOrphans } from "./journal.ts";
import { chownTree, reachProblem, resolveRunAs, type RunAsUser } from "./run_as.ts";
import { type DrainSession, orderlyShutdown } from "./shutdown.ts";
import { createLogger, type LogFields, type LogFormat, type Logger } from "../common/log.ts";
import { type ObservedRecord, type Observer, ObserverHub, validateWatch } from "./observer.ts";
import { type HistoryStore, openHistory } from "../claude/history.ts";
import { page } from "./web/page.ts";

/** Server settings. Every field has a default. */
export interface ServerOptions {
  /** Address to bind (default 127.0.0.1). Anything but loopback requires `token`. */
  host?: string;
  /** Port (default 8004; 0 picks a free one). */
  port?: number;
  /** Shared secret required from clients (Bearer header or `?token=`). */
  token?: string;
  /** Browser origins allowed to connect (besides the server's own). */
  allowOrigins?: string[];
  /** Concurrent WebSocket sessions (default 64). */
  maxSessions?: number;
  /** Running jobs per session (default 32). */
  maxJobsPerSession?: number;
  /** Grace between SIGTERM and SIGKILL in ms (default 2000). */
  graceMs?: number;
  /**
   * Seconds clients have after the grace, at shutdown, to read their jobs' last output and
   * completion before they are dropped (default 5): the shutdown ends within grace + this.
   */
  drainS?: number;
  /**
   * Seconds of silence after which a session with running jobs gets a heartbeat;
   * 0 turns them off (default 20). Sessions without running jobs get none.
   */
  heartbeatS?: number;
  /** Largest accepted incoming message in bytes (default 4 MiB). */
  maxMessageBytes?: number;
  /** Whole-run timeout in seconds for jobs that give none (default 3600). */
  defaultTimeoutS?: number;
  /**
   * Server variables jobs may see, besides {@linkcode DEFAULT_PASS_ENV} (names,
   * or prefixes ending in `*`). `CCX_*` names are refused: they never reach a job.
   */
  passEnv?: string[];
  /**
   * Seconds a session's socket may stay at or above the high-water mark (its
   * client not reading) before the session is closed (1008) and its jobs are
   * canceled (default 60).
   */
  slowClientS?: number;
  /** Stop reading a job's pipes when this much output waits on the socket (default 4 MiB). */
  highWaterBytes?: number;
  /** Resume reading when the socket's queue falls below this (default 1 MiB). */
  lowWaterBytes?: number;
  /** Largest output chunk in bytes (default 256 KiB). */
  maxChunkBytes?: number;
  /** Where job workspaces are made (default: `workspaces` in the state directory). */
  workspaceRoot?: string;
  /** Bound on the megabytes of kept workspaces, the oldest removed first (default: none). */
  workspaceMaxMb?: number;
  /**
   * Directories a job's `workspace.template` may come from, they and everything
   * below them (`--template-root`); default none: templates are refused (-32602).
   */
  templateRoots?: string[];
  /** Largest file `files` returns, in bytes; longer ones come truncated (default 1 MiB). */
  filesMaxBytes?: number;
  /** `bwrap`: every job runs confined to a workspace under bubblewrap (default `none`). */
  isolate?: IsolateMode;
  /** Network of confined jobs: the host's (default) or `none`. */
  isolateNet?: IsolateNet;
  /**
   * Run every job as this user (a name or uid), not the server's: it then cannot
   * read the server's `/proc` entries or private files. Needs a server running as
   * root and a workspace root that user can enter. Checked at start.
   */
  runAs?: string;
  /** Log sink for job start/end lines (default: stderr). Pass `() => {}` for silence. */
  log?: Logger;
  /** Format of the default log: `text` (timestamped lines) or `json` (one object a line). */
  logFormat?: LogFormat;
  /**
   * Where warnings about the server's own safety go, which a silenced `log` must not
   * hide: the crash journal cannot be written, jobs can read the server's secrets
   * (default: `log`).
   */
  alert?: Logger;
  /**
   * Directory of the crash journal (default `jobs` in the state directory); `false`
   * for none. At start the server ends the job groups that dead servers left there.
   */
  journalDir?: string | false;
  /**
   * PEM certificate chain and private key (their text, not file names): the
   * server then speaks TLS only (`wss://`, `https://`).
   */
  tls?: { cert: string; key: string };
  /** Connections open at once (default: from the open-file limit, see `defaultMaxConnections`). */
  maxConnections?: number;
  /** Seconds a connection has for its TLS handshake and request head (default 10). */
  requestTimeoutS?: number;
  /**
   * Largest WebSocket message a client may start sending; larger ones are closed
   * with 1009 before their payload is read (default 4 × `maxMessageBytes`,
   * between 1 MiB and 64 MiB). Messages between `maxMessageBytes` and this are
   * answered -32004.
   */
  maxFrameBytes?: number;
  /** Called once the server listens. */
  onListen?: (addr: { hostname: string; port: number }) => void;
  /** Finished jobs that stay listed for observers (`watch`), at most (default 100). */
  keepFinished?: number;
  /** Seconds a finished job stays listed for observers (default 1800). */
  keepFinishedS?: number;
  /** Opens the timeout history that the `history` method reports (default: {@linkcode openHistory}). */
  openHistory?: () => Promise<HistoryStore>;
}

/** What `GET /health` answers: the server's counts and the connection gate's counters. */
export interface Health extends GateStats {
  /** `ok`, or `shutting_down` once {@linkcode CcxServer.shutdown} has begun. */
  status: "ok" | "shutting_down";
  /** The server's version ({@linkcode VERSION}). */
  version: string;
  /** WebSocket sessions connected now. */
  active_sessions: number;
  /** The session limit ({@linkcode ServerOptions.maxSessions}). */
  max_sessions: number;
  /** Jobs running now, across sessions. */
  running_jobs: number;
  /** Whole seconds since the server started (rounded). */
  uptime_seconds: number;
}

/** The error thrown when the server refuses to start; the message says how to fix it. */
export class ServerConfigError extends Error {
  /** Creates the error; `message` should say what to change. */
  constructor(message: string) {
    super(message);
    this.name = "ServerConfigError";
  }
}

/**
 * True for loopback addresses (127.0.0.0/8, ::1, localhost).
 *
 * @example
 * ```ts
 * import { isLoopback } from "./server.ts";
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function digest(s: string): Uint8Array {
  return createHash("sha256").update(s).digest();
}

/**
 * Compares a presented token with the expected one in constant time.
 *
 * @example
 * ```ts
 * import { tokenMatches } from "./server.ts";
 * tokenMatches("s3cret", "s3cret"); // true
 * ```
 */
export function tokenMatches(presented: string | null, expected: string): boolean {
  // Hashing first makes the comparison length-independent as well.
  const ok = timingSafeEqual(digest(presented ?? ""), digest(expected));
  return ok && presented !== null;
}

interface JobEntry {
  id: string;
  job: Job;
  command: string;
  /** `lines` or `chunks` (the `execute` param `output_mode`). */
  outputMode: "lines" | "chunks";
  /** The start of this job's `process.output` JSON text, by stream, up to `"data":`. */
  heads: { stdout: string; stderr: string };
  seq: number;
  limitsSent: Set<string>;
  result?: JobResult;
  /** Resolves once `process.completed` and `process.exit` have been sent. */
  sent?: Promise<void>;
  ws?: Workspace;
  observed?: ObservedRecord;
}

const OPEN = 1;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const METHODS = ["execute", "control", "jobs", "ping", "files"];
const MAX_FINISHED_KEPT = 200;

/** One WebSocket connection and its jobs; what a shutdown drains ({@linkcode DrainSession}). */
class Session implements DrainSession {
  readonly id = crypto.randomUUID();
  readonly jobs = new Map<string, JobEntry>();
  /** Job ids whose workspace template is being copied: the job starts once it is in. */
  readonly #starting = new Set<string>();
  #drain: Promise<void> | undefined;
  #closed = false;
  #released = false;
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

  constructor(
    readonly ws: WebSocket,
    private readonly server: CcxServer,
    readonly remote: string,
    readonly mayObserve: boolean,
  ) {
    this.closed = new Promise((r) => ws.addEventListener("close", () => r()));
  }

  queued(): number {
    return this.ws.bufferedAmount;
  }

  unfinished(): number {
    return this.running;
  }

  settled(): Promise<unknown> {
    return Promise.all([...this.jobs.values()].map((e) => e.sent));
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch { /* already closing */ }
  }

  drop(code: number, reason: string, fields: LogFields): void {
    this.server.dropSession(this, code, reason, fields);
  }

  get running(): number {
    let n = 0;
    for (const e of this.jobs.values()) if (!e.result) n++;
    return n;
  }

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
    const after: (() => void)[] = [];
    const replies: unknown[] = [];
    for (const item of parsed.items) {
      const reply = this.#handle(item, after);
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

  #handle(item: Incoming, after: (() => void)[]): unknown {
    if (item.kind === "response") return undefined;
    if (item.kind === "invalid") return errorResponse(item.id, item.error);
    const id: RpcId = item.kind === "request" ? item.id : null;
    const fail = (e: unknown) => {
      if (item.kind !== "request") return undefined;
      if (e instanceof RpcError) return errorResponse(id, e);
      const err = new RpcError(ErrorCode.Internal, `internal error: ${(e as Error).message}`);
      return errorResponse(id, err);
    };
    try {
      const result = this.#call(item.method, item.params, after);
      if (result instanceof Promise) {
        return result.then((r) => item.kind === "request" ? response(id, r) : undefined, fail);
      }
      return item.kind === "request" ? response(id, result) : undefined;
    } catch (e) {
      return fail(e);
    }
  }

  #call(method: string, params: unknown, after: (() => void)[]): unknown {
    switch (method) {
      case "execute":
        return this.#execute(validateExecute(params), after);
      case "control":
        return this.#control(validateControl(params), after);
      case "jobs":
        return { jobs: [...this.jobs.values()].map(describeJob) };
      case "ping":
        return { pong: true, timestamp: Date.now() / 1000 };
      case "files":
        return this.#files(validateFiles(params));
      case "watch":
        this.#mustObserve(method);
        return this.server.observers.watch(this.asObserver, validateWatch(params), after);
      case "history":
        this.#mustObserve(method);
        return this.server.observers.history();
      default:
        throw new RpcError(ErrorCode.MethodNotFound, `method not found: ${method}`, {
          method,
          methods: this.server.methods(this.mayObserve),
        });
    }
  }

  #mustObserve(what: string): void {
    if (this.mayObserve) return;
    throw new RpcError(
      ErrorCode.CommandNotAllowed,
      `${what} is for observers: connect with the server's token (a server without a token ` +
        `allows it only from loopback)`,
      { method: what },
    );
  }

  #execute(p: ExecuteParams, after: (() => void)[]): unknown {
    if (this.#closed) throw new RpcError(ErrorCode.Internal, "session is closing");
    if (this.server.closing) throw new RpcError(ErrorCode.Internal, "server is shutting down");
    const running = this.running + this.#starting.size;
    if (running >= this.server.maxJobsPerSession) {
      throw new RpcError(
        ErrorCode.LimitExceeded,
        `this session already runs ${running} jobs (limit ${this.server.maxJobsPerSession})`,
        { limit: "max_jobs_per_session", max: this.server.maxJobsPerSession },
      );
    }
    const id = p.job_id ?? crypto.randomUUID();
    if (this.jobs.has(id) || this.#starting.has(id)) {
      throw new RpcError(ErrorCode.InvalidParams, `job_id: ${id} is already used in this session`, {
        field: "job_id",
      });
    }
    const command = p.command ?? JSON.stringify(p.argv);
    const outputMode = p.output_mode ?? "lines";
    const head = (type: string) =>
      `{"jsonrpc":"2.0","method":"process.output","params":{"job_id":${JSON.stringify(id)},` +
      `"type":"${type}","data":`;
    const entry = {
      id,
      command,
      outputMode,
      heads: { stdout: head("stdout"), stderr: head("stderr") },
      seq: 0,
      limitsSent: new Set<string>(),
    } as JobEntry;
    const isolated = this.server.isolate === "bwrap";
    if (isolated && p.cwd !== undefined) {
      throw new RpcError(
        ErrorCode.InvalidParams,
        "cwd: this server confines jobs (--isolate bwrap); they run in their workspace",
        { field: "cwd" },
      );
    }
    const wsSpec = p.workspace ?? (isolated ? {} : undefined);
    const template = wsSpec?.template;
    if (template !== undefined) {
      // The copy runs off the event loop; the job starts, and execute answers, once it is in.
      const spaces = this.server.workspaces;
      this.#starting.add(id);
      return spaces.createFromTemplate(id, { ...wsSpec, template }).then((ws) => {
        this.#starting.delete(id);
        entry.ws = ws;
        if (this.#closed || this.server.closing) {
          spaces.release(ws);
          throw new RpcError(ErrorCode.Internal, "session is closing");
        }
        return this.#start(entry, p, ws, after);
      }, (e) => {
        this.#starting.delete(id);
        throw workspaceRpcError(e, id);
      });
    }
    let ws: Workspace | undefined;
    if (wsSpec) {
      try {
        ws = this.server.workspaces.create(id, wsSpec);
      } catch (e) {
        throw workspaceRpcError(e, id);
      }
      entry.ws = ws;
    }
    return this.#start(entry, p, ws, after);
  }

  /** Starts the job of `execute` (its workspace, if any, made) and registers it. */
  #start(
    entry: JobEntry,
    p: ExecuteParams,
    ws: Workspace | undefined,
    after: (() => void)[],
  ): Record<string, unknown> {
    const id = entry.id;
    const isolated = this.server.isolate === "bwrap";
    const runAs = this.server.runAs;
    let job: Job;
    try {
      const argv = isolated
        ? this.server.confine(p.argv ?? ["/bin/sh", "-c", p.command!], ws!)
        : p.argv;
      // The job's user owns its workspace (after confine() has put the Claude login in it).
      if (ws && runAs) this.server.giveWorkspace(ws, runAs);
      job = startJob({
        command: isolated ? undefined : p.command,
        argv,
        cwd: ws?.path ?? p.cwd,
        // Confined, setpriv runs inside bwrap (see isolate.ts); unconfined, startJob wraps.
        runAs: isolated ? undefined : runAs,
        env: p.env,
        stdin: p.stdin,
        timeoutS: p.timeout ?? this.server.defaultTimeoutS,
        stallTimeoutS: p.stall_timeout,
        graceMs: this.server.graceMs,
        passEnv: this.server.passEnv,
        maxChunkBytes: this.server.maxChunkBytes,
        outputMode: entry.outputMode,
      }, {
        output: (stream, text, raw) => this.#output(entry, stream, text, raw),
        ready: this.ready,
      });
    } catch (e) {
      if (ws) this.server.workspaces.release(ws);
      if (e instanceof StartError) {
        after.push(() =>
          this.send(notification("process.error", { job_id: id, message: e.message }))
        );
        throw new RpcError(ErrorCode.InvalidParams, e.message, { field: e.field, job_id: id });
      }
      throw e;
    }
    entry.job = job;
    this.server.journal?.add(job.pgid, this.id, id);
    this.jobs.set(id, entry);
    entry.observed = this.server.observers.started({
      sessionId: this.id,
      remote: this.remote,
      jobId: id,
      command: entry.command,
      pid: job.pid,
      state: () => job.state,
      bytes: () => job.bytesRead,
      elapsed: () => job.elapsed,
      control: (type, after) => this.controlEntry(entry, type, after),
    });
    this.#trimFinished();
    const command = entry.command;
    this.server.log(`job ${id} started pid=${job.pid} session=${this.id.slice(0, 8)} ${command}`, {
      event: "job_started",
      job_id: id,
      pid: job.pid,
      pgid: job.pgid,
      session: this.id,
      command,
    });
    const started: Record<string, unknown> = {
      job_id: id,
      status: "running",
      pid: job.pid,
      pgid: job.pgid,
      command,
    };
    if (ws) started.workspace = ws.path;
    after.push(() => this.send(notification("process.started", started)));
    entry.sent = job.done.then((r) => this.#completed(entry, r));
    this.armHeartbeat();
    return { status: "started", job_id: id, pid: job.pid, pgid: job.pgid };
  }

  #output(entry: JobEntry, stream: "stdout" | "stderr", text: string, raw?: Uint8Array): void {
    // {"jsonrpc":"2.0","method":"process.output","params":{job_id,type,data,seq[,data_base64]}},
    // written by hand: in lines mode this runs once per line, and building an object for
    // JSON.stringify to walk costs more than the rest of the message.
    const b64 = raw ? `,"data_base64":"${raw.toBase64()}"` : "";
    const tail = `,"seq":${entry.seq++}${b64}}}`;
    // The gate's socket writes the text's JSON straight into its output (gate_output.ts).
    const ws = this.ws as WebSocket & { sendJson?: (pre: string, s: string, post: string) => void };
    if (ws.sendJson && ws.readyState === OPEN) {
      ws.sendJson(entry.heads[stream], text, tail);
      this.#lastSent = Date.now();
    } else this.sendText(`${entry.heads[stream]}${JSON.stringify(text)}${tail}`);
    if (entry.observed) this.server.observers.output(entry.observed, stream, text, entry.seq - 1);
    for (const limit of detectClaudeLimits(text)) {
      if (entry.limitsSent.has(limit.kind)) continue;
      entry.limitsSent.add(limit.kind);
      const method = limit.kind === "rate_limit"
        ? "error.rate_limit_exceeded"
        : "error.token_limit_exceeded";
      this.send(notification(method, {
        job_id: entry.id,
        error_type: limit.errorType,
        message: limit.message,
        reset_timestamp: limit.resetTimestamp,
        retry_after: limit.retryAfter,
        recoverable: limit.recoverable,
      }));
    }
  }

  #completed(entry: JobEntry, r: JobResult): Promise<void> | void {
    entry.result = r;
    this.server.journal?.remove(entry.job.pgid);
    this.server.log(
      `job ${entry.id} ${r.status} pid=${entry.job.pid} exit=${r.exitCode}` +
        `${r.signal ? ` signal=${r.signal}` : ""} ${r.executionTime.toFixed(2)}s`,
      {
        event: "job_ended",
        job_id: entry.id,
        status: r.status,
        pid: entry.job.pid,
        exit_code: r.exitCode,
        signal: r.signal,
        execution_time: r.executionTime,
        session: this.id,
      },
    );
    const params: Record<string, unknown> = {
      job_id: entry.id,
      status: r.status,
      exit_code: r.exitCode,
      signal: r.signal,
      execution_time: r.executionTime,
      stdout_bytes: r.stdoutBytes,
      stderr_bytes: r.stderrBytes,
      pid: entry.job.pid,
      pgid: entry.job.pgid,
    };
    if (r.invalidUtf8Chunks > 0) params.invalid_utf8_chunks = r.invalidUtf8Chunks;
    const ws = entry.ws;
    if (!ws) return this.#sendCompleted(entry, r, params);
    // The workspace is looked at off the event loop; completed follows once it has been.
    const spaces = this.server.workspaces;
    return spaces.finish(ws, r.status).then(({ kept, changes }) => {
      params.workspace = ws.path;
      params.workspace_kept = kept;
      params.files = changes.files;
      params.files_total = changes.total;
      if (changes.truncated) params.files_truncated = true;
    }, (e) => {
      params.workspace = ws.path;
      params.workspace_kept = ws.kept && !ws.removed;
      this.server.log(`job ${entry.id}: its workspace could not be listed: ${e}`, {
        level: "warn",
        event: "workspace_unlisted",
        job_id: entry.id,
      });
    }).then(() => {
      if (this.#released) spaces.release(ws);
      this.#sendCompleted(entry, r, params);
    });
  }

  #sendCompleted(entry: JobEntry, r: JobResult, params: Record<string, unknown>): void {
    this.send(notification("process.completed", params));
    // The seed's clients wait for process.exit {exitCode}; it always follows completed.
    this.send(notification("process.exit", {
      job_id: entry.id,
      exitCode: r.exitCode,
      exit_code: r.exitCode,
    }));
    if (entry.observed) this.server.observers.completed(entry.observed, r);
    if (this.running === 0) this.stopHeartbeat();
    this.server.jobEnded();
  }

  #control(p: ControlParams, after: (() => void)[]): unknown {
    if (p.session_id !== undefined && p.session_id !== this.id) {
      this.#mustObserve("control of another session's job");
      return this.server.observers.find(p.session_id, p.job_id!).start.control(p.type, after);
    }
    return this.controlEntry(this.#findJob(p.job_id), p.type, after);
  }

  /** PAUSE, RESUME or CANCEL one of this session's jobs; the owner is told through `after`. */
  controlEntry(
    entry: JobEntry,
    type: ControlParams["type"],
    after: (() => void)[],
  ): Record<string, unknown> {
    const job = entry.job;
    if (entry.result || job.state === "ending") {
      throw new RpcError(ErrorCode.JobNotFound, `job ${entry.id} has already ended`, {
        job_id: entry.id,
      });
    }
    const id = entry.id;
    const hub = this.server.observers;
    // The seed's fields: the job's state after the action, and its process ids.
    const notify = (method: string, status: string) =>
      after.push(() =>
        this.send(notification(method, { job_id: id, status, pid: job.pid, pgid: job.pgid }))
      );
    if (type === "PAUSE") {
      job.pause();
      if (entry.observed) hub.event(entry.observed, "paused");
      notify("process.paused", "paused");
      return { status: "paused", job_id: id };
    }
    if (type === "RESUME") {
      job.resume();
      if (entry.observed) hub.event(entry.observed, "resumed");
      notify("process.resumed", "running");
      return { status: "resumed", job_id: id };
    }
    void job.cancel("canceled");
    if (entry.observed) hub.event(entry.observed, "canceled");
    notify("process.canceled", "canceled");
    return { status: "canceled", job_id: id };
  }

  #findJob(jobId: string | undefined): JobEntry {
    if (jobId !== undefined) {
      const e = this.jobs.get(jobId);
      if (!e) {
        throw new RpcError(ErrorCode.JobNotFound, `no job ${jobId} in this session`, {
          job_id: jobId,
        });
      }
      return e;
    }
    const live = [...this.jobs.values()].filter((e) => !e.result);
    if (live.length === 1) return live[0];
    if (live.length === 0) {
      throw new RpcError(ErrorCode.JobNotFound, "this session has no running job");
    }
    throw new RpcError(
      ErrorCode.InvalidParams,
      `job_id: required, this session runs ${live.length} jobs`,
      { field: "job_id" },
    );
  }

  #trimFinished(): void {
    if (this.jobs.size <= MAX_FINISHED_KEPT) return;
    for (const [id, e] of this.jobs) {
      if (this.jobs.size <= MAX_FINISHED_KEPT) break;
      if (e.result) {
        this.jobs.delete(id);
        if (e.ws) this.server.workspaces.release(e.ws);
      }
    }
  }

  #files(p: FilesParams): unknown {
    let entry: JobEntry | undefined;
    if (p.session_id !== undefined && p.session_id !== this.id) {
      this.#mustObserve("files of another session's job");
      entry = this.server.sessionJob(p.session_id, p.job_id);
    } else entry = this.jobs.get(p.job_id);
    if (!entry) {
      throw new RpcError(ErrorCode.JobNotFound, `no job ${p.job_id} in this session`, {
        job_id: p.job_id,
      });
    }
    const ws = entry.ws;
    if (!ws) {
      throw new RpcError(
        ErrorCode.InvalidParams,
        `job_id: job ${p.job_id} ran without a workspace (execute with "workspace": true)`,
        { field: "job_id" },
      );
    }
    if (ws.removed) {
      throw new RpcError(
        ErrorCode.JobNotFound,
        `the workspace of job ${p.job_id} was removed (keep policy or --workspace-max-mb)`,
        { job_id: p.job_id },
      );
    }
    return readWorkspace(ws.path, p.path ?? "", { maxBytes: this.server.filesMaxBytes }).then(
      (read) => ({ job_id: p.job_id, workspace: ws.path, ...read }),
      (e) => {
        if (e instanceof WorkspaceError) {
          throw new RpcError(ErrorCode.InvalidParams, e.message, { field: e.field });
        }
        throw e;
      },
    );
  }

  /**
   * Removes the workspaces of this session's finished jobs that are not kept
   * (running jobs' are removed as they finish). Called when the session ends.
   */
  releaseWorkspaces(): void {
    this.#released = true;
    for (const e of this.jobs.values()) {
      if (e.result && e.ws) this.server.workspaces.release(e.ws);
    }
  }

  /** Ends every job of the session (client gone). */
  endAll(reason: "canceled"): Promise<unknown> {
    this.#closed = true;
    this.stopHeartbeat();
    return Promise.all(this.#live().map((e) => e.job.cancel(reason)));
  }

  /**
   * Ends the process group of every job (server shutting down); resolves with their
   * number once the groups are gone. Their output keeps flowing to the client.
   */
  async killAll(): Promise<number> {
    const live = this.#live();
    await Promise.all(live.map((e) => e.job.end("killed")));
    return live.length;
  }

  #live(): JobEntry[] {
    return [...this.jobs.values()].filter((e) => !e.result);
  }
}

/** The WebSocket subprotocol a browser offers to carry the token (see README, Security). */
const SUBPROTOCOL = "ccx";
const TOKEN_PREFIX = "ccx.token.";

function offeredSubprotocols(req: Request): string[] {
  const h = req.headers.get("sec-websocket-protocol");
  return h ? h.split(",").map((p) => p.trim()).filter((p) => p !== "") : [];
}

/** The token a browser offered as subprotocol `ccx.token.<base64url of its UTF-8>`, if any. */
function subprotocolToken(req: Request): string | null {
  const p = offeredSubprotocols(req).find((p) => p.startsWith(TOKEN_PREFIX));
  if (p === undefined) return null;
  try {
    const bytes = Uint8Array.fromBase64(p.slice(TOKEN_PREFIX.length), { alphabet: "base64url" });
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** A workspace that cannot be made, as the -32602 answer naming the param at fault. */
function workspaceRpcError(e: unknown, jobId: string): unknown {
  if (!(e instanceof WorkspaceError)) return e;
  return new RpcError(ErrorCode.InvalidParams, e.message, { field: e.field, job_id: jobId });
}

function describeJob(e: JobEntry): Record<string, unknown> {
  const d: Record<string, unknown> = {
    job_id: e.id,
    pid: e.job.pid,
    pgid: e.job.pgid,
    command: e.command,
    state: e.job.state,
    elapsed: e.result ? e.result.executionTime : e.job.elapsed,
    output_mode: e.outputMode,
  };
  if (e.result) {
    d.status = e.result.status;
    d.exit_code = e.result.exitCode;
  }
  if (e.ws) d.workspace = e.ws.path;
  return d;
}

/**
 * Removes the socket directories (`ccx-serve-PID-…`) of server processes that are gone. A PID
 * missing from /proc is not proof: a server in another PID namespace (a container or sandbox
 * sharing /tmp) is invisible here, and removing its socket would cut it off (every connection
 * then gets "503 server busy"). So a directory goes only when its socket refuses connections.
 */
async function removeStaleSocketDirs(tmp: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(tmp)];
  } catch {
    return; // no listing: leave them
  }
  for (const e of entries) {
    const pid = e.isDirectory ? e.name.match(/^ccx-serve-(\d+)-/)?.[1] : undefined;
    if (!pid || Number(pid) === Deno.pid) continue;
    try {
      Deno.statSync(`/proc/${pid}`);
      continue; // its server still runs
    } catch { /* gone, or in another PID namespace */ }
    const dir = join(tmp, e.name);
    try {
      const conn = await Deno.connect({ transport: "unix", path: join(dir, "http.sock") });
      conn.close();
      continue; // someone answers: a live server this process cannot see
    } catch (err) {
      // Only a socket that refuses (or is missing) is stale; anything else, leave it be.
      if (!(err instanceof Deno.errors.ConnectionRefused || err instanceof Deno.errors.NotFound)) {
        continue;
      }
    }
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* another server got it */ }
  }
}

/**
 * A running ccx server. Start one with {@linkcode CcxServer.start}.
 *
 * @example
 * ```ts
 * import { CcxServer } from "./server.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const health = await (await fetch(server.httpUrl + "/health")).json();
 * console.log(health.status); // "ok"
 * await server.shutdown();
 * ```
 */
export class CcxServer {
  /** The address the server is bound to, as `Deno.serve` reports it. */
  readonly hostname: string;
  /** The port the server listens on (the one picked when 0 was asked for). */
  readonly port: number;
  /** Concurrent WebSocket sessions allowed (default 64); more are refused with -32001. */
  readonly maxSessions: number;
  /** Running jobs allowed per session (default 32); more are refused with -32004. */
  readonly maxJobsPerSession: number;
  /** Milliseconds between SIGTERM and SIGKILL when a job's group is ended (default 2000). */
  readonly graceMs: number;
  /** Milliseconds clients have after the grace, at shutdown, to read the rest (default 5000). */
  readonly drainMs: number;
  /** Largest accepted incoming message, in bytes (default 4 MiB). */
  readonly maxMessageBytes: number;
  /** Whole-run timeout in seconds for jobs that give none (default 3600). */
  readonly defaultTimeoutS: number;
  /** Server variables jobs see: {@linkcode DEFAULT_PASS_ENV} plus `--pass-env`. */
  readonly passEnv: readonly string[];
  /** Socket queue in bytes at which a session's job pipes stop being read (default 4 MiB). */
  readonly highWater: number;
  /** Socket queue in bytes at or below which reading resumes (default 1 MiB). */
  readonly lowWater: number;
  /** Largest output chunk sent in one `process.output`, in bytes (default 256 KiB). */
  readonly maxChunkBytes: number;
  /** `bwrap` when every job is confined (see {@linkcode ServerOptions.isolate}). */
  readonly isolate: IsolateMode;
  /** Network of confined jobs. */
  readonly isolateNet: IsolateNet;
  /** The user jobs run as (`--run-as`), or undefined for the server's own. */
  readonly runAs: RunAsUser | undefined;
  /** Largest file `files` returns whole, in bytes. */
  readonly filesMaxBytes: number;
  /**
   * Seconds of silence after which a session with running jobs gets a `heartbeat`;
   * 0 turns them off (default 20). Idle sessions get none.
   */
  readonly heartbeatS: number;
  /** Where operator log lines go (default: timestamped lines on stderr, see `logFormat`). */
  readonly log: Logger;
  /** Where warnings about the server's own safety go (see {@linkcode ServerOptions.alert}). */
  readonly alert: Logger;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** True once {@linkcode CcxServer.shutdown} has begun; new jobs and sessions are refused. */
  closing = false;
  /** The crash journal of this server's running job groups, if any. */
  readonly journal: JobJournal | undefined;
  /** Resolves once the groups left by dead servers (see `journalDir`) have been ended. */
  readonly reaped: Promise<ReapedGroup[]>;
  /** Seconds a client may leave its output unread above the high-water mark (default 60). */
  readonly slowClientS: number;
  /** Every job of every session as observers (`watch`) see it. */
  readonly observers: ObserverHub;
  readonly #sessions = new Set<Session>();
  #server: Deno.HttpServer<Deno.UnixAddr>;
  readonly #gate: ConnectionGate;
  readonly #socketDir: string;
  /** True when the server speaks TLS (`wss://`). */
  readonly tls: boolean;
  readonly #token?: string;
  readonly #origins: Set<string>;
  readonly #startedAt = performance.now();
  #shutdown: Promise<void> | undefined;
  #finish!: () => void;
  #workspaces: WorkspaceManager | undefined;
  readonly #workspaceRoot: string;
  readonly #workspaceMaxBytes?: number;
  readonly #templateRoots: string[];

  private constructor(opts: ServerOptions) {
    const host = opts.host ?? "127.0.0.1";
    if (!isLoopback(host) && !opts.token) {
      throw new ServerConfigError(
        `refusing to listen on ${host} without a token: anyone who can reach it could run ` +
          `commands. Set one with --token or the CCX_TOKEN environment variable ` +
          `(e.g. CCX_TOKEN=$(openssl rand -hex 32)), or bind 127.0.0.1.`,
      );
    }
    const envProblem = passEnvProblem(opts.passEnv ?? []);
    if (envProblem) throw new ServerConfigError(`--pass-env: ${envProblem}`);
    this.passEnv = [...DEFAULT_PASS_ENV, ...opts.passEnv ?? []];
    if ((opts.defaultTimeoutS ?? 0) > MAX_TIMEOUT_S) {
      throw new ServerConfigError(
        `--default-timeout: at most ${MAX_TIMEOUT_S} s (365 days), got ${opts.defaultTimeoutS}`,
      );
    }
    this.#token = opts.token || undefined;
    this.maxSessions = opts.maxSessions ?? 64;
    this.maxJobsPerSession = opts.maxJobsPerSession ?? 32;
    this.graceMs = opts.graceMs ?? 2000;
    this.drainMs = (opts.drainS ?? 5) * 1000;
    this.maxMessageBytes = opts.maxMessageBytes ?? 4 * 1024 * 1024;
    this.defaultTimeoutS = opts.defaultTimeoutS ?? 3600;
    this.highWater = opts.highWaterBytes ?? 4 * 1024 * 1024;
    this.slowClientS = opts.slowClientS ?? 60;
    this.lowWater = opts.lowWaterBytes ?? 1024 * 1024;
    this.maxChunkBytes = opts.maxChunkBytes ?? 256 * 1024;
    this.log = opts.log ?? createLogger(opts.logFormat);
    this.alert = opts.alert ?? this.log;
    this.isolate = opts.isolate ?? "none";
    this.isolateNet = opts.isolateNet ?? "host";
    this.filesMaxBytes = opts.filesMaxBytes ?? 1024 * 1024;
    this.#workspaceRoot = opts.workspaceRoot ?? join(stateDir(), "workspaces");
    this.#templateRoots = opts.templateRoots ?? [];
    if (opts.workspaceMaxMb !== undefined) {
      this.#workspaceMaxBytes = Math.round(opts.workspaceMaxMb * 1024 * 1024);
    }
    if (this.isolate === "bwrap") {
      try {
        checkBwrap();
      } catch (e) {
        throw new ServerConfigError((e as Error).message);
      }
    }
    try {
      this.runAs = opts.runAs === undefined ? undefined : resolveRunAs(opts.runAs);
    } catch (e) {
      throw new ServerConfigError((e as Error).message);
    }
    // A root that exists may hold what a dead server left: sweep it now, not at the first job.
    if (this.isolate === "bwrap" || this.runAs || existsSync(this.#workspaceRoot)) {
      const spaces = this.#workspaces = this.#makeWorkspaces();
      // Removed off the event loop; what cannot be is moved aside and logged, never refused.
      void spaces.ready.then(() => {
        if (spaces.swept === 0) return;
        this.log(`removed ${spaces.swept} workspaces left by a server that died`, {
          event: "workspaces_swept",
          count: spaces.swept,
        });
      });
    }
    if (this.runAs) {
      const why = reachProblem(this.runAs, this.workspaces.root);
      if (why) {
        throw new ServerConfigError(
          `--run-as ${opts.runAs}: ${this.runAs.name} cannot enter the workspace root ` +
            `${this.workspaces.root} (${why}); give --workspace-root a directory it can ` +
            `reach, e.g. /var/lib/ccx/workspaces`,
        );
      }
    }
    const journalDir = opts.journalDir ?? join(stateDir(), "jobs");
    let journal: JobJournal | undefined;
    if (journalDir !== false) {
      this.reaped = reapOrphans(journalDir, {
        graceMs: this.graceMs,
        log: this.alert,
        onReap: (g) =>
          this.log(
            `reaping job ${g.job_id} (pgid ${g.pgid}, ${g.processes} processes, session ` +
              `${g.session.slice(0, 8)}) left by dead server pid ${g.owner_pid}`,
            { level: "warn", event: "orphan_reaped", ...g },
          ),
      });
      // Never throws: a journal it cannot write is said (even with --quiet) and retried.
      journal = JobJournal.open(journalDir, { log: this.alert });
    } else this.reaped = Promise.resolve([]);
    this.journal = journal;
    // Deno.serve listens on a private Unix socket; the gate owns the public port.
    this.#socketDir = Deno.makeTempDirSync({ prefix: `ccx-serve-${Deno.pid}-` });
    void removeStaleSocketDirs(dirname(this.#socketDir)).catch(() => {});
    const path = join(this.#socketDir, "http.sock");
    this.#server = this.#serveInner(path);
    this.tls = opts.tls !== undefined;
    try {
      this.#gate = ConnectionGate.listen({
        hostname: host,
        port: opts.port ?? 8004,
        upstreamPath: path,
        tls: opts.tls,
        maxConnections: opts.maxConnections ?? defaultMaxConnections(),
        requestTimeoutMs: (opts.requestTimeoutS ?? 10) * 1000,
        maxFrameBytes: opts.maxFrameBytes ??
          Math.min(64 << 20, Math.max(1 << 20, 4 * this.maxMessageBytes)),
        // Messages over the limit are buffered only to be refused (-32004); together they
        // hold at most twice the frame cap, whatever the number of connections.
        largeMessageBytes: this.maxMessageBytes,
        log: this.log,
      });
    } catch (e) {
      journal?.close();
      void this.#server.shutdown().finally(() => this.#removeSocketDir());
      if (opts.tls && !(e instanceof Deno.errors.AddrInUse)) {
        throw new ServerConfigError(`--cert/--key: cannot use them: ${(e as Error).message}`);
      }
      throw e;
    }
    this.hostname = this.#gate.addr.hostname;
    this.port = this.#gate.addr.port;
    opts.onListen?.({ hostname: this.hostname, port: this.port });
    this.#origins = new Set(opts.allowOrigins ?? []);
    for (const h of [this.hostname, "localhost", "127.0.0.1", "[::1]"]) {
      this.#origins.add(`${this.tls ? "https" : "http"}://${h}:${this.port}`);
    }
    this.heartbeatS = opts.heartbeatS ?? 20;
    this.observers = new ObserverHub({
      facts: () => this.facts(),
      keepFinished: opts.keepFinished,
      keepFinishedS: opts.keepFinishedS,
      openHistory: opts.openHistory ?? (() => openHistory({})),
    });
    // Finished means shut down entirely: jobs ended, journal removed, sockets closed.
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  /** Starts listening; throws {@linkcode ServerConfigError} for an unsafe configuration. */
  static start(opts: ServerOptions = {}): CcxServer {
    return new CcxServer(opts);
  }

  /** The job workspaces (the root is created when the first one is needed). */
  get workspaces(): WorkspaceManager {
    this.#workspaces ??= this.#makeWorkspaces();
    return this.#workspaces;
  }

  #makeWorkspaces(): WorkspaceManager {
    try {
      return new WorkspaceManager({
        root: this.#workspaceRoot,
        maxBytes: this.#workspaceMaxBytes,
        templateRoots: this.#templateRoots,
        log: this.log,
      });
    } catch (e) {
      throw new ServerConfigError(
        `--workspace-root: cannot use ${this.#workspaceRoot}: ${(e as Error).message}`,
      );
    }
  }

  /** @internal The bwrap command line confining `argv` to the workspace `ws`. */
  confine(argv: string[], ws: Workspace): string[] {
    const creds = claudeCredentials();
    // Under --run-as the server's credentials file (mode 600) is unreadable to the job's
    // user: it gets its own copy, which giveWorkspace() then hands over.
    const copies = this.runAs ? [...creds.copies, ...creds.readOnly] : creds.copies;
    if (creds.readOnly.length > 0) Deno.mkdirSync(join(ws.home, ".claude"), { recursive: true });
    for (const [src, rel] of copies) {
      try {
        Deno.copyFileSync(src, join(ws.home, rel));
      } catch { /* unreadable: the CLI will say it is not logged in */ }
    }
    return bwrapArgv(argv, {
      dir: ws.dir,
      work: ws.path,
      home: ws.home,
      hide: [this.workspaces.root],
      net: this.isolateNet,
      readOnly: this.runAs ? [] : creds.readOnly,
      runAs: this.runAs,
    });
  }

  /** @internal Hands a fresh workspace's `work` and `home` to the user jobs run as. */
  giveWorkspace(ws: Workspace, user: RunAsUser): void {
    for (const d of [ws.path, ws.home]) chownTree(d, user.uid, user.gid);
    // Under a umask of 077 the workspace's own directory would bar the way to them.
    const mode = Deno.statSync(ws.dir).mode ?? 0o755;
    if ((mode & 0o001) === 0) Deno.chmodSync(ws.dir, (mode & 0o7777) | 0o011);
  }

  /** @internal A live session's job, for an observer's `files`. */
  sessionJob(sessionId: string, jobId: string): JobEntry | undefined {
    for (const s of this.#sessions) if (s.id === sessionId) return s.jobs.get(jobId);
    return undefined;
  }

  /** The WebSocket endpoint, e.g. `ws://127.0.0.1:8004/ws` (`wss://` with TLS). */
  get url(): string {
    return `${this.tls ? "wss" : "ws"}://${this.#urlHost()}:${this.port}/ws`;
  }

  /** The HTTP base, e.g. `http://127.0.0.1:8004` (`https://` with TLS). */
  get httpUrl(): string {
    return `${this.tls ? "https" : "http"}://${this.#urlHost()}:${this.port}`;
  }

  /**
   * The HTTP server behind the gate. Should its accept loop ever fail (say, out of
   * file descriptors), it is started again rather than taking the process down.
   */
  #serveInner(path: string): Deno.HttpServer<Deno.UnixAddr> {
    const server = Deno.serve({ path, onListen: () => {} }, (req) => this.#route(req));
    server.finished.catch((e) => {
      if (this.closing) return;
      this.log(`HTTP server failed: ${(e as Error).message}; restarting it`, {
        level: "error",
        event: "http_server_failed",
      });
      setTimeout(() => {
        if (this.closing) return;
        try {
          Deno.removeSync(path);
        } catch { /* gone */ }
        try {
          this.#server = this.#serveInner(path);
        } catch (err) {
          this.log(`HTTP server could not restart: ${(err as Error).message}`, {
            level: "error",
            event: "http_server_failed",
          });
        }
      }, 100);
    });
    return server;
  }

  #removeSocketDir(): void {
    try {
      Deno.removeSync(this.#socketDir, { recursive: true });
    } catch { /* gone */ }
  }

  #urlHost(): string {
    const h = this.hostname;
    if (h === "0.0.0.0") return "127.0.0.1";
    return h.includes(":") ? `[${h}]` : h;
  }

  /** Jobs running now, across sessions. */
  get runningJobs(): number {
    let n = 0;
    for (const s of this.#sessions) n += s.running;
    return n;
  }

  /** The `/health` document. */
  health(): Health {
    return {
      status: this.closing ? "shutting_down" : "ok",
      version: VERSION,
      active_sessions: this.#sessions.size,
      max_sessions: this.maxSessions,
      running_jobs: this.runningJobs,
      uptime_seconds: Math.round((performance.now() - this.#startedAt) / 1000),
      ...this.#gate.stats(),
    };
  }

  /**
   * What observers see of the server: the {@linkcode Health} fields plus memory, load,
   * host name, observers and the finished-job limits.
   */
  facts(): Record<string, unknown> {
    let hostname = "";
    let loadAverage: number[] = [];
    try {
      hostname = Deno.hostname();
      loadAverage = Deno.loadavg();
    } catch { /* no --allow-sys */ }
    return {
      ...this.health(),
      hostname,
      pid: Deno.pid,
      listen: this.httpUrl,
      token_required: this.#token !== undefined,
      observers: this.observers.observers,
      memory_rss_bytes: Deno.memoryUsage().rss,
      load_average: loadAverage,
      timestamp: Date.now() / 1000,
    };
  }

  /** The methods a session may call (`watch` and `history` only for observers). */
  methods(observer: boolean): string[] {
    return observer ? [...METHODS, "watch", "history"] : METHODS;
  }

  /** @internal */
  jobEnded(): void {}

  #authorized(req: Request, url: URL): boolean {
    if (!this.#token) return true;
    const auth = req.headers.get("authorization");
    const bearer = auth?.match(/^Bearer\s+(.+)$/i)?.[1] ?? null;
    const presented = bearer ?? subprotocolToken(req) ?? url.searchParams.get("token");
    return tokenMatches(presented, this.#token);
  }

  #route(req: Request): Response {
    const url = new URL(req.url);
    if (url.pathname === "/health" && (req.method === "GET" || req.method === "HEAD")) {
      return Response.json(this.health());
    }
    if (url.pathname === "/" && (req.method === "GET" || req.method === "HEAD")) {
      // The page holds no data: it shows nothing until it has connected to /ws (with the token).
      const { html, csp } = page();
      return new Response(req.method === "HEAD" ? null : html, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          "content-security-policy": csp,
          "referrer-policy": "no-referrer",
          "x-content-type-options": "nosniff",
          "x-frame-options": "DENY",
        },
      });
    }
    if (url.pathname !== "/ws" && url.pathname !== "/ws/mcp") {
      return Response.json({
        error: "not found",
        endpoints: ["/", "/ws", "/ws/mcp", "/health"],
      }, { status: 404 });
    }
    const origin = req.headers.get("origin");
    if (origin !== null && !this.#origins.has(origin)) {
      return Response.json({ error: `origin ${origin} is not allowed (see --allow-origin)` }, {
        status: 403,
      });
    }
    if (!this.#authorized(req, url)) {
      return Response.json(
        { error: "a valid token is required (Authorization: Bearer … or ?token=…)" },
        { status: 401, headers: { "www-authenticate": "Bearer" } },
      );
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
    }
    if (this.closing) return Response.json({ error: "shutting down" }, { status: 503 });
    // The gate names the connection and its real peer (Deno.serve sees only the Unix socket);
    // read both before the upgrade consumes the request.
    const connId = req.headers.get(GATE_CONN_HEADER);
    const peer = gatePeer(req);
    // A browser cannot set headers on a WebSocket: it offers `ccx` (and the token as
    // `ccx.token.<base64url>`), and the server must then answer with `ccx`.
    const offersCcx = offeredSubprotocols(req).includes(SUBPROTOCOL);
    // The gate's upgrade: it runs the socket on the client's connection, no relay (gate_socket.ts).
    const { socket, response: res } = upgradeWebSocket(req, {
      idleTimeout: 120,
      ...(offersCcx ? { protocol: SUBPROTOCOL } : {}),
    });
    const remote = `${
      peer.hostname.includes(":") ? `[${peer.hostname}]` : peer.hostname
    }:${peer.port}`;
    // Observing every session's jobs: with a token, whoever presented it; without one (the
    // server is then on loopback), only loopback peers.
    const mayObserve = this.#token !== undefined || isLoopback(peer.hostname);
    const session = this.#accept(socket, remote, mayObserve);
    if (session && connId) {
      session.abort = (code, reason) => this.#gate.closeWith(connId, code, reason);
    }
    return res;
  }

  #accept(ws: WebSocket, remote: string, mayObserve: boolean): Session | undefined {
    if (this.#sessions.size >= this.maxSessions) {
      ws.onopen = () => {
        const err = new RpcError(
          ErrorCode.SessionLimit,
          `session limit reached (${this.maxSessions} sessions)`,
          { limit: "max_sessions", max: this.maxSessions },
        );
        ws.send(JSON.stringify(errorResponse(null, err)));
        ws.close(1013, "session limit reached");
      };
      return;
    }
    const session = new Session(ws, this, remote, mayObserve);
    this.#sessions.add(session);
    ws.onopen = () => {
      session.send(notification("connected", {
        session_id: session.id,
        version: VERSION,
        capabilities: {
          methods: this.methods(mayObserve),
          control: ["PAUSE", "RESUME", "CANCEL"],
          workspace: true,
          isolate: this.isolate,
          argv: true,
          stdin: true,
          batches: true,
          output_modes: ["lines", "chunks"],
          max_jobs: this.maxJobsPerSession,
          max_message_bytes: this.maxMessageBytes,
        },
      }));
    };
    ws.onmessage = (ev) => session.onMessage(ev.data);
    ws.onclose = () => this.#gone(session);
    ws.onerror = () => {};
    return session;
  }

  /** A session's connection is over: its jobs are canceled as for a disconnect. */
  #gone(session: Session): void {
    if (!this.#sessions.delete(session)) return;
    this.observers.unwatch(session.asObserver);
    void session.endAll("canceled");
    session.releaseWorkspaces();
  }

  /**
   * Closes a session with a close code and reason (e.g. 1008 for a client too slow
   * to read its output) and cancels its jobs as for a disconnect; logged once.
   * @internal
   */
  dropSession(session: Session, code: number, reason: string, fields: LogFields = {}): void {
    if (!this.#sessions.has(session)) return;
    this.log(`session ${session.id.slice(0, 8)} closed ${code}: ${reason}`, {
      level: "warn",
      session: session.id,
      close_code: code,
      ...fields,
    });
    if (session.abort) session.abort(code, reason); // the gate sends the close frame
    else {
      try {
        session.ws.close(code, reason);
      } catch { /* already closing */ }
    }
    this.#gone(session);
  }

  /**
   * Stops accepting, ends every job's group (status `killed`), sends every client all
   * that is queued for it (its jobs' last output, `process.completed`, `process.exit`),
   * closes each with 1001, and stops; a client that has not read its output by grace +
   * drain after the call is dropped (logged). Safe to call more than once.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown(): Promise<void> {
    this.closing = true;
    const stopAccepting = this.#gate.close(false);
    this.observers.close();
    const sessions = [...this.#sessions];
    for (const s of sessions) s.stopHeartbeat();
    await orderlyShutdown({
      graceMs: this.graceMs,
      drainMs: this.drainMs,
      log: this.log,
      sessions,
      endJobs: async () =>
        (await Promise.all(sessions.map((s) => s.killAll()))).reduce(
          (a, b) => a + b,
          0,
        ),
      release: async () => {
        for (const s of sessions) s.releaseWorkspaces();
        // Dropped clients had their close frame queued at a frame boundary: a moment for it.
        await Promise.race([Promise.all(sessions.map((s) => s.closed)), sleep(300)]);
        await this.#gate.close(true);
        await stopAccepting;
        await this.#server.shutdown();
        this.#removeSocketDir();
        await this.reaped;
        // Workspace removals under way finish (or are moved aside) before the server is gone.
        await this.#workspaces?.idle();
        this.journal?.close();
      },
    });
    this.#finish();
  }
}

/**
 * The in-process server of this machine's own runs (`ccx stress` without `--server`, and
 * each `ccx worker`): loopback on a free port, quiet, roomy limits; jobs are the user's own
 * children and get this process's environment, less `CCX_*` (so never a queue password).
 * `opts` adds to or overrides these, e.g. `workspaceRoot`.
 *
 * @example
 * ```ts
 * import { startInProcessServer } from "./server.ts";
 * const server = startInProcessServer();
 * console.log(server.url);
 * await server.shutdown();
 * ```
 */
export function startInProcessServer(opts: Partial<ServerOptions> = {}): CcxServer {
  return CcxServer.start({
    port: 0,
    log: () => {},
    passEnv: ["*"],
    maxJobsPerSession: 256,
    maxSessions: 1024,
    ...opts,
  });
}

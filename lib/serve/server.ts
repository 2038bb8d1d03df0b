/**
 * The ccx WebSocket JSON-RPC server, put together: it checks its options (options.ts),
 * sweeps what dead servers left (workspaces, job groups in the crash journal, socket
 * directories), listens behind the connection gate (gate.ts) with the HTTP routes of
 * routes.ts, makes each upgraded WebSocket a {@linkcode Session} (session.ts, its jobs in
 * jobs.ts) within the session limit, answers `/health`, and shuts down in order
 * (shutdown.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "./server.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} }); // `ccx serve` listens on 8004
 * assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
 * await server.shutdown();
 * ```
 * @module
 */

import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { ErrorCode, errorResponse, notification, RpcError, VERSION } from "../common/protocol.ts";
import type { LogFields, Logger } from "../common/log.ts";
import { WorkspaceManager } from "./workspace.ts";
import { checkBwrap, type IsolateMode, type IsolateNet } from "./isolate.ts";
import { ConnectionGate, defaultMaxConnections } from "./gate.ts";
import { JobJournal, type ReapedGroup, reapOrphans } from "./journal.ts";
import { reachProblem, resolveRunAs, type RunAsUser } from "./run_as.ts";
import { orderlyShutdown } from "./shutdown.ts";
import { ObserverHub } from "./observer.ts";
import { ServerConfigError, type ServerOptions, serverSettings } from "./options.ts";
import { allowedOrigins, type Health, IDLE_DROP_REASON, route, type RouteHost } from "./routes.ts";
import type { JobEntry } from "./jobs.ts";
import { methodNames, Session } from "./session.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
 * import assert from "node:assert/strict";
 * import { CcxServer } from "./server.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const health = await (await fetch(server.httpUrl + "/health")).json();
 * assert.equal(health.status, "ok");
 * assert.equal(health.running_jobs, 0);
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
  /** Server variables jobs see: `DEFAULT_PASS_ENV` (job_env.ts) plus `--pass-env`. */
  readonly passEnv: readonly string[];
  /** The environment jobs' allow-list picks from (undefined: this process's own). */
  readonly serverEnv?: Readonly<Record<string, string>>;
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
  /**
   * Seconds a WebSocket peer may send no frame, not even a pong, before it is dropped
   * (default 120; 0: never). See {@linkcode ServerOptions.idleTimeoutS}.
   */
  readonly idleTimeoutS: number;
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
  /** What the HTTP routes need of the server (set once it listens). */
  readonly #routes: RouteHost;
  readonly #startedAt = performance.now();
  #shutdown: Promise<void> | undefined;
  #finish!: () => void;
  #workspaces: WorkspaceManager | undefined;
  readonly #workspaceRoot: string;
  readonly #workspaceMaxBytes: number | undefined;
  readonly #templateRoots: string[];

  private constructor(opts: ServerOptions) {
    const s = serverSettings(opts);
    this.passEnv = s.passEnv;
    this.serverEnv = opts.env;
    this.#token = s.token;
    this.maxSessions = s.maxSessions;
    this.maxJobsPerSession = s.maxJobsPerSession;
    this.graceMs = s.graceMs;
    this.drainMs = s.drainMs;
    this.maxMessageBytes = s.maxMessageBytes;
    this.defaultTimeoutS = s.defaultTimeoutS;
    this.highWater = s.highWater;
    this.slowClientS = s.slowClientS;
    this.lowWater = s.lowWater;
    this.maxChunkBytes = s.maxChunkBytes;
    this.heartbeatS = s.heartbeatS;
    this.idleTimeoutS = s.idleTimeoutS;
    this.log = s.log;
    this.alert = s.alert;
    this.isolate = s.isolate;
    this.isolateNet = s.isolateNet;
    this.filesMaxBytes = s.filesMaxBytes;
    this.#workspaceRoot = s.workspaceRoot;
    this.#templateRoots = s.templateRoots;
    this.#workspaceMaxBytes = s.workspaceMaxBytes;
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
    let journal: JobJournal | undefined;
    if (s.journalDir !== false) {
      const reapStart = performance.now();
      this.reaped = reapOrphans(s.journalDir, {
        graceMs: this.graceMs,
        log: this.alert,
        onReap: (g) =>
          this.log(
            `reaping job ${g.job_id} (pgid ${g.pgid}, ${g.processes} processes, session ` +
              `${g.session.slice(0, 8)}) left by dead server pid ${g.owner_pid}`,
            { level: "warn", event: "orphan_reaped", ...g },
          ),
      }).then((groups) => {
        // When the last orphan group was gone, measured from the start (docs: 0.5 s + grace).
        if (groups.length > 0) {
          const ms = Math.round(performance.now() - reapStart);
          this.log(`reaped ${groups.length} orphan job groups in ${ms} ms`, {
            event: "orphans_gone",
            groups: groups.length,
            elapsed_ms: ms,
          });
        }
        return groups;
      });
      // Never throws: a journal it cannot write is said (even with --quiet) and retried.
      journal = JobJournal.open(s.journalDir, { log: this.alert });
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
        hostname: s.host,
        port: s.port,
        upstreamPath: path,
        tls: opts.tls,
        maxConnections: opts.maxConnections ?? defaultMaxConnections(),
        requestTimeoutMs: s.requestTimeoutMs,
        maxFrameBytes: s.maxFrameBytes,
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
    this.#routes = {
      token: this.#token,
      origins: allowedOrigins(s.allowOrigins, this),
      idleTimeoutS: this.idleTimeoutS,
      closing: () => this.closing,
      health: () => this.health(),
      upgraded: (socket, peer) => {
        const session = this.#accept(socket, peer.remote, peer.mayObserve);
        this.log(
          `session ${session?.id.slice(0, 8) ?? "refused"} from ${peer.remote} on ` +
            peer.handshake.path,
          { event: "session_open", session: session?.id, ...peer.handshake },
        );
        const connId = peer.connId;
        if (session && connId) {
          session.abort = (code, reason) => this.#gate.closeWith(connId, code, reason);
        }
      },
    };
    this.observers = new ObserverHub({
      facts: () => this.facts(),
      keepFinished: opts.keepFinished,
      keepFinishedS: opts.keepFinishedS,
      openHistory: s.openHistory,
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
    const server = Deno.serve({ path, onListen: () => {} }, (req) => route(req, this.#routes));
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
    return methodNames(observer);
  }

  /** @internal */
  jobEnded(): void {}

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
    ws.onclose = (ev) => {
      if (ev.code === 1001 && ev.reason === IDLE_DROP_REASON && this.#sessions.has(session)) {
        this.#idleDropped(session);
      }
      this.#gone(session);
    };
    ws.onerror = () => {};
    return session;
  }

  /** Logs a peer that Deno's WebSocket dropped for an unanswered ping (`idleTimeoutS`). */
  #idleDropped(session: Session): void {
    const jobs = session.running;
    this.log(
      `session ${session.id.slice(0, 8)} from ${session.remote} dropped: no frame from it ` +
        `for ${this.idleTimeoutS} s, not even a pong to the server's ping (--idle-timeout-s)` +
        (jobs ? `; its ${jobs} running job(s) are canceled` : ""),
      {
        level: "warn",
        event: "session_idle_drop",
        session: session.id,
        idle_timeout_s: this.idleTimeoutS,
        running_jobs: jobs,
      },
    );
  }

  /** A session's connection is over: its jobs are canceled as for a disconnect. */
  #gone(session: Session): void {
    if (!this.#sessions.delete(session)) return;
    this.observers.unwatch(session.asObserver);
    void session.endAll("canceled");
    session.jobs.releaseWorkspaces();
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
        (await Promise.all(sessions.map((s) => s.jobs.killAll()))).reduce(
          (a, b) => a + b,
          0,
        ),
      release: async () => {
        for (const s of sessions) s.jobs.releaseWorkspaces();
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

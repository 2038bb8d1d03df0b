/**
 * The ccx client: connects to a `ccx serve` WebSocket, runs jobs and delivers
 * their output and completion. Used by `ccx run`, `ccx stress` and `ccx exec`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { CcxClient } from "./client.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} }); // or a `ccx serve` elsewhere
 * const client = await CcxClient.connect(server.url); // ws://127.0.0.1:PORT/ws
 * const output: string[] = [];
 * const job = await client.execute({ argv: ["echo", "hi"] }, {
 *   onOutput: (type, data) => output.push(`${type}: ${data}`),
 * });
 * const end = await job.done;
 * assert.equal(end.status, "completed");
 * assert.equal(end.exitCode, 0);
 * assert.deepEqual(output, ["stdout: hi\n"]);
 * await client.close();
 * await server.shutdown();
 * ```
 * @module
 */

import type {
  ExecuteParams,
  FileEntry,
  JobResult,
  JobStatus,
  RpcErrorObject,
  WorkspaceRead,
} from "../common/protocol.ts";
import type { ClaudeLimit } from "../claude/limits.ts";
import type { FileAccess } from "../verdict/criteria.ts";
import { isAbsolute, relative, resolve } from "node:path";

/** An error response from the server, or a broken connection. */
export class ClientError extends Error {
  /** JSON-RPC error code, when the server sent one. */
  readonly code?: number;
  /** The error's `data`, when the server sent one. */
  readonly data?: unknown;
  /** Creates the error from a JSON-RPC error object's `message`, `code` and `data`. */
  constructor(message: string, code?: number, data?: unknown) {
    super(message);
    this.name = "ClientError";
    this.code = code;
    this.data = data;
  }
}

/**
 * Why a WebSocket connection failed, said as plainly as the handshake allows.
 * Over `wss://`, Deno retries a refused HTTP/1.1 upgrade as HTTP/2 and reports
 * only that retry's failure ("Didn't receive h2 alpn"); the status the server
 * gave is then learnt by asking the same URL once more without an upgrade
 * (a ccx server checks the token before the upgrade), and said in the words
 * Deno uses for `ws://` ("Invalid status code: 401"). A 401 says whether the
 * token was refused or missing.
 */
async function refusal(url: string, why: string, opts: ConnectOptions): Promise<string> {
  if (url.startsWith("wss:") && /h2 alpn/i.test(why)) {
    const http = new URL(url);
    http.protocol = "https:";
    const client = opts.ca ? Deno.createHttpClient({ caCerts: [opts.ca] }) : undefined;
    try {
      const res = await fetch(http, {
        client,
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        signal: AbortSignal.timeout(5000),
      });
      await res.body?.cancel();
      // 426 "expected a WebSocket upgrade": the upgrade itself was not what failed.
      if (res.status !== 426) {
        why = `failed to connect to WebSocket: Invalid status code: ${res.status}`;
      }
    } catch {
      /* no answer: keep Deno's words */
    } finally {
      client?.close();
    }
  }
  if (/status code:? 401\b/i.test(why)) {
    why += opts.token ? ": the server refused the token" : ": the server requires a token";
  }
  return why;
}

/** A Claude limit the server noticed in a job's output (sent as `error.*` notifications). */
export type LimitNotice = ClaudeLimit;

/** A job's workspace as `process.completed` reports it. */
export interface WorkspaceReport {
  /** The workspace directory on the server's host (the job's working directory). */
  path: string;
  /** Whether the server keeps it after this session (keep policy and size bound). */
  kept: boolean;
  /** Files the job created or changed (a bounded list). */
  files: FileEntry[];
  /** How many files it created or changed in all. */
  filesTotal: number;
}

/** What `files` answers: the read, with the job and its workspace path. */
export type FilesResult = WorkspaceRead & { job_id: string; workspace: string };

/** How a remote job ended: the server's `process.completed`, plus the limits it reported. */
export interface Completion extends Omit<JobResult, "invalidUtf8Chunks"> {
  /** Limits the server reported for this job. */
  limits: LimitNotice[];
  /** The job's workspace, when it ran in one. */
  workspace?: WorkspaceReport;
}

/** Callbacks for one job's events. */
export interface JobHandlers {
  /**
   * Each chunk of output (coalesced, or one line when `output_mode` is `lines`), in
   * order (`seq` counts per job). `rawBase64`
   * carries the exact bytes when they were not valid UTF-8 (`data` then has U+FFFD).
   */
  onOutput?(type: "stdout" | "stderr", data: string, seq: number, rawBase64?: string): void;
  /** Any other notification about this job (process.started, error.*, …). */
  onEvent?(method: string, params: Record<string, unknown>): void;
}

/** A job running on the server. */
export class RemoteJob {
  /** The job's id (chosen by the client unless given). */
  readonly jobId: string;
  /** The job's process id on the server's host (from the `execute` result; 0 before). */
  pid = 0;
  /** The job's process group id on the server's host (from the `execute` result; 0 before). */
  pgid = 0;
  /** Resolves with the completion; rejects when the connection is lost first. */
  readonly done: Promise<Completion>;
  /** @internal */
  readonly limits: LimitNotice[] = [];
  #resolve!: (c: Completion) => void;
  #reject!: (e: Error) => void;

  /** @internal */
  constructor(jobId: string, private readonly client: CcxClient, readonly handlers: JobHandlers) {
    this.jobId = jobId;
    this.done = new Promise((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    this.done.catch(() => {}); // callers that never await done must not crash the process
  }

  /** Cancels the job (its whole process group). Resolves with the completion. */
  async cancel(): Promise<Completion> {
    try {
      await this.client.request("control", { type: "CANCEL", job_id: this.jobId });
    } catch (e) {
      // Already ended: the completion is on its way or here.
      if (!(e instanceof ClientError && e.code === -32003)) throw e;
    }
    return await this.done;
  }

  /** Stops the job's process group (SIGSTOP). */
  async pause(): Promise<void> {
    await this.client.request("control", { type: "PAUSE", job_id: this.jobId });
  }

  /** Continues it (SIGCONT). */
  async resume(): Promise<void> {
    await this.client.request("control", { type: "RESUME", job_id: this.jobId });
  }

  /** @internal */
  settle(c: Completion | Error): void {
    if (c instanceof Error) this.#reject(c);
    else this.#resolve(c);
  }
}

type WebSocketOptions = {
  headers: Record<string, string>;
  protocols?: string[];
  client?: Deno.HttpClient;
};

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** Options for {@linkcode CcxClient.connect}. */
export interface ConnectOptions {
  /** Token for servers that require one (sent as `Authorization: Bearer …`). */
  token?: string;
  /** Give up connecting after this many ms (default 10000). */
  timeoutMs?: number;
  /**
   * PEM certificate(s) of a private CA (or a self-signed server certificate)
   * to trust for `wss://`, besides the system's roots.
   */
  ca?: string;
  /**
   * How `token` is sent: `bearer` (an `Authorization` header, the default), or `subprotocol`
   * as the web page sends it (the WebSocket subprotocols `ccx` and `ccx.token.<base64url>`).
   */
  tokenAs?: "bearer" | "subprotocol";
}

/**
 * A connection to a ccx server.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { CcxClient } from "./client.ts";
 * const server = CcxServer.start({ port: 0, token: "s3cret", log: () => {} });
 * await assert.rejects(CcxClient.connect(server.url)); // no token: refused
 * const c = await CcxClient.connect(server.url, { token: "s3cret" });
 * assert.equal((await c.request("ping") as { pong: boolean }).pong, true);
 * await c.close();
 * await server.shutdown();
 * ```
 */
export class CcxClient {
  /** The session id the server assigned. */
  sessionId = "";
  /** The server's version. */
  serverVersion = "";
  /**
   * How the connection was closed, once it is: the WebSocket close code (1001 when the
   * server shut down; 1005/1006 for no code or an abnormal end) and its reason.
   */
  closeInfo: { code: number; reason: string } | undefined;
  /** Called for notifications that concern no job this client knows (heartbeat, …). */
  onNotification?: (method: string, params: Record<string, unknown>) => void;
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #jobs = new Map<string, RemoteJob>();
  #nextId = 1;
  #closed: Promise<void>;
  #isClosed = false;
  /** Jobs the server has started on this connection (execute answered). */
  #started = 0;
  /** Waiters of {@linkcode endedByShutdown}, woken when jobs start or end, or on close. */
  readonly #changed = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => {
      ws.addEventListener("close", (ev) => {
        this.#isClosed = true;
        this.closeInfo = { code: ev.code, reason: ev.reason };
        const err = new ClientError(
          this.serverShutDown
            ? `the server shut down (close 1001${ev.reason ? `: ${ev.reason}` : ""})`
            : `connection closed${ev.reason ? `: ${ev.reason}` : ""} (code ${ev.code})`,
        );
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        for (const j of this.#jobs.values()) j.settle(err);
        this.#jobs.clear();
        resolve();
        this.#poke();
      });
    });
    ws.addEventListener("message", (ev) => this.#onMessage(ev.data));
  }

  /** Connects and waits for the server's `connected` notification. */
  static connect(url: string, opts: ConnectOptions = {}): Promise<CcxClient> {
    const headers: Record<string, string> = {};
    let protocols: string[] | undefined;
    if (opts.token && opts.tokenAs === "subprotocol") {
      const b64 = new TextEncoder().encode(opts.token).toBase64({
        alphabet: "base64url",
        omitPadding: true,
      });
      protocols = ["ccx", `ccx.token.${b64}`];
    } else if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    // Deno's WebSocket takes a `client` (an HttpClient) like fetch does: that is how a
    // private CA is trusted for wss://.
    const http = opts.ca ? Deno.createHttpClient({ caCerts: [opts.ca] }) : undefined;
    const ws = new WebSocket(url, { headers, protocols, client: http } as WebSocketOptions);
    if (http) ws.addEventListener("close", () => http.close());
    const client = new CcxClient(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ClientError(`could not connect to ${url} within ${opts.timeoutMs ?? 10000} ms`));
        ws.close();
      }, opts.timeoutMs ?? 10000);
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(new ClientError(`could not connect to ${url}: ${why}`));
      };
      let erred = false;
      ws.addEventListener("error", (ev) => {
        erred = true;
        const why = (ev as ErrorEvent).message || "connection refused or rejected";
        void refusal(url, why, opts).then(fail);
      });
      ws.addEventListener("close", (ev) => {
        if (!erred) fail(ev.reason || `closed with code ${ev.code}`);
      });
      client.onNotification = (method, params) => {
        if (method === "connected") {
          clearTimeout(timer);
          client.sessionId = String(params.session_id ?? "");
          client.serverVersion = String(params.version ?? "");
          client.onNotification = undefined;
          resolve(client);
        }
      };
      ws.addEventListener("message", (ev) => {
        // The server refuses a session over its limit with an error and a close.
        try {
          const m = JSON.parse(String(ev.data));
          if (m.error && m.id === null && client.sessionId === "") fail(m.error.message);
        } catch { /* handled by #onMessage */ }
      }, { once: true });
    });
  }

  /** True once the connection is closed. */
  get closed(): boolean {
    return this.#isClosed;
  }

  /** Resolves once the connection is closed (by either side, for any reason). */
  whenClosed(): Promise<void> {
    return this.#closed;
  }

  /**
   * True once the server has closed the connection because it shut down (close code
   * 1001, going away): it first ended every job and sent each one's completion, unless
   * this client had not read its output by the server's drain deadline.
   */
  get serverShutDown(): boolean {
    return this.closeInfo?.code === 1001;
  }

  /**
   * After a job of this connection ended `killed`: whether the server shut down (and so
   * ended it), told by the close code. A server that shuts down ends every job, sends each
   * one's completion, and closes each connection with 1001 once that connection's jobs have
   * all ended and their output is delivered. So this resolves `true` once the connection
   * closes with 1001, and `false` once it closes with another code, once it is still open
   * `settleMs` (default 1 s) after this connection's last job ended, once the server starts
   * a new job here (a server shutting down starts none), or after `maxMs` (default 10 s, more
   * than the default grace plus drain of `ccx serve`) in all, while other jobs of this
   * connection still run.
   */
  async endedByShutdown(opts: { settleMs?: number; maxMs?: number } = {}): Promise<boolean> {
    const settleMs = opts.settleMs ?? 1000;
    const deadline = performance.now() + (opts.maxMs ?? 10_000);
    const started = this.#started;
    let idleSince: number | undefined;
    while (!this.#isClosed) {
      if (this.#started !== started) return false;
      const now = performance.now();
      if (this.#jobs.size > 0) idleSince = undefined;
      else idleSince ??= now;
      const until = Math.min(deadline, idleSince === undefined ? deadline : idleSince + settleMs);
      if (now >= until) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#changed.delete(done);
          resolve();
        };
        const timer = setTimeout(done, until - now);
        this.#changed.add(done);
      });
    }
    return this.serverShutDown;
  }

  /** Wakes {@linkcode endedByShutdown}: a job started or ended, or the connection closed. */
  #poke(): void {
    const waiters = [...this.#changed];
    this.#changed.clear();
    for (const w of waiters) w();
  }

  /** Sends a request and resolves with its result (rejects with {@linkcode ClientError}). */
  request(method: string, params?: unknown): Promise<unknown> {
    if (this.#isClosed) return Promise.reject(new ClientError("connection closed"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  /**
   * Starts a job. Resolves once the server has started it; `job.done` resolves
   * after all its output has been delivered to `handlers.onOutput`. Output comes
   * as coalesced chunks (`output_mode: "chunks"`, asked for unless `params` says
   * otherwise): ccx's own clients join the text and need no message per line.
   */
  async execute(params: ExecuteParams, handlers: JobHandlers = {}): Promise<RemoteJob> {
    const jobId = params.job_id ?? crypto.randomUUID();
    const job = new RemoteJob(jobId, this, handlers);
    this.#jobs.set(jobId, job);
    try {
      const r = await this.request("execute", {
        ...params,
        job_id: jobId,
        output_mode: params.output_mode ?? "chunks",
      }) as {
        pid: number;
        pgid: number;
      };
      job.pid = r.pid;
      job.pgid = r.pgid;
      this.#started++;
    } catch (e) {
      this.#jobs.delete(jobId);
      throw e;
    } finally {
      this.#poke();
    }
    return job;
  }

  /**
   * Reads a job's workspace with the `files` method: the listing (no `path`)
   * or one file (text, or base64 when binary; bounded by the server).
   */
  async files(jobId: string, path?: string): Promise<FilesResult> {
    return await this.request("files", { job_id: jobId, path }) as FilesResult;
  }

  /** Closes the connection; the server then ends this session's jobs. */
  async close(): Promise<void> {
    if (!this.#isClosed) this.#ws.close(1000, "client done");
    await this.#closed;
  }

  #onMessage(data: unknown): void {
    let msg: unknown;
    try {
      msg = JSON.parse(String(data));
    } catch {
      return; // not ours to fix; the server only sends JSON
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) this.#dispatch(m as Record<string, unknown>);
  }

  #dispatch(m: Record<string, unknown>): void {
    if (typeof m.method === "string") {
      const params = (m.params ?? {}) as Record<string, unknown>;
      const job = typeof params.job_id === "string" ? this.#jobs.get(params.job_id) : undefined;
      if (!job) return this.onNotification?.(m.method, params);
      this.#jobEvent(job, m.method, params);
      return;
    }
    const p = typeof m.id === "number" ? this.#pending.get(m.id) : undefined;
    if (!p) return;
    this.#pending.delete(m.id as number);
    if (m.error) {
      const e = m.error as RpcErrorObject;
      p.reject(new ClientError(e.message, e.code, e.data));
    } else p.resolve(m.result);
  }

  #jobEvent(job: RemoteJob, method: string, params: Record<string, unknown>): void {
    switch (method) {
      case "process.output":
        job.handlers.onOutput?.(
          params.type === "stderr" ? "stderr" : "stdout",
          String(params.data ?? ""),
          Number(params.seq ?? 0),
          typeof params.data_base64 === "string" ? params.data_base64 : undefined,
        );
        return;
      case "process.completed":
        this.#jobs.delete(job.jobId);
        this.#poke();
        job.handlers.onEvent?.(method, params);
        job.settle({
          status: params.status as JobStatus,
          exitCode: (params.exit_code ?? null) as number | null,
          signal: (params.signal ?? null) as string | null,
          executionTime: Number(params.execution_time ?? 0),
          stdoutBytes: Number(params.stdout_bytes ?? 0),
          stderrBytes: Number(params.stderr_bytes ?? 0),
          limits: job.limits,
          workspace: typeof params.workspace === "string"
            ? {
              path: params.workspace,
              kept: params.workspace_kept === true,
              files: Array.isArray(params.files) ? params.files as FileEntry[] : [],
              filesTotal: Number(params.files_total ?? 0),
            }
            : undefined,
        });
        return;
      case "error.rate_limit_exceeded":
      case "error.token_limit_exceeded":
        job.limits.push({
          kind: method === "error.rate_limit_exceeded" ? "rate_limit" : "token_limit",
          errorType: String(params.error_type ?? ""),
          message: String(params.message ?? ""),
          resetTimestamp: params.reset_timestamp as number | undefined,
          retryAfter: params.retry_after as number | undefined,
          recoverable: Boolean(params.recoverable),
        });
        job.handlers.onEvent?.(method, params);
        return;
      default:
        job.handlers.onEvent?.(method, params);
    }
  }
}

/** Output collected by {@linkcode runToEnd}. */
export interface CollectedRun extends Completion {
  /** The job's id. */
  jobId: string;
  /** All stdout chunks joined in order (invalid UTF-8 shows as U+FFFD). */
  stdout: string;
  /** All stderr chunks joined in order (invalid UTF-8 shows as U+FFFD). */
  stderr: string;
}

/**
 * Runs one job to its end and collects its output. When `signal` aborts
 * meanwhile, the job is canceled through the server (its whole process group
 * ends) and the result still holds everything it wrote, with status `canceled`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { CcxClient, runToEnd } from "./client.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const c = await CcxClient.connect(server.url);
 * const r = await runToEnd(c, { command: "echo hi; echo oops >&2; exit 3" });
 * assert.deepEqual([r.stdout, r.stderr, r.status, r.exitCode], ["hi\n", "oops\n", "failed", 3]);
 * await c.close();
 * await server.shutdown();
 * ```
 */
export async function runToEnd(
  client: CcxClient,
  params: ExecuteParams,
  handlers: JobHandlers = {},
  signal?: AbortSignal,
): Promise<CollectedRun> {
  if (signal?.aborted) throw new ClientError("interrupted before the job started");
  // Our own job_id, so a CANCEL can be sent even before execute has answered.
  const jobId = params.job_id ?? crypto.randomUUID();
  const cancel = () => {
    client.request("control", { type: "CANCEL", job_id: jobId }).catch(() => {});
  };
  signal?.addEventListener("abort", cancel, { once: true });
  const out: string[] = [];
  const err: string[] = [];
  try {
    const job = await client.execute({ ...params, job_id: jobId }, {
      onOutput(type, data, seq, raw) {
        (type === "stdout" ? out : err).push(data);
        handlers.onOutput?.(type, data, seq, raw);
      },
      onEvent: handlers.onEvent,
    });
    const c = await job.done;
    return { ...c, jobId, stdout: out.join(""), stderr: err.join("") };
  } finally {
    signal?.removeEventListener("abort", cancel);
  }
}

/**
 * {@linkcode FileAccess} on a job's workspace on the server, through the
 * `files` method, for judging file criteria where the client cannot see the
 * server's disk. Absolute paths under `workspace` are read; anything outside
 * it counts as missing. Answers are cached per path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { CcxClient, remoteFiles, runToEnd } from "./client.ts";
 * const workspaceRoot = Deno.makeTempDirSync();
 * const server = CcxServer.start({ port: 0, log: () => {}, workspaceRoot });
 * const c = await CcxClient.connect(server.url);
 * const r = await runToEnd(c, { command: "echo hi > a.txt", workspace: { keep: "always" } });
 * const fa = remoteFiles(c, r.jobId, r.workspace!.path);
 * assert.equal(await fa.readText(`${r.workspace!.path}/a.txt`), "hi\n");
 * assert.equal(await fa.readText("/etc/passwd"), undefined); // outside the workspace: missing
 * await c.close();
 * await server.shutdown();
 * Deno.removeSync(workspaceRoot, { recursive: true });
 * ```
 */
export function remoteFiles(client: CcxClient, jobId: string, workspace: string): FileAccess {
  const cache = new Map<string, Promise<FilesResult | undefined>>();
  const read = (path: string): Promise<FilesResult | undefined> => {
    const rel = relative(workspace, resolve(workspace, path));
    if (rel.startsWith("..") || isAbsolute(rel)) return Promise.resolve(undefined);
    let p = cache.get(rel);
    if (!p) {
      // A refused path (a symlink out) is as good as missing for a criterion.
      p = client.files(jobId, rel === "" ? undefined : rel).catch((e) => {
        if (e instanceof ClientError && e.code === -32602) return undefined;
        throw e;
      });
      cache.set(rel, p);
    }
    return p;
  };
  return {
    async stat(path) {
      const r = await read(path);
      if (!r || !r.exists) return undefined;
      return r.type === "dir"
        ? { isFile: false, isDirectory: true, size: 0 }
        : { isFile: true, isDirectory: false, size: r.size };
    },
    async readText(path) {
      const r = await read(path);
      if (!r || !r.exists || r.type !== "file") return undefined;
      return r.encoding === "utf-8"
        ? r.content
        : new TextDecoder().decode(Uint8Array.fromBase64(r.content));
    },
  };
}

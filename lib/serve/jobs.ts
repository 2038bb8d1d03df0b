/**
 * A session's jobs: `execute` (its checks, the workspace, confinement, the start), each
 * job's output as `process.output` (and Claude's rate and token limits), its end as
 * `process.completed` and `process.exit`, `control` (PAUSE, RESUME, CANCEL), `jobs` and
 * `files`. The session ({@linkcode JobSession}) carries the messages; the server
 * ({@linkcode JobServer}) holds the limits, the workspaces, the journal and the observers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient, runToEnd } from "../client/client.ts";
 * import { CcxServer } from "./server.ts";
 * // A session's jobs are reached over the wire: execute, control, jobs, files.
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const client = await CcxClient.connect(server.url);
 * const r = await runToEnd(client, { argv: ["echo", "hi"] });
 * assert.deepEqual([r.status, r.stdout], ["completed", "hi\n"]);
 * await client.close();
 * await server.shutdown();
 * ```
 * @module
 */

import { join } from "node:path";
import {
  type ControlParams,
  ErrorCode,
  type ExecuteParams,
  type FilesParams,
  type JobResult,
  notification,
  RpcError,
} from "../common/protocol.ts";
import type { Logger } from "../common/log.ts";
import { detectClaudeLimits } from "../claude/limits.ts";
import {
  readWorkspace,
  type Workspace,
  WorkspaceError,
  type WorkspaceManager,
} from "./workspace.ts";
import { bwrapArgv, claudeCredentials, type IsolateMode, type IsolateNet } from "./isolate.ts";
import { type Job, StartError, startJob } from "./supervisor.ts";
import type { JobJournal } from "./journal.ts";
import { chownTree, type RunAsUser } from "./run_as.ts";
import { writeWorkspaceFiles } from "./workspace_files.ts";
import type { ObservedRecord, ObserverHub } from "./observer.ts";

/** One job of a session, from its `execute` until the session forgets it. */
export interface JobEntry {
  /** The job's id in its session (`job_id`). */
  id: string;
  /** The supervised process group. */
  job: Job;
  /** The shell command, or the argv as JSON. */
  command: string;
  /** The `execute` params `label` and `meta`, as given. */
  tag: Pick<ExecuteParams, "label" | "meta">;
  /** `lines` or `chunks` (the `execute` param `output_mode`). */
  outputMode: "lines" | "chunks";
  /** The start of this job's `process.output` JSON text, by stream, up to `"data":`. */
  heads: { stdout: string; stderr: string };
  /** The `seq` of the next `process.output`. */
  seq: number;
  /** The kinds of Claude limit already announced for this job (each is said once). */
  limitsSent: Set<string>;
  /** How the job ended, once it has. */
  result?: JobResult;
  /** Resolves once `process.completed` and `process.exit` have been sent. */
  sent?: Promise<void>;
  /** The job's workspace, if it has one. */
  ws?: Workspace;
  /** `ws` is another finished job's (`workspace.reuse`), not made for this one. */
  reused?: boolean;
  /** The job as the observer hub lists it. */
  observed?: ObservedRecord;
}

/** What a session's jobs need of the server. */
export interface JobServer {
  /** True once the server is shutting down: no job starts any more. */
  readonly closing: boolean;
  /** Running jobs allowed per session. */
  readonly maxJobsPerSession: number;
  /** `bwrap` when every job is confined. */
  readonly isolate: IsolateMode;
  /** Network of confined jobs. */
  readonly isolateNet: IsolateNet;
  /** The user jobs run as, or undefined for the server's own. */
  readonly runAs: RunAsUser | undefined;
  /** The job workspaces. */
  readonly workspaces: WorkspaceManager;
  /** Whole-run timeout in seconds for jobs that give none. */
  readonly defaultTimeoutS: number;
  /** Milliseconds between SIGTERM and SIGKILL. */
  readonly graceMs: number;
  /** Server variables jobs see. */
  readonly passEnv: readonly string[];
  /** The environment jobs' allow-list picks from (undefined: this process's own). */
  readonly serverEnv?: Readonly<Record<string, string>>;
  /** Largest output chunk, in bytes. */
  readonly maxChunkBytes: number;
  /** Largest file `files` returns whole, in bytes. */
  readonly filesMaxBytes: number;
  /** The crash journal of running job groups, if any. */
  readonly journal: JobJournal | undefined;
  /** Every job of every session as observers see it. */
  readonly observers: ObserverHub;
  /** Where job start and end lines go. */
  readonly log: Logger;
  /** A live session's job, for an observer's `files`. */
  sessionJob(sessionId: string, jobId: string): JobEntry | undefined;
  /** Told each time a job's `process.exit` has been sent. */
  jobEnded(): void;
}

/** What a session's jobs need of their session: its connection. */
export interface JobSession {
  /** The session's id. */
  readonly id: string;
  /** Who opened the session: the peer's `host:port`. */
  readonly remote: string;
  /** True once the session is closing (client gone): no job starts any more. */
  readonly closing: boolean;
  /** Sends a message (serialized here). */
  send(msg: unknown): void;
  /** Sends JSON text that is already serialized. */
  sendText(text: string): void;
  /** Sends `pre`, `text` as a JSON string, then `post` (one `process.output` message). */
  sendOutput(pre: string, text: string, post: string): void;
  /** Backpressure shared by the session's jobs: a promise while the client is behind. */
  readonly ready: () => Promise<void> | undefined;
  /** Starts the heartbeat, if it is not running (a job has started). */
  armHeartbeat(): void;
  /** Stops the heartbeat (no job runs any more). */
  stopHeartbeat(): void;
  /** Throws -32002 unless the session may observe every session's jobs. */
  mustObserve(what: string): void;
}

/**
 * What a method answers: its `result`, or the `error` it fails with, and `after`, what to
 * do once the answer has been sent (the notifications that must follow it, such as
 * `process.started` after `execute`'s result). The session's method table
 * (session.ts) sends the answer, then runs `after`. Not named `then`: an object with a
 * `then` method is a thenable, and a promise resolved with it would call it.
 */
export type Answer =
  | { result: unknown; after?: () => void }
  | { error: RpcError; after?: () => void };

/** Finished jobs a session keeps listed (for `jobs` and `files`), at most. */
const MAX_FINISHED_KEPT = 200;

/** The jobs of one session: what `execute`, `control`, `jobs` and `files` act on. */
export class SessionJobs {
  readonly #entries = new Map<string, JobEntry>();
  /** Job ids whose workspace template is being copied: the job starts once it is in. */
  readonly #starting = new Set<string>();
  #released = false;

  /** The jobs of `session`, started on `server`. */
  constructor(
    private readonly session: JobSession,
    private readonly server: JobServer,
  ) {}

  /** The job `jobId` of this session, if the session still lists it. */
  get(jobId: string): JobEntry | undefined {
    return this.#entries.get(jobId);
  }

  /** Jobs of this session that have not ended yet. */
  get running(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (!e.result) n++;
    return n;
  }

  /** Resolves once every job has sent its `process.completed` and `process.exit`. */
  settled(): Promise<unknown> {
    return Promise.all([...this.#entries.values()].map((e) => e.sent));
  }

  /** The `jobs` method's answer: every listed job of the session. */
  list(): { jobs: Record<string, unknown>[] } {
    return { jobs: [...this.#entries.values()].map(describeJob) };
  }

  /**
   * `execute`: checks the session's limit and the job id, makes the workspace (a template's
   * copy off the event loop, the answer then a promise) and starts the job.
   */
  execute(p: ExecuteParams): Answer | Promise<Answer> {
    if (this.session.closing) throw new RpcError(ErrorCode.Internal, "session is closing");
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
    if (this.#entries.has(id) || this.#starting.has(id)) {
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
      tag: { label: p.label, meta: p.meta },
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
    const files = wsSpec?.files?.length ? wsSpec.files : undefined;
    if (wsSpec?.reuse !== undefined) {
      // The workspace of a finished job of this session (a check of `ccx stress`): once that
      // job's process.completed has gone, so its listing is taken before anything is written.
      const other = this.#reusable(wsSpec.reuse);
      entry.reused = true;
      return this.#startIn(entry, p, other.sent!.then(() => this.#reusable(wsSpec.reuse!).ws!));
    }
    if (template !== undefined) {
      // The copy runs off the event loop; the job starts, and execute answers, once it is in.
      return this.#startIn(
        entry,
        p,
        this.server.workspaces.createFromTemplate(id, {
          ...wsSpec,
          template,
        }),
      );
    }
    let ws: Workspace | undefined;
    if (wsSpec) {
      try {
        ws = this.server.workspaces.create(id, wsSpec);
      } catch (e) {
        throw workspaceRpcError(e, id);
      }
      if (files) return this.#startIn(entry, p, Promise.resolve(ws));
      entry.ws = ws;
      ws.users++;
    }
    return this.#start(entry, p, ws);
  }

  /**
   * Starts the job of `execute` in the workspace `made` resolves with (a template's copy, a
   * finished job's workspace), once `workspace.files` are written into it; execute answers
   * then. Meanwhile the job id is taken and the workspace is not removed.
   */
  async #startIn(entry: JobEntry, p: ExecuteParams, made: Promise<Workspace>): Promise<Answer> {
    const id = entry.id;
    const spaces = this.server.workspaces;
    this.#starting.add(id);
    let ws: Workspace | undefined;
    try {
      ws = await made;
      entry.ws = ws;
      ws.users++;
      if (this.session.closing || this.server.closing) {
        throw new RpcError(ErrorCode.Internal, "session is closing");
      }
      const files = p.workspace?.files;
      if (files?.length) await writeWorkspaceFiles(ws.path, files);
      if (this.session.closing || this.server.closing) {
        throw new RpcError(ErrorCode.Internal, "session is closing");
      }
    } catch (e) {
      if (ws) {
        ws.users--;
        if (!entry.reused || this.#released) spaces.release(ws);
      }
      throw workspaceRpcError(e, id);
    } finally {
      this.#starting.delete(id);
    }
    return this.#start(entry, p, ws);
  }

  /**
   * Starts the job of `execute` (its workspace, if any, made) and registers it; `after`
   * sends `process.started` (or, when it could not start, `process.error`).
   */
  #start(entry: JobEntry, p: ExecuteParams, ws: Workspace | undefined): Answer {
    const id = entry.id;
    const isolated = this.server.isolate === "bwrap";
    const runAs = this.server.runAs;
    let job: Job;
    try {
      const argv = isolated
        ? confine(p.argv ?? ["/bin/sh", "-c", p.command!], ws!, this.server)
        : p.argv;
      // The job's user owns its workspace (after confine() has put the Claude login in it).
      if (ws && runAs) giveWorkspace(ws, runAs);
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
        serverEnv: this.server.serverEnv,
        maxChunkBytes: this.server.maxChunkBytes,
        outputMode: entry.outputMode,
      }, {
        output: (stream, text, raw) => this.#output(entry, stream, text, raw),
        ready: this.session.ready,
      });
    } catch (e) {
      if (ws) {
        ws.users--;
        if (!entry.reused || this.#released) this.server.workspaces.release(ws);
      }
      if (e instanceof StartError) {
        return {
          error: new RpcError(ErrorCode.InvalidParams, e.message, { field: e.field, job_id: id }),
          after: () =>
            this.session.send(notification("process.error", { job_id: id, message: e.message })),
        };
      }
      throw e;
    }
    entry.job = job;
    this.server.journal?.add(job.pgid, this.session.id, id);
    this.#entries.set(id, entry);
    entry.observed = this.server.observers.started({
      sessionId: this.session.id,
      remote: this.session.remote,
      jobId: id,
      command: entry.command,
      argv: p.argv,
      ...entry.tag,
      pid: job.pid,
      state: () => job.state,
      bytes: () => job.bytesRead,
      elapsed: () => job.elapsed,
      control: (type) => this.controlEntry(entry, type),
    });
    this.#trimFinished();
    const command = entry.command;
    const label = p.label === undefined ? "" : ` label=${JSON.stringify(p.label)}`;
    this.server.log(
      `job ${id} started pid=${job.pid} session=${this.session.id.slice(0, 8)}${label} ${command}`,
      {
        event: "job_started",
        job_id: id,
        pid: job.pid,
        pgid: job.pgid,
        session: this.session.id,
        command,
        ...entry.tag,
      },
    );
    const started: Record<string, unknown> = {
      job_id: id,
      status: "running",
      pid: job.pid,
      pgid: job.pgid,
      command,
    };
    if (ws) started.workspace = ws.path;
    entry.sent = job.done.then((r) => this.#completed(entry, r));
    this.session.armHeartbeat();
    return {
      result: { status: "started", job_id: id, pid: job.pid, pgid: job.pgid },
      after: () => this.session.send(notification("process.started", started)),
    };
  }

  #output(entry: JobEntry, stream: "stdout" | "stderr", text: string, raw?: Uint8Array): void {
    // {"jsonrpc":"2.0","method":"process.output","params":{job_id,type,data,seq[,data_base64]}},
    // written by hand: in lines mode this runs once per line, and building an object for
    // JSON.stringify to walk costs more than the rest of the message.
    const b64 = raw ? `,"data_base64":"${raw.toBase64()}"` : "";
    this.session.sendOutput(entry.heads[stream], text, `,"seq":${entry.seq++}${b64}}}`);
    if (entry.observed) this.server.observers.output(entry.observed, stream, text, entry.seq - 1);
    for (const limit of detectClaudeLimits(text)) {
      if (entry.limitsSent.has(limit.kind)) continue;
      entry.limitsSent.add(limit.kind);
      const method = limit.kind === "rate_limit"
        ? "error.rate_limit_exceeded"
        : "error.token_limit_exceeded";
      this.session.send(notification(method, {
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
        session: this.session.id,
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
    ws.users--;
    // The workspace is looked at off the event loop; completed follows once it has been.
    const spaces = this.server.workspaces;
    // A reused workspace already kept stays so (and is listed); one that was not is kept when
    // this job fails.
    const finished = entry.reused && ws.kept
      ? ws.changes().then((changes) => ({ kept: !ws.removed, changes }))
      : spaces.finish(ws, r.status);
    return finished.then(({ kept, changes }) => {
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
    this.session.send(notification("process.completed", params));
    // The seed's clients wait for process.exit {exitCode}; it always follows completed.
    this.session.send(notification("process.exit", {
      job_id: entry.id,
      exitCode: r.exitCode,
      exit_code: r.exitCode,
    }));
    if (entry.observed) this.server.observers.completed(entry.observed, r);
    if (this.running === 0) this.session.stopHeartbeat();
    this.server.jobEnded();
  }

  /** `control`: one of this session's jobs, or (observers) another session's. */
  control(p: ControlParams): Answer {
    if (p.session_id !== undefined && p.session_id !== this.session.id) {
      this.session.mustObserve("control of another session's job");
      return this.server.observers.find(p.session_id, p.job_id!).start.control(p.type);
    }
    return this.controlEntry(this.#findJob(p.job_id), p.type);
  }

  /** PAUSE, RESUME or CANCEL one of this session's jobs; `after` tells the owner. */
  controlEntry(
    entry: JobEntry,
    type: ControlParams["type"],
  ): { result: Record<string, unknown>; after: () => void } {
    const job = entry.job;
    if (entry.result || job.state === "ending") {
      throw new RpcError(ErrorCode.JobNotFound, `job ${entry.id} has already ended`, {
        job_id: entry.id,
      });
    }
    const id = entry.id;
    const hub = this.server.observers;
    // The seed's fields: the job's state after the action, and its process ids.
    const notify = (method: string, status: string) => () =>
      this.session.send(notification(method, { job_id: id, status, pid: job.pid, pgid: job.pgid }));
    if (type === "PAUSE") {
      job.pause();
      if (entry.observed) hub.event(entry.observed, "paused");
      return {
        result: { status: "paused", job_id: id },
        after: notify("process.paused", "paused"),
      };
    }
    if (type === "RESUME") {
      job.resume();
      if (entry.observed) hub.event(entry.observed, "resumed");
      return {
        result: { status: "resumed", job_id: id },
        after: notify("process.resumed", "running"),
      };
    }
    void job.cancel("canceled");
    if (entry.observed) hub.event(entry.observed, "canceled");
    return {
      result: { status: "canceled", job_id: id },
      after: notify("process.canceled", "canceled"),
    };
  }

  #findJob(jobId: string | undefined): JobEntry {
    if (jobId !== undefined) {
      const e = this.#entries.get(jobId);
      if (!e) {
        throw new RpcError(ErrorCode.JobNotFound, `no job ${jobId} in this session`, {
          job_id: jobId,
        });
      }
      return e;
    }
    const live = [...this.#entries.values()].filter((e) => !e.result);
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
    if (this.#entries.size <= MAX_FINISHED_KEPT) return;
    for (const [id, e] of this.#entries) {
      if (this.#entries.size <= MAX_FINISHED_KEPT) break;
      if (e.result) {
        this.#entries.delete(id);
        if (e.ws) this.server.workspaces.release(e.ws);
      }
    }
  }

  /**
   * The job `workspace.reuse` names: a finished job of this session whose workspace the
   * server still has. Throws the RpcError that says why not.
   */
  #reusable(jobId: string): JobEntry {
    const other = this.#entries.get(jobId);
    const field = "workspace.reuse";
    if (!other) {
      throw new RpcError(ErrorCode.JobNotFound, `${field}: no job ${jobId} in this session`, {
        field,
        job_id: jobId,
      });
    }
    if (!other.result) {
      throw new RpcError(ErrorCode.InvalidParams, `${field}: job ${jobId} is still running`, {
        field,
      });
    }
    if (!other.ws) {
      throw new RpcError(
        ErrorCode.InvalidParams,
        `${field}: job ${jobId} ran without a workspace (execute with "workspace": true)`,
        { field },
      );
    }
    if (other.ws.removed) {
      throw new RpcError(
        ErrorCode.JobNotFound,
        `${field}: the workspace of job ${jobId} was removed (keep policy or --workspace-max-mb)`,
        { field, job_id: jobId },
      );
    }
    return other;
  }

  /** `files`: reads the workspace of one of this session's jobs, or (observers) another's. */
  files(p: FilesParams): Promise<Answer> {
    let entry: JobEntry | undefined;
    if (p.session_id !== undefined && p.session_id !== this.session.id) {
      this.session.mustObserve("files of another session's job");
      entry = this.server.sessionJob(p.session_id, p.job_id);
    } else entry = this.#entries.get(p.job_id);
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
      (read) => ({ result: { job_id: p.job_id, workspace: ws.path, ...read } }),
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
    for (const e of this.#entries.values()) {
      if (e.result && e.ws) this.server.workspaces.release(e.ws);
    }
  }

  /** Cancels every running job of the session (client gone). */
  cancelAll(reason: "canceled"): Promise<unknown> {
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
    return [...this.#entries.values()].filter((e) => !e.result);
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
  if (e.tag.label !== undefined) d.label = e.tag.label;
  if (e.tag.meta !== undefined) d.meta = e.tag.meta;
  if (e.result) {
    d.status = e.result.status;
    d.exit_code = e.result.exitCode;
  }
  if (e.ws) d.workspace = e.ws.path;
  return d;
}

/** The bwrap command line confining `argv` to the workspace `ws`. */
function confine(argv: string[], ws: Workspace, server: JobServer): string[] {
  const creds = claudeCredentials();
  // Under --run-as the server's credentials file (mode 600) is unreadable to the job's
  // user: it gets its own copy, which giveWorkspace() then hands over.
  const copies = server.runAs ? [...creds.copies, ...creds.readOnly] : creds.copies;
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
    hide: [server.workspaces.root],
    net: server.isolateNet,
    readOnly: server.runAs ? [] : creds.readOnly,
    runAs: server.runAs,
  });
}

/** Hands a fresh workspace's `work` and `home` to the user jobs run as. */
function giveWorkspace(ws: Workspace, user: RunAsUser): void {
  for (const d of [ws.path, ws.home]) chownTree(d, user.uid, user.gid);
  // Under a umask of 077 the workspace's own directory would bar the way to them.
  const mode = Deno.statSync(ws.dir).mode ?? 0o755;
  if ((mode & 0o001) === 0) Deno.chmodSync(ws.dir, (mode & 0o7777) | 0o011);
}

/**
 * The settings of a ccx server: {@linkcode ServerOptions} as given, and
 * {@linkcode serverSettings}, which checks them and gives every one its default. Nothing
 * here opens a socket or starts a process; the checks that need the system (bubblewrap,
 * the `--run-as` user, the workspace root) are made when the server starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverSettings } from "./options.ts";
 * const s = serverSettings({ port: 0 });
 * assert.deepEqual([s.host, s.maxSessions], ["127.0.0.1", 64]);
 * ```
 * @module
 */

import { join } from "node:path";
import { MAX_TIMEOUT_S } from "../common/protocol.ts";
import { stateDir } from "../common/config.ts";
import { createLogger, type LogFormat, type Logger } from "../common/log.ts";
import type { HistoryStore } from "../claude/history.ts";
import { openHistory } from "../claude/history_store.ts";
import { DEFAULT_PASS_ENV, passEnvProblem } from "./job_env.ts";
import type { IsolateMode, IsolateNet } from "./isolate.ts";

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
  /**
   * Seconds a WebSocket peer may send nothing, not even the pong to the server's ping, before
   * it is dropped (close 1001, its jobs canceled); 0 turns the drop off (default 120). The
   * server pings after half of it without a frame from the peer: a client whose WebSocket
   * answers pings (every browser and library does) is never dropped, idle or not.
   */
  idleTimeoutS?: number;
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
   * The environment the job allow-list picks from, as if the server had been started with it
   * (default: this process's own). For a server embedded in another program, such as a test.
   */
  env?: Record<string, string>;
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

/**
 * {@linkcode ServerOptions} checked, with every default filled in and every unit the
 * server uses (milliseconds, bytes). The options without a default of the server's own
 * (`tls`, `runAs`, `maxConnections`, `onListen`, `keepFinished`, `keepFinishedS`) are
 * read from the options themselves.
 */
export interface ServerSettings {
  /** Address to bind. */
  host: string;
  /** Port to listen on (0: a free one). */
  port: number;
  /** The shared secret clients must present, or undefined for none (an empty one is none). */
  token: string | undefined;
  /** Browser origins allowed besides the server's own. */
  allowOrigins: string[];
  /** Concurrent WebSocket sessions. */
  maxSessions: number;
  /** Running jobs per session. */
  maxJobsPerSession: number;
  /** Milliseconds between SIGTERM and SIGKILL. */
  graceMs: number;
  /** Milliseconds clients have after the grace, at shutdown, to read the rest. */
  drainMs: number;
  /** Seconds of silence before a heartbeat; 0: none. */
  heartbeatS: number;
  /** Seconds a peer may send no frame (not even a pong) before it is dropped; 0: never. */
  idleTimeoutS: number;
  /** Largest accepted incoming message, in bytes. */
  maxMessageBytes: number;
  /** Whole-run timeout in seconds for jobs that give none. */
  defaultTimeoutS: number;
  /** Server variables jobs see: {@linkcode DEFAULT_PASS_ENV} plus `passEnv`. */
  passEnv: readonly string[];
  /** Seconds a client may leave its output unread above the high-water mark. */
  slowClientS: number;
  /** Socket queue in bytes at which a session's job pipes stop being read. */
  highWater: number;
  /** Socket queue in bytes at or below which reading resumes. */
  lowWater: number;
  /** Largest output chunk, in bytes. */
  maxChunkBytes: number;
  /** Where job workspaces are made. */
  workspaceRoot: string;
  /** Bound on the bytes of kept workspaces, if any. */
  workspaceMaxBytes: number | undefined;
  /** Directories workspace templates may come from. */
  templateRoots: string[];
  /** Largest file `files` returns whole, in bytes. */
  filesMaxBytes: number;
  /** `bwrap` when every job is confined. */
  isolate: IsolateMode;
  /** Network of confined jobs. */
  isolateNet: IsolateNet;
  /** Where operator log lines go. */
  log: Logger;
  /** Where warnings about the server's own safety go. */
  alert: Logger;
  /** Directory of the crash journal, or `false` for none. */
  journalDir: string | false;
  /** Milliseconds a connection has for its TLS handshake and request head. */
  requestTimeoutMs: number;
  /** Largest WebSocket message a client may start sending, in bytes. */
  maxFrameBytes: number;
  /** Opens the timeout history that the `history` method reports. */
  openHistory: () => Promise<HistoryStore>;
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
 * import assert from "node:assert/strict";
 * import { isLoopback } from "./options.ts";
 * assert.equal(isLoopback("127.0.0.1"), true);
 * assert.equal(isLoopback("[::1]"), true);
 * assert.equal(isLoopback("0.0.0.0"), false); // binding it needs a token
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Checks `opts` and fills in the defaults. Throws {@linkcode ServerConfigError} for a
 * server that would be unsafe (anything but loopback without a token), a `passEnv` that
 * names `CCX_*`, a default timeout over {@linkcode MAX_TIMEOUT_S}, or a negative idle
 * timeout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerConfigError, serverSettings } from "./options.ts";
 * // Refusing to listen on 0.0.0.0 without a token:
 * assert.throws(() => serverSettings({ host: "0.0.0.0" }), ServerConfigError);
 * ```
 */
export function serverSettings(opts: ServerOptions): ServerSettings {
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
  if ((opts.defaultTimeoutS ?? 0) > MAX_TIMEOUT_S) {
    throw new ServerConfigError(
      `--default-timeout: at most ${MAX_TIMEOUT_S} s (365 days), got ${opts.defaultTimeoutS}`,
    );
  }
  const idle = opts.idleTimeoutS;
  if (idle !== undefined && !(Number.isFinite(idle) && idle >= 0)) {
    throw new ServerConfigError(
      `--idle-timeout-s: want seconds, 0 or more (0 = never drop an idle peer), got ${idle}`,
    );
  }
  const maxMessageBytes = opts.maxMessageBytes ?? 4 * 1024 * 1024;
  const log = opts.log ?? createLogger(opts.logFormat);
  return {
    host,
    port: opts.port ?? 8004,
    token: opts.token || undefined,
    allowOrigins: opts.allowOrigins ?? [],
    maxSessions: opts.maxSessions ?? 64,
    maxJobsPerSession: opts.maxJobsPerSession ?? 32,
    graceMs: opts.graceMs ?? 2000,
    drainMs: (opts.drainS ?? 5) * 1000,
    heartbeatS: opts.heartbeatS ?? 20,
    idleTimeoutS: opts.idleTimeoutS ?? 120,
    maxMessageBytes,
    defaultTimeoutS: opts.defaultTimeoutS ?? 3600,
    passEnv: [...DEFAULT_PASS_ENV, ...opts.passEnv ?? []],
    slowClientS: opts.slowClientS ?? 60,
    highWater: opts.highWaterBytes ?? 4 * 1024 * 1024,
    lowWater: opts.lowWaterBytes ?? 1024 * 1024,
    maxChunkBytes: opts.maxChunkBytes ?? 256 * 1024,
    workspaceRoot: opts.workspaceRoot ?? join(stateDir(), "workspaces"),
    workspaceMaxBytes: opts.workspaceMaxMb === undefined
      ? undefined
      : Math.round(opts.workspaceMaxMb * 1024 * 1024),
    templateRoots: opts.templateRoots ?? [],
    filesMaxBytes: opts.filesMaxBytes ?? 1024 * 1024,
    isolate: opts.isolate ?? "none",
    isolateNet: opts.isolateNet ?? "host",
    log,
    alert: opts.alert ?? log,
    journalDir: opts.journalDir ?? join(stateDir(), "jobs"),
    requestTimeoutMs: (opts.requestTimeoutS ?? 10) * 1000,
    maxFrameBytes: opts.maxFrameBytes ??
      Math.min(64 << 20, Math.max(1 << 20, 4 * maxMessageBytes)),
    openHistory: opts.openHistory ?? (() => openHistory({})),
  };
}

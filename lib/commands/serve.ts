/**
 * `ccx serve`: run the server until SIGINT/SIGTERM, then end every job's group, send
 * every client the rest of its output and its jobs' completions, close with 1001, and exit
 * (within grace + drain; see `CcxServer.shutdown`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveCommand } from "./serve.ts";
 * // Serves until SIGINT/SIGTERM (`ccx serve`), so the doc tests only type-check it.
 * Deno.test({ name: "serveCommand (runs until a signal)", ignore: true }, async () => {
 *   assert.equal(await serveCommand({ port: 8004 }), 0);
 * });
 * ```
 * @module
 */

import { CcxServer } from "../serve/server.ts";
import { isLoopback, type ServerOptions } from "../serve/options.ts";
import { ConfigError, dotEnvOpenToOthers, readDotEnv, readPemFile } from "../common/config.ts";
import { type HeldSecret, heldSecrets, secretWarnings } from "../serve/job_env.ts";
import { type Command, defineCommand, onStopSignals } from "../common/cli.ts";
import { MAX_TIMEOUT_S } from "../common/protocol.ts";
import { createLogger, filterLogger } from "../common/log.ts";
import { resolve } from "node:path";

/** Reads `--cert`/`--key`; both or neither. */
function readTls(cert?: string, key?: string): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new ConfigError(`--cert and --key go together; ${cert ? "--key" : "--cert"} is missing`);
  }
  return { cert: readPemFile("cert", cert)!, key: readPemFile("key", key)! };
}

/** `--template-root` (or `CCX_TEMPLATE_ROOT`): directories that exist, made absolute. */
function templateRoots(dirs: string[]): string[] {
  return dirs.map((dir) => {
    let isDir = false;
    try {
      isDir = Deno.statSync(dir).isDirectory;
    } catch { /* reported below */ }
    if (!isDir) {
      throw new ConfigError(`--template-root (CCX_TEMPLATE_ROOT): no such directory: ${dir}`);
    }
    return resolve(dir);
  });
}

/**
 * The log events `--quiet` leaves out: one job's start and end, and a connection the gate dropped
 * before its request (deadline or eviction): the lines a busy server writes most, one per job or
 * connection (the drops are still counted in `/health`). Every line about the server itself stays (warnings such as a crash journal it cannot
 * write, a workspace it cannot remove, a client dropped at shutdown, and its start and shutdown).
 *
 * @example
 * ```ts
 * import { QUIET_EVENTS } from "./serve.ts";
 * QUIET_EVENTS.has("job_started"); // true
 * QUIET_EVENTS.has("journal_unwritable"); // false
 * ```
 */
export const QUIET_EVENTS: ReadonlySet<string> = new Set([
  "job_started",
  "job_ended",
  "connection_dropped",
]);

/** Options of {@linkcode serveCommand}: the server's, and `--quiet`. */
export interface ServeCommandOptions extends ServerOptions {
  /** Leave out the per-job and per-dropped-connection log lines ({@linkcode QUIET_EVENTS}); keep every other line. */
  quiet?: boolean;
}

/**
 * Starts the server, prints where it listens, and resolves with the exit code after a signal.
 * `secrets` are what this process holds (see `heldSecrets`): a warning says when jobs could
 * read them.
 */
export async function serveCommand(
  { quiet, ...opts }: ServeCommandOptions,
  secrets: readonly HeldSecret[] = [],
): Promise<number> {
  const full = createLogger(opts.logFormat);
  const log = opts.log ??
    (quiet ? filterLogger(full, (_msg, f) => !QUIET_EVENTS.has(String(f.event))) : full);
  // Said even with --quiet: they are about the server, not a job.
  const alert = opts.alert ?? createLogger(opts.logFormat);
  let server: CcxServer;
  try {
    server = CcxServer.start({
      ...opts,
      log,
      alert,
      onListen: () => {},
    });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new ConfigError(
        `--port ${opts.port ?? 8004}: ${opts.host ?? "127.0.0.1"}:${
          opts.port ?? 8004
        } is already ` +
          "in use; stop what listens there or pick another port with --port (0 = any free port)",
      );
    }
    if (e instanceof Deno.errors.AddrNotAvailable) {
      throw new ConfigError(`--host ${opts.host}: not an address of this machine`);
    }
    throw e;
  }
  const stop = (signal: string) => {
    log(`${signal} received: shutting down`, { event: "shutdown", signal });
    void server.shutdown();
  };
  // Before the banner: whoever reads it may signal at once, and start-up work (removing what a
  // dead server left) runs on after it; a default-action SIGTERM would cut that short.
  const release = onStopSignals(stop);
  const auth = opts.token ? " (token required)" : "";
  if (!isLoopback(server.hostname) && !opts.tls) {
    // Said even with --quiet: it is about the server, not a job.
    createLogger(opts.logFormat)(
      `warning: listening on ${server.hostname} without TLS: the token and all traffic cross ` +
        `the network in clear. Add --cert FILE --key FILE (e.g. openssl req -x509 -newkey ` +
        `rsa:2048 -nodes -days 365 -subj /CN=$(hostname) -keyout key.pem -out cert.pem)`,
      { level: "warn", event: "no_tls" },
    );
  }
  const warnings = secretWarnings(secrets, {
    isolate: server.isolate,
    runAs: server.runAs?.name,
    dotEnvOpenToOthers: dotEnvOpenToOthers(Deno.cwd()),
  });
  for (const w of warnings) alert(w, { level: "warn", event: "secrets_within_reach" });
  console.log(
    `ccx serve listening on ${server.url} and /ws/mcp, health at ${server.httpUrl}/health${auth}`,
  );
  console.log(`web page at ${server.httpUrl}/`);
  await server.finished;
  release();
  return 0;
}

/** The `ccx serve` declaration: its options, help and how they become {@linkcode ServerOptions}. */
export const serve: Command = defineCommand({
  name: "serve",
  summary: "WebSocket JSON-RPC server that runs commands as supervised process groups",
  options: {
    host: {
      type: "string",
      env: "CCX_HOST",
      default: "127.0.0.1",
      arg: "H",
      help: "address to bind; non-loopback needs a token",
    },
    port: {
      type: "int",
      short: "p",
      env: "CCX_PORT",
      default: 8004,
      min: 0,
      max: 65535,
      arg: "P",
      help: "port; 0 = any free port",
    },
    token: {
      type: "string",
      env: "CCX_TOKEN",
      arg: "T",
      help: "require this token: Authorization: Bearer T, ?token=T, or the web page's field",
    },
    "allow-origin": {
      type: "list",
      env: "CCX_ALLOW_ORIGIN",
      arg: "O",
      help: "browser Origin allowed to connect",
    },
    "max-sessions": {
      type: "int",
      env: "CCX_MAX_SESSIONS",
      default: 64,
      min: 1,
      arg: "N",
      help: "concurrent connections",
    },
    "max-jobs-per-session": {
      type: "int",
      env: "CCX_MAX_JOBS_PER_SESSION",
      default: 32,
      min: 1,
      arg: "N",
      help: "running jobs per connection",
    },
    "grace-ms": {
      type: "int",
      env: "CCX_GRACE_MS",
      default: 2000,
      min: 0,
      arg: "N",
      help: "SIGTERM to SIGKILL grace in milliseconds",
    },
    "drain-s": {
      type: "number",
      env: "CCX_DRAIN_S",
      default: 5,
      min: 0,
      max: 3600,
      arg: "S",
      help: "at shutdown, seconds after the grace for clients to read the rest, then dropped",
    },
    "heartbeat-s": {
      type: "number",
      env: "CCX_HEARTBEAT_S",
      default: 20,
      min: 0,
      arg: "N",
      help: "heartbeat after N quiet seconds, only to sessions running jobs; 0 = off",
    },
    "idle-timeout-s": {
      type: "number",
      env: "CCX_IDLE_TIMEOUT_S",
      default: 120,
      min: 0,
      arg: "S",
      help: "drop a WebSocket peer silent for S seconds, not even answering the ping sent " +
        "after S/2 (its jobs are canceled); 0 = never",
    },
    "max-message-bytes": {
      type: "int",
      env: "CCX_MAX_MESSAGE_BYTES",
      default: 4 * 1024 * 1024,
      min: 1024,
      arg: "N",
      help: "largest accepted message",
    },
    "default-timeout": {
      type: "number",
      env: "CCX_DEFAULT_TIMEOUT",
      default: 3600,
      min: 0.001,
      max: MAX_TIMEOUT_S,
      arg: "S",
      help: "timeout in seconds for jobs that give none (at most 365 days)",
    },
    "pass-env": {
      type: "list",
      env: "CCX_PASS_ENV",
      arg: "NAME[,NAME]",
      help: "more server variables jobs may see (NAME* = a prefix; CCX_* never)",
    },
    "workspace-root": {
      type: "string",
      env: "CCX_WORKSPACE_ROOT",
      defaultText: "<state dir>/workspaces",
      arg: "DIR",
      help: "where job workspaces are made",
    },
    "template-root": {
      type: "list",
      env: "CCX_TEMPLATE_ROOT",
      arg: "DIR",
      help: "clients may take workspace templates from DIR and below (none given: no templates)",
    },
    "workspace-max-mb": {
      type: "number",
      env: "CCX_WORKSPACE_MAX_MB",
      min: 0,
      arg: "N",
      help: "bound on kept workspaces in MiB, oldest removed first (default: none)",
    },
    isolate: {
      type: "string",
      env: "CCX_ISOLATE",
      choices: ["none", "bwrap"] as const,
      default: "none",
      arg: "MODE",
      help: "bwrap: every job runs in a workspace under bubblewrap",
    },
    "run-as": {
      type: "string",
      env: "CCX_RUN_AS",
      arg: "USER",
      help: "run jobs as this user (name or uid; the server runs as root), so they cannot " +
        "read its /proc entries and private files",
    },
    "isolate-net": {
      type: "string",
      env: "CCX_ISOLATE_NET",
      choices: ["host", "none"] as const,
      default: "host",
      arg: "NET",
      help: "network of confined jobs: the host's, or none (loopback only)",
    },
    cert: {
      type: "string",
      env: "CCX_CERT",
      arg: "FILE",
      help: "PEM certificate (chain): serve TLS only, wss:// and https:// (with --key)",
    },
    key: { type: "string", env: "CCX_KEY", arg: "FILE", help: "PEM private key of --cert" },
    "max-connections": {
      type: "int",
      env: "CCX_MAX_CONNECTIONS",
      min: 1,
      defaultText: "from the open-file limit",
      arg: "N",
      help: "open connections at once; past it the oldest still without a request goes, else 503",
    },
    "request-timeout-s": {
      type: "number",
      env: "CCX_REQUEST_TIMEOUT_S",
      default: 10,
      min: 0.01,
      arg: "S",
      help: "seconds a connection has for its TLS handshake and request (then 408, closed)",
    },
    "slow-client-s": {
      type: "number",
      env: "CCX_SLOW_CLIENT_S",
      default: 60,
      min: 0.01,
      arg: "S",
      help: "close a session whose client leaves output unread this long; its jobs are canceled",
    },
    "keep-finished": {
      type: "int",
      env: "CCX_KEEP_FINISHED",
      default: 100,
      min: 0,
      arg: "N",
      help: "finished jobs the web page and `watch` keep listing, at most",
    },
    "keep-finished-s": {
      type: "number",
      env: "CCX_KEEP_FINISHED_S",
      default: 1800,
      min: 0,
      arg: "S",
      help: "seconds a finished job stays listed for the web page and `watch`",
    },
    "log-format": {
      type: "string",
      env: "CCX_LOG_FORMAT",
      choices: ["text", "json"] as const,
      default: "text",
      arg: "F",
      help: "operator log on stderr: timestamped text lines, or one JSON object a line",
    },
    quiet: {
      type: "boolean",
      short: "q",
      help: "no per-job log lines (job started, job ended) on stderr; warnings stay",
    },
  },
  notes: ["Settings come from flags, then the environment, then ./.env."],
  run(o) {
    const secrets = heldSecrets({
      token: o.token,
      args: Deno.args,
      env: Deno.env.toObject(),
      dotEnv: readDotEnv(Deno.cwd()),
    });
    return serveCommand({
      host: o.host,
      port: o.port,
      token: o.token,
      allowOrigins: o["allow-origin"],
      maxSessions: o["max-sessions"],
      maxJobsPerSession: o["max-jobs-per-session"],
      graceMs: o["grace-ms"],
      drainS: o["drain-s"],
      heartbeatS: o["heartbeat-s"],
      idleTimeoutS: o["idle-timeout-s"],
      maxMessageBytes: o["max-message-bytes"],
      defaultTimeoutS: o["default-timeout"],
      passEnv: o["pass-env"].flatMap((n) => n.split(",")).map((n) => n.trim()).filter(Boolean),
      workspaceRoot: o["workspace-root"],
      workspaceMaxMb: o["workspace-max-mb"],
      templateRoots: templateRoots(o["template-root"]),
      isolate: o.isolate,
      isolateNet: o["isolate-net"],
      runAs: o["run-as"],
      slowClientS: o["slow-client-s"],
      tls: readTls(o.cert, o.key),
      maxConnections: o["max-connections"],
      requestTimeoutS: o["request-timeout-s"],
      keepFinished: o["keep-finished"],
      keepFinishedS: o["keep-finished-s"],
      logFormat: o["log-format"],
      quiet: o.quiet,
    }, secrets);
  },
});

/**
 * The private server of one ccx process: `ccx stress` without `--server`, `ccx exec`, `ccx run`
 * without `--server`, and each `ccx worker` run their jobs through a ccx server of their own, in
 * the same process. It listens on loopback on a free port, and only its owner may use it: it
 * requires a random token that exists nowhere but in this process's memory (never in its
 * environment, command line or a file), so another local user cannot run commands through it
 * while a run lasts. It logs nothing about jobs; what is wrong with the server itself (a crash
 * journal it cannot write, a workspace it cannot remove, a client dropped at shutdown) is said
 * through `warn`.
 *
 * @example
 * ```ts
 * import { startLocalServer } from "./local.ts";
 * import { CcxClient } from "../client/client.ts";
 * const local = startLocalServer({ warn: (line) => console.error(`ccx stress: ${line}`) });
 * const client = await CcxClient.connect(local.url, { token: local.token });
 * await client.close();
 * await local.server.shutdown();
 * ```
 * @module
 */

import { CcxServer } from "./server.ts";
import type { ServerOptions } from "./options.ts";
import type { Logger } from "../common/log.ts";

/** Options of {@linkcode startLocalServer}: server settings, and where warnings go. */
export interface LocalServerOptions extends Partial<ServerOptions> {
  /**
   * Where the server's warnings go, one line each without a timestamp (default: stderr as
   * `ccx: LINE`): every `warn` or `error` line of its log, and every line about its crash
   * journal (cannot be written, written again, unreadable).
   */
  warn?: (line: string) => void;
}

/** A started private server, and the token its owner's clients present. */
export interface LocalServer {
  /** The server. */
  server: CcxServer;
  /** Its WebSocket URL (`ws://127.0.0.1:PORT/ws`). */
  url: string;
  /** The token it requires: 64 hex digits, random, held only in this process. */
  token: string;
}

/**
 * A fresh random token: 32 bytes from the system's secure generator, as 64 hex digits.
 *
 * @example
 * ```ts
 * import { randomToken } from "./local.ts";
 * randomToken(); // e.g. "9f86d081884c7d65…" (64 hex digits)
 * ```
 */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The log and alert sinks of a server that is quiet about jobs but says what is wrong with
 * itself: `log` passes on only `warn` and `error` lines, `alert` (the crash journal's lines)
 * passes on everything, both as bare messages to `warn`.
 *
 * @example
 * ```ts
 * import { warningsOnly } from "./local.ts";
 * const { log } = warningsOnly((line) => console.error(line));
 * log("job j1 started", { event: "job_started" }); // nothing
 * log("workspace … cannot be removed", { level: "warn" }); // printed
 * ```
 */
export function warningsOnly(warn: (line: string) => void): { log: Logger; alert: Logger } {
  return {
    log: (msg, fields) => {
      if (fields?.level === "warn" || fields?.level === "error") warn(msg);
    },
    alert: (msg) => warn(msg),
  };
}

/**
 * Starts a private server: loopback, a free port, a random token, roomy limits (1024 sessions,
 * 256 jobs a session), jobs with this process's environment less `CCX_*` (so never a queue
 * password or token), no job lines in the log. `opts` adds to or overrides these, e.g.
 * `workspaceRoot`, `templateRoots`, `runAs`. Throws as {@linkcode CcxServer.start} does.
 */
export function startLocalServer(opts: LocalServerOptions = {}): LocalServer {
  const { warn = (line: string) => console.error(`ccx: ${line}`), ...rest } = opts;
  const token = randomToken();
  const server = CcxServer.start({
    port: 0,
    ...warningsOnly(warn),
    passEnv: ["*"],
    maxJobsPerSession: 256,
    maxSessions: 1024,
    ...rest,
    host: "127.0.0.1",
    token,
  });
  return { server, url: server.url, token };
}

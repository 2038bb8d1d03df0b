/**
 * Checks made before a stress run starts anything, so that a run that cannot
 * work stops at once with one message naming the fix (and exit 3) instead of
 * failing every task: each server answers `/health` and accepts the token, and
 * the Claude CLI can be started on each server when a task needs it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { preflight, serverUrl } from "./preflight.ts";
 * assert.throws(() => serverUrl("localhost:8004"), /^ConfigError: --server: "localhost:8004" is not a ws:/);
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const servers = [{ url: serverUrl(server.url).href }];
 * assert.deepEqual(await preflight({ servers, claude: "claude", needClaude: false }), []);
 * const [problem] = await preflight({ servers, claude: "no-such-claude", needClaude: true });
 * assert.match(problem, /^Claude CLI not found: the server ws:.* could not start it/);
 * await server.shutdown();
 * ```
 * @module
 */

import { CcxClient, ClientError, runToEnd } from "../client/client.ts";
import { ConfigError } from "../common/config.ts";
import { claudeNotFound } from "../claude/argv.ts";

/**
 * Parses a `--server` value: a `ws://` or `wss://` URL. Anything else is a
 * {@linkcode ConfigError} naming `--server` (a usage error, exit 2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverUrl } from "./preflight.ts";
 * assert.equal(serverUrl("wss://box:8004/ws").port, "8004");
 * assert.throws(() => serverUrl("http://box:8004/ws"), /did you mean ws:\/\/box:8004\/ws\?/);
 * ```
 */
export function serverUrl(value: string, flag = "--server"): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(
      `${flag}: ${JSON.stringify(value)} is not a URL; expected ws://HOST:PORT/ws or wss://…`,
    );
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    const hint = u.protocol === "http:" || u.protocol === "https:"
      ? ` (did you mean ${value.replace(/^http/, "ws")}?)`
      : "";
    throw new ConfigError(
      `${flag}: ${JSON.stringify(value)} is not a ws:// or wss:// URL${hint}`,
    );
  }
  return u;
}

/** A server to check. */
export interface PreflightServer {
  /** WebSocket URL of the server. */
  url: string;
  /** Token it should accept. */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
}

/** What {@linkcode preflight} checks. */
export interface PreflightOptions {
  /** The servers the run will use. */
  servers: PreflightServer[];
  /** The Claude executable the tasks run. */
  claude: string;
  /** Whether any task starts the Claude CLI. */
  needClaude: boolean;
  /** Per-check time limit in milliseconds (default 10 000). */
  timeoutMs?: number;
}

function healthUrl(ws: URL): string {
  const u = new URL(ws);
  u.protocol = ws.protocol === "wss:" ? "https:" : "http:";
  u.pathname = "/health";
  u.search = "";
  return u.href;
}

async function checkServer(s: PreflightServer, timeoutMs: number): Promise<string | undefined> {
  const client = s.ca ? Deno.createHttpClient({ caCerts: [s.ca] }) : undefined;
  try {
    return await checkServerWith(s, timeoutMs, client);
  } finally {
    client?.close();
  }
}

async function checkServerWith(
  s: PreflightServer,
  timeoutMs: number,
  client: Deno.HttpClient | undefined,
): Promise<string | undefined> {
  const ws = new URL(s.url);
  const health = healthUrl(ws);
  try {
    const r = await fetch(health, { client, signal: AbortSignal.timeout(timeoutMs) });
    await r.body?.cancel();
    if (!r.ok) return `--server ${s.url}: ${health} answered HTTP ${r.status}; is it a ccx server?`;
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^error sending request[^:]*: /, "") : e;
    return `--server ${s.url}: no answer from ${health} (${why}); is \`ccx serve\` running there?`;
  }
  // The WebSocket endpoint answers 401 before the upgrade when the token is wrong.
  const http = new URL(health);
  http.pathname = ws.pathname;
  try {
    const r = await fetch(http, {
      client,
      headers: s.token ? { authorization: `Bearer ${s.token}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
    await r.body?.cancel();
    if (r.status === 401) {
      return s.token
        ? `--server ${s.url} refused the token: check --token or CCX_TOKEN`
        : `--server ${s.url} requires a token: pass --token or set CCX_TOKEN`;
    }
  } catch (e) {
    return `--server ${s.url}: ${e instanceof Error ? e.message : e}`;
  }
  return undefined;
}

async function checkClaude(
  s: PreflightServer,
  claude: string,
  timeoutMs: number,
): Promise<string | undefined> {
  let client: CcxClient | undefined;
  try {
    client = await CcxClient.connect(s.url, { token: s.token, ca: s.ca });
    const r = await runToEnd(client, {
      argv: [claude, "--version"],
      timeout: timeoutMs / 1000,
      label: "pre-flight: claude --version",
    });
    if (r.exitCode === 126 || r.exitCode === 127) {
      return claudeNotFound(claude, `the server ${s.url} could not start it (exit ${r.exitCode})`)
        .message;
    }
    return undefined;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof ClientError && /program not found|permission denied/i.test(msg)) {
      return claudeNotFound(claude, `the server ${s.url} could not start it (${msg})`).message;
    }
    return `--server ${s.url}: ${msg}`;
  } finally {
    await client?.close();
  }
}

/**
 * Runs every check, servers in parallel; resolves with one message per
 * problem (empty when the run can start).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { preflight } from "./preflight.ts";
 * const problems = await preflight({ servers: [{ url: "ws://127.0.0.1:1/ws" }], claude: "claude", needClaude: false });
 * assert.equal(problems.length, 1);
 * assert.match(problems[0], /^--server ws:\/\/127\.0\.0\.1:1\/ws: no answer from http:\/\/127\.0\.0\.1:1\/health/);
 * ```
 */
export async function preflight(opts: PreflightOptions): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const per = await Promise.all(opts.servers.map(async (s) => {
    const bad = await checkServer(s, timeoutMs);
    if (bad) return [bad];
    if (!opts.needClaude) return [];
    const claude = await checkClaude(s, opts.claude, timeoutMs);
    return claude ? [claude] : [];
  }));
  // The same Claude problem on every server is one problem.
  return [...new Set(per.flat())];
}

/**
 * A connection error said plainly: a 401 names `--token`/`CCX_TOKEN` (and says
 * the token was refused when the client says it sent one), a refused
 * connection names `--server`; anything else is returned as it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { explainConnectError } from "./preflight.ts";
 * assert.equal(
 *   explainConnectError("could not connect to ws://h/ws: … Invalid status code: 401", "ws://h/ws"),
 *   "ws://h/ws refused the connection: a valid token is required (--token or CCX_TOKEN)",
 * );
 * ```
 */
export function explainConnectError(message: string, url: string): string {
  if (/status code:? 401\b/i.test(message)) {
    if (/refused the token/.test(message)) {
      return `${url} refused the token: check --token or CCX_TOKEN`;
    }
    return `${url} refused the connection: a valid token is required (--token or CCX_TOKEN)`;
  }
  if (/tcp connect error|connection refused|dns error|failed to lookup/i.test(message)) {
    return `no ccx server answers at ${url} (check --server; is \`ccx serve\` running?)`;
  }
  return message;
}

/** What {@linkcode rootStop} looks at. */
export interface RootStopInput {
  /** Whether the CLI will run as root (ccx's own user, on the in-process server). */
  isRoot: boolean;
  /** `--sandbox`, `CCX_SANDBOX=1` or `IS_SANDBOX=1`: the CLI gets `IS_SANDBOX=1`. */
  sandbox: boolean;
  /** The commands of the Claude tasks about to run (`display`, `command` or `argv` is read). */
  commands: { display: string; command?: string; argv?: string[] }[];
}

/** A command that asks the CLI to skip permissions and does not set `IS_SANDBOX=1` itself. */
function skipsPermissions(c: RootStopInput["commands"][number]): boolean {
  const text = c.argv ? c.argv.join(" ") : (c.command ?? c.display);
  return /--dangerously-skip-permissions\b|--permission-mode[= ]+["']?bypassPermissions/.test(
    text,
  ) &&
    !/\bIS_SANDBOX=1\b/.test(text);
}

/**
 * The root pre-flight of a run: Claude Code refuses `--dangerously-skip-permissions` (and
 * `--permission-mode bypassPermissions`) as root unless `IS_SANDBOX=1`, so when the tasks will
 * run as root without `--sandbox` and any of them skips permissions, every such task would end
 * `root_refused`. Returns the one message to stop with, naming the fix, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rootStop } from "./preflight.ts";
 * const commands = [{ display: "claude -p hi --dangerously-skip-permissions" }];
 * assert.match(rootStop({ isRoot: true, sandbox: false, commands })!, /^running as root, and 1 Claude task/);
 * assert.equal(rootStop({ isRoot: true, sandbox: true, commands }), undefined);
 * ```
 */
export function rootStop(o: RootStopInput): string | undefined {
  if (!o.isRoot || o.sandbox) return undefined;
  const n = o.commands.filter(skipsPermissions).length;
  if (n === 0) return undefined;
  return `running as root, and ${n} Claude task${n === 1 ? "" : "s"} pass${n === 1 ? "es" : ""} ` +
    "--dangerously-skip-permissions, which Claude Code refuses as root unless IS_SANDBOX=1. " +
    "Fix: on a sandbox box (one you would reimage), pass --sandbox (or set CCX_SANDBOX=1); " +
    "else run ccx as a non-root user";
}

/**
 * The server's HTTP side, behind the connection gate: `GET /health`, the web page at `/`,
 * and the WebSocket upgrade of `/ws` (and `/ws/mcp`) once the request passes the Origin
 * allow-list and the token check. Who may observe every session's jobs is decided here
 * too. What becomes of an upgraded socket is the server's ({@linkcode RouteHost.upgraded}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { route } from "./routes.ts";
 * const res = route(new Request("http://127.0.0.1:8004/nowhere"), {
 *   token: undefined,
 *   origins: new Set(),
 *   idleTimeoutS: 120,
 *   closing: () => false,
 *   health: () => { throw new Error("not asked"); },
 *   upgraded: () => {},
 * });
 * assert.equal(res.status, 404);
 * ```
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { GATE_CONN_HEADER, gatePeer, type GateStats } from "./gate.ts";
import { upgradeWebSocket } from "./gate_socket.ts";
import { isLoopback } from "./options.ts";
import { page } from "./web/page.ts";

/** What `GET /health` answers: the server's counts and the connection gate's counters. */
export interface Health extends GateStats {
  /** `ok`, or `shutting_down` once the server's shutdown has begun. */
  status: "ok" | "shutting_down";
  /** The server's version (`VERSION` of common/protocol.ts). */
  version: string;
  /** WebSocket sessions connected now. */
  active_sessions: number;
  /** The session limit (`maxSessions` of the server's options). */
  max_sessions: number;
  /** Jobs running now, across sessions. */
  running_jobs: number;
  /** Whole seconds since the server started (rounded). */
  uptime_seconds: number;
}

/** Who is at the other end of an upgraded WebSocket, as the routes found out. */
export interface UpgradePeer {
  /** The peer's address as `host:port` (`[v6]:port`), from the gate. */
  remote: string;
  /**
   * May observe every session's jobs (`watch`, `history`, another session's `control` and
   * `files`): with a token, whoever presented it; without one, only loopback peers.
   */
  mayObserve: boolean;
  /** The gate's name for the connection (to close it at once), if the gate gave one. */
  connId: string | null;
  /**
   * What the handshake asked for, never a secret (for the `session_open` log line): the path,
   * the names of its query parameters, the offered subprotocols (a token one shown by its
   * prefix) and how the token came.
   */
  handshake: {
    path: string;
    query_keys: string[];
    subprotocols: string[];
    token_via: "bearer" | "subprotocol" | "query" | "none";
  };
}

/** What the routes need of the server. */
export interface RouteHost {
  /** The token clients must present, or undefined when none is needed. */
  readonly token: string | undefined;
  /** Browser origins that may open a WebSocket (see {@linkcode allowedOrigins}). */
  readonly origins: ReadonlySet<string>;
  /**
   * Seconds an upgraded WebSocket may receive no frame before Deno pings it (after half of
   * it) and then drops it, unanswered, with {@linkcode IDLE_DROP_REASON}; 0: never.
   */
  readonly idleTimeoutS: number;
  /** True once shutdown has begun: upgrades are then answered 503. */
  closing(): boolean;
  /** The `/health` document. */
  health(): Health;
  /** Makes an accepted WebSocket a session (or refuses it over the session limit). */
  upgraded(socket: WebSocket, peer: UpgradePeer): void;
}

/**
 * The close reason of a WebSocket that Deno dropped (code 1001) because the peer sent no frame
 * for `idleTimeout` seconds: Deno pings after half of it, and drops the peer when nothing, not
 * even the pong, has come after the other half.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IDLE_DROP_REASON } from "./routes.ts";
 * const closed = new CloseEvent("close", { code: 1001, reason: IDLE_DROP_REASON });
 * assert.equal(closed.reason === IDLE_DROP_REASON, true); // the server logs session_idle_drop
 * ```
 */
export const IDLE_DROP_REASON = "No response from ping frame.";

function digest(s: string): Uint8Array {
  return createHash("sha256").update(s).digest();
}

/**
 * Compares a presented token with the expected one in constant time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenMatches } from "./routes.ts";
 * assert.equal(tokenMatches("s3cret", "s3cret"), true);
 * assert.equal(tokenMatches("guess", "s3cret"), false);
 * assert.equal(tokenMatches(null, "s3cret"), false); // no token presented
 * ```
 */
export function tokenMatches(presented: string | null, expected: string): boolean {
  // Hashing first makes the comparison length-independent as well.
  const ok = timingSafeEqual(digest(presented ?? ""), digest(expected));
  return ok && presented !== null;
}

/**
 * The origins allowed to open a WebSocket: `allow` (`--allow-origin`) and the server's own
 * (its host name, `localhost`, `127.0.0.1` and `[::1]` on its port, `https` with TLS).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allowedOrigins } from "./routes.ts";
 * const origins = allowedOrigins([], { tls: false, hostname: "127.0.0.1", port: 8004 });
 * assert.equal(origins.has("http://localhost:8004"), true); // the server's own page
 * assert.equal(origins.has("https://evil.example"), false);
 * ```
 */
export function allowedOrigins(
  allow: readonly string[],
  server: { tls: boolean; hostname: string; port: number },
): Set<string> {
  const origins = new Set(allow);
  for (const h of [server.hostname, "localhost", "127.0.0.1", "[::1]"]) {
    origins.add(`${server.tls ? "https" : "http"}://${h}:${server.port}`);
  }
  return origins;
}

/** The WebSocket subprotocol a browser offers to carry the token (see README, Security). */
const SUBPROTOCOL = "ccx";
const TOKEN_PREFIX = "ccx.token.";

function offeredSubprotocols(req: Request): string[] {
  const h = req.headers.get("sec-websocket-protocol");
  return h ? h.split(",").map((p) => p.trim()).filter((p) => p !== "") : [];
}

/**
 * How a request presented its token (`bearer` header, `subprotocol`, `query` parameter), or
 * `none`; for the session log, which never holds the token itself.
 */
function tokenVia(req: Request, url: URL): "bearer" | "subprotocol" | "query" | "none" {
  if (/^Bearer\s+\S/i.test(req.headers.get("authorization") ?? "")) return "bearer";
  if (offeredSubprotocols(req).some((p) => p.startsWith(TOKEN_PREFIX))) return "subprotocol";
  return url.searchParams.has("token") ? "query" : "none";
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

function authorized(req: Request, url: URL, token: string | undefined): boolean {
  if (!token) return true;
  const auth = req.headers.get("authorization");
  const bearer = auth?.match(/^Bearer\s+(.+)$/i)?.[1] ?? null;
  const presented = bearer ?? subprotocolToken(req) ?? url.searchParams.get("token");
  return tokenMatches(presented, token);
}

/**
 * Answers one HTTP request: `/health`, the page, or the upgrade of `/ws` (Origin
 * allow-list, then the token, then the upgrade itself; 503 once the server is closing).
 * An upgraded socket is handed to {@linkcode RouteHost.upgraded}.
 */
export function route(req: Request, host: RouteHost): Response {
  const url = new URL(req.url);
  if (url.pathname === "/health" && (req.method === "GET" || req.method === "HEAD")) {
    return Response.json(host.health());
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
  if (origin !== null && !host.origins.has(origin)) {
    return Response.json({ error: `origin ${origin} is not allowed (see --allow-origin)` }, {
      status: 403,
    });
  }
  if (!authorized(req, url, host.token)) {
    return Response.json(
      { error: "a valid token is required (Authorization: Bearer … or ?token=…)" },
      { status: 401, headers: { "www-authenticate": "Bearer" } },
    );
  }
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
  }
  if (host.closing()) return Response.json({ error: "shutting down" }, { status: 503 });
  // The gate names the connection and its real peer (Deno.serve sees only the Unix socket);
  // read both before the upgrade consumes the request.
  const connId = req.headers.get(GATE_CONN_HEADER);
  const peer = gatePeer(req);
  // A browser cannot set headers on a WebSocket: it offers `ccx` (and the token as
  // `ccx.token.<base64url>`), and the server must then answer with `ccx`.
  const offered = offeredSubprotocols(req);
  const offersCcx = offered.includes(SUBPROTOCOL);
  const handshake = {
    path: url.pathname,
    query_keys: [...url.searchParams.keys()],
    subprotocols: offered.map((p) => p.startsWith(TOKEN_PREFIX) ? `${TOKEN_PREFIX}…` : p),
    token_via: tokenVia(req, url),
  };
  // The gate's upgrade: it runs the socket on the client's connection, no relay (gate_socket.ts).
  const { socket, response: res } = upgradeWebSocket(req, {
    idleTimeout: host.idleTimeoutS,
    ...(offersCcx ? { protocol: SUBPROTOCOL } : {}),
  });
  const remote = `${
    peer.hostname.includes(":") ? `[${peer.hostname}]` : peer.hostname
  }:${peer.port}`;
  // Observing every session's jobs: with a token, whoever presented it; without one (the
  // server is then on loopback), only loopback peers.
  const mayObserve = host.token !== undefined || isLoopback(peer.hostname);
  host.upgraded(socket, { remote, mayObserve, connId, handshake });
  return res;
}

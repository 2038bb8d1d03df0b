/**
 * The connection gate in front of `ccx serve`'s HTTP server. `Deno.serve` owns
 * its accept loop and gives no hold on a connection before a whole request has
 * arrived, nor on a WebSocket frame before it is buffered whole, so the gate
 * accepts the TCP (or TLS) connections itself and relays them to the HTTP
 * server on a Unix socket, adding what an operator of a shared box needs:
 *
 * - a deadline for the TLS handshake and the request head (408, then closed);
 * - one request per connection: every connection that is not a completed
 *   WebSocket upgrade is closed after its response, and nothing a client sends
 *   after an upgrade request reaches the server unless it answered 101;
 * - a cap on open connections below the fd limit: a new connection takes the
 *   place of the oldest one still without a request, else gets 503 (logged
 *   once per episode); accept errors (EMFILE…) are retried, never fatal;
 * - WebSocket frames from clients checked as they stream: a message larger than
 *   the frame cap is closed with 1009 before its payload is read, and text that
 *   is not UTF-8 with 1007, instead of the connection being dropped;
 * - TLS (`cert`/`key`), so a token never crosses a network in clear;
 * - and, when the server's handler upgrades with {@linkcode upgradeWebSocket},
 *   the WebSocket itself, on the client's connection: no relay for the session.
 *
 * The parts: gate_relay.ts (one connection), gate_frames.ts (frame checks),
 * gate_socket.ts and gate_output.ts (the WebSocket the gate runs), gate_tls.ts.
 *
 * @example
 * ```ts
 * import { ConnectionGate } from "./gate.ts";
 * const inner = Deno.makeTempDirSync() + "/http.sock";
 * const http = Deno.serve({ path: inner, onListen() {} }, () => new Response("hi"));
 * const gate = ConnectionGate.listen({ hostname: "127.0.0.1", port: 0, upstreamPath: inner });
 * console.log(await (await fetch(`http://127.0.0.1:${gate.addr.port}/`)).text()); // "hi"
 * await gate.close();
 * await http.shutdown();
 * ```
 * @module
 */

import tls from "node:tls";
import type { Logger } from "../common/log.ts";
import type { Violation } from "./gate_frames.ts";
import {
  type DropReason,
  type DropRecord,
  GatedConn,
  type GateHost,
  httpResponse,
} from "./gate_relay.ts";
import { TlsRelayConn, tryClose, writeAll } from "./gate_tls.ts";

export { closeFrame, GATE_CONN_HEADER, GATE_PEER_HEADER } from "./gate_frames.ts";
export { gatePeer } from "./gate_relay.ts";
export { upgradeWebSocket } from "./gate_socket.ts";

/** Settings of a {@linkcode ConnectionGate}. */
export interface GateOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port (0 picks a free one). */
  port: number;
  /** The HTTP server's Unix socket the connections are relayed to. */
  upstreamPath: string;
  /** PEM certificate chain and key: the gate then speaks TLS (https/wss). */
  tls?: { cert: string; key: string };
  /** Connections open at once (default 1024). */
  maxConnections?: number;
  /** Milliseconds for the TLS handshake and the request head (default 10 s). */
  requestTimeoutMs?: number;
  /** Largest WebSocket message a client may start; larger ones are closed 1009 (default 16 MiB). */
  maxFrameBytes?: number;
  /**
   * Messages larger than this (the server's own message limit) are buffered by the
   * server only to be refused: together they may hold at most `largeBudgetBytes`
   * at once, past which they are closed 1009 too (default: no such check).
   */
  largeMessageBytes?: number;
  /** The budget shared by such large messages (default 2 × `maxFrameBytes`). */
  largeBudgetBytes?: number;
  /** Largest request head in bytes (default 16 KiB; larger: 431). */
  maxHeadBytes?: number;
  /** Log sink (default: none). */
  log?: Logger;
}

/** Counters of what the gate did, for `/health`. */
export interface GateStats {
  /** Connections open now. */
  open_connections: number;
  /** The cap on open connections. */
  max_connections: number;
  /** Connections refused with 503 because the cap was reached. */
  refused_connections: number;
  /** Connections closed for not completing a handshake or request in time, or evicted for a newer one. */
  dropped_connections: number;
  /** Failed accept calls (e.g. out of file descriptors); each was retried. */
  accept_errors: number;
  /** WebSocket connections closed 1009 (message too big) or 1007 (invalid UTF-8). */
  frame_violations: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Soft limit on open files of this process (`/proc/self/limits`), or undefined.
 *
 * @example
 * ```ts
 * import { openFileLimit } from "./gate.ts";
 * openFileLimit(); // e.g. 1024
 * ```
 */
export function openFileLimit(): number | undefined {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const m = text.match(/^Max open files\s+(\d+|unlimited)/m);
    if (!m || m[1] === "unlimited") return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * The default connection cap: each relayed connection holds three descriptors
 * (client, relay, HTTP server side); a quarter of the limit (at least 48, at
 * most 4096) is kept for jobs' pipes, files and the runtime.
 *
 * @example
 * ```ts
 * import { defaultMaxConnections } from "./gate.ts";
 * defaultMaxConnections(256); // 64
 * ```
 */
export function defaultMaxConnections(fdLimit = openFileLimit()): number {
  if (fdLimit === undefined) return 4096;
  const reserve = Math.min(4096, Math.max(48, Math.floor(fdLimit / 4)));
  return Math.max(8, Math.floor((fdLimit - reserve) / 3));
}

/** The gate: see the module documentation. Start one with {@linkcode ConnectionGate.listen}. */
export class ConnectionGate implements GateHost {
  /** Where the gate listens. */
  readonly addr: Deno.NetAddr;
  /** The HTTP server's Unix socket. */
  readonly upstreamPath: string;
  /** The TLS certificate and key, when the gate speaks TLS. */
  readonly tls: { cert: string; key: string } | undefined;
  /** The cap on open connections. */
  readonly maxConnections: number;
  /** Milliseconds for the handshake and request head. */
  readonly requestTimeoutMs: number;
  /** Largest message a client may start, in bytes. */
  readonly maxFrameBytes: number;
  /** Large messages in flight: those over `over` bytes share `left` bytes. @internal */
  readonly largeMessages: { over: number; left: number };
  /** Largest request head, in bytes. */
  readonly maxHeadBytes: number;
  /** Resolves when the accept loop has stopped. */
  readonly finished: Promise<void>;
  readonly #listener: Deno.TcpListener;
  readonly #tlsContext: tls.SecureContext | undefined;
  readonly #conns = new Map<string, GatedConn>();
  readonly #pending = new Set<GatedConn>();
  readonly #log: Logger;
  #closing = false;
  #refusing = false;
  #acceptFailing = false;
  #stats = { refused: 0, dropped: 0, acceptErrors: 0, violations: 0, refusedEpisode: 0 };

  private constructor(opts: GateOptions) {
    this.upstreamPath = opts.upstreamPath;
    this.tls = opts.tls;
    this.maxConnections = opts.maxConnections ?? 1024;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.maxFrameBytes = opts.maxFrameBytes ?? 16 * 1024 * 1024;
    this.largeMessages = {
      over: opts.largeMessageBytes ?? this.maxFrameBytes,
      left: opts.largeBudgetBytes ?? 2 * this.maxFrameBytes,
    };
    this.maxHeadBytes = opts.maxHeadBytes ?? 16 * 1024;
    this.#log = opts.log ?? (() => {});
    // Checked now, so a bad certificate or key stops the start with a clear error.
    this.#tlsContext = opts.tls ? tls.createSecureContext(opts.tls) : undefined;
    this.#listener = Deno.listen({ hostname: opts.hostname, port: opts.port });
    this.addr = this.#listener.addr as Deno.NetAddr;
    this.finished = this.#acceptLoop();
  }

  /** Starts listening (throws if the address cannot be bound or the certificate is bad). */
  static listen(opts: GateOptions): ConnectionGate {
    return new ConnectionGate(opts);
  }

  /** Counters for `/health`. */
  stats(): GateStats {
    return {
      open_connections: this.#conns.size,
      max_connections: this.maxConnections,
      refused_connections: this.#stats.refused,
      dropped_connections: this.#stats.dropped,
      accept_errors: this.#stats.acceptErrors,
      frame_violations: this.#stats.violations,
    };
  }

  /** Ends a connection at once, by the id the gate put in its request head. */
  abort(connId: string): void {
    this.#conns.get(connId)?.abort();
  }

  /**
   * Closes a WebSocket connection with `code` and `reason` from the gate itself
   * (at a frame boundary, the server's pending output cut), ending it within 2 s
   * even when the client reads nothing.
   */
  closeWith(connId: string, code: number, reason: string): void {
    this.#conns.get(connId)?.closeWith(code, reason);
  }

  async #acceptLoop(): Promise<void> {
    let backoff = 10;
    while (!this.#closing) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closing || e instanceof Deno.errors.BadResource) break;
        this.#stats.acceptErrors++;
        if (!this.#acceptFailing) {
          this.#acceptFailing = true;
          this.#log(`accept failed: ${(e as Error).message}; retrying`, {
            level: "error",
            event: "accept_failed",
          });
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 1000);
        continue;
      }
      backoff = 10;
      if (this.#acceptFailing) {
        this.#acceptFailing = false;
        this.#log("accepting connections again", { event: "accept_recovered" });
      }
      this.#admit(conn);
    }
  }

  #admit(conn: Deno.TcpConn): void {
    if (this.#conns.size >= this.maxConnections) {
      // Room is made by the oldest connection that has not even sent its request.
      const victim = this.#pending.values().next().value;
      if (victim) victim.dropNow("evicted");
      else return this.#refuse(conn);
    }
    if (this.#refusing && this.#conns.size < this.maxConnections * 0.9) {
      this.#log(
        `connections accepted again; ${this.#stats.refusedEpisode} were refused at the cap`,
        { event: "connections_recovered", refused: this.#stats.refusedEpisode },
      );
      this.#refusing = false;
      this.#stats.refusedEpisode = 0;
    }
    // Small frames go out at once: no Nagle delay (40 ms with delayed ACKs) on a request/answer.
    conn.setNoDelay(true);
    const relay = this.#tlsContext ? new TlsRelayConn(conn, this.#tlsContext) : conn;
    const c = new GatedConn(relay, this);
    this.#conns.set(c.id, c);
    this.#pending.add(c);
    void c.run();
  }

  #refuse(conn: Deno.TcpConn): void {
    this.#stats.refused++;
    this.#stats.refusedEpisode++;
    if (!this.#refusing) {
      this.#refusing = true;
      this.#log(
        `connection cap of ${this.maxConnections} reached: refusing new connections (503)`,
        { level: "warn", event: "connections_refused", max_connections: this.maxConnections },
      );
    }
    if (this.tls) return tryClose(conn);
    const body = JSON.stringify({ error: "too many connections", max: this.maxConnections });
    writeAll(conn, httpResponse(503, "Service Unavailable", body)).catch(() => {}).finally(() =>
      tryClose(conn)
    );
  }

  /** @internal */
  refusedBusy(): void {
    this.#stats.refused++;
  }

  /** @internal */
  headArrived(c: GatedConn): void {
    this.#pending.delete(c);
  }

  /** @internal */
  dropped(_why: DropReason, c: GatedConn): void {
    this.#pending.delete(c);
    this.#stats.dropped++;
  }

  /** @internal */
  violation(c: GatedConn, v: Violation): void {
    this.#stats.violations++;
    this.#log(`connection closed ${v.code}: ${v.reason}`, {
      level: "warn",
      event: "frame_rejected",
      close_code: v.code,
      conn: c.id,
    });
  }

  /** @internal */
  ended(c: GatedConn): void {
    this.#pending.delete(c);
    this.#conns.delete(c.id);
    if (c.drop) this.#logDrop(c, c.drop);
  }

  /**
   * One line per dropped connection, timed by the gate's own clock: from its
   * accept to its close (after the 408, if one was sent).
   */
  #logDrop(c: GatedConn, d: DropRecord): void {
    const lastedMs = Math.round(c.closedAt - c.since);
    const peer = c.conn.remoteAddr as Deno.NetAddr;
    const stage = d.inHandshake ? "TLS handshake" : "request head";
    const why = d.why === "timeout"
      ? `no ${stage} within --request-timeout-s (${this.requestTimeoutMs / 1000} s)`
      : `evicted for a newer connection at --max-connections (${this.maxConnections}), no ${stage} yet`;
    this.#log(
      `connection ${
        c.id.slice(0, 8)
      } from ${peer.hostname}:${peer.port} closed after ${lastedMs} ms` +
        `${d.status ? ` with ${d.status}` : ""}: ${why}`,
      {
        event: "connection_dropped",
        conn: c.id,
        reason: d.why === "timeout"
          ? `${d.inHandshake ? "tls_handshake" : "request"}_timeout`
          : "evicted",
        lasted_ms: lastedMs,
        status: d.status,
      },
    );
  }

  /** Stops accepting; with `abortAll`, also ends every open connection. */
  async close(abortAll = true): Promise<void> {
    this.#closing = true;
    tryClose(this.#listener);
    if (abortAll) { for (const c of this.#conns.values()) c.abort(); }
    await this.finished;
  }
}

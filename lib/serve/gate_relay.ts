/**
 * One connection through the connection gate (gate.ts): its request head read
 * under a deadline, rewritten (the gate's own headers in, clients' copies of them
 * out, `connection: close` unless the answer is a 101) and sent to the HTTP
 * server's Unix socket; then the bytes relayed both ways, a WebSocket client's
 * frames checked as they pass (see gate_frames.ts), and the connection ended when
 * either side is done, at the deadline, or by a violation (with a close frame).
 * When the server's handler upgrades with the gate's own `upgradeWebSocket`, the
 * connection is handed over instead: the gate answers 101 and the session runs
 * on it without a relay (gate_socket.ts).
 *
 * @example
 * ```ts
 * import { gatePeer } from "./gate_relay.ts";
 * gatePeer(new Request("http://x/")); // { hostname: "0.0.0.0", port: 0 }
 * ```
 * @module
 */

import {
  ClientFrames,
  closeFrame,
  concat,
  GATE_CONN_HEADER,
  GATE_PEER_HEADER,
  headEnd,
  latin1,
  ServerFrames,
  type Violation,
} from "./gate_frames.ts";
import { acceptKey, GateSocket, offerUpgrade, type UpgradeOptions } from "./gate_socket.ts";
import { type RelayConn, TlsRelayConn, tryClose, writeAll } from "./gate_tls.ts";

/**
 * The real peer of a request relayed by the gate (from {@linkcode GATE_PEER_HEADER});
 * `0.0.0.0:0` when absent.
 *
 * @example
 * ```ts
 * import { gatePeer } from "./gate.ts";
 * gatePeer(new Request("http://x/", { headers: { "x-ccx-gate-peer": "127.0.0.1 5000" } }));
 * // { hostname: "127.0.0.1", port: 5000 }
 * ```
 */
export function gatePeer(req: Request): { hostname: string; port: number } {
  const [hostname = "0.0.0.0", port = "0"] = (req.headers.get(GATE_PEER_HEADER) ?? "").split(" ");
  return { hostname: hostname || "0.0.0.0", port: Number(port) || 0 };
}

/** What a relayed connection needs of its gate (implemented by `ConnectionGate`). */
export interface GateHost {
  /** The TLS certificate and key, when the gate speaks TLS. */
  readonly tls: { cert: string; key: string } | undefined;
  /** Milliseconds for the handshake and request head. */
  readonly requestTimeoutMs: number;
  /** Largest request head, in bytes. */
  readonly maxHeadBytes: number;
  /** The cap on open connections. */
  readonly maxConnections: number;
  /** The HTTP server's Unix socket. */
  readonly upstreamPath: string;
  /** Largest message a client may start, in bytes. */
  readonly maxFrameBytes: number;
  /** Large messages in flight: those over `over` bytes share `left` bytes. */
  readonly largeMessages: { over: number; left: number };
  /** A connection's request head arrived. */
  headArrived(c: GatedConn): void;
  /** A connection is being dropped (deadline, or evicted for a newer one). */
  dropped(why: DropReason, c: GatedConn): void;
  /** The HTTP server could not be reached (503 sent). */
  refusedBusy(): void;
  /** A client's frames broke a rule. */
  violation(c: GatedConn, v: Violation): void;
  /** A connection is over. */
  ended(c: GatedConn): void;
}

/** Why the gate dropped a connection before its request: its deadline, or a newer connection. */
export type DropReason = "timeout" | "evicted";

/** How a dropped connection ended, for the gate's log line (see {@linkcode GatedConn.drop}). */
export interface DropRecord {
  /** Why it was dropped. */
  why: DropReason;
  /** True when it had not finished its TLS handshake (then no 408 can be sent). */
  inHandshake: boolean;
  /** The status sent before closing (408), or undefined when none could be. */
  status: number | undefined;
}

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A complete HTTP/1.1 response with a JSON body that closes the connection.
 *
 * @example
 * ```ts
 * import { httpResponse } from "./gate_relay.ts";
 * httpResponse(503, "Service Unavailable", "{}");
 * ```
 */
export function httpResponse(status: number, text: string, body: string): Uint8Array {
  return enc.encode(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\nconnection: close\r\n` +
      `content-length: ${enc.encode(body).length}\r\n\r\n${body}`,
  );
}

/** One relayed connection. */
export class GatedConn {
  /** The connection's id, given to the server in {@linkcode GATE_CONN_HEADER}. */
  readonly id: string = crypto.randomUUID();
  /** When it was accepted (`performance.now()`). */
  readonly since: number = performance.now();
  /** When it was closed (`performance.now()`), once it is; 0 before. */
  closedAt = 0;
  /** Set when the gate dropped it before its request head: why, and what it was sent. */
  drop: DropRecord | undefined;
  /** The 408 being written to a dropped connection, which is closed once it is out. */
  #dropping: Promise<void> | undefined;
  /** True until the request head has arrived. */
  pending = true;
  /** The connection to the HTTP server, once the head has arrived. */
  upstream: Deno.UnixConn | undefined;
  #ended = false;
  #violation: Violation | undefined;
  #frames: ClientFrames | undefined;
  #wake!: () => void;
  readonly #woken = new Promise<"wake">((r) => this.#wake = () => r("wake"));
  /**
   * Settles `#upgraded`: true once the server answered 101, "taken" once the gate's own
   * socket has (see gate_socket.ts), false on anything else.
   */
  #settleUpgrade!: (upgraded: boolean | "taken") => void;
  readonly #upgraded = new Promise<boolean | "taken">((r) => this.#settleUpgrade = r);
  /** The client's `Sec-WebSocket-Key`, for an upgrade request. */
  #key = "";
  /** The socket the server's handler took this connection over with, if it did. */
  #socket: GateSocket | undefined;
  #withdraw: (() => void) | undefined;

  /** A connection just accepted (`conn`), for `gate`; {@linkcode GatedConn.run} relays it. */
  constructor(readonly conn: RelayConn, private readonly gate: GateHost) {}

  /** Closes both sides at once. */
  abort(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.closedAt = performance.now();
    this.#settleUpgrade(false);
    this.#socket?.terminate();
    tryClose(this.conn);
    tryClose(this.upstream);
  }

  /** Reads the head, relays both ways, and ends the connection; never throws. */
  async run(): Promise<void> {
    const g = this.gate;
    const timer = setTimeout(() => this.dropNow("timeout"), g.requestTimeoutMs);
    try {
      if (this.conn instanceof TlsRelayConn) await this.conn.handshake();
      let buf: Uint8Array = new Uint8Array(0);
      let end = -1;
      while (end < 0) {
        const chunk = new Uint8Array(16 * 1024);
        const n = await this.conn.read(chunk);
        if (n === null) return this.abort();
        buf = concat(buf, chunk.subarray(0, n));
        end = headEnd(buf);
        if (end < 0 && buf.length > g.maxHeadBytes) {
          clearTimeout(timer);
          await writeAll(this.conn, httpResponse(431, "Request Header Fields Too Large", "{}"))
            .catch(() => {});
          return this.abort();
        }
      }
      clearTimeout(timer);
      // Dropped while the head's last bytes came in: its 408 goes out, nothing else.
      if (this.#dropping) return await this.#dropping;
      this.pending = false;
      g.headArrived(this);
      const { head, upgrade } = this.#rewrite(buf.subarray(0, end));
      try {
        this.upstream = await Deno.connect({ transport: "unix", path: g.upstreamPath });
      } catch (e) {
        // Out of descriptors for a moment (say, right after a flood): say so, and go.
        g.refusedBusy();
        const body = JSON.stringify({ error: `server busy: ${(e as Error).message}` });
        await writeAll(this.conn, httpResponse(503, "Service Unavailable", body)).catch(() => {});
        return this.abort();
      }
      if (this.#ended) return this.abort();
      if (upgrade) this.#withdraw = offerUpgrade(this.id, (opts) => this.#take(opts));
      await writeAll(this.upstream, head);
      const rest = buf.subarray(end);
      await Promise.all([this.#up(rest, upgrade), this.#down(upgrade)]);
    } catch {
      // A peer that went away, a deadline, a refused upstream: the connection just ends.
    } finally {
      clearTimeout(timer);
      this.#withdraw?.();
      this.abort();
      this.#frames?.release();
      g.ended(this);
    }
  }

  /** The server's handler upgrades this connection itself (gate_socket.ts): its socket. */
  #take(opts: UpgradeOptions): GateSocket {
    const frames = new ClientFrames(this.gate.maxFrameBytes, this.gate.largeMessages);
    this.#frames = frames;
    this.#socket = new GateSocket(this.conn, {
      check: (chunk) => {
        const v = frames.check(chunk);
        if (v) this.gate.violation(this, v);
        return v;
      },
      ended: () => this.abort(),
    }, opts);
    return this.#socket;
  }

  /**
   * The handler took the connection: the server's own answer is dropped, the
   * gate answers 101, and the socket runs on the client's connection.
   */
  async #handOver(socket: GateSocket): Promise<void> {
    tryClose(this.upstream);
    const protocol = socket.protocol ? `sec-websocket-protocol: ${socket.protocol}\r\n` : "";
    const head = `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n` +
      `connection: Upgrade\r\nsec-websocket-accept: ${acceptKey(this.#key)}\r\n${protocol}\r\n`;
    try {
      await writeAll(this.conn, latin1(head));
    } catch {
      return this.abort();
    }
    this.#settleUpgrade("taken");
  }

  /**
   * Drops a connection that has not sent its request head: at its deadline, or
   * evicted at the cap for a newer one. It gets a 408 with a JSON body saying
   * why, then is closed (one still in its TLS handshake is just closed: no
   * answer can reach it). Its {@linkcode GatedConn.drop} record and
   * {@linkcode GatedConn.closedAt} tell the gate's log line what happened.
   */
  dropNow(why: DropReason): void {
    if (!this.pending || this.#ended || this.drop) return;
    const inHandshake = this.conn instanceof TlsRelayConn && !this.conn.secured;
    this.drop = { why, inHandshake, status: inHandshake ? undefined : 408 };
    this.gate.dropped(why, this);
    if (inHandshake) return this.abort();
    const body = JSON.stringify(
      why === "timeout" ? { error: "request not received in time" } : {
        error: "evicted: the server is at its connection cap and this connection sent no request",
        max: this.gate.maxConnections,
      },
    );
    this.#dropping = writeAll(this.conn, httpResponse(408, "Request Timeout", body))
      .catch(() => {}).finally(() => this.abort());
  }

  /**
   * The head with our connection id added, clients' copies of it removed, and
   * `connection: close` added: the server ends the connection after one
   * response, unless that response is a 101 (an upgrade keeps its `Upgrade`
   * token and proceeds). A request that asks for an upgrade and gets an
   * ordinary answer (`GET /health` with `Upgrade: websocket`) would otherwise
   * keep its connection, with no deadline, outside the cap's eviction, and any
   * later request on it unchecked.
   */
  #rewrite(raw: Uint8Array): { head: Uint8Array; upgrade: boolean } {
    const text = new TextDecoder("latin1").decode(raw);
    const lines = text.split("\r\n").slice(0, -2);
    const upgrade = lines.some((l) => /^upgrade:\s*websocket\s*$/i.test(l));
    this.#key = lines.find((l) => /^sec-websocket-key:/i.test(l))?.slice(18).trim() ?? "";
    const keep = lines.filter((l, i) =>
      i === 0 || !(l.toLowerCase().startsWith("x-ccx-gate-") ||
        (!upgrade && /^connection:/i.test(l)))
    );
    const peer = this.conn.remoteAddr as Deno.NetAddr;
    keep.splice(1, 0, `${GATE_CONN_HEADER}: ${this.id}`);
    keep.splice(2, 0, `${GATE_PEER_HEADER}: ${peer.hostname} ${peer.port}`);
    keep.push("connection: close");
    return { head: latin1(keep.join("\r\n") + "\r\n\r\n"), upgrade };
  }

  /**
   * Client to server: frames checked as they pass. After an upgrade request
   * nothing more is read or forwarded until the server has answered (a client
   * must wait for the 101 anyway, RFC 6455 §4.1); on any other answer nothing
   * more ever is: no second request reaches the server on this connection.
   * What the client still sends is read and dropped while the answer goes out,
   * so that closing does not reset the connection under it. (The server never
   * waits for a body before answering an upgrade request.)
   */
  async #up(first: Uint8Array, upgrade: boolean): Promise<void> {
    const upgraded = upgrade ? await this.#upgraded : false;
    if (upgraded === "taken") return await this.#socket!.run(first);
    if (upgrade && !upgraded) {
      const drop = new Uint8Array(16 * 1024);
      while (!this.#ended && (await this.conn.read(drop)) !== null) { /* dropped */ }
      return;
    }
    const frames = upgrade
      ? new ClientFrames(this.gate.maxFrameBytes, this.gate.largeMessages)
      : undefined;
    this.#frames = frames;
    let chunk: Uint8Array | null = first;
    const buf = new Uint8Array(64 * 1024);
    while (!this.#ended) {
      if (chunk === null) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        chunk = buf.subarray(0, n);
      }
      if (chunk.length > 0) {
        const v = frames?.check(chunk);
        if (v) return this.#violate(v);
        await writeAll(this.upstream!, chunk);
      }
      chunk = null;
    }
    try {
      await this.upstream?.closeWrite(); // the client is done: let the server see it
    } catch { /* closed */ }
  }

  /**
   * Server to client. After a violation it stops at the next frame boundary,
   * sends the close frame, and lingers; otherwise it ends the connection when
   * the server does.
   */
  async #down(upgrade: boolean): Promise<void> {
    const frames = upgrade ? new ServerFrames() : undefined;
    const buf = new Uint8Array(64 * 1024);
    let reading: Promise<number | null> | undefined;
    let giveUp: Promise<"give_up"> | undefined;
    let answer = upgrade ? await this.#answerHead() : undefined;
    if (this.#socket) return await this.#handOver(this.#socket);
    while (!this.#ended && answer !== null) {
      if (this.#violation && (!frames || frames.raw || frames.atBoundary)) break;
      let chunk: Uint8Array;
      if (answer) {
        [chunk, answer] = [answer, undefined];
      } else {
        reading ??= this.upstream!.read(buf);
        if (this.#violation) giveUp ??= sleep(2000).then(() => "give_up" as const);
        const r = await Promise.race([reading, giveUp ?? this.#woken]);
        if (r === "give_up") return this.abort(); // no frame boundary came: just end it
        if (r === "wake") continue;
        reading = undefined;
        if (r === null) break;
        chunk = buf.subarray(0, r);
      }
      if (frames) chunk = chunk.subarray(0, frames.advance(chunk, this.#violation !== undefined));
      await writeAll(this.conn, chunk);
      if (frames?.answered) this.#settleUpgrade(!frames.raw);
    }
    this.#settleUpgrade(false);
    if (this.#violation && frames && !frames.raw) {
      await writeAll(this.conn, closeFrame(this.#violation.code, this.#violation.reason));
    }
    tryClose(this.upstream);
    if (this.#violation) await this.#linger();
    this.abort();
  }

  /**
   * The server's answer to an upgrade request up to the end of its head (with
   * whatever came along), or null when the server ended first. A 101 loses the
   * `connection: close` the server added because the gate asked it to close
   * after any other answer: some clients keep only the last `Connection`
   * header and would take it for a refusal.
   */
  async #answerHead(): Promise<Uint8Array | null> {
    let got: Uint8Array = new Uint8Array(0);
    const buf = new Uint8Array(16 * 1024);
    let end = -1;
    while (end < 0) {
      const n = await this.upstream!.read(buf);
      if (n === null) return got.length > 0 ? got : null;
      got = concat(got, buf.subarray(0, n));
      end = headEnd(got);
      if (end < 0 && got.length > 64 * 1024) return got; // not an answer we know: as it is
    }
    const head = new TextDecoder("latin1").decode(got.subarray(0, end));
    if (!/^HTTP\/1\.1 101 /.test(head)) return got;
    const lines = head.split("\r\n").filter((l) => !/^connection:\s*close\s*$/i.test(l));
    return concat(latin1(lines.join("\r\n")), got.subarray(end));
  }

  #violate(v: Violation): void {
    this.gate.violation(this, v);
    this.closeWith(v.code, v.reason);
  }

  /**
   * Ends the connection with a close frame sent at the next frame boundary (the
   * server's own stream is cut there); whatever happens, it is gone in 2 s.
   */
  closeWith(code: number, reason: string): void {
    if (this.#socket) return this.#socket.closeWith(code, reason);
    if (this.#violation || this.#ended) return;
    this.#violation = { code, reason };
    setTimeout(() => this.abort(), 2000);
    this.#wake();
  }

  /**
   * After our close frame: half-close, then read and discard what the client
   * still sends (the rest of a huge frame) for a moment, so the close frame is
   * not lost to a reset.
   */
  async #linger(): Promise<void> {
    try {
      await this.conn.closeWrite();
    } catch { /* closed */ }
    const buf = new Uint8Array(64 * 1024);
    const end = performance.now() + 2000;
    const stop = setTimeout(() => tryClose(this.conn), 2000);
    try {
      while (performance.now() < end && (await this.conn.read(buf)) !== null) { /* discard */ }
    } catch { /* closed */ }
    clearTimeout(stop);
  }
}

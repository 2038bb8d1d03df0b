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
 * - TLS (`cert`/`key`), so a token never crosses a network in clear.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConnectionGate } from "./gate.ts";
 * const dir = Deno.makeTempDirSync();
 * const inner = `${dir}/http.sock`;
 * const http = Deno.serve({ path: inner, onListen() {} }, () => new Response("hi"));
 * const gate = ConnectionGate.listen({ hostname: "127.0.0.1", port: 0, upstreamPath: inner });
 * assert.equal(await (await fetch(`http://127.0.0.1:${gate.addr.port}/`)).text(), "hi");
 * await gate.close();
 * await http.shutdown();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 * @module
 */

import { Duplex } from "node:stream";
import tls from "node:tls";
import type { Logger } from "../common/log.ts";

/** What the relay needs of a connection: a Deno TCP connection, or TLS over one. */
interface RelayConn {
  readonly remoteAddr: Deno.Addr;
  read(buf: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

/**
 * TLS over an accepted Deno TCP connection, by `node:tls`. `Deno.listenTls`
 * connections offer no `setNoDelay`, so Nagle's algorithm held small answers
 * back (~40 ms each); here the TCP connection underneath has `TCP_NODELAY`.
 */
class TlsRelayConn implements RelayConn {
  readonly remoteAddr: Deno.Addr;
  readonly #sock: tls.TLSSocket;
  readonly #raw: Deno.TcpConn;
  readonly #secure: Promise<void>;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #eof = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #writes = new Set<(e: Error) => void>();

  constructor(raw: Deno.TcpConn, context: tls.SecureContext) {
    this.#raw = raw;
    this.remoteAddr = raw.remoteAddr;
    // (The web stream types of lib.deno and @types/node differ only on paper.)
    const pair = { readable: raw.readable, writable: raw.writable } as unknown as Parameters<
      typeof Duplex.fromWeb
    >[0];
    const duplex = Duplex.fromWeb(pair);
    const sock = new tls.TLSSocket(duplex, { isServer: true, secureContext: context });
    this.#sock = sock;
    this.#secure = new Promise((resolve, reject) => {
      sock.once("secure", () => resolve());
      sock.once("error", reject);
      sock.once("close", () => reject(new Error("closed before the TLS handshake ended")));
    });
    this.#secure.catch(() => {});
    const wake = () => this.#wake?.();
    sock.on("data", (chunk: Uint8Array) => {
      this.#queue.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > 1 << 20) sock.pause(); // the relay reads slower than the peer sends
      wake();
    });
    const gone = (e?: Error) => {
      if (e) this.#error ??= e;
      this.#eof = true;
      for (const reject of this.#writes) reject(e ?? new Error("connection closed"));
      this.#writes.clear();
      wake();
    };
    sock.on("end", () => gone());
    sock.on("close", () => gone());
    sock.on("error", (e: Error) => gone(e));
  }

  /** Resolves once the TLS handshake is done. */
  handshake(): Promise<void> {
    return this.#secure;
  }

  async read(buf: Uint8Array): Promise<number | null> {
    while (this.#queue.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#eof) return null;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = undefined;
    }
    const head = this.#queue[0];
    const n = Math.min(head.length, buf.length);
    buf.set(head.subarray(0, n));
    if (n === head.length) this.#queue.shift();
    else this.#queue[0] = head.subarray(n);
    this.#queued -= n;
    if (this.#queued < 256 << 10 && this.#sock.isPaused()) this.#sock.resume();
    return n;
  }

  write(data: Uint8Array): Promise<number> {
    if (this.#eof) return Promise.reject(this.#error ?? new Error("connection closed"));
    const copy = data.slice();
    return new Promise((resolve, reject) => {
      this.#writes.add(reject);
      this.#sock.write(copy, (e?: Error | null) => {
        this.#writes.delete(reject);
        if (e) reject(e);
        else resolve(copy.length);
      });
    });
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#sock.end(() => resolve()));
  }

  close(): void {
    this.#sock.destroy();
    tryClose(this.#raw);
  }
}

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

/** A request header the gate adds (and strips from clients) to name the connection. */
export const GATE_CONN_HEADER = "x-ccx-gate-conn";

/** A request header the gate adds (and strips from clients): the peer's `hostname port`. */
export const GATE_PEER_HEADER = "x-ccx-gate-peer";

/**
 * The real peer of a request relayed by the gate (from {@linkcode GATE_PEER_HEADER});
 * `0.0.0.0:0` when absent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gatePeer } from "./gate.ts";
 * const req = new Request("http://x/", { headers: { "x-ccx-gate-peer": "127.0.0.1 5000" } });
 * assert.deepEqual(gatePeer(req), { hostname: "127.0.0.1", port: 5000 });
 * ```
 */
export function gatePeer(req: Request): { hostname: string; port: number } {
  const [hostname = "0.0.0.0", port = "0"] = (req.headers.get(GATE_PEER_HEADER) ?? "").split(" ");
  return { hostname: hostname || "0.0.0.0", port: Number(port) || 0 };
}

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function writeAll(conn: RelayConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function tryClose(c: { close(): void } | undefined): void {
  try {
    c?.close();
  } catch { /* already closed */ }
}

function httpResponse(status: number, text: string, body: string): Uint8Array {
  return enc.encode(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\nconnection: close\r\n` +
      `content-length: ${enc.encode(body).length}\r\n\r\n${body}`,
  );
}

/** A WebSocket close frame from the server (unmasked). */
export function closeFrame(code: number, reason: string): Uint8Array {
  const r = enc.encode(reason).subarray(0, 123);
  const f = new Uint8Array(4 + r.length);
  f[0] = 0x88;
  f[1] = 2 + r.length;
  f[2] = code >> 8;
  f[3] = code & 0xff;
  f.set(r, 4);
  return f;
}

/** Index just past the first `\r\n\r\n` in `b`, or -1. */
function headEnd(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** The bytes of a latin1 string (an HTTP head as the gate decoded it). */
function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A rule a client's frames broke: the close code and reason to send. */
interface Violation {
  code: number;
  reason: string;
}

/**
 * Follows a client's WebSocket frames as they stream (headers parsed, text
 * payloads unmasked and UTF-8-checked) without holding them.
 */
class ClientFrames {
  #hdr = new Uint8Array(14);
  #hdrLen = 0;
  #remaining = 0;
  #inPayload = false;
  #opcode = 0;
  #fin = false;
  #mask = new Uint8Array(4);
  #maskPos = 0;
  #msgBytes = 0;
  /** Set while the current data message is text. */
  #text: TextDecoder | undefined;
  /** Bytes of the current message taken from the shared budget for large messages. */
  #reserved = 0;

  /**
   * @param maxMessage Messages larger than this are closed 1009 at once.
   * @param large Messages larger than `large.over` are let through only while the
   *   budget shared by all connections (`large.left` bytes) lasts.
   */
  constructor(
    private readonly maxMessage: number,
    private readonly large: { over: number; left: number },
  ) {}

  /** Gives back what the current message took from the shared budget. */
  release(): void {
    this.large.left += this.#reserved;
    this.#reserved = 0;
  }

  /** Checks one chunk before it is forwarded; a violation means nothing more may be. */
  check(chunk: Uint8Array): Violation | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (!this.#inPayload) {
        this.#hdr[this.#hdrLen++] = chunk[i++];
        const v = this.#header();
        if (v) return v;
        continue;
      }
      const n = Math.min(this.#remaining, chunk.length - i);
      if (this.#opcode < 8 && this.#text) {
        const plain = new Uint8Array(n);
        const m = this.#mask;
        for (let k = 0; k < n; k++) plain[k] = chunk[i + k] ^ m[(this.#maskPos + k) & 3];
        this.#maskPos = (this.#maskPos + n) & 3;
        const v = this.#decode(plain, n === this.#remaining && this.#fin);
        if (v) return v;
      }
      i += n;
      this.#remaining -= n;
      if (this.#remaining === 0) this.#endFrame();
    }
    return undefined;
  }

  #decode(bytes: Uint8Array, last: boolean): Violation | undefined {
    try {
      this.#text!.decode(bytes, { stream: true });
      if (last) this.#text!.decode(); // an incomplete sequence at the end throws too
      return undefined;
    } catch {
      return { code: 1007, reason: "invalid UTF-8 in a text message" };
    }
  }

  #endFrame(): void {
    this.#inPayload = false;
    this.#hdrLen = 0;
    if (this.#opcode < 8 && this.#fin) {
      this.#msgBytes = 0;
      this.#text = undefined;
      this.release();
    }
  }

  /** Parses the header once it is complete. */
  #header(): Violation | undefined {
    const h = this.#hdr;
    if (this.#hdrLen < 2) return undefined;
    const len7 = h[1] & 0x7f;
    const masked = (h[1] & 0x80) !== 0;
    const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
    if (this.#hdrLen < need) return undefined;
    let len = len7;
    let at = 2;
    if (len7 === 126) {
      len = (h[2] << 8) | h[3];
      at = 4;
    } else if (len7 === 127) {
      len = 0;
      for (let k = 2; k < 10; k++) len = len * 256 + h[k];
      at = 10;
    }
    this.#mask.fill(0);
    if (masked) this.#mask.set(h.subarray(at, at + 4));
    this.#maskPos = 0;
    this.#fin = (h[0] & 0x80) !== 0;
    this.#opcode = h[0] & 0x0f;
    if (this.#opcode < 8) {
      this.#msgBytes = this.#opcode === 0 ? this.#msgBytes + len : len;
      if (this.#msgBytes > this.maxMessage) {
        return { code: 1009, reason: `message of ${this.#msgBytes} bytes is over the limit` };
      }
      if (this.#msgBytes > this.large.over) {
        // The server will buffer it whole (to answer -32004): only so many at once.
        if (this.large.left < len) {
          return {
            code: 1009,
            reason: `message of ${this.#msgBytes} bytes: too many large messages at once`,
          };
        }
        this.large.left -= len;
        this.#reserved += len;
      }
      if (this.#opcode === 1) this.#text = new TextDecoder("utf-8", { fatal: true });
      else if (this.#opcode === 2) this.#text = undefined;
    }
    this.#remaining = len;
    this.#inPayload = true;
    if (len === 0) {
      if (this.#opcode < 8 && this.#fin && this.#text) {
        const v = this.#decode(new Uint8Array(0), true);
        if (v) return v;
      }
      this.#endFrame();
    }
    return undefined;
  }
}

/** Follows the server's frames (after its HTTP response head) to find frame boundaries. */
class ServerFrames {
  #headDone = false;
  #headTail = new Uint8Array(0);
  #hdr = new Uint8Array(10);
  #hdrLen = 0;
  #remaining = 0;
  #inPayload = false;
  /** True once the response was something else than 101: no frames follow. */
  raw = false;

  /** True once the response head has been read (then `raw` tells whether it was a 101). */
  get answered(): boolean {
    return this.#headDone;
  }

  /** True when the stream is between two frames. */
  get atBoundary(): boolean {
    return this.#headDone && !this.raw && !this.#inPayload && this.#hdrLen === 0;
  }

  /**
   * Consumes bytes of `chunk`; with `stopAtBoundary`, stops at the first frame
   * boundary. Returns how many bytes were consumed.
   */
  advance(chunk: Uint8Array, stopAtBoundary: boolean): number {
    let i = 0;
    if (!this.#headDone) {
      const joined = concat(this.#headTail, chunk);
      const end = headEnd(joined);
      if (end < 0) {
        this.#headTail = joined.slice(-3);
        return chunk.length;
      }
      this.#headDone = true;
      const status = new TextDecoder().decode(joined.subarray(0, Math.min(joined.length, 16)));
      this.raw = !/^HTTP\/1\.1 101/.test(status);
      i = end - this.#headTail.length;
      this.#headTail = new Uint8Array(0);
      if (this.raw) return chunk.length;
    }
    if (this.raw) return chunk.length;
    while (i < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return i;
      if (!this.#inPayload) {
        this.#hdr[this.#hdrLen++] = chunk[i++];
        const h = this.#hdr;
        if (this.#hdrLen < 2) continue;
        const len7 = h[1] & 0x7f;
        const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
        if (this.#hdrLen < need) continue;
        let len = len7;
        if (len7 === 126) len = (h[2] << 8) | h[3];
        else if (len7 === 127) {
          len = 0;
          for (let k = 2; k < 10; k++) len = len * 256 + h[k];
        }
        this.#hdrLen = 0;
        this.#remaining = len;
        this.#inPayload = len > 0;
        continue;
      }
      const n = Math.min(this.#remaining, chunk.length - i);
      i += n;
      this.#remaining -= n;
      if (this.#remaining === 0) this.#inPayload = false;
    }
    return i;
  }
}

/** One relayed connection. */
class GatedConn {
  readonly id = crypto.randomUUID();
  readonly since = performance.now();
  /** True until the request head has arrived. */
  pending = true;
  upstream: Deno.UnixConn | undefined;
  #ended = false;
  #violation: Violation | undefined;
  #frames: ClientFrames | undefined;
  #wake!: () => void;
  readonly #woken = new Promise<"wake">((r) => this.#wake = () => r("wake"));
  /** Settles `#upgraded`: true once the server answered 101, false on anything else. */
  #settleUpgrade!: (upgraded: boolean) => void;
  readonly #upgraded = new Promise<boolean>((r) => this.#settleUpgrade = r);

  constructor(readonly conn: RelayConn, private readonly gate: ConnectionGate) {}

  /** Closes both sides at once. */
  abort(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#settleUpgrade(false);
    tryClose(this.conn);
    tryClose(this.upstream);
  }

  async run(): Promise<void> {
    const g = this.gate;
    const timer = setTimeout(() => this.#timeout(), g.requestTimeoutMs);
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
      await writeAll(this.upstream, head);
      const rest = buf.subarray(end);
      await Promise.all([this.#up(rest, upgrade), this.#down(upgrade)]);
    } catch {
      // A peer that went away, a deadline, a refused upstream: the connection just ends.
    } finally {
      clearTimeout(timer);
      this.abort();
      this.#frames?.release();
      g.ended(this);
    }
  }

  #timeout(): void {
    if (!this.pending || this.#ended) return;
    this.gate.dropped("timeout", this);
    const tls = this.gate.tls;
    if (tls) return this.abort();
    const body = JSON.stringify({ error: "request not received in time" });
    writeAll(this.conn, httpResponse(408, "Request Timeout", body)).catch(() => {}).finally(() =>
      this.abort()
    );
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
    if (upgrade && !(await this.#upgraded)) {
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

/**
 * Soft limit on open files of this process (`/proc/self/limits`), or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openFileLimit } from "./gate.ts";
 * const limit = openFileLimit(); // e.g. 1024; undefined when unlimited or without /proc
 * assert.ok(limit === undefined || limit > 0);
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
 * import assert from "node:assert/strict";
 * import { defaultMaxConnections } from "./gate.ts";
 * assert.equal(defaultMaxConnections(256), 64);
 * assert.equal(defaultMaxConnections(1024), 256); // 256 descriptors kept for jobs
 * ```
 */
export function defaultMaxConnections(fdLimit = openFileLimit()): number {
  if (fdLimit === undefined) return 4096;
  const reserve = Math.min(4096, Math.max(48, Math.floor(fdLimit / 4)));
  return Math.max(8, Math.floor((fdLimit - reserve) / 3));
}

/** The gate: see the module documentation. Start one with {@linkcode ConnectionGate.listen}. */
export class ConnectionGate {
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
      if (victim) {
        this.dropped("evicted", victim);
        victim.abort();
      } else return this.#refuse(conn);
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
  dropped(_why: "timeout" | "evicted", c: GatedConn): void {
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
  }

  /** Stops accepting; with `abortAll`, also ends every open connection. */
  async close(abortAll = true): Promise<void> {
    this.#closing = true;
    tryClose(this.#listener);
    if (abortAll) { for (const c of this.#conns.values()) c.abort(); }
    await this.finished;
  }
}

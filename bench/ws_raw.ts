/**
 * A minimal WebSocket client over a raw TCP socket, for benchmarks that need
 * to control how fast bytes are taken off the socket. A browser-style
 * `WebSocket` reads everything as fast as it arrives (and buffers it in the
 * client); this one reads at most `bytesPerSecond`, so the *server* sees a slow
 * reader: its socket fills and its backpressure has to work.
 *
 * Only what the benchmarks need: `ws://` on loopback, masked text frames out,
 * unmasked frames in (fragmented messages, ping/pong and close handled), and
 * only small messages decoded and parsed (large ones are counted, not kept).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../lib/serve/server.ts";
 * import { RawWsClient } from "./ws_raw.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const ws = await RawWsClient.connect(server.url);
 * await ws.sendText(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }));
 * const stats = await ws.readUntil({
 *   until: (m) => (m as { id?: number }).id === 1, // the ping's answer
 *   bytesPerSecond: 10e6, // a slow reader: the server sees its socket fill
 * });
 * assert.equal(stats.done, true);
 * assert.equal(stats.messages, 2); // `connected`, then the answer
 * ws.close();
 * await server.shutdown();
 * ```
 * @module
 */

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const enc = new TextEncoder();

/**
 * Options of {@linkcode RawWsClient.readUntil}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReadOptions } from "./ws_raw.ts";
 * let big = 0;
 * const opts: ReadOptions = { until: () => false, onMessage: (n) => void (big += n), chunkBytes: 256 * 1024 };
 * opts.onMessage!(5000);
 * assert.equal(big, 5000);
 * ```
 */
export interface ReadOptions {
  /** Called with every parsed small text message; reading stops when it returns true. */
  until: (message: unknown) => boolean;
  /** Called with the payload size of every complete data message (large ones included). */
  onMessage?: (payloadBytes: number) => void;
  /** Largest rate at which bytes are read off the socket (default: unthrottled). */
  bytesPerSecond?: number;
  /** Size of each socket read (default 256 KiB). */
  chunkBytes?: number;
  /** Messages up to this many payload bytes are decoded and JSON-parsed (default 4096). */
  parseLimit?: number;
  /** Stops reading when aborted (the result then has `done: false`). */
  signal?: AbortSignal;
}

/**
 * What {@linkcode RawWsClient.readUntil} saw.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReadStats } from "./ws_raw.ts";
 * const s: ReadStats = { wireBytes: 0, payloadBytes: 0, messages: 0, seconds: 0, done: true, closed: false };
 * assert.equal(s.done, true);
 * ```
 */
export interface ReadStats {
  /** Bytes read off the socket (frame headers included). */
  wireBytes: number;
  /** Payload bytes of data messages. */
  payloadBytes: number;
  /** Complete data messages. */
  messages: number;
  /** Time spent reading. */
  seconds: number;
  /** True when `until` matched. */
  done: boolean;
  /** True when the server closed the connection. */
  closed: boolean;
}

function mask(payload: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i] ^ key[i & 3];
  return out;
}

/** Encodes one client frame (always masked, as RFC 6455 requires of clients). */
function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const frame = new Uint8Array(2 + ext + 4 + n);
  frame[0] = 0x80 | opcode;
  if (ext === 0) frame[1] = 0x80 | n;
  else if (ext === 2) {
    frame[1] = 0x80 | 126;
    new DataView(frame.buffer).setUint16(2, n);
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(n));
  }
  const key = crypto.getRandomValues(new Uint8Array(4));
  frame.set(key, 2 + ext);
  frame.set(mask(payload, key), 2 + ext + 4);
  return frame;
}

async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", enc.encode(key + GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/**
 * A WebSocket connection on a plain `Deno.TcpConn`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../lib/serve/server.ts";
 * import { RawWsClient } from "./ws_raw.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const ws = await RawWsClient.connect(server.url); // the HTTP upgrade, on a plain TCP socket
 * const { messages } = await ws.readUntil({ until: (m) => (m as { method?: string }).method === "connected" });
 * assert.equal(messages, 1);
 * ws.close();
 * await server.shutdown();
 * ```
 */
export class RawWsClient {
  readonly #conn: Deno.TcpConn;
  /** Bytes read during the handshake that already belong to frames. */
  #leftover: Uint8Array;
  #closed = false;
  // Frame parser state, kept across readUntil calls.
  #hdr = new Uint8Array(14);
  #hdrLen = 0;
  #remaining = 0;
  #opcode = 0;
  #fin = false;
  #maskKey: Uint8Array | undefined;
  #frameData: Uint8Array[] | undefined;
  #msgOpcode = 0;
  #msgBytes = 0;
  #msgParts: Uint8Array[] | undefined;

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array) {
    this.#conn = conn;
    this.#leftover = leftover;
  }

  /**
   * Opens a TCP connection and performs the WebSocket handshake (the
   * `Sec-WebSocket-Accept` answer is verified).
   */
  static async connect(url: string, timeoutMs = 10000): Promise<RawWsClient> {
    const u = new URL(url);
    if (u.protocol !== "ws:") throw new Error(`only ws:// URLs: ${url}`);
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port || 80) });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const req = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`;
    await writeAll(conn, enc.encode(req));
    const timer = setTimeout(() => conn.close(), timeoutMs);
    try {
      let head = new Uint8Array(0);
      const buf = new Uint8Array(4096);
      while (true) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("connection closed during the WebSocket handshake");
        const next = new Uint8Array(head.length + n);
        next.set(head);
        next.set(buf.subarray(0, n), head.length);
        head = next;
        const end = findHeaderEnd(head);
        if (end < 0) continue;
        const text = new TextDecoder().decode(head.subarray(0, end));
        const status = text.split("\r\n")[0];
        if (!/^HTTP\/1\.1 101/.test(status)) throw new Error(`handshake refused: ${status}`);
        const accept = text.match(/^sec-websocket-accept:\s*(\S+)/im)?.[1];
        if (accept !== await acceptKey(key)) throw new Error("bad Sec-WebSocket-Accept");
        return new RawWsClient(conn, head.slice(end + 4));
      }
    } catch (e) {
      try {
        conn.close();
      } catch { /* closed by the timer */ }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one text message. */
  async sendText(text: string): Promise<void> {
    await writeAll(this.#conn, clientFrame(0x1, enc.encode(text)));
  }

  /**
   * Reads frames, at most `bytesPerSecond`, until `until` accepts a parsed
   * message, the server closes, or `signal` aborts.
   */
  async readUntil(opts: ReadOptions): Promise<ReadStats> {
    const chunk = new Uint8Array(opts.chunkBytes ?? 256 * 1024);
    const limit = opts.parseLimit ?? 4096;
    const stats: ReadStats = {
      wireBytes: 0,
      payloadBytes: 0,
      messages: 0,
      seconds: 0,
      done: false,
      closed: false,
    };
    const t0 = performance.now();
    const onAbort = () => {
      try {
        this.#conn.close();
      } catch { /* already */ }
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      let data = this.#leftover;
      this.#leftover = new Uint8Array(0);
      while (!stats.done && !stats.closed) {
        if (data.length === 0) {
          if (opts.signal?.aborted) break;
          let n: number | null;
          try {
            n = await this.#conn.read(chunk);
          } catch (e) {
            if (opts.signal?.aborted) break;
            throw e;
          }
          if (n === null) {
            stats.closed = true;
            break;
          }
          stats.wireBytes += n;
          data = chunk.subarray(0, n);
          if (opts.bytesPerSecond) {
            const due = t0 + (stats.wireBytes / opts.bytesPerSecond) * 1000;
            const wait = due - performance.now();
            if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          }
        }
        const used = await this.#consume(data, limit, stats, opts);
        // Keep what follows the matching message for a later call.
        if (stats.done) this.#leftover = data.slice(used);
        data = data.subarray(used);
      }
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      stats.seconds = (performance.now() - t0) / 1000;
    }
    return stats;
  }

  /** Parses frames from `data`; returns how many bytes were used (all, unless `done`). */
  async #consume(
    data: Uint8Array,
    limit: number,
    stats: ReadStats,
    opts: ReadOptions,
  ): Promise<number> {
    let i = 0;
    while (i < data.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, data.length - i);
        this.#frameData?.push(data.slice(i, i + take));
        this.#remaining -= take;
        i += take;
        if (this.#remaining === 0 && await this.#frameEnd(stats, opts)) return i;
        continue;
      }
      this.#hdr[this.#hdrLen++] = data[i++];
      if (this.#hdrLen < 2) continue;
      const len7 = this.#hdr[1] & 0x7f;
      const masked = (this.#hdr[1] & 0x80) !== 0;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
      if (this.#hdrLen < need) continue;
      const view = new DataView(this.#hdr.buffer);
      let len = len7;
      if (len7 === 126) len = view.getUint16(2);
      else if (len7 === 127) len = Number(view.getBigUint64(2));
      this.#fin = (this.#hdr[0] & 0x80) !== 0;
      this.#opcode = this.#hdr[0] & 0x0f;
      this.#maskKey = masked ? this.#hdr.slice(need - 4, need) : undefined;
      this.#hdrLen = 0;
      this.#remaining = len;
      const control = this.#opcode >= 0x8;
      if (!control && this.#opcode !== 0) {
        this.#msgOpcode = this.#opcode;
        this.#msgBytes = 0;
        this.#msgParts = [];
      }
      if (!control) this.#msgBytes += len;
      const keep = control || (this.#msgParts !== undefined && this.#msgBytes <= limit);
      if (!keep) this.#msgParts = undefined;
      this.#frameData = keep ? [] : undefined;
      if (len === 0 && await this.#frameEnd(stats, opts)) return i;
    }
    return i;
  }

  /** Handles a complete frame; true when `until` matched. */
  async #frameEnd(stats: ReadStats, opts: ReadOptions): Promise<boolean> {
    let payload = concat(this.#frameData ?? []);
    if (this.#maskKey) payload = mask(payload, this.#maskKey);
    this.#frameData = undefined;
    switch (this.#opcode) {
      case 0x8: // close: answer and stop
        stats.closed = true;
        await writeAll(this.#conn, clientFrame(0x8, payload.subarray(0, 2))).catch(() => {});
        return false;
      case 0x9: // ping
        await writeAll(this.#conn, clientFrame(0xa, payload)).catch(() => {});
        return false;
      case 0xa: // pong
        return false;
    }
    this.#msgParts?.push(payload);
    if (!this.#fin) return false;
    stats.messages++;
    stats.payloadBytes += this.#msgBytes;
    opts.onMessage?.(this.#msgBytes);
    const parts = this.#msgParts;
    this.#msgParts = undefined;
    if (!parts || this.#msgOpcode !== 0x1) return false;
    let msg: unknown;
    try {
      msg = JSON.parse(new TextDecoder().decode(concat(parts)));
    } catch {
      return false;
    }
    if (opts.until(msg)) stats.done = true;
    return stats.done;
  }

  /** Sends a close frame (best effort) and closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      // A close frame is tiny; the kernel takes it without blocking.
      this.#conn.write(clientFrame(0x8, new Uint8Array([0x03, 0xe8]))).catch(() => {})
        .finally(() => {
          try {
            this.#conn.close();
          } catch { /* already closed */ }
        });
    } catch {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function findHeaderEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) at += await conn.write(data.subarray(at));
}

/**
 * The connections the connection gate (gate.ts) works with: a Deno TCP
 * connection, or TLS over one by `node:tls` ({@linkcode TlsRelayConn}), behind
 * one small interface ({@linkcode RelayConn}), and the two helpers every part of
 * the gate writes and closes them with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tryClose, writeAll } from "./gate_tls.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const peer = await listener.accept();
 * await writeAll(conn, new TextEncoder().encode("GET /health HTTP/1.1\r\n\r\n"));
 * const buf = new Uint8Array(64);
 * const n = await peer.read(buf);
 * assert.equal(new TextDecoder().decode(buf.subarray(0, n!)).split("\r\n")[0], "GET /health HTTP/1.1");
 * tryClose(conn);
 * tryClose(conn); // a second close is no error
 * peer.close();
 * listener.close();
 * ```
 * @module
 */

import { Duplex } from "node:stream";
import tls from "node:tls";

/** What the relay needs of a connection: a Deno TCP connection, or TLS over one. */
export interface RelayConn {
  /** The peer. */
  readonly remoteAddr: Deno.Addr;
  /** Reads into `buf`; null at the end. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes some of `data`; resolves with how much. */
  write(data: Uint8Array): Promise<number>;
  /** Half-closes: no more writes. */
  closeWrite(): Promise<void>;
  /** Closes both ways. */
  close(): void;
}

/**
 * Writes all of `data` (one write may take only part of it).
 *
 * @example
 * ```ts
 * import { writeAll } from "./gate_tls.ts";
 * // await writeAll(conn, bytes);
 * ```
 */
export async function writeAll(conn: RelayConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/**
 * Closes `c`, if any, ignoring that it is closed already.
 *
 * @example
 * ```ts
 * import { tryClose } from "./gate_tls.ts";
 * tryClose(undefined); // nothing to do
 * ```
 */
export function tryClose(c: { close(): void } | undefined): void {
  try {
    c?.close();
  } catch { /* already closed */ }
}

/**
 * TLS over an accepted Deno TCP connection, by `node:tls`. `Deno.listenTls`
 * connections offer no `setNoDelay`, so Nagle's algorithm held small answers
 * back (~40 ms each); here the TCP connection underneath has `TCP_NODELAY`.
 */
export class TlsRelayConn implements RelayConn {
  /** The peer. */
  readonly remoteAddr: Deno.Addr;
  /** True once the TLS handshake is done. */
  secured = false;
  readonly #sock: tls.TLSSocket;
  readonly #raw: Deno.TcpConn;
  readonly #secure: Promise<void>;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #eof = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #writes = new Set<(e: Error) => void>();

  /** Starts the TLS handshake, as the server, on `raw`. */
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
      sock.once("secure", () => {
        this.secured = true;
        resolve();
      });
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

  /** Reads decrypted bytes into `buf`; null at the end. */
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

  /** Encrypts and sends `data` (copied: the caller may reuse it at once). */
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

  /** Ends the TLS stream (close_notify). */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#sock.end(() => resolve()));
  }

  /** Closes the TLS socket and the TCP connection under it. */
  close(): void {
    this.#sock.destroy();
    tryClose(this.#raw);
  }
}

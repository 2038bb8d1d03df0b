/**
 * The server end of a WebSocket, run by the connection gate itself on the
 * client's own connection. `Deno.serve` still answers the upgrade request (the
 * gate relays it, and the server's handler decides: token, origin, limits), but
 * when the handler calls {@linkcode upgradeWebSocket} instead of
 * `Deno.upgradeWebSocket`, the gate completes the handshake and from then on no
 * byte of the session goes through a relay: messages are framed and read here,
 * the gate's checks (1009 before a large message is read, 1007 for text that is
 * not UTF-8) apply as before, and every message queued within one task goes out
 * in one write. Through the relay each message crossed a Unix socket and the
 * event loop twice (1.3 µs of CPU a line more than `Deno.serve` alone for
 * `seq 1 2000000` in lines mode).
 *
 * A {@linkcode GateSocket} has the part of the `WebSocket` interface the server
 * uses: `send`, `close`, `readyState`, `bufferedAmount`, `protocol`, the `on…`
 * handlers and `addEventListener`, with `Deno.upgradeWebSocket`'s `idleTimeout`
 * (a ping after half of it without a word from the client, closed 1001 when the
 * other half passes without an answer), kept by one timer for all sockets.
 *
 * @example
 * ```ts
 * import { upgradeWebSocket } from "./gate_socket.ts";
 * // In a handler behind the gate (a request that did not come through it gets
 * // Deno.upgradeWebSocket's socket):
 * const handler = (req: Request) => {
 *   const { socket, response } = upgradeWebSocket(req, { idleTimeout: 120 });
 *   socket.onmessage = (e) => socket.send(String(e.data));
 *   return response;
 * };
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { closeFrame, GATE_CONN_HEADER, type Violation } from "./gate_frames.ts";
import { FrameQueue } from "./gate_output.ts";
import { type RelayConn, tryClose, writeAll } from "./gate_tls.ts";

/**
 * The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
 *
 * @example
 * ```ts
 * import { acceptKey } from "./gate_socket.ts";
 * acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
}

/** The options of `Deno.upgradeWebSocket` that {@linkcode upgradeWebSocket} honours. */
export interface UpgradeOptions {
  /** The subprotocol to answer with (`Sec-WebSocket-Protocol`). */
  protocol?: string;
  /** Seconds without a word from the client before it must answer a ping (default 30; 0: never). */
  idleTimeout?: number;
}

/** What the gate's connection gives a socket it takes over: checks, and where its end goes. */
export interface SocketHost {
  /** Checks a chunk of the client's bytes before it is read (1009, 1007); a violation ends it. */
  check(chunk: Uint8Array): Violation | undefined;
  /** Said once, when the socket is done with the connection. */
  ended(): void;
}

/** A connection offering to take over its upgrade: makes the socket, given the handler's options. */
export type Taker = (opts: UpgradeOptions) => GateSocket;

const takers = new Map<string, Taker>();

/**
 * Lets the handler of the upgrade request relayed for `connId` take the
 * connection over (see {@linkcode upgradeWebSocket}); returns the withdrawal.
 *
 * @example
 * ```ts
 * import { offerUpgrade } from "./gate_socket.ts";
 * const withdraw = offerUpgrade("conn-id", () => { throw new Error("not here"); });
 * withdraw();
 * ```
 */
export function offerUpgrade(connId: string, take: Taker): () => void {
  takers.set(connId, take);
  return () => {
    if (takers.get(connId) === take) takers.delete(connId);
  };
}

/**
 * `Deno.upgradeWebSocket` for requests relayed by the gate: the gate completes
 * the handshake and runs the socket on the client's connection (the returned
 * response only tells the gate so). Any other request, or one whose connection
 * is gone, gets `Deno.upgradeWebSocket`'s own. Throws a `TypeError`, as that
 * does, for a request that is not a WebSocket upgrade.
 *
 * @example
 * ```ts
 * import { upgradeWebSocket } from "./gate_socket.ts";
 * Deno.serve({ port: 0, onListen() {} }, (req) => upgradeWebSocket(req).response);
 * ```
 */
export function upgradeWebSocket(
  req: Request,
  opts: UpgradeOptions = {},
): { socket: WebSocket; response: Response } {
  const id = req.headers.get(GATE_CONN_HEADER);
  const take = id === null ? undefined : takers.get(id);
  if (take === undefined) return Deno.upgradeWebSocket(req, opts);
  const has = (name: string, token: string) =>
    (req.headers.get(name) ?? "").toLowerCase().split(",").some((t) => t.trim() === token);
  if (!has("upgrade", "websocket")) {
    throw new TypeError("Invalid Header: 'upgrade' header must contain 'websocket'");
  }
  if (!has("connection", "upgrade")) {
    throw new TypeError("Invalid Header: 'connection' header must contain 'Upgrade'");
  }
  if (req.headers.get("sec-websocket-version") !== "13") {
    throw new TypeError("Invalid Header: 'sec-websocket-version' header must be '13'");
  }
  if (!req.headers.get("sec-websocket-key")) {
    throw new TypeError("Invalid Header: 'sec-websocket-key' header must be set");
  }
  takers.delete(id!);
  const socket = take(opts) as unknown as WebSocket;
  return { socket, response: new Response(null, { status: 200, headers: { [TAKEN]: "1" } }) };
}

/** The header of the handler's answer that tells the gate its socket took the connection. */
export const TAKEN = "x-ccx-gate-taken";

const dec = new TextDecoder();
/**
 * Resolves in a later task of the event loop, after the I/O that is ready (5 us;
 * `setTimeout(0)` waits a timer turn, ~2 ms here).
 */
const nextTask = () => new Promise<void>((r) => setImmediate(r));

/** A handler of a {@linkcode GateSocket}'s events (a plain object with `type`, `data`, `code`…). */
export type Listener = (event: Record<string, unknown>) => void;

/** Sockets whose idle timeout one shared timer keeps. */
const watched = new Set<GateSocket>();
let wheel: ReturnType<typeof setInterval> | undefined;

function watch(s: GateSocket): void {
  watched.add(s);
  if (wheel !== undefined) return;
  wheel = setInterval(() => {
    const now = performance.now();
    for (const w of watched) w.idleCheck(now);
  }, 1000);
  Deno.unrefTimer(wheel);
}

function unwatch(s: GateSocket): void {
  watched.delete(s);
  if (watched.size > 0 || wheel === undefined) return;
  clearInterval(wheel);
  wheel = undefined;
}

/** The server end of a WebSocket on a connection the gate took over: see the module doc. */
export class GateSocket {
  /** `readyState` before the handshake is done. */
  readonly CONNECTING = 0;
  /** `readyState` while messages flow. */
  readonly OPEN = 1;
  /** `readyState` once a close frame was sent. */
  readonly CLOSING = 2;
  /** `readyState` at the end. */
  readonly CLOSED = 3;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readyState = 0;
  /** The subprotocol answered, or "". */
  readonly protocol: string;
  /** No extensions are ever agreed. */
  readonly extensions = "";
  /** Binary messages arrive as ArrayBuffers. */
  binaryType: "arraybuffer" | "blob" = "arraybuffer";
  /** Called once the handshake is done. */
  onopen: Listener | null = null;
  /** Called with each message (`data`: a string, or an ArrayBuffer). */
  onmessage: Listener | null = null;
  /** Called once, at the end (`code`, `reason`, `wasClean`). */
  onclose: Listener | null = null;
  /** Called when the connection fails or the client stops answering pings. */
  onerror: Listener | null = null;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #conn: RelayConn;
  readonly #host: SocketHost;
  readonly #idleMs: number;
  #heard = performance.now();
  #pingAt = 0;
  readonly #out: FrameQueue;
  #closeSent = false;
  #closeReceived = false;
  /** Set when the gate cut the output: after what is on the wire, only this close frame. */
  #cut: Violation | undefined;
  #ended = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  // Input: the frame being read.
  readonly #hdr = new Uint8Array(14);
  #hdrLen = 0;
  #remaining = 0;
  #inPayload = false;
  #opcode = 0;
  #fin = false;
  readonly #mask = new Uint8Array(4);
  #maskPos = 0;
  #parts: Uint8Array[] = [];
  /** A fragmented message's parts, while a control frame between them is read. */
  #held: Uint8Array[] | undefined;
  #msgOpcode = 0;

  /** A socket on `conn`, opened by {@linkcode GateSocket.run} once the 101 is sent. */
  constructor(conn: RelayConn, host: SocketHost, opts: UpgradeOptions = {}) {
    this.#conn = conn;
    this.#host = host;
    this.#out = new FrameQueue(
      (bytes) => writeAll(conn, bytes),
      () => this.#finish(1006, "", false, "the connection was lost"),
    );
    this.protocol = opts.protocol ?? "";
    this.#idleMs = (opts.idleTimeout ?? 30) * 1000;
  }

  /** Bytes queued and not yet written to the connection. */
  get bufferedAmount(): number {
    return this.#out.queued;
  }

  /** Adds a listener for `open`, `message`, `close` or `error`. */
  addEventListener(type: string, fn: Listener): void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(fn);
  }

  /** Removes a listener. */
  removeEventListener(type: string, fn: Listener): void {
    this.#listeners.get(type)?.delete(fn);
  }

  #emit(type: "open" | "message" | "close" | "error", event: Record<string, unknown>): void {
    event.type = type;
    event.target = this;
    const on = type === "open"
      ? this.onopen
      : type === "message"
      ? this.onmessage
      : type === "close"
      ? this.onclose
      : this.onerror;
    for (const fn of [on, ...this.#listeners.get(type) ?? []]) {
      if (!fn) continue;
      try {
        fn.call(this, event);
      } catch (e) {
        console.error(e); // a listener's exception is the listener's: the socket goes on
      }
    }
  }

  /**
   * Opens the socket (the 101 is on the wire) and reads the client's frames
   * (`first`: bytes that came with the head) until the connection ends. Once the
   * socket is closing for good (a close frame received, or the gate's cut), what
   * still comes is read and dropped, so that the close frame is not lost to a reset.
   */
  async run(first: Uint8Array): Promise<void> {
    this.readyState = this.OPEN;
    if (this.#idleMs > 0) watch(this);
    this.#emit("open", {});
    const buf = new Uint8Array(64 * 1024);
    try {
      let chunk: Uint8Array | undefined = first;
      while (!this.#ended) {
        if (chunk === undefined) {
          const n = await this.#conn.read(buf);
          if (n === null) break;
          chunk = buf.subarray(0, n);
        }
        this.#heard = performance.now();
        this.#pingAt = 0;
        if (chunk.length > 0 && !this.#cut && !this.#closeReceived) {
          const v = this.#host.check(chunk);
          if (v) this.closeWith(v.code, v.reason);
        }
        // One message a task, as Deno's own WebSocket dispatches them: the replies to a
        // message and the jobs it started go on while the next ones wait their turn.
        while (chunk.length > 0 && !this.#cut && !this.#closeReceived && !this.#ended) {
          chunk = chunk.subarray(this.#receive(chunk));
          if (chunk.length > 0) await nextTask();
        }
        chunk = undefined;
      }
    } catch { /* reset */ }
    if (this.#cut) this.#finish(this.#cut.code, this.#cut.reason, false);
    else if (!this.#closeReceived) this.#finish(1006, "", false, "the connection was lost");
  }

  /**
   * Reads frames from the client's bytes (already checked by the gate) up to the
   * end of the first whole message, a close frame, or a broken rule; returns how
   * many bytes it took.
   */
  #receive(chunk: Uint8Array): number {
    let i = 0;
    while (i < chunk.length) {
      if (!this.#inPayload) {
        this.#hdr[this.#hdrLen++] = chunk[i++];
        const bad = this.#header();
        if (bad) {
          this.closeWith(1002, bad);
          return chunk.length;
        }
        if (!this.#inPayload && this.#hdrLen === 0 && this.#frameDone()) return i;
        continue;
      }
      const n = Math.min(this.#remaining, chunk.length - i);
      const part = chunk.subarray(i, i + n);
      const m = this.#mask;
      for (let k = 0, p = this.#maskPos; k < n; k++) part[k] ^= m[(p + k) & 3];
      this.#maskPos = (this.#maskPos + n) & 3;
      // A whole single-frame message in this chunk is read in place; else it is copied.
      const whole = n === this.#remaining && this.#parts.length === 0 && this.#fin;
      this.#parts.push(whole ? part : part.slice());
      i += n;
      this.#remaining -= n;
      if (this.#remaining === 0) {
        this.#inPayload = false;
        if (this.#frameDone()) return i;
      }
    }
    return i;
  }

  /** Parses the header once complete; a protocol error's reason, or undefined. */
  #header(): string | undefined {
    const h = this.#hdr;
    if (this.#hdrLen < 2) return undefined;
    const len7 = h[1] & 0x7f;
    const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4;
    if ((h[1] & 0x80) === 0) return "a client frame must be masked";
    if (this.#hdrLen < need) return undefined;
    if ((h[0] & 0x70) !== 0) return "reserved bits set";
    const opcode = h[0] & 0x0f;
    const fin = (h[0] & 0x80) !== 0;
    let len = len7;
    if (len7 === 126) len = (h[2] << 8) | h[3];
    else if (len7 === 127) {
      len = 0;
      for (let k = 2; k < 10; k++) len = len * 256 + h[k];
    }
    if (opcode >= 8) {
      if (opcode > 10) return `opcode ${opcode} is not defined`;
      if (!fin || len > 125) return "a control frame must be whole and at most 125 bytes";
    } else if (opcode === 0) {
      if (this.#msgOpcode === 0) return "a continuation frame without a message";
    } else if (opcode > 2) return `opcode ${opcode} is not defined`;
    else if (this.#msgOpcode !== 0) return "a new message inside a fragmented one";
    this.#mask.set(h.subarray(need - 4, need));
    this.#maskPos = 0;
    this.#hdrLen = 0;
    this.#opcode = opcode;
    this.#fin = fin;
    if (opcode === 1 || opcode === 2) this.#msgOpcode = opcode;
    this.#remaining = len;
    this.#inPayload = len > 0;
    if (opcode >= 8 && this.#parts.length > 0) {
      // A control frame between the fragments of a message: keep those aside.
      this.#held = this.#parts;
      this.#parts = [];
    }
    return undefined;
  }

  /**
   * A frame's payload is in: handles a whole message or a control frame. True when
   * a message went to the listeners (or reading stops): the next waits a task.
   */
  #frameDone(): boolean {
    const op = this.#opcode;
    if (op >= 8) {
      const payload = this.#parts.length === 1 ? this.#parts[0] : joinParts(this.#parts);
      this.#parts = this.#held ?? [];
      this.#held = undefined;
      return !this.#control(op, payload);
    }
    if (!this.#fin) return false;
    const bytes = this.#parts.length === 1 ? this.#parts[0] : joinParts(this.#parts);
    this.#parts = [];
    const msgOp = this.#msgOpcode;
    this.#msgOpcode = 0;
    // Text was checked as UTF-8 as it came (the gate's check closes 1007 otherwise).
    const data = msgOp === 1 ? dec.decode(bytes) : bytes.slice().buffer;
    this.#emit("message", { data });
    return true;
  }

  #control(op: number, payload: Uint8Array): boolean {
    if (op === 9) {
      this.#out.frame(0xa, payload);
      return true;
    }
    if (op === 10) return true;
    // A close frame: answer it (unless ours went first), then end.
    this.#closeReceived = true;
    const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
    const reason = payload.length > 2 ? dec.decode(payload.subarray(2)) : "";
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.readyState = this.CLOSING;
      this.#out.bytes(code === 1005 ? new Uint8Array([0x88, 0]) : closeFrame(code, ""));
    }
    void this.#out.written().then(() => this.#finish(code, reason, true));
    return false;
  }

  /** Sends one message (`readyState` must be OPEN; ignored once closing, as the DOM does). */
  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    if (this.readyState === this.CONNECTING) {
      throw new DOMException("'readyState' not OPEN", "InvalidStateError");
    }
    if (this.readyState !== this.OPEN) return;
    if (typeof data === "string") this.#out.text(data);
    else if (ArrayBuffer.isView(data)) {
      this.#out.frame(0x2, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else this.#out.frame(0x2, new Uint8Array(data));
  }

  /**
   * Sends `pre + JSON.stringify(text) + post` as one message without building it
   * (see {@linkcode FrameQueue.jsonText}); as {@linkcode GateSocket.send} otherwise.
   */
  sendJson(pre: string, text: string, post: string): void {
    if (this.readyState === this.CONNECTING) {
      throw new DOMException("'readyState' not OPEN", "InvalidStateError");
    }
    if (this.readyState === this.OPEN) this.#out.jsonText(pre, text, post);
  }

  /**
   * Starts the closing handshake: the close frame follows what is queued; the
   * connection ends when the client answers, or 2 s after the frame went out.
   */
  close(code?: number, reason = ""): void {
    if (this.readyState >= this.CLOSING) return;
    if (this.readyState === this.CONNECTING) return this.#finish(1006, "", false);
    this.readyState = this.CLOSING;
    this.#closeSent = true;
    this.#out.bytes(code === undefined ? new Uint8Array([0x88, 0]) : closeFrame(code, reason));
    void this.#out.written().then(() => {
      if (!this.#ended) {
        this.#closeTimer ??= setTimeout(() => this.#finish(code ?? 1005, reason, false), 2000);
      }
    });
  }

  /**
   * Ends the socket from the gate: what is queued and not yet on the wire is
   * dropped, the close frame follows what is, and whatever the client does, the
   * connection is gone in 2 s (a client that reads nothing cannot hold it).
   */
  closeWith(code: number, reason: string): void {
    if (this.#ended || this.#cut) return;
    this.#cut = { code, reason };
    this.readyState = this.CLOSING;
    this.#out.cut();
    this.#closeSent = true;
    this.#out.bytes(closeFrame(code, reason));
    this.#closeTimer = setTimeout(() => this.#finish(code, reason, false), 2000);
    // Then half-close: the reader drops what the client still sends until it ends.
    void this.#out.written().then(() => this.#conn.closeWrite()).catch(() => {});
  }

  /** Ends the connection at once, as for a reset (close code 1006). */
  terminate(): void {
    this.#finish(1006, "", false);
  }

  /** @internal The shared idle timer's look at this socket. */
  idleCheck(now: number): void {
    if (this.readyState !== this.OPEN) return;
    const half = this.#idleMs / 2;
    if (this.#pingAt === 0) {
      if (now - this.#heard < half) return;
      this.#pingAt = now;
      this.#out.frame(0x9, new Uint8Array(0));
    } else if (now - this.#pingAt >= half) {
      const reason = "No response from ping frame.";
      this.#closeSent = true;
      this.readyState = this.CLOSING;
      this.#out.bytes(closeFrame(1001, reason));
      void this.#out.written().then(() => this.#finish(1001, reason, false, reason));
    }
  }

  #finish(code: number, reason: string, wasClean: boolean, error?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.readyState = this.CLOSED;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    unwatch(this);
    tryClose(this.#conn);
    this.#out.end();
    this.#host.ended();
    if (error !== undefined) this.#emit("error", { message: error, error: new Error(error) });
    this.#emit("close", { code, reason, wasClean });
  }
}

function joinParts(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

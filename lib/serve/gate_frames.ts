/**
 * WebSocket frames as the connection gate (gate.ts) follows them: a client's
 * frames checked as they stream ({@linkcode ClientFrames}: 1009 for a message
 * over the cap before its payload is read, 1007 for text that is not UTF-8), the
 * server's frames followed to their boundaries ({@linkcode ServerFrames}), and the
 * byte helpers of HTTP heads.
 *
 * @example
 * ```ts
 * import { ClientFrames } from "./gate_frames.ts";
 * const frames = new ClientFrames(1 << 20, { over: 1 << 20, left: 2 << 20 });
 * // A masked text frame header announcing 2 MiB: over the cap.
 * frames.check(new Uint8Array([0x81, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]));
 * // { code: 1009, reason: "message of 2097152 bytes is over the limit" }
 * ```
 * @module
 */

const enc = new TextEncoder();

/** A request header the gate adds (and strips from clients) to name the connection. */
export const GATE_CONN_HEADER = "x-ccx-gate-conn";

/** A request header the gate adds (and strips from clients): the peer's `hostname port`. */
export const GATE_PEER_HEADER = "x-ccx-gate-peer";

/**
 * A WebSocket close frame from the server (unmasked).
 *
 * @example
 * ```ts
 * import { closeFrame } from "./gate_frames.ts";
 * closeFrame(1009, "too big"); // Uint8Array [0x88, 9, 0x03, 0xf1, …]
 * ```
 */
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

/**
 * Index just past the first `\r\n\r\n` in `b` (the end of an HTTP head), or -1.
 *
 * @example
 * ```ts
 * import { headEnd } from "./gate_frames.ts";
 * headEnd(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\nrest")); // 18
 * ```
 */
export function headEnd(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13) return i + 1;
  }
  return -1;
}

/**
 * The bytes of a latin1 string (an HTTP head as the gate decoded it).
 *
 * @example
 * ```ts
 * import { latin1 } from "./gate_frames.ts";
 * latin1("GET"); // Uint8Array [71, 69, 84]
 * ```
 */
export function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/**
 * `a` then `b`, in a new array.
 *
 * @example
 * ```ts
 * import { concat } from "./gate_frames.ts";
 * concat(new Uint8Array([1]), new Uint8Array([2])); // Uint8Array [1, 2]
 * ```
 */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A rule a client's frames broke: the close code and reason to send. */
export interface Violation {
  /** The close code: 1009 (too big) or 1007 (not UTF-8). */
  code: number;
  /** The close reason. */
  reason: string;
}

/**
 * Follows a client's WebSocket frames as they stream (headers parsed, text
 * payloads unmasked and UTF-8-checked) without holding them.
 */
export class ClientFrames {
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
  /** Where text payloads are unmasked for the UTF-8 check (no allocation a chunk). */
  #scratch = new Uint8Array(0);

  /**
   * @param maxMessage Messages larger than this are closed 1009 at once.
   * @param large Messages larger than `large.over` are let through only while the
   *   budget shared by all connections (`large.left` bytes) lasts.
   */
  /** Starts at the first frame of a connection. */
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
        if (this.#scratch.length < n) this.#scratch = new Uint8Array(Math.max(n, 4096));
        const plain = this.#scratch.subarray(0, n); // decoded before it is used again
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
export class ServerFrames {
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

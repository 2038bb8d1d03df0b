/**
 * What the gate's WebSocket (gate_socket.ts) sends, queued as whole frames in
 * blocks of 64 KiB and written at the end of the task that queued them: every
 * message of one task goes out in one write (lines mode queues thousands a
 * task). Text is encoded straight into the block, behind a header guessed from
 * its length and moved when the UTF-8 needs a longer one. What is being written
 * stays put; what is not yet can be dropped at once ({@linkcode FrameQueue.cut}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FrameQueue } from "./gate_output.ts";
 * const writes: Uint8Array[] = [];
 * const out = new FrameQueue(async (b) => void writes.push(b.slice()), () => {});
 * out.text("hello");
 * assert.equal(writes.length, 0); // written once this task ends
 * await out.written();
 * const frame = writes[0];
 * assert.deepEqual([frame[0], frame[1]], [0x81, 5]); // FIN + text, unmasked, 5 bytes
 * assert.equal(new TextDecoder().decode(frame.subarray(2, 7)), "hello");
 * ```
 * @module
 */

const enc = new TextEncoder();
/** JSON's two-character escapes of control characters (`\b \t \n \f \r`), by code. */
const ESCAPES: (number | undefined)[] = [];
ESCAPES[8] = 0x62;
ESCAPES[9] = 0x74;
ESCAPES[10] = 0x6e;
ESCAPES[12] = 0x66;
ESCAPES[13] = 0x72;
const HEX = new TextEncoder().encode("0123456789abcdef");

/** The usual block; a message that may not fit one gets a big block, or a buffer of its own. */
const BLOCK = 64 * 1024;
const BIG = 1024 * 1024;
/**
 * Free blocks, shared by all queues (an idle socket holds none): a stream of large
 * chunks reuses the same few big blocks instead of allocating a buffer a message.
 */
const pools = new Map<number, { free: Uint8Array[]; max: number }>([
  [BLOCK, { free: [], max: 16 }],
  [BIG, { free: [], max: 4 }],
]);

function takeBuffer(size: number): Uint8Array {
  return pools.get(size)?.free.pop() ?? new Uint8Array(size);
}

function giveBack(buf: Uint8Array): void {
  const pool = pools.get(buf.length);
  if (pool && pool.free.length < pool.max) pool.free.push(buf);
}

/** Output waiting for the connection: whole frames. */
interface Block {
  buf: Uint8Array;
  /** Bytes up to here are written. */
  written: number;
  /** Bytes up to here are frames. */
  filled: number;
}

/**
 * The length of a server frame's header (not masked) for a payload of `n` bytes.
 *
 * @example
 * ```ts
 * import { headerLength } from "./gate_output.ts";
 * headerLength(125); // 2
 * headerLength(126); // 4
 * ```
 */
export function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

/**
 * Writes a server frame's header (FIN set, not masked) at `buf[at]`.
 *
 * @example
 * ```ts
 * import { putHeader } from "./gate_output.ts";
 * const b = new Uint8Array(2);
 * putHeader(b, 0, 0x1, 5); // [0x81, 5]
 * ```
 */
export function putHeader(buf: Uint8Array, at: number, opcode: number, n: number): void {
  buf[at] = 0x80 | opcode;
  if (n < 126) buf[at + 1] = n;
  else if (n < 65536) {
    buf[at + 1] = 126;
    buf[at + 2] = n >>> 8;
    buf[at + 3] = n & 0xff;
  } else {
    buf[at + 1] = 127;
    new DataView(buf.buffer, buf.byteOffset + at + 2, 8).setBigUint64(0, BigInt(n));
  }
}

/**
 * A socket's outgoing frames: see the module doc.
 */
export class FrameQueue {
  #blocks: Block[] = [];
  #queued = 0;
  #writing = false;
  #soon = false;
  #over = false;
  /** Where the write under way ends (in the first block). */
  #flightEnd = 0;
  #drained: (() => void)[] = [];

  /**
   * An empty queue.
   *
   * @param write Writes all of a run of frames (rejects when the connection fails).
   * @param failed Called once when a write failed; nothing more is written.
   */
  constructor(
    private readonly write: (bytes: Uint8Array) => Promise<void>,
    private readonly failed: () => void,
  ) {}

  /** Bytes queued and not yet written. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Queues a text frame, encoded straight into the last block when the room left
   * takes it (tried when it has a byte a UTF-16 unit), else into a fresh block
   * sized for the worst case (3 bytes a unit), else into a buffer of its own.
   */
  text(s: string): void {
    if (this.#over) return;
    const worst = s.length * 3 + 10;
    const b = this.#blocks.at(-1);
    if (b && b.buf.length - b.filled >= s.length + 10 && this.#encode(b, s)) return this.#kick();
    if (worst > BIG) return this.frame(0x1, enc.encode(s));
    this.#encode(this.#newBlock(worst > BLOCK ? BIG : BLOCK), s);
    this.#kick();
  }

  /**
   * Queues a text frame of `pre`, `text` as a JSON string, and `post`, the same bytes
   * as `pre + JSON.stringify(text) + post` without building those strings: `text` is
   * encoded into the block and its escapes made there (a message of output is then
   * one string, the decoded text, not three). `text` must be well-formed UTF-16, as a
   * `TextDecoder`'s output is; anything else goes the way of {@linkcode FrameQueue.text}.
   */
  jsonText(pre: string, text: string, post: string): void {
    if (this.#over) return;
    if (!text.isWellFormed()) return this.text(pre + JSON.stringify(text) + post);
    const least = pre.length + text.length + post.length + 12;
    const b = this.#blocks.at(-1);
    if (b && b.buf.length - b.filled >= least && this.#encodeJson(b, pre, text, post)) {
      return this.#kick();
    }
    if (least <= BIG) {
      const fresh = { buf: takeBuffer(least * 3 > BLOCK ? BIG : BLOCK), written: 0, filled: 0 };
      if (this.#encodeJson(fresh, pre, text, post)) {
        this.#blocks.push(fresh);
        return this.#kick();
      }
      giveBack(fresh.buf);
    }
    this.text(pre + JSON.stringify(text) + post);
  }

  /** {@linkcode FrameQueue.jsonText} into the end of `b`; false (`b` unchanged) if it does not fit. */
  #encodeJson(b: Block, pre: string, text: string, post: string): boolean {
    const buf = b.buf;
    const at = b.filled;
    const guess = headerLength(pre.length + text.length + 2 + post.length);
    let p = at + guess;
    let r = enc.encodeInto(pre, buf.subarray(p));
    if (r.read < pre.length || p + r.written >= buf.length) return false;
    p += r.written;
    buf[p++] = 0x22;
    r = enc.encodeInto(text, buf.subarray(p));
    if (r.read < text.length) return false;
    const n = r.written;
    // What JSON.stringify escapes: " and \ (one byte more), \b \t \n \f \r (one more),
    // other control characters (\u00XX: five more).
    let extra = 0;
    for (let i = p; i < p + n; i++) {
      const c = buf[i];
      if (c >= 0x20) {
        if (c === 0x22 || c === 0x5c) extra++;
      } else extra += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 1 : 5;
    }
    if (p + n + extra + 1 >= buf.length) return false;
    if (extra > 0) {
      for (let i = p + n - 1, j = p + n + extra - 1; i >= p; i--) {
        const c = buf[i];
        if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
          buf[j--] = c;
          continue;
        }
        const short = c === 0x22 ? 0x22 : c === 0x5c ? 0x5c : ESCAPES[c];
        if (short !== undefined) {
          buf[j--] = short;
          buf[j--] = 0x5c;
          continue;
        }
        buf[j--] = HEX[c & 15];
        buf[j--] = HEX[c >> 4];
        buf[j--] = 0x30;
        buf[j--] = 0x30;
        buf[j--] = 0x75;
        buf[j--] = 0x5c;
      }
    }
    p += n + extra;
    buf[p++] = 0x22;
    r = enc.encodeInto(post, buf.subarray(p));
    if (r.read < post.length) return false;
    p += r.written;
    const len = p - (at + guess);
    const h = headerLength(len);
    if (h !== guess) {
      if (p + h - guess > buf.length) return false;
      buf.copyWithin(at + h, at + guess, p);
    }
    putHeader(buf, at, 0x1, len);
    b.filled = at + h + len;
    this.#queued += h + len;
    return true;
  }

  /** Encodes `s` as a text frame at the end of `b`; false (and `b` unchanged) if it does not fit. */
  #encode(b: Block, s: string): boolean {
    const at = b.filled;
    const guess = headerLength(s.length); // UTF-8 takes at least one byte a UTF-16 unit
    const r = enc.encodeInto(s, b.buf.subarray(at + guess));
    if (r.read < s.length) return false;
    const n = r.written;
    const h = headerLength(n);
    if (h !== guess) {
      if (at + h + n > b.buf.length) return false;
      b.buf.copyWithin(at + h, at + guess, at + guess + n);
    }
    putHeader(b.buf, at, 0x1, n);
    b.filled = at + h + n;
    this.#queued += h + n;
    return true;
  }

  /** Queues a frame of `opcode` carrying `payload` (copied). */
  frame(opcode: number, payload: Uint8Array): void {
    const h = headerLength(payload.length);
    const frame = new Uint8Array(h + payload.length);
    putHeader(frame, 0, opcode, payload.length);
    frame.set(payload, h);
    this.bytes(frame);
  }

  /** Queues bytes that are whole frames already. */
  bytes(bytes: Uint8Array): void {
    if (this.#over) return;
    let b = this.#blocks.at(-1);
    if (bytes.length > BLOCK) {
      this.#blocks.push({ buf: bytes, written: 0, filled: bytes.length });
    } else {
      if (!b || b.buf.length - b.filled < bytes.length) b = this.#newBlock(BLOCK);
      b.buf.set(bytes, b.filled);
      b.filled += bytes.length;
    }
    this.#queued += bytes.length;
    this.#kick();
  }

  /** Drops what is queued and not being written now (a write under way ends as it began). */
  cut(): void {
    const flying = this.#writing ? this.#blocks[0] : undefined;
    for (const b of this.#blocks) this.#queued -= b.filled - b.written;
    if (flying) {
      flying.filled = this.#flightEnd;
      this.#queued += flying.filled - flying.written;
    }
    this.#blocks = flying ? [flying] : [];
  }

  /** Resolves once everything queued so far is written (or the queue is over). */
  written(): Promise<void> {
    if (this.#over || (this.#queued === 0 && !this.#writing)) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained.push(resolve);
      this.#kick();
    });
  }

  /** Drops everything; nothing more is queued or written. */
  end(): void {
    this.#over = true;
    if (!this.#writing) { for (const b of this.#blocks) giveBack(b.buf); }
    this.#blocks = [];
    this.#queued = 0;
    for (const resolve of this.#drained) resolve();
    this.#drained = [];
  }

  #newBlock(size: number): Block {
    const b = { buf: takeBuffer(size), written: 0, filled: 0 };
    this.#blocks.push(b);
    return b;
  }

  /** Writes what is queued at the end of this task: one write for all its messages. */
  #kick(): void {
    if (this.#writing || this.#soon) return;
    this.#soon = true;
    queueMicrotask(() => {
      this.#soon = false;
      void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    if (this.#writing || this.#over) return;
    this.#writing = true;
    try {
      while (this.#blocks.length > 0 && !this.#over) {
        const b = this.#blocks[0];
        if (b.written === b.filled) {
          this.#blocks.shift();
          giveBack(b.buf);
          continue;
        }
        const end = this.#flightEnd = b.filled;
        await this.write(b.buf.subarray(b.written, end));
        this.#queued -= end - b.written;
        b.written = end;
      }
    } catch {
      this.#writing = false;
      this.end();
      return this.failed();
    }
    this.#writing = false;
    const waiting = this.#drained;
    this.#drained = [];
    for (const resolve of waiting) resolve();
  }
}

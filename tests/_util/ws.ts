/**
 * A deliberately plain WebSocket test client: it sends raw frames and records
 * every message, so tests see exactly what the server sent (the ccx client
 * module is tested separately).
 * @module
 */

/** A parsed server message. */
export type Msg = Record<string, unknown> & {
  method?: string;
  params?: Record<string, unknown>;
  id?: unknown;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: Record<string, unknown> };
};

/** A recording WebSocket connection. */
export class RawSession {
  readonly messages: Msg[] = [];
  readonly closed: Promise<CloseEvent>;
  #waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((r) => ws.addEventListener("close", (e) => r(e)));
    ws.addEventListener("message", (ev) => {
      const m = JSON.parse(String(ev.data)) as Msg;
      this.messages.push(m);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  /** Connects and waits for the socket to open. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<RawSession> {
    const ws = new WebSocket(url, { headers });
    const s = new RawSession(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", (e) => reject(new Error((e as ErrorEvent).message)));
    });
    return s;
  }

  /** Sends text as is (it need not be valid JSON). */
  sendText(text: string): void {
    this.ws.send(text);
  }

  /** Sends a value as JSON. */
  send(value: unknown): void {
    this.ws.send(JSON.stringify(value));
  }

  /**
   * The first message matching `pred`, received already or still to come;
   * with `from`, only messages at index `from` or later count.
   */
  next(pred: (m: Msg) => boolean, ms = 10000, from = 0): Promise<Msg> {
    const have = this.messages.slice(from).find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("timed out waiting for a message")), ms);
      this.#waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }

  /** Sends a request with this id and waits for the response to it. */
  async call(id: number | string, method: string, params?: unknown): Promise<Msg> {
    this.send({ jsonrpc: "2.0", id, method, params });
    return await this.next((m) => m.id === id && m.method === undefined);
  }

  /** Messages of a method for one job. */
  forJob(jobId: string, method: string): Msg[] {
    return this.messages.filter((m) => m.method === method && m.params?.job_id === jobId);
  }

  /** Waits for a job's `process.completed`. */
  completed(jobId: string, ms = 30000): Promise<Msg> {
    return this.next((m) => m.method === "process.completed" && m.params?.job_id === jobId, ms);
  }

  /** The concatenated output text of one job's stream. */
  output(jobId: string, type = "stdout"): string {
    return this.forJob(jobId, "process.output")
      .filter((m) => m.params?.type === type)
      .map((m) => String(m.params?.data))
      .join("");
  }

  /** Closes and waits for the close. */
  async close(): Promise<void> {
    if (this.ws.readyState < 2) this.ws.close();
    await this.closed;
  }
}

/**
 * Sends an HTTP upgrade request by hand and returns the status code, so tests
 * can see refusals (401, 403) that a WebSocket client only reports as errors.
 */
export async function handshakeStatus(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    const req = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\n${extra}\r\n`;
    await conn.write(new TextEncoder().encode(req));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    const line = new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
    return Number(line.split(" ")[1]);
  } finally {
    conn.close();
  }
}

/**
 * A client's WebSocket frame, as a browser sends it: masked with a random key (unless `masked`
 * is false, which a server must refuse), FIN set unless `fin` is false, any payload length.
 */
export function clientFrame(
  opcode: number,
  payload: Uint8Array,
  fin = true,
  masked = true,
): Uint8Array {
  const n = payload.length;
  const m = masked ? 0x80 : 0;
  const h = [(fin ? 0x80 : 0) | opcode];
  if (n < 126) h.push(m | n);
  else if (n < 65536) h.push(m | 126, n >> 8, n & 0xff);
  else {
    h.push(m | 127);
    for (let k = 7; k >= 0; k--) h.push(Math.floor(n / 2 ** (8 * k)) & 0xff);
  }
  const key = masked ? crypto.getRandomValues(new Uint8Array(4)) : new Uint8Array(0);
  const frame = new Uint8Array(h.length + key.length + n);
  frame.set(h, 0);
  frame.set(key, h.length);
  const at = h.length + key.length;
  for (let i = 0; i < n; i++) frame[at + i] = masked ? payload[i] ^ key[i & 3] : payload[i];
  return frame;
}

/**
 * A WebSocket client that completes the handshake, sends one masked text frame,
 * and then never reads: the slow client of the backpressure tests.
 */
export async function stalledClient(port: number, text: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const req = `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
    `Sec-WebSocket-Version: 13\r\n\r\n`;
  await conn.write(new TextEncoder().encode(req));
  const buf = new Uint8Array(4096);
  await conn.read(buf); // the 101 response (and maybe the `connected` frame)
  await conn.write(clientFrame(0x1, new TextEncoder().encode(text)));
  return conn;
}

/** What {@linkcode SlowReader.next} throws when the next frame is the server's close frame. */
export class ServerClosed extends Error {
  /** @param code the close code (1005 when the frame had none); @param reason its reason. */
  constructor(readonly code: number, readonly reason: string) {
    super(`connection closed by the server (${code}${reason ? `: ${reason}` : ""})`);
  }
}

/**
 * A WebSocket client on a bare TCP connection that reads only when asked
 * ({@linkcode SlowReader.next}), so a test decides when the server may send more:
 * the slow consumer of the line-mode backpressure tests. Server frames are
 * unmasked; fragments and control frames other than close are not expected.
 */
export class SlowReader {
  #buf = new Uint8Array(0);
  #at = 0;
  readonly #decoder = new TextDecoder();

  private constructor(readonly conn: Deno.TcpConn) {}

  /** Opens `/ws` with a hand-made handshake; nothing more is read until asked. */
  static async open(port: number): Promise<SlowReader> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const r = new SlowReader(conn);
    await conn.write(new TextEncoder().encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`,
    ));
    let end = -1;
    while (end < 0) {
      await r.#fill();
      end = r.#decoder.decode(r.#buf).indexOf("\r\n\r\n"); // the 101 response is ASCII
    }
    r.#at = end + 4;
    return r;
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await this.conn.read(chunk);
    if (n === null) throw new Error("connection closed");
    const rest = this.#buf.subarray(this.#at);
    const b = new Uint8Array(rest.length + n);
    b.set(rest);
    b.set(chunk.subarray(0, n), rest.length);
    this.#buf = b;
    this.#at = 0;
  }

  /** Sends one masked text frame. */
  send(value: unknown): Promise<void> {
    return this.#frame(0x1, new TextEncoder().encode(JSON.stringify(value)));
  }

  /** Answers the server's close frame with one of ours, as a WebSocket client does. */
  closeReply(code: number): Promise<void> {
    return this.#frame(0x8, new Uint8Array([code >> 8, code & 0xff]));
  }

  async #frame(opcode: number, payload: Uint8Array): Promise<void> {
    await this.conn.write(clientFrame(opcode, payload));
  }

  /** Reads the next text message and parses it; throws {@linkcode ServerClosed} at a close frame. */
  async next(): Promise<Msg> {
    while (true) {
      const b = this.#buf.subarray(this.#at);
      if (b.length >= 2) {
        let len = b[1] & 0x7f;
        let at = 2;
        if (len === 126) {
          len = (b[2] << 8) | b[3];
          at = 4;
        } else if (len === 127) {
          len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
          at = 10;
        }
        if (b.length >= at && b.length >= at + len) {
          const opcode = b[0] & 0x0f;
          this.#at += at + len;
          if (opcode === 1) {
            return JSON.parse(this.#decoder.decode(b.subarray(at, at + len))) as Msg;
          }
          if (opcode === 8) {
            const p = b.subarray(at, at + len);
            throw new ServerClosed(
              p.length >= 2 ? (p[0] << 8) | p[1] : 1005,
              this.#decoder.decode(p.subarray(2)),
            );
          }
          continue; // ping/pong
        }
      }
      await this.#fill();
    }
  }

  /** Closes the TCP connection. */
  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/**
 * Reads a raw connection (HTTP response head, then the server's frames) until a
 * close frame; resolves with its code and reason.
 */
export async function readCloseFrame(conn: Deno.Conn): Promise<{ code: number; reason: string }> {
  const f = await readFrameUntil(conn, (opcode) => opcode === 8);
  return {
    code: (f.payload[0] << 8) | f.payload[1],
    reason: new TextDecoder().decode(f.payload.subarray(2)),
  };
}

/**
 * The server's frames on a raw connection, after its HTTP response head, as they come; the
 * iteration ends when the connection does.
 */
export async function* serverFrames(
  conn: Deno.Conn,
): AsyncGenerator<{ opcode: number; payload: Uint8Array }> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  let headDone = false;
  while (true) {
    let n: number | null = null;
    try {
      n = await conn.read(chunk);
    } catch { /* reset */ }
    if (n === null) return;
    const joined = new Uint8Array(buf.length + n);
    joined.set(buf);
    joined.set(chunk.subarray(0, n), buf.length);
    buf = joined;
    if (!headDone) {
      const end = new TextDecoder("latin1").decode(buf).indexOf("\r\n\r\n");
      if (end < 0) continue;
      buf = buf.slice(end + 4);
      headDone = true;
    }
    while (buf.length >= 2) {
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) [len, at] = [(buf[2] << 8) | buf[3], 4];
      else if (len === 127) {
        [len, at] = [Number(new DataView(buf.buffer, buf.byteOffset + 2).getBigUint64(0)), 10];
      }
      if (buf.length < at + len) break;
      const frame = { opcode: buf[0] & 0x0f, payload: buf.slice(at, at + len) };
      buf = buf.slice(at + len);
      yield frame;
    }
  }
}

/**
 * Reads a raw connection (HTTP response head, then the server's frames) until a
 * frame for which `pred` holds; throws if the connection ends first.
 */
export async function readFrameUntil(
  conn: Deno.Conn,
  pred: (opcode: number, payload: Uint8Array) => boolean,
): Promise<{ opcode: number; payload: Uint8Array }> {
  for await (const f of serverFrames(conn)) if (pred(f.opcode, f.payload)) return f;
  throw new Error("connection ended before the frame looked for");
}

/** A WebSocket peer on a bare TCP connection that sees every frame, pings included. */
export interface RawPeer {
  /** The local port of its connection (how the server's log names it: `127.0.0.1:PORT`). */
  localPort: number;
  /** The opcodes of the frames the server sent, in order (9 ping, 8 close, 1 text…). */
  opcodes: number[];
  /** The text messages it received, parsed. */
  messages: Msg[];
  /** Resolves with the server's close frame (code, reason), or 1006 when the TCP connection ends without one. */
  closed: Promise<{ code: number; reason: string }>;
  /** Sends one masked text frame. */
  send(value: unknown): Promise<void>;
  /** Closes the TCP connection. */
  close(): void;
}

/**
 * Opens `/ws` with a hand-made handshake and reads every frame the server sends. With
 * `answerPings` it answers each ping with a pong, as every WebSocket library does; without, it
 * sends nothing at all after the handshake: the peer an idle timeout is for.
 */
export async function rawPeer(port: number, opts: { answerPings: boolean }): Promise<RawPeer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const sendFrame = async (opcode: number, payload: Uint8Array) => {
    await conn.write(clientFrame(opcode, payload));
  };
  await conn.write(new TextEncoder().encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const peer: RawPeer = {
    localPort: (conn.localAddr as Deno.NetAddr).port,
    opcodes: [],
    messages: [],
    closed: Promise.resolve({ code: 0, reason: "" }),
    send: (value) => sendFrame(0x1, new TextEncoder().encode(JSON.stringify(value))),
    close: () => {
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
  peer.closed = (async () => {
    for await (const { opcode, payload } of serverFrames(conn)) {
      peer.opcodes.push(opcode);
      if (opcode === 1) peer.messages.push(JSON.parse(new TextDecoder().decode(payload)));
      if (opcode === 9 && opts.answerPings) await sendFrame(0xa, payload).catch(() => {});
      if (opcode === 8) {
        peer.close();
        return {
          code: payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005,
          reason: new TextDecoder().decode(payload.subarray(2)),
        };
      }
    }
    return { code: 1006, reason: "connection ended without a close frame" };
  })();
  return peer;
}

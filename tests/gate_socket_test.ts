import assert from "node:assert/strict";
import { ConnectionGate } from "../lib/serve/gate.ts";
import { acceptKey, upgradeWebSocket } from "../lib/serve/gate_socket.ts";
import { waitFor } from "./_util/helpers.ts";
import { clientFrame } from "./_util/ws.ts";

/** What the handler behind the gate saw of its sockets. */
interface Seen {
  sockets: WebSocket[];
  messages: unknown[];
  closes: { code: number; reason: string; wasClean: boolean }[];
  errors: string[];
}

/**
 * A gate in front of a Deno.serve whose handler upgrades with the gate's
 * `upgradeWebSocket` (or Deno's, with `native`) and echoes every message.
 */
async function echoGate(
  fn: (port: number, seen: Seen) => Promise<void>,
  opts: { idleTimeout?: number; native?: boolean } = {},
) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/http.sock`;
  const seen: Seen = { sockets: [], messages: [], closes: [], errors: [] };
  const http = Deno.serve({ path, onListen() {} }, (req) => {
    const up = opts.native ? Deno.upgradeWebSocket : upgradeWebSocket;
    const { socket, response } = up(req, {
      idleTimeout: opts.idleTimeout ?? 30,
      ...(req.headers.get("sec-websocket-protocol") ? { protocol: "ccx" } : {}),
    });
    seen.sockets.push(socket);
    socket.onmessage = (e) => {
      seen.messages.push(e.data);
      if (e.data === "close please") return socket.close(4000, "as asked");
      socket.send(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
    };
    socket.onclose = (e) =>
      seen.closes.push({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    socket.onerror = (e) => seen.errors.push((e as ErrorEvent).message);
    return response;
  });
  const gate = ConnectionGate.listen({ hostname: "127.0.0.1", port: 0, upstreamPath: path });
  try {
    await fn(gate.addr.port, seen);
  } finally {
    await gate.close();
    await http.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const text = (s: string) => new TextEncoder().encode(s);

/** Reads a raw connection: the HTTP head, then frame after frame. */
class Frames {
  #buf = new Uint8Array(0);
  #chunk = new Uint8Array(65536);
  constructor(readonly conn: Deno.Conn) {}

  async #more(): Promise<void> {
    let n: number | null = null;
    try {
      n = await this.conn.read(this.#chunk);
    } catch { /* reset */ }
    if (n === null) throw new Error("the connection ended");
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(this.#chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
  }

  async head(): Promise<string> {
    while (true) {
      const end = new TextDecoder("latin1").decode(this.#buf).indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = new TextDecoder("latin1").decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.slice(end + 4);
        return head;
      }
      await this.#more();
    }
  }

  async next(pred: (op: number) => boolean): Promise<{ op: number; payload: Uint8Array }> {
    while (true) {
      const b = this.#buf;
      if (b.length >= 2) {
        let len = b[1] & 0x7f;
        let at = 2;
        if (len === 126) [len, at] = [(b[2] << 8) | b[3], 4];
        if (b.length >= at + len) {
          const f = { op: b[0] & 0x0f, payload: b.slice(at, at + len) };
          this.#buf = b.slice(at + len);
          if (pred(f.op)) return f;
          continue;
        }
      }
      await this.#more();
    }
  }

  async close(): Promise<{ code: number; reason: string }> {
    const f = await this.next((op) => op === 8);
    return {
      code: (f.payload[0] << 8) | f.payload[1],
      reason: new TextDecoder().decode(f.payload.subarray(2)),
    };
  }
}

async function rawUpgrade(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(text(
    `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  return conn;
}

Deno.test("acceptKey is RFC 6455's example", () => {
  assert.equal(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("the gate's socket: every size and script of text, binary, a subprotocol, both ways", async () => {
  await echoGate(async (port, seen) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, ["ccx"]);
    ws.binaryType = "arraybuffer";
    const got: unknown[] = [];
    ws.onmessage = (e) => got.push(e.data);
    await new Promise((r, j) => {
      ws.onopen = r;
      ws.onerror = j;
    });
    assert.equal(ws.protocol, "ccx");
    // Around each header size, with 1-, 2-, 3- and 4-byte UTF-8 (the header is guessed from
    // the UTF-16 length and moved when the bytes need a longer one), and past one 64 KiB block.
    const sent = [
      "",
      "a",
      "x".repeat(125),
      "é".repeat(63),
      "€".repeat(42),
      "€".repeat(41) + "ab",
      "😀".repeat(40),
      "y".repeat(126),
      "€".repeat(21_845),
      "€".repeat(21_846),
      "z".repeat(65_535),
      "z".repeat(65_536),
      "w".repeat(300_000),
      // Tried in the room left in a big block, does not fit there: a fresh one.
      "€".repeat(250_000),
      "v".repeat(2_000_000), // over a big block: a buffer of its own
    ];
    for (const s of sent) ws.send(s);
    ws.send(new Uint8Array([0, 1, 2, 255]));
    await waitFor(() => got.length === sent.length + 1, "every echo");
    assert.deepEqual(got.slice(0, -1), sent);
    assert.deepEqual([...new Uint8Array(got.at(-1) as ArrayBuffer)], [0, 1, 2, 255]);
    assert.equal(seen.sockets[0].constructor.name, "GateSocket");
    const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
    ws.close(1000, "done");
    const e = await closed;
    assert.equal(e.code, 1000);
    await waitFor(() => seen.closes.length === 1, "the server's close event");
    assert.deepEqual(seen.closes[0], { code: 1000, reason: "done", wasClean: true });
  });
});

Deno.test("the gate's socket: fragments with a ping between them, then the server closes", async () => {
  await echoGate(async (port, seen) => {
    const conn = await rawUpgrade(port);
    const frames = new Frames(conn);
    const answer = await frames.head();
    assert.match(answer, /^HTTP\/1\.1 101 /);
    assert.match(answer, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
    assert.deepEqual(answer.match(/^connection:.*$/gim), ["connection: Upgrade"]);
    await conn.write(clientFrame(1, text("hel"), false));
    await conn.write(clientFrame(9, text("are you there")));
    await conn.write(clientFrame(0, text("lo"), true));
    const pong = await frames.next((op) => op === 10);
    assert.equal(new TextDecoder().decode(pong.payload), "are you there");
    await waitFor(() => seen.messages.length === 1, "the message");
    assert.equal(seen.messages[0], "hello");
    // The server closes: its close frame comes after the echo; the client answers; done.
    await conn.write(clientFrame(1, text("close please")));
    const close = await frames.close();
    assert.deepEqual(close, { code: 4000, reason: "as asked" });
    await conn.write(clientFrame(8, new Uint8Array([0x0f, 0xa0])));
    await waitFor(() => seen.closes.length === 1, "the close event");
    assert.equal(seen.closes[0].code, 4000);
    conn.close();
  });
});

Deno.test("the gate's socket: an unmasked frame is a protocol error (1002)", async () => {
  await echoGate(async (port, seen) => {
    const conn = await rawUpgrade(port);
    await conn.write(clientFrame(1, text("hi"), true, false));
    const frames = new Frames(conn);
    await frames.head();
    assert.equal((await frames.close()).code, 1002);
    await waitFor(() => seen.closes.length === 1, "the close event");
    assert.equal(seen.closes[0].code, 1002);
    conn.close();
  });
});

Deno.test("the gate's socket: a client that answers no ping is closed 1001 after idleTimeout", async () => {
  await echoGate(async (port, seen) => {
    const conn = await rawUpgrade(port);
    const frames = new Frames(conn);
    await frames.head();
    // Never answers: a ping comes after half the timeout, the close after the rest.
    const ping = await frames.next((op) => op === 9);
    assert.equal(ping.payload.length, 0);
    const close = await frames.close();
    assert.deepEqual(close, { code: 1001, reason: "No response from ping frame." });
    await waitFor(() => seen.closes.length === 1, "the close event");
    assert.deepEqual(seen.errors, ["No response from ping frame."]);
    conn.close();
  }, { idleTimeout: 2 });
});

Deno.test("upgradeWebSocket: a request that did not come through the gate gets Deno's socket", async () => {
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`${socket.constructor.name}: ${e.data}`);
    return response;
  });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${http.addr.port}/`);
    const reply = new Promise<string>((r) => ws.onmessage = (e) => r(String(e.data)));
    ws.onopen = () => ws.send("hi");
    assert.equal(await reply, "WebSocket: hi");
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
  } finally {
    await http.shutdown();
  }
});

import assert from "node:assert/strict";
import { FrameQueue, headerLength, putHeader } from "../lib/serve/gate_output.ts";

/** A queue whose writes are kept; `frames()` parses them (server frames: not masked). */
function recorder() {
  const written: Uint8Array[] = [];
  const out = new FrameQueue((b) => Promise.resolve(void written.push(b.slice())), () => {});
  const frames = () => {
    const all = new Uint8Array(written.reduce((n, w) => n + w.length, 0));
    let at = 0;
    for (const w of written) {
      all.set(w, at);
      at += w.length;
    }
    const got: { op: number; payload: Uint8Array }[] = [];
    for (let i = 0; i < all.length;) {
      let len = all[i + 1] & 0x7f;
      let h = 2;
      if (len === 126) [len, h] = [(all[i + 2] << 8) | all[i + 3], 4];
      else if (len === 127) {
        [len, h] = [Number(new DataView(all.buffer, i + 2, 8).getBigUint64(0)), 10];
      }
      got.push({ op: all[i] & 0x0f, payload: all.slice(i + h, i + h + len) });
      i += h + len;
    }
    return got;
  };
  return { out, written, frames };
}

Deno.test("headers: 2, 4 or 10 bytes by payload length", () => {
  assert.deepEqual([125, 126, 65535, 65536].map(headerLength), [2, 4, 4, 10]);
  const b = new Uint8Array(10);
  putHeader(b, 0, 0x1, 70000);
  assert.deepEqual([...b], [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
});

Deno.test("jsonText writes exactly pre + JSON.stringify(text) + post, whatever the text", async () => {
  const { out, frames } = recorder();
  const pre = '{"jsonrpc":"2.0","method":"process.output","params":{"job_id":"é","data":';
  const texts = [
    "",
    "plain line\n",
    'quotes " and backslashes \\ and \t tabs\r\n',
    "\u0000\u0001\u001f\u007f\b\f end",
    "ünïcödé € 😀 \u2028\u2029",
    "\u001b[31mred\u001b[0m\n".repeat(50),
    "x".repeat(70_000), // over a 64 KiB block
    '"'.repeat(40_000), // doubles when escaped
    "\u0001".repeat(30_000), // six times
    "y".repeat(300_000) + "\n",
    "z".repeat(2_000_000), // over a big block: the string way
    "lone \ud800 surrogate", // not well-formed: the string way
  ];
  for (const [i, t] of texts.entries()) out.jsonText(pre, t, `,"seq":${i}}}`);
  await out.written();
  const got = frames();
  assert.equal(got.length, texts.length);
  const dec = new TextDecoder();
  for (const [i, t] of texts.entries()) {
    assert.equal(got[i].op, 1);
    const want = pre + JSON.stringify(t) + `,"seq":${i}}}`;
    const text = dec.decode(got[i].payload);
    assert.ok(text === want, `text ${i}: ${JSON.stringify(text.slice(0, 200))}`);
  }
});

Deno.test("messages queued in one task go out in one write; cut keeps only what is being written", async () => {
  const { out, written, frames } = recorder();
  for (let i = 0; i < 1000; i++) out.text(`line ${i}`);
  assert.equal(written.length, 0, "nothing within the task");
  assert.ok(out.queued > 0);
  await out.written();
  assert.equal(written.length, 1);
  assert.equal(frames().length, 1000);
  assert.equal(out.queued, 0);
  out.text("dropped");
  out.cut();
  await out.written();
  assert.equal(frames().length, 1000);
});

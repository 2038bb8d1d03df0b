import assert from "node:assert/strict";
import { join } from "node:path";
import { colorEnabled, lastToolCall, Progress } from "../lib/stress/progress.ts";
import { Gate, ROOT, STATE_DIR, waitFor } from "./_util/helpers.ts";

/** The progress display's output sink: records everything written to it. */
class Sink {
  readonly #chunks: Uint8Array[] = [];
  writeSync(b: Uint8Array): number {
    this.#chunks.push(b.slice());
    return b.length;
  }
  get text(): string {
    const dec = new TextDecoder();
    return this.#chunks.map((c) => dec.decode(c)).join("");
  }
}

/** A sink that accepts at most 3 bytes per call, like a pipe doing short writes. */
class ShortWriteSink extends Sink {
  override writeSync(b: Uint8Array): number {
    return super.writeSync(b.subarray(0, 3));
  }
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;
// deno-lint-ignore no-control-regex
const SGR = /\x1b\[[0-9;]*m/;
/** Carriage return + erase line: how the live line is rewritten. */
const CLEAR = "\r\x1b[2K";

/**
 * Run a Progress on a terminal-like sink in a separate Deno process whose environment has
 * NO_COLOR set to `noColor` (undefined = unset), and return what it wrote plus `colorEnabled(true)`.
 * A real process keeps the environment change away from tests running in parallel.
 */
async function inChild(noColor: string | undefined): Promise<{ text: string; color: boolean }> {
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  if (noColor !== undefined) env.NO_COLOR = noColor;
  const lib = new URL("../lib/stress/progress.ts", import.meta.url).href;
  const code = `
    import { colorEnabled, Progress } from ${JSON.stringify(lib)};
    let text = "";
    const dec = new TextDecoder();
    const out = { writeSync: (b) => { text += dec.decode(b); return b.length; } };
    const p = new Progress({ total: 1, out, isTerminal: true, columns: 120 });
    p.start("simple_1");
    p.finish({ id: "simple_1", status: "failed", durationS: 1, reason: "nope" });
    p.stop();
    console.log(JSON.stringify({ text, color: colorEnabled(true) }));
  `;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
  return JSON.parse(new TextDecoder().decode(res.stdout));
}

Deno.test("Progress off a terminal prints one plain line per finished task", () => {
  const out = new Sink();
  const p = new Progress({ total: 3, out, isTerminal: false });
  p.start("simple_1");
  p.start("simple_2");
  p.start("simple_3");
  assert.equal(out.text, "", "starting a task prints nothing in a log");
  p.finish({ id: "simple_1", status: "passed", durationS: 0.42, reason: "all patterns found" });
  p.finish({ id: "simple_2", status: "failed", durationS: 1.2, reason: 'missing pattern "4"' });
  p.finish({ id: "simple_3", status: "error", durationS: 65, reason: "could not connect" });
  p.stop();
  assert.equal(
    out.text,
    "[1/3] PASS simple_1 (0.4s)\n" +
      '[2/3] FAIL simple_2 (1.2s) — missing pattern "4"\n' +
      "[3/3] ERROR simple_3 (1m 05.0s) — could not connect\n",
  );
});

Deno.test("Progress names the fleet worker of a task, in the live line and its line", () => {
  const out = new Sink();
  const p = new Progress({ total: 2, out, isTerminal: true, columns: 200, color: false });
  p.start("simple_1", "box1");
  assert.match(out.text, /running \(1\): simple_1@box1/);
  p.finish({ id: "simple_1", status: "passed", durationS: 0.5, reason: "ok", worker: "box1" });
  p.stop();
  assert.match(out.text, /\[1\/2\] PASS simple_1 \(0\.5s\) on box1\n/);
});

Deno.test("Progress off a terminal never writes control characters, even from task data", () => {
  const out = new Sink();
  const p = new Progress({ total: 1, out, isTerminal: false });
  p.note("starting\r\nsecond \x1b[31mline\x1b[0m\x07");
  p.finish({
    id: "weird\x1b[2Kid",
    status: "failed",
    durationS: 1,
    reason: "\x1b[31mboom\x1b[0m\nstack:\n\tat x",
  });
  p.stop();
  assert.doesNotMatch(out.text, CONTROL);
  assert.equal(
    out.text,
    "starting\nsecond line\n[1/1] FAIL weirdid (1.0s) — boom stack: at x\n",
  );
});

Deno.test("Progress never colours by default off a terminal", () => {
  assert.equal(colorEnabled(false), false);
  const out = new Sink();
  const p = new Progress({ total: 1, out, isTerminal: false });
  p.finish({ id: "a", status: "failed", durationS: 1, reason: "x" });
  p.stop();
  assert.doesNotMatch(out.text, SGR);
});

Deno.test("Progress on a terminal respects NO_COLOR but still redraws in place", async () => {
  const [unset, empty, set] = await Promise.all([inChild(undefined), inChild(""), inChild("1")]);
  // NO_COLOR unset or empty: colour.
  assert.equal(unset.color, true);
  assert.ok(unset.text.includes("\x1b[31mFAIL\x1b[0m simple_1"));
  assert.equal(empty.color, true);
  assert.match(empty.text, SGR);
  // NO_COLOR=1: no colour, same words, still rewritten in place.
  assert.equal(set.color, false);
  assert.doesNotMatch(set.text, SGR);
  assert.ok(set.text.includes("\r\x1b[2K"));
  assert.ok(set.text.includes("FAIL simple_1 (1.0s) — nope"));
});

Deno.test("Progress honours an explicit color option over the default", () => {
  const out = new Sink();
  const p = new Progress({ total: 1, out, isTerminal: false, color: true });
  p.finish({ id: "a", status: "passed", durationS: 1, reason: "" });
  p.stop();
  assert.equal(out.text, "[1/1] \x1b[32mPASS\x1b[0m a (1.0s)\n");
  assert.ok(!out.text.includes("\r"));
});

Deno.test("Progress on a terminal keeps one live line and prints finished tasks above it", () => {
  const out = new Sink();
  const p = new Progress({ total: 3, out, isTerminal: true, color: false, columns: 200 });
  p.start("simple_1");
  // Every write starts by returning to column 0 and erasing the line; split the frames on that.
  const frames = () => out.text.split(CLEAR);
  assert.deepEqual(frames().slice(0, 1), [""], "the first write already starts with CLEAR");
  assert.match(
    frames().at(-1)!,
    /^\[0\/3\] 0 passed, 0 failed, 0 errors · \d+s · running \(1\): simple_1 \d+s$/,
  );
  p.start("simple_2");
  p.finish({ id: "simple_1", status: "passed", durationS: 0.4, reason: "" });
  // The finished line is permanent (ends with a newline); the live line after it is not.
  assert.match(
    frames().at(-1)!,
    /^\[1\/3\] PASS simple_1 \(0\.4s\)\n\[1\/3\] 1 passed, 0 failed, 0 errors · \d+s · running \(1\): simple_2 \d+s$/,
  );
  p.note("rate limited, waiting 30s");
  assert.match(
    frames().at(-1)!,
    /^rate limited, waiting 30s\n\[1\/3\] 1 passed, .* running \(1\): simple_2 \d+s$/,
  );
  p.stop();
  assert.ok(out.text.endsWith("\r\x1b[2K"), "stop() erases the live line");
  assert.doesNotMatch(out.text, SGR);
  p.stop(); // twice is harmless
});

Deno.test("Progress's live line shows each running task's time, longest first, and the processes", () => {
  const out = new Sink();
  let asked = 0;
  const p = new Progress({
    total: 3,
    out,
    isTerminal: true,
    color: false,
    columns: 300,
    processes: () => (asked++, 7),
  });
  p.start("hung_one");
  p.start("fresh", "w1");
  p.note("a note redraws the live line");
  const live = out.text.split(CLEAR).at(-1)!.split("\n").at(-1)!;
  assert.match(live, /· running \(2, 7 processes\): hung_one \d+s, fresh@w1 \d+s$/);
  assert.equal(asked, 1, "counted at most once a second, not on every redraw");
  p.stop();
  // Without a way to count (tasks on another host), only the number of tasks.
  const out2 = new Sink();
  const q = new Progress({ total: 1, out: out2, isTerminal: true, color: false, columns: 300 });
  q.start("x");
  assert.match(out2.text.split(CLEAR).at(-1)!, /· running \(1\): x \d+s$/);
  q.stop();
});

Deno.test("Progress cuts the live line to the terminal width, and only the live line", () => {
  const out = new Sink();
  const p = new Progress({ total: 50, out, isTerminal: true, color: false, columns: 40 });
  for (let i = 0; i < 10; i++) p.start(`a_rather_long_task_id_${i}`);
  p.finish({ id: "a_rather_long_task_id_0", status: "passed", durationS: 1, reason: "" });
  p.stop();
  // Each write is CLEAR, then any permanent lines (ending in a newline), then the live line.
  const writes = out.text.split(CLEAR).slice(1);
  const live = writes.map((w) => w.split("\n").at(-1)!).filter((l) => l !== "");
  // Ten running ids make every live line far wider than 40 columns: each must have been cut.
  assert.ok(live.length >= 1, `no live line drawn: ${JSON.stringify(out.text)}`);
  for (const l of live) {
    assert.ok(Array.from(l).length <= 39, `wider than 39 columns: ${l}`);
    assert.ok(l.endsWith("…"), `not cut: ${l}`);
    assert.match(l, /^\[[01]\/50\] /);
  }
  // The permanent line is longer than the terminal and kept whole.
  assert.ok(out.text.includes("[1/50] PASS a_rather_long_task_id_0 (1.0s)\n"));
});

Deno.test("Progress writes through short writes of a synchronous sink", () => {
  const out = new ShortWriteSink();
  const p = new Progress({ total: 1, out, isTerminal: false });
  p.finish({ id: "simple_1", status: "passed", durationS: 2, reason: "" });
  p.stop();
  assert.equal(out.text, "[1/1] PASS simple_1 (2.0s)\n");
});

Deno.test("Progress accepts a WritableStream as its sink", async () => {
  const chunks: Uint8Array[] = [];
  const stream = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
  const p = new Progress({ total: 2, out: stream, isTerminal: false });
  p.finish({ id: "a", status: "passed", durationS: 1, reason: "" });
  p.finish({ id: "b", status: "error", durationS: 1, reason: "spawn failed" });
  p.stop();
  // stop() releases the stream once queued writes are done; then it can be closed.
  await new Promise((r) => setTimeout(r, 0));
  await stream.close();
  const text = chunks.map((c) => new TextDecoder().decode(c)).join("");
  assert.equal(text, "[1/2] PASS a (1.0s)\n[2/2] ERROR b (1.0s) — spawn failed\n");
});

Deno.test("Progress keeps going when its sink breaks", () => {
  let calls = 0;
  const out = {
    writeSync(_b: Uint8Array): number {
      calls++;
      throw new Deno.errors.BrokenPipe("closed");
    },
  };
  const p = new Progress({ total: 2, out, isTerminal: false });
  p.finish({ id: "a", status: "passed", durationS: 1, reason: "" });
  p.finish({ id: "b", status: "passed", durationS: 1, reason: "" });
  p.stop();
  assert.equal(calls, 1);
});

/** One stream-json line of the model calling a tool. */
const TOOL_LINE = JSON.stringify({
  type: "assistant",
  message: { content: [{ type: "tool_use", id: "t1", name: "Bash", input: { command: "make" } }] },
});

Deno.test("lastToolCall() names the tool and its input of a stream-json tool call, nothing else", () => {
  assert.equal(lastToolCall(TOOL_LINE), 'Bash {"command":"make"}');
  assert.equal(lastToolCall('{"type":"user","message":{"content":[]}}'), undefined);
  assert.equal(lastToolCall("tool_use is a word"), undefined);
});

Deno.test("Progress off a terminal prints a still-running line per running task, with its output and last tool call", async () => {
  const out = new Sink();
  const p = new Progress({ total: 2, out, isTerminal: false, stillRunningEveryS: 0.05 });
  try {
    p.start("slow");
    p.start("quiet");
    p.output("slow", "stdout", `{"type":"system","subtype":"init"}\n${TOOL_LINE.slice(0, 20)}`);
    p.output("slow", "stdout", `${TOOL_LINE.slice(20)}\n`);
    await waitFor(() => /still running: quiet/.test(out.text), "a still-running line", 10_000);
    assert.match(
      out.text,
      /… still running: slow for \d+s, \d+ B of output, last tool call Bash \{"command":"make"\}\n/,
    );
    assert.match(out.text, /… still running: quiet for \d+s, no output yet\n/);
    p.finish({ id: "slow", status: "passed", durationS: 1, reason: "" });
    p.finish({ id: "quiet", status: "error", durationS: 1, reason: "x" });
    const n = out.text.length;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(out.text.length, n, "nothing is still running: no more lines");
  } finally {
    p.stop();
  }
});

Deno.test("Progress's live line says 1 error, not 1 errors", () => {
  const out = new Sink();
  const p = new Progress({ total: 2, out, isTerminal: true, columns: 200, color: false });
  p.finish({ id: "e", status: "error", durationS: 1, reason: "x" });
  p.stop();
  assert.match(out.text, /0 passed, 0 failed, 1 error ·/);
});

Deno.test("ccx stress in a CI log (not a terminal) names each running task every --progress-every seconds", async () => {
  using gate = new Gate();
  const dir = await Deno.makeTempDir({ prefix: "ccx_still_running_" });
  try {
    const suite = join(dir, "suite.json");
    const tool = TOOL_LINE.replaceAll("'", "");
    await Deno.writeTextFile(
      suite,
      JSON.stringify({
        tests: [{
          id: "slow",
          command: `echo '${tool}'; ${gate.wait}; echo done`,
          expected_patterns: ["done"],
        }],
      }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}main.ts`,
        "stress",
        suite,
        "--progress-every",
        "0.2",
        "--no-history",
        "--out",
        join(dir, "out"),
      ],
      cwd: dir,
      env: { NO_COLOR: "1", CCX_STATE_DIR: STATE_DIR },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let err = "";
    const pump = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (s) => void (err += s) }),
    );
    const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      await waitFor(() => /still running: slow/.test(err), "a still-running line", 60_000);
    } finally {
      gate.open();
    }
    const status = await child.status;
    await pump;
    let text = "";
    for (let r = await stdout.read(); !r.done; r = await stdout.read()) text += r.value;
    assert.equal(status.code, 0, err + text);
    assert.match(err, /… still running: slow for \d+s, \d+ B of output, last tool call Bash /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { cli, type ServeProcess, serveProcess, waitFor } from "./_util/helpers.ts";
import { type Msg, RawSession, ServerClosed, SlowReader, stalledClient } from "./_util/ws.ts";

/** `seq` with more output than any test reads: it is still writing when the server is stopped. */
const ENDLESS = "seq 1 30000000";

interface LogLine {
  ts: string;
  level: string;
  msg: string;
  event?: string;
  [k: string]: unknown;
}

/** `ccx serve` with a JSON log, and its log lines as they come. */
async function serveLogged(
  extra: string[],
): Promise<ServeProcess & { log: Promise<LogLine[]> }> {
  const srv = await serveProcess(["--port", "0", "--log-format", "json", ...extra], undefined, {
    bare: true,
  });
  const log = srv.stderrEnded.then((t) =>
    t.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as LogLine)
  );
  return { ...srv, log };
}

/** The one log line of `event`. */
function logged(lines: LogLine[], event: string): LogLine {
  const found = lines.filter((l) => l.event === event);
  assert.equal(found.length, 1, `one ${event} line in ${JSON.stringify(lines)}`);
  return found[0];
}

/**
 * Milliseconds from the signal to the end of the shutdown, by the server's own log (its
 * timestamps, so no Deno start-up is counted), checked against the elapsed_ms it reports.
 */
function shutdownMs(lines: LogLine[]): number {
  const signal = Date.parse(logged(lines, "shutdown").ts);
  const done = logged(lines, "shutdown_done");
  const ms = Date.parse(done.ts) - signal;
  assert.ok(Number(done.elapsed_ms) <= ms + 1, `${done.elapsed_ms} vs ${ms}`);
  return ms;
}

/**
 * Checks that `text` is `seq 1 N` cut anywhere: every whole line is the next number, and a last
 * partial line is the start of the next one. Returns the number of whole lines.
 */
function assertSeqPrefix(text: string): number {
  const lines = text.split("\n");
  const partial = lines.pop()!;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== String(i + 1)) {
      assert.fail(`line ${i + 1} is ${JSON.stringify(lines[i])}: output has a gap`);
    }
  }
  assert.ok(String(lines.length + 1).startsWith(partial), `last piece ${JSON.stringify(partial)}`);
  return lines.length;
}

/** Where the one message of `method` for `jobId` is in `msgs`; fails unless there is one. */
function indexOfOne(msgs: Msg[], method: string, jobId: string): number {
  const at = msgs.flatMap((m, i) => m.method === method && m.params?.job_id === jobId ? [i] : []);
  assert.equal(at.length, 1, `one ${method}`);
  return at[0];
}

/** Checks the end of a killed job as a client received it: all output, completed, exit, in order. */
function assertDelivered(msgs: Msg[], jobId: string): void {
  const outputs = msgs.filter((m) => m.method === "process.output" && m.params?.job_id === jobId);
  const text = outputs.map((m) => String(m.params?.data)).join("");
  const whole = assertSeqPrefix(text);
  assert.ok(whole > 1000, `only ${whole} lines before the kill`);
  outputs.forEach((m, i) => assert.equal(m.params?.seq, i, "seq counts without a gap"));
  const completed = indexOfOne(msgs, "process.completed", jobId);
  const exit = indexOfOne(msgs, "process.exit", jobId);
  const lastOutput = msgs.lastIndexOf(outputs[outputs.length - 1]);
  assert.ok(lastOutput < completed && completed < exit, "output, then completed, then exit");
  const c = msgs[completed].params!;
  assert.equal(c.status, "killed");
  assert.equal(c.stdout_bytes, new TextEncoder().encode(text).length, "every byte read arrived");
}

Deno.test("SIGTERM mid-stream: a line-mode client gets every line, completed, exit, then 1001", async () => {
  const srv = await serveLogged(["--grace-ms", "500", "--drain-s", "5"]);
  try {
    const s = await RawSession.open(srv.url);
    const r = await s.call(1, "execute", { command: ENDLESS });
    const jobId = String(r.result?.job_id);
    await waitFor(() => s.messages.length > 5000, "output to flow");
    srv.child.kill("SIGTERM");
    const [status, closed, lines] = await Promise.all([srv.child.status, s.closed, srv.log]);
    assert.equal(status.code, 0);
    assert.equal(closed.code, 1001);
    assert.equal(closed.reason, "server shutting down");
    assertDelivered(s.messages, jobId);
    const drained = logged(lines, "shutdown_drained");
    assert.deepEqual([drained.delivered, drained.dropped], [1, 0]);
    assert.equal(logged(lines, "shutdown_jobs_ended").jobs, 1);
    const ms = shutdownMs(lines);
    assert.ok(ms <= 500 + 5000 + 1000, `shutdown took ${ms} ms by the server's log`);
  } finally {
    await srv.stop("SIGKILL");
  }
});

Deno.test("SIGTERM: a chunk-mode client reading one message per 5 ms still gets all of it, then 1001", async () => {
  const srv = await serveLogged(["--grace-ms", "500", "--drain-s", "5"]);
  const c = await SlowReader.open(srv.port);
  try {
    const msgs: Msg[] = [await c.next()]; // connected
    await c.send({
      jsonrpc: "2.0",
      id: 1,
      method: "execute",
      params: { command: ENDLESS, output_mode: "chunks" },
    });
    let jobId = "";
    while (msgs.filter((m) => m.method === "process.output").length < 5) {
      const m = await c.next();
      msgs.push(m);
      if (m.id === 1) jobId = String(m.result?.job_id);
    }
    srv.child.kill("SIGTERM");
    let closedWith: ServerClosed | undefined;
    while (!closedWith) {
      await new Promise((r) => setTimeout(r, 5));
      try {
        msgs.push(await c.next());
      } catch (e) {
        if (!(e instanceof ServerClosed)) throw e;
        closedWith = e;
        await c.closeReply(e.code);
      }
    }
    assert.equal(closedWith.code, 1001);
    assert.equal(closedWith.reason, "server shutting down");
    assertDelivered(msgs, jobId);
    const [status, lines] = await Promise.all([srv.child.status, srv.log]);
    assert.equal(status.code, 0);
    const drained = logged(lines, "shutdown_drained");
    assert.deepEqual([drained.delivered, drained.dropped], [1, 0]);
    const ms = shutdownMs(lines);
    assert.ok(ms <= 500 + 5000 + 1000, `shutdown took ${ms} ms by the server's log`);
  } finally {
    c.close();
    await srv.stop("SIGKILL");
  }
});

Deno.test("SIGTERM: a client that reads nothing is dropped at the drain deadline and the log says so; the others are served", async () => {
  const srv = await serveLogged(["--grace-ms", "200", "--drain-s", "1"]);
  let stalled: Deno.TcpConn | undefined;
  try {
    const reader = await RawSession.open(srv.url);
    const r = await reader.call(1, "execute", { command: "echo ready; sleep 100" });
    const jobId = String(r.result?.job_id);
    await waitFor(() => reader.output(jobId) === "ready\n", "the reading client's job");
    stalled = await stalledClient(
      srv.port,
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "execute", params: { command: ENDLESS } }),
    );
    // Its job runs (soon blocked on the unread socket) once /health counts two.
    const end = Date.now() + 10_000;
    while ((await (await fetch(`http://127.0.0.1:${srv.port}/health`)).json()).running_jobs < 2) {
      if (Date.now() > end) assert.fail("the unread client's job did not start");
      await new Promise((r) => setTimeout(r, 20));
    }
    srv.child.kill("SIGTERM");
    const [status, closed, lines] = await Promise.all([srv.child.status, reader.closed, srv.log]);
    assert.equal(status.code, 0);
    assert.equal(closed.code, 1001);
    assert.equal(reader.forJob(jobId, "process.completed")[0]?.params?.status, "killed");
    assert.equal(reader.forJob(jobId, "process.exit").length, 1);
    const drop = logged(lines, "shutdown_client_dropped");
    assert.equal(drop.level, "warn");
    assert.equal(drop.close_code, 1001);
    assert.match(drop.msg, /closed 1001: server shut down: output not read by the drain deadline/);
    // What was still awaited depends on how much the kernel took: it is named either way.
    assert.ok(
      ["completions", "queue", "close_answer"].includes(String(drop.waiting_for)),
      JSON.stringify(drop),
    );
    assert.equal(typeof drop.queued_bytes, "number");
    const drained = logged(lines, "shutdown_drained");
    assert.deepEqual([drained.delivered, drained.dropped], [1, 1]);
    const ms = shutdownMs(lines);
    assert.ok(ms >= 200 + 1000 - 50, `the drop came before the deadline: ${ms} ms`);
    assert.ok(ms <= 200 + 1000 + 1000, `shutdown took ${ms} ms by the server's log`);
  } finally {
    stalled?.close();
    await srv.stop("SIGKILL");
  }
});

Deno.test("--drain-s and CCX_DRAIN_S take seconds from 0; anything else is refused by name", async () => {
  const bad = await cli(["serve", "--port", "0", "--drain-s=-1"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--drain-s: must be at least 0, got -1/);
  const env = await cli(["serve", "--port", "0"], { env: { CCX_DRAIN_S: "soon" } });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /CCX_DRAIN_S: expected a number, got "soon"/);
  const help = await cli(["serve", "--help"]);
  assert.match(help.stdout, /--drain-s S/);
});

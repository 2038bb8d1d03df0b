/**
 * Tests for lib/serve/routes.ts: what the upgrade of `/ws` sets up, here the idle timeout
 * (`--idle-timeout-s`) that Deno's WebSocket applies to each session, measured by the server's
 * own log.
 * @module
 */

import assert from "node:assert/strict";
import { IDLE_DROP_REASON } from "../lib/serve/routes.ts";
import { cli, processesInGroup, serveProcess, waitFor } from "./_util/helpers.ts";
import { rawPeer } from "./_util/ws.ts";

type LogLine = Record<string, unknown> & { ts: string; msg: string; event?: string };

/** The JSON lines of a server's log (`--log-format json`). */
function jsonLines(text: string): LogLine[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as LogLine);
}

/** `p`, or an error naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("--idle-timeout-s: a peer that sends nothing, not even a pong, is dropped after it by the server's clock; one that answers pings stays", async () => {
  const idleS = 2;
  const srv = await serveProcess(["--idle-timeout-s", String(idleS), "--log-format", "json"]);
  const silent = await rawPeer(srv.port, { answerPings: false });
  const answering = await rawPeer(srv.port, { answerPings: true });
  try {
    // The silent peer gets Deno's ping (after half the timeout), answers nothing, and is closed
    // with 1001 and Deno's reason.
    const closed = await within(silent.closed, 20_000, "the silent peer to be closed");
    assert.deepEqual(closed, { code: 1001, reason: IDLE_DROP_REASON });
    assert.ok(silent.opcodes.includes(9), `a ping came first: opcodes ${silent.opcodes}`);
    assert.ok(silent.opcodes.indexOf(9) < silent.opcodes.indexOf(8), `${silent.opcodes}`);
    await srv.waitStderr(/"event":"session_idle_drop"/);
    const lines = jsonLines(srv.stderr());
    const opened = lines.find((l) =>
      l.event === "session_open" && l.msg.includes(`127.0.0.1:${silent.localPort} `)
    );
    assert.ok(opened, `the silent peer's session_open: ${srv.stderr()}`);
    const drops = lines.filter((l) => l.event === "session_idle_drop");
    assert.equal(drops.length, 1, JSON.stringify(drops));
    const [drop] = drops;
    assert.equal(drop.session, opened.session);
    assert.equal(drop.level, "warn");
    assert.equal(drop.idle_timeout_s, idleS);
    assert.equal(drop.running_jobs, 0);
    assert.match(
      drop.msg,
      new RegExp(`from 127\\.0\\.0\\.1:${silent.localPort} dropped: no frame`),
    );
    // From the upgrade to the drop, by the server's own timestamps (no Deno start in it): the
    // timeout, give or take the log's millisecond rounding; the test allows 1.5 s late.
    const ms = Date.parse(drop.ts) - Date.parse(opened.ts);
    assert.ok(ms >= idleS * 1000 - 20, `dropped ${ms} ms after the upgrade: before the timeout`);
    assert.ok(ms <= idleS * 1000 + 1500, `dropped ${ms} ms after the upgrade`);

    // The peer that answers pings sends nothing else either, and outlives several timeouts:
    // each pong counts as a frame from it. Four pings take two timeouts at least.
    await waitFor(() => answering.opcodes.filter((o) => o === 9).length >= 4, "four pings", 20_000);
    assert.ok(!answering.opcodes.includes(8), `still open: opcodes ${answering.opcodes}`);
    await answering.send({ jsonrpc: "2.0", id: 1, method: "ping" });
    await waitFor(() => answering.messages.some((m) => m.id === 1), "the answer to ping");
    assert.equal(answering.messages.find((m) => m.id === 1)?.result?.pong, true);
    assert.equal(jsonLines(srv.stderr()).filter((l) => l.event === "session_idle_drop").length, 1);
  } finally {
    silent.close();
    answering.close();
    await srv.stop();
  }
});

Deno.test("--idle-timeout-s and CCX_IDLE_TIMEOUT_S refuse what is not 0 or more seconds, naming themselves", async () => {
  const flag = await cli(["serve", "--port", "0", "--idle-timeout-s=-1"]);
  assert.equal(flag.code, 2, flag.stderr);
  assert.match(flag.stderr, /--idle-timeout-s/);
  const env = await cli(["serve", "--port", "0"], { env: { CCX_IDLE_TIMEOUT_S: "soon" } });
  assert.equal(env.code, 2, env.stderr);
  assert.match(env.stderr, /CCX_IDLE_TIMEOUT_S: expected a number, got "soon"/);
});

Deno.test("--idle-timeout-s counts only frames from the peer: heartbeats to a silent peer with a running job do not keep it, and its job's group ends", async () => {
  const srv = await serveProcess([
    "--idle-timeout-s",
    "2",
    "--heartbeat-s",
    "0.5",
    "--log-format",
    "json",
  ]);
  const peer = await rawPeer(srv.port, { answerPings: false });
  try {
    await peer.send({ jsonrpc: "2.0", id: 1, method: "execute", params: { command: "sleep 60" } });
    await waitFor(() => peer.messages.some((m) => m.id === 1), "the job to start");
    const pgid = Number(peer.messages.find((m) => m.id === 1)?.result?.pgid);
    assert.ok(pgid > 0, JSON.stringify(peer.messages));
    const closed = await within(peer.closed, 20_000, "the silent peer to be closed");
    assert.deepEqual(closed, { code: 1001, reason: IDLE_DROP_REASON });
    const heartbeats = peer.messages.filter((m) => m.method === "heartbeat").length;
    assert.ok(heartbeats >= 2, `${heartbeats} heartbeats went to it before the drop`);
    await srv.waitStderr(/"event":"session_idle_drop"/);
    const [drop] = jsonLines(srv.stderr()).filter((l) => l.event === "session_idle_drop");
    assert.equal(drop.running_jobs, 1);
    assert.match(drop.msg, /; its 1 running job\(s\) are canceled$/);
    await waitFor(() => processesInGroup(pgid).length === 0, "the job's group to end");
  } finally {
    peer.close();
    await srv.stop();
  }
});

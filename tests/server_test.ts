import assert from "node:assert/strict";
import { CcxServer } from "../lib/serve/server.ts";
import { tokenMatches } from "../lib/serve/routes.ts";
import { isLoopback, ServerConfigError } from "../lib/serve/options.ts";
import { closeFrame } from "../lib/serve/gate.ts";
import {
  Gate,
  groupPaused,
  newTag,
  pidsMatching,
  processesInGroup,
  ROOT,
  serveProcess,
  waitFor,
  waitForPause,
  waitForResume,
  withServer,
} from "./_util/helpers.ts";
import { handshakeStatus, type Msg, RawSession, SlowReader, stalledClient } from "./_util/ws.ts";

const STUBBORN = `trap '' TERM; sh -c "trap '' TERM; sleep 1000" & echo ready; sleep 1000; wait`;

async function started(s: RawSession, id: number | string, params: Record<string, unknown>) {
  const r = await s.call(id, "execute", params);
  assert.ok(r.result, `execute failed: ${JSON.stringify(r.error)}`);
  return r.result as { status: string; job_id: string; pid: number; pgid: number };
}

Deno.test("on connect the server sends `connected` with session, version, capabilities", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const m = await s.next((m) => m.method === "connected");
    assert.equal(typeof m.params?.session_id, "string");
    assert.equal(m.params?.version, "0.1.0");
    assert.ok((m.params?.capabilities as { methods: string[] }).methods.includes("execute"));
    await s.close();
  });
});

Deno.test("GET /health answers the documented fields; unknown paths are 404", async () => {
  await withServer({ maxSessions: 7 }, async (server) => {
    const s = await RawSession.open(server.url);
    await s.next((m) => m.method === "connected");
    const h = await (await fetch(`${server.httpUrl}/health`)).json();
    assert.deepEqual(Object.keys(h).sort(), [
      "accept_errors",
      "active_sessions",
      "dropped_connections",
      "frame_violations",
      "max_connections",
      "max_sessions",
      "open_connections",
      "refused_connections",
      "running_jobs",
      "status",
      "uptime_seconds",
      "version",
    ]);
    assert.equal(h.status, "ok");
    assert.equal(h.active_sessions, 1);
    assert.equal(h.max_sessions, 7);
    assert.equal(h.running_jobs, 0);
    const nf = await fetch(`${server.httpUrl}/nope`);
    assert.equal(nf.status, 404);
    await nf.body?.cancel();
    await s.close();
  });
});

Deno.test("execute answers started, then process.started, output, completed and exit last", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(`${server.httpUrl.replace("http", "ws")}/ws/mcp`);
    const r = await started(s, "a", { command: "echo hello; echo oops >&2; exit 3" });
    assert.equal(r.status, "started");
    assert.equal(r.pgid, r.pid);
    const exit = await s.next((m) => m.method === "process.exit" && m.params?.job_id === r.job_id);
    const done = await s.completed(r.job_id);
    const mine = s.messages.filter((m) => m.params?.job_id === r.job_id);
    assert.deepEqual(mine[0].params, {
      job_id: r.job_id,
      status: "running",
      pid: r.pid,
      pgid: r.pgid,
      command: "echo hello; echo oops >&2; exit 3",
    });
    assert.equal(mine[0].method, "process.started");
    // The seed's process.exit comes right after process.completed, and last.
    assert.equal(mine.at(-2), done);
    assert.equal(mine.at(-1), exit);
    assert.deepEqual(exit.params, { job_id: r.job_id, exitCode: 3, exit_code: 3 });
    assert.equal(s.output(r.job_id), "hello\n");
    assert.equal(s.output(r.job_id, "stderr"), "oops\n");
    const p = done.params!;
    assert.equal(p.status, "failed");
    assert.equal(p.exit_code, 3);
    assert.equal(p.pid, r.pid);
    assert.equal(p.pgid, r.pgid);
    assert.equal(p.signal, null);
    assert.equal(p.stdout_bytes, 6);
    assert.equal(p.stderr_bytes, 5);
    assert.equal(typeof p.execution_time, "number");
    await s.close();
  });
});

Deno.test("the request id is echoed with its type unchanged", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    assert.equal((await s.call("x-1", "ping")).id, "x-1");
    assert.equal((await s.call(0, "ping")).id, 0);
    const pong = await s.call(2.5, "ping");
    assert.equal(pong.id, 2.5);
    assert.equal(pong.result?.pong, true);
    await s.close();
  });
});

Deno.test("ids are echoed exactly as sent: past 2^53, -0, 1.50", async () => {
  await withServer({}, async (server) => {
    const ws = new WebSocket(server.url);
    const texts: string[] = [];
    ws.onmessage = (ev) => texts.push(String(ev.data));
    await new Promise((r) => ws.onopen = r);
    const ids = ["123456789012345678901234567890", "-0", "1.50", "9007199254740993", "7"];
    ws.send(`[${ids.map((id) => `{"jsonrpc":"2.0","id":${id},"method":"ping"}`).join(",")}]`);
    ws.send(`{"jsonrpc":"2.0","id":-0,"method":"nope"}`);
    await waitFor(() => texts.length >= 3, "the replies");
    const batch = texts.find((t) => t.startsWith("["))!;
    for (const id of ids) assert.ok(batch.includes(`"id":${id},`), `${id} in ${batch}`);
    assert.match(texts.find((t) => t.includes("-32601"))!, /"id":-0,/);
    ws.close();
    await new Promise((r) => ws.onclose = r);
  });
});

Deno.test("seq counts per job and output is in order", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, { command: "for i in 1 2 3; do echo $i; sleep 0.05; done" });
    await s.completed(r.job_id);
    const seqs = s.forJob(r.job_id, "process.output").map((m) => m.params?.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i));
    assert.equal(s.output(r.job_id), "1\n2\n3\n");
    await s.close();
  });
});

Deno.test("seq counts across stdout and stderr together: one sequence per job, no gap", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    // Each line waits until the previous one was delivered, so the order is known.
    const r = await started(s, 1, {
      command: "echo out-1; sleep 0.05; echo err-1 >&2; sleep 0.05; echo out-2; sleep 0.05; " +
        "echo err-2 >&2",
    });
    await s.completed(r.job_id);
    const out = s.forJob(r.job_id, "process.output");
    assert.deepEqual(out.map((m) => m.params?.seq), out.map((_, i) => i), "0..n-1 over both");
    assert.deepEqual(new Set(out.map((m) => m.params?.type)), new Set(["stdout", "stderr"]));
    assert.equal(s.output(r.job_id), "out-1\nout-2\n");
    assert.equal(s.output(r.job_id, "stderr"), "err-1\nerr-2\n");
    await s.close();
  });
});

Deno.test("a missing program under `command` is exit 127 from /bin/sh, status failed, not a start error", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, { command: "ccx-no-such-program-here --flag" });
    const done = await s.completed(r.job_id);
    assert.equal(done.params?.exit_code, 127);
    assert.equal(done.params?.status, "failed");
    assert.match(
      s.output(r.job_id, "stderr"),
      /ccx-no-such-program-here: (not found|No such file)/,
    );
    assert.equal(s.forJob(r.job_id, "process.error").length, 0);
    await s.close();
  });
});

Deno.test("argv with quotes, $ and backticks reaches the program verbatim", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const args = [`"double" 'single'`, "$(echo pwned)", "`echo pwned`", "$PATH", "a\\b"];
    const r = await started(s, 1, { argv: ["printf", "%s\\n", ...args] });
    await s.completed(r.job_id);
    assert.equal(s.output(r.job_id), args.map((a) => a + "\n").join(""));
    await s.close();
  });
});

Deno.test("cwd, env and stdin params reach the job", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, {
      command: 'pwd; echo "$GREETING"; cat',
      cwd: "/tmp",
      env: { GREETING: "hi there" },
      stdin: "from stdin\n",
    });
    await s.completed(r.job_id);
    assert.equal(s.output(r.job_id), "/tmp\nhi there\nfrom stdin\n");
    await s.close();
  });
});

Deno.test("a NUL in an env value, argv or command is -32602 naming that field", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const cases: [Record<string, unknown>, string][] = [
      [{ command: "true", env: { A: "x\0y" } }, "env.A"],
      [{ argv: ["echo", "a\0b"] }, "argv[1]"],
      [{ command: "echo \0" }, "command"],
    ];
    let id = 1;
    for (const [params, field] of cases) {
      const r = await s.call(id++, "execute", params);
      assert.equal(r.error?.code, -32602);
      assert.equal(r.error?.data?.field, field);
    }
    await s.close();
  });
});

Deno.test("an env too large to start a program is -32602 naming env, not command", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const many = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`V${i}`, "y".repeat(100_000)]),
    );
    const cases: [Record<string, unknown>, string, RegExp][] = [
      // One string over Linux's MAX_ARG_STRLEN (128 KiB).
      [{ command: "true", env: { BIG: "x".repeat(200_000) } }, "env.BIG", /^env\.BIG: .*131072/],
      // Each string fits, together they are over ARG_MAX.
      [{ command: "true", env: many }, "env", /^env: env \(\d+ bytes\)/],
      [{ argv: ["true"], env: many }, "env", /^env: /],
      // And a command that is itself too long is still reported against command.
      [{ command: `: ${"z".repeat(200_000)}` }, "command", /^command: /],
      [{ argv: ["true", "z".repeat(200_000)] }, "argv[1]", /^argv\[1\]: /],
    ];
    let id = 1;
    for (const [params, field, message] of cases) {
      const r = await s.call(id++, "execute", params);
      assert.equal(r.error?.code, -32602, JSON.stringify(r));
      assert.equal(r.error?.data?.field, field, r.error?.message);
      assert.match(r.error!.message, message);
    }
    await started(s, id, { command: "true" }); // the session still works
    await s.close();
  });
});

Deno.test("an id past a double's range (1e400) is answered with the id as sent", async () => {
  await withServer({}, async (server) => {
    const ws = new WebSocket(server.url);
    const texts: string[] = [];
    ws.onmessage = (ev) => texts.push(String(ev.data));
    await new Promise((r) => ws.onopen = r);
    ws.send(`{"jsonrpc":"2.0","id":1e400,"method":"ping"}`);
    ws.send(`[{"jsonrpc":"2.0","id":-1E+400,"method":"ping"}]`);
    await waitFor(() => texts.length >= 3, "the replies");
    assert.match(texts[1], /^\{"jsonrpc":"2.0","id":1e400,"result":\{"pong":true/);
    assert.match(texts[2], /^\[\{"jsonrpc":"2.0","id":-1E\+400,"result":\{"pong":true/);
    ws.close();
    await new Promise((r) => ws.onclose = r);
  });
});

Deno.test("timeouts of any size up to 365 days work; longer ones are -32602", async () => {
  await withServer({ defaultTimeoutS: 3_000_000 }, async (server) => {
    const s = await RawSession.open(server.url);
    // Past 2^31 ms a plain setTimeout fires at once; these must not.
    const big = await started(s, 1, { command: "sleep 0.3; echo done", timeout: 3_000_000 });
    const stall = await started(s, 2, { command: "sleep 0.3; echo done", stall_timeout: 3e6 });
    const dflt = await started(s, 3, { command: "sleep 0.3; echo done" });
    for (const r of [big, stall, dflt]) {
      assert.equal((await s.completed(r.job_id)).params?.status, "completed");
      assert.equal(s.output(r.job_id), "done\n");
    }
    for (const field of ["timeout", "stall_timeout"]) {
      const r = await s.call(`x-${field}`, "execute", { command: "true", [field]: 31_536_001 });
      assert.equal(r.error?.code, -32602);
      assert.equal(r.error?.data?.field, field);
      assert.match(r.error!.message, new RegExp(`^${field}: at most 31536000`));
    }
    await s.close();
  });
  assert.throws(() => CcxServer.start({ port: 0, defaultTimeoutS: 4e7 }), /default-timeout/);
});

Deno.test("several jobs run at once on one connection, each with its own job_id", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const ids = await Promise.all(
      [1, 2, 3].map((i) => started(s, i, { command: `sleep 0.2; echo job${i}` })),
    );
    const jobs = await s.call(9, "jobs");
    assert.equal((jobs.result?.jobs as unknown[]).length, 3);
    for (const [i, r] of ids.entries()) {
      await s.completed(r.job_id);
      assert.equal(s.output(r.job_id), `job${i + 1}\n`);
    }
    await s.close();
  });
});

Deno.test("PAUSE, RESUME and CANCEL control a job and notify", async () => {
  await withServer({ graceMs: 300 }, async (server) => {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, { command: STUBBORN });
    await waitFor(() => s.output(r.job_id).includes("ready"), "ready");
    assert.equal((await s.call(2, "control", { type: "PAUSE" })).result?.status, "paused");
    const paused = await s.next((m) => m.method === "process.paused");
    const ids = { job_id: r.job_id, pid: r.pid, pgid: r.pgid };
    assert.deepEqual(paused.params, { ...ids, status: "paused" });
    await waitForPause(r.pgid);
    const resumed = await s.call(3, "control", { type: "RESUME", job_id: r.job_id });
    assert.equal(resumed.result?.status, "resumed");
    const resumedNote = await s.next((m) => m.method === "process.resumed");
    assert.deepEqual(resumedNote.params, { ...ids, status: "running" });
    await waitForResume(r.pgid);
    // Pause again and cancel while paused.
    await s.call(4, "control", { type: "PAUSE", job_id: r.job_id });
    await waitForPause(r.pgid);
    const c = await s.call(5, "control", { type: "CANCEL", job_id: r.job_id });
    assert.equal(c.result?.status, "canceled");
    const canceled = await s.next((m) => m.method === "process.canceled");
    assert.deepEqual(canceled.params, { ...ids, status: "canceled" });
    const done = await s.completed(r.job_id);
    assert.equal(done.params?.status, "canceled");
    const exit = await s.next((m) => m.method === "process.exit");
    assert.equal(exit.params?.exitCode, done.params?.exit_code);
    assert.deepEqual(processesInGroup(r.pgid), []);
    const late = await s.call(6, "control", { type: "CANCEL", job_id: r.job_id });
    assert.equal(late.error?.code, -32003);
    await s.close();
  });
});

Deno.test("PAUSE does not stop the whole-run timeout: a paused job still times out", async () => {
  await withServer({ graceMs: 200 }, async (server) => {
    const s = await RawSession.open(server.url);
    // 8 s: time enough to see the job start and pause it on a loaded machine (the pause is
    // confirmed below before the timeout can matter); the test then waits for the timeout.
    const r = await started(s, 1, { command: "echo ready; sleep 1000", timeout: 8 });
    await waitFor(() => s.output(r.job_id).includes("ready"), "ready");
    assert.equal((await s.call(2, "control", { type: "PAUSE" })).result?.status, "paused");
    await waitForPause(r.pgid);
    const done = await s.completed(r.job_id);
    assert.equal(done.params?.status, "timeout");
    assert.equal(s.forJob(r.job_id, "process.resumed").length, 0, "nobody resumed it");
    assert.deepEqual(processesInGroup(r.pgid), []);
    assert.equal(groupPaused(r.pgid), false);
    await s.close();
  });
});

Deno.test("a job that gives no timeout gets the server's default timeout (3600 s unless set)", async () => {
  await withServer({}, (server) => {
    assert.equal(server.defaultTimeoutS, 3600);
    return Promise.resolve();
  });
  await withServer({ defaultTimeoutS: 1, graceMs: 200 }, async (server) => {
    const s = await RawSession.open(server.url);
    const bare = await started(s, 1, { command: "sleep 1000" });
    // A job's own timeout wins over the default, in both directions.
    const own = await started(s, 2, { command: "sleep 1.5; echo outlived", timeout: 60 });
    assert.equal((await s.completed(bare.job_id)).params?.status, "timeout");
    assert.equal((await s.completed(own.job_id)).params?.status, "completed");
    assert.equal(s.output(own.job_id), "outlived\n");
    assert.deepEqual(processesInGroup(bare.pgid), []);
    await s.close();
  });
});

Deno.test("a job_id already used in the session is refused with -32602 naming job_id", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const first = await started(s, 1, { command: "echo first", job_id: "mine" });
    assert.equal(first.job_id, "mine");
    await s.completed("mine");
    // Reused after the first ended, and while one with that id runs.
    const again = await s.call(2, "execute", { command: "echo second", job_id: "mine" });
    assert.equal(again.error?.code, -32602);
    assert.equal(again.error?.data?.field, "job_id");
    await started(s, 3, { command: "sleep 1000", job_id: "live" });
    const clash = await s.call(4, "execute", { command: "echo third", job_id: "live" });
    assert.equal(clash.error?.code, -32602);
    assert.equal(s.output("mine"), "first\n", "the refused jobs never ran");
    // Another session has its own ids.
    const other = await RawSession.open(server.url);
    await started(other, 1, { command: "true", job_id: "mine" });
    await other.completed("mine");
    await other.close();
    await s.close();
  });
});

Deno.test("timeout and stall_timeout end the job with those statuses", async () => {
  await withServer({ graceMs: 200 }, async (server) => {
    const s = await RawSession.open(server.url);
    const t = await started(s, 1, { command: STUBBORN, timeout: 0.3 });
    const st = await started(s, 2, { command: "echo one; sleep 100", stall_timeout: 0.3 });
    assert.equal((await s.completed(t.job_id)).params?.status, "timeout");
    assert.equal((await s.completed(st.job_id)).params?.status, "stalled");
    assert.deepEqual(processesInGroup(t.pgid), []);
    assert.deepEqual(processesInGroup(st.pgid), []);
    await s.close();
  });
});

Deno.test("a client disconnect ends its jobs' whole groups", async () => {
  await withServer({ graceMs: 300 }, async (server) => {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, { command: STUBBORN });
    await waitFor(() => s.output(r.job_id).includes("ready"), "ready");
    await waitFor(() => processesInGroup(r.pgid).length >= 3, "the group");
    await s.close();
    await waitFor(() => processesInGroup(r.pgid).length === 0, "the group to end");
  });
});

Deno.test("bad messages get the right codes and the connection keeps working", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const errOf = (text: string) => {
      const from = s.messages.length;
      s.sendText(text);
      return s.next((m) => m.error !== undefined, 5000, from);
    };
    assert.equal((await errOf("{not json")).error?.code, -32700);
    assert.equal((await errOf('{"jsonrpc":"2.0","id":1}')).error?.code, -32600);
    assert.equal((await errOf('{"jsonrpc":"1.0","id":2,"method":"ping"}')).error?.code, -32600);
    assert.equal((await errOf('"just a string"')).error?.code, -32600);
    assert.equal((await errOf("[]")).error?.code, -32600);
    const unknown = await s.call(3, "frobnicate");
    assert.equal(unknown.error?.code, -32601);
    const badType = await s.call(4, "execute", { command: "true", timeout: "10" });
    assert.equal(badType.error?.code, -32602);
    assert.equal(badType.error?.data?.field, "timeout");
    const badArgv = await s.call(5, "execute", { argv: ["ok", 3] });
    assert.equal(badArgv.error?.data?.field, "argv");
    const badEnv = await s.call(6, "execute", { command: "true", env: { A: 1 } });
    assert.equal(badEnv.error?.data?.field, "env.A");
    const noCmd = await s.call(7, "execute", {});
    assert.equal(noCmd.error?.data?.field, "command");
    const badType2 = await s.call(8, "control", { type: "STOP" });
    assert.equal(badType2.error?.data?.field, "type");
    const missingJob = await s.call(9, "control", { type: "CANCEL", job_id: "nope" });
    assert.equal(missingJob.error?.code, -32003);
    const badProgram = await s.call(10, "execute", { argv: ["/no/such/program"] });
    assert.equal(badProgram.error?.code, -32602);
    assert.equal(badProgram.error?.data?.field, "argv");
    await s.next((m) => m.method === "process.error");
    // Still alive and well:
    const pong = await s.call(11, "ping");
    assert.equal(pong.result?.pong, true);
    await s.close();
  });
});

Deno.test("a batch gets one array of responses; notifications in it get none", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    await s.next((m) => m.method === "connected");
    s.send([
      { jsonrpc: "2.0", id: 1, method: "ping" },
      { jsonrpc: "2.0", method: "ping" },
      { jsonrpc: "2.0", id: 2, method: "nope" },
      { jsonrpc: "2.0", id: 3, method: "execute", params: { command: "echo batched" } },
      42,
    ]);
    const arr = await s.next((m) => Array.isArray(m)) as unknown as Msg[];
    assert.equal(arr.length, 4);
    assert.equal(arr[0].id, 1);
    assert.equal(arr[1].error?.code, -32601);
    assert.equal((arr[2].result as { status: string }).status, "started");
    assert.equal(arr[3].error?.code, -32600);
    const jobId = (arr[2].result as { job_id: string }).job_id;
    await s.completed(jobId);
    assert.equal(s.output(jobId), "batched\n");
    await s.close();
  });
});

Deno.test("a method named like a property every object has is -32601, as any unknown one", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const names = ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf"];
    for (const [i, name] of names.entries()) {
      const r = await s.call(i, name);
      assert.equal(r.error?.code, -32601, `${name}: ${JSON.stringify(r)}`);
      assert.equal(r.error?.data?.method, name);
    }
    assert.equal((await s.call(99, "ping")).result?.pong, true);
    await s.close();
  });
});

Deno.test("what follows an answer (process.started, .error, .paused…) comes after all of a batch's replies, in order", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    await s.next((m) => m.method === "connected");
    const from = s.messages.length;
    s.send([
      { jsonrpc: "2.0", id: 1, method: "execute", params: { command: "sleep 30", job_id: "a" } },
      { jsonrpc: "2.0", id: 2, method: "execute", params: { argv: ["/no/such"], job_id: "b" } },
      { jsonrpc: "2.0", method: "execute", params: { command: "sleep 30", job_id: "c" } },
      { jsonrpc: "2.0", id: 3, method: "ping" },
    ]);
    await s.next((m) => m.method === "process.started" && m.params?.job_id === "c", 5000, from);
    const seen = () => s.messages.slice(from).map((m) => Array.isArray(m) ? "replies" : m.method);
    assert.deepEqual(seen(), ["replies", "process.started", "process.error", "process.started"]);
    const replies = s.messages[from] as unknown as Msg[];
    assert.deepEqual(replies.map((r) => r.id), [1, 2, 3]);
    assert.equal(replies[1].error?.data?.field, "argv");
    const at = s.messages.length;
    s.send([
      { jsonrpc: "2.0", id: 4, method: "control", params: { type: "PAUSE", job_id: "a" } },
      { jsonrpc: "2.0", id: 5, method: "control", params: { type: "RESUME", job_id: "a" } },
      { jsonrpc: "2.0", id: 6, method: "control", params: { type: "CANCEL", job_id: "c" } },
    ]);
    await s.next((m) => m.method === "process.canceled", 5000, at);
    assert.deepEqual(
      s.messages.slice(at, at + 4).map((m) => Array.isArray(m) ? "replies" : m.method),
      [
        "replies",
        "process.paused",
        "process.resumed",
        "process.canceled",
      ],
    );
    await s.call(7, "control", { type: "CANCEL", job_id: "a" });
    await s.completed("a");
    await s.close();
  });
});

Deno.test("limits answer with -32004 and -32001, never a crash", async () => {
  await withServer(
    { maxJobsPerSession: 1, maxSessions: 1, maxMessageBytes: 2000 },
    async (server) => {
      const s = await RawSession.open(server.url);
      await s.next((m) => m.method === "connected");
      const r = await started(s, 1, { command: "sleep 5" });
      const second = await s.call(2, "execute", { command: "true" });
      assert.equal(second.error?.code, -32004);
      s.send({ jsonrpc: "2.0", id: 3, method: "execute", params: { command: "x".repeat(5000) } });
      const big = await s.next((m) => m.error?.code === -32004 && m.id === null);
      assert.match(big.error!.message, /exceeds the limit/);
      const other = await RawSession.open(server.url);
      const refused = await other.next((m) => m.error !== undefined);
      assert.equal(refused.error?.code, -32001);
      // ...and then the connection is closed 1013 ("try again later"), as the README says.
      const closed = await other.closed;
      assert.deepEqual([closed.code, closed.reason], [1013, "session limit reached"]);
      assert.ok(
        other.messages.indexOf(refused) === other.messages.length - 1,
        "the -32001 error was the last message before the close",
      );
      assert.equal(
        (await s.call(4, "control", { type: "CANCEL", job_id: r.job_id })).result?.status,
        "canceled",
      );
      await s.completed(r.job_id);
      await s.close();
    },
  );
});

Deno.test("limit notifications are sent once per job and kind, however often the output repeats them", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const usage = "Claude AI usage limit reached|1767225600";
    const token = "API Error: Claude's response exceeded the 32000 output token maximum.";
    // Each line three times, in separate reads (a pause between them), in two jobs.
    const command = `for i in 1 2 3; do echo "${usage}"; echo "${token}"; sleep 0.1; done`;
    const jobs = [await started(s, 1, { command }), await started(s, 2, { command })];
    for (const j of jobs) await s.completed(j.job_id);
    for (const j of jobs) {
      assert.equal(s.output(j.job_id).split("\n").filter((l) => l === usage).length, 3);
      assert.equal(s.forJob(j.job_id, "error.rate_limit_exceeded").length, 1);
      assert.equal(s.forJob(j.job_id, "error.token_limit_exceeded").length, 1);
    }
    await s.close();
  });
});

Deno.test("Claude's usage and token limits in the output raise error notifications", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const usage = JSON.stringify({
      type: "result",
      subtype: "success",
      is_error: true,
      result: "Claude AI usage limit reached|1767225600",
    });
    const r1 = await started(s, 1, { argv: ["printf", "%s\\n", usage] });
    const r2 = await started(s, 2, {
      command: 'echo "API Error: Claude\'s response exceeded the 32000 output token maximum."',
    });
    const r3 = await started(s, 3, { command: "echo 'Rate limits are explained in the docs.'" });
    const rate = await s.next((m) =>
      m.method === "error.rate_limit_exceeded" && m.params?.job_id === r1.job_id
    );
    assert.equal(rate.params?.reset_timestamp, 1767225600);
    assert.equal(rate.params?.recoverable, true);
    const tok = await s.next((m) =>
      m.method === "error.token_limit_exceeded" && m.params?.job_id === r2.job_id
    );
    assert.equal(typeof tok.params?.message, "string");
    await s.completed(r3.job_id);
    assert.equal(s.forJob(r3.job_id, "error.rate_limit_exceeded").length, 0);
    await s.close();
  });
});

Deno.test("heartbeats arrive while a job is silent", async () => {
  using gate = new Gate();
  await withServer({ heartbeatS: 0.1 }, async (server) => {
    const s = await RawSession.open(server.url);
    // Silent until the test has seen a heartbeat.
    const r = await started(s, 1, { command: gate.wait });
    const hb = await s.next((m) => m.method === "heartbeat");
    assert.equal(hb.params?.running_jobs, 1);
    gate.open();
    assert.equal((await s.completed(r.job_id)).params?.status, "completed");
    await s.close();
  });
});

for (const output_mode of ["lines", "chunks"]) {
  Deno.test(`${output_mode} mode: bytes that are not UTF-8 arrive with data_base64 holding the exact bytes`, async () => {
    await withServer({}, async (server) => {
      const s = await RawSession.open(server.url);
      const r = await started(s, 1, { command: "printf 'ok\\na\\377b\\n'", output_mode });
      const done = await s.completed(r.job_id);
      const out = s.forJob(r.job_id, "process.output").map((m) => m.params!);
      const bad = out.find((p) => p.data_base64 !== undefined)!;
      if (output_mode === "lines") {
        assert.deepEqual(out.map((p) => p.data), ["ok\n", "a\ufffdb\n"]);
        assert.equal(bad.data, "a\ufffdb\n");
        assert.equal(atob(String(bad.data_base64)), "a\xffb\n");
      } else {
        assert.equal(bad.data, "ok\na\ufffdb\n");
        assert.equal(atob(String(bad.data_base64)), "ok\na\xffb\n");
      }
      assert.equal(done.params?.invalid_utf8_chunks, 1);
      await s.close();
    });
  });
}

Deno.test("chunks mode: 2,000,000 lines arrive complete and in order, coalesced", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, { argv: ["seq", "1", "2000000"], output_mode: "chunks" });
    const done = await s.completed(r.job_id, 60000);
    assert.equal(done.params?.status, "completed");
    const chunks = s.forJob(r.job_id, "process.output");
    const text = chunks.map((m) => String(m.params?.data)).join("");
    let expected = "";
    for (let i = 1; i <= 2000000; i++) expected += `${i}\n`;
    assert.equal(text.length, expected.length);
    assert.ok(text === expected, "every line, in order");
    assert.ok(chunks.length < 20000, `${chunks.length} messages for 2M lines`);
    assert.ok(chunks.every((m) => String(m.params?.data).endsWith("\n")));
    await s.close();
  });
});

Deno.test("50 concurrent connections each run a job", async () => {
  await withServer({}, async (server) => {
    const sessions = await Promise.all(
      Array.from({ length: 50 }, () => RawSession.open(server.url)),
    );
    const jobs = await Promise.all(
      sessions.map((s, i) => started(s, i, { argv: ["sh", "-c", `sleep 0.1; echo conn-${i}`] })),
    );
    await Promise.all(sessions.map((s, i) => s.completed(jobs[i].job_id)));
    sessions.forEach((s, i) => assert.equal(s.output(jobs[i].job_id), `conn-${i}\n`));
    await Promise.all(sessions.map((s) => s.close()));
  });
});

Deno.test("security: non-loopback binds need a token", () => {
  assert.throws(() => CcxServer.start({ host: "0.0.0.0", port: 0 }), ServerConfigError);
  assert.throws(() => CcxServer.start({ host: "0.0.0.0", port: 0 }), /CCX_TOKEN/);
  assert.ok(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("localhost"));
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("192.168.1.2"));
  assert.ok(tokenMatches("abc", "abc"));
  assert.ok(!tokenMatches("abd", "abc") && !tokenMatches(null, "abc") && !tokenMatches("", "abc"));
});

Deno.test("security: a token is required as Bearer or ?token=, else 401", async () => {
  await withServer({ token: "s3cret" }, async (server) => {
    assert.equal(await handshakeStatus(server.port, "/ws"), 401);
    assert.equal(await handshakeStatus(server.port, "/ws?token=wrong"), 401);
    assert.equal(await handshakeStatus(server.port, "/ws?token=s3cret"), 101);
    assert.equal(
      await handshakeStatus(server.port, "/ws", { Authorization: "Bearer s3cret" }),
      101,
    );
    const s = await RawSession.open(server.url, { Authorization: "Bearer s3cret" });
    assert.equal((await s.call(1, "ping")).result?.pong, true);
    await s.close();
  });
});

Deno.test("security: GET /health needs no token even when /ws does", async () => {
  await withServer({ token: "s3cret" }, async (server) => {
    const res = await fetch(`${server.httpUrl}/health`);
    assert.equal(res.status, 200);
    const h = await res.json();
    assert.equal(h.status, "ok");
    assert.ok(!JSON.stringify(h).includes("s3cret"), "the token is not revealed");
    assert.equal(await handshakeStatus(server.port, "/ws"), 401);
  });
});

Deno.test("security: a foreign browser Origin gets 403, allowed ones connect", async () => {
  await withServer({ allowOrigins: ["https://dash.example"] }, async (server) => {
    assert.equal(
      await handshakeStatus(server.port, "/ws", { Origin: "https://evil.example" }),
      403,
    );
    assert.equal(
      await handshakeStatus(server.port, "/ws", { Origin: "https://dash.example" }),
      101,
    );
    const own = `http://127.0.0.1:${server.port}`;
    assert.equal(await handshakeStatus(server.port, "/ws", { Origin: own }), 101);
    assert.equal(await handshakeStatus(server.port, "/ws"), 101);
  });
});

Deno.test("security: jobs never see CCX_* or unlisted server variables; --pass-env adds names", async () => {
  const srv = await serveProcess(["--pass-env", "EXTRA_OK,EXTRA_P*"], {
    CCX_TOKEN: "tok-123",
    CCX_SOMETHING: "x",
    AWS_SECRET_ACCESS_KEY: "aws",
    EXTRA_OK: "ok",
    EXTRA_PREFIXED: "pre",
  });
  try {
    const s = await RawSession.open(srv.url, { Authorization: "Bearer tok-123" });
    const r = await started(s, 1, {
      command: 'echo "$CCX_TOKEN"; echo "[$CCX_SOMETHING][$AWS_SECRET_ACCESS_KEY]"; ' +
        'echo "[$EXTRA_OK][$EXTRA_PREFIXED][$CCX_REQUEST][${PATH:+path}][${HOME:+home}]"',
      env: { CCX_REQUEST: "from the request" },
    });
    await s.completed(r.job_id);
    assert.equal(s.output(r.job_id), "\n[][]\n[ok][pre][from the request][path][home]\n");
    await s.close();
  } finally {
    await srv.stop();
  }
  const refused = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "serve", "--port", "0", "--pass-env", "CCX_TOKEN"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(refused.code, 2);
  assert.match(new TextDecoder().decode(refused.stderr), /--pass-env: CCX_TOKEN: .*never passed/);
});

function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)![1]);
}

/** `ccx serve --log-format json EXTRA`, and its JSON log lines once it has exited. */
async function serveLogged(extra: string[]) {
  const srv = await serveProcess(["--port", "0", "--log-format", "json", ...extra], undefined, {
    bare: true,
  });
  const log = new Response(srv.child.stderr).text().then((t) =>
    t.split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l) as Record<string, unknown> & { ts: string; event?: string }
    )
  );
  return { ...srv, log };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} to the server ends every job's group and it is done within grace + 1 s, by its own clock`, async () => {
    const srv = await serveLogged(["--grace-ms", "500"]);
    try {
      const s = await RawSession.open(srv.url);
      const r = await started(s, 1, { command: STUBBORN });
      await waitFor(() => s.output(r.job_id).includes("ready"), "ready");
      await waitFor(() => processesInGroup(r.pgid).length >= 3, "the group");
      srv.child.kill(signal);
      const done = await s.completed(r.job_id);
      assert.equal(done.params?.status, "killed");
      const status = await srv.child.status;
      assert.equal(status.code, 0);
      assert.deepEqual(processesInGroup(r.pgid), []);
      await s.closed;
      // From the signal's arrival to the end of the shutdown, by the server's own timestamps (no
      // Deno start or exit in it). README: grace (500 ms) + 1 s; the test allows grace + 2 s. A
      // server that waited for the TERM-proof job would take 1000 s.
      const lines = await srv.log;
      const got = lines.filter((l) => l.event === "shutdown");
      assert.equal(got.length, 1, JSON.stringify(lines));
      assert.equal(got[0].signal, signal);
      const fin = lines.filter((l) => l.event === "shutdown_done");
      assert.equal(fin.length, 1, JSON.stringify(lines));
      const ms = Date.parse(fin[0].ts) - Date.parse(got[0].ts);
      assert.ok(ms <= 500 + 2000, `shutdown took ${ms} ms after ${signal}`);
      assert.ok(ms >= 500 - 50, `${ms} ms: the TERM-proof job had its grace before SIGKILL`);
    } finally {
      await srv.stop("SIGKILL");
    }
  });
}

Deno.test("the no-TLS warning: said for a non-loopback bind, not for 127.0.0.0/8 (which the code counts as loopback)", async () => {
  // The decision: every 127.x.y.z, ::1 and localhost are loopback; anything else is not.
  for (const h of ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "[::1]", "localhost"]) {
    assert.ok(isLoopback(h), h);
  }
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "127.0.0", "localhost.example"]) {
    assert.ok(!isLoopback(h), h);
  }
  const warned = async (host: string) => {
    const srv = await serveProcess(["--host", host, "--port", "0", "--token", "tok-warn-test"]);
    const err = new Response(srv.child.stderr).text();
    await srv.stop();
    return /without TLS: the token and all traffic cross the network in clear/.test(await err);
  };
  assert.equal(await warned("127.0.0.2"), false, "127.0.0.2 is loopback: no warning");
  // A non-loopback bind (nothing connects to it; it is closed at once) says it.
  assert.equal(await warned("0.0.0.0"), true, "0.0.0.0 is not loopback: the warning");
});

Deno.test("the default heartbeat: 20 s after the last message while a job runs, not before", async () => {
  // Not withServer: its servers turn heartbeats off; this one keeps the default.
  const root = await Deno.makeTempDir({ prefix: "ccx-hb-ws-" });
  const server = CcxServer.start({
    port: 0,
    log: () => {},
    journalDir: false,
    workspaceRoot: root,
  });
  try {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, { command: "echo began; sleep 60" });
    await waitFor(() => s.output(r.job_id) === "began\n", "the job's first line");
    const quietFrom = performance.now();
    const beat = await s.next((m) => m.method === "heartbeat", 40_000);
    const after = performance.now() - quietFrom;
    assert.equal(beat.params?.running_jobs, 1);
    // No Deno start in this span: the server runs in this process. 20 s, less the moment the
    // line took to arrive here, plus timer slack on a loaded machine.
    assert.ok(after >= 19_000 && after <= 25_000, `first heartbeat after ${after} ms`);
    await s.call(2, "control", { type: "CANCEL", job_id: r.job_id });
    await s.completed(r.job_id);
    await s.close();
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a client that stops reading does not grow the server's memory (lines mode)", async () => {
  const srv = await serveProcess();
  let conn: Deno.TcpConn | undefined;
  try {
    const before = rssKiB(srv.child.pid);
    conn = await stalledClient(
      srv.port,
      JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "execute",
        params: { command: "head -c 2000000000 /dev/zero | tr '\\0' 'x' | fold -w 100" },
      }),
    );
    // With nobody reading, the job must end up blocked rather than buffered.
    await new Promise((r) => setTimeout(r, 3000));
    const during = rssKiB(srv.child.pid);
    assert.ok(
      during - before < 100 * 1024,
      `server RSS grew by ${Math.round((during - before) / 1024)} MiB`,
    );
  } finally {
    conn?.close();
    await srv.stop();
  }
});

Deno.test("a client that never reads is dropped after --slow-client-s and its job canceled", async () => {
  const tag = newTag();
  const events: Record<string, unknown>[] = [];
  await withServer({
    slowClientS: 0.5,
    highWaterBytes: 64 * 1024,
    lowWaterBytes: 16 * 1024,
    graceMs: 200,
    log: (_m, f) => events.push(f ?? {}),
  }, async (server) => {
    const other = await RawSession.open(server.url);
    const conn = await stalledClient(
      server.port,
      JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "execute",
        params: { command: `: ${tag}; yes 'never read by anyone'` },
      }),
    );
    try {
      await waitFor(() => pidsMatching(tag).length > 0, "the job");
      await waitFor(
        () => events.some((e) => e.event === "slow_client_dropped"),
        "the slow client to be dropped",
        20_000,
      );
      const dropped = events.find((e) => e.event === "slow_client_dropped")!;
      assert.equal(dropped.close_code, 1008);
      // Were it to read now, the client would find the close frame after its pending output,
      // and then the end of the stream.
      const got: number[] = [];
      const buf = new Uint8Array(1 << 16);
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        got.push(...buf.subarray(Math.max(0, n - 64), n));
        got.splice(0, Math.max(0, got.length - 64));
      }
      const expected = closeFrame(1008, "client too slow: output unread");
      assert.deepEqual(got.slice(-expected.length), [...expected]);
      // Held above the low mark (16 KiB) all along: the client took nothing.
      assert.ok(Number(dropped.queued_bytes) > 16 * 1024, JSON.stringify(dropped));
      await waitFor(() => pidsMatching(tag).length === 0, "the job to be canceled");
      await waitFor(() => events.some((e) => e.event === "job_ended"), "the job's end");
      assert.equal(events.find((e) => e.event === "job_ended")?.status, "canceled");
      // The reading session is unaffected.
      assert.equal(server.health().active_sessions, 1);
      assert.equal((await other.call(2, "ping")).result?.pong, true);
    } finally {
      conn.close();
      await other.close();
    }
  });
});

Deno.test("a client written for the seed system works unchanged (its message loop, verbatim)", async () => {
  await withServer({ heartbeatS: 0.05 }, async (server) => {
    // The seed's execute_test(): send {"command": ...} with id 1, then for each message: any
    // "error" key fails; params.data is output; method process.completed ends with exit_code.
    const s = await RawSession.open(server.url);
    s.send({
      jsonrpc: "2.0",
      method: "execute",
      params: { command: "echo 'What is 2+2? 4'; sleep 0.2; echo done" },
      id: 1,
    });
    const output: string[] = [];
    let exitCode: unknown;
    for (let i = 0; exitCode === undefined; i++) {
      const data = await s.next(() => true, 10000, i);
      assert.ok(
        !("error" in data),
        `the seed client fails on any "error" key: ${JSON.stringify(data)}`,
      );
      if (data.params && "data" in data.params) output.push(String(data.params.data));
      else if (data.method === "process.completed") exitCode = data.params?.exit_code ?? -1;
    }
    assert.equal(exitCode, 0);
    assert.ok(output.join("\n").toLowerCase().includes("4"));
    assert.ok(s.messages.some((m) => m.method === "heartbeat"), "heartbeats went by harmlessly");
    await s.close();
  });
});

// The seed's clients, as they read: each helper below is one habit of theirs.

/** Reads like the seed (`wait_for(ws.recv(), quietS)` in a loop) until the session is quiet. */
async function readUntilQuiet(s: RawSession, quietMs: number, max = 60): Promise<boolean> {
  for (let i = s.messages.length; i < max; i++) {
    try {
      await s.next(() => true, quietMs, i);
    } catch {
      return true; // quietMs without a message: the seed client ends here
    }
  }
  return false;
}

Deno.test("seed habit: a client reading until 3 quiet seconds ends; heartbeats only while jobs run", async () => {
  await withServer({ heartbeatS: 0.2 }, async (server) => {
    const idle = await RawSession.open(server.url);
    await idle.next((m) => m.method === "connected");
    const s = await RawSession.open(server.url);
    await started(s, 1, { command: "sleep 1; echo done" });
    assert.ok(await readUntilQuiet(s, 3000), "the session went quiet after its job ended");
    const methods = s.messages.map((m) => m.method);
    const exitAt = methods.indexOf("process.exit");
    assert.ok(exitAt > 0, "process.exit arrived");
    const beats = methods.flatMap((m, i) => m === "heartbeat" ? [i] : []);
    assert.ok(beats.length >= 2, `heartbeats while the job ran: ${beats.length}`);
    assert.ok(beats.every((i) => i < exitAt), "no heartbeat once the session had no running job");
    // Another session that never ran a job heard nothing: heartbeats are per session.
    assert.deepEqual(idle.messages.map((m) => m.method), ["connected"]);
    await idle.close();
    await s.close();
  });
});

Deno.test("heartbeats are timed from the session's last message: none while output flows", async () => {
  await withServer({ heartbeatS: 2 }, async (server) => {
    const s = await RawSession.open(server.url);
    // A line every 0.1 s for 3 s: the session is never quiet for 2 s, so a heartbeat
    // clock of its own never fires (a server-wide 2 s clock would have, once or more).
    const r = await started(s, 1, {
      command: "i=0; while [ $i -lt 30 ]; do echo $i; sleep 0.1; i=$((i+1)); done",
    });
    await s.completed(r.job_id);
    assert.equal(s.forJob(r.job_id, "process.output").length, 30);
    assert.deepEqual(s.messages.filter((m) => m.method === "heartbeat"), []);
    await s.close();
  });
});

Deno.test("seed habit: a client that waits for process.exit {exitCode} gets it", async () => {
  await withServer({}, async (server) => {
    // ConcurrentClaudeExecutor: loop on recv until method == "process.exit", take exitCode.
    const s = await RawSession.open(server.url);
    s.send({ jsonrpc: "2.0", id: 1, method: "execute", params: { command: "echo hi; exit 7" } });
    let exitCode: unknown;
    for (let i = 0; exitCode === undefined; i++) {
      const data = await s.next(() => true, 10000, i);
      if (data.method === "process.exit") exitCode = data.params?.exitCode;
    }
    assert.equal(exitCode, 7);
    await s.close();
  });
});

Deno.test("seed habit: a client that json-parses each message of multi-line JSON output", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    // Claude's stream-json: one JSON document a line, the last one large (more than a pipe read).
    const big = JSON.stringify({ type: "result", result: "x".repeat(150000) });
    const lines = [
      JSON.stringify({ type: "system", subtype: "init" }),
      JSON.stringify({ type: "assistant", message: { content: [{ type: "text", text: "4" }] } }),
      big,
    ];
    for (let run = 0; run < 5; run++) {
      const r = await started(s, `run${run}`, {
        argv: ["cat"],
        stdin: lines.join("\n") + "\n",
      });
      await s.completed(r.job_id);
      const parsed = s.forJob(r.job_id, "process.output").map((m) =>
        JSON.parse(String(m.params?.data))
      );
      assert.deepEqual(parsed, lines.map((l) => JSON.parse(l)), `run ${run}`);
    }
    // And the key=value habit: line.split("=", 1) on each message.
    const r = await started(s, "env", { command: "printf 'A=1\\nPATH=/x/y\\nB=two=2\\n'" });
    await s.completed(r.job_id);
    const keys = s.forJob(r.job_id, "process.output").map((m) =>
      String(m.params?.data).split("=")[0]
    );
    assert.deepEqual(keys, ["A", "PATH", "B"]);
    await s.close();
  });
});

Deno.test("lines mode: one line per message, seq 0..n-1, a partial last line, completed after", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const r = await started(s, 1, { command: "seq 1 100000; printf 'no newline'" });
    const done = await s.completed(r.job_id, 60000);
    assert.equal(done.params?.status, "completed");
    const out = s.forJob(r.job_id, "process.output");
    assert.equal(out.length, 100001);
    for (let i = 0; i < 100000; i++) {
      const p = out[i].params!;
      if (p.data !== `${i + 1}\n` || p.seq !== i) assert.fail(`message ${i}: ${JSON.stringify(p)}`);
    }
    assert.deepEqual(out[100000].params, {
      job_id: r.job_id,
      type: "stdout",
      data: "no newline",
      seq: 100000,
    });
    assert.ok(s.messages.indexOf(out[100000]) < s.messages.indexOf(done));
    await s.close();
  });
});

Deno.test("lines mode under backpressure: the job waits for a slow reader, nothing lost", async () => {
  await withServer({ highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024 }, async (server) => {
    const c = await SlowReader.open(server.port);
    try {
      assert.equal((await c.next()).method, "connected");
      await c.send({
        jsonrpc: "2.0",
        id: 1,
        method: "execute",
        params: { argv: ["seq", "1", "200000"] },
      });
      const res = await c.next();
      const pgid = Number(res.result?.pgid);
      assert.ok(pgid > 0, JSON.stringify(res));
      // Read nothing for a while: 200,000 lines are ~18 MB of messages, more than the
      // socket buffers hold, so the server must stop reading the job's pipe and seq blocks.
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(processesInGroup(pgid).length > 0, "seq is still running, held back");
      let line = 0;
      let seq = 0;
      while (true) {
        const m = await c.next();
        if (m.method === "process.completed") {
          assert.equal(m.params?.status, "completed");
          break;
        }
        if (m.method !== "process.output") continue;
        line++;
        if (m.params?.data !== `${line}\n` || m.params?.seq !== seq++) {
          assert.fail(`message ${line}: ${JSON.stringify(m.params)}`);
        }
      }
      assert.equal(line, 200000);
      assert.equal((await c.next()).method, "process.exit");
    } finally {
      c.close();
    }
  });
});

Deno.test("output_mode is validated, listed in capabilities and in jobs", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const hello = await s.next((m) => m.method === "connected");
    const caps = hello.params?.capabilities as { output_modes: string[] };
    assert.deepEqual(caps.output_modes, ["lines", "chunks"]);
    const bad = await s.call(1, "execute", { command: "true", output_mode: "bytes" });
    assert.equal(bad.error?.code, -32602);
    assert.equal(bad.error?.data?.field, "output_mode");
    assert.match(bad.error!.message, /output_mode/);
    const r = await started(s, 2, { command: "true", output_mode: "chunks" });
    await s.completed(r.job_id);
    const jobs = (await s.call(3, "jobs")).result?.jobs as Record<string, unknown>[];
    assert.equal(jobs.find((j) => j.job_id === r.job_id)?.output_mode, "chunks");
    await s.close();
  });
});

Deno.test("a starting server removes a dead server's socket dir but never a live one it cannot see", async () => {
  // PIDs that do not exist here, as for servers in another PID namespace sharing /tmp.
  const live = Deno.makeTempDirSync({ prefix: "ccx-serve-999999-" });
  const listener = Deno.listen({ transport: "unix", path: `${live}/http.sock` });
  const stale = Deno.makeTempDirSync({ prefix: "ccx-serve-999998-" });
  Deno.listen({ transport: "unix", path: `${stale}/http.sock` }).close(); // the file stays
  const exists = (p: string) => {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      return false;
    }
  };
  try {
    await withServer({}, async () => {
      await waitFor(() => !exists(stale), "the dead server's socket dir to go");
      assert.ok(exists(`${live}/http.sock`), "the live server's socket was kept");
    });
  } finally {
    listener.close();
    Deno.removeSync(live, { recursive: true });
    if (exists(stale)) Deno.removeSync(stale, { recursive: true });
  }
});

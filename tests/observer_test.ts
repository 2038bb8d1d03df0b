import assert from "node:assert/strict";
import { ObserverHub, validateWatch } from "../lib/serve/observer.ts";
import { taskClass } from "../lib/claude/history.ts";
import { SqliteHistory } from "../lib/claude/history_store.ts";
import { RpcError } from "../lib/common/protocol.ts";
import {
  processesInGroup,
  waitFor,
  waitForPause,
  waitForResume,
  withServer,
} from "./_util/helpers.ts";
import { handshakeStatus, type Msg, RawSession } from "./_util/ws.ts";

type Job = Record<string, unknown> & { session_id: string; job_id: string };

async function sessionId(s: RawSession): Promise<string> {
  const m = await s.next((m) => m.method === "connected");
  return String(m.params?.session_id);
}

async function start(s: RawSession, id: string, command: string) {
  const r = await s.call(id, "execute", { job_id: id, command });
  assert.ok(r.result, `execute failed: ${JSON.stringify(r.error)}`);
  return r.result as { job_id: string; pid: number };
}

function jobEvent(event: string, jobId: string) {
  return (m: Msg) =>
    m.method === "observe.job" && m.params?.event === event &&
    (m.params?.job as Job).job_id === jobId;
}

function observed(s: RawSession, sid: string, jobId: string): string {
  return s.messages
    .filter((m) =>
      m.method === "observe.output" && m.params?.session_id === sid && m.params?.job_id === jobId
    )
    .map((m) => String(m.params?.data))
    .join("");
}

Deno.test("watch lists another session's jobs with who started them, and their lifecycle", async () => {
  await withServer({}, async (server) => {
    const owner = await RawSession.open(server.url);
    const ownerId = await sessionId(owner);
    const watcher = await RawSession.open(server.url);
    await sessionId(watcher);
    await start(owner, "early", "echo early");
    await owner.completed("early");

    const w = await watcher.call(1, "watch", {});
    const snap = w.result as { server: Record<string, unknown>; jobs: Job[] };
    assert.equal(snap.server.version, "0.1.0");
    assert.equal(snap.server.active_sessions, 2);
    assert.equal(typeof snap.server.memory_rss_bytes, "number");
    const early = snap.jobs.find((j) => j.job_id === "early")!;
    assert.equal(early.session_id, ownerId);
    assert.equal(early.status, "completed");
    assert.equal(early.exit_code, 0);
    assert.equal(early.stdout_bytes, 6);
    assert.match(String((early.started_by as { remote: string }).remote), /^127\.0\.0\.1:\d+$/);

    const r = await start(owner, "late", "echo late; exit 3");
    const st = await watcher.next(jobEvent("started", "late"));
    assert.equal((st.params?.job as Job).pid, r.pid);
    assert.equal((st.params?.job as Job).command, "echo late; exit 3");
    const done = await watcher.next(jobEvent("completed", "late"));
    assert.equal((done.params?.job as Job).status, "failed");
    assert.equal((done.params?.job as Job).exit_code, 3);
    // Lifecycle events carry no output unless the job is followed.
    assert.equal(watcher.messages.filter((m) => m.method === "observe.output").length, 0);
    await owner.close();
    await watcher.close();
  });
});

Deno.test("a session that never calls watch sees no change: no observe.* and only its own jobs", async () => {
  await withServer({}, async (server) => {
    const old = await RawSession.open(server.url);
    await sessionId(old);
    const other = await RawSession.open(server.url);
    const watcher = await RawSession.open(server.url);
    await watcher.call(1, "watch", {});
    await start(other, "o1", "echo other");
    await other.completed("o1");
    await start(old, "mine", "echo mine");
    await old.completed("mine");
    await watcher.next(jobEvent("completed", "mine"));
    const jobs = (await old.call(2, "jobs")).result?.jobs as Job[];
    assert.deepEqual(jobs.map((j) => j.job_id), ["mine"]);
    assert.deepEqual(old.messages.filter((m) => m.method?.startsWith("observe.")), []);
    for (const s of [old, other, watcher]) await s.close();
  });
});

Deno.test("watch output: the tail so far, then live output, of the chosen job only", async () => {
  await withServer({}, async (server) => {
    const owner = await RawSession.open(server.url);
    const sid = await sessionId(owner);
    const watcher = await RawSession.open(server.url);
    // The job prints one line, then waits for a file before printing the next.
    const gate = await Deno.makeTempFile();
    await Deno.remove(gate);
    await start(
      owner,
      "chatty",
      `echo first; while [ ! -e ${gate} ]; do sleep 0.02; done; echo second >&2`,
    );
    await start(owner, "quiet", "echo not-followed; sleep 0.2");
    await owner.next((m) => m.method === "process.output" && m.params?.job_id === "chatty");
    await watcher.call(1, "watch", { output: [{ session_id: sid, job_id: "chatty" }] });
    const back = await watcher.next((m) => m.method === "observe.output");
    assert.equal(back.params?.backlog, true);
    assert.equal(back.params?.data, "first\n");
    await Deno.writeTextFile(gate, "");
    const live = await watcher.next((m) =>
      m.method === "observe.output" && m.params?.type === "stderr"
    );
    assert.equal(live.params?.data, "second\n");
    assert.equal(live.params?.backlog, undefined);
    await owner.completed("quiet");
    assert.equal(observed(watcher, sid, "chatty"), "first\nsecond\n");
    assert.equal(observed(watcher, sid, "quiet"), "");
    // Choosing nothing stops the output.
    await watcher.call(2, "watch", { output: [] });
    await Deno.remove(gate);
    await owner.close();
    await watcher.close();
  });
});

Deno.test("label and meta of execute reach jobs, watch, observe.job and the server log; output carries when", async () => {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  await withServer(
    { log: (msg, fields) => lines.push({ msg, fields: fields ?? {} }) },
    async (server) => {
      const owner = await RawSession.open(server.url);
      const sid = await sessionId(owner);
      const watcher = await RawSession.open(server.url);
      await watcher.call("w0", "watch", {});
      const meta = { suite: "demo", run_id: "run-1", run_total: 2, task_id: "t1", prompt: "Hi?" };
      const before = Date.now() / 1000;
      const r = await owner.call("e1", "execute", {
        job_id: "tagged",
        argv: ["sh", "-c", "echo out; sleep 30"],
        label: "t1 · the first task",
        meta,
      });
      assert.ok(r.result, JSON.stringify(r.error));
      const st = await watcher.next(jobEvent("started", "tagged"));
      const job = st.params?.job as Job;
      assert.equal(job.label, "t1 · the first task");
      assert.deepEqual(job.meta, meta);
      assert.deepEqual(job.argv, ["sh", "-c", "echo out; sleep 30"]);
      // The owner's `jobs` says it too.
      const own = await owner.call("j", "jobs");
      const listed = (own.result?.jobs as Job[]).find((j) => j.job_id === "tagged")!;
      assert.equal(listed.label, "t1 · the first task");
      assert.deepEqual(listed.meta, meta);
      // So does a new watch snapshot, and the followed output says when it was read.
      await owner.next((m) => m.method === "process.output" && m.params?.job_id === "tagged");
      const w = await watcher.call("w1", "watch", {
        output: [{ session_id: sid, job_id: "tagged" }],
      });
      const snap = (w.result?.jobs as Job[]).find((j) => j.job_id === "tagged")!;
      assert.equal(snap.label, "t1 · the first task");
      const out = await watcher.next((m) => m.method === "observe.output");
      const at = Number(out.params?.at);
      assert.ok(at >= before - 1 && at <= Date.now() / 1000 + 1, `at ${at}`);
      // The server log names the job by its label, and its fields carry label and meta.
      const started = lines.find((l) =>
        l.fields.event === "job_started" && l.fields.job_id === "tagged"
      )!;
      assert.match(
        started.msg,
        /^job tagged started pid=\d+ session=\w+ label="t1 · the first task" /,
      );
      assert.equal(started.fields.label, "t1 · the first task");
      assert.deepEqual(started.fields.meta, meta);
      // A job without them has neither.
      await start(owner, "plain", "true");
      const plain = (await watcher.next(jobEvent("started", "plain"))).params?.job as Job;
      assert.equal("label" in plain || "meta" in plain || "argv" in plain, false);
      const bad = await owner.call("e2", "execute", { command: "true", label: "x".repeat(201) });
      assert.equal(bad.error?.code, -32602);
      assert.equal(bad.error?.data?.field, "label");
      assert.match(bad.error!.message, /^label: at most 200 characters, got 201$/);
      await owner.close();
      await watcher.close();
    },
  );
});

Deno.test("an observer pauses, resumes and cancels another session's job; its group is gone", async () => {
  await withServer({ graceMs: 300 }, async (server) => {
    const owner = await RawSession.open(server.url);
    const sid = await sessionId(owner);
    const watcher = await RawSession.open(server.url);
    await watcher.call(1, "watch", {});
    const r = await start(owner, "long", "sh -c 'sleep 1000' & echo ready; sleep 1000; wait");
    await owner.next((m) => m.method === "process.output" && m.params?.job_id === "long");
    await waitFor(
      () => processesInGroup(r.pid).filter((x) => x.cmd === "sleep").length === 2,
      "the job's two sleeps",
    );

    const p = await watcher.call(2, "control", { type: "PAUSE", session_id: sid, job_id: "long" });
    assert.deepEqual(p.result, { status: "paused", job_id: "long" });
    await owner.next((m) => m.method === "process.paused" && m.params?.job_id === "long");
    await watcher.next(jobEvent("paused", "long"));
    await waitForPause(r.pid);
    const q = await watcher.call(3, "control", { type: "RESUME", session_id: sid, job_id: "long" });
    assert.equal(q.result?.status, "resumed");
    await watcher.next(jobEvent("resumed", "long"));
    // The processes run again (none stopped), not just a notification saying so.
    await waitForResume(r.pid);

    const c = await watcher.call(4, "control", { type: "CANCEL", session_id: sid, job_id: "long" });
    assert.equal(c.result?.status, "canceled");
    await owner.next((m) => m.method === "process.canceled" && m.params?.job_id === "long");
    const done = await owner.completed("long");
    assert.equal(done.params?.status, "canceled");
    assert.deepEqual(processesInGroup(r.pid), []);
    await watcher.next(jobEvent("completed", "long"));

    const again = await watcher.call(5, "control", {
      type: "CANCEL",
      session_id: sid,
      job_id: "long",
    });
    assert.equal(again.error?.code, -32003);
    const unknown = await watcher.call(6, "control", {
      type: "CANCEL",
      session_id: sid,
      job_id: "nope",
    });
    assert.equal(unknown.error?.code, -32003);
    const noJob = await watcher.call(7, "control", { type: "CANCEL", session_id: sid });
    assert.equal(noJob.error?.data?.field, "job_id");
    await owner.close();
    await watcher.close();
  });
});

Deno.test("finished jobs stay listed for a bounded number and time, then `removed`", async () => {
  await withServer({ keepFinished: 2 }, async (server) => {
    const owner = await RawSession.open(server.url);
    const watcher = await RawSession.open(server.url);
    await watcher.call(1, "watch", {});
    for (const id of ["a", "b", "c"]) {
      await start(owner, id, "true");
      await owner.completed(id);
    }
    await watcher.next(jobEvent("removed", "a"));
    const jobs = ((await watcher.call(2, "watch", {})).result?.jobs as Job[]).map((j) => j.job_id);
    assert.deepEqual(jobs, ["b", "c"]);
    for (const s of [owner, watcher]) await s.close();
  });
  await withServer({ keepFinishedS: 0.001 }, async (server) => {
    const owner = await RawSession.open(server.url);
    const watcher = await RawSession.open(server.url);
    await start(owner, "x", "true");
    await owner.completed("x");
    await new Promise((r) => setTimeout(r, 20)); // past the 1 ms it may stay listed
    const jobs = (await watcher.call(1, "watch", {})).result?.jobs as Job[];
    assert.deepEqual(jobs, []);
    for (const s of [owner, watcher]) await s.close();
  });
});

Deno.test("jobs of a session that closed stay listed as finished (canceled)", async () => {
  await withServer({ graceMs: 200 }, async (server) => {
    const watcher = await RawSession.open(server.url);
    await watcher.call(1, "watch", {});
    const owner = await RawSession.open(server.url);
    await start(owner, "orphan", "sleep 1000");
    await owner.close();
    const done = await watcher.next(jobEvent("completed", "orphan"));
    assert.equal((done.params?.job as Job).status, "canceled");
    const jobs = (await watcher.call(2, "watch", {})).result?.jobs as Job[];
    assert.deepEqual(jobs.map((j) => j.status), ["canceled"]);
    await watcher.close();
  });
});

Deno.test("watch and cross-session control need the token; the browser subprotocol carries it", async () => {
  await withServer({ token: "s3cr€t" }, async (server) => {
    const b64 = new TextEncoder().encode("s3cr€t").toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
    const wrong = new TextEncoder().encode("nope").toBase64({ alphabet: "base64url" });
    const proto = (t: string) => ({ "sec-websocket-protocol": `ccx, ccx.token.${t}` });
    assert.equal(await handshakeStatus(server.port, "/ws", proto(b64)), 101);
    assert.equal(await handshakeStatus(server.port, "/ws", proto(wrong)), 401);
    assert.equal(await handshakeStatus(server.port, "/ws", proto("!!!")), 401);
    assert.equal(await handshakeStatus(server.port, "/ws"), 401);
    // Without `ccx` among the offers the token subprotocol still counts (scripts may send it).
    assert.equal(
      await handshakeStatus(server.port, "/ws", { "sec-websocket-protocol": `ccx.token.${b64}` }),
      101,
    );
    // A real WebSocket client offering the subprotocols gets `ccx` back and may watch.
    const ws = new WebSocket(server.url, ["ccx", `ccx.token.${b64}`]);
    const s = await new Promise<WebSocket>((res, rej) => {
      ws.onopen = () => res(ws);
      ws.onerror = (e) => rej(new Error((e as ErrorEvent).message));
    });
    assert.equal(s.protocol, "ccx");
    const reply = new Promise<Msg>((res) => {
      ws.onmessage = (ev) => {
        const m = JSON.parse(String(ev.data)) as Msg;
        if (m.id === 1) res(m);
      };
    });
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "watch", params: {} }));
    assert.deepEqual((await reply).result?.jobs, []);
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
  });
  await withServer({ token: "s3cret" }, async (server) => {
    // The Bearer header works as before, and such a session may observe too.
    const bearer = await RawSession.open(server.url, { authorization: "Bearer s3cret" });
    const c = await bearer.next((m) => m.method === "connected");
    assert.ok((c.params?.capabilities as { methods: string[] }).methods.includes("watch"));
    assert.ok((await bearer.call(1, "watch", {})).result);
    await bearer.close();
  });
});

Deno.test("a browser Origin other than the server's own is refused even with the token", async () => {
  await withServer({ token: "t0k" }, async (server) => {
    const b64 = new TextEncoder().encode("t0k").toBase64({ alphabet: "base64url" });
    const headers = { "sec-websocket-protocol": `ccx, ccx.token.${b64}` };
    assert.equal(
      await handshakeStatus(server.port, "/ws", { ...headers, origin: "http://evil.example" }),
      403,
    );
    assert.equal(
      await handshakeStatus(server.port, "/ws", { ...headers, origin: server.httpUrl }),
      101,
    );
  });
});

Deno.test("watch params are validated with the field named", async () => {
  await withServer({}, async (server) => {
    const s = await RawSession.open(server.url);
    const sid = await sessionId(s);
    const bad = await s.call(1, "watch", { output: "all" });
    assert.equal(bad.error?.code, -32602);
    assert.equal(bad.error?.data?.field, "output");
    assert.equal(
      bad.error?.message,
      'output: expected an array of {session_id, job_id}, got "all"',
    );
    const bad2 = await s.call(2, "watch", { output: [{ session_id: sid }] });
    assert.equal(bad2.error?.data?.field, "output[0].job_id");
    assert.equal(bad2.error?.message, "output[0].job_id: required");
    const missing = await s.call(3, "watch", { output: [{ session_id: sid, job_id: "zz" }] });
    assert.equal(missing.error?.code, -32003);
    // A failed watch subscribes to nothing.
    await s.call(4, "execute", { job_id: "mine", command: "true" });
    await s.completed("mine");
    assert.deepEqual(s.messages.filter((m) => m.method?.startsWith("observe.")), []);
    await s.close();
  });
  assert.deepEqual(validateWatch(undefined), {});
  assert.throws(() => validateWatch([1]), /params as an object/);
  assert.deepEqual(validateWatch({ output: null }), {});
  // The whole JSON path of the bad value, in the message and in data.field.
  for (
    const [params, field, message] of [
      [{ output: [7] }, "output[0]", "output[0]: expected an object, got 7"],
      [
        { output: [{ session_id: "s", job_id: "j" }, { session_id: "s", job_id: 5 }] },
        "output[1].job_id",
        "output[1].job_id: expected a string, got 5",
      ],
    ] as const
  ) {
    assert.throws(() => validateWatch(params), (e: unknown) => {
      assert.ok(e instanceof RpcError, String(e));
      assert.equal(e.code, -32602);
      assert.equal(e.message, message);
      assert.deepEqual(e.data, { field });
      return true;
    });
  }
});

Deno.test("history answers the timeout history's classes with counts and estimates", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/history.sqlite`;
  const store = new SqliteHistory({ path });
  const cls = taskClass("What is 2+2?");
  for (const d of [3, 4, 5]) {
    await store.record({ ...cls, durationS: d, outcome: "success", at: Date.now() });
  }
  await store.close();
  try {
    await withServer(
      { openHistory: () => Promise.resolve(new SqliteHistory({ path })) },
      async (server) => {
        const s = await RawSession.open(server.url);
        const h = await s.call(1, "history");
        const r = h.result as { location: string; classes: Record<string, unknown>[] };
        assert.equal(r.location, path);
        assert.equal(r.classes.length, 1);
        assert.equal(r.classes[0].key, cls.key);
        assert.equal(r.classes[0].count, 3);
        assert.equal(r.classes[0].successes, 3);
        assert.equal(typeof r.classes[0].estimateS, "number");
        // In a batch, the answer waits for the store and keeps its place.
        s.send([
          { jsonrpc: "2.0", id: "a", method: "ping" },
          { jsonrpc: "2.0", id: "b", method: "history" },
        ]);
        const batch = await s.next((m) => Array.isArray(m));
        const items = batch as unknown as Msg[];
        assert.deepEqual(items.map((m) => m.id), ["a", "b"]);
        assert.equal((items[1].result?.classes as unknown[]).length, 1);
        await s.close();
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Registers a running job "j" of session "s" with the hub, as the server would. */
function startedJob(hub: ObserverHub) {
  return hub.started({
    sessionId: "s",
    remote: "127.0.0.1:1",
    jobId: "j",
    command: "x",
    pid: 1,
    state: () => "running",
    bytes: () => ({ stdout: 0, stderr: 0 }),
    elapsed: () => 0,
    control: () => ({ result: {} }),
  });
}

Deno.test("ObserverHub keeps a bounded tail and says when it was cut", () => {
  const hub = new ObserverHub({ facts: () => ({}), tailChars: 10 });
  const rec = startedJob(hub);
  for (let i = 0; i < 5; i++) hub.output(rec, "stdout", `line${i}\n`, i);
  const sent: Msg[] = [];
  const { after } = hub.watch({ send: (m) => sent.push(m as Msg), congested: () => false }, {
    output: [{ session_id: "s", job_id: "j" }],
  });
  assert.equal(sent.length, 0, "the backlog waits for the reply");
  after();
  assert.deepEqual(sent.map((m) => m.params?.data), ["line4\n"]);
  assert.equal(sent[0].params?.truncated, true);
  hub.close();
});

Deno.test("ObserverHub skips output for a backed-up observer and says how much it skipped", () => {
  const hub = new ObserverHub({ facts: () => ({}) });
  const rec = startedJob(hub);
  const sent: Msg[] = [];
  let congested = false;
  hub.watch({ send: (m) => sent.push(m as Msg), congested: () => congested }, {
    output: [{ session_id: "s", job_id: "j" }],
  });
  hub.output(rec, "stdout", "a\n", 0);
  congested = true;
  hub.output(rec, "stdout", "bbb\n", 1);
  hub.output(rec, "stderr", "cc\n", 2);
  congested = false;
  hub.output(rec, "stdout", "d\n", 3);
  const out = sent.filter((m) => m.method === "observe.output");
  assert.deepEqual(out.map((m) => m.params?.data), ["a\n", "d\n"]);
  assert.equal(out[1].params?.dropped_chars, 7);
  assert.equal(out[0].params?.dropped_chars, undefined);
  hub.close();
});

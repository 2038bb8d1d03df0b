import assert from "node:assert/strict";
import { CcxClient, ClientError, runToEnd } from "../lib/client/client.ts";
import { CcxServer } from "../lib/serve/server.ts";
import {
  processesInGroup,
  selfSignedCert,
  serveProcess,
  waitFor,
  waitForPause,
  waitForResume,
  withServer,
} from "./_util/helpers.ts";

Deno.test("connect() learns the session id and server version", async () => {
  await withServer({}, async (server) => {
    const c = await CcxClient.connect(server.url);
    assert.match(c.sessionId, /^[0-9a-f-]{36}$/);
    assert.equal(c.serverVersion, "0.1.0");
    await c.close();
    assert.ok(c.closed);
  });
});

Deno.test("runToEnd() collects stdout and stderr and the completion", async () => {
  await withServer({}, async (server) => {
    const c = await CcxClient.connect(server.url);
    const seen: string[] = [];
    const r = await runToEnd(c, { command: "echo one; echo two >&2; exit 4" }, {
      onOutput: (type, data) => seen.push(`${type}:${data}`),
    });
    assert.equal(r.stdout, "one\n");
    assert.equal(r.stderr, "two\n");
    assert.equal(r.status, "failed");
    assert.equal(r.exitCode, 4);
    assert.deepEqual(seen.sort(), ["stderr:two\n", "stdout:one\n"]);
    await c.close();
  });
});

Deno.test("the ccx client asks for chunks; lines only when its caller says so", async () => {
  await withServer({}, async (server) => {
    const c = await CcxClient.connect(server.url);
    const count = async (output_mode?: "lines" | "chunks") => {
      let messages = 0;
      const r = await runToEnd(c, { argv: ["seq", "1", "5000"], output_mode }, {
        onOutput: () => messages++,
      });
      assert.equal(r.stdout.split("\n").length, 5001);
      return messages;
    };
    const chunks = await count();
    assert.ok(chunks < 100, `${chunks} messages for 5,000 lines`);
    assert.equal(await count("lines"), 5000);
    await c.close();
  });
});

Deno.test("a job can be paused, resumed and canceled through the client", async () => {
  await withServer({ graceMs: 200 }, async (server) => {
    const c = await CcxClient.connect(server.url);
    let out = "";
    const job = await c.execute({ command: "echo go; sleep 100" }, {
      onOutput: (_t, d) => (out += d),
    });
    await waitFor(() => out.includes("go"), "output");
    await job.pause();
    await waitForPause(job.pgid);
    await job.resume();
    await waitForResume(job.pgid);
    const end = await job.cancel();
    assert.equal(end.status, "canceled");
    assert.deepEqual(processesInGroup(job.pgid), []);
    await c.close();
  });
});

Deno.test("server errors become ClientError with the JSON-RPC code and data", async () => {
  await withServer({}, async (server) => {
    const c = await CcxClient.connect(server.url);
    await assert.rejects(
      () => c.execute({ command: "true", timeout: -1 }),
      (e: unknown) =>
        e instanceof ClientError && e.code === -32602 &&
        (e.data as { field: string }).field === "timeout",
    );
    await assert.rejects(
      () => c.request("nope"),
      (e: unknown) => (e as ClientError).code === -32601,
    );
    await c.close();
  });
});

Deno.test("Claude limits noticed by the server are on the completion", async () => {
  await withServer({}, async (server) => {
    const c = await CcxClient.connect(server.url);
    const r = await runToEnd(c, { argv: ["echo", "Claude AI usage limit reached|1900000000"] });
    assert.equal(r.limits.length, 1);
    assert.equal(r.limits[0].kind, "rate_limit");
    assert.equal(r.limits[0].resetTimestamp, 1900000000);
    await c.close();
  });
});

Deno.test("a token is sent as a Bearer header; a wrong one fails to connect", async () => {
  await withServer({ token: "t0k" }, async (server) => {
    const ok = await CcxClient.connect(server.url, { token: "t0k" });
    assert.equal((await ok.request("ping") as { pong: boolean }).pong, true);
    await ok.close();
    await assert.rejects(() => CcxClient.connect(server.url, { token: "bad" }), ClientError);
  });
});

Deno.test("wss://: a wrong or missing token is reported as the 401 it was, not as Deno's HTTP/2 retry", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await selfSignedCert(dir);
    const cert = await Deno.readTextFile(files.cert);
    const tls = { cert, key: await Deno.readTextFile(files.key) };
    await withServer({ token: "t0k", tls }, async (server) => {
      assert.match(server.url, /^wss:/);
      const ok = await CcxClient.connect(server.url, { token: "t0k", ca: cert });
      await ok.close();
      await assert.rejects(
        () => CcxClient.connect(server.url, { token: "bad", ca: cert }),
        (e: unknown) =>
          e instanceof ClientError &&
          /Invalid status code: 401: the server refused the token$/.test(e.message),
      );
      await assert.rejects(
        () => CcxClient.connect(server.url, { ca: cert }),
        (e: unknown) =>
          e instanceof ClientError &&
          /Invalid status code: 401: the server requires a token$/.test(e.message),
      );
      // Another refusal is reported by its status too.
      await assert.rejects(
        () => CcxClient.connect(server.url.replace(/\/ws$/, "/nope"), { token: "t0k", ca: cert }),
        (e: unknown) => e instanceof ClientError && /Invalid status code: 404$/.test(e.message),
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ws://: a wrong token is said to be refused", async () => {
  await withServer({ token: "t0k" }, async (server) => {
    await assert.rejects(
      () => CcxClient.connect(server.url, { token: "bad" }),
      (e: unknown) =>
        e instanceof ClientError &&
        /Invalid status code: 401: the server refused the token$/.test(e.message),
    );
  });
});

Deno.test("connecting to nothing fails with a message naming the URL", async () => {
  await assert.rejects(
    () => CcxClient.connect("ws://127.0.0.1:1/ws", { timeoutMs: 3000 }),
    (e: unknown) => e instanceof ClientError && e.message.includes("ws://127.0.0.1:1/ws"),
  );
});

Deno.test("when the server shuts down, running jobs complete as killed", async () => {
  const server = CcxServer.start({ port: 0, log: () => {}, heartbeatS: 0, graceMs: 200 });
  const c = await CcxClient.connect(server.url);
  const job = await c.execute({ command: "sleep 100" });
  await server.shutdown();
  const end = await job.done;
  assert.equal(end.status, "killed");
  assert.deepEqual(processesInGroup(job.pgid), []);
  await c.close();
});

Deno.test("closing the client rejects its unfinished jobs and the server ends them", async () => {
  await withServer({ graceMs: 200 }, async (server) => {
    const c = await CcxClient.connect(server.url);
    const job = await c.execute({ command: "sleep 100" });
    await c.close();
    await assert.rejects(() => job.done, ClientError);
    await waitFor(() => processesInGroup(job.pgid).length === 0, "the job's group to end");
  });
});

Deno.test("endedByShutdown(): a job the server's shutdown killed is told by the close 1001, even when a sibling job lasts the grace", async () => {
  await withServer({ graceMs: 1500 }, async (server) => {
    const c = await CcxClient.connect(server.url);
    const up = new Set<string>();
    const seen = (id: string) => ({ onOutput: () => void up.add(id) });
    const quick = await c.execute({ command: "echo up; sleep 100" }, seen("quick"));
    // Ignores SIGTERM: it lasts the whole grace, until SIGKILL.
    const stubborn = await c.execute({ command: "trap '' TERM; echo up; sleep 101" }, seen("s"));
    await waitFor(() => up.size === 2, "both jobs up");
    const stopping = server.shutdown();
    assert.equal((await quick.done).status, "killed");
    const t0 = performance.now();
    assert.equal(await c.endedByShutdown(), true);
    // The close came only once the sibling had died, past the grace: later than the 1 s that
    // the old rule ("closed within 1 s of a killed job") allowed.
    assert.ok(performance.now() - t0 >= 1000, `closed after ${performance.now() - t0} ms`);
    assert.deepEqual(c.closeInfo, { code: 1001, reason: "server shutting down" });
    assert.equal((await stubborn.done).status, "killed");
    await stopping;
  });
});

Deno.test("endedByShutdown(): a job killed by a signal of its own on a live server is no shutdown", async () => {
  await withServer({ graceMs: 200 }, async (server) => {
    const c = await CcxClient.connect(server.url);
    const r = await runToEnd(c, { command: "kill -9 $$" });
    assert.equal(r.status, "killed");
    assert.equal(await c.endedByShutdown({ settleMs: 200 }), false, "open, with no job left");
    assert.equal(c.closed, false);
    // Another job still runs here: the wait ends as soon as the server starts a new one,
    // which a server that is shutting down never does.
    const other = await c.execute({ command: "sleep 100" });
    assert.equal((await runToEnd(c, { command: "kill -9 $$" })).status, "killed");
    const waiting = c.endedByShutdown({ maxMs: 60_000 });
    await c.execute({ command: "true" });
    assert.equal(await waiting, false);
    await other.cancel();
    await c.close();
  });
});

Deno.test("endedByShutdown(): a connection that ends without 1001 (the server killed) is no shutdown", async () => {
  const srv = await serveProcess();
  try {
    const c = await CcxClient.connect(srv.url);
    const other = await c.execute({ command: "sleep 100" });
    assert.equal((await runToEnd(c, { command: "kill -9 $$" })).status, "killed");
    const waiting = c.endedByShutdown();
    srv.child.kill("SIGKILL");
    assert.equal(await waiting, false);
    assert.notEqual(c.closeInfo?.code, 1001);
    await assert.rejects(other.done, ClientError);
  } finally {
    await srv.stop("SIGKILL");
  }
});

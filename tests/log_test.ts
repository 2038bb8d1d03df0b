import assert from "node:assert/strict";
import { createLogger, filterLogger } from "../lib/common/log.ts";
import { QUIET_EVENTS } from "../lib/commands/serve.ts";
import { serveProcess } from "./_util/helpers.ts";
import { RawSession, stalledClient } from "./_util/ws.ts";
import { HINTS, probeChattr, requireCapability } from "./_util/capability.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

Deno.test("text log lines start with an ISO timestamp; non-info levels are named", () => {
  const lines: string[] = [];
  const log = createLogger("text", (l) => lines.push(l));
  log("job j1 started", { event: "job_started", job_id: "j1" });
  log("too slow", { level: "warn" });
  const [ts, ...rest] = lines[0].split(" ");
  assert.match(ts, ISO);
  assert.equal(rest.join(" "), "[ccx] job j1 started");
  assert.match(lines[1], /^\S+ \[ccx\] warn: too slow$/);
});

Deno.test("json log lines are one object each with ts, level, msg and the fields", () => {
  const lines: string[] = [];
  createLogger("json", (l) => lines.push(l))("hi", { event: "x", pid: 3 });
  const o = JSON.parse(lines[0]);
  assert.match(o.ts, ISO);
  assert.deepEqual({ ...o, ts: "" }, { ts: "", level: "info", msg: "hi", event: "x", pid: 3 });
});

Deno.test("ccx serve --log-format json writes one JSON object a line for jobs and shutdown", async () => {
  const { child, reader: out, url, stderrEnded } = await serveProcess(
    ["--port", "0", "--log-format", "json"],
    undefined,
    { bare: true },
  );
  const s = await RawSession.open(url);
  const r = await s.call(1, "execute", { command: "echo hi" });
  await s.completed(String(r.result?.job_id));
  await s.close();
  child.kill("SIGTERM");
  const [status, err] = await Promise.all([
    child.status,
    stderrEnded,
    out.cancel(),
  ]);
  assert.equal(status.code, 0);
  const lines = err.trim().split("\n").map((l) => JSON.parse(l));
  for (const l of lines) assert.match(l.ts, ISO);
  const events = lines.map((l) => l.event);
  for (const e of ["job_started", "job_ended", "shutdown"]) assert.ok(events.includes(e), e);
  assert.equal(lines.find((l) => l.event === "job_ended").status, "completed");
});

Deno.test("filterLogger passes on only the lines it keeps, fields and all", () => {
  const lines: string[] = [];
  const log = filterLogger(
    createLogger("json", (l) => lines.push(l)),
    (_m, f) => f.level === "warn",
  );
  log("job j1 started", { event: "job_started" });
  log("disk full", { level: "warn", event: "journal_unwritable", path: "/x" });
  assert.equal(lines.length, 1);
  assert.deepEqual(
    { ...JSON.parse(lines[0]), ts: "" },
    { ts: "", level: "warn", msg: "disk full", event: "journal_unwritable", path: "/x" },
  );
  assert.deepEqual([...QUIET_EVENTS].sort(), ["connection_dropped", "job_ended", "job_started"]);
});

/** The JSON log lines of a server's stderr. */
function jsonLines(text: string): { level: string; msg: string; event?: string }[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

Deno.test("ccx serve --quiet leaves out the job lines and keeps the server's: a client dropped at shutdown, the shutdown", async () => {
  const srv = await serveProcess(
    ["--quiet", "--log-format", "json", "--grace-ms", "100", "--drain-s", "0.3"],
  );
  let stalled: Deno.TcpConn | undefined;
  try {
    const s = await RawSession.open(srv.url);
    const r = await s.call(1, "execute", { command: "echo hi" });
    await s.completed(String(r.result?.job_id));
    // A client that never reads its endless output: the shutdown drops it at its deadline.
    stalled = await stalledClient(
      srv.port,
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "execute", params: { command: "yes" } }),
    );
    const end = Date.now() + 10_000;
    while ((await (await fetch(`http://127.0.0.1:${srv.port}/health`)).json()).running_jobs < 1) {
      if (Date.now() > end) assert.fail("the unread client's job did not start");
      await new Promise((r) => setTimeout(r, 20));
    }
    srv.child.kill("SIGTERM");
    assert.equal((await srv.child.status).code, 0);
    const lines = jsonLines(await srv.stderrEnded);
    const events = lines.map((l) => l.event);
    assert.ok(!events.includes("job_started") && !events.includes("job_ended"), events.join());
    const drop = lines.find((l) => l.event === "shutdown_client_dropped");
    assert.equal(drop?.level, "warn", JSON.stringify(lines));
    assert.match(drop!.msg, /output not read by the drain deadline/);
    for (const e of ["shutdown", "shutdown_drained", "shutdown_done"]) {
      assert.ok(events.includes(e), `${e} in ${events.join()}`);
    }
  } finally {
    stalled?.close();
    await srv.stop("SIGKILL");
  }
});

const CHATTR = requireCapability("chattr", probeChattr, HINTS.chattr);

Deno.test({
  name: "ccx serve --quiet still says a workspace cannot be removed",
  ignore: CHATTR.ignore,
  async fn() {
    CHATTR.need();
    const root = await Deno.makeTempDir({ prefix: "ccx-log-quiet-" });
    const srv = await serveProcess(["--workspace-root", root]);
    try {
      const s = await RawSession.open(srv.url);
      const r = await s.call(1, "execute", {
        command: "echo x > f && chattr +i f",
        workspace: { keep: "never" },
      });
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      await s.completed(String(r.result?.job_id));
      await s.close();
      await srv.waitStderr(/warn: workspace .* cannot be removed .*moved to/);
      assert.doesNotMatch(srv.stderr(), /job .* (started|completed)/);
    } finally {
      await srv.stop();
      new Deno.Command("chattr", { args: ["-R", "-i", root], stderr: "null" }).outputSync();
      await Deno.remove(root, { recursive: true });
    }
  },
});

/** Runs `code` (a module that may import the logger as LOG) in a fresh Deno; its output. */
async function runLogging(code: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const url = new URL("../lib/common/log.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `import * as LOG from "${url}";\n${code}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("stderr: the job lines of a burst go out in one write a timer turn later; warnings and other lines at once", async () => {
  const r = await runLogging(`
    const writes = [];
    const write = Deno.stderr.writeSync.bind(Deno.stderr);
    Deno.stderr.writeSync = (b) => { writes.push(b.length); return write(b); };
    const log = LOG.createLogger("text");
    for (let i = 0; i < 100; i++) {
      log("job " + i + " started", { event: "job_started" });
      log("job " + i + " completed", { event: "job_ended" });
    }
    const inTurn = writes.length;
    await new Promise((r) => setTimeout(r, 20));
    const afterTurn = writes.length;
    log("careful", { level: "warn" });
    const afterWarn = writes.length;
    log("crash journal written again", { event: "journal_written" });
    console.log(JSON.stringify({ inTurn, afterTurn, afterWarn, afterInfo: writes.length }));
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { inTurn: 0, afterTurn: 1, afterWarn: 2, afterInfo: 3 });
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 202);
  assert.match(lines[0], /\[ccx\] job 0 started$/);
  assert.match(lines[200], /\[ccx\] warn: careful$/);
  assert.match(lines[201], /\[ccx\] crash journal written again$/);
});

Deno.test("log lines still gathered when the process ends are written (Deno.exit, or the end)", async () => {
  for (const end of ["Deno.exit(3)", ""]) {
    const r = await runLogging(`
      const log = LOG.createLogger("json");
      for (let i = 0; i < 5; i++) log("line " + i, { event: "job_started" });
      ${end}
    `);
    assert.equal(r.code, end ? 3 : 0);
    const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l).msg);
    assert.deepEqual(lines, ["line 0", "line 1", "line 2", "line 3", "line 4"], end || "end");
  }
});

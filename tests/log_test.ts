import assert from "node:assert/strict";
import { createLogger } from "../lib/common/log.ts";
import { serveProcess } from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";

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
  const { child, reader: out, url } = await serveProcess(
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
    new Response(child.stderr).text(),
    out.cancel(),
  ]);
  assert.equal(status.code, 0);
  const lines = err.trim().split("\n").map((l) => JSON.parse(l));
  for (const l of lines) assert.match(l.ts, ISO);
  const events = lines.map((l) => l.event);
  for (const e of ["job_started", "job_ended", "shutdown"]) assert.ok(events.includes(e), e);
  assert.equal(lines.find((l) => l.event === "job_ended").status, "completed");
});

/**
 * lib/serve/local.ts: the private server of one ccx process takes only its own token and says
 * only what is wrong with itself.
 * @module
 */

import assert from "node:assert/strict";
import { randomToken, startLocalServer, warningsOnly } from "../lib/serve/local.ts";
import { CcxClient } from "../lib/client/client.ts";
import { STATE_DIR, upgradeStatus } from "./_util/helpers.ts";

Deno.test("randomToken() is 64 hex digits, a new one each time", () => {
  const a = randomToken();
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(randomToken(), a);
});

Deno.test("warningsOnly() passes on warnings and errors, and every crash-journal line", () => {
  const lines: string[] = [];
  const { log, alert } = warningsOnly((l) => lines.push(l));
  log("job j1 started", { event: "job_started" });
  log("shutdown: done", { event: "shutdown_done" });
  log("workspace w cannot be removed", { level: "warn", event: "workspace_unremovable" });
  log("HTTP server could not restart", { level: "error" });
  alert("crash journal j written again", { event: "journal_written" });
  assert.deepEqual(lines, [
    "workspace w cannot be removed",
    "HTTP server could not restart",
    "crash journal j written again",
  ]);
});

Deno.test("startLocalServer(): loopback, its own token works, none or another is refused", async () => {
  const warned: string[] = [];
  const local = startLocalServer({
    journalDir: `${STATE_DIR}/jobs`,
    warn: (l) => warned.push(l),
    host: "0.0.0.0", // ignored: a private server is on loopback
  });
  try {
    assert.match(local.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    assert.equal(local.server.hostname, "127.0.0.1");
    const c = await CcxClient.connect(local.url, { token: local.token });
    assert.equal((await c.request("ping") as { pong: boolean }).pong, true);
    await c.close();
    await assert.rejects(CcxClient.connect(local.url), /401/);
    await assert.rejects(CcxClient.connect(local.url, { token: randomToken() }), /401/);
    assert.match(await upgradeStatus(local.server.port), /^HTTP\/1\.1 401\b/);
  } finally {
    await local.server.shutdown();
  }
  assert.deepEqual(warned, []);
});

/** The live watch (lib/claude/live_watch.ts) on parsed stream-json events and its clocks. */

import assert from "node:assert/strict";
import { ClaudeLiveWatch } from "../lib/claude/live_watch.ts";
import { ClaudeStreamParser } from "../lib/claude/stream.ts";
import { line } from "./_util/stream_json.ts";

Deno.test("ClaudeLiveWatch ends at once on a 401/403 retry and after the network bound, not on a 429", async () => {
  const kinds: string[] = [];
  const watch = (o: Partial<ConstructorParameters<typeof ClaudeLiveWatch>[0]> = {}) =>
    new ClaudeLiveWatch({ onFailure: (f) => kinds.push(f.kind), ...o });
  const p = () => new ClaudeStreamParser();
  const retry = (status: number | null, error: string) =>
    line({ type: "system", subtype: "api_retry", attempt: 1, error_status: status, error });

  const auth = watch();
  auth.output(p().push(retry(403, "authentication_failed")));
  assert.equal(auth.failure?.kind, "auth");
  auth.stop();

  const rate = watch();
  rate.output(p().push(retry(429, "rate_limit")));
  assert.equal(rate.failure, undefined);
  rate.stop();

  const done = Promise.withResolvers<void>();
  const net = new ClaudeLiveWatch({
    networkGiveUpS: 0.05,
    onFailure: (f) => {
      kinds.push(f.kind);
      done.resolve();
    },
  });
  net.output(p().push(retry(null, "unknown")));
  await done.promise;
  assert.equal(net.failure?.kind, "network");
  net.stop();
  assert.deepEqual(kinds, ["auth", "network"]);
});

Deno.test("ClaudeLiveWatch: the stall clock waits out the startup grace before the first output", async () => {
  const t0 = performance.now();
  const done = Promise.withResolvers<string>();
  const w = new ClaudeLiveWatch({
    stallTimeoutS: 0.02,
    startupGraceS: 0.3,
    onFailure: (f) => done.resolve(f.message),
  });
  const message = await done.promise;
  w.stop();
  assert.ok(performance.now() - t0 >= 290, "not before the grace");
  assert.match(message, /no output at all for 0.3 s/);
  // After the first output, the stall timeout itself applies.
  const after = Promise.withResolvers<string>();
  const w2 = new ClaudeLiveWatch({
    stallTimeoutS: 0.02,
    startupGraceS: 30,
    onFailure: (f) => after.resolve(f.kind),
  });
  w2.output([]);
  assert.equal(await after.promise, "stall");
  w2.stop();
});

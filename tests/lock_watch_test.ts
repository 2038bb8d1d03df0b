import assert from "node:assert/strict";
import { LockWatch } from "../lib/fleet/lock_watch.ts";
import { waitFor } from "./_util/helpers.ts";

/** A Redis stand-in whose answers can be held back, as during an outage. */
function pingable() {
  let down = false;
  let held: (() => void)[] = [];
  return {
    ping: () => down ? new Promise<void>((r) => held.push(r)) : Promise.resolve(),
    down: () => down = true,
    up: () => {
      down = false;
      held.forEach((r) => r());
      held = [];
    },
  };
}

Deno.test("LockWatch: a lock not renewed for a whole lock period is lost, naming Redis when it is silent", async () => {
  const redis = pingable();
  const lost: [string, string][] = [];
  const watch = new LockWatch({
    name: "w1",
    lockMs: 400,
    ping: redis.ping,
    onLost: (id, note) => lost.push([id, note]),
  });
  watch.start();
  try {
    const kept = watch.track("kept");
    const gone = watch.track("gone");
    // Renewals keep "kept" going for two lock periods; "gone" hears of none.
    const renew = setInterval(() => watch.renewed(["kept"]), 100);
    await waitFor(() => lost.length > 0, "a lost lock", 5000);
    await new Promise((r) => setTimeout(r, 400));
    clearInterval(renew);
    assert.deepEqual(lost, [["gone", "worker w1 could not renew its 0.4 s lock"]]);
    assert.equal(gone.lost, "worker w1 could not renew its 0.4 s lock");
    assert.equal(kept.lost, undefined);
    // Redis goes silent: the next lost lock says so.
    redis.down();
    const t0 = performance.now();
    const late = watch.track("late");
    await waitFor(() => late.lost !== undefined, "the lock lost in the outage", 5000);
    assert.match(
      late.lost!,
      /^Redis was unreachable for 0\.\d s \(worker w1's lock lasts 0\.4 s\)$/,
    );
    // Once it answers again, the silence is measured.
    const silence = watch.silenceSince(t0);
    await new Promise((r) => setTimeout(r, 300));
    redis.up();
    const ms = await silence;
    assert.ok(ms >= 600, `silence of ${ms} ms`);
    assert.match(watch.describe(ms), /^Redis was unreachable for \d\.\d s/);
    // It remembers the silence for a while (a redelivered task then waits for its worker).
    assert.equal(watch.silentWithin(10_000), true);
    assert.equal(watch.silentWithin(0), false);
    // BullMQ's word that a lock is gone counts at once; untracked runs are not watched.
    const told = watch.track("told");
    watch.failed(["told", "unknown"]);
    assert.equal(told.lost, "worker w1 could not renew its 0.4 s lock");
    watch.untrack(told);
    assert.equal(watch.slot("told"), undefined);
  } finally {
    watch.stop();
  }
});

/**
 * Tests for `ccx stress --queue` (the fleet coordinator) against a real redis-server and real
 * `ccx worker` processes: Ctrl+C of the coordinator, two coordinators on one queue, and a
 * concurrent task whose instances spread over workers.
 * @module
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { cli, FAKE_CLAUDE, pidsMatching, STATE_DIR, waitFor } from "./_util/helpers.ts";
import { freePort, type RedisRelay, redisRelay } from "./_util/redis.ts";
import { redisTier } from "./_util/tier.ts";
import {
  exitCode,
  type Fleet,
  gatedSuite,
  jobKey,
  killWorker,
  readTests,
  type ReportTest,
  runningTasks,
  startCoordinator,
  startWorker,
  until,
  withFleet,
} from "./_util/fleet.ts";
import { checkQueueUrl, fleetKeys } from "../lib/fleet/queue.ts";

// The tier rule of tests/_util/tier.ts: a skip with one line, or a failure under CI=true.
const redisIgnore = redisTier();

Deno.test({
  name:
    "ccx stress --queue: Ctrl+C removes waiting tasks, cancels running ones, reports, exits 130",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, workers }) => {
      const r = new Redis(redis.url);
      try {
        workers.push(await startWorker(redis.url, "w1"), await startWorker(redis.url, "w2"));
        // The gate never opens: only Ctrl+C ends these tasks.
        const suite = await w.suite(gatedSuite(tag, w.path("never"), 5));
        const json = w.path("report.json");
        const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
        await waitFor(() => pidsMatching(tag).length === 2, "two tasks running", 60_000);
        // The queue's own bookkeeping can trail the processes a moment: wait for it, bounded.
        let waiting = -1;
        for (let i = 0; i < 100 && waiting !== 3; i++) {
          waiting = await r.llen("bull:ccx:wait");
          if (waiting !== 3) await new Promise((res) => setTimeout(res, 100));
        }
        assert.equal(waiting, 3);
        c.child.kill("SIGINT");
        assert.equal(await c.code, 130, c.out());
        // Nothing of the run keeps running on the workers, and nothing of it waits in the queue.
        await waitFor(() => pidsMatching(tag).length === 0, "the running tasks to end", 10_000);
        assert.equal(await r.llen("bull:ccx:wait"), 0);
        const all = await readTests(json);
        // The three that never started are listed as skipped; the two that ran were interrupted.
        assert.deepEqual(
          all.filter((t) => t.status === "skipped").map((t) => t.reason),
          ["interrupted", "interrupted", "interrupted"],
        );
        const tests = all.filter((t) => t.status !== "skipped");
        assert.equal(tests.length, 2, JSON.stringify(tests));
        for (const t of tests) {
          assert.equal(t.status, "error");
          assert.match(t.reason, /^interrupted/);
          assert.ok(t.worker === "w1" || t.worker === "w2");
        }
        // The run is marked canceled, so a worker that took one of its tasks at that moment drops it.
        assert.equal((await r.keys(fleetKeys("ccx").cancelKey("*"))).length, 1);
        // The workers are still there, idle, ready for the next run: a second suite on the same
        // queue runs one task on each of them at once (each takes one task at a time, and both
        // tasks wait on a gate that opens only when both run), and passes.
        const tag2 = `${tag}-second`;
        const go2 = w.path("go2");
        const second = await w.suite(gatedSuite(tag2, go2, 2, "again"), "second.json");
        const json2 = w.path("report2.json");
        const c2 = startCoordinator(redis.url, second, ["--json", json2, "--out", w.path("out2")]);
        try {
          await waitFor(
            () => runningTasks(tag2, "again").size === 2,
            "both tasks of the second suite running at once",
            60_000,
          );
        } finally {
          await Deno.writeTextFile(go2, "");
        }
        assert.equal(await c2.code, 0, c2.out());
        const again = await readTests(json2);
        assert.deepEqual(again.map((t) => t.status), ["passed", "passed"], JSON.stringify(again));
        assert.deepEqual(again.map((t) => t.worker).sort(), ["w1", "w2"]);
      } finally {
        r.disconnect();
      }
    }),
});

Deno.test({
  name: "ccx stress --queue: two coordinators share a queue and each gets only its own results",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go, workers }) => {
      await Deno.writeTextFile(go, "");
      workers.push(
        await startWorker(redis.url, "w1", ["-c", "2"]),
        await startWorker(redis.url, "w2", ["-c", "2"]),
      );
      // Same task ids in both suites; different answers.
      const a = await w.suite(gatedSuite(tag, go, 4, "alpha"), "a.json");
      const b = await w.suite(gatedSuite(tag, go, 4, "beta"), "b.json");
      // Run A records its history in Redis db 1 (--redis); run B lets the workers record it in
      // the queue's Redis (db 0).
      const ca = startCoordinator(redis.url, a, [
        "--json",
        w.path("a.r.json"),
        "--out",
        w.path("a"),
        "--redis",
        `${redis.url}/1`,
      ], true);
      const cb = startCoordinator(redis.url, b, [
        "--json",
        w.path("b.r.json"),
        "--out",
        w.path("b"),
      ], true);
      assert.equal(await ca.code, 0, ca.out());
      assert.equal(await cb.code, 0, cb.out());
      for (const [file, word] of [["a.r.json", "alpha"], ["b.r.json", "beta"]]) {
        const tests = await readTests(w.path(file));
        assert.deepEqual(tests.map((t) => t.id), ["t1", "t2", "t3", "t4"]);
        for (const t of tests) {
          assert.equal(t.status, "passed", `${file} ${t.id}: ${t.reason}`);
          const out = await Deno.readTextFile(t.output_file!);
          assert.match(out, new RegExp(`${word}-${t.id.slice(1)}`));
          assert.doesNotMatch(out, word === "alpha" ? /beta/ : /alpha/);
        }
      }
      for (const db of ["/1", ""]) {
        const h = await cli(["history", "--redis", `${redis.url}${db}`, "--json"]);
        assert.equal(h.code, 0, h.stderr);
        const classes = JSON.parse(h.stdout) as { count: number; label: string }[];
        assert.equal(classes.reduce((n, c) => n + c.count, 0), 4, `db${db}: ${h.stdout}`);
      }
    }),
});

Deno.test({
  name: "ccx stress --queue spreads a concurrent task's instances over workers, picks one",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, workers }) => {
      for (const n of ["w1", "w2", "w3"]) workers.push(await startWorker(redis.url, n));
      const suite = await w.suite({
        categories: {
          concurrent_execution: {
            tasks: [{
              id: "pick",
              // Each instance takes a while, so one worker cannot run two of them in turn. Each
              // answers with its own model and temperature, so which one was picked shows.
              command_template: `claude -p "${tag} [[startup:3000]] [[answer:forty-two from ` +
                `\${MODEL} at \${TEMPERATURE}]]" --model "\${MODEL}" --output-format ` +
                `stream-json --verbose --dangerously-skip-permissions`,
              concurrent_instances: 3,
              models: ["sonnet", "haiku", "opus"],
              temperature_range: [0, 1],
              evaluation_criteria: "HIGHEST_MODEL_TEMP",
              verification: { expected_patterns: ["forty-two"] },
            }],
          },
        },
      });
      const json = w.path("report.json");
      const c = startCoordinator(redis.url, suite, [
        "--json",
        json,
        "--out",
        w.path("out"),
        "--claude",
        FAKE_CLAUDE,
      ]);
      assert.equal(await c.code, 0, c.out());
      const [t] = await readTests(json);
      assert.equal(t.status, "passed", t.reason);
      assert.match(t.reason, /^picked instance 3 of 3 by HIGHEST_MODEL_TEMP/);
      assert.deepEqual(t.instances!.map((i) => i.status), ["passed", "passed", "passed"]);
      assert.deepEqual(t.worker!.split(", ").sort(), ["w1", "w2", "w3"]);
      // The task's output is the picked instance's: opus at temperature 1, the hottest.
      const answer = /forty-two from (\w+) at ([\d.]+)/;
      assert.deepEqual(
        (await Deno.readTextFile(t.output_file!)).match(answer)?.slice(1),
        ["opus", "1"],
      );
      // Each instance's own output holds its own answer.
      const report = JSON.parse(await Deno.readTextFile(json));
      const inst = report.tests[0].instances as {
        model: string;
        temperature: number;
        picked: boolean;
        output_file: string;
      }[];
      assert.deepEqual(inst.map((i) => [i.model, i.temperature, i.picked]), [
        ["sonnet", 0, false],
        ["haiku", 0.5, false],
        ["opus", 1, true],
      ]);
      for (const i of inst) {
        assert.deepEqual(
          (await Deno.readTextFile(i.output_file)).match(answer)?.slice(1),
          [i.model, String(i.temperature)],
        );
      }
      assert.equal(t.output_file, inst[2].output_file);
    }),
});

Deno.test("ccx stress --queue refuses --server and non-Redis URLs with exit 2", async () => {
  const both = await cli([
    "stress",
    "tasks/selftest.json",
    "--queue",
    "redis://127.0.0.1:1",
    "--server",
    "ws://127.0.0.1:1/ws",
  ]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--queue and --server exclude each other/);
  const bad = await cli(["stress", "tasks/selftest.json", "--queue", "ws://127.0.0.1:1/ws"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--queue: ws:\/\/127\.0\.0\.1:1\/ws is not a redis:\/\/ or rediss:\/\//);
});

Deno.test("ccx stress --queue exits 3, running nothing, when the queue's Redis does not answer", async () => {
  const port = freePort();
  const r = await cli([
    "stress",
    "tasks/selftest.json",
    "--queue",
    `redis://:pw@127.0.0.1:${port}`,
  ]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`cannot run: cannot connect to Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}`),
  );
  assert.doesNotMatch(r.stderr + r.stdout, /:pw@/);
});

Deno.test("checkQueueUrl() accepts redis:// and rediss:// only, hiding passwords", () => {
  checkQueueUrl("redis://127.0.0.1:6379");
  checkQueueUrl("rediss://ci:pw@redis.lan:6380/2");
  assert.throws(() => checkQueueUrl("not a url"), /--queue: not a URL/);
  assert.throws(
    () => checkQueueUrl("https://u:pw@x.example", "--redis"),
    (e: Error) =>
      /^--redis: https:\/\/u:\*\*\*@x\.example/.test(e.message) && !/pw@/.test(e.message),
  );
});

Deno.test({
  name:
    "ccx stress --queue --sandbox reaches a worker without it; without it, the fix names the worker",
  ignore: redisIgnore || Deno.uid() !== 0,
  fn: () =>
    withFleet(async ({ redis, w, tag, workers }) => {
      // A root worker that is not told it runs on a sandbox box.
      workers.push(
        await startWorker(redis.url, "rootbox", ["--claude", FAKE_CLAUDE], {
          CCX_SANDBOX: "",
          IS_SANDBOX: "",
          ANTHROPIC_API_KEY: "sk-ant-stand-in-test",
        }),
      );
      const suite = await w.suite({
        categories: {
          c: {
            tasks: [{
              id: "math",
              natural_language_request: `${tag} What is 2+2?`,
              verification: { expected_patterns: ["4"] },
            }],
          },
        },
      });
      const refused = startCoordinator(redis.url, suite, ["--json", w.path("a.json")]);
      assert.equal(await refused.code, 3, refused.out());
      const [r] = await readTests(w.path("a.json"));
      assert.equal(r.status, "error", r.reason);
      assert.match(r.reason, /^root_refused: /);
      assert.match(
        refused.out(),
        /Fix: root_refused \(1 task\): worker rootbox runs Claude tasks as root without IS_SANDBOX=1.*start the worker with --sandbox \(or CCX_SANDBOX=1\), or pass --sandbox to this `ccx stress --queue` run/,
      );
      const sandboxed = startCoordinator(redis.url, suite, [
        "--json",
        w.path("b.json"),
        "--sandbox",
      ]);
      assert.equal(await sandboxed.code, 0, sandboxed.out());
      const [ok] = await readTests(w.path("b.json"));
      assert.equal(ok.status, "passed", ok.reason);
      assert.equal(ok.worker, "rootbox");
    }),
});

Deno.test({
  name: "ccx stress --queue with no worker yet says so once; the tasks wait and run when one comes",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go, workers }) => {
      await Deno.writeTextFile(go, ""); // the tasks end as soon as a worker runs them
      const suite = await w.suite(gatedSuite(tag, go, 2));
      const json = w.path("report.json");
      const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
      const note = /no worker takes tasks from this queue yet; the tasks wait for one/;
      await waitFor(() => note.test(c.out()), "the no-worker note", 60_000);
      workers.push(await startWorker(redis.url, "w1"));
      assert.equal(await exitCode(c), 0, c.out());
      assert.equal(c.out().match(new RegExp(note, "g"))?.length, 1, c.out());
      const tests = await readTests(json);
      assert.deepEqual(tests.map((t) => [t.status, t.worker]), [["passed", "w1"], [
        "passed",
        "w1",
      ]]);
      // With a worker on the queue, the same run says nothing of the kind.
      const again = startCoordinator(redis.url, suite, ["--json", w.path("again.json")]);
      assert.equal(await exitCode(again), 0, again.out());
      assert.doesNotMatch(again.out(), /no worker/);
    }),
});

Deno.test({
  name: "ccx stress --queue reports a task whose job vanished from the queue as an error, and ends",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go }) => {
      const r = new Redis(redis.url);
      try {
        // No worker: the job waits in the queue until its key is deleted under it.
        const suite = await w.suite(gatedSuite(tag, go, 1));
        const json = w.path("report.json");
        const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
        let key: string | undefined;
        await until(async () => (key = await jobKey(r, "t1")) !== undefined, "the job", 60_000);
        assert.equal(await r.del(key!), 1);
        // No event says so: the coordinator's sweep of quiet jobs finds it gone.
        const code = await exitCode(c, 60_000);
        const [t] = await readTests(json);
        assert.equal(t.status, "error", t.reason);
        assert.equal(
          t.reason,
          "fleet: the job failed on the queue: the job vanished from the queue",
        );
        assert.equal(code, 1, c.out());
      } finally {
        r.disconnect();
      }
    }),
});

Deno.test({
  name:
    "ccx stress --queue: a job lost mid-task a third time (its worker killed each time) ends as an error naming the workers",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, workers }) => {
      const r = new Redis(redis.url);
      try {
        // The gate opens only on the way out: every run of the task is cut short by a SIGKILL.
        const suite = await w.suite(gatedSuite(tag, w.path("never"), 1));
        const json = w.path("report.json");
        const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
        // Workers keep their crash journal in this module's state directory: each one that
        // starts ends the task its killed predecessor left running.
        const env = { CCX_STATE_DIR: STATE_DIR };
        for (const name of ["w1", "w2", "w3"]) {
          const victim = await startWorker(redis.url, name, ["--lock-s", "1"], env);
          workers.push(victim);
          // It took the task (the first from the queue, the others after a stall check put it
          // back) and the task runs: the job's progress names it with the task's first output.
          // (Output is read after the server has journaled the job's group, so the next worker's
          // start reaps what this one leaves; `started` comes before the spawn.)
          await until(
            async () => {
              const key = await jobKey(r, "t1");
              const progress = key ? await r.hget(key, "progress") : null;
              const p = progress === null ? undefined : JSON.parse(progress);
              return p?.worker === name && p?.state === "output";
            },
            `${name} to run the task`,
            60_000,
          );
          await killWorker(victim);
        }
        // The stall check of a fourth worker finds the third stall: BullMQ fails the job.
        workers.push(await startWorker(redis.url, "w4", ["--lock-s", "1"], env));
        const code = await exitCode(c, 60_000);
        const [t] = await readTests(json);
        assert.equal(t.status, "error", t.reason);
        assert.equal(
          t.reason,
          "fleet: lost mid-task 3 times; the queue gave up on it (BullMQ: job stalled more " +
            "than allowable limit) (rerun: workers w1, w2, w3 each lost it mid-task (its lock " +
            "expired))",
        );
        assert.equal(t.rerun, "workers w1, w2, w3 each lost it mid-task (its lock expired)");
        assert.equal(t.worker, "w1, w2, w3");
        assert.equal(code, 1, c.out());
        // The fourth worker never ran it: nothing of the task runs any more.
        assert.doesNotMatch(workers[3].log(), / started/);
        assert.deepEqual(pidsMatching(tag), []);
      } finally {
        r.disconnect();
      }
    }),
});

/**
 * Runs one gated task on worker `w1` with the coordinator reaching Redis through a relay, and
 * cuts the coordinator off Redis while the task ends and the worker hands its result to the
 * queue. `whileCut` runs once the queue holds the result, before the relay lets the coordinator
 * reconnect. Resolves with the coordinator's exit code, its output and the report's test.
 */
async function cutOffWhileTheTaskEnds(
  f: Fleet,
  whileCut: (r: Redis, relay: RedisRelay) => Promise<void>,
): Promise<{ code: number; out: string; test: ReportTest; relay: RedisRelay }> {
  const { redis, w, tag, go, workers } = f;
  const relay = redisRelay(redis.port);
  const r = new Redis(redis.url);
  try {
    workers.push(await startWorker(redis.url, "w1"));
    const suite = await w.suite(gatedSuite(tag, go, 1));
    const json = w.path("report.json");
    const c = startCoordinator(relay.url, suite, ["--json", json, "--out", w.path("out")]);
    await waitFor(() => runningTasks(tag).size === 1, "the task to run", 60_000);
    relay.cut();
    await Deno.writeTextFile(go, "");
    await until(async () => await r.zcard("bull:ccx:completed") === 1, "the job to complete");
    await whileCut(r, relay);
    relay.restore();
    const code = await exitCode(c, 60_000);
    const [test] = await readTests(json);
    return { code, out: c.out(), test, relay };
  } finally {
    r.disconnect();
    await relay.close();
  }
}

Deno.test({
  name:
    "ccx stress --queue: its Redis connection lost mid-run (refused for 4 s after the task ended), it reconnects and reports the task once, passed",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async (f) => {
      const before = { relayed: 0, refused: 0 };
      const { code, out, test, relay } = await cutOffWhileTheTaskEnds(f, async (_r, relay) => {
        // The outage goes on 4 s after the result reached the queue: longer than the
        // coordinator's 3 s sweep of quiet jobs, and ioredis backs off to 2 s between attempts.
        await new Promise((res) => setTimeout(res, 4000));
        before.relayed = relay.relayed();
        before.refused = relay.refused();
      });
      assert.ok(before.refused > 0, "it tried to reconnect while cut off, and was refused");
      assert.equal(code, 0, out);
      assert.equal(test.status, "passed", test.reason);
      assert.equal(test.worker, "w1");
      assert.equal(test.rerun, undefined);
      assert.match(await Deno.readTextFile(test.output_file!), /done-1/);
      assert.ok(relay.relayed() > before.relayed, "it connected again");
    }),
});

Deno.test({
  name:
    "ccx stress --queue: a completion whose event it missed (events trimmed while it was cut off) is found by its sweep of quiet jobs",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async (f) => {
      const { code, out, test } = await cutOffWhileTheTaskEnds(f, async (r) => {
        // The stream of queue events loses everything the coordinator has not read, the
        // `completed` event included, as when events outrun BullMQ's cap on the stream.
        await r.xtrim("bull:ccx:events", "MAXLEN", 0);
        assert.equal(await r.xlen("bull:ccx:events"), 0);
      });
      assert.equal(code, 0, out);
      assert.equal(test.status, "passed", test.reason);
      assert.equal(test.worker, "w1");
      assert.match(await Deno.readTextFile(test.output_file!), /done-1/);
    }),
});

/**
 * Tests for `ccx worker` against a real redis-server: three workers and a coordinator with a
 * worker killed (SIGKILL) mid-task, a worker stopped (SIGTERM) that finishes or hands back its
 * task, and the command's input errors.
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { assertOwnServerTokened, cli, pidsMatching, ROOT, waitFor } from "./_util/helpers.ts";
import { freePort } from "./_util/redis.ts";
import { redisTier } from "./_util/tier.ts";
import {
  gatedSuite,
  killWorker,
  readTests,
  startCoordinator,
  startWorker,
  withFleet,
} from "./_util/fleet.ts";
import { passwordOnCommandLine } from "../lib/commands/worker.ts";
import {
  HINTS,
  probeBwrap,
  probeChattr,
  probeRoot,
  probeSetpriv,
  requireCapability,
} from "./_util/capability.ts";
import { FULL_DISK, withFullDisk } from "./_util/full_disk.ts";

// The tier rule of tests/_util/tier.ts: a skip with one line, or a failure under CI=true.
const redisIgnore = redisTier();

Deno.test({
  name: "ccx worker: a worker killed with SIGKILL mid-task loses nothing; every task once, passed",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go, workers }) => {
      for (const n of ["w1", "w2", "w3"]) {
        workers.push(await startWorker(redis.url, n, ["--lock-s", "1"]));
      }
      const suite = await w.suite(gatedSuite(tag, go, 6));
      const json = w.path("report.json");
      const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")], true);
      // One task up on each worker, the others waiting in the queue.
      await waitFor(() => pidsMatching(tag).length === 3, "three tasks running", 60_000);
      await waitFor(() => workers[0].log().includes(" started"), "w1 to run a task", 10_000);
      workers[0].child.kill("SIGKILL");
      await workers[0].status;
      await Deno.writeTextFile(go, "");
      assert.equal(await c.code, 0, c.out());
      const tests = await readTests(json);
      assert.deepEqual(tests.map((t) => t.id), ["t1", "t2", "t3", "t4", "t5", "t6"]);
      for (const t of tests) assert.equal(t.status, "passed", `${t.id}: ${t.reason}`);
      // The killed worker's task was taken again by a live worker, and says so once.
      const rerun = tests.filter((t) => t.rerun);
      assert.equal(rerun.length, 1, JSON.stringify(tests, null, 1));
      assert.match(
        rerun[0].rerun!,
        /^worker w1 lost mid-task \(its lock expired\); redelivered to w[23]$/,
      );
      assert.ok(rerun[0].worker === "w2" || rerun[0].worker === "w3");
      for (const t of tests) assert.notEqual(t.worker, "w1", `${t.id} reported from the dead w1`);
      // The workers recorded each run in the queue's Redis history: six runs, once each.
      const h = await cli(["history", "--redis", redis.url, "--json"]);
      assert.equal(h.code, 0, h.stderr);
      const classes = JSON.parse(h.stdout) as { count: number }[];
      assert.equal(classes.reduce((n, c) => n + c.count, 0), 6, h.stdout);
      // Outputs the workers handed back are in the coordinator's output directory.
      for (const t of tests) {
        assert.match(await Deno.readTextFile(t.output_file!), new RegExp(`done-${t.id.slice(1)}`));
      }
    }),
});

Deno.test({
  name: "ccx worker: SIGTERM finishes a task within --drain-s, or hands it back to another worker",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go, workers }) => {
      // w1 finishes its task after SIGTERM (the gate opens within its drain bound);
      // w2 cannot (short bound) and hands its task back; w3 starts later and takes it.
      const w1 = await startWorker(redis.url, "w1", ["--drain-s", "60"]);
      const w2 = await startWorker(redis.url, "w2", ["--drain-s", "0.2"]);
      workers.push(w1, w2);
      const suite = await w.suite(gatedSuite(tag, go, 2));
      const json = w.path("report.json");
      const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
      await waitFor(() => pidsMatching(tag).length === 2, "both tasks running", 60_000);
      w2.child.kill("SIGTERM");
      await waitFor(() => w2.log().includes("handed back"), "w2 to hand its task back", 10_000);
      assert.equal((await w2.status).code, 0, w2.log());
      // Its task's process group was ended, not left behind.
      await waitFor(() => pidsMatching(tag).length === 1, "w2's task to end", 10_000);
      w1.child.kill("SIGTERM");
      await waitFor(() => w1.log().includes("stopping, 1 task(s) running"), "w1 to stop", 10_000);
      const w3 = await startWorker(redis.url, "w3");
      workers.push(w3);
      await waitFor(() => pidsMatching(tag).length === 2, "w3 to take the task back", 30_000);
      await Deno.writeTextFile(go, "");
      assert.equal((await w1.status).code, 0, w1.log());
      assert.equal(await c.code, 0, c.out());
      const tests = await readTests(json);
      for (const t of tests) assert.equal(t.status, "passed", `${t.id}: ${t.reason}`);
      const byWorker = new Map(tests.map((t) => [t.worker, t]));
      assert.deepEqual([...byWorker.keys()].sort(), ["w1", "w3"]);
      assert.equal(byWorker.get("w1")!.rerun, undefined);
      assert.match(
        byWorker.get("w3")!.rerun!,
        /^worker w2 stopped and handed the task back; redelivered to w3$/,
      );
    }),
});

Deno.test({
  name: "ccx worker: a second SIGTERM stops waiting for the running task and hands it back at once",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go, workers }) => {
      // It would wait 10 minutes for its task; the second signal must cut that short.
      const w1 = await startWorker(redis.url, "w1", ["--drain-s", "600"]);
      workers.push(w1);
      const suite = await w.suite(gatedSuite(tag, go, 1));
      const json = w.path("report.json");
      const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
      await waitFor(() => pidsMatching(tag).length === 1, "the task running", 60_000);
      w1.child.kill("SIGTERM");
      await waitFor(() => w1.log().includes("stopping, 1 task(s) running"), "w1 to stop", 10_000);
      w1.child.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stuck = new Promise<"stuck">((r) => timer = setTimeout(() => r("stuck"), 120_000));
      const ended = await Promise.race([w1.status, stuck]);
      clearTimeout(timer);
      assert.notEqual(ended, "stuck", `w1 still waits for its task: ${w1.log()}`);
      assert.equal((await w1.status).code, 0, w1.log());
      assert.match(w1.log(), /handing back 1 task\(s\)/);
      await waitFor(() => pidsMatching(tag).length === 0, "w1's task to end", 10_000);
      workers.push(await startWorker(redis.url, "w2"));
      await waitFor(() => pidsMatching(tag).length === 1, "w2 to take the task", 30_000);
      await Deno.writeTextFile(go, "");
      assert.equal(await c.code, 0, c.out());
      const [t] = await readTests(json);
      assert.equal(t.status, "passed", t.reason);
      assert.equal(t.worker, "w2");
      assert.match(t.rerun!, /^worker w1 stopped and handed the task back; redelivered to w2$/);
    }),
});

Deno.test({
  name: "ccx worker: Redis unreachable longer than --lock-s runs no task twice; the report says so",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go, workers }) => {
      for (const n of ["w1", "w2"]) {
        workers.push(await startWorker(redis.url, n, ["--lock-s", "1", "-c", "2"]));
      }
      // t1 and t2 end while Redis is unreachable; t3 and t4 are still running when their locks
      // run out. Each task appends its id to `runs` as it ends: the count of its runs.
      const early = w.path("early");
      const runs = w.path("runs");
      const suite = await w.suite({
        tests: [1, 2, 3, 4].map((k) => ({
          id: `t${k}`,
          command: `: ${tag}; echo up; while [ ! -e '${k <= 2 ? early : go}' ]; do sleep 0.05; ` +
            `done; echo t${k} >>'${runs}'; echo done-${k}`,
          expected_patterns: [`done-${k}`],
          timeout: 120,
        })),
      });
      const json = w.path("report.json");
      const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
      await waitFor(() => pidsMatching(tag).length === 4, "four tasks running", 60_000);
      redis.pause();
      const outageStart = Date.now();
      try {
        await Deno.writeTextFile(early, "");
        // The workers stop t3 and t4 once their 1 s locks have surely run out, Redis still down.
        await waitFor(() => pidsMatching(tag).length === 0, "the workers to stop t3, t4", 15_000);
        // Down longer than the lock, whatever the machine's speed.
        const left = 2000 - (Date.now() - outageStart);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      } finally {
        redis.resume();
      }
      await Deno.writeTextFile(go, "");
      assert.equal(await c.code, 0, c.out());
      const ran = (await Deno.readTextFile(runs)).split("\n").filter(Boolean).sort();
      assert.deepEqual(ran, ["t1", "t2", "t3", "t4"], "every task ran to its end exactly once");
      const tests = await readTests(json);
      for (const t of tests) {
        assert.equal(t.status, "passed", `${t.id}: ${t.reason}`);
        assert.match(t.reason, /Redis was unreachable for \d+\.\d s/, `${t.id}: ${t.reason}`);
        assert.doesNotMatch(t.reason, /lost mid-task/, t.reason);
      }
      const [t1, t2, t3, t4] = tests;
      for (const t of [t1, t2]) {
        assert.match(t.reason, /the result of its one run is kept, the task did not run again/);
        assert.equal(t.rerun, undefined, `${t.id} did not run again`);
      }
      for (const t of [t3, t4]) {
        assert.match(
          t.rerun!,
          /^Redis was unreachable for \d+\.\d s \(worker (w[12])'s lock lasts 1\.0 s\); worker \1 stopped the task rather than let it run twice; redelivered to w[12]$/,
        );
      }
    }),
});

Deno.test("ccx worker without --queue or CCX_QUEUE exits 2 saying what is missing", async () => {
  const r = await cli(["worker"], { env: { CCX_QUEUE: "" } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--queue URL is required \(or CCX_QUEUE/);
});

const CHATTR = requireCapability("chattr", probeChattr, HINTS.chattr);

Deno.test({
  name: "ccx worker copies a task's workspace_template and stops cleanly over a workspace it " +
    "cannot remove: moved aside and logged",
  ignore: redisIgnore || CHATTR.ignore,
  fn: () =>
    withFleet(async ({ redis, w, tag, workers }) => {
      CHATTR.need();
      const state = w.path("state");
      const w1 = await startWorker(redis.url, "w1", [], { CCX_STATE_DIR: state });
      workers.push(w1);
      await Deno.mkdir(w.path("tpl"));
      await Deno.writeTextFile(w.path("tpl/seed.txt"), "seeded-from-template\n");
      const suite = await w.suite({
        workspace_template: "tpl",
        tests: [{
          id: "frozen",
          command: `: ${tag}; cat seed.txt; echo x > f && chattr +i f`,
          expected_patterns: ["seeded-from-template"],
        }],
      });
      const json = w.path("report.json");
      try {
        const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
        assert.equal(await c.code, 0, c.out());
        const [t] = await readTests(json);
        assert.equal(t.status, "passed", t.reason);
        // The worker's session ends as it stops: the workspace, not kept, goes then.
        w1.child.kill("SIGTERM");
        assert.equal((await w1.status).code, 0, w1.log());
        assert.doesNotMatch(w1.log(), /Uncaught|PermissionDenied/);
        const aside = [...Deno.readDirSync(join(state, "workspaces", ".unremovable"))];
        assert.equal(aside.length, 1);
        assert.match(w1.log(), new RegExp(`cannot be removed .*moved to .*${aside[0].name}`));
      } finally {
        new Deno.Command("chattr", { args: ["-R", "-i", w.dir], stderr: "null" }).outputSync();
      }
    }),
});

Deno.test("ccx worker --queue with a non-Redis URL exits 2 naming the flag", async () => {
  const r = await cli(["worker", "--queue", "http://u:hunter2@example.com"]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /--queue: http:\/\/u:\*\*\*@example\.com\/? is not a redis:\/\/ or rediss:\/\//,
  );
  assert.doesNotMatch(r.stderr, /hunter2/);
});

Deno.test("ccx worker exits 1 naming the Redis it cannot reach, password hidden", async () => {
  const port = freePort();
  const r = await cli(["worker", "--redis", `redis://ci:hunter2@127.0.0.1:${port}`]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(`cannot connect to Redis at redis://ci:\\*\\*\\*@127\\.0\\.0\\.1:${port}`),
  );
  // The password was typed on the command line: the worker warns, and never echoes it.
  assert.match(r.stderr, /password is on the command line.*CCX_QUEUE/);
  assert.doesNotMatch(r.stderr, /hunter2/);
});

Deno.test("passwordOnCommandLine() warns only for a password typed as an argument", () => {
  const url = "rediss://ci:pw@redis.lan:6380";
  assert.match(passwordOnCommandLine(url, ["--queue", url])!, /CCX_QUEUE/);
  assert.equal(passwordOnCommandLine(url, []), undefined); // from CCX_QUEUE / .env
  assert.equal(
    passwordOnCommandLine("redis://redis.lan", ["--queue", "redis://redis.lan"]),
    undefined,
  );
});

Deno.test({
  name: "ccx worker says it started once, and logs each task with a timestamp and its duration",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, w, tag, go, workers }) => {
      const w1 = await startWorker(redis.url, "w1");
      workers.push(w1);
      const suite = await w.suite(gatedSuite(tag, go, 1));
      await Deno.writeTextFile(go, "");
      const c = startCoordinator(redis.url, suite, ["--json", w.path("r.json")]);
      assert.equal(await c.code, 0, c.out());
      await waitFor(() => / t1 passed in /.test(w1.log()), "the task's end in the log", 10_000);
      w1.child.kill("SIGTERM");
      await w1.status;
      const lines = w1.log().trimEnd().split("\n");
      const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ccx worker: /;
      for (const l of lines) assert.match(l, stamp);
      assert.equal(lines.filter((l) => l.includes("taking tasks")).length, 1, w1.log());
      assert.match(
        lines[0],
        /: w1 taking tasks from queue ccx at redis:\/\/127\.0\.0\.1:\d+, concurrency 1/,
      );
      assert.match(w1.log(), /: t1 started \(run \d{8}_\d{6}_[0-9a-f]+\)\n/);
      assert.match(w1.log(), /: t1 passed in \d+(\.\d+)?m?s\n/);
    }),
});

Deno.test({
  name: "ccx worker prints nothing on stdout: its one start line is in its log",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis }) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}main.ts`, "worker", "--name", "quiet"],
        env: { CCX_QUEUE: redis.url, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let err = "";
      const pump = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({ write: (s) => void (err += s) }),
      );
      const out = new Response(child.stdout).text();
      await waitFor(() => err.includes("taking tasks"), "the worker to start", 60_000);
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0, err);
      await pump;
      assert.equal(await out, "");
    }),
});

Deno.test({
  name: "ccx worker says when its in-process server cannot write its crash journal",
  ignore: redisIgnore || FULL_DISK.ignore,
  fn: () =>
    withFullDisk((state) =>
      withFleet(async ({ redis, workers }) => {
        const w1 = await startWorker(redis.url, "w1", [], { CCX_STATE_DIR: state });
        workers.push(w1);
        await waitFor(() => /cannot write the crash journal/.test(w1.log()), "the warning");
        assert.match(
          w1.log(),
          /Z ccx worker: w1: cannot write the crash journal .*No space left on device/,
        );
      })
    ),
});

Deno.test({
  name: "ccx worker's in-process server refuses a connection without its token",
  ignore: redisIgnore,
  fn: () =>
    withFleet(async ({ redis, workers }) => {
      const w1 = await startWorker(redis.url, "w1");
      workers.push(w1);
      await assertOwnServerTokened(w1.child.pid);
    }),
});

const ROOT_USER = requireCapability("root", probeRoot, HINTS.root);
const SETPRIV = requireCapability("setpriv", probeSetpriv, HINTS.setpriv);

Deno.test({
  name: "ccx worker --run-as: a task cannot read the queue's password in the worker's " +
    "/proc/PID/environ; without it the worker warns at start, and a task can",
  ignore: redisIgnore || ROOT_USER.ignore || SETPRIV.ignore,
  async fn() {
    ROOT_USER.need();
    SETPRIV.need();
    const password = `pw${crypto.randomUUID().slice(0, 8)}`;
    await withFleet(async ({ redis, w, tag, workers }) => {
      // A workspace root that `nobody` can enter (temp dirs are made with mode 700).
      const root = w.path("ws");
      await Deno.mkdir(root, { mode: 0o755 });
      await Deno.chmod(w.dir, 0o755);
      // The task reads its parent's environment, as any task could try: its parent is the
      // worker, whose CCX_QUEUE holds the password.
      const suite = await w.suite({
        tests: [{
          id: "probe",
          command: `: ${tag}; echo uid=$(id -u) parent=$(cat /proc/$PPID/comm); ` +
            `if tr '\\0' '\\n' < /proc/$PPID/environ | grep -q '${password}'; ` +
            `then echo secret=LEAKED; else echo secret=hidden; fi`,
          expected_patterns: ["secret=hidden", "uid=65534"],
        }],
      });
      for (const runAs of [undefined, "nobody"]) {
        const name = runAs ? "as-nobody" : "as-root";
        const worker = await startWorker(
          redis.url,
          name,
          ["--workspace-root", root, ...(runAs ? ["--run-as", runAs] : [])],
          { CCX_STATE_DIR: w.path(`state-${name}`) },
        );
        workers.push(worker);
        const json = w.path(`${name}.json`);
        const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path(name)]);
        const code = await c.code;
        const [t] = await readTests(json);
        const out = await Deno.readTextFile(t.output_file!);
        assert.equal(t.worker, name);
        assert.match(out, /parent=deno\b/, "the task's parent is the worker");
        if (runAs) {
          assert.equal(code, 0, c.out());
          assert.equal(t.status, "passed", out);
          assert.match(out, /uid=65534 .*\nsecret=hidden/);
          assert.doesNotMatch(worker.log(), /can read its secrets/);
        } else {
          assert.equal(t.status, "failed", out);
          assert.match(out, /uid=0 .*\nsecret=LEAKED/, "CCX_* never reaches a job, /proc does");
          assert.match(
            worker.log(),
            /ccx worker: warning: jobs run unconfined as the worker's own user, so they can read its secrets \(the password in CCX_QUEUE in the environment\).*--run-as USER/,
          );
        }
        await killWorker(worker);
      }
    }, { redisPassword: password });
  },
});

Deno.test({
  name: "ccx worker --run-as is checked at start: exit 2 naming the flag",
  ignore: ROOT_USER.ignore || SETPRIV.ignore,
  async fn() {
    ROOT_USER.need();
    SETPRIV.need();
    const unknown = await cli(["worker", "--queue", "redis://127.0.0.1:1", "--run-as", "nope_ccx"]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /ccx worker: --run-as nope_ccx: no such user on this machine/);
    // The tests' state directory is a temp dir of mode 700: its workspaces are closed to nobody.
    const closed = await cli(["worker", "--queue", "redis://127.0.0.1:1", "--run-as", "nobody"]);
    assert.equal(closed.code, 2, closed.stderr);
    assert.match(
      closed.stderr,
      /--run-as nobody: nobody cannot enter the workspace root .*--workspace-root/,
    );
  },
});

const BWRAP = requireCapability("bwrap", probeBwrap, HINTS.bwrap);

Deno.test({
  name: "ccx worker --isolate bwrap: no process a task can see holds the queue's password; " +
    "no warning",
  ignore: redisIgnore || BWRAP.ignore,
  async fn() {
    BWRAP.need();
    const password = `pw${crypto.randomUUID().slice(0, 8)}`;
    await withFleet(async ({ redis, w, tag, workers }) => {
      const suite = await w.suite({
        tests: [{
          id: "probe",
          command: `: ${tag}; if cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | ` +
            `grep -q '${password}'; then echo secret=LEAKED; else echo secret=hidden; fi`,
          expected_patterns: ["secret=hidden"],
        }],
      });
      const worker = await startWorker(redis.url, "confined", ["--isolate", "bwrap"], {
        CCX_STATE_DIR: w.path("state"),
      });
      workers.push(worker);
      const json = w.path("r.json");
      const c = startCoordinator(redis.url, suite, ["--json", json, "--out", w.path("out")]);
      assert.equal(await c.code, 0, c.out());
      const [t] = await readTests(json);
      assert.equal(t.status, "passed", await Deno.readTextFile(t.output_file!));
      assert.doesNotMatch(worker.log(), /warning/);
    }, { redisPassword: password });
  },
});

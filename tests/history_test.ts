/**
 * Tests for the timeout history (task classes, estimates, estimateForPrompt()) and
 * `ccx history`. The stores are tested in history_store_test.ts.
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Complexity,
  estimateForPrompt,
  estimateTimeout,
  loadFactor,
  percentile,
  type RunRecord,
  systemLoad,
  taskClass,
} from "../lib/claude/history.ts";
import { SqliteHistory } from "../lib/claude/history_store.ts";
import { formatHistoryTable, historyCommand } from "../lib/commands/history.ts";
import { freePort } from "./_util/redis.ts";
import { run, withTempDir } from "./_util/history.ts";
// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

function successes(...durations: number[]): RunRecord[] {
  return durations.map((d) => run(d));
}

// ---------------------------------------------------------------------------
// taskClass()
// ---------------------------------------------------------------------------

Deno.test("taskClass() gives prompts that differ only by numbers the same class", () => {
  assert.equal(
    taskClass("What is the 10th Fibonacci number?").key,
    taskClass("What is the 25th Fibonacci number?").key,
  );
  assert.equal(taskClass("What is 2+2?").key, taskClass("What is 17 + 25?").key);
  assert.equal(
    taskClass("What is a 500-word checklist for Python?").key,
    taskClass("What is a 300-word checklist for Python?").key,
  );
});

Deno.test("taskClass() ignores [marker:…] tags, [[…]] directives and MARKER_ tokens", () => {
  const plain = taskClass("What is 2+2?");
  for (
    const p of [
      "[marker:LOCAL_simple_1_20250628_101010] What is 2+2?",
      "[[timeout: 60]] What is 2+2?",
      "What is 2+2? MARKER_STRESS_TEST_FIXED_20250627",
    ]
  ) {
    assert.equal(taskClass(p).key, plain.key, p);
    assert.equal(taskClass(p).label, "What is 2+2?", p);
  }
});

Deno.test("taskClass() replaces quoted strings, paths, file names, URLs and ids", () => {
  assert.equal(
    taskClass('Create a config.py file with DATABASE_URL="sqlite:///test.db".').key,
    taskClass('Create a settings.py file with DATABASE_URL="postgres://db/app".').key,
  );
  assert.equal(
    taskClass("Summarize /tmp/a/out.txt for 'release notes'").key,
    taskClass("Summarize ./data/x.json for 'the changelog'").key,
  );
  assert.equal(
    taskClass("Review commit 3fa9c2d1e at https://example.com/a?b=1").key,
    taskClass("Review commit 77be01aa4 at https://example.org/").key,
  );
});

Deno.test("taskClass() ignores case, whitespace and punctuation", () => {
  assert.equal(
    taskClass("What is a Python function to reverse a string?").key,
    taskClass("  what   is a python FUNCTION to reverse a string ").key,
  );
});

Deno.test("taskClass() separates different tasks", () => {
  const keys = new Set(
    [
      "What is the 10th Fibonacci number?",
      "What is a collection of 5 haikus about programming?",
      "What is a Python function to reverse a string?",
      "What is a Python function to sort a list?",
      "What is a quick chicken and rice recipe that takes 30 minutes?",
    ].map((p) => taskClass(p).key),
  );
  assert.equal(keys.size, 5);
});

Deno.test("taskClass() key is complexity, a colon and at most 12 words", () => {
  const long = Array.from({ length: 200 }, (_, i) => `word${"abcdefghij"[i % 10]}x`).join(" ");
  const cls = taskClass(long);
  assert.equal(cls.complexity, "complex");
  assert.ok(cls.key.startsWith("complex:"));
  assert.equal(cls.key.slice("complex:".length).split(" ").length, 12);
  assert.ok(cls.label.length <= 60);
  assert.equal(taskClass("").key, "simple:<empty>");
});

Deno.test("taskClass() rates complexity from keywords and length", () => {
  const cases: [string, Complexity][] = [
    ["What is 2+2?", "simple"],
    ["What is the 10th Fibonacci number?", "simple"],
    ["What is a Python function to reverse a string?", "medium"],
    ["What is a quick chicken and rice recipe that takes 30 minutes?", "medium"],
    ["What is Python code for 5 functions: area of circle and factorial?", "medium"],
    ["What is a 500-word checklist for Python best practices in production?", "complex"],
    ["What is the architecture for a todo app with database schema?", "complex"],
    ["What is a production-ready hello world in Python with logging?", "complex"],
    [Array(12).fill("tell me more").join(" "), "medium"], // 36 words
    [Array(40).fill("tell me more").join(" ") + " " + Array(40).fill("now").join(" "), "complex"],
  ];
  for (const [prompt, want] of cases) assert.equal(taskClass(prompt).complexity, want, prompt);
});

// ---------------------------------------------------------------------------
// estimates
// ---------------------------------------------------------------------------

Deno.test("percentile() interpolates between the closest ranks", () => {
  assert.equal(percentile([], 0.5), undefined);
  assert.equal(percentile([7], 0.9), 7);
  assert.equal(percentile([40, 10, 30, 20], 0.5), 25);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9.1);
  assert.equal(percentile([1, 2, 3], 1), 3);
  assert.throws(() => percentile([1], 1.5), RangeError);
});

Deno.test("estimateTimeout() is the 90th percentile of successes times a safety factor of 2", () => {
  const est = estimateTimeout(successes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), { minS: 1 });
  assert.equal(est.source, "history");
  assert.equal(est.timeoutS, 19); // ceil(9.1 * 2)
  assert.match(est.basis, /p90 of 10 successes 9\.1s × safety 2/);
});

Deno.test("estimateTimeout() honours the percentile and safety options", () => {
  const est = estimateTimeout(successes(10, 20, 30, 40), { minS: 1, percentile: 0.5, safety: 3 });
  assert.equal(est.timeoutS, 75);
});

Deno.test("estimateTimeout() ignores failures, timeouts and errors", () => {
  const runs = [
    ...successes(10, 20, 30),
    run(900, "timeout"),
    run(1, "failure"),
    run(5000, "error"),
  ];
  assert.equal(
    estimateTimeout(runs, { minS: 1 }).timeoutS,
    estimateTimeout(successes(10, 20, 30), { minS: 1 }).timeoutS,
  );
});

Deno.test("estimateTimeout() uses the default with fewer than 3 successes", () => {
  const runs = [...successes(10, 20), run(50, "failure"), run(60, "timeout")];
  const est = estimateTimeout(runs);
  assert.deepEqual([est.timeoutS, est.source], [120, "default"]);
  assert.match(est.basis, /2 of 3 successes needed/);
  assert.equal(estimateTimeout([], { defaultS: 240 }).timeoutS, 240);
  assert.equal(estimateTimeout(successes(10), { minSamples: 1, minS: 1 }).source, "history");
});

Deno.test("estimateTimeout() clamps to [minS, maxS] and says so", () => {
  const low = estimateTimeout(successes(1, 1, 1));
  assert.equal(low.timeoutS, 30);
  assert.match(low.basis, /clamped to \[30s, 3600s\]/);
  assert.equal(estimateTimeout(successes(5000, 6000, 7000)).timeoutS, 3600);
  assert.equal(estimateTimeout(successes(1, 1, 1), { minS: 5 }).timeoutS, 5);
  assert.equal(estimateTimeout(successes(100, 100, 100), { maxS: 150 }).timeoutS, 150);
  assert.equal(estimateTimeout([], { defaultS: 120, maxS: 60 }).timeoutS, 60);
});

Deno.test("estimateTimeout() scales by load per core, up to 3x", () => {
  const runs = successes(50, 50, 50);
  assert.equal(estimateTimeout(runs).timeoutS, 100);
  assert.equal(estimateTimeout(runs, { load: { load1: 2, cores: 8 } }).timeoutS, 100);
  const busy = estimateTimeout(runs, { load: { load1: 16, cores: 8 } });
  assert.equal(busy.timeoutS, 200);
  assert.match(busy.basis, /load 2\.00 \(16\.00 on 8 cores\)/);
  assert.equal(estimateTimeout(runs, { load: { load1: 100, cores: 4 } }).timeoutS, 300);
  assert.equal(estimateTimeout([], { load: { load1: 12, cores: 8 } }).timeoutS, 180);
});

Deno.test("estimateTimeout() refuses nonsensical options", () => {
  assert.throws(() => estimateTimeout([], { minS: 10, maxS: 5 }), RangeError);
  assert.throws(() => estimateTimeout([], { safety: 0 }), RangeError);
  assert.throws(() => estimateTimeout([], { percentile: 0 }), RangeError);
});

Deno.test("loadFactor() is load per core clamped to 1..3", () => {
  assert.equal(loadFactor({ load1: 0, cores: 4 }), 1);
  assert.equal(loadFactor({ load1: 6, cores: 4 }), 1.5);
  assert.equal(loadFactor({ load1: 40, cores: 4 }), 3);
  assert.equal(loadFactor({ load1: 2, cores: 0 }), 2);
});

Deno.test("systemLoad() reports a load average and at least one core", () => {
  const { load1, cores } = systemLoad();
  assert.ok(Number.isFinite(load1) && load1 >= 0);
  assert.ok(Number.isInteger(cores) && cores >= 1);
});

Deno.test("estimateForPrompt() looks up the prompt's class", async () => {
  await withTempDir(async (dir) => {
    const store = new SqliteHistory({ path: join(dir, "h.sqlite") });
    try {
      const cls = taskClass("What is the 10th Fibonacci number?");
      for (const d of [40, 40, 40]) {
        await store.record({ ...cls, durationS: d, outcome: "success", at: Date.now() });
      }
      const est = await estimateForPrompt(store, "[marker:X] What is the 99th Fibonacci number?", {
        load: { load1: 0, cores: 1 },
      });
      assert.equal(est.taskClass.key, cls.key);
      assert.deepEqual([est.timeoutS, est.source], [80, "history"]);
    } finally {
      await store.close();
    }
  });
});

// ---------------------------------------------------------------------------
// ccx history
// ---------------------------------------------------------------------------

Deno.test("historyCommand() prints an aligned table with each recorded class", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "history.sqlite");
    const store = new SqliteHistory({ path });
    const fib = taskClass("What is the 10th Fibonacci number?");
    const haiku = taskClass("What is a collection of 5 haikus about programming?");
    for (const d of [8, 12, 19.1]) {
      await store.record({ ...fib, durationS: d, outcome: "success", at: Date.now() });
    }
    await store.record({ ...haiku, durationS: 17.2, outcome: "failure", at: Date.now() });
    await store.close();

    let out = "";
    let err = "";
    const code = await historyCommand({
      json: false,
      path,
      stdout: (s) => out += s,
      stderr: (s) => err += s,
    });
    assert.equal(code, 0);
    assert.equal(err, "");
    const lines = out.split("\n");
    assert.match(lines[0], /^COMPLEXITY +RUNS +OK +P50 +P90 +ESTIMATE +CLASS$/);
    assert.match(
      lines[1],
      /^simple +3 +3 +12\.0s +17\.7s +\d+s +What is the 10th Fibonacci number\?$/,
    );
    assert.match(lines[2], /^medium +1 +0 +- +- +\d+s +What is a collection of 5 haikus/);
    const col = (line: string) => line.indexOf("What is");
    assert.equal(col(lines[1]), col(lines[2]));
    assert.equal(col(lines[1]), lines[0].indexOf("CLASS"));
    assert.match(out, new RegExp(`2 classes in ${path.replaceAll(".", "\\.")}`));
  });
});

Deno.test("historyCommand() --json prints the class summaries", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "history.sqlite");
    const store = new SqliteHistory({ path });
    await store.record(run(5, "success", "simple:j", { label: "J" }));
    await store.close();
    let out = "";
    assert.equal(await historyCommand({ json: true, path, stdout: (s) => out += s }), 0);
    const parsed = JSON.parse(out);
    assert.equal(parsed.length, 1);
    assert.deepEqual(
      [parsed[0].key, parsed[0].label, parsed[0].count, parsed[0].successes, parsed[0].p50S],
      ["simple:j", "J", 1, 1, 5],
    );
  });
});

Deno.test("historyCommand() says so when nothing is recorded", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "history.sqlite");
    let out = "";
    assert.equal(await historyCommand({ json: false, path, stdout: (s) => out += s }), 0);
    assert.equal(out, `no runs recorded yet in ${path}\n`);
    out = "";
    assert.equal(await historyCommand({ json: true, path, stdout: (s) => out += s }), 0);
    assert.deepEqual(JSON.parse(out), []);
  });
});

Deno.test("historyCommand() reads the default file in CCX_STATE_DIR", async () => {
  await withTempDir(async (dir) => {
    const store = new SqliteHistory({ path: join(dir, "history.sqlite") });
    await store.record(run(5, "success", "simple:env", { label: "from the state dir" }));
    await store.close();
    const saved = { state: Deno.env.get("CCX_STATE_DIR"), redis: Deno.env.get("REDIS_URL") };
    Deno.env.set("CCX_STATE_DIR", dir);
    Deno.env.delete("REDIS_URL");
    try {
      let out = "";
      assert.equal(await historyCommand({ json: false, stdout: (s) => out += s }), 0);
      assert.match(out, /from the state dir/);
    } finally {
      if (saved.state === undefined) Deno.env.delete("CCX_STATE_DIR");
      else Deno.env.set("CCX_STATE_DIR", saved.state);
      if (saved.redis !== undefined) Deno.env.set("REDIS_URL", saved.redis);
    }
  });
});

Deno.test("historyCommand() exits 1 with a message naming the store it cannot open", async () => {
  let out = "";
  let err = "";
  const io = { stdout: (s: string) => out += s, stderr: (s: string) => err += s };
  assert.equal(
    await historyCommand({ json: false, path: "/dev/null/ccx/history.sqlite", ...io }),
    1,
  );
  assert.match(err, /^ccx history: cannot open history file \/dev\/null\/ccx\/history\.sqlite/);
  assert.equal(out, "");
});

Deno.test({
  name: "historyCommand() exits 1 naming the Redis URL it cannot reach",
  async fn() {
    const port = freePort();
    let err = "";
    const code = await historyCommand({
      json: true,
      redisUrl: `redis://127.0.0.1:${port}`,
      stdout: () => {},
      stderr: (s) => err += s,
    });
    assert.equal(code, 1);
    assert.match(err, new RegExp(`cannot connect to Redis at redis://127\\.0\\.0\\.1:${port}`));
  },
});

Deno.test("formatHistoryTable() right-aligns numbers and puts the label last", () => {
  const table = formatHistoryTable([
    {
      key: "simple:a",
      label: "A",
      complexity: "simple",
      count: 120,
      successes: 100,
      p50S: 8,
      p90S: 9.5,
      estimateS: 30,
    },
    { key: "complex:b", label: "B", complexity: "complex", count: 2, successes: 0, estimateS: 240 },
  ]);
  assert.equal(
    table,
    [
      "COMPLEXITY  RUNS   OK   P50   P90  ESTIMATE  CLASS",
      "simple       120  100  8.0s  9.5s       30s  A",
      "complex        2    0     -     -      240s  B",
      "",
    ].join("\n"),
  );
});

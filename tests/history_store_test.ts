/**
 * Tests for the timeout history's stores: defaultHistoryPath(), one contract run
 * against SQLite and against a real `redis-server` started here, and openHistory().
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { DEFAULT_TIMEOUT_S, type HistoryStore, type Outcome } from "../lib/claude/history.ts";
import {
  defaultHistoryPath,
  openHistory,
  readRunRecord,
  RedisHistory,
  SqliteHistory,
} from "../lib/claude/history_store.ts";
import { historyCommand } from "../lib/commands/history.ts";
import { freePort, startRedis } from "./_util/redis.ts";
import { redisTier } from "./_util/tier.ts";
import { Redis } from "ioredis";
import { run, withTempDir } from "./_util/history.ts";

// The tier rule of tests/_util/tier.ts: a skip with one line, or a failure under CI=true.
const redisIgnore = redisTier();

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// defaultHistoryPath()
// ---------------------------------------------------------------------------

Deno.test("defaultHistoryPath() prefers CCX_STATE_DIR, then XDG_STATE_HOME, then ~/.local/state", () => {
  assert.equal(
    defaultHistoryPath({ CCX_STATE_DIR: "/s", XDG_STATE_HOME: "/x", HOME: "/h" }),
    "/s/history.sqlite",
  );
  assert.equal(
    defaultHistoryPath({ XDG_STATE_HOME: "/x", HOME: "/h" }),
    "/x/ccx/history.sqlite",
  );
  assert.equal(defaultHistoryPath({ HOME: "/h" }), "/h/.local/state/ccx/history.sqlite");
});

// ---------------------------------------------------------------------------
// stores: one contract, run against SQLite and against a real Redis
// ---------------------------------------------------------------------------

/** Opens a fresh, empty store with the given per-class limit; a second call with `again` reopens it. */
type Opener = (maxRunsPerClass: number) => Promise<{
  store: HistoryStore;
  reopen: () => Promise<HistoryStore>;
}>;

const CONTRACT: [string, (open: Opener) => Promise<void>][] = [
  ["runs() returns what record() stored, newest first", async (open) => {
    const { store } = await open(200);
    try {
      const a = run(10, "success", "simple:a", { at: 1000, source: "exec" });
      const b = run(20, "failure", "simple:a", { at: 2000 });
      const c = run(30.5, "timeout", "simple:a", { at: 3000, label: "newest label" });
      for (const r of [a, b, c]) await store.record(r);
      await store.record(run(1, "success", "medium:other"));
      assert.deepEqual(await store.runs("simple:a"), [c, b, a]);
      assert.deepEqual(await store.runs("simple:a", 2), [c, b]);
      assert.deepEqual(await store.runs("simple:missing"), []);
    } finally {
      await store.close();
    }
  }],
  ["record() keeps only the newest maxRunsPerClass runs of each class", async (open) => {
    const { store } = await open(5);
    try {
      for (let i = 1; i <= 8; i++) await store.record(run(i, "success", "simple:a", { at: i }));
      await store.record(run(99, "success", "simple:b"));
      assert.deepEqual((await store.runs("simple:a")).map((r) => r.durationS), [8, 7, 6, 5, 4]);
      assert.deepEqual((await store.runs("simple:b")).map((r) => r.durationS), [99]);
    } finally {
      await store.close();
    }
  }],
  ["classes() summarizes every class, most runs first", async (open) => {
    const { store } = await open(200);
    try {
      for (const d of [10, 20, 30, 40]) await store.record(run(d, "success", "simple:a"));
      await store.record(run(500, "timeout", "simple:a", { label: "What is a?" }));
      await store.record(run(15, "success", "medium:b", { label: "What is b?" }));
      await store.record(run(15, "failure", "complex:c"));
      const classes = await store.classes();
      assert.deepEqual(classes, [
        {
          key: "simple:a",
          label: "What is a?",
          complexity: "simple",
          count: 5,
          successes: 4,
          p50S: 25,
          p90S: 37,
          estimateS: 74, // 37 × 2
        },
        {
          key: "complex:c",
          label: "complex:c",
          complexity: "complex",
          count: 1,
          successes: 0,
          estimateS: DEFAULT_TIMEOUT_S.complex,
        },
        {
          key: "medium:b",
          label: "What is b?",
          complexity: "medium",
          count: 1,
          successes: 1,
          p50S: 15,
          p90S: 15,
          estimateS: DEFAULT_TIMEOUT_S.medium,
        },
      ]);
      const loaded = await store.classes({ load: { load1: 16, cores: 8 } });
      assert.equal(loaded[0].estimateS, 148);
    } finally {
      await store.close();
    }
  }],
  ["a second handle on the same store sees the runs", async (open) => {
    const { store, reopen } = await open(200);
    await store.record(run(12, "success", "simple:shared"));
    await store.close();
    const again = await reopen();
    try {
      await again.record(run(13, "success", "simple:shared"));
      assert.deepEqual((await again.runs("simple:shared")).map((r) => r.durationS), [13, 12]);
    } finally {
      await again.close();
    }
  }],
  ["record() rejects a malformed run and stores nothing", async (open) => {
    const { store } = await open(200);
    try {
      await assert.rejects(store.record(run(1, "bogus" as Outcome)), /outcome/);
      await assert.rejects(store.record(run(-1)), /durationS/);
      await assert.rejects(store.record(run(Number.NaN)), /durationS/);
      await assert.rejects(store.record({ ...run(1), key: "" }), /key/);
      assert.deepEqual(await store.classes(), []);
    } finally {
      await store.close();
    }
  }],
];

for (const [name, body] of CONTRACT) {
  Deno.test(`SqliteHistory: ${name}`, () =>
    withTempDir((dir) => {
      const path = join(dir, "nested", "history.sqlite");
      return body((max) =>
        Promise.resolve({
          store: new SqliteHistory({ path, maxRunsPerClass: max }),
          reopen: () => Promise.resolve(new SqliteHistory({ path, maxRunsPerClass: max })),
        })
      );
    }));
}

Deno.test("SqliteHistory creates its directory and uses WAL with an index on key", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "a", "b", "history.sqlite");
    const store = new SqliteHistory({ path });
    await store.record(run(1));
    await store.close();
    const db = new DatabaseSync(path);
    try {
      assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
      const indexes = db.prepare("PRAGMA index_list(runs)").all().map((r) => String(r.name));
      const onKey = indexes.some((name) =>
        db.prepare(`PRAGMA index_info(${name})`).all().some((c) => c.name === "key")
      );
      assert.ok(onKey, `no index on key among ${indexes.join(", ")}`);
    } finally {
      db.close();
    }
  });
});

Deno.test("SqliteHistory names the file it cannot open", () => {
  assert.throws(
    () => new SqliteHistory({ path: "/dev/null/ccx/history.sqlite" }),
    /cannot open history file \/dev\/null\/ccx\/history\.sqlite/,
  );
});

Deno.test("readRunRecord() reads a stored run and names the JSON path of what is wrong", () => {
  const rec = run(3, "timeout", "simple:k");
  assert.deepEqual(readRunRecord(JSON.parse(JSON.stringify({ ...rec, extra: 1 }))), rec);
  assert.deepEqual(readRunRecord({ ...rec, source: "stress" }).source, "stress");
  // What a store refuses to record is still read: only the shape is checked.
  assert.equal(readRunRecord({ ...rec, key: "", durationS: -1 }).durationS, -1);
  const bad: [unknown, string][] = [
    ["42", '$: expected an object, got "42"'],
    [[rec], "$: expected an object, got an array"],
    [{ key: "simple:k" }, "label: required"],
    [{ ...rec, durationS: "3" }, 'durationS: expected a number, got "3"'],
    [
      { ...rec, complexity: "huge" },
      'complexity: expected one of simple, medium or complex, got "huge"',
    ],
    [{ ...rec, source: null }, "source: expected a string, got null"],
  ];
  for (const [v, message] of bad) assert.throws(() => readRunRecord(v), { message });
  assert.throws(() => readRunRecord({ ...rec, at: "now" }, "runs[2]"), {
    message: 'runs[2].at: expected a number, got "now"',
  });
});

Deno.test({
  name: "RedisHistory against a real redis-server",
  ignore: redisIgnore,
  async fn(t) {
    const redis = await startRedis();
    try {
      let n = 0;
      for (const [name, body] of CONTRACT) {
        const prefix = `test${n++}`;
        await t.step(name, () =>
          body(async (max) => {
            const connect = () =>
              RedisHistory.connect({ url: redis.url, prefix, maxRunsPerClass: max });
            return { store: await connect(), reopen: connect };
          }));
      }
      await t.step("keeps one list per class and a set of classes", async () => {
        const store = await RedisHistory.connect({ url: redis.url });
        try {
          await store.record(run(3, "success", "simple:k"));
        } finally {
          await store.close();
        }
        const client = new Redis(redis.url);
        try {
          assert.equal(await client.llen("ccx:history:simple:k"), 1);
          assert.deepEqual(await client.smembers("ccx:classes"), ["simple:k"]);
          const wrongType = JSON.stringify({ ...run(4, "success", "simple:k"), durationS: "4" });
          await client.lpush(
            "ccx:history:simple:k",
            "not json",
            '{"key":"simple:k"}',
            "42",
            wrongType,
          );
        } finally {
          await client.quit();
        }
      });
      await t.step("openHistory() uses REDIS_URL from the environment", async () => {
        const store = await openHistory({ env: { REDIS_URL: redis.url } });
        try {
          assert.equal(store.location, redis.url);
          assert.ok(store instanceof RedisHistory);
          // the entries pushed by hand above are not runs and are skipped
          assert.deepEqual((await store.runs("simple:k")).map((r) => r.durationS), [3]);
        } finally {
          await store.close();
        }
      });
      await t.step("historyCommand() reads the Redis history", async () => {
        let out = "";
        const code = await historyCommand({
          redisUrl: redis.url,
          json: true,
          stdout: (s) => out += s,
        });
        assert.equal(code, 0);
        assert.ok(JSON.parse(out).some((c: { key: string }) => c.key === "simple:k"));
      });
    } finally {
      await redis.stop();
    }
  },
});

Deno.test({
  name: "RedisHistory.connect() fails fast naming the URL (password hidden) when nothing listens",
  async fn() {
    const port = freePort();
    await assert.rejects(
      RedisHistory.connect({ url: `redis://user:secret@127.0.0.1:${port}` }),
      (e: Error) => {
        assert.match(
          e.message,
          new RegExp(`cannot connect to Redis at redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${port}`),
        );
        assert.doesNotMatch(e.message, /secret/);
        return true;
      },
    );
  },
});

Deno.test("openHistory() uses SQLite at the given path even when REDIS_URL is set", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "h.sqlite");
    const store = await openHistory({ path, env: { REDIS_URL: "redis://127.0.0.1:1" } });
    try {
      assert.ok(store instanceof SqliteHistory);
      assert.equal(store.location, path);
    } finally {
      await store.close();
    }
  });
});

Deno.test("openHistory() defaults to history.sqlite in CCX_STATE_DIR", async () => {
  await withTempDir(async (dir) => {
    const store = await openHistory({ env: { CCX_STATE_DIR: dir } });
    try {
      assert.equal(store.location, join(dir, "history.sqlite"));
    } finally {
      await store.close();
    }
  });
});

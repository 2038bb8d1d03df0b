/**
 * The Redis connection (lib/common/redis.ts): URLs without passwords in messages, a fast failure
 * naming the URL when nothing listens, and a working client against a real `redis-server`.
 * @module
 */

import assert from "node:assert/strict";
import { QueueEvents } from "bullmq";
import { closeWithin, connectRedis, redactUrl } from "../lib/common/redis.ts";
import { freePort, redisRelay, startRedis } from "./_util/redis.ts";
import { redisTier } from "./_util/tier.ts";

const redisIgnore = redisTier();

Deno.test("redactUrl() hides the password only, and leaves what is not a URL alone", () => {
  assert.equal(redactUrl("rediss://ci:s3cret@redis.lan:6380"), "rediss://ci:***@redis.lan:6380");
  assert.equal(redactUrl("redis://:s3cret@127.0.0.1:6379/2"), "redis://:***@127.0.0.1:6379/2");
  assert.equal(redactUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
  assert.equal(redactUrl("not a url"), "not a url");
});

Deno.test("connectRedis() fails fast naming the URL (password hidden) when nothing listens", async () => {
  const port = freePort();
  await assert.rejects(
    connectRedis(`redis://user:secret@127.0.0.1:${port}`, { connectTimeoutMs: 2000 }),
    (e: Error) => {
      assert.match(
        e.message,
        new RegExp(`^cannot connect to Redis at redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${port}: `),
      );
      assert.doesNotMatch(e.message, /secret/);
      return true;
    },
  );
});

Deno.test({
  name: "connectRedis() gives a connected client; `blocking` lets commands wait through reconnects",
  ignore: redisIgnore,
  async fn() {
    const redis = await startRedis();
    try {
      const plain = await connectRedis(redis.url);
      const blocking = await connectRedis(redis.url, { blocking: true });
      try {
        assert.equal(await plain.ping(), "PONG");
        assert.equal(await blocking.ping(), "PONG");
        assert.equal(plain.options.maxRetriesPerRequest, 3);
        assert.equal(blocking.options.maxRetriesPerRequest, null, "what BullMQ workers require");
      } finally {
        await plain.quit();
        await blocking.quit();
      }
    } finally {
      await redis.stop();
    }
  },
});

Deno.test({
  name:
    "closeWithin(): a BullMQ close made while its connection is reconnecting never ends by itself; closeWithin ends it at its deadline",
  ignore: redisIgnore,
  fn: async () => {
    const redis = await startRedis();
    const relay = redisRelay(redis.port);
    const conn = await connectRedis(relay.url, { blocking: true });
    const events = new QueueEvents("q", { connection: conn, autorun: true });
    events.on("error", () => {});
    try {
      await events.waitUntilReady();
      relay.cut(); // the outage: its blocking XREAD is lost, ioredis retries with backoff
      const deadline = Date.now() + 10_000;
      while (conn.status !== "reconnecting" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(conn.status, "reconnecting");
      const t0 = performance.now();
      const closed = await closeWithin(events.close(), 1500, [conn]);
      const ms = performance.now() - t0;
      // ioredis emits no `end` for a client disconnected while reconnecting: BullMQ's close
      // waits for it forever (the coordinator that never exited). The deadline ends it.
      assert.equal(closed, false, "the close finished by itself");
      assert.ok(ms >= 1500 && ms < 5000, `closeWithin returned after ${ms} ms`);
    } finally {
      conn.disconnect();
      await relay.close();
      await redis.stop();
    }
  },
});

Deno.test("closeWithin(): a close that ends in time, or fails, disconnects nothing", async () => {
  let disconnected = 0;
  const client = { disconnect: () => void disconnected++ };
  assert.equal(await closeWithin(Promise.resolve("ok"), 1000, [client]), true);
  assert.equal(
    await closeWithin(Promise.reject(new Error("Connection is closed.")), 1000, [client]),
    true,
  );
  assert.equal(disconnected, 0);
  assert.equal(await closeWithin(new Promise(() => {}), 20, [client, client]), false);
  assert.equal(disconnected, 2);
});

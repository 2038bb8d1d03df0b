/**
 * The Redis connection (lib/common/redis.ts): URLs without passwords in messages, a fast failure
 * naming the URL when nothing listens, and a working client against a real `redis-server`.
 * @module
 */

import assert from "node:assert/strict";
import { connectRedis, redactUrl } from "../lib/common/redis.ts";
import { freePort, startRedis } from "./_util/redis.ts";
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

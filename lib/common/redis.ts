/**
 * The one Redis connection of ccx: a `redis://` or `rediss://` URL to a connected ioredis
 * client that fails fast, naming the URL (password hidden), when the server cannot be reached.
 * The timeout history (`claude/history.ts`) and the fleet queue (`fleet/`) both connect here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactUrl } from "./redis.ts";
 * assert.equal(redactUrl("redis://ci:s3cret@127.0.0.1:6379/0"), "redis://ci:***@127.0.0.1:6379/0");
 * ```
 * @module
 */

import { Redis } from "ioredis";
import { errorText } from "./format.ts";

/**
 * A Redis URL with any password replaced by `***`, for messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactUrl } from "./redis.ts";
 * assert.equal(redactUrl("rediss://ci:s3cret@redis.lan:6380"), "rediss://ci:***@redis.lan:6380");
 * assert.equal(redactUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Options of {@linkcode connectRedis}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectRedis, type ConnectRedisOptions } from "./redis.ts";
 * const opts: ConnectRedisOptions = { connectTimeoutMs: 500 };
 * // Nothing listens on port 1: the error says where and how long it tried.
 * await assert.rejects(connectRedis("redis://127.0.0.1:1", opts), /127\.0\.0\.1:1/);
 * ```
 */
export interface ConnectRedisOptions {
  /** Milliseconds to wait for the first connection (default 5000). */
  connectTimeoutMs?: number;
  /**
   * For long-lived clients such as BullMQ's: commands wait through reconnects
   * (`maxRetriesPerRequest: null`, which BullMQ workers require) and, once
   * connected, reconnecting never gives up. Otherwise commands fail after a few
   * attempts and reconnecting stops after about a minute.
   */
  blocking?: boolean;
}

/**
 * Connects an ioredis client to a `redis://` or `rediss://` URL, failing with an
 * error that names the URL (password hidden) when the server cannot be reached,
 * instead of retrying forever at startup. Once connected, a dropped connection
 * is retried with backoff (50 ms doubling to 2 s) for about a minute. The one
 * Redis client of ccx: the history and the fleet queue both use it.
 *
 * @internal The client is an ioredis `Redis`, whose types live outside ccx.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectRedis } from "./redis.ts";
 * // Needs a Redis server on 127.0.0.1:6379, so the doc tests only type-check it.
 * Deno.test({ name: "connectRedis (needs a Redis server)", ignore: true }, async () => {
 *   const redis = await connectRedis("redis://127.0.0.1:6379");
 *   assert.equal(await redis.ping(), "PONG");
 *   await redis.quit();
 * });
 * ```
 */
export async function connectRedis(url: string, opts: ConnectRedisOptions = {}): Promise<Redis> {
  const location = redactUrl(url);
  let ready = false;
  let lastError: unknown;
  let client: Redis;
  try {
    client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: opts.connectTimeoutMs ?? 5000,
      maxRetriesPerRequest: opts.blocking ? null : 3,
      enableOfflineQueue: true,
      // A long-lived (blocking) client rides out a Redis restart; others give up after ~1 min.
      retryStrategy: (times: number) =>
        ready && (opts.blocking || times < 40) ? Math.min(50 * 2 ** times, 2000) : null,
    });
  } catch (e) {
    throw new Error(`cannot use Redis at ${location}: ${errorText(e)}`, { cause: e });
  }
  // Without a listener, node's EventEmitter would throw the error and crash ccx.
  client.on("error", (e: unknown) => lastError = e);
  client.on("ready", () => ready = true);
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    client.disconnect();
    throw new Error(`cannot connect to Redis at ${location}: ${errorText(lastError ?? e)}`, {
      cause: e,
    });
  }
  return client;
}

/**
 * Waits for `closing` (a BullMQ `close()`, an ioredis `quit()`) at most `ms`; past that,
 * disconnects each of `clients` at once and resolves `false`. ioredis never ends a client
 * that is disconnected while it is reconnecting (no `end` event comes), so a BullMQ close
 * made just after a Redis outage can wait forever; this bounds it. A `closing` that fails
 * counts as closed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeWithin } from "./redis.ts";
 * assert.equal(await closeWithin(Promise.resolve(), 1000, []), true);
 * assert.equal(await closeWithin(new Promise(() => {}), 10, []), false); // never settles
 * ```
 */
export async function closeWithin(
  closing: Promise<unknown>,
  ms: number,
  clients: readonly { disconnect(): void }[],
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  const inTime = await Promise.race([closing.then(() => true, () => true), late]);
  clearTimeout(timer);
  if (!inTime) {
    for (const c of clients) {
      try {
        c.disconnect();
      } catch { /* already gone */ }
    }
  }
  return inTime;
}

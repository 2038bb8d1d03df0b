/**
 * The timeout history's stores, behind the {@linkcode HistoryStore} interface
 * of `history.ts`: SQLite (a file in the user's state directory, the default)
 * and Redis (so many test boxes share one history), and
 * {@linkcode openHistory}, which picks one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskClass } from "./history.ts";
 * import { openHistory } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = await openHistory({ path: `${dir}/history.sqlite` });
 * await store.record({ ...taskClass("What is 2+2?"), durationS: 8, outcome: "success", at: 1 });
 * assert.equal((await store.runs("simple:<n>")).length, 1);
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Redis } from "ioredis";
import { stateDir } from "../common/config.ts";
import { errorText } from "../common/format.ts";
import { connectRedis, redactUrl } from "../common/redis.ts";
import {
  asRecord,
  JsonShapeError,
  optString,
  readEnum,
  readNumber,
  readString,
} from "../common/json.ts";
import {
  type ClassSummary,
  type Complexity,
  type EstimateOptions,
  type HistoryStore,
  type Outcome,
  type RunRecord,
  summarize,
} from "./history.ts";

// ---------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------

/**
 * Runs kept per class unless a store is told otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_RUNS_PER_CLASS } from "./history_store.ts";
 * assert.equal(MAX_RUNS_PER_CLASS, 200);
 * ```
 */
export const MAX_RUNS_PER_CLASS = 200;

const OUTCOMES: readonly Outcome[] = ["success", "failure", "timeout", "error"];
const COMPLEXITIES: readonly Complexity[] = ["simple", "medium", "complex"];

function validateRecord(r: RunRecord): void {
  if (typeof r.key !== "string" || r.key === "") throw new TypeError("run record needs a key");
  if (!COMPLEXITIES.includes(r.complexity)) {
    throw new TypeError(`run record complexity must be simple|medium|complex, got ${r.complexity}`);
  }
  if (!OUTCOMES.includes(r.outcome)) {
    throw new TypeError(
      `run record outcome must be success|failure|timeout|error, got ${r.outcome}`,
    );
  }
  if (!(Number.isFinite(r.durationS) && r.durationS >= 0)) {
    throw new TypeError(`run record durationS must be a non-negative number, got ${r.durationS}`);
  }
  if (!Number.isFinite(r.at)) throw new TypeError(`run record at must be epoch ms, got ${r.at}`);
}

function sortSummaries(list: ClassSummary[]): ClassSummary[] {
  return list.sort((a, b) => b.count - a.count || a.key.localeCompare(b.key));
}

/**
 * The default SQLite file: `$CCX_STATE_DIR/history.sqlite`, else
 * `$XDG_STATE_HOME/ccx/history.sqlite`, else `~/.local/state/ccx/history.sqlite`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultHistoryPath } from "./history_store.ts";
 * assert.equal(defaultHistoryPath({ CCX_STATE_DIR: "/tmp/ccx" }), "/tmp/ccx/history.sqlite");
 * ```
 */
export function defaultHistoryPath(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): string {
  return join(stateDir(env), "history.sqlite");
}

/**
 * Options of {@linkcode SqliteHistory}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskClass } from "./history.ts";
 * import { SqliteHistory, type SqliteHistoryOptions } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const opts: SqliteHistoryOptions = { path: `${dir}/h.sqlite`, maxRunsPerClass: 2 };
 * const store = new SqliteHistory(opts);
 * for (const at of [1, 2, 3]) {
 *   await store.record({ ...taskClass("What is 2+2?"), durationS: at, outcome: "success", at });
 * }
 * assert.equal((await store.runs("simple:<n>")).length, 2); // the oldest run was dropped
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export interface SqliteHistoryOptions {
  /** Database file (default {@linkcode defaultHistoryPath}); its directory is created. */
  path?: string;
  /** Runs kept per class (default {@linkcode MAX_RUNS_PER_CLASS}). */
  maxRunsPerClass?: number;
}

/**
 * History in a SQLite file (WAL mode, so several ccx processes on one box can
 * record at once).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskClass } from "./history.ts";
 * import { SqliteHistory } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = new SqliteHistory({ path: `${dir}/history.sqlite` });
 * await store.record({ ...taskClass("What is 2+2?"), durationS: 8, outcome: "success", at: 1 });
 * const [cls] = await store.classes();
 * assert.deepEqual([cls.key, cls.count, cls.successes], ["simple:<n>", 1, 1]);
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class SqliteHistory implements HistoryStore {
  readonly location: string;
  #db: DatabaseSync;
  #max: number;

  /** Open (creating if needed) the file; throws an error naming it when that fails. */
  constructor(opts: SqliteHistoryOptions = {}) {
    this.location = opts.path ?? defaultHistoryPath();
    this.#max = opts.maxRunsPerClass ?? MAX_RUNS_PER_CLASS;
    try {
      mkdirSync(dirname(this.location), { recursive: true });
      this.#db = new DatabaseSync(this.location);
    } catch (e) {
      throw new Error(`cannot open history file ${this.location}: ${errorText(e)}`, { cause: e });
    }
    try {
      this.#db.exec("PRAGMA busy_timeout = 5000");
      this.#db.exec("PRAGMA journal_mode = WAL");
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS runs (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          key TEXT NOT NULL,
          label TEXT NOT NULL,
          complexity TEXT NOT NULL,
          duration_s REAL NOT NULL,
          outcome TEXT NOT NULL,
          at INTEGER NOT NULL,
          source TEXT
        );
        CREATE INDEX IF NOT EXISTS runs_by_key ON runs (key, id);
      `);
    } catch (e) {
      this.#db.close();
      throw new Error(`cannot open history file ${this.location}: ${errorText(e)}`, { cause: e });
    }
  }

  record(r: RunRecord): Promise<void> {
    try {
      validateRecord(r);
      this.#insert(r);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #insert(r: RunRecord): void {
    const db = this.#db;
    db.exec("BEGIN IMMEDIATE");
    try {
      db.prepare(
        "INSERT INTO runs (key, label, complexity, duration_s, outcome, at, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ).run(r.key, r.label, r.complexity, r.durationS, r.outcome, r.at, r.source ?? null);
      // Drop the runs of this class older than the newest `max`.
      db.prepare(
        "DELETE FROM runs WHERE key = ? AND id <= (SELECT id FROM runs WHERE key = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
      ).run(r.key, r.key, this.#max);
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
  }

  runs(key: string, limit: number = this.#max): Promise<RunRecord[]> {
    try {
      return Promise.resolve(this.#select(key, limit));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #select(key: string, limit: number): RunRecord[] {
    return this.#db.prepare(
      "SELECT key, label, complexity, duration_s, outcome, at, source FROM runs WHERE key = ? ORDER BY id DESC LIMIT ?",
    ).all(key, Math.max(0, Math.floor(limit))).map(rowToRecord);
  }

  async classes(opts: EstimateOptions = {}): Promise<ClassSummary[]> {
    const keys = this.#db.prepare("SELECT DISTINCT key FROM runs").all().map((r) => String(r.key));
    const out: ClassSummary[] = [];
    for (const key of keys) out.push(summarize(key, await this.runs(key), opts));
    return sortSummaries(out);
  }

  close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
    return Promise.resolve();
  }
}

function rowToRecord(row: Record<string, unknown>): RunRecord {
  const r: RunRecord = {
    key: String(row.key),
    label: String(row.label),
    complexity: row.complexity as Complexity,
    durationS: Number(row.duration_s),
    outcome: row.outcome as Outcome,
    at: Number(row.at),
  };
  if (row.source !== null && row.source !== undefined) r.source = String(row.source);
  return r;
}

/**
 * Options of {@linkcode RedisHistory.connect}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RedisHistory, type RedisHistoryOptions } from "./history_store.ts";
 * const opts: RedisHistoryOptions = { url: "redis://127.0.0.1:1/0", prefix: "lab1", connectTimeoutMs: 500 };
 * // Nothing listens on port 1: connect fails with an error naming the URL.
 * await assert.rejects(RedisHistory.connect(opts), /redis:\/\/127\.0\.0\.1:1\/0/);
 * ```
 */
export interface RedisHistoryOptions {
  /** e.g. `redis://127.0.0.1:6379/0`, `rediss://user:pass@host:6380`. */
  url: string;
  /** Key prefix (default `ccx`): lists `<prefix>:history:<class>`, set `<prefix>:classes`. */
  prefix?: string;
  /** Runs kept per class (default {@linkcode MAX_RUNS_PER_CLASS}). */
  maxRunsPerClass?: number;
  /** Milliseconds to wait for the first connection (default 5000). */
  connectTimeoutMs?: number;
}

/**
 * History in Redis, shared by every box that points at the same server: one
 * list per class (`ccx:history:<class>`, LPUSH + LTRIM, newest first, JSON
 * records) and a set of class keys (`ccx:classes`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskClass } from "./history.ts";
 * import { RedisHistory } from "./history_store.ts";
 * // Needs a Redis server on 127.0.0.1:6379, so the doc tests only type-check it.
 * Deno.test({ name: "RedisHistory (needs a Redis server)", ignore: true }, async () => {
 *   const store = await RedisHistory.connect({ url: "redis://127.0.0.1:6379", prefix: "demo" });
 *   await store.record({ ...taskClass("What is 2+2?"), durationS: 8, outcome: "success", at: 1 });
 *   assert.equal((await store.classes())[0].key, "simple:<n>");
 *   await store.close();
 * });
 * ```
 */
export class RedisHistory implements HistoryStore {
  readonly location: string;
  #client: Redis;
  #prefix: string;
  #max: number;

  private constructor(client: Redis, location: string, prefix: string, max: number) {
    this.#client = client;
    this.location = location;
    this.#prefix = prefix;
    this.#max = max;
  }

  /**
   * Connect, failing with an error that names the URL when the server cannot
   * be reached (no endless reconnect loop at startup). After the first
   * connection, dropped connections are retried with backoff for a while.
   */
  static async connect(opts: RedisHistoryOptions): Promise<RedisHistory> {
    const client = await connectRedis(opts.url, { connectTimeoutMs: opts.connectTimeoutMs });
    return new RedisHistory(
      client,
      redactUrl(opts.url),
      opts.prefix ?? "ccx",
      opts.maxRunsPerClass ?? MAX_RUNS_PER_CLASS,
    );
  }

  #listKey(key: string): string {
    return `${this.#prefix}:history:${key}`;
  }

  async record(r: RunRecord): Promise<void> {
    validateRecord(r);
    const rec: RunRecord = {
      key: r.key,
      label: r.label,
      complexity: r.complexity,
      durationS: r.durationS,
      outcome: r.outcome,
      at: r.at,
    };
    if (r.source !== undefined) rec.source = r.source;
    const list = this.#listKey(r.key);
    await this.#client.multi()
      .lpush(list, JSON.stringify(rec))
      .ltrim(list, 0, this.#max - 1)
      .sadd(`${this.#prefix}:classes`, r.key)
      .exec();
  }

  async runs(key: string, limit: number = this.#max): Promise<RunRecord[]> {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    const items = await this.#client.lrange(this.#listKey(key), 0, n - 1);
    const out: RunRecord[] = [];
    for (const item of items) {
      // A foreign or corrupt entry is skipped rather than failing every estimate.
      const r = parseRecord(item);
      if (r) out.push(r);
    }
    return out;
  }

  async classes(opts: EstimateOptions = {}): Promise<ClassSummary[]> {
    const keys = await this.#client.smembers(`${this.#prefix}:classes`);
    const lists = await Promise.all(keys.map((k) => this.runs(k)));
    const out: ClassSummary[] = [];
    keys.forEach((k, i) => {
      if (lists[i].length > 0) out.push(summarize(k, lists[i], opts));
    });
    return sortSummaries(out);
  }

  async close(): Promise<void> {
    if (this.#client.status === "end") return;
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}

/** A Redis list item as a run, or undefined for a foreign or corrupt one. */
function parseRecord(text: string): RunRecord | undefined {
  try {
    return readRunRecord(JSON.parse(text));
  } catch (e) {
    if (e instanceof SyntaxError || e instanceof JsonShapeError) return undefined;
    throw e;
  }
}

/**
 * Reads a run record as the Redis store keeps it (the JSON of a {@linkcode RunRecord}); throws
 * {@linkcode JsonShapeError} naming the JSON path of the first problem. Only the shape is
 * checked: what a store refuses to record (an empty key, a negative duration) is still read.
 *
 * @param v the parsed JSON
 * @param path JSON path of `v` (`""` for a whole document)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readRunRecord } from "./history_store.ts";
 * const rec = { key: "simple:k", label: "k", complexity: "simple", durationS: 3, outcome: "success", at: 1 };
 * assert.deepEqual(readRunRecord(rec), rec);
 * assert.throws(() => readRunRecord({ ...rec, outcome: "ok" }), {
 *   message: 'outcome: expected one of success, failure, timeout or error, got "ok"',
 * });
 * ```
 */
export function readRunRecord(v: unknown, path = ""): RunRecord {
  const o = asRecord(v, path);
  const r: RunRecord = {
    key: readString(o, "key", path),
    label: readString(o, "label", path),
    complexity: readEnum(o, "complexity", path, COMPLEXITIES),
    durationS: readNumber(o, "durationS", path),
    outcome: readEnum(o, "outcome", path, OUTCOMES),
    at: readNumber(o, "at", path),
  };
  const source = optString(o, "source", path);
  if (source !== undefined) r.source = source;
  return r;
}

/**
 * Options of {@linkcode openHistory}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openHistory, type OpenHistoryOptions } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const opts: OpenHistoryOptions = { env: { CCX_STATE_DIR: dir } }; // no REDIS_URL: a SQLite file
 * const store = await openHistory(opts);
 * assert.equal(store.location, `${dir}/history.sqlite`);
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export interface OpenHistoryOptions {
  /** Use Redis at this URL. */
  redisUrl?: string;
  /** Use this SQLite file. */
  path?: string;
  /** Environment to read `REDIS_URL`, `CCX_STATE_DIR`… from (default `Deno.env`). */
  env?: Record<string, string | undefined>;
  /** Runs kept per class. */
  maxRunsPerClass?: number;
}

/**
 * Open the history store: Redis when `redisUrl` is given; else SQLite at `path`
 * when given; else Redis when env `REDIS_URL` is set; else SQLite at
 * {@linkcode defaultHistoryPath}. Errors name the file or URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openHistory } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = await openHistory({ path: `${dir}/ccx-history.sqlite` });
 * assert.equal(store.location, `${dir}/ccx-history.sqlite`);
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function openHistory(opts: OpenHistoryOptions = {}): Promise<HistoryStore> {
  const env = opts.env ?? Deno.env.toObject();
  const redisUrl = opts.redisUrl ?? (opts.path === undefined ? env.REDIS_URL : undefined);
  if (redisUrl) {
    return await RedisHistory.connect({ url: redisUrl, maxRunsPerClass: opts.maxRunsPerClass });
  }
  return new SqliteHistory({
    path: opts.path ?? defaultHistoryPath(env),
    maxRunsPerClass: opts.maxRunsPerClass,
  });
}

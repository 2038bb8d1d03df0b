/**
 * Fleet test helpers: `ccx worker` and `ccx stress --queue` as real processes against a
 * throwaway redis-server, suites of gated tasks, and reading the JSON report.
 * @module
 */

import { join } from "node:path";
import type { Redis } from "ioredis";
import { KEY_ENV, newTag, pidsMatching, ROOT, waitFor } from "./helpers.ts";
import { startRedis, type TestRedis } from "./redis.ts";

/** A `ccx worker` process. */
export interface WorkerProc {
  /** Its `--name`. */
  name: string;
  /** The process. */
  child: Deno.ChildProcess;
  /** Everything it wrote to stderr so far (its log). */
  log(): string;
  /** Resolves with its exit status. */
  status: Promise<Deno.CommandStatus>;
}

/** Collects a stream's text into `sink` as it comes. */
function drain(stream: ReadableStream<Uint8Array>, sink: (s: string) => void): Promise<void> {
  return stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (s) => sink(s) }),
  ).catch(() => {});
}

/**
 * Starts `ccx worker --queue URL --name NAME ARGS` and resolves once it takes tasks. `env` adds
 * to its environment (e.g. `CCX_STATE_DIR`, where its server makes workspaces).
 */
export async function startWorker(
  url: string,
  name: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<WorkerProc> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "worker", "--name", name, ...args],
    // Tests run as root, where the CLI needs IS_SANDBOX=1; the stand-in needs a key, which the
    // worker's jobs get from its environment (the allow-list passes ANTHROPIC_*).
    env: { CCX_QUEUE: url, NO_COLOR: "1", CCX_SANDBOX: "1", ...KEY_ENV, ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let err = "";
  const pumped = drain(child.stderr, (s) => err += s);
  const status = child.status.then(async (s) => {
    await pumped;
    return s;
  });
  const w: WorkerProc = { name, child, log: () => err, status };
  let exited = false;
  status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  while (!err.includes("taking tasks")) {
    if (exited) throw new Error(`worker ${name} exited: ${err}`);
    if (Date.now() > deadline) throw new Error(`worker ${name} did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return w;
}

/** Ends a worker if it still runs (SIGKILL) and waits for it. */
export async function killWorker(w: WorkerProc): Promise<void> {
  try {
    w.child.kill("SIGKILL");
  } catch { /* already gone */ }
  await w.status;
}

/** A `ccx stress --queue` process. */
export interface CoordinatorProc {
  /** The process. */
  child: Deno.ChildProcess;
  /** Output so far. */
  out(): string;
  /** Resolves with the exit code once it ended and its output is read. */
  code: Promise<number>;
}

/**
 * Starts `ccx stress SUITE --queue URL ARGS`, with `--no-history` unless `history` (then the
 * workers record the runs in the queue's Redis).
 */
export function startCoordinator(
  url: string,
  suite: string,
  args: string[] = [],
  history = false,
): CoordinatorProc {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}main.ts`,
      "stress",
      suite,
      ...(history ? [] : ["--no-history"]),
      ...args,
    ],
    env: { CCX_QUEUE: url, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pumps = [drain(child.stdout, (s) => text += s), drain(child.stderr, (s) => text += s)];
  const code = child.status.then(async (s) => {
    await Promise.all(pumps);
    return s.code;
  });
  return { child, out: () => text, code };
}

/** One test of a JSON report, as the tests here read it. */
export interface ReportTest {
  id: string;
  status: string;
  reason: string;
  worker?: string;
  rerun?: string;
  output_file: string | null;
  instances?: { index: number; status: string }[];
}

/** Reads the `tests` of a JSON report. */
export async function readTests(path: string): Promise<ReportTest[]> {
  return JSON.parse(await Deno.readTextFile(path)).tests as ReportTest[];
}

/** A working directory for one test, removed by `cleanup()`. */
export interface Work {
  dir: string;
  /** A path inside it. */
  path(name: string): string;
  /** Writes `suite` as JSON and returns its path. */
  suite(suite: unknown, name?: string): Promise<string>;
  /** Removes the directory. */
  cleanup(): Promise<void>;
}

/** Makes a {@linkcode Work} directory. */
export async function work(): Promise<Work> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_fleet_test_" });
  return {
    dir,
    path: (name) => join(dir, name),
    async suite(suite, name = "suite.json") {
      const p = join(dir, name);
      await Deno.writeTextFile(p, JSON.stringify(suite));
      return p;
    },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * A suite of `n` tasks that print `up`, wait until the file `go` exists, then print
 * `<word>-<i>` (their expected pattern). Each command carries `tag`.
 */
export function gatedSuite(tag: string, go: string, n: number, word = "done"): unknown {
  return {
    tests: Array.from({ length: n }, (_, k) => ({
      id: `t${k + 1}`,
      command: `: ${tag}; echo up; while [ ! -e '${go}' ]; do sleep 0.05; done; echo ${word}-${
        k + 1
      }`,
      expected_patterns: [`${word}-${k + 1}`],
      timeout: 120,
    })),
  };
}

/**
 * The tasks of a {@linkcode gatedSuite} (tagged `tag`, answering `word`) that have a live process
 * now: their numbers, read from the command lines (`… echo word-N`), so a task that shows up as
 * more than one process still counts once.
 */
export function runningTasks(tag: string, word = "done"): Set<number> {
  const out = new Set<number>();
  const re = new RegExp(`echo ${word}-(\\d+)`);
  for (const pid of pidsMatching(tag)) {
    try {
      const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
      const m = cmd.match(re);
      if (m) out.add(Number(m[1]));
    } catch {
      // gone
    }
  }
  return out;
}

/** What {@linkcode withFleet} gives a test. */
export interface Fleet {
  /** A throwaway redis-server. */
  redis: TestRedis;
  /** The test's working directory. */
  w: Work;
  /** A tag that every task's command carries. */
  tag: string;
  /** The gate file of {@linkcode gatedSuite}; written on the way out, so no task waits on. */
  go: string;
  /** Workers the test started: killed on the way out. */
  workers: WorkerProc[];
}

/**
 * Runs `fn` with a fresh redis-server (requiring `redisPassword`, when given) and working
 * directory, then opens the gate, kills the workers, waits for every task process carrying the
 * tag to end (a killed worker's orphaned task sees the gate open and ends by itself), and
 * removes it all.
 */
export async function withFleet(
  fn: (f: Fleet) => Promise<void>,
  opts: { redisPassword?: string } = {},
): Promise<void> {
  const redis = await startRedis({ password: opts.redisPassword });
  const w = await work();
  const f: Fleet = { redis, w, tag: newTag(), go: w.path("go"), workers: [] };
  try {
    await fn(f);
  } finally {
    await Deno.writeTextFile(f.go, "").catch(() => {});
    await Promise.all(f.workers.map(killWorker));
    await waitFor(() => pidsMatching(f.tag).length === 0, "the tasks to end", 10_000);
    await w.cleanup();
    await redis.stop();
  }
}

/**
 * The exit code of a coordinator, waited for at most `ms`: past it the coordinator is killed
 * and the error says what it printed, so a run that never ends fails the test instead of
 * hanging it.
 */
export async function exitCode(c: CoordinatorProc, ms = 120_000): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
  const got = await Promise.race([c.code, late]);
  clearTimeout(timer);
  if (got !== "late") return got;
  try {
    c.child.kill("SIGKILL");
  } catch { /* ended meanwhile */ }
  await c.code;
  throw new Error(`the coordinator did not end within ${ms} ms; it printed: ${c.out()}`);
}

/** Waits until the async `pred` holds, polling every 50 ms; throws naming `what` after `ms`. */
export async function until(
  pred: () => Promise<boolean>,
  what: string,
  ms = 30_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!await pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Redis key of the BullMQ job of task `id` (queue `ccx`), once the coordinator added it. */
export async function jobKey(redis: Redis, id: string): Promise<string | undefined> {
  const keys = await redis.keys(`bull:ccx:*.${id}`);
  return keys.length === 1 ? keys[0] : undefined;
}

/**
 * `ccx ps`: the jobs of every session of a `ccx serve`, as its web page lists them (by label,
 * grouped by run with its progress), in a terminal. Also the options and error handling that
 * `ccx logs` and `ccx cancel` share with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { psCommand } from "./ps.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * assert.equal(await psCommand({ server: server.url, all: true }), 0); // prints "no jobs" here
 * await server.shutdown();
 * assert.equal(await psCommand({ server: server.url }), 3); // nothing answers there now
 * ```
 * @module
 */

import {
  DEFAULT_OBSERVE_URL,
  jobTitle,
  type ObservedJob,
  observeUrl,
  Watcher,
  WatcherError,
} from "../client/watcher.ts";
import { type Command, defineCommand, type OptionDecls } from "../common/cli.ts";
import { ConfigError, readPemFile } from "../common/config.ts";

/** Where and how `ccx ps`, `logs` and `cancel` observe. */
export interface ObserveOptions {
  /** The server: `ws://…/ws`, `wss://…`, or its page's `http(s)://HOST:PORT/`. */
  server?: string;
  /** Its token (sent as the web page sends it). */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
}

/** The options `ccx ps`, `logs` and `cancel` share (server, token, CA). */
export const OBSERVE_OPTIONS = {
  server: {
    type: "string",
    short: "s",
    env: "CCX_SERVER",
    arg: "URL",
    default: DEFAULT_OBSERVE_URL,
    help: "the server: ws://HOST:PORT/ws, or its page's http://HOST:PORT/",
  },
  token: {
    type: "string",
    env: "CCX_TOKEN",
    arg: "T",
    help: "the server's token (sent as its web page sends it)",
  },
  ca: {
    type: "string",
    env: "CCX_CA",
    arg: "FILE",
    help: "PEM certificate of a private CA to trust for wss://",
  },
} as const satisfies OptionDecls;

/** The exit-code notes the three observer commands share. */
export const OBSERVE_EXIT_NOTE =
  "3 the server could not be observed (not running, token needed or refused, connection lost).";

/**
 * Connects to the server of `o` as an observer, runs `fn`, and closes. A {@linkcode WatcherError}
 * is said on stderr with the command's name: exit 3 for the connection, 1 for a job; a bad URL is
 * a usage error (exit 2).
 */
export async function observing(
  name: string,
  o: ObserveOptions,
  fn: (w: Watcher) => Promise<number>,
): Promise<number> {
  let url: string;
  try {
    url = observeUrl(o.server ?? DEFAULT_OBSERVE_URL);
  } catch (e) {
    throw new ConfigError(`--server: ${(e as Error).message}`);
  }
  let w: Watcher | undefined;
  try {
    w = await Watcher.connect(url, { token: o.token, ca: o.ca });
    return await fn(w);
  } catch (e) {
    if (!(e instanceof WatcherError)) throw e;
    console.error(`ccx ${name}: ${e.message}`);
    return e.kind === "connect" ? 3 : 1;
  } finally {
    await w?.close().catch(() => {});
  }
}

/** Options of `ccx ps`. */
export interface PsOptions extends ObserveOptions {
  /** Finished jobs too (those the server still keeps). */
  all?: boolean;
  /** The server's facts and jobs as JSON (the `watch` snapshot). */
  json?: boolean;
}

/**
 * Seconds as `12.3s`, `4m05s` or `1h02m`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmtElapsed } from "./ps.ts";
 * assert.equal(fmtElapsed(245), "4m05s");
 * ```
 */
export function fmtElapsed(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Bytes as `812 B`, `4.1 KiB`, `3.0 MiB`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmtBytes } from "./ps.ts";
 * assert.equal(fmtBytes(4200), "4.1 KiB");
 * assert.equal(fmtBytes(512), "512 B");
 * ```
 */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** One run's jobs and how far it is (`done` task runs of `total`, when the run said). */
export interface RunGroup {
  /** `meta.run_id`, or `undefined` for jobs of no run. */
  runId?: string;
  /** `meta.suite` of its jobs. */
  suite?: string;
  /** Its jobs, oldest first. */
  jobs: ObservedJob[];
  /** Task runs whose every job has ended. */
  done: number;
  /** Jobs not ended yet. */
  running: number;
  /** `meta.run_total`: task runs in the run. */
  total?: number;
}

function metaString(j: ObservedJob, key: string): string | undefined {
  const v = j.meta?.[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * Groups jobs by `meta.run_id` (runs in the order they started; jobs of no run last) and counts
 * each run's progress: a task run (`meta.result_id`, else the job) is done when all its jobs are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { groupByRun } from "./ps.ts";
 * import type { ObservedJob } from "../client/watcher.ts";
 * const job = (job_id: string, state: ObservedJob["state"], run_id?: string) =>
 *   ({ session_id: "s", job_id, state, started_at: 0, meta: run_id ? { run_id, run_total: 2 } : undefined }) as ObservedJob;
 * const groups = groupByRun([job("a", "done", "r1"), job("b", "running", "r1"), job("c", "running")]);
 * assert.deepEqual(groups.map((g) => [g.runId, g.done, g.running, g.total]), [["r1", 1, 1, 2], [undefined, 0, 1, undefined]]);
 * ```
 */
export function groupByRun(jobs: ObservedJob[]): RunGroup[] {
  const sorted = [...jobs].sort((a, b) => a.started_at - b.started_at);
  const groups = new Map<string | undefined, RunGroup>();
  for (const j of sorted) {
    const runId = metaString(j, "run_id");
    let g = groups.get(runId);
    if (!g) {
      g = { runId, jobs: [], done: 0, running: 0 };
      groups.set(runId, g);
    }
    g.jobs.push(j);
    g.suite ??= metaString(j, "suite");
    const total = j.meta?.run_total;
    if (typeof total === "number") g.total = total;
  }
  for (const g of groups.values()) {
    const tasks = new Map<string, boolean>();
    for (const j of g.jobs) {
      const key = metaString(j, "result_id") ?? `${j.session_id}/${j.job_id}`;
      tasks.set(key, (tasks.get(key) ?? true) && j.state === "done");
      if (j.state !== "done") g.running++;
    }
    g.done = [...tasks.values()].filter((d) => d).length;
  }
  const out = [...groups.values()];
  return [...out.filter((g) => g.runId !== undefined), ...out.filter((g) => g.runId === undefined)];
}

/**
 * The header line of a run: `run ID (SUITE): 3 of 9 done, 2 running`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runHeader } from "./ps.ts";
 * assert.equal(
 *   runHeader({ runId: "r1", suite: "demo", jobs: [], done: 3, running: 2, total: 9 }),
 *   "run r1 (demo): 3 of 9 done, 2 running",
 * );
 * ```
 */
export function runHeader(g: RunGroup): string {
  if (g.runId === undefined) return "other jobs";
  const of = g.total !== undefined ? ` of ${g.total}` : "";
  return `run ${g.runId}${g.suite ? ` (${g.suite})` : ""}: ${g.done}${of} done, ` +
    `${g.running} running`;
}

/** A job's status word: its state while it runs, its end status once done. */
function statusOf(j: ObservedJob): string {
  if (j.state !== "done") return j.state;
  const expected = j.status === "failed" && j.meta?.expect_exit === "non-zero";
  return `${j.status ?? "done"}${expected ? " (expected)" : ""}`;
}

/** A job id as `ccx ps` shows it: at most 12 characters (any unique prefix names it). */
function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 12) : id;
}

/**
 * The `ccx ps` table: a header, then per run a line with its progress and its jobs. Only jobs
 * that have not ended, unless `all`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatJobs } from "./ps.ts";
 * import type { ObservedJob } from "../client/watcher.ts";
 * assert.equal(formatJobs([]), "no jobs");
 * const done = { session_id: "s", job_id: "j1", state: "done", started_at: 0 } as ObservedJob;
 * assert.equal(formatJobs([done]), "no running jobs (ccx ps --all also lists the 1 finished one)");
 * ```
 */
export function formatJobs(jobs: ObservedJob[], opts: { all?: boolean } = {}): string {
  const rows: string[][] = [];
  const groups = groupByRun(jobs);
  const named = groups.some((g) => g.runId !== undefined);
  for (const g of groups) {
    const shown = opts.all ? g.jobs : g.jobs.filter((j) => j.state !== "done");
    if (shown.length === 0) continue;
    if (named) rows.push([`# ${runHeader(g)}`]);
    for (const j of shown) {
      rows.push([
        shortId(j.job_id),
        statusOf(j),
        fmtElapsed(j.elapsed),
        fmtBytes(j.stdout_bytes + j.stderr_bytes),
        String(j.pid),
        j.exit_code === undefined || j.exit_code === null ? "" : String(j.exit_code),
        jobTitle(j).replace(/\s+/g, " "),
      ]);
    }
  }
  if (rows.length === 0) {
    const done = jobs.filter((j) => j.state === "done").length;
    return opts.all || done === 0
      ? "no jobs"
      : `no running jobs (ccx ps --all also lists the ${done} finished ${
        done === 1 ? "one" : "ones"
      })`;
  }
  const head = ["JOB", "STATUS", "ELAPSED", "OUTPUT", "PID", "EXIT", "TASK"];
  const table = rows.filter((r) => r.length > 1);
  const width = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  const right = new Set([2, 3, 4, 5]);
  const line = (r: string[]) =>
    r.map((c, i) =>
      i === r.length - 1 ? c : right.has(i) ? c.padStart(width[i]) : c.padEnd(width[i])
    ).join("  ");
  return [line(head), ...rows.map((r) => r.length === 1 ? r[0] : line(r))].join("\n");
}

/** Runs `ccx ps`; resolves with the exit code (0, or 3 when the server cannot be observed). */
export function psCommand(o: PsOptions): Promise<number> {
  return observing("ps", o, async (w) => {
    const snap = await w.snapshot();
    if (o.json) {
      const jobs = o.all ? snap.jobs : snap.jobs.filter((j) => j.state !== "done");
      console.log(JSON.stringify({ server: snap.server, jobs }, null, 2));
    } else console.log(formatJobs(snap.jobs, { all: o.all }));
    return 0;
  });
}

/** The `ccx ps` declaration. */
export const ps: Command = defineCommand({
  name: "ps",
  summary: "list the jobs of every session of a server, by task and run (as its page does)",
  options: {
    ...OBSERVE_OPTIONS,
    all: {
      type: "boolean",
      short: "a",
      help: "finished jobs too (the server keeps them for a while, see ccx serve --keep-finished)",
    },
    json: { type: "boolean", help: "the server's facts and the jobs as JSON" },
  },
  notes: [
    "JOB is the job's id (its first 12 characters); ccx logs and ccx cancel take it, any unique",
    "prefix of it, SESSION/JOB, or the job's label.",
    `Exit: 0 listed; 2 bad usage; ${OBSERVE_EXIT_NOTE}`,
  ],
  run(o, positionals) {
    if (positionals.length > 0) throw new ConfigError(`unexpected argument ${positionals[0]}`);
    return psCommand({
      server: o.server,
      token: o.token,
      ca: readPemFile("ca", o.ca),
      all: o.all,
      json: o.json,
    });
  },
});

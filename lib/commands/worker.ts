/**
 * `ccx worker`: a fleet box. Connects out to the queue's Redis (no inbound port), takes the
 * tasks `ccx stress --queue` puts there, runs them here, and hands back their results; runs
 * until SIGINT/SIGTERM, then finishes or hands back what it runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workerCommand } from "./worker.ts";
 * // Needs the queue's Redis and runs until SIGINT/SIGTERM, so the doc tests only type-check it.
 * Deno.test({ name: "workerCommand (needs Redis)", ignore: true }, async () => {
 *   assert.equal(await workerCommand({ url: "redis://127.0.0.1:6379", concurrency: 2 }), 0);
 * });
 * ```
 * @module
 */

import { type Command, defineCommand, onStopSignals } from "../common/cli.ts";
import { ConfigError, dotEnvOpenToOthers, readDotEnv } from "../common/config.ts";
import { type HeldSecret, heldSecrets, secretWarnings } from "../serve/job_env.ts";
import { DEFAULT_DRAIN_S, DEFAULT_LOCK_S, DEFAULT_QUEUE_NAME } from "../fleet/defaults.ts";
// The fleet modules load BullMQ (~13 MiB): only when a worker runs, not in every `ccx`.
import type { FleetWorker, FleetWorkerOptions } from "../fleet/worker.ts";

/**
 * A warning when a Redis password was typed on the command line, where every user of the
 * box can read it (`ps`); undefined otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { passwordOnCommandLine } from "./worker.ts";
 * assert.match(passwordOnCommandLine("redis://:pw@h:6379", ["--queue", "redis://:pw@h:6379"])!, /^warning: /);
 * assert.equal(passwordOnCommandLine("redis://:pw@h:6379", []), undefined); // from CCX_QUEUE: fine
 * ```
 */
export function passwordOnCommandLine(url: string, args: string[]): string | undefined {
  let password = "";
  try {
    password = new URL(url).password;
  } catch {
    return undefined;
  }
  if (!password || !args.some((a) => a.includes(url))) return undefined;
  return "warning: the Redis password is on the command line, where any user of this box " +
    "can read it (ps); set CCX_QUEUE in the environment or in ./.env instead";
}

/**
 * One line of the worker's log (stderr): an ISO timestamp, then what happened, so a journal or
 * a CI log shows when each task started and ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workerLogLine } from "./worker.ts";
 * assert.equal(
 *   workerLogLine("simple_1 passed in 1.2s", new Date(0)),
 *   "1970-01-01T00:00:00.000Z ccx worker: simple_1 passed in 1.2s",
 * );
 * ```
 */
export function workerLogLine(line: string, at: Date = new Date()): string {
  return `${at.toISOString()} ccx worker: ${line}`;
}

/**
 * Runs a worker until SIGINT/SIGTERM; resolves with the exit code. `secrets` are what this
 * process holds (see `heldSecrets`: the queue's password): once the worker has started, a
 * warning says when its tasks could read them. Settings its server refuses (a `runAs` user it
 * cannot switch to) throw `ServerConfigError` (exit 2).
 */
export async function workerCommand(
  opts: FleetWorkerOptions,
  secrets: readonly HeldSecret[] = [],
): Promise<number> {
  let worker: FleetWorker;
  try {
    const { FleetWorker } = await import("../fleet/worker.ts");
    worker = await FleetWorker.start({ log: (l) => console.error(workerLogLine(l)), ...opts });
  } catch (e) {
    if ((e as Error).name === "ServerConfigError") throw e;
    console.error(workerLogLine((e as Error).message));
    return 1;
  }
  const warnings = secretWarnings(secrets, {
    isolate: opts.isolate ?? "none",
    runAs: opts.runAs,
    dotEnvOpenToOthers: dotEnvOpenToOthers(Deno.cwd()),
    who: "worker",
  });
  for (const w of warnings) console.error(workerLogLine(w));
  let signals = 0;
  const stop = () => {
    // A second signal gives up waiting: hand everything back now.
    void worker.stop(signals++ === 0 ? undefined : 0);
  };
  const release = onStopSignals(stop);
  try {
    await worker.stopped;
  } finally {
    release();
  }
  return 0;
}

/** The `ccx worker` declaration: its options, help and how they become {@linkcode FleetWorkerOptions}. */
export const worker: Command = defineCommand({
  name: "worker",
  summary: "a fleet box: take suite tasks from a Redis queue that `ccx stress --queue` fills",
  options: {
    queue: {
      type: "string",
      env: "CCX_QUEUE",
      arg: "URL",
      help: "redis:// or rediss:// URL of the queue; keep passwords in CCX_QUEUE or ./.env",
    },
    redis: { type: "string", arg: "URL", help: "same as --queue" },
    "queue-name": {
      type: "string",
      env: "CCX_QUEUE_NAME",
      default: DEFAULT_QUEUE_NAME,
      arg: "Q",
      help: "queue name, shared with `ccx stress --queue-name`",
    },
    concurrency: {
      type: "int",
      short: "c",
      env: "CCX_WORKER_CONCURRENCY",
      default: 1,
      min: 1,
      max: 1024,
      arg: "N",
      help: "tasks at once on this box",
    },
    name: {
      type: "string",
      env: "CCX_WORKER_NAME",
      defaultText: "HOST:PID",
      arg: "NAME",
      help: "name shown in progress and reports",
    },
    "lock-s": {
      type: "number",
      default: DEFAULT_LOCK_S,
      min: 1,
      arg: "S",
      help: "lock period: a dead worker's tasks go to another after about 1.25 S seconds",
    },
    "drain-s": {
      type: "number",
      default: DEFAULT_DRAIN_S,
      min: 0,
      arg: "S",
      help: "on SIGTERM, wait up to S seconds for running tasks, then hand them back",
    },
    claude: {
      type: "string",
      env: "CCX_CLAUDE",
      arg: "CMD",
      defaultText: "the suite's",
      help: "the Claude executable on this box",
    },
    "no-history": {
      type: "boolean",
      help: "do not record runs in the timeout history (in the queue's Redis)",
    },
    sandbox: {
      type: "boolean",
      env: "CCX_SANDBOX",
      help: "this box is a sandbox: Claude tasks get IS_SANDBOX=1, so the CLI may skip " +
        "permissions as root (a run's `ccx stress --queue --sandbox` does it for that run)",
    },
    "run-as": {
      type: "string",
      env: "CCX_RUN_AS",
      arg: "USER",
      help: "run tasks as this user (name or uid; the worker runs as root), so they cannot " +
        "read its /proc entries (the queue's password) and private files",
    },
    isolate: {
      type: "string",
      env: "CCX_ISOLATE",
      choices: ["none", "bwrap"] as const,
      default: "none",
      arg: "MODE",
      help: "bwrap: every task runs in a workspace under bubblewrap",
    },
    "workspace-root": {
      type: "string",
      env: "CCX_WORKSPACE_ROOT",
      defaultText: "<state dir>/workspaces",
      arg: "DIR",
      help: "where task workspaces are made (with --run-as: one that user can enter)",
    },
  },
  notes: [
    "The worker connects out to Redis only; it needs no inbound port. It runs each task",
    "through an in-process ccx server with the same supervisor, verdicts and retries as",
    "`ccx stress`, and records timings in the queue's Redis history (unless the run's",
    "coordinator records them in its own --redis).",
    "SIGTERM or Ctrl+C: take no more tasks, let running ones finish for --drain-s seconds,",
    "then cancel and hand back the rest; a second signal hands back at once.",
    "SIGKILL or a lost box: after the lock period another worker takes its tasks again.",
    "Redis unreachable longer than the lock: a running task is stopped (the queue gives it to",
    "a worker again, so it never runs twice at once); one that ended meanwhile keeps its",
    "result and is not run again. The report says Redis was unreachable.",
    "Tasks run as the worker's own user unless --run-as: such a task can read the worker's",
    "/proc/PID/environ (the queue's password) and its ./.env; the worker warns at start. Keep",
    "the password from tasks with --run-as USER (the worker as root), or --isolate bwrap and",
    "the password in the environment rather than in ./.env.",
  ],
  async run(o, positionals) {
    if (positionals.length) throw new ConfigError(`unexpected argument: ${positionals[0]}`);
    const url = o.queue ?? o.redis;
    if (!url) {
      throw new ConfigError("--queue URL is required (or CCX_QUEUE, in the environment or .env)");
    }
    const { checkQueueUrl } = await import("../fleet/queue.ts");
    try {
      checkQueueUrl(url, o.queue ? "--queue" : "--redis");
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
    const warn = passwordOnCommandLine(url, Deno.args);
    if (warn) console.error(`ccx worker: ${warn}`);
    const secrets = heldSecrets({
      args: Deno.args,
      env: Deno.env.toObject(),
      dotEnv: readDotEnv(Deno.cwd()),
    });
    return workerCommand({
      url,
      queueName: o["queue-name"],
      concurrency: o.concurrency,
      name: o.name,
      lockS: o["lock-s"],
      drainS: o["drain-s"],
      claude: o.claude,
      noHistory: o["no-history"],
      sandbox: o.sandbox,
      runAs: o["run-as"],
      isolate: o.isolate,
      workspaceRoot: o["workspace-root"],
    }, secrets);
  },
});

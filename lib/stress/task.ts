/**
 * Running one suite task to its verdict on a server: its command (or its concurrent instances
 * and the pick among them), its graders, rate-limit retries, the timeout history and the output
 * file. `runner.ts` schedules tasks over servers; the fleet worker runs them through here too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { runTask } from "./task.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const [task] = parseSuite({ tests: [{ id: "hi", command: "echo hi", expected_patterns: ["hi"] }] }, "inline").tasks;
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const url = server.url;
 * const client = await CcxClient.connect(url);
 * const outDir = Deno.makeTempDirSync();
 * const result = await runTask(task, task.id, () => Promise.resolve({ client, url }), {
 *   outDir,
 *   claude: "claude",
 * });
 * assert.equal(result.status, "passed");
 * assert.deepEqual(result.patternsFound, ["hi"]);
 * await client.close();
 * await server.shutdown();
 * Deno.removeSync(outDir, { recursive: true });
 * ```
 * @module
 */

import { join } from "node:path";
import { type CcxClient, ClientError, type CollectedRun, runToEnd } from "../client/client.ts";
import type { KeepPolicy } from "../serve/workspace.ts";
import type { WorkspaceParam } from "../common/protocol.ts";
import { type ClaudeFailure, FAILURE_POLICIES } from "../claude/classify.ts";
import { ClaudeLiveWatch } from "../claude/live_watch.ts";
import { ClaudeStreamParser, modelText } from "../claude/stream.ts";
import { type Candidate, pickBest, type PickOptions } from "../verdict/pick.ts";
import { type RunFacts, runFacts } from "../verdict/answer.ts";
import { type OutputHeader, writeOutputFile } from "./report/files.ts";
import type { InstanceResult, TestResult } from "./report/model.ts";
import { buildTaskCommand, type BuiltCommand, resolveMarker } from "./task_command.ts";
import type { SuiteTask } from "./suite_model.ts";
import { type HistoryStore, type Outcome, taskClass } from "../claude/history.ts";
import { limitWaitMs, sleepUnlessAborted } from "../common/backoff.ts";
import { formatTimestamp } from "../common/format.ts";
import { checkFiles, judgeRun, runsClaude, type Verdict } from "./judge.ts";
import { type Graded, gradeRun } from "./grade.ts";
import { type JobTag, taskJobTag } from "./job_tag.ts";

/**
 * What running one task needs (the runner's options without the scheduling ones). Shared by
 * `runTasks` and the fleet worker, so both judge, retry and save output alike.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TaskOptions } from "./task.ts";
 * const opts: TaskOptions = { outDir: "test_outputs/demo", claude: "claude", timeoutScale: 3 };
 * assert.equal(opts.timeoutScale, 3);
 * ```
 */
export interface TaskOptions {
  /** Whether all expected patterns must be found, or any one (default all). */
  patternMode?: "all" | "any";
  /** Multiplies every timeout and stall timeout (default 1). */
  timeoutScale?: number;
  /** Where output files go. */
  outDir: string;
  /** The Claude executable for template-less tasks and `claude` in templates. */
  claude: string;
  /** Retries after a usage/rate limit (default 3). */
  rateLimitRetries?: number;
  /** Longest wait for a limit to reset, in seconds (default 300). */
  maxLimitWaitS?: number;
  /** First backoff step when a limit gives no reset time (default 2 s). */
  backoffBaseS?: number;
  /** Records every run for timeout estimates. */
  history?: HistoryStore;
  /**
   * Aborting cancels running tasks (they end as `error: interrupted`, their output so far
   * saved) and starts no more.
   */
  signal?: AbortSignal;
  /** Linter for BEST_CODE_QUALITY (default: deno lint). */
  lint?: PickOptions["lint"];
  /** Called with each chunk of a task's live output (its result id, stdout/stderr, text). */
  onOutput?(id: string, type: "stdout" | "stderr", data: string): void;
  /**
   * Called when a job of a task started on a server: its result id, the job's process group on
   * the server's host, and the server's URL (for the live line's process count).
   */
  onJobStarted?(id: string, pgid: number, server: string): void;
  /**
   * Run every task, and every instance of a concurrent task, in its own workspace on the
   * server (default true; `ccx stress --no-workspace` turns it off).
   */
  workspace?: boolean;
  /** What the server keeps of those workspaces (default `failed`; see `execute`'s `keep`). */
  keepWorkspaces?: KeepPolicy;
  /**
   * This box is a sandbox: Claude tasks get `IS_SANDBOX=1`, so the CLI accepts
   * `--dangerously-skip-permissions` as root (`--sandbox`, `CCX_SANDBOX=1`).
   */
  sandbox?: boolean;
  /** Silence allowed before a Claude task's first output (default `CLAUDE_STARTUP_GRACE_S`). */
  startupGraceS?: number;
  /** Network retries a Claude task may spend before it ends as `network` (default 30 s). */
  networkGiveUpS?: number;
  /**
   * `ccx stress --model`: the model of every Claude task (the default command's `--model`,
   * `${MODEL}` in templates, `ANTHROPIC_MODEL` for templates that name none; concurrent tasks'
   * `models` too).
   */
  model?: string;
  /** `--judge-model`: the model of rubric judges (default: the CLI's). */
  judgeModel?: string;
  /** Seconds a rubric's judge may run, before the timeout scale (default 300). */
  judgeTimeoutS?: number;
  /**
   * Called when a task's output file could not be written (a full disk): the task keeps the
   * verdict it earned and its result names no output file. Default: a line on stderr.
   */
  onNotWritten?(path: string, error: Error): void;
  /** Put in every job's `meta` (see `job_tag.ts`): the run's suite, id and size. */
  jobMeta?: Record<string, unknown>;
}

/**
 * The server a task ran on went away before the task finished: the connection
 * could not be opened or was lost, or the server shut down and ended the job.
 * Not the task's fault; `runTasks` reruns such a task once on another
 * live server.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerLostError } from "./task.ts";
 * const e = new ServerLostError("ws://10.0.0.7:8004/ws", "connection closed (code 1006)");
 * assert.equal(e.message, "server ws://10.0.0.7:8004/ws lost: connection closed (code 1006)");
 * ```
 */
export class ServerLostError extends Error {
  /** The server's URL. */
  readonly url: string;
  /** What happened, e.g. `server shut down`. */
  readonly why: string;
  /** A lost server: its URL and what happened to it. */
  constructor(url: string, why: string) {
    super(`server ${url} lost: ${why}`);
    this.name = "ServerLostError";
    this.url = url;
    this.why = why;
  }
}

function scaled(s: number | undefined, scale: number): number | undefined {
  return s === undefined ? undefined : Math.round(s * scale * 1000) / 1000;
}

function outcomeOf(v: Pick<Verdict, "status" | "reason">): Outcome {
  if (v.status === "passed") return "success";
  if (v.status === "failed") return "failure";
  return v.reason.startsWith("timed out") ? "timeout" : "error";
}

/** What a server that is shutting down answers an `execute` (or a session's request). */
const SHUTTING_DOWN = /^(server is shutting down|session is closing)$/;

/** ` (close 1001: REASON)`, how the server closed the connection, for a message. */
function closeNote(conn: Conn): string {
  const c = conn.client.closeInfo;
  return c ? ` (close ${c.code}${c.reason ? `: ${c.reason}` : ""})` : "";
}

/** A server connection of a task: the client and the URL it is named by in messages. */
interface Conn {
  client: CcxClient;
  url: string;
}

/**
 * Runs a built task command with the task's (scaled) timeouts. Throws
 * {@linkcode ServerLostError} when the connection drops before the job ended, when the
 * server refuses the job because it is shutting down, or when the job was `killed` and
 * the server then closed the connection with 1001 (a shutdown ends every job that way,
 * see `CcxClient.endedByShutdown`): not the task's fault, so never `failed`.
 */
async function runBuilt(
  conn: Conn,
  built: BuiltCommand,
  t: { timeoutS?: number; stallTimeoutS?: number; tag?: JobTag },
  opts: Pick<
    TaskOptions,
    | "signal"
    | "onOutput"
    | "onJobStarted"
    | "sandbox"
    | "startupGraceS"
    | "networkGiveUpS"
    | "model"
  >,
  rid: string,
  workspace?: WorkspaceParam,
  isClaude = false,
): Promise<CollectedRun & { liveFailure?: ClaudeFailure }> {
  // A Claude task is watched live: a 401/403 in an `api_retry` line or network retries past the
  // bound end it at once, and its stall clock (kept here, not on the server) spares the CLI's
  // silent startup. It gets IS_SANDBOX=1 with `opts.sandbox`.
  const env = { ...built.env };
  if (isClaude && (opts.sandbox || Deno.env.get("IS_SANDBOX") === "1")) env.IS_SANDBOX ??= "1";
  // --model reaches templates that name no model through the CLI's own variable.
  if (isClaude && opts.model) env.ANTHROPIC_MODEL ??= opts.model;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.signal?.aborted) stop.abort();
  const parser = new ClaudeStreamParser();
  const watch = isClaude
    ? new ClaudeLiveWatch({
      stallTimeoutS: t.stallTimeoutS,
      startupGraceS: opts.startupGraceS,
      networkGiveUpS: opts.networkGiveUpS,
      onFailure: () => stop.abort(),
    })
    : undefined;
  let run: CollectedRun;
  try {
    run = await runToEnd(
      conn.client,
      {
        command: built.command,
        argv: built.argv,
        env: Object.keys(env).length ? env : undefined,
        timeout: t.timeoutS,
        ...(isClaude ? {} : { stall_timeout: t.stallTimeoutS }),
        ...(workspace ? { workspace } : {}),
        ...t.tag,
      },
      {
        onOutput: (type, data) => {
          watch?.output(type === "stdout" ? parser.push(data) : []);
          opts.onOutput?.(rid, type, data);
        },
        onEvent: (method, params) => {
          if (method === "process.started" && typeof params.pgid === "number") {
            opts.onJobStarted?.(rid, params.pgid, conn.url);
          }
        },
      },
      stop.signal,
    );
  } catch (e) {
    if (e instanceof ClientError && conn.client.closed && !opts.signal?.aborted) {
      throw new ServerLostError(conn.url, e.message);
    }
    if (e instanceof ClientError && SHUTTING_DOWN.test(e.message) && !opts.signal?.aborted) {
      throw new ServerLostError(conn.url, "the server shut down before the task started");
    }
    throw e;
  } finally {
    watch?.stop();
    opts.signal?.removeEventListener("abort", onAbort);
  }
  if (run.status === "killed" && !opts.signal?.aborted && await conn.client.endedByShutdown()) {
    throw new ServerLostError(
      conn.url,
      `the server shut down while the task ran${closeNote(conn)}`,
    );
  }
  // The live stall clock ended it: report a stall as the server would have.
  if (watch?.failure?.kind === "stall") return { ...run, status: "stalled" };
  return watch?.failure ? { ...run, liveFailure: watch.failure } : run;
}

/** The `workspace` param for a task's runs, or undefined with `workspace: false`. */
function workspaceFor(task: SuiteTask, opts: TaskOptions): WorkspaceParam | undefined {
  if (opts.workspace === false) return undefined;
  return {
    keep: opts.keepWorkspaces ?? "failed",
    ...(task.workspaceTemplate !== undefined ? { template: task.workspaceTemplate } : {}),
  };
}

/** What a result says about the run's workspace: files created, and where it is when kept. */
function workspaceFields(run: CollectedRun): Pick<TestResult, "filesCreated" | "workspace"> {
  const ws = run.workspace;
  if (!ws) return {};
  return {
    filesCreated: ws.files.map((f) => f.path),
    ...(ws.kept ? { workspace: ws.path } : {}),
  };
}

/** Records a finished (not interrupted) run in the timeout history, if there is one. */
async function recordRun(
  opts: TaskOptions,
  task: SuiteTask,
  run: CollectedRun,
  v: Verdict,
): Promise<void> {
  if (opts.signal?.aborted && run.status === "canceled") return;
  if (opts.history) await recordOutcome(opts.history, task, run.executionTime, v);
}

/**
 * Records one judged run of a task in the timeout history (its class, how long it ran, its
 * outcome); never throws. The runner records each run this way, and so does the fleet
 * coordinator for the results its workers hand back when the history is not the queue's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openHistory } from "../claude/history_store.ts";
 * import { recordOutcome } from "./task.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const [task] = parseSuite({ tests: [{ id: "t", command: "echo hi" }] }, "inline").tasks;
 * const dir = Deno.makeTempDirSync();
 * const history = await openHistory({ path: `${dir}/history.sqlite` });
 * await recordOutcome(history, task, 1.5, { status: "passed", reason: "exit 0" });
 * const [cls] = await history.classes();
 * assert.deepEqual([cls.count, cls.successes], [1, 1]);
 * await history.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function recordOutcome(
  history: HistoryStore,
  task: SuiteTask,
  durationS: number,
  v: Pick<Verdict, "status" | "reason">,
): Promise<void> {
  await history.record({
    ...taskClass(task.request ?? task.template ?? task.id),
    durationS,
    outcome: outcomeOf(v),
    at: Date.now(),
    source: "stress",
  }).catch(() => {});
}

/**
 * Runs one task to its verdict on the server `connect` opens: the task's command (or its
 * concurrent instances and the pick among them), rate-limit retries, history records and the
 * output file. The stress runner and the fleet worker both run tasks through here.
 * Throws {@linkcode ServerLostError} when the server went away before the task ended;
 * every other failure is an `error` result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { runTask } from "./task.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const [task] = parseSuite({ tests: [{ id: "hi", command: "echo hi", expected_patterns: ["hi"] }] }, "inline").tasks;
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const url = server.url;
 * const client = await CcxClient.connect(url);
 * const outDir = Deno.makeTempDirSync();
 * const result = await runTask(task, task.id, () => Promise.resolve({ client, url }), {
 *   outDir,
 *   claude: "claude",
 * });
 * assert.equal(result.status, "passed");
 * assert.deepEqual(result.patternsFound, ["hi"]);
 * await client.close();
 * await server.shutdown();
 * Deno.removeSync(outDir, { recursive: true });
 * ```
 */
export async function runTask(
  task: SuiteTask,
  rid: string,
  connect: () => Promise<{ client: CcxClient; url: string }>,
  opts: TaskOptions,
): Promise<TestResult> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const base = {
    id: rid,
    name: task.name,
    category: task.category,
    startedAt,
  };
  try {
    if (task.concurrent) return await runConcurrent(task, rid, connect, opts, base);
    const scale = opts.timeoutScale ?? 1;
    const timeoutS = scaled(task.timeoutS, scale);
    const stallTimeoutS = scaled(task.stallTimeoutS, scale);
    const retries = opts.rateLimitRetries ?? 3;
    let attempts = 0;
    while (true) {
      attempts++;
      const timestamp = formatTimestamp();
      const marker = resolveMarker(task, timestamp);
      const built = buildTaskCommand(task, { marker, timestamp, model: opts.model }, {
        claude: opts.claude,
      });
      const isClaude = runsClaude(task);
      const conn = await connect();
      const tag = taskJobTag(task, rid, opts.jobMeta);
      const run = await runBuilt(
        conn,
        built,
        { timeoutS, stallTimeoutS, tag },
        opts,
        rid,
        workspaceFor(task, opts),
        isClaude,
      );
      const v = judgeRun(
        task,
        run,
        opts.patternMode ?? "all",
        { timeoutS, stallTimeoutS },
        [marker],
        { isClaude, liveFailure: run.liveFailure },
      );
      await checkFiles(v, task, run, conn.client);
      const graded = await gradeRun(v, task, run, conn, opts, rid, tag);
      if (opts.signal?.aborted && run.status === "canceled") v.reason = "interrupted";
      await recordRun(opts, task, run, v);
      if (v.rateLimited && attempts <= retries && !opts.signal?.aborted) {
        const wait = limitWaitMs(v.rateLimited, attempts - 1, {
          maxWaitS: opts.maxLimitWaitS,
          baseS: opts.backoffBaseS,
        });
        if (wait !== undefined && await sleepUnlessAborted(wait, opts.signal)) continue;
        if (opts.signal?.aborted) v.reason = `interrupted while waiting: ${v.reason}`;
      }
      if (v.rateLimited && attempts > 1) v.reason += ` (after ${attempts} attempts)`;
      const durationS = (performance.now() - t0) / 1000;
      const outputFile = task.saveOutput &&
          await saveOutput(opts, join(opts.outDir, `${rid}.txt`), {
            task: rid,
            name: task.name,
            status: v.status,
            durationS,
            exitCode: run.exitCode,
            timestamp: new Date(startedAt),
            command: built.display,
            reason: v.reason,
          }, outputBody(run)) || undefined;
      return {
        ...base,
        status: v.status,
        reason: v.reason,
        durationS,
        exitCode: run.exitCode,
        patternsFound: v.patternsFound,
        patternsMissing: v.patternsMissing,
        outputFile,
        attempts,
        ...(v.kind ? { kind: v.kind } : {}),
        ...(v.fix ? { fix: v.fix } : {}),
        ...runFacts(run.stdout, run.stderr),
        ...workspaceFields(run),
        ...graded,
      };
    }
  } catch (e) {
    if (e instanceof ServerLostError && !opts.signal?.aborted) throw e;
    const message = (e as Error).message;
    const reason = opts.signal?.aborted ? "interrupted" : `runner: ${message}`;
    // The server could not start the Claude CLI: it is missing.
    const missing = !opts.signal?.aborted && runsClaude(task) &&
      /program not found|No such file/i.test(message);
    return {
      ...base,
      status: "error",
      reason,
      durationS: (performance.now() - t0) / 1000,
      exitCode: null,
      patternsFound: [],
      patternsMissing: [...task.expectedPatterns],
      attempts: 1,
      ...(missing ? { kind: "cli_missing", fix: FAILURE_POLICIES.cli_missing.fix } : {}),
    };
  }
}

/**
 * Saves a task's output file and resolves with its path; when that fails (a full disk) it
 * removes what was left, tells `onNotWritten` and resolves `undefined`: the verdict stands.
 */
async function saveOutput(
  opts: TaskOptions,
  path: string,
  header: OutputHeader,
  body: string,
): Promise<string | undefined> {
  try {
    await writeOutputFile(path, header, body);
    return path;
  } catch (e) {
    await Deno.remove(path).catch(() => {});
    if (opts.onNotWritten) opts.onNotWritten(path, e as Error);
    else console.error(`ccx: output file ${path} not written: ${(e as Error).message}`);
    return undefined;
  }
}

function outputBody(run: Pick<CollectedRun, "stdout" | "stderr">): string {
  return run.stderr ? `${run.stdout}\n----- stderr -----\n${run.stderr}` : run.stdout;
}

/** The model and temperature of instance `i` of `n`. */
export function instanceSettings(
  spec: NonNullable<SuiteTask["concurrent"]>,
  i: number,
): { model?: string; temperature?: number } {
  const model = spec.models?.length ? spec.models[i % spec.models.length] : undefined;
  let temperature: number | undefined;
  if (spec.temperatureRange) {
    const [lo, hi] = spec.temperatureRange;
    const t = spec.instances > 1 ? lo + (hi - lo) * i / (spec.instances - 1) : lo;
    temperature = Math.round(t * 100) / 100;
  }
  return { model, temperature };
}

/**
 * One instance of a concurrent task, run and judged: what {@linkcode pickInstances} needs to
 * choose among them. Plain data, so a fleet worker can run an instance and hand it back.
 */
export interface InstanceRun {
  /** 0-based instance index. */
  i: number;
  /** The instance's model and temperature. */
  settings: { model?: string; temperature?: number };
  /** What the model said (for scoring). */
  text: string;
  /** Seconds the job ran. */
  durationS: number;
  /** Exit code, `null` when it never exited on its own. */
  exitCode: number | null;
  /** Its verdict. */
  v: Pick<Verdict, "status" | "reason" | "patternsFound" | "patternsMissing" | "kind" | "fix">;
  /** Where its output went (when the task saves output). */
  outputFile?: string;
  /** Files the run created in its workspace. */
  filesCreated?: string[];
  /** Where its workspace is, when the server kept it. */
  workspace?: string;
  /** What the run's output says: answer, stderr tail, model, turns, tokens, cost. */
  facts?: RunFacts;
  /** What its graders found (checks, rubric), when the task has any and they ran. */
  graded?: Pick<Graded, "checks" | "rubric">;
}

/**
 * Runs instance `i` of a concurrent task on the server `connect` opens, judges it, saves its
 * output and records it in the history. `marker` and `timestamp` are the task's, shared by all
 * of its instances. Throws {@linkcode ServerLostError} like {@linkcode runTask}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { runInstance } from "./task.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const [task] = parseSuite({ categories: { concurrent: { tasks: [{
 *   id: "c1", natural_language_request: "say hi", concurrent_instances: 2, evaluation_criteria: "FASTEST",
 *   command_template: "echo hi ${MARKER}", verification: { expected_patterns: ["hi"] },
 * }] } } }, "inline").tasks;
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const url = server.url;
 * const client = await CcxClient.connect(url);
 * const outDir = Deno.makeTempDirSync();
 * const run = await runInstance(task, task.id, 0, () => Promise.resolve({ client, url }), {
 *   outDir,
 *   claude: "claude",
 * }, { marker: "m", timestamp: "20260101_000000" });
 * assert.equal(run.v.status, "passed");
 * assert.equal(run.text, "hi m_i1\n"); // each instance gets its own marker
 * await client.close();
 * await server.shutdown();
 * Deno.removeSync(outDir, { recursive: true });
 * ```
 */
export async function runInstance(
  task: SuiteTask,
  rid: string,
  i: number,
  connect: () => Promise<{ client: CcxClient; url: string }>,
  opts: TaskOptions,
  shared: { marker: string; timestamp: string },
): Promise<InstanceRun> {
  const spec = task.concurrent!;
  const scale = opts.timeoutScale ?? 1;
  const timeoutS = scaled(task.timeoutS, scale);
  const stallTimeoutS = scaled(task.stallTimeoutS, scale);
  const settings = instanceSettings(spec, i);
  const own = `${shared.marker}_i${i + 1}`;
  const built = buildTaskCommand(
    task,
    { marker: own, timestamp: shared.timestamp, ...settings, model: opts.model ?? settings.model },
    { claude: opts.claude },
  );
  const conn = await connect();
  const isClaude = runsClaude(task);
  const tag = taskJobTag(task, rid, opts.jobMeta, i);
  const run = await runBuilt(
    conn,
    built,
    { timeoutS, stallTimeoutS, tag },
    opts,
    `${rid}.i${i + 1}`,
    workspaceFor(task, opts),
    isClaude,
  );
  const v = judgeRun(task, run, opts.patternMode ?? "all", { timeoutS, stallTimeoutS }, [own], {
    isClaude,
    liveFailure: run.liveFailure,
  });
  await checkFiles(v, task, run, conn.client);
  const graded = await gradeRun(v, task, run, conn, opts, `${rid}.i${i + 1}`, tag);
  if (opts.signal?.aborted && run.status === "canceled") v.reason = "interrupted";
  const outputFile = task.saveOutput &&
      await saveOutput(opts, join(opts.outDir, `${rid}.i${i + 1}.txt`), {
        task: `${rid} instance ${i + 1}`,
        name: task.name,
        status: v.status,
        durationS: run.executionTime,
        exitCode: run.exitCode,
        timestamp: new Date(),
        command: built.display,
        reason: v.reason,
      }, outputBody(run)) || undefined;
  await recordRun(opts, task, run, v);
  return {
    i,
    settings,
    text: modelText(run.stdout),
    durationS: run.executionTime,
    exitCode: run.exitCode,
    v: {
      status: v.status,
      reason: v.reason,
      patternsFound: v.patternsFound,
      patternsMissing: v.patternsMissing,
      ...(v.kind ? { kind: v.kind } : {}),
      ...(v.fix ? { fix: v.fix } : {}),
    },
    outputFile,
    facts: runFacts(run.stdout, run.stderr),
    ...workspaceFields(run),
    ...(graded.workspace ? { workspace: graded.workspace } : {}),
    ...(graded.checks || graded.rubric
      ? { graded: { checks: graded.checks, rubric: graded.rubric } }
      : {}),
  };
}

async function runConcurrent(
  task: SuiteTask,
  rid: string,
  connect: () => Promise<Conn>,
  opts: TaskOptions,
  base: Pick<TestResult, "id" | "name" | "category" | "startedAt">,
): Promise<TestResult> {
  const spec = task.concurrent!;
  const t0 = performance.now();
  const conn = await connect();
  const timestamp = formatTimestamp();
  const shared = { marker: resolveMarker(task, timestamp), timestamp };
  const runs = await Promise.all(
    Array.from(
      { length: spec.instances },
      (_, i) => runInstance(task, rid, i, () => Promise.resolve(conn), opts, shared),
    ),
  );
  return await pickInstances(
    task,
    runs,
    opts,
    base,
    (performance.now() - t0) / 1000,
    shared.marker,
  );
}

/**
 * The result of a concurrent task from its instances' runs: scores them by the task's
 * criteria and reports the best one that passed (or why none did). `marker` is the task's
 * marker, which the instances' own markers start with; it is stripped before scoring.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type InstanceRun, pickInstances } from "./task.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const [task] = parseSuite({ categories: { concurrent: { tasks: [{
 *   id: "c1", natural_language_request: "say hi", concurrent_instances: 2, evaluation_criteria: "FASTEST",
 *   command_template: "echo hi", verification: { expected_patterns: ["hi"] },
 * }] } } }, "inline").tasks;
 * const runs: InstanceRun[] = []; // from runInstance(), here or on fleet workers
 * const base = { id: task.id, name: task.name, category: task.category, startedAt: Date.now() };
 * const result = await pickInstances(task, runs, {}, base, 1.5, "m");
 * assert.equal(result.status, "error"); // no instance ran
 * ```
 */
export async function pickInstances(
  task: SuiteTask,
  runs: InstanceRun[],
  opts: Pick<TaskOptions, "lint">,
  base: Pick<TestResult, "id" | "name" | "category" | "startedAt">,
  durationS: number,
  marker = "",
): Promise<TestResult> {
  const spec = task.concurrent!;
  runs = [...runs].sort((a, b) => a.i - b.i);
  const candidates: Candidate[] = runs.map(({ i, text, durationS, v, settings }) => ({
    index: i + 1,
    text,
    durationS,
    ok: v.status === "passed",
    model: settings.model,
    temperature: settings.temperature,
    patternsFound: v.patternsFound.length,
  }));
  const pick = await pickBest(candidates, spec.criteria, {
    expectedPatterns: task.expectedPatterns,
    match: { wholeWord: task.wholeWord, markers: [marker] },
    lint: opts.lint,
  });
  const instances: InstanceResult[] = runs.map(({ i, v, settings, outputFile, ...r }) => {
    const score = pick.scores.find((s) => s.index === i + 1);
    return {
      index: i + 1,
      model: settings.model,
      temperature: settings.temperature,
      status: v.status,
      reason: v.reason,
      durationS: r.durationS,
      exitCode: r.exitCode,
      picked: pick.best?.index === i + 1,
      score: score && Number.isFinite(score.score) ? score.score : undefined,
      outputFile,
    };
  });
  const best = runs.find((r) => r.i + 1 === pick.best?.index);
  if (!best) {
    const allErrors = runs.every((r) => r.v.status === "error");
    // Every instance failed the same way (root refused, auth, …): the task did too.
    const kinds = new Set(runs.map((r) => r.v.kind));
    const same = kinds.size === 1 ? runs[0]?.v : undefined;
    return {
      ...base,
      status: allErrors ? "error" : "failed",
      reason: `no instance of ${spec.instances} passed (${spec.criteria}): ` +
        runs.map((r) => `#${r.i + 1} ${r.v.reason}`).join("; "),
      durationS,
      exitCode: runs[0]?.exitCode ?? null,
      patternsFound: [],
      patternsMissing: [...task.expectedPatterns],
      outputFile: runs[0]?.outputFile,
      attempts: 1,
      instances,
      ...runs[0]?.facts,
      ...(same?.kind ? { kind: same.kind } : {}),
      ...(same?.fix ? { fix: same.fix } : {}),
    };
  }
  const note = pick.scores.find((s) => s.index === best.i + 1)?.note ?? "";
  return {
    ...base,
    status: best.v.status,
    reason: `picked instance ${best.i + 1} of ${spec.instances} by ${spec.criteria}` +
      `${note ? ` (${note})` : ""}: ${best.v.reason}`,
    durationS,
    exitCode: best.exitCode,
    patternsFound: best.v.patternsFound,
    patternsMissing: best.v.patternsMissing,
    outputFile: best.outputFile,
    attempts: 1,
    instances,
    ...best.facts,
    ...(best.filesCreated ? { filesCreated: best.filesCreated } : {}),
    ...(best.workspace ? { workspace: best.workspace } : {}),
    ...(best.graded?.checks ? { checks: best.graded.checks } : {}),
    ...(best.graded?.rubric ? { rubric: best.graded.rubric } : {}),
  };
}

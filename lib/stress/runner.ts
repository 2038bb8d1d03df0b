/**
 * The stress runner: runs suite tasks through one or more ccx servers with
 * bounded concurrency, judges each run, retries rate-limited ones, runs
 * concurrent tasks' instances and picks the best, and saves every output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { runTasks } from "./runner.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const suite = parseSuite({ tests: [ // or loadSuite("tasks/selftest.json")
 *   { id: "echo", command: "echo hello", expected_patterns: ["hello"] },
 *   { id: "exit", command: "exit 3" },
 * ] }, "inline");
 * const server = CcxServer.start({ port: 0, log: () => {} }); // or `ccx serve` boxes
 * const outDir = Deno.makeTempDirSync();
 * const results = await runTasks(suite.tasks, {
 *   servers: [{ url: server.url }],
 *   concurrency: 4,
 *   outDir,
 *   claude: "claude",
 *   keepWorkspaces: "never",
 * });
 * assert.deepEqual(results.map((r) => [r.id, r.status]), [["echo", "passed"], ["exit", "failed"]]);
 * await server.shutdown();
 * Deno.removeSync(outDir, { recursive: true });
 * ```
 * @module
 */

import { join, resolve as resolvePath } from "node:path";
import {
  CcxClient,
  ClientError,
  type CollectedRun,
  remoteFiles,
  runToEnd,
} from "../client/client.ts";
import { type FileAccess, localFiles } from "../verdict/criteria.ts";
import type { KeepPolicy } from "../serve/workspace.ts";
import type { WorkspaceParam } from "../common/protocol.ts";
import { classifyFailure, type ClaudeFailure, FAILURE_POLICIES } from "../claude/classify.ts";
import { ClaudeLiveWatch } from "../claude/live_watch.ts";
import { ClaudeStreamParser, modelText, parseClaudeOutput } from "../claude/stream.ts";
import { type Candidate, pickBest, type PickOptions } from "../verdict/pick.ts";
import { matchPatterns } from "../verdict/patterns.ts";
import { type RunFacts, runFacts } from "../verdict/answer.ts";
import { writeOutputFile } from "./report/files.ts";
import type { OutputHeader } from "./report/files.ts";
import type { InstanceResult, TestResult, TestStatus } from "./report/model.ts";
import { buildTaskCommand, type BuiltCommand, resolveMarker } from "./task_command.ts";
import type { ExpectedFile, SuiteTask } from "./suite_model.ts";
import { type HistoryStore, type Outcome, taskClass } from "../claude/history.ts";
import { limitWaitMs, sleepUnlessAborted } from "../common/backoff.ts";
import { formatTimestamp } from "../common/format.ts";
import { type JobTag, taskJobTag } from "./job_tag.ts";

/** A server to run tasks on. */
export interface ServerTarget {
  /** WebSocket URL, e.g. `ws://127.0.0.1:8004/ws`. */
  url: string;
  /** Token, for servers that require one. */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
}

/** Options of {@linkcode runTasks}. */
export interface RunnerOptions {
  /** Servers; tasks are dealt to them in turn. */
  servers: ServerTarget[];
  /** Tasks running at once (default 1). */
  concurrency?: number;
  /** Run every task this many times (default 1). */
  repeat?: number;
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
  /** Result ids not to run (already finished: `ccx stress --resume`). */
  skip?: Set<string>;
  /** Checked before each task starts; `true` starts no more (`--max-fail`). */
  stop?(): boolean;
  /** Called when a task run starts (its result id: the task id, `.rN` with `repeat`). */
  onStart?(id: string): void;
  /** Called with each result as soon as it is known. */
  onFinish?(result: TestResult): void;
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
   * Called when a task's output file could not be written (a full disk): the task keeps the
   * verdict it earned and its result names no output file. Default: a line on stderr.
   */
  onNotWritten?(path: string, error: Error): void;
  /** Put in every job's `meta` (see `job_tag.ts`): the run's suite, id and size. */
  jobMeta?: Record<string, unknown>;
}

/**
 * What running one task needs: the runner's options without the scheduling ones. Shared by
 * {@linkcode runTasks} and the fleet worker, so both judge, retry and save output alike.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TaskOptions } from "./runner.ts";
 * const opts: TaskOptions = { outDir: "test_outputs/demo", claude: "claude", timeoutScale: 3 };
 * assert.equal(opts.timeoutScale, 3);
 * ```
 */
export type TaskOptions = Omit<
  RunnerOptions,
  "servers" | "concurrency" | "repeat" | "onStart" | "onFinish"
>;

/**
 * The server a task ran on went away before the task finished: the connection
 * could not be opened or was lost, or the server shut down and ended the job.
 * Not the task's fault; {@linkcode runTasks} reruns such a task once on another
 * live server.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerLostError } from "./runner.ts";
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

/** The verdict on one run. */
export interface Verdict {
  /** passed, failed (ran, check failed) or error (could not be judged). */
  status: TestStatus;
  /** One line saying why. */
  reason: string;
  /** Expected patterns found (case-insensitively) in what the model said. */
  patternsFound: string[];
  /** Expected patterns not found. */
  patternsMissing: string[];
  /** What the patterns were matched against. */
  text: string;
  /**
   * Set when the run failed in a way worth a wait and the same run again (a usage/rate limit,
   * an overloaded API, an unreachable API: the classifier's `backoff` policy).
   */
  rateLimited?: { resetTimestamp?: number; retryAfter?: number; message: string };
  /** The Claude failure kind (see `FAILURE_POLICIES`), when Claude or its API failed. */
  kind?: string;
  /** One line saying what to do about `kind`, when there is one. */
  fix?: string;
}

/** What {@linkcode judgeRun} knows about a task that runs the Claude CLI. */
export interface ClaudeRunInfo {
  /** The task runs Claude: its failures are classified (auth, network, root, …). */
  isClaude: boolean;
  /** The failure the live watch ended the run for, if it did. */
  liveFailure?: ClaudeFailure;
}

/** Model-side failures: counted against the model (`failed`), not as errors of Claude itself. */
const MODEL_KINDS = new Set(["token_limit", "max_turns"]);

/**
 * Whether a task runs the Claude CLI: the seed's default command (no template), or a template
 * that calls `claude`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runsClaude } from "./runner.ts";
 * assert.equal(runsClaude({ template: "claude -p hi" }), true);
 * assert.equal(runsClaude({ template: "echo hi" }), false);
 * assert.equal(runsClaude({ template: undefined }), true); // a request without a template
 * ```
 */
export function runsClaude(task: Pick<SuiteTask, "template">): boolean {
  return task.template === undefined || /(?:^|[\s;&|(`$'"])claude\b/.test(task.template);
}

/**
 * Judges one finished run of a task. Patterns are matched (see `patterns.ts`:
 * case-insensitive substrings, `word:`, `regex:`) against what the model said
 * (for Claude's stream-json: assistant and result text, never the JSON envelope)
 * plus stderr, with every `[marker:…]` and the run's `markers` removed first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeRun } from "./runner.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const [task] = parseSuite({ tests: [{ id: "t", command: "echo 4", expected_patterns: ["4", "word:four"] }] }, "inline").tasks;
 * const run: Parameters<typeof judgeRun>[1] = {
 *   status: "completed", exitCode: 0, signal: null, stdout: "2 + 2 = 4\n", stderr: "", limits: [],
 * };
 * assert.equal(judgeRun(task, run, "all").status, "failed");
 * const v = judgeRun(task, run, "any");
 * assert.equal(v.status, "passed");
 * assert.deepEqual([v.patternsFound, v.patternsMissing], [["4"], ["word:four"]]);
 * ```
 */
export function judgeRun(
  task: Pick<
    SuiteTask,
    "expectedPatterns" | "expectNonZeroExit" | "timeoutS" | "stallTimeoutS" | "wholeWord"
  >,
  run: Pick<CollectedRun, "status" | "exitCode" | "signal" | "stdout" | "stderr" | "limits">,
  patternMode: "all" | "any",
  timeouts: { timeoutS?: number; stallTimeoutS?: number } = {},
  markers: string[] = [],
  claude: ClaudeRunInfo = { isClaude: false },
): Verdict {
  const text = modelText(run.stdout) + (run.stderr ? `\n${run.stderr}` : "");
  const { found, missing } = matchPatterns(text, task.expectedPatterns, {
    wholeWord: task.wholeWord,
    markers,
  });
  const base = { patternsFound: found, patternsMissing: missing, text };
  // When Claude itself failed, its error text is not an answer: no pattern is matched against it.
  const unjudged = { patternsFound: [], patternsMissing: [...task.expectedPatterns], text };
  const failure = claude.liveFailure ??
    (claude.isClaude && !task.expectNonZeroExit
      ? classifyFailure(parseClaudeOutput(run.stdout), {
        exitCode: run.exitCode,
        status: run.status,
        stderr: run.stderr,
        signal: run.signal,
      })
      : undefined);
  const claudeFailed = failure !== undefined && failure.kind !== "error" &&
    !((failure.kind === "timeout" || failure.kind === "stall" || failure.kind === "canceled") &&
      !claude.liveFailure);
  if (failure && claudeFailed) {
    const fix = FAILURE_POLICIES[failure.kind].fix;
    const v: Verdict = {
      ...unjudged,
      status: MODEL_KINDS.has(failure.kind) ? "failed" : "error",
      reason: `${failure.kind}: ${failure.message}`,
      kind: failure.kind,
      ...(fix ? { fix } : {}),
    };
    if (failure.retry === "backoff") {
      v.rateLimited = {
        message: failure.message,
        ...(failure.resetTimestamp !== undefined ? { resetTimestamp: failure.resetTimestamp } : {}),
        ...(failure.retryAfter !== undefined ? { retryAfter: failure.retryAfter } : {}),
      };
    }
    return v;
  }
  const rate = run.limits.find((l) => l.kind === "rate_limit");
  if (rate) {
    return {
      ...unjudged,
      status: "error",
      reason: `rate limited: ${rate.message}`,
      rateLimited: { ...rate },
      kind: "rate_limit",
      fix: FAILURE_POLICIES.rate_limit.fix,
    };
  }
  switch (run.status) {
    case "timeout":
      return {
        ...base,
        status: "error",
        reason: `timed out after ${timeouts.timeoutS ?? "?"}s`,
        ...(claude.isClaude ? { kind: "timeout", fix: FAILURE_POLICIES.timeout.fix } : {}),
      };
    case "stalled":
      return {
        ...base,
        status: "error",
        reason: `stalled: no output for ${timeouts.stallTimeoutS ?? "?"}s`,
        ...(claude.isClaude ? { kind: "stall", fix: FAILURE_POLICIES.stall.fix } : {}),
      };
    case "canceled":
      return { ...base, status: "error", reason: "interrupted" };
  }
  const token = run.limits.find((l) => l.kind === "token_limit");
  const code = run.exitCode;
  const exitOk = task.expectNonZeroExit ? code !== 0 : code === 0;
  if (!exitOk) {
    const how = run.signal ? `killed by ${run.signal}` : `exit code ${code}`;
    const want = task.expectNonZeroExit ? "a non-zero exit" : "exit 0";
    const why = token ? ` (${token.message})` : "";
    return { ...base, status: "failed", reason: `${how}, expected ${want}${why}` };
  }
  const need = task.expectedPatterns.length;
  const patternsOk = need === 0 ||
    (patternMode === "all" ? missing.length === 0 : found.length > 0);
  if (!patternsOk) {
    return {
      ...base,
      status: "failed",
      reason: `missing pattern${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}` +
        (patternMode === "any" ? " (none of them found)" : ""),
    };
  }
  const exitWord = run.signal ? `killed by ${run.signal}` : `exit ${code}`;
  return {
    ...base,
    status: "passed",
    reason: need ? `${exitWord}, ${found.length}/${need} patterns` : exitWord,
  };
}

/** Connections a worker keeps, one per server, reopened when lost. */
class Connections {
  #clients = new Map<number, Promise<CcxClient>>();
  constructor(private readonly servers: ServerTarget[]) {}

  async get(index: number): Promise<CcxClient> {
    const have = this.#clients.get(index);
    if (have) {
      const c = await have.catch(() => undefined);
      if (c && !c.closed) return c;
    }
    const s = this.servers[index];
    const p = CcxClient.connect(s.url, { token: s.token, ca: s.ca });
    this.#clients.set(index, p);
    try {
      return await p;
    } catch (e) {
      throw new ServerLostError(s.url, (e as Error).message);
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => {})));
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

/** How long an abort waits for canceled jobs to end before dropping the connections. */
const ABORT_FALLBACK_MS = 10_000;

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
    "signal" | "onOutput" | "onJobStarted" | "sandbox" | "startupGraceS" | "networkGiveUpS"
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

/**
 * Judges a task's `expected_files` on what its run left: in the run's workspace through
 * the server's `files` method (so a remote server or a fleet worker is judged on its own
 * disk), or, for a run without a workspace, on this machine's disk under the current
 * directory. Resolves with one line per problem; none means every file is there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient, runToEnd } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { judgeExpectedFiles } from "./runner.ts";
 * const workspaceRoot = Deno.makeTempDirSync();
 * const server = CcxServer.start({ port: 0, log: () => {}, workspaceRoot });
 * const client = await CcxClient.connect(server.url);
 * const run = await runToEnd(client, { command: "echo 'DATABASE_URL = 1' > config.py", workspace: { keep: "always" } });
 * assert.deepEqual(await judgeExpectedFiles([{ path: "config.py", contains: "DATABASE_URL" }], run, client), []);
 * const problems = await judgeExpectedFiles([{ path: "config.py", contains: "SECRET_KEY" }], run, client);
 * assert.equal(problems.length, 1); // ['config.py does not contain "SECRET_KEY"']
 * await client.close();
 * await server.shutdown();
 * Deno.removeSync(workspaceRoot, { recursive: true });
 * ```
 */
export async function judgeExpectedFiles(
  files: readonly ExpectedFile[],
  run: Pick<CollectedRun, "jobId" | "workspace">,
  client: CcxClient,
): Promise<string[]> {
  const base = run.workspace?.path ?? Deno.cwd();
  const access: FileAccess = run.workspace
    ? remoteFiles(client, run.jobId, run.workspace.path)
    : localFiles;
  const problems: string[] = [];
  for (const f of files) {
    const abs = resolvePath(base, f.path);
    const st = await access.stat(abs);
    if (!st) {
      problems.push(`missing file ${f.path}`);
      continue;
    }
    if (f.contains === undefined) continue; // a directory counts as there
    if (!st.isFile) {
      problems.push(`${f.path} is not a file`);
      continue;
    }
    const text = (await access.readText(abs)) ?? "";
    if (!text.toLowerCase().includes(f.contains.toLowerCase())) {
      problems.push(`${f.path} does not contain ${JSON.stringify(f.contains)}`);
    }
  }
  return problems;
}

/**
 * Applies `expected_files` to a verdict: a run that passed otherwise fails when a file is
 * missing or lacks its text; a workspace that cannot be read makes it an error.
 */
async function checkFiles(
  v: Verdict,
  task: SuiteTask,
  run: CollectedRun,
  client: CcxClient,
): Promise<void> {
  if (!task.expectedFiles?.length || v.status !== "passed") return;
  let problems: string[];
  try {
    problems = await judgeExpectedFiles(task.expectedFiles, run, client);
  } catch (e) {
    v.status = "error";
    v.reason = `could not read the workspace: ${(e as Error).message}`;
    return;
  }
  if (problems.length === 0) {
    v.reason += `, ${task.expectedFiles.length}/${task.expectedFiles.length} files`;
    return;
  }
  v.status = "failed";
  v.reason = problems.join("; ");
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
 * import { openHistory } from "../claude/history.ts";
 * import { recordOutcome } from "./runner.ts";
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

/** Which servers are alive; tasks go round-robin over the live ones. */
class Fleet {
  #dead = new Set<number>();
  #dealt = 0;
  constructor(readonly servers: ServerTarget[]) {}

  /** The next live server other than `except`, or undefined when none is left. */
  pick(except?: number): number | undefined {
    const n = this.servers.length;
    for (let k = 0; k < n; k++) {
      const i = this.#dealt++ % n;
      if (!this.#dead.has(i) && i !== except) return i;
    }
    return undefined;
  }

  markDead(i: number): void {
    this.#dead.add(i);
  }
}

/** One planned run of a task. */
export interface PlannedRun {
  /** The task. */
  task: SuiteTask;
  /** Its result id: the task id, or `<id>.r<N>` with `repeat`. */
  rid: string;
}

/**
 * Every run of a run: each task `repeat` times (rounds in suite order), with its result id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planRuns } from "./runner.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const s = parseSuite({ tests: [{ id: "a", command: "true" }, { id: "b", command: "true" }] }, "inline");
 * assert.deepEqual(planRuns(s.tasks, 2).map((p) => p.rid), ["a.r1", "b.r1", "a.r2", "b.r2"]);
 * assert.deepEqual(planRuns(s.tasks).map((p) => p.rid), ["a", "b"]);
 * ```
 */
export function planRuns(tasks: SuiteTask[], repeat = 1): PlannedRun[] {
  const n = Math.max(1, repeat);
  const out: PlannedRun[] = [];
  for (let r = 1; r <= n; r++) {
    for (const task of tasks) out.push({ task, rid: n > 1 ? `${task.id}.r${r}` : task.id });
  }
  return out;
}

/** Runs tasks and resolves with their results, in suite order. */
export async function runTasks(tasks: SuiteTask[], opts: RunnerOptions): Promise<TestResult[]> {
  if (opts.servers.length === 0) throw new Error("runTasks: no server to run on");
  const jobs = planRuns(tasks, opts.repeat)
    .filter((j) => !opts.skip?.has(j.rid))
    .map((j, order) => ({ ...j, order }));
  const results: (TestResult | undefined)[] = new Array(jobs.length);
  let next = 0;
  const fleet = new Fleet(opts.servers);
  await Deno.mkdir(opts.outDir, { recursive: true });
  const workers = Math.max(1, Math.min(opts.concurrency ?? 1, jobs.length));
  const connections: Connections[] = [];
  // Aborting cancels each running job (see runToEnd), so its output up to then is kept. Should a
  // server not answer, dropping the connections ends the jobs anyway.
  let fallback: ReturnType<typeof setTimeout> | undefined;
  const abort = () => {
    fallback = setTimeout(() => connections.forEach((c) => void c.closeAll()), ABORT_FALLBACK_MS);
  };
  opts.signal?.addEventListener("abort", abort, { once: true });
  try {
    await Promise.all(Array.from({ length: workers }, async () => {
      const conns = new Connections(opts.servers);
      connections.push(conns);
      try {
        while (next < jobs.length && !opts.signal?.aborted && !opts.stop?.()) {
          const j = jobs[next++];
          opts.onStart?.(j.rid);
          const result = await runWithFailover(j.task, j.rid, fleet, conns, opts);
          results[j.order] = result;
          opts.onFinish?.(result);
        }
      } finally {
        await conns.closeAll();
      }
    }));
  } finally {
    opts.signal?.removeEventListener("abort", abort);
    clearTimeout(fallback);
  }
  return results.filter((r): r is TestResult => r !== undefined);
}

/**
 * Runs a task on a live server; when that server is lost before the task ended, marks it dead
 * (it gets no more tasks) and reruns the task once on another live server. The result notes
 * the rerun; a task that cannot be rerun is an `error`, never `failed`.
 */
async function runWithFailover(
  task: SuiteTask,
  rid: string,
  fleet: Fleet,
  conns: Connections,
  opts: RunnerOptions,
): Promise<TestResult> {
  const t0 = performance.now();
  const startedAt = Date.now();
  let lost: ServerLostError | undefined;
  let lostOn: number | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = fleet.pick(lostOn);
    if (server === undefined) break;
    try {
      const r = await runTask(task, rid, () =>
        conns.get(server).then((client) => ({
          client,
          url: opts.servers[server].url,
        })), opts);
      if (lost) {
        r.rerun = `${lost.message}; rerun on ${opts.servers[server].url}`;
        r.reason += ` (rerun: ${r.rerun})`;
        r.attempts += 1;
        r.startedAt = startedAt;
        r.durationS = (performance.now() - t0) / 1000;
      }
      return r;
    } catch (e) {
      if (!(e instanceof ServerLostError)) throw e;
      fleet.markDead(server);
      lostOn = server;
      lost = lost ? new ServerLostError(e.url, `${e.why}, after ${lost.message} before it`) : e;
      if (opts.signal?.aborted) break;
    }
  }
  const why = opts.signal?.aborted
    ? "interrupted"
    : lost
    ? `${lost.message}; no live server left to rerun it on`
    : "no live server left: every --server was lost earlier in this run";
  return {
    id: rid,
    name: task.name,
    category: task.category,
    startedAt,
    status: "error",
    reason: why,
    durationS: (performance.now() - t0) / 1000,
    exitCode: null,
    patternsFound: [],
    patternsMissing: [...task.expectedPatterns],
    attempts: 1,
    rerun: lost ? lost.message : undefined,
  };
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
 * import { runTask } from "./runner.ts";
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
      const built = buildTaskCommand(task, { marker, timestamp }, { claude: opts.claude });
      const isClaude = runsClaude(task);
      const conn = await connect();
      const run = await runBuilt(
        conn,
        built,
        { timeoutS, stallTimeoutS, tag: taskJobTag(task, rid, opts.jobMeta) },
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
 * import { runInstance } from "./runner.ts";
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
    { marker: own, timestamp: shared.timestamp, ...settings },
    { claude: opts.claude },
  );
  const conn = await connect();
  const isClaude = runsClaude(task);
  const run = await runBuilt(
    conn,
    built,
    { timeoutS, stallTimeoutS, tag: taskJobTag(task, rid, opts.jobMeta, i) },
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
 * import { type InstanceRun, pickInstances } from "./runner.ts";
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
  };
}

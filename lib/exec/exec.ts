/**
 * `ccx exec` as a library ("cc_execute"): run one task through Claude's CLI on a ccx server,
 * judge it against success criteria on evidence (the file system, the exit code, what the model
 * really said), and retry with a refined prompt.
 *
 * Per attempt: the prompt starts with a unique `[marker:<uuid>]` (the model is asked to repeat
 * it, and the attempt records whether it did); the argv comes from
 * {@linkcode buildClaudeArgv} (no shell, so quotes, `$` and backticks reach the CLI verbatim); the
 * stream-json output is parsed as it arrives; the criteria are judged with {@linkcode judgeAll};
 * a failure is classified with {@linkcode classifyFailure} (or ended early by the live watch:
 * auth in an `api_retry` line, network retries past their bound, a stall after the startup
 * grace); and the attempt is recorded in the timeout history. Retries follow the kind's policy in
 * {@linkcode FAILURE_POLICIES}: `refine` (a failed criterion, token limit, timeout, stall, max
 * turns, crash) spends one refinement retry and the next prompt says what failed
 * ({@linkcode refinePrompt}); `backoff` (rate limit, overloaded, network) waits for the reset (or
 * backs off exponentially with jitter) without spending one, bounded by `maxLimitWaitS` per wait
 * and `limitRetries` waits; `never` (root refused, not logged in, auth, bad invocation, …) stops
 * with the kind's fix. As root without `IS_SANDBOX=1` (and no `sandbox`), nothing is spawned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execTask } from "./exec.ts";
 * // Needs Claude's CLI, logged in, so the doc tests only type-check it.
 * Deno.test({ name: "execTask (needs the Claude CLI)", ignore: true }, async () => {
 *   const cwd = Deno.makeTempDirSync();
 *   const r = await execTask({
 *     task: "Create a config.py file with DATABASE_URL",
 *     criteria: ["File config.py exists", "Contains DATABASE_URL"],
 *     cwd,
 *     onProgress: (line) => console.error(line),
 *   });
 *   assert.equal(r.success, true);
 *   assert.deepEqual(r.files_created, [`${cwd}/config.py`]);
 * });
 * ```
 * @module
 */

import { resolve } from "node:path";
import { CcxClient } from "../client/client.ts";
import type { CcxServer } from "../serve/server.ts";
import { startLocalServer } from "../serve/local.ts";
import { claudeNotFound, ExecInputError } from "../claude/argv.ts";
import { type ClaudeFailureKind, FAILURE_POLICIES } from "../claude/classify.ts";
import { type Judgement, refinePrompt } from "../verdict/criteria.ts";
import type { EvaluationCriterion } from "../verdict/pick.ts";
import { type HistoryStore, taskClass } from "../claude/history.ts";
import { limitWaitMs, sleepUnlessAborted } from "../common/backoff.ts";
import { addImportant, refineWithChecks } from "../verdict/check.ts";
import type { ExecCheck, ExecRubric } from "./graders.ts";
import {
  currentUid,
  findExecutable,
  parsePick,
  resolveTimeout,
  rootRefusal,
  validCount,
  validSeconds,
} from "./setup.ts";
import {
  type AttemptContext,
  type AttemptOutcome,
  chooseAttempt,
  describeAttempt,
  outcomeOf,
  runAttempt,
  withoutMarker,
} from "./attempt.ts";

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/**
 * Where the timeout of a run came from: `--timeout S` (`flag`), the task's own "Expect a timeout
 * of N seconds" (`task`), past runs of the same task class (`history`), or the default for the
 * task's complexity when there is too little history (`default`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TimeoutSource } from "./exec.ts";
 * import { resolveTimeout } from "./setup.ts";
 * const s: TimeoutSource = (await resolveTimeout({ task: "What is 2+2?", taskTimeoutS: 90 })).source;
 * assert.equal(s, "task");
 * ```
 */
export type TimeoutSource = "flag" | "task" | "history" | "default";

/**
 * Why an attempt failed: a Claude failure kind, `criteria_not_met` (the run ended well but a
 * criterion was not met), `start_error` (the server could not start the CLI, the connection
 * was lost, or the server shut down while the attempt ran), `check_failed` / `check_error` (a
 * `--check` did not exit 0 / could not run or finish), `rubric_failed` / `judge_error` (the
 * `--rubric` judge said fail / gave no verdict).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AttemptErrorType, ExecAttempt } from "./exec.ts";
 * const e: AttemptErrorType = "token_limit";
 * const a: Pick<ExecAttempt, "status" | "error_type"> = { status: "completed", error_type: e };
 * assert.equal(a.error_type, "token_limit");
 * ```
 */
export type AttemptErrorType =
  | ClaudeFailureKind
  | "criteria_not_met"
  | "start_error"
  | "check_failed"
  | "check_error"
  | "rubric_failed"
  | "judge_error";

/**
 * One attempt, as `--json` reports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ExecAttempt } from "./exec.ts";
 * const a: ExecAttempt = {
 *   prompt: "[marker:…] What is 2+2?", status: "completed", exit_code: 0, duration_s: 1.2,
 *   error_type: null, marker_seen: true, cost_usd: 0.01,
 * };
 * assert.equal(JSON.parse(JSON.stringify(a)).error_type, null); // as `ccx exec --json` prints it
 * ```
 */
export interface ExecAttempt {
  /** The exact prompt the CLI received (marker and refinements included). */
  prompt: string;
  /** How the process ended: `completed`, `failed`, `timeout`, `stalled`, `canceled`, `killed`, or `error` when it never started. */
  status: string;
  /** Exit code; `null` when it died by a signal or never started. */
  exit_code: number | null;
  /** Seconds the CLI ran. */
  duration_s: number;
  /** Why the attempt failed; `null` when it succeeded. */
  error_type: AttemptErrorType | null;
  /** Whether what the model said contained the attempt's marker. */
  marker_seen: boolean;
  /** `total_cost_usd` of the result line, when the CLI reported one. */
  cost_usd: number | null;
  /** The server's workspace the attempt ran in (with `--server` and no `--cwd`). */
  workspace?: string;
  /** What each `--check` did, when the attempt got that far. */
  checks?: ExecCheck[];
  /** What the `--rubric` judge decided, when the attempt got that far. */
  rubric?: ExecRubric;
}

/**
 * What {@linkcode execTask} returns: the `--json` document of `ccx exec`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ExecResult } from "./exec.ts";
 * const r: ExecResult = {
 *   success: true, result: "2 + 2 = 4", criteria: [], attempts: [], files_created: [],
 *   duration_s: 1.3, timeout_s: 120, timeout_source: "default",
 * };
 * assert.ok(r.success);
 * ```
 */
export interface ExecResult {
  /** The task succeeded: the kept attempt ended without a Claude error and met every criterion. */
  success: boolean;
  /** The kept attempt's final answer, its echoed marker removed. */
  result: string;
  /** The kept attempt's verdict on every criterion. */
  criteria: Judgement[];
  /** The kept attempt's checks (`--check`), when it got that far. */
  checks?: ExecCheck[];
  /** The kept attempt's rubric verdict (`--rubric`), when it got that far. */
  rubric?: ExecRubric;
  /** Every attempt, in order (N per round with `instances`). */
  attempts: ExecAttempt[];
  /**
   * Absolute paths written by any attempt's Write/Edit tool uses that exist now
   * (in a remote workspace: that existed when the attempt ended).
   */
  files_created: string[];
  /** Seconds from start to end, waits included. */
  duration_s: number;
  /** The whole-run timeout each attempt had, seconds. */
  timeout_s: number;
  /** Where `timeout_s` came from. */
  timeout_source: TimeoutSource;
}

/**
 * Options of {@linkcode execTask}. Only `task` is required.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ExecOptions } from "./exec.ts";
 * import { resolveTimeout } from "./setup.ts";
 * const o: ExecOptions = { task: "What is 2+2?", criteria: ["Contains 4"], timeout: 45 };
 * assert.equal((await resolveTimeout(o)).timeoutS, 45);
 * ```
 */
export interface ExecOptions {
  /** The task, already stripped of its directives (see `parseTaskRequest`). */
  task: string;
  /** Success criteria, judged on evidence. None: success = the run ended without a Claude error. */
  criteria?: string[];
  /**
   * `--check`: shell commands run after an attempt that met its criteria, in its directory (its
   * workspace on the server), each of which must exit 0; a failed one's output tail goes into
   * the next attempt's prompt.
   */
  checks?: string[];
  /** Seconds each check may run (default 120). */
  checkTimeoutS?: number;
  /** `--rubric`: statements the Claude CLI, as a judge, decides on the attempt's work. */
  rubric?: string[];
  /** `--judge-model` (default: the CLI's). */
  judgeModel?: string;
  /** Seconds the judge may run (default 300). */
  judgeTimeoutS?: number;
  /** Whole-run timeout per attempt in seconds, or `"auto"` to estimate it from history. */
  timeout?: number | "auto";
  /** The timeout the task text asked for; used when `timeout` is not given. */
  taskTimeoutS?: number;
  /**
   * Seconds without output before an attempt is stopped as stalled (default: none). The clock
   * allows {@linkcode CLAUDE_STARTUP_GRACE_S} (or this, if longer) before the CLI's first output.
   */
  stallTimeoutS?: number;
  /** Seconds of silence allowed before the first output (default `CLAUDE_STARTUP_GRACE_S`). */
  startupGraceS?: number;
  /** Seconds the CLI may retry an unreachable API before the attempt ends as `network` (default 30). */
  networkGiveUpS?: number;
  /**
   * This box is a sandbox: set `IS_SANDBOX=1` for the CLI, which lets it accept
   * `--dangerously-skip-permissions` as root (`--sandbox`, `CCX_SANDBOX=1`).
   */
  sandbox?: boolean;
  /** Whether ccx runs as root (default: `Deno.uid() === 0`); the root pre-check reads it. */
  isRoot?: boolean;
  /** Refinement retries after a failed attempt (default 2). Usage-limit waits do not count. */
  retries?: number;
  /** `--tools`: `"auto"` (from the task's verbs, default), `"none"` (`--tools ""`), or a list. */
  tools?: "auto" | "none" | string[];
  /** `--model`. */
  model?: string;
  /** `--max-turns` (0 is accepted, as the real CLI does). */
  maxTurns?: number;
  /**
   * Working directory of the CLI; file criteria resolve here (default: the current one).
   * With `server` and no `cwd`, each attempt runs in its own workspace on the server
   * (kept) and file criteria are judged there through the `files` method.
   */
  cwd?: string;
  /** Extra environment for the CLI. */
  env?: Record<string, string>;
  /** A ccx server (`ws://…/ws`); undefined: an in-process server on a free loopback port. */
  server?: string;
  /** Token for `server`. */
  token?: string;
  /** The Claude executable (default `claude`, looked up on PATH). */
  claude?: string;
  /** Attempts run at once per round (default 1); the best is kept by `pick`. */
  instances?: number;
  /** How to choose among `instances` (default `FASTEST`, among attempts that met every criterion). */
  pick?: EvaluationCriterion;
  /** Records every attempt and estimates `timeout: "auto"`. */
  history?: HistoryStore;
  /** Longest wait for a usage limit to reset, seconds (default 300); a later reset ends the run. */
  maxLimitWaitS?: number;
  /** First exponential backoff step when a limit gives no reset time, seconds (default 2). */
  backoffBaseS?: number;
  /** Waits allowed in one run for failures retried with backoff (rate limit, overloaded, network; default 3). */
  limitRetries?: number;
  /** Clock for the limit waits, epoch ms (default `Date.now`). */
  now?: () => number;
  /** Random source for the backoff jitter (default `Math.random`). */
  random?: () => number;
  /** Sleeps `ms` unless `signal` aborts (then resolves false); default {@linkcode sleepUnlessAborted}. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<boolean>;
  /** Progress and attempt lines, for stderr. */
  onProgress?: (line: string) => void;
  /** Aborting cancels the running attempts and ends the run (success false). */
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/**
 * Runs a task to success or until its retries are spent, and reports every attempt.
 * Throws {@linkcode ExecInputError} before running anything for bad input, notably a Claude
 * executable that is not on PATH or does not exist (checked locally with the in-process
 * server; a remote server's "program not found" gives the same error). Other problems (a server
 * that cannot be reached) throw their own errors.
 *
 * Success: the kept attempt ended without a Claude error (classified by `classifyFailure`) and
 * met every criterion; with no criteria, the first condition alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execTask } from "./exec.ts";
 * // A stand-in for Claude's CLI that answers as the real one does with stream-json output.
 * const dir = Deno.makeTempDirSync();
 * const claude = `${dir}/claude`;
 * const answer = '{"type":"result","subtype":"success","is_error":false,"result":"2 + 2 = 4"}';
 * Deno.writeTextFileSync(claude, `#!/bin/sh\necho '${answer}'\n`, { mode: 0o755 });
 * const r = await execTask({
 *   task: "What is 2+2?",
 *   criteria: ["Contains 4"],
 *   retries: 1,
 *   claude,
 *   cwd: dir,
 *   sandbox: true, // this box may run it as root
 * });
 * assert.equal(r.success, true);
 * assert.equal(r.result, "2 + 2 = 4");
 * assert.deepEqual(r.criteria.map((c) => c.met), [true]);
 * assert.equal(r.attempts.length, 1);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function execTask(opts: ExecOptions): Promise<ExecResult> {
  const t0 = performance.now();
  const task = opts.task.trim();
  if (task === "") throw new ExecInputError("no task given");
  const criteria = (opts.criteria ?? []).map((c) => c.trim()).filter((c) => c !== "");
  const retries = validCount("retries", opts.retries, 0) ?? 2;
  const instances = validCount("instances", opts.instances, 1) ?? 1;
  const limitRetries = validCount("limitRetries", opts.limitRetries, 0) ?? 3;
  validCount("maxTurns", opts.maxTurns, 0);
  if (typeof opts.timeout === "number") validSeconds("timeout", opts.timeout);
  else if (opts.timeout !== undefined && opts.timeout !== "auto") {
    throw new ExecInputError(`timeout must be seconds or "auto", got ${opts.timeout}`);
  }
  validSeconds("task timeout", opts.taskTimeoutS);
  validSeconds("stall timeout", opts.stallTimeoutS);
  const pick = opts.pick === undefined ? "FASTEST" : parsePick(opts.pick);
  if (Array.isArray(opts.tools) && opts.tools.length === 0) {
    throw new ExecInputError('tools: give at least one tool, "auto" or "none"');
  }
  const progress = opts.onProgress ?? (() => {});
  const cwd = resolve(opts.cwd ?? Deno.cwd());
  let claude = opts.claude ?? "claude";
  if (claude.trim() === "") throw claudeNotFound(claude);
  if (opts.server === undefined) {
    // The in-process server runs on this machine: check here, before anything runs.
    const found = findExecutable(claude);
    if (!found) throw claudeNotFound(claude);
    if (claude.includes("/")) claude = found; // relative to our cwd, not the job's
    let isDir = false;
    try {
      isDir = Deno.statSync(cwd).isDirectory;
    } catch { /* reported below */ }
    if (!isDir) throw new ExecInputError(`cwd: no such directory: ${cwd}`);
  }

  // IS_SANDBOX=1 reaches the CLI explicitly (a server's environment allow-list cannot drop it).
  const env: Record<string, string> = { ...opts.env };
  if (opts.sandbox || Deno.env.get("IS_SANDBOX") === "1") env.IS_SANDBOX ??= "1";
  if (opts.server === undefined) {
    // Our own server runs the CLI as our user: a refusal as root is certain, so stop before it.
    const refusal = rootRefusal({
      isRoot: opts.isRoot ?? currentUid() === 0,
      skipPermissions: true,
      env: { IS_SANDBOX: env.IS_SANDBOX ?? Deno.env.get("IS_SANDBOX") },
    });
    if (refusal) throw refusal;
  }

  const timeout = await resolveTimeout({ ...opts, task });
  progress(`timeout ${timeout.timeoutS} s per attempt (${timeout.source}: ${timeout.basis})`);

  let local: CcxServer | undefined;
  let url = opts.server;
  let token = opts.token;
  if (url === undefined) {
    // In-process jobs are the user's own children: their environment, less CCX_*. Only this
    // process knows the server's token: no other local user runs commands through it.
    const own = startLocalServer({
      heartbeatS: 0,
      maxJobsPerSession: Math.max(256, instances),
      warn: (line) => progress(`warning: ${line}`),
    });
    local = own.server;
    url = own.url;
    token = own.token;
  }
  let client: CcxClient | undefined;
  const attempts: AttemptOutcome[] = [];
  let kept: AttemptOutcome | undefined;
  let historyWarned = false;
  try {
    client = await CcxClient.connect(url, { token });
    const ctx: AttemptContext = {
      task,
      criteria,
      claude,
      cwd,
      workspace: opts.server !== undefined && opts.cwd === undefined,
      timeoutS: timeout.timeoutS,
      opts,
      env: Object.keys(env).length ? env : undefined,
      client,
      progress,
      signal: opts.signal,
      runId: `exec_${crypto.randomUUID().slice(0, 8)}`,
    };
    const cls = taskClass(task);
    const sleep = opts.sleep ?? sleepUnlessAborted;
    let body = task;
    let refinementsLeft = retries;
    let limitWaits = 0;
    while (!opts.signal?.aborted) {
      const first = attempts.length + 1;
      progress(
        instances === 1
          ? `attempt ${first}: running ${claude}`
          : `attempts ${first}-${first + instances - 1}: running ${instances} at once`,
      );
      const round = await Promise.all(
        Array.from({ length: instances }, (_, i) => runAttempt(ctx, body, first + i)),
      );
      attempts.push(...round);
      for (const a of round) {
        progress(describeAttempt(a, criteria.length));
        for (const j of a.judgements) {
          if (!j.met) progress(`  not met: ${j.criterion}: ${j.evidence}`);
        }
        if (opts.history) {
          await opts.history.record({
            ...cls,
            durationS: a.record.duration_s,
            outcome: outcomeOf(a),
            at: Date.now(),
            source: "exec",
          }).catch((e) => {
            if (!historyWarned) {
              historyWarned = true;
              progress(`warning: attempt not recorded in ${opts.history?.location}: ${e}`);
            }
          });
        }
      }
      kept = await chooseAttempt(round, pick, progress, criteria.length > 0, opts.model);
      if (kept.success || opts.signal?.aborted) break;
      if (kept.startError) {
        progress(`stopping: ${kept.startError}`);
        break;
      }
      if (kept.graderError) {
        progress(`stopping: ${kept.graderError} (a retry of the task cannot fix its grader)`);
        break;
      }
      const f = kept.failure;
      const policy = f ? FAILURE_POLICIES[f.kind] : undefined;
      if (f && policy?.retry === "never") {
        if (f.kind !== "canceled" && f.kind !== "interrupted") {
          progress(
            `stopping: ${f.kind}, which a retry cannot fix: ${f.message}` +
              (policy.fix ? `. Fix: ${policy.fix}` : ""),
          );
        }
        break;
      }
      if (f && policy?.retry === "backoff") {
        if (limitWaits >= limitRetries) {
          const still = f.kind === "rate_limit" ? "limited" : f.kind;
          progress(`stopping: still ${still} after ${limitWaits} waits (${f.message})`);
          break;
        }
        const ms = limitWaitMs(f, limitWaits, {
          maxWaitS: opts.maxLimitWaitS,
          baseS: opts.backoffBaseS,
          now: opts.now,
          random: opts.random,
        });
        const maxS = opts.maxLimitWaitS ?? 300;
        if (ms === undefined) {
          const when = f.resetTimestamp !== undefined
            ? `resets at ${new Date(f.resetTimestamp * 1000).toISOString()}`
            : `asks to retry after ${f.retryAfter} s`;
          progress(
            `stopping: usage limit ${when}, more than the ${maxS} s ccx waits at most ` +
              `(${f.message})`,
          );
          break;
        }
        limitWaits++;
        const what = f.kind === "rate_limit" ? "usage limit" : f.kind;
        progress(
          `${what}: waiting ${(ms / 1000).toFixed(1)} s ` +
            (f.resetTimestamp !== undefined || f.retryAfter !== undefined
              ? "for the reset"
              : "(backoff with jitter)") +
            ` before retrying (wait ${limitWaits} of at most ${limitRetries}; not a refinement)`,
        );
        if (!await sleep(ms, opts.signal)) break;
        continue;
      }
      if (refinementsLeft <= 0) {
        if (retries > 0) progress(`giving up after ${retries} refinement retries`);
        break;
      }
      refinementsLeft--;
      const failed = kept.judgements.filter((j) => !j.met);
      body = refineWithChecks(
        refinePrompt(task, failed, f ? { kind: f.kind } : undefined),
        kept.checks ?? [],
      );
      if (kept.rubric?.status === "failed") {
        body = addImportant(body, [
          `- A reviewer judged the work and found: ${kept.rubric.reason}`,
        ]);
      }
      progress(
        `retrying with a refined prompt (${retries - refinementsLeft} of ${retries}): ` +
          body.slice(task.length).trim().replace(/\n/g, " "),
      );
    }
  } finally {
    await client?.close().catch(() => {});
    await local?.shutdown();
  }

  const files: string[] = [];
  for (const a of attempts) {
    for (const f of a.existing) if (!files.includes(f)) files.push(f);
  }
  const answer = kept?.answer ?? "";
  return {
    success: kept?.success ?? false,
    result: kept ? withoutMarker(answer, kept.marker) : "",
    criteria: kept?.judgements ??
      criteria.map((c) => ({ criterion: c, met: false, evidence: "the task did not run" })),
    ...(kept?.record.checks ? { checks: kept.record.checks } : {}),
    ...(kept?.record.rubric ? { rubric: kept.record.rubric } : {}),
    attempts: attempts.map((a) => a.record),
    files_created: files,
    duration_s: round3((performance.now() - t0) / 1000),
    timeout_s: timeout.timeoutS,
    timeout_source: timeout.source,
  };
}

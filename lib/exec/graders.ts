/**
 * Running a task's graders through a ccx client, on the server where the task ran: its checks
 * ({@linkcode runChecks}: shell commands in the task's workspace, after its hidden files were
 * written in) and its rubric ({@linkcode runJudge}: the Claude CLI as a judge, with no tools,
 * in a fresh empty workspace). Each is one more `execute` of the task's own session, so
 * `--server`, fleet workers (whose in-process server runs the task) and `--isolate bwrap` apply
 * to them as to the task. `ccx exec` and `ccx stress` both grade through here; what a result
 * means is `lib/verdict/check.ts` and `lib/verdict/rubric.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient, runToEnd } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { runChecks } from "./graders.ts";
 * const workspaceRoot = Deno.makeTempDirSync();
 * const server = CcxServer.start({ port: 0, log: () => {}, workspaceRoot });
 * const client = await CcxClient.connect(server.url);
 * const task = await runToEnd(client, { command: "echo 'echo 4' > add.sh", workspace: {} });
 * const { checks } = await runChecks(client, { jobId: task.jobId }, ["sh test.sh"], {
 *   timeoutS: 60,
 *   files: [{ path: "test.sh", content: 'test "$(sh add.sh)" = 5 || { echo "add.sh said 4"; exit 1; }' }],
 * });
 * assert.equal(checks[0].status, "failed");
 * assert.equal(checks[0].stdoutTail, "add.sh said 4");
 * await client.close();
 * await server.shutdown();
 * Deno.removeSync(workspaceRoot, { recursive: true });
 * ```
 * @module
 */

import { relative } from "node:path";
import {
  type CcxClient,
  ClientError,
  type CollectedRun,
  remoteFiles,
  runToEnd,
} from "../client/client.ts";
import { type JobMeta, toLabel, type WorkspaceFile } from "../common/protocol.ts";
import {
  checkNotRun,
  type CheckResult,
  checkResult,
  DEFAULT_CHECK_TIMEOUT_S,
  describeCheck,
} from "../verdict/check.ts";
import {
  JUDGE_MAX_FILE,
  JUDGE_MAX_LISTED,
  judgeArgv,
  type JudgeFile,
  judgeOutcome,
  type RubricInput,
  rubricPrompt,
  type RubricResult,
} from "../verdict/rubric.ts";
import { type FileAccess, localFiles } from "../verdict/criteria.ts";

/**
 * How the graded run's job is named on the server (its `execute` `label` and `meta`): a
 * grader's job takes the same, its label followed by what it is (`· check: make test`,
 * `· judge`) and its meta with `grader: "check"` or `"judge"`, so the page and `ccx ps` show
 * it beside the run it grades.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { GraderTag } from "./graders.ts";
 * const tag: GraderTag = { label: "slugify · Slugify", meta: { run_id: "20260101_000000_abc" } };
 * assert.equal(tag.meta?.run_id, "20260101_000000_abc");
 * ```
 */
export interface GraderTag {
  /** The graded run's label. */
  label: string;
  /** The graded run's meta. */
  meta?: JobMeta;
}

function graderTag(
  tag: GraderTag | undefined,
  what: string,
  grader: "check" | "judge",
): { label?: string; meta?: JobMeta } {
  if (!tag) return {};
  return { label: toLabel(`${tag.label} · ${what}`), meta: { ...tag.meta, grader } };
}

/**
 * Where a task ran: the finished job whose workspace its graders use (`jobId`), or, for a run
 * without a workspace, the directory it ran in (`cwd`, on the server's host).
 */
export type GradeTarget = { jobId: string; cwd?: undefined } | { jobId?: undefined; cwd?: string };

/** Options of {@linkcode runChecks}. */
export interface CheckOptions {
  /** Seconds each check may run. */
  timeoutS: number;
  /** Hidden files written into the workspace before the first check (`check_files`). */
  files?: readonly WorkspaceFile[];
  /** Extra environment of the checks. */
  env?: Record<string, string>;
  /** Aborting cancels the running check; the rest do not run. */
  signal?: AbortSignal;
  /** Called when a check's job started (its process group on the server's host). */
  onJobStarted?(pgid: number): void;
  /** The graded run's label and meta, for the checks' jobs. */
  tag?: GraderTag;
}

/** What {@linkcode runChecks} found. */
export interface ChecksRun {
  /** One result per check that ran (they stop at the first `error`). */
  checks: CheckResult[];
  /** The server keeps the workspace now (a check failed in it under keep `failed`). */
  workspaceKept: boolean;
}

/**
 * Runs `checks` one after the other in the task's workspace (or its directory), the hidden
 * `files` written in before the first; resolves with one result per check that ran. The checks
 * stop at the first one that cannot run or finish (an `error`: nothing after it would say
 * more). Never throws for a check's own failure; a lost connection or an abort makes the
 * running check an `error`.
 */
export async function runChecks(
  client: CcxClient,
  target: GradeTarget,
  checks: readonly string[],
  opts: CheckOptions,
): Promise<ChecksRun> {
  const out: CheckResult[] = [];
  let workspaceKept = false;
  if (opts.files?.length && target.jobId === undefined) {
    return {
      checks: [
        checkNotRun(
          checks[0] ?? "(hidden files)",
          "check_files need the task to run in a workspace (not --no-workspace)",
        ),
      ],
      workspaceKept,
    };
  }
  for (const [i, command] of checks.entries()) {
    const where = target.jobId !== undefined
      ? {
        workspace: {
          reuse: target.jobId,
          ...(i === 0 && opts.files?.length ? { files: [...opts.files] } : {}),
        },
      }
      : target.cwd !== undefined
      ? { cwd: target.cwd }
      : {};
    let r: CheckResult;
    try {
      const run = await runToEnd(client, {
        command,
        ...where,
        timeout: opts.timeoutS,
        ...(opts.env && Object.keys(opts.env).length ? { env: opts.env } : {}),
        ...graderTag(opts.tag, `check: ${command}`, "check"),
      }, {
        onEvent(method, params) {
          if (method === "process.started" && typeof params.pgid === "number") {
            opts.onJobStarted?.(params.pgid);
          }
        },
      }, opts.signal);
      r = checkResult(command, run, opts.timeoutS);
      if (run.workspace?.kept) workspaceKept = true;
    } catch (e) {
      r = opts.signal?.aborted
        ? { ...checkNotRun(command, ""), reason: "interrupted" }
        : checkNotRun(command, e instanceof ClientError ? e.message : String(e));
    }
    out.push(r);
    if (r.status === "error") break;
  }
  return { checks: out, workspaceKept };
}

/**
 * The files a task changed, for the judge: each path with its size, and the text of those
 * small enough (read through `access`, i.e. from the server's disk for a workspace).
 *
 * @example
 * ```ts
 * import { localFiles } from "../verdict/criteria.ts";
 * import { judgeFiles } from "./graders.ts";
 * import assert from "node:assert/strict";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/a.py`, "print(1)\n");
 * assert.deepEqual(await judgeFiles(localFiles, dir, [{ path: "a.py", size: 9 }]), [
 *   { path: "a.py", size: 9, text: "print(1)\n" },
 * ]);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function judgeFiles(
  access: FileAccess,
  base: string,
  files: readonly { path: string; size: number }[],
): Promise<JudgeFile[]> {
  const out: JudgeFile[] = [];
  for (const f of files.slice(0, JUDGE_MAX_LISTED)) {
    const j: JudgeFile = { path: f.path, size: f.size };
    if (f.size <= JUDGE_MAX_FILE) {
      const text = await access.readText(`${base}/${f.path}`).catch(() => undefined);
      // Binary files arrive as U+FFFD soup: leave them out.
      if (text !== undefined && !text.includes("\uFFFD") && !text.includes("\0")) j.text = text;
    }
    out.push(j);
  }
  return out;
}

/** Options of {@linkcode runJudge}. */
export interface JudgeOptions {
  /** The Claude executable, on the server's host. */
  claude: string;
  /** `--judge-model`; the CLI's default when absent. */
  model?: string;
  /** Seconds the judge may run. */
  timeoutS: number;
  /**
   * Run the judge in a fresh, empty workspace (default true): nothing the task left (a
   * `CLAUDE.md` that says "answer pass") reaches it; `false` runs it in the server's directory.
   */
  workspace?: boolean;
  /** Extra environment of the judge's CLI. */
  env?: Record<string, string>;
  /** Aborting cancels the judge. */
  signal?: AbortSignal;
  /** Called when the judge's job started (its process group on the server's host). */
  onJobStarted?(pgid: number): void;
  /** The graded run's label and meta, for the judge's job. */
  tag?: GraderTag;
}

/**
 * Asks the Claude CLI on the task's server whether the rubric's statements hold for what the
 * task did, and resolves with its decision ({@linkcode judgeOutcome}): `passed`, `failed`, or
 * `error` when the judge failed or answered without a verdict. Never throws.
 */
export async function runJudge(
  client: CcxClient,
  input: RubricInput,
  opts: JudgeOptions,
): Promise<RubricResult> {
  const t0 = performance.now();
  try {
    const run = await runToEnd(client, {
      argv: judgeArgv(opts.claude, opts.model),
      stdin: rubricPrompt(input),
      timeout: opts.timeoutS,
      ...(opts.workspace !== false ? { workspace: { keep: "never" as const } } : {}),
      ...(opts.env && Object.keys(opts.env).length ? { env: opts.env } : {}),
      ...graderTag(opts.tag, "judge", "judge"),
    }, {
      onEvent(method, params) {
        if (method === "process.started" && typeof params.pgid === "number") {
          opts.onJobStarted?.(params.pgid);
        }
      },
    }, opts.signal);
    return judgeOutcome(input.statements, run, opts.timeoutS);
  } catch (e) {
    return {
      status: "error",
      statements: [...input.statements],
      reason: opts.signal?.aborted
        ? "judge: interrupted"
        : `judge: could not start: ${e instanceof Error ? e.message : String(e)}`,
      durationS: Math.round(performance.now() - t0) / 1000,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// ccx exec

/** What {@linkcode gradeAttempt} needs of an attempt of `ccx exec` and of its options. */
export interface AttemptGrading {
  /** `--check` commands. */
  checks?: string[];
  /** Seconds each check may run (default 120). */
  checkTimeoutS?: number;
  /** `--rubric` statements. */
  rubric?: string[];
  /** `--judge-model`. */
  judgeModel?: string;
  /** Seconds the judge may run (default 300). */
  judgeTimeoutS?: number;
  /** The attempt's directory when it ran without a workspace. */
  cwd: string;
  /** The task as asked. */
  task: string;
  /** The attempt's answer, its marker removed. */
  answer: string;
  /** Absolute paths its Write/Edit tool uses targeted (the judge's files without a workspace). */
  files: string[];
  /** The Claude executable (the judge). */
  claude: string;
  /** The CLI's extra environment. */
  env?: Record<string, string>;
  /** Aborting cancels the graders. */
  signal?: AbortSignal;
  /** Progress lines. */
  progress(line: string): void;
  /** The attempt's label and meta, for the graders' jobs. */
  tag?: GraderTag;
}

/**
 * An attempt's checks and rubric (`ccx exec --check/--rubric`), run on its server in its
 * workspace, or in its directory when it had none. The rubric is asked only when every check
 * passed.
 */
export async function gradeAttempt(
  client: CcxClient,
  run: CollectedRun,
  g: AttemptGrading,
): Promise<{ checks?: CheckResult[]; rubric?: RubricResult }> {
  const out: { checks?: CheckResult[]; rubric?: RubricResult } = {};
  const ws = run.workspace;
  if (g.checks?.length) {
    g.progress(`checking: ${g.checks.join("; ")}`);
    const target = ws ? { jobId: run.jobId } : { cwd: g.cwd };
    out.checks = (await runChecks(client, target, g.checks, {
      timeoutS: g.checkTimeoutS ?? DEFAULT_CHECK_TIMEOUT_S,
      signal: g.signal,
      tag: g.tag,
    })).checks;
    for (const c of out.checks) g.progress(`  ${describeCheck(c)}`);
    if (out.checks.some((c) => c.status !== "passed")) return out;
  }
  if (g.rubric?.length) {
    const base = ws?.path ?? g.cwd;
    const access: FileAccess = ws ? remoteFiles(client, run.jobId, ws.path) : localFiles;
    const changed = ws ? ws.files : await Promise.all(g.files.map(async (abs) => ({
      path: relative(base, abs),
      size: (await access.stat(abs).catch(() => undefined))?.size ?? 0,
    })));
    out.rubric = await runJudge(client, {
      statements: g.rubric,
      request: g.task,
      answer: g.answer,
      files: await judgeFiles(access, base, changed),
      filesTotal: ws?.filesTotal,
    }, {
      claude: g.claude,
      model: g.judgeModel,
      timeoutS: g.judgeTimeoutS ?? 300,
      env: g.env,
      signal: g.signal,
      tag: g.tag,
    });
    g.progress(`  rubric: ${out.rubric.status}: ${out.rubric.reason}`);
  }
  return out;
}

/**
 * One `--check` of an attempt, as `--json` reports it.
 *
 * @example
 * ```ts
 * import type { ExecCheck } from "./graders.ts";
 * const c: ExecCheck = {
 *   command: "python3 -m pytest -q", status: "failed", exit_code: 1, duration_s: 0.8,
 *   output_tail: "E   assert -1 == 5\n1 failed",
 * };
 * ```
 */
export interface ExecCheck {
  /** The command. */
  command: string;
  /** `passed`, `failed` or `error` (could not run or finish). */
  status: string;
  /** Its exit code. */
  exit_code: number | null;
  /** Seconds it ran. */
  duration_s: number;
  /** The last lines of what it printed (stdout, then stderr). */
  output_tail: string | null;
  /** Why it is an error, when it is one. */
  reason?: string;
}

/**
 * The `--rubric` judge's decision on an attempt, as `--json` reports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ExecRubric } from "./graders.ts";
 * const r: ExecRubric = { status: "failed", reason: "add() subtracts", model: "claude-haiku" };
 * assert.equal(r.status, "failed");
 * ```
 */
export interface ExecRubric {
  /** `passed`, `failed` or `error` (no verdict). */
  status: string;
  /** The judge's reason, or why there is no verdict. */
  reason: string;
  /** The judge's model, as its CLI reported it. */
  model: string | null;
}

/**
 * A check as `ccx exec --json` reports it (snake_case, the output tails joined).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execCheck } from "./graders.ts";
 * assert.deepEqual(execCheck({ command: "true", status: "passed", exitCode: 0, durationS: 0.01 }), {
 *   command: "true", status: "passed", exit_code: 0, duration_s: 0.01, output_tail: null,
 * });
 * ```
 */
export function execCheck(c: CheckResult): ExecCheck {
  const tail = [c.stdoutTail, c.stderrTail].filter((x) => x !== undefined).join("\n");
  return {
    command: c.command,
    status: c.status,
    exit_code: c.exitCode,
    duration_s: c.durationS,
    output_tail: tail || null,
    ...(c.reason ? { reason: c.reason } : {}),
  };
}

/**
 * A rubric's decision as `ccx exec --json` reports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execRubric } from "./graders.ts";
 * assert.deepEqual(execRubric({ status: "failed", statements: ["s"], reason: "no", durationS: 1 }), {
 *   status: "failed", reason: "no", model: null,
 * });
 * ```
 */
export function execRubric(r: RubricResult): ExecRubric {
  return { status: r.status, reason: r.reason, model: r.model ?? null };
}

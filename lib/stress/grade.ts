/**
 * A suite task's graders, applied to one run of it: its checks (with its hidden `check_files`)
 * in the workspace it left, then its rubric, on the server and in the session that ran it (see
 * `lib/exec/graders.ts`), folded into the run's verdict.
 *
 * When the run is already an `error` (a Claude or infrastructure failure) no grader runs. Checks
 * run when the run passed or failed otherwise (so the report shows what they found either way);
 * the rubric, which costs a model call, only when everything else passed. A check that cannot
 * start or finish, or a judge without a verdict, makes the task an `error`, never `failed`.
 * Also how `ccx stress --list` and `--validate` show a suite's graders.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient, runToEnd } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { gradeRun } from "./grade.ts";
 * import { judgeRun } from "./judge.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const [task] = parseSuite({
 *   tests: [{ id: "t", command: "echo 'echo 4' > add.sh", check: "test $(sh add.sh) = 5" }],
 * }, "inline").tasks;
 * const workspaceRoot = Deno.makeTempDirSync();
 * const server = CcxServer.start({ port: 0, log: () => {}, workspaceRoot });
 * const client = await CcxClient.connect(server.url);
 * const run = await runToEnd(client, { command: task.template, workspace: { keep: "never" } });
 * const verdict = judgeRun(task, run, "all");
 * const graded = await gradeRun(verdict, task, run, { client, url: server.url }, {
 *   outDir: workspaceRoot,
 *   claude: "claude",
 * }, "t");
 * assert.equal(graded.checks?.[0].exitCode, 1);
 * assert.deepEqual([verdict.status, verdict.reason], ["failed", 'check "test $(sh add.sh) = 5" exited 1']);
 * await client.close();
 * await server.shutdown();
 * Deno.removeSync(workspaceRoot, { recursive: true });
 * ```
 * @module
 */

import { type CcxClient, type CollectedRun, remoteFiles } from "../client/client.ts";
import { type GradeTarget, judgeFiles, runChecks, runJudge } from "../exec/graders.ts";
import { type CheckResult, checksVerdict, DEFAULT_CHECK_TIMEOUT_S } from "../verdict/check.ts";
import type { RubricResult } from "../verdict/rubric.ts";
import { runFacts } from "../verdict/answer.ts";
import { loadCheckFiles } from "./check_files.ts";
import type { Verdict } from "./judge.ts";
import type { SuiteTask } from "./suite_model.ts";
import type { TaskOptions } from "./task.ts";
import type { JobTag } from "./job_tag.ts";

/** Seconds a rubric's judge may run (before `--timeout-scale`). */
export const DEFAULT_JUDGE_TIMEOUT_S = 300;

/** What grading added to a run: the graders' results, and whether its workspace is kept now. */
export interface Graded {
  /** Each check's result, when the task has checks and they ran. */
  checks?: CheckResult[];
  /** The rubric's decision, when the task has one and it ran. */
  rubric?: RubricResult;
  /** The workspace's path, when a failed check made the server keep it. */
  workspace?: string;
}

/** The request a judge is shown: the task's natural-language request, else its command. */
function requestOf(task: SuiteTask): string {
  return [task.metatags, task.request].filter((s) => s).join(" ") || task.template || task.id;
}

/**
 * Runs the graders of `task` on `run` (on the connection it ran on) and folds their verdict
 * into `v`: a failed check fails it (its reason names the check and the last line it printed),
 * an erroring check or judge makes it an `error`, a failed rubric fails it with the judge's
 * reason. Resolves with the graders' results for the report. The graders' jobs are named after
 * the run's (`tag`).
 */
export async function gradeRun(
  v: Verdict,
  task: SuiteTask,
  run: CollectedRun,
  conn: { client: CcxClient; url: string },
  opts: TaskOptions,
  rid: string,
  tag?: JobTag,
): Promise<Graded> {
  const out: Graded = {};
  if (v.status === "error" || opts.signal?.aborted || (!task.checks && !task.rubric)) return out;
  const scale = opts.timeoutScale ?? 1;
  const onJobStarted = (pgid: number) => opts.onJobStarted?.(rid, pgid, conn.url);
  const target: GradeTarget = run.workspace ? { jobId: run.jobId } : {};
  if (task.checks) {
    let checks: CheckResult[];
    let kept = false;
    try {
      const files = task.checkFileData ??
        (task.checkFiles !== undefined ? await loadCheckFiles(task.checkFiles) : undefined);
      const timeoutS = Math.round((task.checkTimeoutS ?? DEFAULT_CHECK_TIMEOUT_S) * scale * 1000) /
        1000;
      ({ checks, workspaceKept: kept } = await runChecks(conn.client, target, task.checks, {
        timeoutS,
        files,
        signal: opts.signal,
        onJobStarted,
        tag,
      }));
    } catch (e) {
      checks = [{
        command: task.checks[0],
        status: "error",
        exitCode: null,
        durationS: 0,
        reason: `could not start: ${(e as Error).message}`,
      }];
    }
    out.checks = checks;
    if (kept && run.workspace) out.workspace = run.workspace.path;
    const cv = checksVerdict(checks);
    if (cv.status === "error") {
      v.status = "error";
      v.reason = opts.signal?.aborted ? "interrupted" : cv.reason;
    } else if (cv.status === "failed") {
      v.reason = v.status === "failed" ? `${v.reason}; ${cv.reason}` : cv.reason;
      v.status = "failed";
    } else v.reason += `, ${cv.reason}`;
  }
  if (task.rubric && v.status === "passed" && !opts.signal?.aborted) {
    const ws = run.workspace;
    const files = ws
      ? await judgeFiles(remoteFiles(conn.client, run.jobId, ws.path), ws.path, ws.files)
      : [];
    const answer = (runFacts(run.stdout, "").answer ?? "").replace(/\[marker:[^\]\s]*\]/g, "")
      .trim();
    const r = await runJudge(conn.client, {
      statements: task.rubric,
      request: requestOf(task),
      answer,
      files,
      filesTotal: ws?.filesTotal,
    }, {
      claude: opts.claude,
      model: opts.judgeModel,
      timeoutS: Math.round((opts.judgeTimeoutS ?? DEFAULT_JUDGE_TIMEOUT_S) * scale * 1000) / 1000,
      signal: opts.signal,
      onJobStarted,
      tag,
    });
    out.rubric = r;
    if (r.status === "error") {
      v.status = "error";
      v.reason = r.reason;
    } else if (r.status === "failed") {
      v.status = "failed";
      v.reason = `rubric failed: ${r.reason}`;
    } else v.reason += `, rubric passed: ${r.reason}`;
  }
  return out;
}

/**
 * The graders of a task as `--list` shows them: its checks (with the hidden files they get and
 * their timeout) and its rubric.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { graderLines } from "./grade.ts";
 * assert.deepEqual(graderLines({ checks: ["sh test.sh"], rubric: ["it adds"] }), [
 *   "check: sh test.sh (timeout 120 s)",
 *   "rubric: it adds",
 * ]);
 * ```
 */
export function graderLines(
  task: Pick<SuiteTask, "checks" | "checkFiles" | "checkTimeoutS" | "rubric">,
): string[] {
  const out: string[] = [];
  const hidden = task.checkFiles ? `, hidden files from ${task.checkFiles}` : "";
  for (const c of task.checks ?? []) {
    out.push(`check: ${c} (timeout ${task.checkTimeoutS ?? DEFAULT_CHECK_TIMEOUT_S} s${hidden})`);
  }
  for (const r of task.rubric ?? []) out.push(`rubric: ${r}`);
  return out;
}

/**
 * `, 3 with checks (2 with hidden files), 1 with a rubric` for `--validate`; `""` for none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { graderCounts } from "./grade.ts";
 * assert.equal(
 *   graderCounts([{ checks: ["make test"] }, { rubric: ["it adds"] }]),
 *   ", 1 with checks, 1 with a rubric",
 * );
 * ```
 */
export function graderCounts(
  tasks: readonly Pick<SuiteTask, "checks" | "checkFiles" | "rubric">[],
): string {
  const checks = tasks.filter((t) => t.checks).length;
  const hidden = tasks.filter((t) => t.checks && t.checkFiles).length;
  const rubric = tasks.filter((t) => t.rubric).length;
  const parts: string[] = [];
  if (checks) parts.push(`${checks} with checks${hidden ? ` (${hidden} with hidden files)` : ""}`);
  if (rubric) parts.push(`${rubric} with a rubric`);
  return parts.length ? `, ${parts.join(", ")}` : "";
}

/**
 * One attempt of `ccx exec` and the choice among a round's attempts: the marked prompt, the
 * Claude CLI run on the ccx server with its live watch, the evidence (files written, what the
 * model said), the criteria and graders' verdicts, the failure classification, and the pick of
 * the attempt a round keeps. `execTask` in `exec.ts` runs the rounds and retries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outcomeOf, withoutMarker } from "./attempt.ts";
 * assert.equal(withoutMarker("4 [marker:abc]", "abc"), "4");
 * assert.equal(outcomeOf({ success: true } as Parameters<typeof outcomeOf>[0]), "success");
 * ```
 * @module
 */

import { resolve } from "node:path";
import {
  type CcxClient,
  ClientError,
  type CollectedRun,
  remoteFiles,
  runToEnd,
} from "../client/client.ts";
import { buildClaudeArgv, chooseTools, claudeNotFound } from "../claude/argv.ts";
import {
  classifyFailure,
  type ClaudeFailure,
  type ClaudeFailureKind,
  FAILURE_POLICIES,
} from "../claude/classify.ts";
import { ClaudeLiveWatch } from "../claude/live_watch.ts";
import { ClaudeStreamParser, type ClaudeTranscript } from "../claude/stream.ts";
import {
  type Evidence,
  type FileAccess,
  judgeAll,
  type Judgement,
  localFiles,
} from "../verdict/criteria.ts";
import { type Candidate, type EvaluationCriterion, pickBest } from "../verdict/pick.ts";
import type { Outcome } from "../claude/history.ts";
import { type CheckResult, checksVerdict } from "../verdict/check.ts";
import type { RubricResult } from "../verdict/rubric.ts";
import { execCheck, execRubric, gradeAttempt } from "./graders.ts";
import { clip, toLabel } from "../common/protocol.ts";
import type { AttemptErrorType, ExecAttempt, ExecOptions } from "./exec.ts";

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** The instruction that carries an attempt's marker, at the start of its prompt. */
function markedPrompt(marker: string, body: string): string {
  return `[marker:${marker}] Repeat this marker at the end of your final answer.\n\n${body}`;
}

const FILE_TOOLS: Record<string, string> = {
  Write: "file_path",
  Edit: "file_path",
  MultiEdit: "file_path",
  NotebookEdit: "notebook_path",
};

/** Absolute paths the transcript's Write/Edit tool uses targeted, in order, deduplicated. */
function filesWrittenBy(t: ClaudeTranscript, cwd: string): string[] {
  const out: string[] = [];
  for (const u of t.toolUses) {
    const key = FILE_TOOLS[u.name];
    const p = key ? u.input[key] : undefined;
    if (typeof p === "string" && p !== "") {
      const abs = resolve(cwd, p);
      if (!out.includes(abs)) out.push(abs);
    }
  }
  return out;
}

/**
 * `text` without the echoed `[marker:…]` (and the whitespace it leaves at the ends).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withoutMarker } from "./attempt.ts";
 * assert.equal(withoutMarker("[marker:m1] done", "m1"), "done");
 * ```
 */
export function withoutMarker(text: string, marker: string): string {
  return text.replaceAll(`[marker:${marker}]`, "").trim();
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * The timeout history's outcome of an attempt: `success`, `timeout` (a timeout or a stall),
 * `failure` (it ran and failed), or `error` (it could not start, or Claude reported an error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type AttemptOutcome, outcomeOf } from "./attempt.ts";
 * const a = { success: false, failure: { kind: "stall" } } as unknown as AttemptOutcome;
 * assert.equal(outcomeOf(a), "timeout");
 * ```
 */
export function outcomeOf(a: AttemptOutcome): Outcome {
  if (a.success) return "success";
  switch (a.failure?.kind) {
    case "timeout":
    case "stall":
      return "timeout";
    case "error":
    case "crash":
    case "max_turns":
    case "token_limit":
    case undefined:
      return a.startError ? "error" : "failure";
    default:
      return "error";
  }
}

// ---------------------------------------------------------------------------------------------
// One attempt
// ---------------------------------------------------------------------------------------------

/** What one attempt ended with: its record for the result, its verdicts and its evidence. */
export interface AttemptOutcome {
  /** 1-based attempt number over the whole run. */
  index: number;
  /** The attempt as `ExecResult.attempts` reports it. */
  record: ExecAttempt;
  /** How it failed, as classified (absent when Claude's run ended without an error). */
  failure?: ClaudeFailure;
  /** The server could not start the CLI, or the connection broke. */
  startError?: string;
  /** One verdict per success criterion, in order. */
  judgements: Judgement[];
  /** No failure, no start error, every criterion met and every grader passed. */
  success: boolean;
  /** Final answer (raw, marker included). */
  answer: string;
  /** What the model said (assistant + result text). */
  text: string;
  /** Absolute paths the attempt's Write/Edit tool uses targeted. */
  files: string[];
  /** Of `files`, those that existed when the attempt ended. */
  existing: string[];
  /** The attempt's unique marker (the uuid in `[marker:…]`). */
  marker: string;
  /** The graders' results (`--check`, `--rubric`), when the attempt got that far. */
  checks?: CheckResult[];
  /** The rubric judge's result (`--rubric`), when the attempt got that far. */
  rubric?: RubricResult;
  /** A check or the judge could not give a verdict: a retry cannot help. */
  graderError?: string;
}

/** What every attempt of a run shares: the task, its settings, the server connection. */
export interface AttemptContext {
  /** The task, trimmed. */
  task: string;
  /** The success criteria, trimmed, empty ones left out. */
  criteria: string[];
  /** Claude's CLI: the executable to run. */
  claude: string;
  /** The directory attempts run in (and whose files are evidence). */
  cwd: string;
  /** Each attempt runs in a fresh workspace on the server (remote server, no --cwd). */
  workspace: boolean;
  /** Each attempt's timeout in seconds. */
  timeoutS: number;
  /** The run's options as given. */
  opts: ExecOptions;
  /** The CLI's extra environment (`opts.env`, plus `IS_SANDBOX=1` for a sandbox). */
  env?: Record<string, string>;
  /** The connection to the ccx server that runs the attempts. */
  client: CcxClient;
  /** Reports a progress line. */
  progress: (line: string) => void;
  /** Aborting cancels the running attempt. */
  signal?: AbortSignal;
  /** Groups this run's attempts on the page (`meta.run_id` of their jobs). */
  runId: string;
}

/** The page's name for attempt `index` (and its graders' jobs). */
function attemptLabel(ctx: AttemptContext, index: number): string {
  return `${toLabel(clip(ctx.task, 150))} · attempt ${index}`;
}

function toolsFor(ctx: AttemptContext, body: string): string[] | "none" {
  const t = ctx.opts.tools ?? "auto";
  if (t === "auto") return chooseTools(body);
  return t;
}

/**
 * Runs attempt `index` of a run with prompt `body` (the task, or a refinement of it): starts
 * Claude's CLI on the server, watches its stream, then judges the evidence and grades it.
 */
export async function runAttempt(
  ctx: AttemptContext,
  body: string,
  index: number,
): Promise<AttemptOutcome> {
  const marker = crypto.randomUUID();
  const prompt = markedPrompt(marker, body);
  const argv = buildClaudeArgv({
    claude: ctx.claude,
    prompt,
    tools: toolsFor(ctx, body),
    model: ctx.opts.model,
    maxTurns: ctx.opts.maxTurns,
    skipPermissions: true,
  });
  const parser = new ClaudeStreamParser();
  const t0 = performance.now();
  let run: CollectedRun | undefined;
  let startError: string | undefined;
  // The live watch ends the attempt early (auth in an api_retry line, network retries past the
  // bound, a stall after the startup grace) by canceling the job.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  if (ctx.signal?.aborted) stop.abort();
  const watch = new ClaudeLiveWatch({
    stallTimeoutS: ctx.opts.stallTimeoutS,
    startupGraceS: ctx.opts.startupGraceS,
    networkGiveUpS: ctx.opts.networkGiveUpS,
    onFailure(f) {
      ctx.progress(`attempt ${index}: ending it now: ${f.kind}: ${f.message}`);
      stop.abort();
    },
  });
  try {
    run = await runToEnd(ctx.client, {
      argv,
      ...(ctx.workspace ? { workspace: { keep: "always" as const } } : { cwd: ctx.cwd }),
      env: ctx.env,
      timeout: ctx.timeoutS,
      label: attemptLabel(ctx, index),
      meta: { suite: "ccx exec", run_id: ctx.runId, attempt: index, prompt: clip(body, 2000) },
    }, {
      onOutput(type, data) {
        if (type === "stderr") return watch.output([]);
        const events = parser.push(data);
        watch.output(events);
        for (const ev of events) {
          if (ev.type !== "assistant") continue;
          for (const u of ev.toolUses) {
            const target = u.input.file_path ?? u.input.notebook_path ?? u.input.command;
            ctx.progress(
              `attempt ${index}: ${u.name}${typeof target === "string" ? ` ${target}` : ""}`,
            );
          }
        }
      },
    }, stop.signal);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof ClientError && /program not found|permission denied/.test(msg)) {
      throw claudeNotFound(ctx.claude, `the server could not start it (${msg})`);
    }
    startError = msg;
  } finally {
    watch.stop();
    ctx.signal?.removeEventListener("abort", onAbort);
  }
  // The server ended the CLI because it shut down (it closes with 1001): not the model's
  // failure, and no retry can run there.
  if (run?.status === "killed" && !ctx.signal?.aborted && await ctx.client.endedByShutdown()) {
    const c = ctx.client.closeInfo;
    startError = `the server shut down while attempt ${index} ran (close ${c?.code}` +
      `${c?.reason ? `: ${c.reason}` : ""})`;
  }
  parser.end();
  const t = parser.transcript();
  const stderr = run?.stderr ?? "";
  const durationS = run?.executionTime ?? (performance.now() - t0) / 1000;
  const status = run?.status ?? "error";
  const exitCode = run?.exitCode ?? null;
  const failure = startError
    ? undefined
    : watch.failure ?? classifyFailure(t, { exitCode, status, stderr, signal: run?.signal });
  const answer = t.result?.isError
    ? ""
    : t.result?.text ?? t.assistantText[t.assistantText.length - 1] ?? "";
  const ws = run?.workspace;
  const cwd = ws?.path ?? ctx.cwd;
  const access: FileAccess = ws && run ? remoteFiles(ctx.client, run.jobId, ws.path) : localFiles;
  const files = filesWrittenBy(t, cwd);
  // The echoed marker is ours, not the model's answer: "Contains 4" must not be met by a uuid.
  const ev: Evidence = {
    answer: withoutMarker(answer, marker),
    transcriptText: withoutMarker(t.text, marker),
    toolUses: t.toolUses.map((u) => ({ name: u.name, input: u.input })),
    isError: t.result?.isError ?? false,
    exitCode,
    status,
    cwd,
    filesWritten: files,
    stderr,
    files: access,
  };
  // An error is never judged as an answer: when the CLI or the API failed, every criterion is
  // unmet, with that error as the evidence.
  const judgements = failure
    ? ctx.criteria.map((c) => ({
      criterion: c,
      met: false,
      evidence: `the run failed (${failure.kind}): ${failure.message}`,
    }))
    : await judgeAll(ctx.criteria, ev);
  const existing: string[] = [];
  for (const f of files) {
    if ((await access.stat(f).catch(() => undefined))?.isFile) existing.push(f);
  }
  const allMet = judgements.every((j) => j.met);
  // The graders judge the work only once it ended well and met its criteria.
  const graded = !startError && !failure && allMet && run
    ? await gradeAttempt(ctx.client, run, {
      ...ctx.opts,
      cwd: ctx.cwd,
      task: ctx.task,
      answer: withoutMarker(answer, marker),
      files,
      claude: ctx.claude,
      env: ctx.env,
      signal: ctx.signal,
      progress: ctx.progress,
      tag: {
        label: attemptLabel(ctx, index),
        meta: { suite: "ccx exec", run_id: ctx.runId, attempt: index },
      },
    })
    : {};
  const gradeError = graded.checks?.some((c) => c.status === "error")
    ? "check_error"
    : graded.checks?.some((c) => c.status === "failed")
    ? "check_failed"
    : graded.rubric?.status === "error"
    ? "judge_error"
    : graded.rubric?.status === "failed"
    ? "rubric_failed"
    : undefined;
  const success = !startError && !failure && allMet && !gradeError;
  const errorType: AttemptErrorType | null = startError
    ? "start_error"
    : failure
    ? failure.kind
    : !allMet
    ? "criteria_not_met"
    : gradeError ?? null;
  return {
    index,
    record: {
      prompt,
      status,
      exit_code: exitCode,
      duration_s: round3(durationS),
      error_type: errorType,
      marker_seen: t.text.includes(marker),
      cost_usd: t.result?.costUsd ?? null,
      ...(ws ? { workspace: ws.path } : {}),
      ...(graded.checks ? { checks: graded.checks.map(execCheck) } : {}),
      ...(graded.rubric ? { rubric: execRubric(graded.rubric) } : {}),
    },
    failure,
    startError,
    judgements,
    success,
    answer,
    text: t.text,
    files,
    existing,
    marker,
    ...graded,
    ...(gradeError === "check_error" || gradeError === "judge_error"
      ? {
        graderError: gradeError === "check_error"
          ? checksVerdict(graded.checks!).reason
          : graded.rubric!.reason,
      }
      : {}),
  };
}

/** The progress line of a finished attempt: status, exit, duration, marker, criteria, why. */
export function describeAttempt(a: AttemptOutcome, criteriaCount: number): string {
  const r = a.record;
  const parts = [
    r.status,
    r.exit_code === null ? "no exit code" : `exit ${r.exit_code}`,
    `${r.duration_s.toFixed(1)} s`,
    r.marker_seen ? "marker seen" : "marker NOT seen",
  ];
  if (criteriaCount > 0) {
    parts.push(`${a.judgements.filter((j) => j.met).length}/${criteriaCount} criteria met`);
  }
  const why = a.startError ?? a.failure?.message;
  return `attempt ${a.index}: ${a.success ? "ok" : "failed"} (${parts.join(", ")})` +
    (why ? `: ${why}` : "");
}

// ---------------------------------------------------------------------------------------------
// Choosing among a round's attempts
// ---------------------------------------------------------------------------------------------

/**
 * The attempt a round keeps: the best success by `pick`; else, among those that ended without
 * an error, the one that met the most criteria; else the one whose failure decides what happens
 * next (a `never` failure, a rate limit, another `backoff` failure, the most criteria met).
 */
export async function chooseAttempt(
  round: AttemptOutcome[],
  pick: EvaluationCriterion,
  progress: (line: string) => void,
  hasCriteria: boolean,
  model?: string,
): Promise<AttemptOutcome> {
  if (round.length === 1) return round[0];
  const cands = (ok: (a: AttemptOutcome) => boolean): Candidate[] =>
    round.map((a) => ({
      index: a.index,
      text: withoutMarker(a.text, a.marker), // markers differ; they must not split a consensus
      durationS: a.record.duration_s,
      ok: ok(a),
      model,
      patternsFound: a.judgements.filter((j) => j.met).length,
    }));
  // First among the attempts that succeeded, by the user's criterion; when none did, among those
  // that ended without an error, the one that met the most criteria (the best base to refine).
  const passes = [
    [(a: AttemptOutcome) => a.success, pick, hasCriteria ? "met every criterion" : "succeeded"],
    [(a: AttemptOutcome) => !a.failure && !a.startError, "PATTERN_MATCH", "ended without an error"],
  ] as const;
  for (const [ok, by, what] of passes) {
    const { best, scores } = await pickBest(cands(ok), by);
    if (best) {
      const note = scores.find((s) => s.index === best.index)?.note ?? "";
      const eligible = round.filter(ok).length;
      const how = by === "PATTERN_MATCH" && by !== pick ? "most criteria met" : by;
      progress(
        `picked attempt ${best.index} of ${round.length} by ${how} (${note}; ` +
          `${eligible} ${what})`,
      );
      return round.find((a) => a.index === best.index)!;
    }
  }
  // Nobody ended well: keep the one whose failure decides what happens next.
  const kind = (k: ClaudeFailureKind) => round.find((a) => a.failure?.kind === k);
  const never = round.find((a) => a.failure && FAILURE_POLICIES[a.failure.kind].retry === "never");
  const backoff = round.find((a) =>
    a.failure && FAILURE_POLICIES[a.failure.kind].retry === "backoff"
  );
  const fallback = never ?? kind("rate_limit") ?? backoff ??
    [...round].sort((a, b) =>
      b.judgements.filter((j) => j.met).length - a.judgements.filter((j) => j.met).length ||
      a.index - b.index
    )[0];
  progress(`no attempt of ${round.length} ended well; keeping attempt ${fallback.index}`);
  return fallback;
}

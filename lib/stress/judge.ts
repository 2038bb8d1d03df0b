/**
 * Judging one finished run of a task: the verdict from its exit, its Claude failure kind and
 * its expected patterns ({@linkcode judgeRun}), and its `expected_files` on the disk it ran on
 * ({@linkcode judgeExpectedFiles}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runsClaude } from "./judge.ts";
 * assert.equal(runsClaude({ template: "echo hi" }), false);
 * ```
 * @module
 */

import { resolve as resolvePath } from "node:path";
import { type CcxClient, type CollectedRun, remoteFiles } from "../client/client.ts";
import { type FileAccess, localFiles } from "../verdict/criteria.ts";
import { classifyFailure, type ClaudeFailure, FAILURE_POLICIES } from "../claude/classify.ts";
import { modelText, parseClaudeOutput } from "../claude/stream.ts";
import { matchPatterns } from "../verdict/patterns.ts";
import type { TestStatus } from "./report/model.ts";
import type { ExpectedFile, SuiteTask } from "./suite_model.ts";

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
 * import { runsClaude } from "./judge.ts";
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
 * import { judgeRun } from "./judge.ts";
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
 * import { judgeExpectedFiles } from "./judge.ts";
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
export async function checkFiles(
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

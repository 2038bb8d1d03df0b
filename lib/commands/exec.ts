/**
 * `ccx exec TASK`: parse a cc_execute request (flags override the timeout and retry wish the task
 * text gives; `--criterion` adds to its criteria), run it with {@linkcode execTask}, print the
 * final answer (or the `--json` document) on stdout and progress on stderr, and exit 0 only when
 * every criterion is met.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execCommand } from "./exec.ts";
 * // Needs Claude's CLI, logged in, so the doc tests only type-check it.
 * Deno.test({ name: "execCommand (needs the Claude CLI)", ignore: true }, async () => {
 *   const code = await execCommand({
 *     task: "Create config.py with DATABASE_URL. Evaluate the response based on: 1) File config.py exists",
 *     criteria: [],
 *     cwd: Deno.makeTempDirSync(),
 *     json: false,
 *   });
 *   assert.equal(code, 0); // every criterion met
 * });
 * ```
 * @module
 */

import { parseTaskRequest } from "../verdict/criteria.ts";
import type { HistoryStore } from "../claude/history.ts";
import { openHistory } from "../claude/history_store.ts";
import type { EvaluationCriterion } from "../verdict/pick.ts";
import { ExecInputError } from "../claude/argv.ts";
import { type ExecOptions, execTask } from "../exec/exec.ts";
import { parsePick } from "../exec/setup.ts";
import { type Command, defineCommand, onStopSignals } from "../common/cli.ts";
import { ConfigError } from "../common/config.ts";
import { serverUrl } from "../stress/preflight.ts";
import { checkApiEndpoint } from "../claude/endpoint.ts";

/**
 * Options of `ccx exec`, as `main.ts` passes them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ExecCommandOptions } from "./exec.ts";
 * const o: ExecCommandOptions = { task: "What is 2+2?", criteria: ["Contains 4"], json: true };
 * assert.equal(o.json, true);
 * ```
 */
export interface ExecCommandOptions {
  /** The task, possibly a whole request with timeout, criteria and retry wish in its text. */
  task: string;
  /** `--criterion`, repeatable; added to the criteria parsed from the task (duplicates dropped). */
  criteria: string[];
  /** `--timeout S|auto`; overrides the task's "Expect a timeout of N seconds". */
  timeout?: number | "auto";
  /** `--stall-timeout S`. */
  stallTimeoutS?: number;
  /** `--retries N`; default 2, or 0 when the task says "Do not retry". */
  retries?: number;
  /** `--tools auto|none|A,B,C` (default auto). */
  tools?: string;
  /** `--model`. */
  model?: string;
  /** `--max-turns`. */
  maxTurns?: number;
  /** `--cwd DIR`. */
  cwd?: string;
  /** `--server URL`; default an in-process server. */
  server?: string;
  /** `--token`. */
  token?: string;
  /** `--claude CMD` (or `CCX_CLAUDE`); default `claude` on PATH. */
  claude?: string;
  /** `--json`: print the result document instead of the answer. */
  json: boolean;
  /** `--instances N`. */
  instances?: number;
  /** `--pick CRITERIA` (FASTEST, MOST_DETAILED, …). */
  pick?: string;
  /** `--redis URL` (or `REDIS_URL`): record into a shared Redis history. */
  redisUrl?: string;
  /** `--sandbox` (or `CCX_SANDBOX=1`): set `IS_SANDBOX=1` for the CLI (root on a sandbox box). */
  sandbox?: boolean;
  /** `--check CMD`, repeatable: shell commands that must exit 0 in the run's directory. */
  checks?: string[];
  /** `--check-timeout S` (default 120). */
  checkTimeoutS?: number;
  /** `--rubric TEXT`, repeatable: statements a judge model decides. */
  rubric?: string[];
  /** `--judge-model M`. */
  judgeModel?: string;
  /** `--no-api-check`: do not check that the Claude API endpoint accepts a connection. */
  noApiCheck?: boolean;
}

const encoder = new TextEncoder();
const writeErr = (line: string) => void Deno.stderr.writeSync(encoder.encode(`${line}\n`));

/** `(do not|don't|never|no) retry` or `Retry: no` said as a directive in the request. */
const NO_RETRY_RE =
  /(?:^|[.!?]\s+|\n)\s*(?:(?:do\s+not|don't|never|no)\s+retr(?:y|ies)\b[^.!?\n]*|retry\s*:\s*(?:no|none|false|never|off|0)\b)/i;

/**
 * Whether the request explicitly asks not to retry ("Do not retry.", "Retry: no"). The task
 * parser folds "no retry wish" and "do not retry" into one `retry: false`, so this tells them
 * apart: the phrase must be present and must have been removed from the parsed task.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { saysNoRetry } from "./exec.ts";
 * assert.equal(saysNoRetry("What is 2+2? Do not retry.", "What is 2+2?"), true);
 * assert.equal(saysNoRetry("What is 2+2?", "What is 2+2?"), false);
 * ```
 */
export function saysNoRetry(request: string, parsedTask: string): boolean {
  const m = NO_RETRY_RE.exec(request);
  return m !== null && !parsedTask.includes(m[0].trim().replace(/^[.!?]\s*/, ""));
}

/**
 * Parses `--tools`: `auto`, `none`, or tool names separated by commas or spaces. The result maps
 * to the CLI's `--tools` (`none` to `--tools ""`), which restricts; `--allowedTools none` would not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTools } from "./exec.ts";
 * assert.deepEqual(parseTools("Write, Bash"), ["Write", "Bash"]);
 * assert.equal(parseTools("none"), "none");
 * assert.equal(parseTools(undefined), "auto");
 * ```
 */
export function parseTools(value: string | undefined): "auto" | "none" | string[] {
  const v = (value ?? "auto").trim();
  if (v === "" || v.toLowerCase() === "auto") return "auto";
  if (v.toLowerCase() === "none") return "none";
  return v.split(/[\s,]+/).filter((t) => t !== "");
}

/**
 * Runs `ccx exec`; resolves with the exit code: 0 when every criterion is met (with none, when
 * the run ended without a Claude error), 1 otherwise, 2 for bad input (no task, an unknown
 * `--pick`, a missing Claude CLI, …), 130 after Ctrl+C.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxServer } from "../serve/server.ts";
 * import { execCommand } from "./exec.ts";
 * // A stand-in for Claude's CLI that answers as the real one does with stream-json output.
 * const dir = Deno.makeTempDirSync();
 * const claude = `${dir}/claude`;
 * const answer = '{"type":"result","subtype":"success","is_error":false,"result":"2 + 2 = 4"}';
 * Deno.writeTextFileSync(claude, `#!/bin/sh\necho '${answer}'\n`, { mode: 0o755 });
 * const server = CcxServer.start({ port: 0, log: () => {} }); // or `ccx serve` on a box with Claude
 * const code = await execCommand({
 *   task: "What is 2+2? Do not retry.",
 *   criteria: ["Contains 4"],
 *   server: server.url,
 *   claude,
 *   cwd: dir,
 *   sandbox: true,
 *   json: true, // prints the result document on stdout
 * });
 * assert.equal(code, 0); // every criterion met
 * await server.shutdown();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function execCommand(opts: ExecCommandOptions): Promise<number> {
  const req = parseTaskRequest(opts.task ?? "");
  if (req.task.trim() === "") {
    writeErr("ccx exec: no task given (ccx exec TASK [--criterion TEXT]...)");
    return 2;
  }
  if (req.unparsedCriteria !== undefined) {
    writeErr(
      `ccx exec: TASK names criteria but none could be read from ${
        JSON.stringify(req.unparsedCriteria)
      }; list them after the header ("Evaluate the response based on: 1) Contains 4") or ` +
        "pass --criterion TEXT",
    );
    return 2;
  }
  let pick: EvaluationCriterion | undefined;
  try {
    if (opts.pick !== undefined) pick = parsePick(opts.pick);
  } catch (e) {
    writeErr(`ccx exec: ${(e as Error).message}`);
    return 2;
  }
  if (pick && (opts.instances ?? 1) === 1) {
    writeErr(`ccx exec: --pick ${pick} has no effect without --instances N (N > 1)`);
  }
  const criteria = [...new Set([...req.criteria, ...opts.criteria])];
  const retries = opts.retries ?? (saysNoRetry(opts.task, req.task) ? 0 : undefined);

  // The in-process server runs the CLI here: an unreachable API would cost minutes of silent
  // retries, so it is checked first.
  if (opts.server === undefined && !opts.noApiCheck) {
    const api = await checkApiEndpoint(Deno.env.toObject());
    if (api) {
      writeErr(`ccx exec: cannot run: ${api}`);
      writeErr("ccx exec: nothing was run (exit 3).");
      return 3;
    }
  }

  let history: HistoryStore | undefined;
  try {
    history = await openHistory({ redisUrl: opts.redisUrl });
  } catch (e) {
    writeErr(`ccx exec: warning: timeout history unavailable: ${(e as Error).message}`);
  }

  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) return;
    writeErr("ccx exec: interrupted, canceling the running attempt(s)…");
    controller.abort();
  };
  const releaseSignals = onStopSignals(onSignal);

  const execOpts: ExecOptions = {
    task: req.task,
    criteria,
    timeout: opts.timeout,
    taskTimeoutS: req.timeoutS,
    stallTimeoutS: opts.stallTimeoutS,
    retries,
    tools: parseTools(opts.tools),
    model: opts.model,
    maxTurns: opts.maxTurns,
    cwd: opts.cwd,
    server: opts.server,
    token: opts.token,
    claude: opts.claude ?? (Deno.env.get("CCX_CLAUDE") || undefined),
    instances: opts.instances,
    pick,
    history,
    sandbox: opts.sandbox,
    checks: opts.checks?.length ? opts.checks : undefined,
    checkTimeoutS: opts.checkTimeoutS,
    rubric: opts.rubric?.length ? opts.rubric : undefined,
    judgeModel: opts.judgeModel,
    signal: controller.signal,
    onProgress: (line) => writeErr(`ccx exec: ${line}`),
  };
  try {
    if (criteria.length > 0) {
      writeErr(`ccx exec: criteria: ${criteria.map((c) => JSON.stringify(c)).join(", ")}`);
    }
    const result = await execTask(execOpts);
    if (opts.json) console.log(JSON.stringify(result, null, 2));
    else if (result.result !== "") console.log(result.result);
    const met = result.criteria.filter((c) => c.met).length;
    const checks = result.checks ?? [];
    writeErr(
      `ccx exec: ${result.success ? "success" : "FAILED"}: ` +
        (result.criteria.length ? `${met}/${result.criteria.length} criteria met, ` : "") +
        (checks.length
          ? `${checks.filter((c) => c.status === "passed").length}/${checks.length} checks ` +
            "passed, "
          : "") +
        (result.rubric ? `rubric ${result.rubric.status}, ` : "") +
        `${result.attempts.length} attempt(s), ${result.duration_s.toFixed(1)} s`,
    );
    if (controller.signal.aborted) return 130;
    return result.success ? 0 : 1;
  } catch (e) {
    if (e instanceof ExecInputError) {
      writeErr(`ccx exec: ${e.message}`);
      return 2;
    }
    writeErr(`ccx exec: ${(e as Error).message}`);
    return controller.signal.aborted ? 130 : 1;
  } finally {
    releaseSignals();
    await history?.close().catch(() => {});
  }
}

/** The `ccx exec` declaration: its options, help and how they become {@linkcode ExecCommandOptions}. */
export const exec: Command = defineCommand({
  name: "exec",
  summary: "run one Claude task with success criteria, a timeout from history, and retries",
  args: "TASK",
  positionals: [
    ["TASK", 'the task, or a whole request ("... Expect a timeout of 45 seconds.'],
    ["", 'Evaluate the response based on: 1) File config.py exists ...")'],
  ],
  options: {
    criterion: {
      type: "list",
      arg: "TEXT",
      help: "a success criterion, added to those in TASK",
    },
    check: {
      type: "list",
      arg: "CMD",
      help: "a shell command run after the attempt in its directory; must exit 0",
    },
    "check-timeout": {
      type: "number",
      min: 0.001,
      arg: "S",
      defaultText: "120",
      help: "seconds each --check may run",
    },
    rubric: {
      type: "list",
      arg: "TEXT",
      help: "a statement a judge model (the Claude CLI, no tools) decides on the work",
    },
    "judge-model": {
      type: "string",
      arg: "M",
      defaultText: "the CLI's",
      help: "the model that judges --rubric",
    },
    timeout: {
      type: "number",
      short: "t",
      min: 0.001,
      words: ["auto"],
      arg: "S|auto",
      help: "whole-run timeout per attempt; auto = estimate from history",
    },
    "stall-timeout": {
      type: "number",
      min: 0.001,
      arg: "S",
      help: "seconds without output before an attempt is stopped",
    },
    retries: {
      type: "int",
      min: 0,
      max: 20,
      arg: "N",
      defaultText: "2, or what TASK says",
      help: "retries with a refined prompt",
    },
    tools: {
      type: "string",
      arg: "auto|none|L",
      help: "the CLI's --tools: chosen from the task's verbs, none (--tools \"\"), or a list",
    },
    model: { type: "string", arg: "M", help: "Claude model" },
    "max-turns": {
      type: "int",
      min: 0,
      arg: "N",
      help: "Claude's --max-turns (0 is accepted, as the CLI does)",
    },
    cwd: {
      type: "string",
      arg: "DIR",
      help: "working directory of the run (file criteria are checked there)",
    },
    server: {
      type: "string",
      short: "s",
      env: "CCX_SERVER",
      arg: "URL",
      defaultText: "in-process",
      help: "a ccx server",
    },
    token: { type: "string", env: "CCX_TOKEN", arg: "T", help: "token for the server" },
    claude: {
      type: "string",
      env: "CCX_CLAUDE",
      arg: "CMD",
      defaultText: "claude on PATH",
      help: "the Claude executable",
    },
    json: { type: "boolean", help: "print the result as JSON" },
    instances: {
      type: "int",
      min: 1,
      max: 64,
      arg: "N",
      help: "run N attempts at once and keep the best (with --pick)",
    },
    pick: {
      type: "string",
      arg: "CRITERIA",
      help:
        "FASTEST, MOST_DETAILED, HIGHEST_MODEL_TEMP, PATTERN_MATCH, CONSENSUS, BEST_CODE_QUALITY",
    },
    redis: {
      type: "string",
      env: "REDIS_URL",
      arg: "URL",
      help: "shared timeout history in Redis",
    },
    sandbox: {
      type: "boolean",
      env: "CCX_SANDBOX",
      help: "this box is a sandbox: IS_SANDBOX=1 for the CLI, so it may skip permissions as " +
        "root; as root without it, exec stops before running (exit 2)",
    },
    "no-api-check": {
      type: "boolean",
      env: "CCX_NO_API_CHECK",
      help: "do not check that the Claude API (ANTHROPIC_BASE_URL, else api.anthropic.com) " +
        "accepts a connection before running (in-process server only)",
    },
  },
  notes: [
    "Exit: 0 when every criterion is met (and every --check passed, and the --rubric judge",
    "said pass), 1 otherwise, 2 for bad input, 3 when the Claude API does not accept a",
    "connection (checked first, without --server), 130 after Ctrl+C. A failed check's output",
    "tail goes into the next attempt's prompt; a check that cannot run or a judge without a",
    "verdict stops.",
  ],
  run(o, positionals) {
    if (positionals.length === 0) throw new ConfigError("no TASK given (ccx exec TASK)");
    if (o.server) serverUrl(o.server);
    return execCommand({
      task: positionals.join(" "),
      criteria: o.criterion,
      timeout: o.timeout,
      stallTimeoutS: o["stall-timeout"],
      // Absent: the task text decides ("Do not retry"), else the default of 2.
      retries: o.retries,
      tools: o.tools,
      model: o.model,
      maxTurns: o["max-turns"],
      cwd: o.cwd,
      server: o.server,
      token: o.token,
      claude: o.claude,
      json: o.json,
      instances: o.instances,
      pick: o.pick,
      redisUrl: o.redis,
      sandbox: o.sandbox,
      checks: o.check,
      checkTimeoutS: o["check-timeout"],
      rubric: o.rubric,
      judgeModel: o["judge-model"],
      noApiCheck: o["no-api-check"],
    });
  },
});

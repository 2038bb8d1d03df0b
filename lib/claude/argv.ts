/**
 * Starting Claude Code's CLI: the argv that runs it non-interactively with stream-json output,
 * the tools a task gets, and the error for a CLI executable that is not there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildClaudeArgv, chooseTools } from "./argv.ts";
 * const task = "Create hello.txt";
 * assert.deepEqual(buildClaudeArgv({ claude: "claude", prompt: task, tools: chooseTools(task) }), [
 *   "claude", "-p", "Create hello.txt", "--output-format", "stream-json", "--verbose",
 *   "--tools", "Write,Read",
 * ]);
 * ```
 *
 * @module
 */

/** Options for {@link buildClaudeArgv}. */
export interface ClaudeArgvOptions {
  /** The CLI to run: `claude`, or a path to a stand-in. */
  claude: string;
  /** The prompt, passed as one argv element (no shell, no quoting needed). */
  prompt: string;
  /**
   * The tools the model gets, as `--tools` (the flag the real CLI honours): `"none"` passes
   * `--tools ""` (no tools at all); a list passes `--tools A,B`; absent or empty: no flag (every
   * tool). `--allowedTools none` is never produced: the real CLI reads `none` as a tool name and
   * restricts nothing.
   */
  tools?: string[] | "none";
  /** `--model`. */
  model?: string;
  /** `--max-turns` (0 is accepted, as the real CLI does). */
  maxTurns?: number;
  /** `--dangerously-skip-permissions` (default false). */
  skipPermissions?: boolean;
}

/**
 * The argv that runs Claude non-interactively with stream-json output:
 * `[claude, "-p", prompt, "--output-format", "stream-json", "--verbose", …]`. The prompt is one
 * argv element right after `-p`, so quotes, `$` and backticks reach the CLI untouched and no
 * variadic flag can swallow it. A prompt starting with `-` would be taken for an option, so it
 * goes last, after `--`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildClaudeArgv } from "./argv.ts";
 * assert.deepEqual(buildClaudeArgv({ claude: "claude", prompt: "What is 2+2?", tools: "none" }), [
 *   "claude", "-p", "What is 2+2?", "--output-format", "stream-json", "--verbose", "--tools", "",
 * ]);
 * ```
 */
export function buildClaudeArgv(opts: ClaudeArgvOptions): string[] {
  const dashed = opts.prompt.startsWith("-");
  const argv = [opts.claude, "-p"];
  if (!dashed) argv.push(opts.prompt);
  argv.push("--output-format", "stream-json", "--verbose");
  if (opts.model) argv.push("--model", opts.model);
  if (opts.maxTurns !== undefined) {
    if (!Number.isInteger(opts.maxTurns) || opts.maxTurns < 0) {
      throw new RangeError(`maxTurns must be an integer >= 0, got ${opts.maxTurns}`);
    }
    argv.push("--max-turns", String(opts.maxTurns));
  }
  if (opts.tools === "none") argv.push("--tools", "");
  else if (opts.tools && opts.tools.length > 0) argv.push("--tools", opts.tools.join(","));
  if (opts.skipPermissions) argv.push("--dangerously-skip-permissions");
  if (dashed) argv.push("--", opts.prompt);
  return argv;
}

/**
 * Picks the tools (`--tools`) from the task's verbs, as the seed's cc_execute did, but on whole words
 * (so "truncate" does not mean "run"): create/file → Write; run/execute → Bash;
 * check/verify → Bash and Read; Read always.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseTools } from "./argv.ts";
 * assert.deepEqual(chooseTools("Create a config.py file with DATABASE_URL"), ["Write", "Read"]);
 * assert.deepEqual(chooseTools("Run the tests and verify they pass"), ["Bash", "Read"]);
 * ```
 */
export function chooseTools(task: string): string[] {
  const t = task.toLowerCase();
  const tools: string[] = [];
  const add = (name: string) => {
    if (!tools.includes(name)) tools.push(name);
  };
  if (/\bcreat(?:e|es|ed|ing)\b|\bfiles?\b/.test(t)) add("Write");
  if (/\b(?:run|runs|running|execut(?:e|es|ed|ing))\b/.test(t)) add("Bash");
  if (/\b(?:check|checks|checking|verif(?:y|ies|ied|ying))\b/.test(t)) {
    add("Bash");
    add("Read");
  }
  add("Read");
  return tools;
}

/**
 * Bad input for `ccx exec`: a missing Claude executable, an unknown `pick`, a bad number. The
 * command exits 2 on it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExecInputError } from "./argv.ts";
 * const e = new ExecInputError("instances must be a positive integer");
 * assert.equal(e.name, "ExecInputError");
 * assert.equal(e.message, "instances must be a positive integer");
 * ```
 */
export class ExecInputError extends Error {
  /** Creates the error; `message` is shown to the user as is. */
  constructor(message: string) {
    super(message);
    this.name = "ExecInputError";
  }
}

/**
 * The error for a Claude executable that cannot be found, saying how to point at it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claudeNotFound } from "./argv.ts";
 * assert.match(claudeNotFound("claude").message, /^Claude CLI not found: "claude" is not on PATH\. /);
 * ```
 */
export function claudeNotFound(claude: string, detail?: string): ExecInputError {
  const where = claude.includes("/")
    ? `${JSON.stringify(claude)} does not exist or is not executable`
    : `${JSON.stringify(claude)} is not on PATH`;
  return new ExecInputError(
    `Claude CLI not found: ${detail ?? where}. Install Claude Code ` +
      "(npm install -g @anthropic-ai/claude-code) or point ccx at the executable with " +
      "--claude PATH or the CCX_CLAUDE environment variable.",
  );
}

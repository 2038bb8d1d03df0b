/**
 * What to run for a task: the placeholders a `command_template` may use, and
 * {@linkcode buildTaskCommand}, which turns a task into shell source plus environment (or an
 * argv for the default Claude invocation).
 *
 * Substituted text (the request, the metatags, …) never becomes part of the shell source: each
 * placeholder becomes a quoted reference to an environment variable (`"${CCX_REQUEST}"`) and the
 * values travel in `env`. The shell expands a variable once and never parses its value again,
 * so quotes, `$(…)`, backticks or newlines in a request reach the program verbatim and execute
 * nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import { buildTaskCommand } from "./task_command.ts";
 * const [task] = parseSuite({ tests: [{ id: "t", command: "echo ${MARKER}" }] }, "inline").tasks;
 * assert.deepEqual(buildTaskCommand(task, { marker: "M", timestamp: "20250101_000000" }, { claude: "claude" }), {
 *   command: 'echo "${CCX_MARKER}"',
 *   env: { CCX_MARKER: "M" },
 *   display: "echo M",
 * });
 * ```
 * @module
 */

import type { SuiteTask } from "./suite_model.ts";
import { scanShell, shellQuote } from "./shell_template.ts";

/**
 * The placeholders a `command_template` may use. Each is passed to the command through the
 * environment variable `CCX_<NAME>` (see {@link buildTaskCommand}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TEMPLATE_VARIABLES } from "./task_command.ts";
 * assert.ok(TEMPLATE_VARIABLES.includes("REQUEST"));
 * assert.ok(TEMPLATE_VARIABLES.includes("MARKER"));
 * ```
 */
export const TEMPLATE_VARIABLES = [
  "METATAGS",
  "REQUEST",
  "TIMESTAMP",
  "MARKER",
  "TEMPERATURE",
  "MODEL",
] as const;

/**
 * One of {@link TEMPLATE_VARIABLES}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TEMPLATE_VARIABLES, type TemplateVariable } from "./task_command.ts";
 * const v: TemplateVariable = "REQUEST";
 * assert.ok(TEMPLATE_VARIABLES.includes(v));
 * ```
 */
export type TemplateVariable = typeof TEMPLATE_VARIABLES[number];

/**
 * Per-run values for the placeholders of a task's command.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import { buildTaskCommand, type CommandVars } from "./task_command.ts";
 * const vars: CommandVars = { marker: "MATH_20250101_120000", timestamp: "20250101_120000", model: "haiku" };
 * const [task] = parseSuite({ tests: [{ id: "t", command: "echo ${MODEL}" }] }, "inline").tasks;
 * assert.equal(buildTaskCommand(task, vars, { claude: "claude" }).display, "echo haiku");
 * ```
 */
export interface CommandVars {
  /** `${MARKER}`; also the `[marker:…]` prefix of the default Claude prompt (omitted when empty). */
  marker: string;
  /** `${TIMESTAMP}`. */
  timestamp: string;
  /** `${MODEL}`; with the default Claude command, adds `--model`. Empty when absent. */
  model?: string;
  /** `${TEMPERATURE}`. Empty when absent. The Claude CLI itself has no temperature option. */
  temperature?: number;
}

/**
 * What to run for a task: either `command` (for `/bin/sh -c`, with `env` to add to the job's
 * environment) or `argv` (no shell). `display` is for people (logs, reports): the command with
 * the values written in, not something to execute.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BuiltCommand } from "./task_command.ts";
 * const built: BuiltCommand = { command: 'echo "${CCX_REQUEST}"', env: { CCX_REQUEST: "hi" }, display: 'echo "hi"' };
 * const run = await new Deno.Command("sh", { args: ["-c", built.command!], env: built.env }).output();
 * assert.equal(new TextDecoder().decode(run.stdout), "hi\n"); // the text never passes through the shell's parser
 * ```
 */
export interface BuiltCommand {
  /** Shell source for `/bin/sh -c`. */
  command?: string;
  /** Program and arguments, run without a shell. */
  argv?: string[];
  /** Variables the shell command reads (`CCX_REQUEST`, …); merge them into the job's environment. */
  env?: Record<string, string>;
  /** Human-readable form, values spliced in. Never execute it. */
  display: string;
}

/**
 * Builds what to run for one task (one instance, for a concurrent task).
 *
 * - With a template (`command_template`, or an upstream `command`): returns `{command, env}`.
 *   Each known placeholder is replaced by a reference to `CCX_<NAME>` quoted for the context it
 *   stands in (`${CCX_X}` inside double quotes, `'"${CCX_X}"'` inside single quotes,
 *   `"${CCX_X}"` elsewhere), and `env` carries the values. Run it as `/bin/sh -c command` with
 *   `env` added to (not replacing) the environment. The word `claude` in command position is
 *   replaced by `opts.claude`, shell-quoted, so a stand-in executable can be used.
 * - Without a template (seed tasks that only give a request): returns `argv`, the seed's default
 *   Claude invocation, run without a shell:
 *   `[claude, "-p", "[marker:M] METATAGS REQUEST", "--output-format", "stream-json", "--verbose",
 *   "--dangerously-skip-permissions"]`, plus `--model M` when `vars.model` is given. The seed's
 *   `--allowedTools none` is left out: the real CLI reads `none` as a tool name and restricts
 *   nothing (a template that wants no tools says `--tools ""`); the seed suite's own templates
 *   keep it, as they ask for it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildTaskCommand } from "./task_command.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const suite = parseSuite({ categories: { simple: { tasks: [{
 *   id: "simple_1",
 *   natural_language_request: "What is 2+2?",
 *   command_template: 'claude -p "[marker:${MARKER}] ${REQUEST}" --output-format stream-json --verbose',
 * }] } } }, "inline");
 * const built = buildTaskCommand(suite.tasks[0], { marker: "M1", timestamp: "20250101_000000" }, { claude: "claude" });
 * assert.equal(built.command, 'claude -p "[marker:${CCX_MARKER}] ${CCX_REQUEST}" --output-format stream-json --verbose');
 * assert.deepEqual(built.env, { CCX_MARKER: "M1", CCX_REQUEST: "What is 2+2?" });
 * ```
 */
export function buildTaskCommand(
  task: SuiteTask,
  vars: CommandVars,
  opts: { claude: string },
): BuiltCommand {
  const values: Record<TemplateVariable, string> = {
    METATAGS: task.metatags ?? "",
    REQUEST: task.request ?? "",
    TIMESTAMP: vars.timestamp,
    MARKER: vars.marker,
    TEMPERATURE: vars.temperature === undefined ? "" : String(vars.temperature),
    MODEL: vars.model ?? "",
  };
  if (task.template === undefined) {
    const prompt = [
      vars.marker !== "" ? `[marker:${vars.marker}]` : "",
      values.METATAGS,
      values.REQUEST,
    ]
      .filter((s) => s !== "").join(" ");
    const argv = [
      opts.claude,
      "-p",
      prompt,
      "--output-format",
      "stream-json",
      "--verbose",
      "--dangerously-skip-permissions",
    ];
    if (vars.model !== undefined && vars.model !== "") argv.push("--model", vars.model);
    return { argv, display: argv.map(shellQuote).join(" ") };
  }
  const known = TEMPLATE_VARIABLES as readonly string[];
  const env: Record<string, string> = {};
  let command = "";
  let display = "";
  for (const t of scanShell(task.template)) {
    if (t.kind === "text") {
      command += t.text;
      display += t.text;
    } else if (t.kind === "claude") {
      command += shellQuote(opts.claude);
      display += shellQuote(opts.claude);
    } else if (!known.includes(t.name)) {
      command += t.raw;
      display += t.raw;
    } else {
      const name = t.name as TemplateVariable;
      const ref = `\${CCX_${name}}`;
      env[`CCX_${name}`] = values[name];
      command += t.ctx === "double" ? ref : t.ctx === "single" ? `'"${ref}"'` : `"${ref}"`;
      display += values[name];
    }
  }
  return { command, env, display };
}

/**
 * Whether running the task starts the Claude CLI: a seed task without a template does, and so
 * does a template with `claude` where a command starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import { usesClaude } from "./task_command.ts";
 * const s = parseSuite({ tests: [{ id: "a", command: "echo hi | claude -p x" }, { id: "b", command: "echo hi" }] }, "inline");
 * assert.deepEqual(s.tasks.map(usesClaude), [true, false]);
 * ```
 */
export function usesClaude(task: SuiteTask): boolean {
  return task.template === undefined || scanShell(task.template).some((t) => t.kind === "claude");
}

/**
 * The marker for one run of a task: `verification.marker` with `${TIMESTAMP}` filled in; `""`
 * when the marker is `false`; `<id>_<timestamp>` when it is absent or `true`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSuite } from "./suite_load.ts";
 * import { resolveMarker } from "./task_command.ts";
 * const [task] = parseSuite({ tests: [{ id: "t", command: "true" }] }, "inline").tasks;
 * assert.equal(resolveMarker(task, "20250101_000000"), "t_20250101_000000");
 * ```
 */
export function resolveMarker(task: SuiteTask, timestamp: string): string {
  if (task.marker === false) return "";
  if (typeof task.marker === "string") return task.marker.replaceAll("${TIMESTAMP}", timestamp);
  return `${task.id}_${timestamp}`;
}

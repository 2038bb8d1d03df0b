/**
 * The flags of `ccx stress` (declarations for `common/cli.ts`: type, environment variable,
 * default, bounds, help). `stress.ts` turns the parsed values into its `StressOptions`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STRESS_OPTIONS } from "./stress_flags.ts";
 * assert.equal(STRESS_OPTIONS.concurrency.default, 1);
 * assert.equal(STRESS_OPTIONS.baseline.arg, "PATH|last");
 * ```
 * @module
 */

import { DEFAULT_QUEUE_NAME } from "../fleet/defaults.ts";

/** Every flag of `ccx stress`, in the order `ccx stress --help` lists them. */
export const STRESS_OPTIONS = {
  server: {
    type: "list",
    short: "s",
    env: "CCX_SERVER",
    arg: "URL",
    defaultText: "in-process",
    help: "a ccx server; repeat to spread tasks over several",
  },
  token: { type: "string", env: "CCX_TOKEN", arg: "T", help: "token for the servers" },
  ca: {
    type: "string",
    env: "CCX_CA",
    arg: "FILE",
    help: "PEM certificate of a private CA to trust for wss://",
  },
  concurrency: {
    type: "int",
    short: "c",
    default: 1,
    min: 1,
    max: 1024,
    arg: "N",
    help: "tasks at once",
  },
  repeat: { type: "int", default: 1, min: 1, arg: "N", help: "run every task N times" },
  category: { type: "list", arg: "NAME", help: "only this category" },
  filter: {
    type: "string",
    arg: "RE",
    help: "only tasks whose id or name matches RE (a regular expression, case-insensitive)",
  },
  exclude: { type: "list", arg: "RE", help: "leave out tasks whose id or name matches RE" },
  list: { type: "boolean", help: "print the task runs and their commands; run nothing" },
  "max-fail": {
    type: "int",
    min: 1,
    arg: "N",
    help: "start no more tasks after N failed or errored (the rest are skipped)",
  },
  exitfirst: { type: "boolean", short: "x", help: "stop after the first failure: --max-fail 1" },
  resume: {
    type: "string",
    arg: "DIR",
    help: "continue an interrupted run in DIR (its report.json) without rerunning what finished",
  },
  "last-failed": {
    type: "boolean",
    help: "rerun only the failed and errored tasks of the last run",
  },
  out: {
    type: "string",
    arg: "DIR",
    defaultText: "test_outputs/<run-id>",
    help: "task outputs; report.json goes there too",
  },
  json: { type: "string", arg: "FILE", help: "JSON report" },
  junit: { type: "string", arg: "FILE", help: "JUnit XML report" },
  html: { type: "string", arg: "FILE", help: "one-page HTML report" },
  "pattern-mode": {
    type: "string",
    choices: ["all", "any"],
    default: "all",
    arg: "M",
    help: "whether all or any expected pattern must be found",
  },
  threshold: {
    type: "number",
    default: 10,
    min: 0,
    arg: "R",
    help: "pass ratio needed to graduate; 10 means 10:1",
  },
  "timeout-scale": {
    type: "number",
    default: 1,
    min: 0.01,
    words: ["auto"],
    arg: "X",
    help: "multiply timeouts by X, or auto: x3 when the load average exceeds 14",
  },
  claude: {
    type: "string",
    env: "CCX_CLAUDE",
    arg: "CMD",
    defaultText: "claude on PATH",
    help: "the Claude executable",
  },
  redis: {
    type: "string",
    env: "REDIS_URL",
    arg: "URL",
    help: "record runs in a shared Redis history",
  },
  "no-history": { type: "boolean", help: "do not record runs in the timeout history" },
  sandbox: {
    type: "boolean",
    env: "CCX_SANDBOX",
    help: "this box is a sandbox: Claude tasks get IS_SANDBOX=1, so the CLI may skip " +
      "permissions as root",
  },
  queue: {
    type: "string",
    env: "CCX_QUEUE",
    arg: "URL",
    help: "run on the fleet: enqueue tasks in this redis:// or rediss:// queue for `ccx worker`s",
  },
  "queue-name": {
    type: "string",
    env: "CCX_QUEUE_NAME",
    default: DEFAULT_QUEUE_NAME,
    arg: "Q",
    help: "queue name, shared with `ccx worker --queue-name`",
  },
  "no-workspace": {
    type: "boolean",
    help: "run tasks in the server's directory, not each in its own workspace",
  },
  "keep-workspaces": {
    type: "string",
    choices: ["failed", "always", "never"] as const,
    default: "failed",
    arg: "WHEN",
    help: "which task workspaces the server keeps: failed (exit not 0), always, never",
  },
  validate: { type: "boolean", help: "check the suite and exit (0 valid, 2 not); runs nothing" },
  model: {
    type: "string",
    arg: "M",
    help: "the model of every Claude task (--model, ${MODEL}, ANTHROPIC_MODEL); recorded",
  },
  "judge-model": {
    type: "string",
    arg: "M",
    defaultText: "the CLI's",
    help: "the model that judges rubrics",
  },
  baseline: {
    type: "string",
    arg: "PATH|last",
    help: "compare with an earlier run: its report.json or run directory; last = the " +
      "previous run of this suite",
  },
  "fail-on-regression": {
    type: "boolean",
    help: "exit 1 when a task that passed in the baseline does not now, even if the run " +
      "graduates",
  },
  page: {
    type: "boolean",
    env: "CCX_PAGE",
    help: "print the URL of a web page that shows the run live (its tasks by name, grouped)",
  },
  strict: {
    type: "boolean",
    env: "CCX_STRICT",
    help: "exit 1 when any task failed or errored, whatever the ratio (as pytest does)",
  },
  "no-api-check": {
    type: "boolean",
    env: "CCX_NO_API_CHECK",
    help: "do not check that the Claude API (ANTHROPIC_BASE_URL, else api.anthropic.com) " +
      "accepts a connection before the first Claude task",
  },
  "progress-every": {
    type: "number",
    env: "CCX_PROGRESS_EVERY",
    default: 30,
    min: 0,
    arg: "S",
    help: "not on a terminal: a line for every running task each S seconds (0 never)",
  },
} as const;

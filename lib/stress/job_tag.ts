/**
 * What a suite task's job is called on the server: the `label` and `meta` of its `execute`, so
 * the page, `ccx ps`, `jobs` and the server log tell one task from another and group a run's jobs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskJobTag } from "./job_tag.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const task = parseSuite({ tests: [{ id: "a", name: "first", command: "true" }] }, "x").tasks[0];
 * const tag = taskJobTag(task, "a.r2", { suite: "demo", run_id: "20260101_000000_abc123", run_total: 4 });
 * assert.equal(tag.label, "a.r2 · first");
 * assert.deepEqual([tag.meta.suite, tag.meta.run_total, tag.meta.task_id], ["demo", 4, "a"]);
 * ```
 * @module
 */

import { clip, type JobMeta, toLabel } from "../common/protocol.ts";
import type { SuiteTask } from "./suite_model.ts";

/** The `label` and `meta` params of a task's `execute`. */
export interface JobTag {
  /** `RESULT_ID · NAME` (the name only when it differs from the id). */
  label: string;
  /** The run's facts, then the task's: id, result id, instance, prompt, expected exit. */
  meta: JobMeta;
}

/** Characters of a task's request kept in `meta.prompt` (the page shows it; meta is bounded). */
export const PROMPT_CHARS = 2000;

/**
 * The tag of a task run's job: `rid` is its result id (`.rN` under `--repeat`), `run` what the
 * whole run shares (suite, run id, size), `instance` the 0-based instance of a concurrent task.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskJobTag } from "./job_tag.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const t = parseSuite({ tests: [{ id: "failure_1", command: "exit 1" }] }, "x").tasks[0];
 * assert.equal(taskJobTag(t, "failure_1").meta.expect_exit, "non-zero");
 * ```
 */
export function taskJobTag(
  task: SuiteTask,
  rid: string,
  run: JobMeta = {},
  instance?: number,
): JobTag {
  const id = instance === undefined ? rid : `${rid}.i${instance + 1}`;
  const label = task.name && task.name !== task.id ? `${id} · ${task.name}` : id;
  const meta: JobMeta = { ...run, task_id: task.id, result_id: rid, category: task.category };
  if (instance !== undefined) meta.instance = instance + 1;
  if (task.request) meta.prompt = clip(task.request, PROMPT_CHARS);
  if (task.expectNonZeroExit) meta.expect_exit = "non-zero";
  return { label: toLabel(label), meta };
}

/**
 * Comparing two runs of a suite (`ccx stress --baseline PATH`, `ccx report diff A B`): which
 * tasks regressed (passed before, not now), were fixed, still fail, are new or gone, the counts
 * and ratio before and after, and what differs in what was run (Claude Code versions, models,
 * ccx, the suite, the host). The reports show the result (`report/console.ts`, `json.ts`,
 * `html.ts`).
 *
 * Tasks are matched by id. A run with `--repeat N` is compared per task (its `.rN` results
 * folded): `passed` when every run passed, `flaky` when some did, else `failed` or `error`; only
 * `passed` counts as passing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareRuns } from "./compare.ts";
 * const run = (status: "passed" | "failed") => ({
 *   runId: status, suite: "s", startedAt: new Date(0), durationS: 1, interrupted: false,
 *   threshold: 10, results: [{
 *     id: "t", name: "t", category: "c", status, reason: "", durationS: 1, exitCode: 0,
 *     patternsFound: [], patternsMissing: [], attempts: 1, startedAt: 0,
 *   }],
 * });
 * assert.deepEqual(compareRuns(run("passed"), run("failed")).regressed, [
 *   { id: "t", before: "passed", after: "failed", reason: "" },
 * ]);
 * ```
 * @module
 */

import {
  type ComparedTask,
  type Comparison,
  runFactsOf,
  type RunReport,
  summarize,
  taskIdOf,
  type TestResult,
} from "./report/model.ts";

/** Each task of a run with its status (repeats folded) and the reason of its last non-pass. */
function taskStatuses(r: RunReport): Map<string, { status: string; reason?: string }> {
  const runs = new Map<string, TestResult[]>();
  for (const t of r.results) {
    const id = taskIdOf(t.id, r.repeat);
    const list = runs.get(id) ?? [];
    list.push(t);
    runs.set(id, list);
  }
  const out = new Map<string, { status: string; reason?: string }>();
  for (const [id, list] of runs) {
    const bad = list.filter((t) => t.status !== "passed");
    const status = bad.length === 0
      ? "passed"
      : bad.length < list.length
      ? "flaky"
      : bad.some((t) => t.status === "failed")
      ? "failed"
      : "error";
    out.set(id, bad.length ? { status, reason: bad.at(-1)!.reason } : { status });
  }
  return out;
}

/** `a → b` lines for what differs between two runs' facts. */
function differences(before: RunReport, after: RunReport): string[] {
  const out: string[] = [];
  const fb = runFactsOf(before.results), fa = runFactsOf(after.results);
  const list = (xs: string[]) => xs.length ? xs.join(", ") : "unknown";
  const same = (a: string[], b: string[]) => a.join("\n") === b.join("\n");
  if (!same(fb.claudeVersions, fa.claudeVersions)) {
    out.push(`Claude Code ${list(fb.claudeVersions)} → ${list(fa.claudeVersions)}`);
  }
  if (!same(fb.models, fa.models)) out.push(`models ${list(fb.models)} → ${list(fa.models)}`);
  const mb = before.meta, ma = after.meta;
  if (mb?.ccxVersion !== ma?.ccxVersion) {
    out.push(`ccx ${mb?.ccxVersion ?? "unknown"} → ${ma?.ccxVersion ?? "unknown"}`);
  }
  if (mb?.judgeModel !== ma?.judgeModel) {
    out.push(`judge model ${mb?.judgeModel ?? "default"} → ${ma?.judgeModel ?? "default"}`);
  }
  if (before.suite !== after.suite) out.push(`suite ${before.suite} → ${after.suite}`);
  else if (mb?.suiteHash && ma?.suiteHash && mb.suiteHash !== ma.suiteHash) {
    out.push(`suite file changed (${mb.suiteHash.slice(0, 19)} → ${ma.suiteHash.slice(0, 19)})`);
  }
  if (mb?.host && ma?.host && mb.host !== ma.host) out.push(`host ${mb.host} → ${ma.host}`);
  if ((before.repeat ?? 1) !== (after.repeat ?? 1)) {
    out.push(`repeat ${before.repeat ?? 1} → ${after.repeat ?? 1}`);
  }
  return out;
}

/**
 * How `after` compares with `before` (the baseline); `path` is where the baseline was read.
 * Pure.
 */
export function compareRuns(before: RunReport, after: RunReport, path?: string): Comparison {
  const b = taskStatuses(before), a = taskStatuses(after);
  const c: Comparison = {
    baseline: {
      runId: before.runId,
      suite: before.suite,
      startedAt: before.startedAt,
      ...(path !== undefined ? { path } : {}),
    },
    regressed: [],
    fixed: [],
    stillFailing: [],
    added: [],
    gone: [],
    before: summarize(before.results, before.threshold),
    after: summarize(after.results, after.threshold),
    differences: differences(before, after),
  };
  for (const [id, now] of a) {
    const then = b.get(id);
    const entry: ComparedTask = {
      id,
      ...(then ? { before: then.status } : {}),
      after: now.status,
      ...(now.reason !== undefined ? { reason: now.reason } : {}),
    };
    if (!then) c.added.push(entry);
    else if (then.status === "passed" && now.status !== "passed") c.regressed.push(entry);
    else if (then.status !== "passed" && now.status === "passed") c.fixed.push(entry);
    else if (now.status !== "passed") c.stillFailing.push(entry);
  }
  for (const [id, then] of b) if (!a.has(id)) c.gone.push({ id, before: then.status });
  return c;
}

/** Shared fixtures of the timeout history's tests (history_test.ts, history_store_test.ts). */
import type { Complexity, Outcome, RunRecord } from "../../lib/claude/history.ts";

/** A run record of `durationS` seconds in task class `key` (`complexity:words`). */
export function run(
  durationS: number,
  outcome: Outcome = "success",
  key = "simple:x",
  extra: Partial<RunRecord> = {},
): RunRecord {
  const complexity = key.slice(0, key.indexOf(":")) as Complexity;
  return { key, label: key, complexity, durationS, outcome, at: 1_700_000_000_000, ...extra };
}

/** Runs `fn` in a fresh temp dir, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ccx-history-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

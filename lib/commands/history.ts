/**
 * `ccx history`: list the task classes in the timeout history with their run
 * counts, successes, p50/p90 durations and the timeout `--timeout auto` would
 * pick for each right now.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskClass } from "../claude/history.ts";
 * import { openHistory } from "../claude/history_store.ts";
 * import { historyCommand } from "./history.ts";
 * const path = `${Deno.makeTempDirSync()}/history.sqlite`; // default: the user's state directory
 * const store = await openHistory({ path });
 * await store.record({ ...taskClass("What is 2+2?"), durationS: 8, outcome: "success", at: Date.now() });
 * await store.close();
 * let table = "";
 * assert.equal(await historyCommand({ json: false, path, stdout: (t) => table += t }), 0);
 * assert.match(table, /^COMPLEXITY +RUNS +OK +P50 +P90 +ESTIMATE +CLASS\nsimple +1 +1 +8\.0s +8\.0s /);
 * Deno.removeSync(path);
 * ```
 * @module
 */

import { type ClassSummary, type HistoryStore, loadFactor, systemLoad } from "../claude/history.ts";
import { openHistory } from "../claude/history_store.ts";
import { type Command, defineCommand } from "../common/cli.ts";

/**
 * Options of `ccx history`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { historyCommand, type HistoryCommandOptions } from "./history.ts";
 * const dir = Deno.makeTempDirSync();
 * let out = "";
 * const opts: HistoryCommandOptions = { json: false, path: `${dir}/h.sqlite`, stdout: (t) => out += t };
 * assert.equal(await historyCommand(opts), 0);
 * assert.equal(out, `no runs recorded yet in ${dir}/h.sqlite\n`);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export interface HistoryCommandOptions {
  /** Read the Redis history at this URL instead of the SQLite file. */
  redisUrl?: string;
  /** Print a JSON array of class summaries instead of a table. */
  json: boolean;
  /** SQLite file (default: the user's state dir). */
  path?: string;
  /** Where output goes (default: stdout). Receives whole lines with their `\n`. */
  stdout?: (text: string) => void;
  /** Where errors go (default: stderr). Receives whole lines with their `\n`. */
  stderr?: (text: string) => void;
}

const encoder = new TextEncoder();
const writeStdout = (text: string) => void Deno.stdout.writeSync(encoder.encode(text));
const writeStderr = (text: string) => void Deno.stderr.writeSync(encoder.encode(text));

function seconds(s: number | undefined): string {
  return s === undefined ? "-" : `${s.toFixed(1)}s`;
}

/**
 * Render class summaries as an aligned table (numbers right-aligned, the
 * class label last), one line per class, ending in a newline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatHistoryTable } from "./history.ts";
 * const table = formatHistoryTable([{
 *   key: "simple:<n>", label: "What is 2+2?", complexity: "simple",
 *   count: 4, successes: 3, p50S: 8, p90S: 9.5, estimateS: 30,
 * }]);
 * assert.equal(
 *   table,
 *   "COMPLEXITY  RUNS  OK   P50   P90  ESTIMATE  CLASS\n" +
 *     "simple         4   3  8.0s  9.5s       30s  What is 2+2?\n",
 * );
 * ```
 */
export function formatHistoryTable(classes: readonly ClassSummary[]): string {
  const header = ["COMPLEXITY", "RUNS", "OK", "P50", "P90", "ESTIMATE", "CLASS"];
  const rows = classes.map((c) => [
    c.complexity,
    String(c.count),
    String(c.successes),
    seconds(c.p50S),
    seconds(c.p90S),
    `${c.estimateS}s`,
    c.label,
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const last = header.length - 1;
  return all.map((r) =>
    r.map((cell, i) => {
      if (i === last) return cell;
      return i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]);
    }).join("  ").trimEnd() + "\n"
  ).join("");
}

/**
 * Print the history's classes as a table (or a JSON array with `json`) and
 * return the exit code: 0, or 1 with a message on stderr when the store cannot
 * be opened or read. Estimates include the current system load.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { historyCommand } from "./history.ts";
 * const dir = Deno.makeTempDirSync();
 * let out = "";
 * const code = await historyCommand({ json: true, path: `${dir}/h.sqlite`, stdout: (t) => out += t });
 * assert.equal(code, 0);
 * assert.deepEqual(JSON.parse(out), []); // no classes yet
 * let err = "";
 * const bad = await historyCommand({ json: true, path: "/proc/nowhere/h.sqlite", stderr: (t) => err += t });
 * assert.equal(bad, 1);
 * assert.match(err, /^ccx history: cannot open history file \/proc\/nowhere\/h\.sqlite/);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function historyCommand(opts: HistoryCommandOptions): Promise<number> {
  const out = opts.stdout ?? writeStdout;
  const err = opts.stderr ?? writeStderr;
  let store: HistoryStore;
  try {
    store = await openHistory({ redisUrl: opts.redisUrl, path: opts.path });
  } catch (e) {
    err(`ccx history: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  try {
    const load = systemLoad();
    const classes = await store.classes({ load });
    if (opts.json) {
      out(JSON.stringify(classes, null, 2) + "\n");
    } else if (classes.length === 0) {
      out(`no runs recorded yet in ${store.location}\n`);
    } else {
      out(formatHistoryTable(classes));
      out(
        `\n${classes.length} classes in ${store.location}; estimates at load ${
          load.load1.toFixed(2)
        } on ${load.cores} cores (x${loadFactor(load).toFixed(2)})\n`,
      );
    }
    return 0;
  } catch (e) {
    err(`ccx history: cannot read ${store.location}: ${e instanceof Error ? e.message : e}\n`);
    return 1;
  } finally {
    await store.close().catch(() => {});
  }
}

/** The `ccx history` declaration: its options and help. */
export const history: Command = defineCommand({
  name: "history",
  summary: "list task classes in the timeout history with counts and estimates",
  options: {
    redis: {
      type: "string",
      env: "REDIS_URL",
      arg: "URL",
      help: "read the shared Redis history instead of the local SQLite file",
    },
    json: { type: "boolean", help: "print JSON instead of a table" },
  },
  run(o) {
    return historyCommand({ redisUrl: o.redis, json: o.json });
  },
});

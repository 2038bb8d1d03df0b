/**
 * The rerun loop of `ccx stress`: a `report.json` kept current while the run
 * goes (every change written atomically, so a killed run still lists every
 * task, finished or not), and reading a previous run back for `--resume DIR`
 * and `--last-failed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLastRun, readRun, rememberLastRun } from "./rerun.ts";
 * import { writeReports } from "./report/files.ts";
 * const root = Deno.makeTempDirSync(); // `ccx stress` uses test_outputs/
 * const report = `${root}/20260101_120000_ab12cd/report.json`;
 * await writeReports({
 *   runId: "20260101_120000_ab12cd", suite: "s", startedAt: new Date(0), durationS: 1,
 *   results: [], interrupted: false, threshold: 10,
 * }, { json: report });
 * await rememberLastRun(report, root);
 * const last = await findLastRun(root); // what --last-failed reruns
 * assert.equal(last, report);
 * assert.equal((await readRun(last!)).runId, "20260101_120000_ab12cd");
 * Deno.removeSync(root, { recursive: true });
 * ```
 * @module
 */

import { dirname, join, resolve } from "node:path";
import type { OptionDecls } from "../common/cli.ts";
import { fromJson } from "./report/json.ts";
import { writeReports } from "./report/files.ts";
import type { RunReport } from "./report/model.ts";

/** Where `ccx stress` runs go by default, and where the last run is remembered. */
export const RUNS_DIR = "test_outputs";

/** The file naming the last run's report (relative to the working directory). */
export const LAST_RUN_FILE: string = join(RUNS_DIR, ".last-run");

/**
 * The report path for a `--resume`/`--last-failed` argument: a `report.json`
 * itself, or a run directory holding one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportPathOf } from "./rerun.ts";
 * const run = Deno.makeTempDirSync();
 * assert.equal(await reportPathOf(run), `${run}/report.json`);
 * assert.equal(await reportPathOf(`${run}/report.json`).catch(() => "missing"), "missing");
 * Deno.removeSync(run);
 * ```
 */
export async function reportPathOf(path: string): Promise<string> {
  const st = await Deno.stat(path);
  return st.isDirectory ? join(path, "report.json") : path;
}

/**
 * Reads a previous run's report (a file, or a directory holding `report.json`).
 * Throws an `Error` whose message says what is missing or wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readRun } from "./rerun.ts";
 * import { writeReports } from "./report/files.ts";
 * const run = Deno.makeTempDirSync();
 * await writeReports({
 *   runId: "r1", suite: "s", startedAt: new Date(0), durationS: 1, results: [],
 *   interrupted: true, threshold: 10, skipped: [{ id: "a", name: "a", category: "c", reason: "interrupted" }],
 * }, { json: `${run}/report.json` });
 * const prev = await readRun(run); // what --resume DIR reads
 * assert.deepEqual([prev.results.length, prev.skipped?.length], [0, 1]);
 * await assert.rejects(readRun(`${run}/nowhere`), /^Error: no report\.json at /);
 * Deno.removeSync(run, { recursive: true });
 * ```
 */
export async function readRun(path: string): Promise<RunReport> {
  let file: string;
  let text: string;
  try {
    file = await reportPathOf(path);
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new Error(`no report.json at ${path} (${(e as Error).message})`);
  }
  try {
    return fromJson(text);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/**
 * The last run's report: the one {@linkcode rememberLastRun} recorded, else the
 * newest `test_outputs/<run-id>/report.json`; `undefined` when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLastRun } from "./rerun.ts";
 * assert.equal(await findLastRun("/tmp/nowhere"), undefined);
 * ```
 */
export async function findLastRun(root = RUNS_DIR): Promise<string | undefined> {
  try {
    const named = (await Deno.readTextFile(join(root, ".last-run"))).trim();
    if (named && (await Deno.stat(named).catch(() => undefined))?.isFile) return named;
  } catch {
    // fall back to the newest run directory
  }
  let best: { path: string; mtime: number } | undefined;
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.isDirectory) continue;
      const p = join(root, e.name, "report.json");
      const st = await Deno.stat(p).catch(() => undefined);
      const mtime = st?.mtime?.getTime() ?? 0;
      if (st?.isFile && (!best || mtime > best.mtime)) best = { path: p, mtime };
    }
  } catch {
    return undefined;
  }
  return best?.path;
}

/**
 * The newest earlier run of the suite at `suite` (`--baseline last`): the `report.json` under
 * `root` whose suite is the same file, newest first by start time, other than `except`;
 * `undefined` when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLastRunOf } from "./rerun.ts";
 * assert.equal(await findLastRunOf("tasks/selftest.json", "/nonexistent/runs"), undefined);
 * ```
 */
export async function findLastRunOf(
  suite: string,
  root = RUNS_DIR,
  except?: string,
): Promise<string | undefined> {
  let best: { path: string; at: number } | undefined;
  const want = resolve(suite);
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.isDirectory) continue;
      const p = join(root, e.name, "report.json");
      if (except !== undefined && resolve(p) === resolve(except)) continue;
      let o: { suite?: unknown; started_at?: unknown };
      try {
        o = JSON.parse(await Deno.readTextFile(p));
      } catch {
        continue;
      }
      if (typeof o.suite !== "string" || resolve(o.suite) !== want) continue;
      const at = typeof o.started_at === "string" ? Date.parse(o.started_at) : 0;
      if (!best || at > best.at) best = { path: p, at };
    }
  } catch {
    return undefined;
  }
  return best?.path;
}

/**
 * Records `reportPath` as the last run, for `--last-failed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rememberLastRun } from "./rerun.ts";
 * const root = Deno.makeTempDirSync(); // default: test_outputs
 * await rememberLastRun("test_outputs/run1/report.json", root);
 * assert.equal(Deno.readTextFileSync(`${root}/.last-run`), "test_outputs/run1/report.json\n");
 * Deno.removeSync(root, { recursive: true });
 * ```
 */
export async function rememberLastRun(reportPath: string, root = RUNS_DIR): Promise<void> {
  await Deno.mkdir(root, { recursive: true });
  await Deno.writeTextFile(join(root, ".last-run"), reportPath + "\n");
}

/**
 * Keeps a `report.json` current during a run: {@linkcode LiveReport.update}
 * asks for a write of the latest snapshot; writes never overlap, a burst of
 * updates becomes one write (at most one every `minIntervalMs`), and each write is atomic
 * (temporary file + rename).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LiveReport } from "./rerun.ts";
 * const dir = await Deno.makeTempDir();
 * const live = new LiveReport(`${dir}/report.json`);
 * live.update(() => ({
 *   runId: "r", suite: "s", startedAt: new Date(), durationS: 0, results: [],
 *   interrupted: false, threshold: 10,
 * }));
 * await live.flush();
 * assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/report.json`)).run_id, "r");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class LiveReport {
  #pending: (() => RunReport) | undefined;
  #writing: Promise<void> | undefined;
  #error: unknown;

  /**
   * Writes to `path` (its directory is created), at most one write per `minIntervalMs` (default
   * 200) so a big run does not spend its time serializing reports.
   */
  constructor(readonly path: string, readonly minIntervalMs = 200) {}

  /** Schedules a write of `snapshot()` (taken when the write starts). */
  update(snapshot: () => RunReport): void {
    this.#pending = snapshot;
    this.#writing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending) {
        const take = this.#pending;
        this.#pending = undefined;
        const t0 = performance.now();
        await Deno.mkdir(dirname(this.path), { recursive: true });
        await writeReports(take(), { json: this.path }).catch((e) => this.#error ??= e);
        const rest = this.minIntervalMs - (performance.now() - t0);
        if (this.#pending && rest > 0) await new Promise((r) => setTimeout(r, rest));
      }
    } finally {
      this.#writing = undefined;
    }
  }

  /** Resolves when every scheduled write is done; rejects with the first write error. */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#error) throw this.#error;
  }
}

/** What {@linkcode rerunArgs} keeps of a command line, and which secrets it left out. */
export interface RerunArgs {
  /** The arguments to repeat, unquoted, in the order given. */
  args: string[];
  /** Flags left out because their value is a secret (`--token`, a URL with a password). */
  secrets: string[];
}

/** A URL with a password in it (`redis://:pw@host`), which is never printed back. */
function hasPassword(value: string): boolean {
  try {
    return new URL(value).password !== "";
  } catch {
    return false;
  }
}

/**
 * The arguments of a `ccx stress` command line to repeat in a rerun hint (`ccx stress
 * --last-failed …`, `ccx stress --resume DIR …`): every flag and argument as given, except the
 * flags named in `drop` (with their values) and the secrets: `--token` and any value that is a
 * URL with a password are left out and named in `secrets` (the environment or `./.env` should
 * hold them). Flags are recognized from the command's `options`, so `--out DIR`, `--out=DIR` and
 * `-c 4` keep or lose their value with them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rerunArgs } from "./rerun.ts";
 * const options = {
 *   sandbox: { type: "boolean", help: "" },
 *   out: { type: "string", help: "" },
 *   token: { type: "string", help: "" },
 * } as const;
 * assert.deepEqual(rerunArgs(["s.json", "--sandbox", "--out", "x", "--token", "t"], options, ["out"]), {
 *   args: ["s.json", "--sandbox"],
 *   secrets: ["--token"],
 * });
 * ```
 */
export function rerunArgs(
  args: readonly string[],
  options: OptionDecls,
  drop: readonly string[],
): RerunArgs {
  const out: string[] = [];
  const secrets: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (eq >= 0) inline = a.slice(eq + 1);
    } else if (/^-[^-]$/.test(a)) {
      name = Object.entries(options).find(([, d]) => d.short === a[1])?.[0];
    }
    const decl = name === undefined ? undefined : options[name];
    if (name === undefined || decl === undefined) {
      out.push(a); // a positional, or something the parser will judge again
      continue;
    }
    const takesValue = decl.type !== "boolean";
    const value = takesValue ? (inline ?? args[i + 1]) : undefined;
    const words = takesValue && inline === undefined && i + 1 < args.length ? [a, args[++i]] : [a];
    if (drop.includes(name)) continue;
    if (name === "token" || (value !== undefined && hasPassword(value))) {
      secrets.push(`--${name}`);
      continue;
    }
    out.push(...words);
  }
  return { args: out, secrets };
}

/**
 * What a workspace and confinement cost per job: execute -> process.completed
 * for `argv: ["true"]`, sequentially, without a workspace, with a fresh
 * workspace (keep `never`), and on a server started with `--isolate bwrap`
 * (a workspace and a bubblewrap sandbox for every job).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchWorkspace } from "./workspace.ts";
 * // A full benchmark run: `deno task bench --only workspace`.
 * Deno.test({ name: "benchWorkspace, full size (a benchmark run)", ignore: true }, async () => {
 *   const section = await benchWorkspace({ jobs: 100 });
 *   assert.equal(section.id, "workspace");
 * });
 * ```
 * @module
 */

import { CcxClient } from "../lib/client/client.ts";
import type { ExecuteParams } from "../lib/common/protocol.ts";
import { checkBwrap } from "../lib/serve/isolate.ts";
import { check, fixed, mean, median, progress, quantile, type Section } from "./report.ts";
import { startServerProcess } from "./proc.ts";

/**
 * Options of {@linkcode benchWorkspace}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WorkspaceBenchOptions } from "./workspace.ts";
 * const o: WorkspaceBenchOptions = { jobs: 100, warmup: 5 };
 * assert.equal(o.jobs, 100);
 * ```
 */
export interface WorkspaceBenchOptions {
  /** Jobs per mode, one after the other (default 100). */
  jobs?: number;
  /** Untimed jobs first in each mode (default 5). */
  warmup?: number;
}

async function timed(client: CcxClient, params: ExecuteParams): Promise<number> {
  const t0 = performance.now();
  const job = await client.execute(params);
  const end = await job.done;
  if (end.status !== "completed") throw new Error(`true ended ${end.status}`);
  return performance.now() - t0;
}

async function series(
  args: string[],
  params: ExecuteParams,
  jobs: number,
  warmup: number,
): Promise<number[]> {
  const root = await Deno.makeTempDir({ prefix: "ccx-bench-ws-" });
  const server = await startServerProcess(["--workspace-root", root, ...args]);
  const out: number[] = [];
  try {
    const client = await CcxClient.connect(server.url);
    try {
      for (let i = 0; i < warmup; i++) await timed(client, params);
      for (let i = 0; i < jobs; i++) out.push(await timed(client, params));
    } finally {
      await client.close();
    }
  } finally {
    await server.stop();
    await Deno.remove(root, { recursive: true });
  }
  return out;
}

function row(name: string, ms: number[]): string[] {
  return [
    name,
    String(ms.length),
    fixed(median(ms), 2),
    fixed(quantile(ms, 0.9), 2),
    fixed(mean(ms), 2),
  ];
}

/**
 * The workspace figure: per-job time without a workspace, with one, and under
 * `--isolate bwrap` (skipped, with a note, when bwrap cannot run here).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchWorkspace } from "./workspace.ts";
 * const section = await benchWorkspace({ jobs: 5, warmup: 1 }); // smoke size
 * assert.equal(section.id, "workspace");
 * ```
 */
export async function benchWorkspace(opts: WorkspaceBenchOptions = {}): Promise<Section> {
  const jobs = opts.jobs ?? 100;
  const warmup = opts.warmup ?? 5;
  const argv = ["true"];
  progress(`workspace: ${jobs} jobs without a workspace`);
  const plain = await series([], { argv }, jobs, warmup);
  progress(`workspace: ${jobs} jobs each in a fresh workspace`);
  const ws = await series([], { argv, workspace: { keep: "never" } }, jobs, warmup);
  let bwrap: number[] | undefined;
  const notes = [
    "sequential, one connection, each server a separate process; a workspace is made, listed " +
    "for changed files when the job ends, and removed when the session closes (keep never)",
  ];
  try {
    checkBwrap();
    progress(`workspace: ${jobs} jobs under --isolate bwrap`);
    bwrap = await series(["--isolate", "bwrap"], { argv }, jobs, warmup);
  } catch (e) {
    notes.push(`--isolate bwrap not measured: ${(e as Error).message}`);
  }
  const rows = [row("no workspace", plain), row("workspace: true", ws)];
  if (bwrap) rows.push(row("--isolate bwrap (workspace + sandbox)", bwrap));
  const extra = (ms: number[]) => {
    const d = median(ms) - median(plain);
    return `${d >= 0 ? "+" : ""}${fixed(d, 2)} ms`;
  };
  return {
    id: "workspace",
    title: 'Workspaces: execute -> process.completed for argv ["true"]',
    columns: ["run", "jobs", "median ms", "p90 ms", "mean ms"],
    rows,
    checks: [
      check("workspace cost a job (median)", extra(ws), "(reported)", null),
      ...(bwrap ? [check("bwrap cost a job (median)", extra(bwrap), "(reported)", null)] : []),
    ],
    notes,
    data: { plainMs: plain, workspaceMs: ws, bwrapMs: bwrap ?? null },
  };
}

/**
 * Per-job overhead: the time from an `execute` request to `process.completed`
 * for a job that does nothing (`true`), sequentially and 100 at once on one
 * connection, next to spawning `true` directly with `Deno.Command`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchOverhead } from "./overhead.ts";
 * // A full benchmark run: `deno task bench --only overhead`.
 * Deno.test({ name: "benchOverhead, full size (a benchmark run)", ignore: true }, async () => {
 *   const section = await benchOverhead({ sequential: 200, burst: 100 });
 *   assert.equal(section.id, "overhead");
 * });
 * ```
 * @module
 */

import { CcxClient } from "../lib/client/client.ts";
import { check, fixed, mean, median, progress, quantile, type Section } from "./report.ts";
import { startServerProcess } from "./proc.ts";

/**
 * Options of {@linkcode benchOverhead}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { OverheadOptions } from "./overhead.ts";
 * const o: OverheadOptions = { sequential: 200, burst: 100, warmup: 10 };
 * assert.equal(o.warmup, 10); // jobs run first and not timed
 * ```
 */
export interface OverheadOptions {
  /** Jobs run one after the other (default 200). */
  sequential?: number;
  /** Jobs started at once on one connection (default 100). */
  burst?: number;
  /** Untimed jobs first, so the JIT and the page cache are warm (default 10). */
  warmup?: number;
}

async function oneJob(client: CcxClient): Promise<number> {
  const t0 = performance.now();
  const job = await client.execute({ argv: ["true"] });
  const end = await job.done;
  if (end.status !== "completed") throw new Error(`true ended ${end.status}`);
  return performance.now() - t0;
}

async function directTrue(detached: boolean): Promise<number> {
  const t0 = performance.now();
  // spawn() then output(), as the server does (Command.output() alone takes another path).
  await new Deno.Command("true", { stdin: "null", stdout: "piped", stderr: "piped", detached })
    .spawn().output();
  return performance.now() - t0;
}

function stats(ms: number[]): string[] {
  return [
    String(ms.length),
    fixed(median(ms), 2),
    fixed(quantile(ms, 0.9), 2),
    fixed(quantile(ms, 0.99), 2),
    fixed(mean(ms), 2),
  ];
}

/**
 * Figure 3: execute-to-completed for `argv: ["true"]`. Target: sequential
 * median < 5 ms. The server is a separate process started with
 * `--max-jobs-per-session` above the burst size (the default limit is 32).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchOverhead } from "./overhead.ts";
 * const section = await benchOverhead({ sequential: 20, burst: 10, warmup: 2 }); // smoke size
 * assert.equal(section.id, "overhead");
 * assert.ok(section.checks.length > 0);
 * ```
 */
export async function benchOverhead(opts: OverheadOptions = {}): Promise<Section> {
  const n = opts.sequential ?? 200;
  const burst = opts.burst ?? 100;
  const warmup = opts.warmup ?? 10;
  const server = await startServerProcess([
    "--max-jobs-per-session",
    String(Math.max(burst, 32)),
  ]);
  const seq: number[] = [];
  let burstWall = 0;
  let burstEach: number[] = [];
  try {
    const client = await CcxClient.connect(server.url);
    try {
      progress(`overhead: ${warmup} warm-up jobs, then ${n} sequential`);
      for (let i = 0; i < warmup; i++) await oneJob(client);
      for (let i = 0; i < n; i++) seq.push(await oneJob(client));
      progress(`overhead: ${burst} jobs at once`);
      const t0 = performance.now();
      burstEach = await Promise.all(Array.from({ length: burst }, () => oneJob(client)));
      burstWall = performance.now() - t0;
    } finally {
      await client.close();
    }
  } finally {
    await server.stop();
  }
  progress(`overhead: ${n} direct Deno.Command("true").spawn(), plain and detached`);
  const direct: number[] = [];
  const directDetached: number[] = [];
  for (let i = 0; i < warmup; i++) await directTrue(i % 2 === 0);
  for (let i = 0; i < n; i++) {
    direct.push(await directTrue(false));
    directDetached.push(await directTrue(true));
  }
  const med = median(seq);
  return {
    id: "overhead",
    title: '3. Per-job overhead: execute -> process.completed for argv ["true"]',
    columns: ["run", "jobs", "median ms", "p90 ms", "p99 ms", "mean ms"],
    rows: [
      ["ccx, sequential, one connection", ...stats(seq)],
      ["ccx, all at once, one connection", ...stats(burstEach)],
      ['reference: Deno.Command("true").spawn()', ...stats(direct)],
      ["reference: the same with detached: true", ...stats(directDetached)],
    ],
    checks: [
      check("ccx sequential median", `${fixed(med, 2)} ms`, "< 5 ms", med < 5),
      check(
        `ccx ${burst} at once: wall / jobs`,
        `${fixed(burstWall / burst, 2)} ms (${fixed(burstWall, 0)} ms total)`,
        "(reported)",
        null,
      ),
    ],
    notes: [
      `ccx: ${warmup} untimed warm-up jobs first; the server is a separate process ` +
      `(--max-jobs-per-session ${Math.max(burst, 32)}), the client in this one`,
      `"all at once": each job's own execute -> completed time while ${burst} share the server`,
      `ccx adds ${fixed(med - median(direct), 2)} ms over spawning true directly, ` +
      `${fixed(med - median(directDetached), 2)} ms over spawning it detached (its own ` +
      `process group, as the server does) (medians)`,
    ],
    data: {
      sequentialMs: seq,
      burstMs: burstEach,
      burstWallMs: burstWall,
      directMs: direct,
      directDetachedMs: directDetached,
      medianMs: med,
      directMedianMs: median(direct),
      directDetachedMedianMs: median(directDetached),
    },
  };
}

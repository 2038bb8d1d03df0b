/**
 * `deno task bench`: measures ccx and prints each figure next to its
 * reference and target, as plain tables on stdout (progress goes to stderr).
 * Nothing here asserts: a missed target is reported with ✗.
 *
 * Usage: `deno run -A bench/main.ts [--quick] [--runs N] [--only NAME[,NAME…]] [--json FILE]`
 * where NAME is one of versus, seq, bulk, overhead, memory, stress, workspace, fleet (or
 * throughput = seq,bulk). `versus` compares ccx with the naive executor of bench/naive.ts and
 * prints each ratio beside its goal. `--quick` runs every benchmark at a tiny size in a few seconds and
 * fails on any problem: CI runs it so that a broken benchmark is noticed; its
 * figures mean nothing. `--runs N` runs each benchmark N times and the summary
 * quotes each figure's median run, with the range seen.
 *
 * @example
 * ```sh
 * deno run -A bench/main.ts --only overhead,stress --json bench.json
 * deno task bench --quick
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { type Check, formatChecks, formatSection, progress, type Section } from "./report.ts";
import { SERVER_LAUNCHER, stopAll } from "./proc.ts";
import { benchBulk, benchSeq } from "./throughput.ts";
import { benchOverhead } from "./overhead.ts";
import { benchMemory } from "./memory.ts";
import { benchStress } from "./stress.ts";
import { benchWorkspace } from "./workspace.ts";
import { benchFleet } from "./fleet.ts";
import { benchVersus } from "./versus.ts";

/**
 * The benchmarks by name, in the order they run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BENCHMARKS, QUICK } from "./main.ts";
 * // A full benchmark run: `deno task bench --only overhead` (a smoke-size run of each: QUICK).
 * Deno.test({ name: "BENCHMARKS.overhead (a benchmark run)", ignore: true }, async () => {
 *   const section = await BENCHMARKS.overhead();
 *   assert.equal(section.id, "overhead");
 * });
 * assert.deepEqual(Object.keys(BENCHMARKS), Object.keys(QUICK));
 * ```
 */
export const BENCHMARKS: Record<string, () => Promise<Section>> = {
  versus: () => benchVersus(),
  seq: () => benchSeq(),
  bulk: () => benchBulk(),
  overhead: () => benchOverhead(),
  memory: () => benchMemory(),
  stress: () => benchStress(),
  workspace: () => benchWorkspace(),
  fleet: () => benchFleet(),
};

/**
 * The same benchmarks at smoke-test sizes, for `--quick`: every code path runs (server process,
 * client, raw WebSocket client, runner, stand-in), in a few seconds in all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QUICK } from "./main.ts";
 * const section = await QUICK.overhead(); // its figures mean nothing; that it runs does
 * assert.equal(section.id, "overhead");
 * ```
 */
export const QUICK: Record<string, () => Promise<Section>> = {
  versus: () =>
    benchVersus({
      rounds: 1,
      sequential: 10,
      burst: 10,
      sessions: 4,
      jobsPerSession: 2,
      sleepS: 0.2,
      lines: 20_000,
      lineRounds: 1,
      warmup: 2,
    }),
  seq: () => benchSeq({ runs: 1, lines: 20_000, websocketd: false }),
  bulk: () => benchBulk({ runs: 1, lines: 20_000 }),
  overhead: () => benchOverhead({ sequential: 20, burst: 10, warmup: 2 }),
  memory: () => benchMemory({ bytes: 20e6, bytesPerSecond: 100e6, maxSeconds: 30, direct: true }),
  stress: () => benchStress({ tasks: 4, concurrency: [1, 2], callMs: 20 }),
  workspace: () => benchWorkspace({ jobs: 5, warmup: 1 }),
  fleet: () => benchFleet({ tasks: 20, workers: [1, 2], lockS: 1 }),
};

const ALIASES: Record<string, string[]> = { throughput: ["seq", "bulk"] };

const USAGE = `usage: deno task bench [--quick] [--runs N] [--only NAME[,NAME...]] [--json FILE]

  --quick       every benchmark at a tiny size, in seconds; exits 1 on any problem (for CI:
                the figures mean nothing)
  --runs N      run each benchmark N times; the summary quotes the median run (default 1)
  --only NAME   run only these: ${Object.keys(BENCHMARKS).join(", ")} (throughput = seq,bulk)
  --json FILE   also save every figure (and the raw numbers) as JSON
`;

/**
 * Where and on what the benchmarks ran.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { machine } from "./main.ts";
 * const m = machine(); // { deno: "2.9.6", os: "linux …", cpus: 2, cpu: "…", memoryGiB: 7.8, … }
 * assert.equal(m.deno, Deno.version.deno);
 * assert.equal(m.cpus, navigator.hardwareConcurrency);
 * ```
 */
export function machine(): Record<string, string | number> {
  let cpu = "unknown";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpu;
  } catch { /* not Linux */ }
  let websocketd = "not installed";
  try {
    const out = new Deno.Command("websocketd", { args: ["--version"], stderr: "piped" })
      .outputSync();
    websocketd = new TextDecoder().decode(out.stdout).trim().split("\n")[0] || "installed";
  } catch { /* missing */ }
  let load = "unknown";
  try {
    load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch { /* not Linux */ }
  return {
    deno: Deno.version.deno,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    cpus: navigator.hardwareConcurrency,
    cpu,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    websocketd,
    loadAverage: load,
  };
}

/**
 * One check per name over several runs of a benchmark: the run whose value (its leading number)
 * is the median, lower median for an even count, with the range of values seen. A value that
 * is not a number sorts last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { medianChecks } from "./main.ts";
 * const c = (v: string) => [{ name: "median", value: v, target: "< 5 ms", ok: true }];
 * assert.equal(
 *   medianChecks([c("4.1 ms"), c("6.0 ms"), c("4.8 ms")])[0].value,
 *   "4.8 ms (median of 3; range 4.1 ms – 6.0 ms)",
 * );
 * ```
 */
export function medianChecks(runs: Check[][]): Check[] {
  if (runs.length <= 1) return runs[0] ?? [];
  const num = (c: Check) => {
    const n = parseFloat(c.value);
    return Number.isFinite(n) ? n : Infinity;
  };
  return runs[0].map((first) => {
    const seen = runs.map((r) => r.find((c) => c.name === first.name)).filter((c) =>
      c !== undefined
    )
      .sort((a, b) => num(a) - num(b));
    const mid = seen[Math.floor((seen.length - 1) / 2)];
    const range = `${seen[0].value} – ${seen.at(-1)!.value}`;
    return { ...mid, value: `${mid.value} (median of ${seen.length}; range ${range})` };
  });
}

/**
 * Parses the arguments, runs the selected benchmarks, prints their tables and
 * a summary, and saves JSON when asked. Resolves with the exit code (0 unless
 * the arguments were wrong or a benchmark crashed, or with `--quick` reported a
 * problem; missed targets are reported, not failed). `tables` replaces the
 * benchmarks (for tests).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "./main.ts";
 * import { check, type Section } from "./report.ts";
 * const demo = (): Promise<Section> => Promise.resolve({
 *   id: "demo", title: "Demo", columns: [], rows: [], checks: [check("speed", "1 s", "< 2 s", true)],
 *   notes: [], data: {},
 * });
 * // `tables` stands in for the benchmarks; `deno task bench` passes none.
 * assert.equal(await main(["--only", "demo"], { full: { demo }, quick: { demo } }), 0); // prints the tables
 * assert.equal(await main(["--only", "nope"], { full: { demo }, quick: { demo } }), 2);
 * ```
 */
export async function main(
  args: string[],
  tables: { full: typeof BENCHMARKS; quick: typeof QUICK } = { full: BENCHMARKS, quick: QUICK },
): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        only: { type: "string", multiple: true },
        quick: { type: "boolean" },
        runs: { type: "string" },
        json: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const wanted = (values.only ?? Object.keys(tables.full))
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .flatMap((s) => ALIASES[s] ?? [s]);
  const unknown = wanted.filter((w) => !(w in tables.full));
  if (unknown.length) {
    console.error(`unknown benchmark: ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  const names = Object.keys(tables.full).filter((k) => wanted.includes(k));
  const runs = Number(values.runs ?? 1);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(
      `--runs: expected a whole number of at least 1, got "${values.runs}"\n\n${USAGE}`,
    );
    return 2;
  }

  const info = machine();
  const startedAt = new Date();
  console.log(
    `ccx bench${
      values.quick ? " --quick (smoke test: tiny sizes, the figures mean nothing)" : ""
    }` +
      ` — ${startedAt.toISOString()}\n` +
      `  deno ${info.deno}, ${info.os}, ${info.cpus} CPUs (${info.cpu}), ` +
      `${info.memoryGiB} GiB RAM; websocketd: ${info.websocketd}\n` +
      `  load average at start: ${info.loadAverage}\n`,
  );
  const sections: Section[] = [];
  const checks: Check[] = [];
  let crashed = false;
  const t0 = performance.now();
  for (const name of names) {
    const mine: Section[] = [];
    for (let run = 1; run <= runs; run++) {
      const label = runs > 1 ? `${name} (run ${run} of ${runs})` : name;
      progress(`${label}: starting`);
      const s0 = performance.now();
      let section: Section;
      try {
        section = await (values.quick ? tables.quick : tables.full)[name]();
      } catch (e) {
        crashed = true;
        section = {
          id: name,
          title: `${name}: could not be measured`,
          columns: ["error"],
          rows: [[String((e as Error).stack ?? e)]],
          checks: [],
          notes: [],
          data: { error: String(e) },
        };
      } finally {
        await stopAll();
      }
      progress(`${label}: done in ${((performance.now() - s0) / 1000).toFixed(1)} s`);
      mine.push(section);
      console.log((runs > 1 ? `[run ${run} of ${runs}] ` : "") + formatSection(section) + "\n");
    }
    sections.push(...mine);
    checks.push(
      ...medianChecks(mine.map((s) => s.checks)).map((c) => ({ ...c, name: `${name}: ${c.name}` })),
    );
  }
  const totalS = (performance.now() - t0) / 1000;
  console.log(
    `Summary (${totalS.toFixed(0)} s in all${
      runs > 1 ? `; each figure: the median of ${runs} runs` : ""
    })\n`,
  );
  console.log(formatChecks(checks));
  console.log(`\n  server process: ${SERVER_LAUNCHER}`);
  console.log(`  load average at start: ${info.loadAverage}; at the end: ${machine().loadAverage}`);
  // A quick run is a smoke test: a benchmark that reports a problem is broken.
  const problems = values.quick
    ? sections.flatMap((s) =>
      s.notes.filter((n) => n.startsWith("PROBLEM")).map((n) => `${s.id}: ${n}`)
    )
    : [];
  for (const p of problems) console.error(p);
  if (values.json) {
    const doc = {
      startedAt: startedAt.toISOString(),
      seconds: totalS,
      machine: info,
      runs,
      summary: checks,
      sections,
    };
    await Deno.writeTextFile(values.json, JSON.stringify(doc, null, 2) + "\n");
    progress(`figures saved to ${values.json}`);
  }
  return crashed || problems.length > 0 ? 1 : 0;
}

if (import.meta.main) {
  const onSignal = () => {
    progress("interrupted: stopping the processes the benchmarks started");
    stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await main(Deno.args);
  } finally {
    await stopAll();
  }
  Deno.exit(code);
}

/**
 * `deno task bench`: measures ccx and prints each figure next to its
 * reference and target, as plain tables on stdout (progress goes to stderr).
 * Nothing here asserts: a missed target is reported with ✗.
 *
 * Usage: `deno run -A bench/main.ts [--only NAME[,NAME…]] [--json FILE]`
 * where NAME is one of seq, bulk, overhead, memory, stress, fleet (or throughput =
 * seq,bulk).
 *
 * @example
 * ```ts
 * // deno run -A bench/main.ts --only overhead,stress --json bench.json
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { formatChecks, formatSection, progress, type Section } from "./report.ts";
import { SERVER_LAUNCHER, stopAll } from "./proc.ts";
import { benchBulk, benchSeq } from "./throughput.ts";
import { benchOverhead } from "./overhead.ts";
import { benchMemory } from "./memory.ts";
import { benchStress } from "./stress.ts";
import { benchFleet } from "./fleet.ts";

/**
 * The benchmarks by name, in the order they run.
 *
 * @example
 * ```ts
 * import { BENCHMARKS } from "./main.ts";
 * const section = await BENCHMARKS.overhead();
 * ```
 */
export const BENCHMARKS: Record<string, () => Promise<Section>> = {
  seq: () => benchSeq(),
  bulk: () => benchBulk(),
  overhead: () => benchOverhead(),
  memory: () => benchMemory(),
  stress: () => benchStress(),
  fleet: () => benchFleet(),
};

const ALIASES: Record<string, string[]> = { throughput: ["seq", "bulk"] };

const USAGE = `usage: deno task bench [--only NAME[,NAME...]] [--json FILE]

  --only NAME   run only these: ${Object.keys(BENCHMARKS).join(", ")} (throughput = seq,bulk)
  --json FILE   also save every figure (and the raw numbers) as JSON
`;

/**
 * Where and on what the benchmarks ran.
 *
 * @example
 * ```ts
 * import { machine } from "./main.ts";
 * console.log(machine().cpus);
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
 * Parses the arguments, runs the selected benchmarks, prints their tables and
 * a summary, and saves JSON when asked. Resolves with the exit code (0 unless
 * the arguments were wrong or a benchmark crashed; missed targets are
 * reported, not failed).
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const code = await main(["--only", "overhead"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        only: { type: "string", multiple: true },
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
  const wanted = (values.only ?? Object.keys(BENCHMARKS))
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .flatMap((s) => ALIASES[s] ?? [s]);
  const unknown = wanted.filter((w) => !(w in BENCHMARKS));
  if (unknown.length) {
    console.error(`unknown benchmark: ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  const names = Object.keys(BENCHMARKS).filter((k) => wanted.includes(k));

  const info = machine();
  const startedAt = new Date();
  console.log(
    `ccx bench — ${startedAt.toISOString()}\n` +
      `  deno ${info.deno}, ${info.os}, ${info.cpus} CPUs (${info.cpu}), ` +
      `${info.memoryGiB} GiB RAM; websocketd: ${info.websocketd}\n` +
      `  load average at start: ${info.loadAverage}\n`,
  );
  const sections: Section[] = [];
  let crashed = false;
  const t0 = performance.now();
  for (const name of names) {
    progress(`${name}: starting`);
    const s0 = performance.now();
    let section: Section;
    try {
      section = await BENCHMARKS[name]();
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
    progress(`${name}: done in ${((performance.now() - s0) / 1000).toFixed(1)} s`);
    sections.push(section);
    console.log(formatSection(section) + "\n");
  }
  const totalS = (performance.now() - t0) / 1000;
  const checks = sections.flatMap((s) =>
    s.checks.map((c) => ({ ...c, name: `${s.id}: ${c.name}` }))
  );
  console.log(`Summary (${totalS.toFixed(0)} s in all)\n`);
  console.log(formatChecks(checks));
  console.log(`\n  server process: ${SERVER_LAUNCHER}`);
  if (values.json) {
    const doc = { startedAt: startedAt.toISOString(), seconds: totalS, machine: info, sections };
    await Deno.writeTextFile(values.json, JSON.stringify(doc, null, 2) + "\n");
    progress(`figures saved to ${values.json}`);
  }
  return crashed ? 1 : 0;
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

/**
 * A stand-in for `main.ts serve --port 0 --quiet`, used by the benchmarks only
 * when main.ts cannot be loaded (for example while a command module is being
 * written). It runs the same `serveCommand` on 127.0.0.1.
 *
 * Usage: `deno run -A bench/serve_child.ts [--max-jobs-per-session N]`
 *
 * @example
 * ```ts
 * // deno run -A bench/serve_child.ts --max-jobs-per-session 128
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { serveCommand } from "../lib/commands/serve.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { "max-jobs-per-session": { type: "string" } },
    strict: false,
  });
  const jobs = values["max-jobs-per-session"];
  Deno.exit(
    await serveCommand({
      host: "127.0.0.1",
      port: 0,
      log: () => {},
      maxJobsPerSession: typeof jobs === "string" ? Number(jobs) : undefined,
    }),
  );
}

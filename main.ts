/**
 * ccx: run AI coding CLIs (and any command) unattended and at volume.
 * This file only dispatches; each command declares its options, help and
 * behaviour once, in `lib/commands/`.
 *
 * @example
 * ```sh
 * deno run -A main.ts serve --port 8004
 * deno run -A main.ts run -- echo hello
 * ```
 * @module
 */

import { VERSION } from "./lib/common/protocol.ts";
import { type Command, dispatch } from "./lib/common/cli.ts";
import { serve } from "./lib/commands/serve.ts";
import { run } from "./lib/commands/run.ts";
import { stress } from "./lib/commands/stress.ts";
import { exec } from "./lib/commands/exec.ts";
import { history } from "./lib/commands/history.ts";
import { worker } from "./lib/commands/worker.ts";
import { mockApi } from "./lib/commands/mock_api.ts";
import { ps } from "./lib/commands/ps.ts";
import { logs } from "./lib/commands/logs.ts";
import { cancel } from "./lib/commands/cancel.ts";
import { report } from "./lib/commands/report.ts";

/** Every command, in the order `ccx --help` lists them. */
export const COMMANDS: readonly Command[] = [
  serve,
  run,
  stress,
  exec,
  ps,
  logs,
  cancel,
  report,
  history,
  worker,
  mockApi,
];

/** Parses `args` and runs the command; resolves with the exit code. */
export function main(args: string[]): Promise<number> {
  return dispatch(COMMANDS, args, {
    title: `ccx ${VERSION}: run AI coding CLIs (and any command) unattended and at volume`,
    version: `ccx ${VERSION}`,
  });
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

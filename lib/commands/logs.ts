/**
 * `ccx logs JOB [-f]`: a job's output as the server keeps it (the end of it, up to its tail
 * size), then with `--follow` what it writes until it ends; for any session's job, as the web
 * page shows it. The job's stdout goes to stdout and its stderr to stderr.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient, runToEnd } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { logsCommand } from "./logs.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const client = await CcxClient.connect(server.url);
 * await runToEnd(client, { command: "echo built", job_id: "build-42" });
 * assert.equal(await logsCommand({ server: server.url, job: "build-42", follow: true }), 0); // prints "built"
 * await client.close();
 * await server.shutdown();
 * ```
 * @module
 */

import { findJob } from "../client/watcher.ts";
import { type Command, defineCommand } from "../common/cli.ts";
import { ConfigError, readPemFile } from "../common/config.ts";
import { OBSERVE_EXIT_NOTE, OBSERVE_OPTIONS, type ObserveOptions, observing } from "./ps.ts";

/** Options of `ccx logs`. */
export interface LogsOptions extends ObserveOptions {
  /** The job: its id, a unique prefix of it, `SESSION/JOB`, or its label. */
  job: string;
  /** Keep printing what the job writes until it ends. */
  follow?: boolean;
}

const enc = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = enc.encode(text);
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

/**
 * Runs `ccx logs`; resolves with the exit code: 0 shown (with `follow`, once the job ended),
 * 1 no such job (or more than one match), 3 the server could not be observed or went away.
 */
export function logsCommand(o: LogsOptions): Promise<number> {
  return observing("logs", o, async (w) => {
    const job = findJob((await w.snapshot()).jobs, o.job);
    await w.follow(job, {
      output: (type, data) => writeAll(type === "stdout" ? Deno.stdout : Deno.stderr, data),
      truncated: () =>
        console.error(
          "ccx logs: (the server kept only the end of this job's output; the start is gone)",
        ),
      skipped: (n) => console.error(`ccx logs: (${n} characters skipped: this client fell behind)`),
    }, o.follow === true);
    return 0;
  });
}

/** The `ccx logs` declaration. */
export const logs: Command = defineCommand({
  name: "logs",
  summary: "print a job's output (any session's, as the page shows it); -f follows it",
  args: "JOB",
  positionals: [["JOB", "a job id from ccx ps, a unique prefix of it, SESSION/JOB, or a label"]],
  options: {
    ...OBSERVE_OPTIONS,
    follow: {
      type: "boolean",
      short: "f",
      help: "keep printing what the job writes until it ends",
    },
  },
  notes: [
    "The job's stdout goes to stdout, its stderr to stderr. The server keeps the last 128 KiB",
    "of each job's output (and finished jobs for a while, see ccx serve --keep-finished).",
    `Exit: 0 shown (with -f: once the job ended); 1 no such job, or several match; ${OBSERVE_EXIT_NOTE}`,
  ],
  run(o, positionals) {
    if (positionals.length !== 1) {
      throw new ConfigError(
        positionals.length === 0
          ? "which job? give its id (see ccx ps)"
          : `one job at a time, got ${positionals.length}`,
      );
    }
    return logsCommand({
      job: positionals[0],
      follow: o.follow,
      server: o.server,
      token: o.token,
      ca: readPemFile("ca", o.ca),
    });
  },
});

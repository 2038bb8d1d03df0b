/**
 * `ccx cancel JOB...`: cancels jobs of any session of a server, as the page's CANCEL does (the
 * job's whole process group ends: SIGTERM, the server's grace period, SIGKILL), and waits until
 * each has ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CcxClient } from "../client/client.ts";
 * import { CcxServer } from "../serve/server.ts";
 * import { cancelCommand } from "./cancel.ts";
 * const server = CcxServer.start({ port: 0, log: () => {} });
 * const client = await CcxClient.connect(server.url);
 * const job = await client.execute({ command: "sleep 30", job_id: "build-42" });
 * assert.equal(await cancelCommand({ server: server.url, jobs: ["build-42"] }), 0); // prints "canceled build-42 …"
 * assert.equal((await job.done).status, "canceled");
 * assert.equal(await cancelCommand({ server: server.url, jobs: ["build-43"] }), 1); // no such job
 * await client.close();
 * await server.shutdown();
 * ```
 * @module
 */

import { findJob, jobTitle, WatcherError } from "../client/watcher.ts";
import { type Command, defineCommand } from "../common/cli.ts";
import { ConfigError, readPemFile } from "../common/config.ts";
import {
  fmtElapsed,
  OBSERVE_EXIT_NOTE,
  OBSERVE_OPTIONS,
  type ObserveOptions,
  observing,
} from "./ps.ts";

/** Options of `ccx cancel`. */
export interface CancelOptions extends ObserveOptions {
  /** The jobs: ids, unique prefixes, `SESSION/JOB`s or labels. */
  jobs: string[];
  /** How long to wait for each job to end, seconds (default 60). */
  waitS?: number;
}

/**
 * Runs `ccx cancel`; resolves with the exit code: 0 every job was canceled and has ended, 1 a
 * job was not found, had already ended or did not end in time, 3 the server could not be
 * observed.
 */
export function cancelCommand(o: CancelOptions): Promise<number> {
  return observing("cancel", o, async (w) => {
    const { jobs } = await w.snapshot();
    let code = 0;
    // Every name is resolved before anything is canceled: a typo cancels nothing.
    const chosen = o.jobs.map((spec) => findJob(jobs, spec));
    for (const job of chosen) {
      const name = `${job.job_id} (${jobTitle(job).replace(/\s+/g, " ")})`;
      try {
        const end = await w.cancel(job, (o.waitS ?? 60) * 1000);
        if (!end) {
          console.error(
            `ccx cancel: ${name}: canceled, but it had not ended after ${o.waitS ?? 60} s`,
          );
          code = 1;
          continue;
        }
        const exit = end.signal ? `signal ${end.signal}` : `exit ${end.exit_code}`;
        console.log(
          `canceled ${name}: ${end.status} after ${fmtElapsed(end.elapsed)} (${exit}), ` +
            `pid ${end.pid} and its process group ended`,
        );
      } catch (e) {
        if (!(e instanceof WatcherError) || e.kind !== "job") throw e;
        const st = job.state === "done" ? ` (${job.status}, exit ${job.exit_code})` : "";
        console.error(`ccx cancel: ${e.message}${st}`);
        code = 1;
      }
    }
    return code;
  });
}

/** The `ccx cancel` declaration. */
export const cancel: Command = defineCommand({
  name: "cancel",
  summary: "cancel jobs of any session of a server (their process groups end), as the page does",
  args: "JOB...",
  positionals: [["JOB", "a job id from ccx ps, a unique prefix of it, SESSION/JOB, or a label"]],
  options: {
    ...OBSERVE_OPTIONS,
    wait: {
      type: "number",
      default: 60,
      min: 0.1,
      arg: "S",
      help: "seconds to wait for each job to end",
    },
  },
  notes: [
    "Every JOB is looked up first: if one is unknown or ambiguous, nothing is canceled.",
    `Exit: 0 canceled and ended; 1 no such job, several match, already ended, or not ended in`,
    `time; ${OBSERVE_EXIT_NOTE}`,
  ],
  run(o, positionals) {
    if (positionals.length === 0) throw new ConfigError("which job? give its id (see ccx ps)");
    return cancelCommand({
      jobs: positionals,
      waitS: o.wait,
      server: o.server,
      token: o.token,
      ca: readPemFile("ca", o.ca),
    });
  },
});

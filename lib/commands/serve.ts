/**
 * `ccx serve`: run the server until SIGINT/SIGTERM, then end every job's group,
 * wait for them, and exit.
 *
 * @example
 * ```ts
 * import { serveCommand } from "./serve.ts";
 * const code = await serveCommand({ port: 8004 }); // returns after a signal
 * ```
 * @module
 */

import { CcxServer, type ServerOptions } from "../server.ts";

/** Starts the server, prints where it listens, and resolves with the exit code after a signal. */
export async function serveCommand(opts: ServerOptions): Promise<number> {
  const server = CcxServer.start({
    ...opts,
    onListen: () => {},
  });
  const auth = opts.token ? " (token required)" : "";
  console.log(
    `ccx serve listening on ${server.url} and /ws/mcp, health at ${server.httpUrl}/health${auth}`,
  );
  const stop = () => {
    console.error("[ccx] shutting down: ending every job");
    void server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}

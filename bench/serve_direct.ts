/**
 * `ccx serve` with a second, direct door, for measuring what the connection
 * gate (lib/serve/gate.ts) costs: the same build, the same process, the same
 * HTTP handler, reached once through the gate (`listening on ws://…`, as
 * always) and once straight through `Deno.serve` on a TCP port of its own
 * (`direct on ws://…`), with no relay in between. Only the benchmarks use it:
 * the direct door has none of the gate's protections.
 *
 * Usage: `deno run -A bench/serve_direct.ts serve --port 0 --quiet …` (the
 * arguments of `ccx serve`).
 *
 * @example
 * ```sh
 * deno run -A bench/serve_direct.ts serve --port 0 --quiet
 * # listening on ws://127.0.0.1:40001/ws
 * # direct on ws://127.0.0.1:40002/ws
 * ```
 * @module
 */

import { main } from "../main.ts";

type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

const serve = Deno.serve;
// The server's HTTP handler is given to Deno.serve with a Unix socket path (behind the gate):
// serve the same handler on a TCP port too.
(Deno as unknown as { serve: unknown }).serve = (
  opts: Deno.ServeOptions & { path?: string },
  handler: Handler,
) => {
  if (typeof opts === "object" && opts.path !== undefined) {
    serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: (a) => console.log(`direct on ws://127.0.0.1:${a.port}/ws`),
    }, handler);
  }
  return serve(opts as Deno.ServeUnixOptions, handler);
};

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

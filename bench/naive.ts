/**
 * The floor every per-job figure of `deno task bench` is measured against: the
 * obvious executor, in about 40 lines. `Deno.serve`, its native WebSocket, each
 * `execute` run as `setsid sh -c COMMAND` (or `setsid ARGV…`), one
 * `process.output` message per line, then `process.completed`. Nothing else: no
 * limits, no journal, no logs, no backpressure, no timeouts, no gate.
 *
 * Run as a script it listens on 127.0.0.1 and prints `listening on ws://…/ws`
 * (`deno run -A bench/naive.ts [PORT]`, default 0: a free port).
 *
 * @example
 * ```ts
 * import { serveNaive } from "./naive.ts";
 * const server = serveNaive(0);
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 * @module
 */

/**
 * Starts the naive executor on 127.0.0.1:`port`.
 *
 * @example
 * ```ts
 * import { serveNaive } from "./naive.ts";
 * const server = serveNaive(0, () => {});
 * await server.shutdown();
 * ```
 */
export function serveNaive(
  port: number,
  onListen: (addr: Deno.NetAddr) => void = () => {},
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    const send = (msg: unknown) => socket.readyState === 1 && socket.send(JSON.stringify(msg));
    socket.onmessage = async (ev) => {
      const { id, params } = JSON.parse(ev.data);
      const argv = params.argv ?? ["sh", "-c", params.command];
      const child = new Deno.Command("setsid", {
        args: argv,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const jobId = params.job_id ?? crypto.randomUUID();
      send({ jsonrpc: "2.0", id, result: { status: "started", job_id: jobId, pid: child.pid } });
      const pump = async (stream: ReadableStream<Uint8Array>, type: string) => {
        let seq = 0;
        let rest = "";
        for await (const text of stream.pipeThrough(new TextDecoderStream())) {
          const lines = (rest + text).split(/(?<=\n)/);
          rest = lines.at(-1)!.endsWith("\n") ? "" : lines.pop()!;
          for (const data of lines) {
            send({
              jsonrpc: "2.0",
              method: "process.output",
              params: { job_id: jobId, type, data, seq: seq++ },
            });
          }
        }
        if (rest) {
          send({
            jsonrpc: "2.0",
            method: "process.output",
            params: { job_id: jobId, type, data: rest, seq },
          });
        }
      };
      const [status] = await Promise.all([
        child.status,
        pump(child.stdout, "stdout"),
        pump(child.stderr, "stderr"),
      ]);
      const exit_code = status.code;
      send({
        jsonrpc: "2.0",
        method: "process.completed",
        params: { job_id: jobId, status: exit_code === 0 ? "completed" : "failed", exit_code },
      });
    };
    return response;
  });
}

if (import.meta.main) {
  const server = serveNaive(Number(Deno.args[0] ?? 0), (a) => {
    console.log(`listening on ws://${a.hostname}:${a.port}/ws`);
  });
  Deno.addSignalListener("SIGTERM", () => void server.shutdown().then(() => Deno.exit(0)));
}

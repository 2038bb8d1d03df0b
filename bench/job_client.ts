/**
 * The one client the per-job benchmarks use for both ccx and the naive
 * executor (bench/naive.ts), so that the two compare on equal client work:
 * Deno's native `WebSocket`, every message JSON-parsed, a job timed from the
 * `execute` request to its `process.completed`. It speaks only what both
 * servers share: `execute` with a client-chosen `job_id`, `process.output`,
 * `process.completed`; anything else (`connected`, `process.started`,
 * `process.exit`, answers) is parsed and ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JobClient } from "./job_client.ts";
 * import { serveNaive } from "./naive.ts";
 * const server = serveNaive(0); // the naive executor; `ccx serve` speaks the same
 * const client = await JobClient.connect(`ws://127.0.0.1:${server.addr.port}/ws`);
 * const { ms, status } = await client.run({ argv: ["true"] });
 * assert.equal(status, "completed");
 * assert.ok(ms > 0);
 * await client.close();
 * await server.shutdown();
 * ```
 * @module
 */

/**
 * How one job went, as the client saw it.
 *
 * @example
 * ```ts
 * import type { JobRun } from "./job_client.ts";
 * const r: JobRun = { ms: 2.5, status: "completed", outputs: 0 };
 * ```
 */
export interface JobRun {
  /** Milliseconds from sending `execute` to receiving `process.completed`. */
  ms: number;
  /** The `status` of `process.completed` (`completed`, `failed`, …). */
  status: string;
  /** `process.output` messages received for the job. */
  outputs: number;
}

interface Pending {
  t0: number;
  outputs: number;
  resolve: (r: JobRun) => void;
}

let counter = 0;

/**
 * A connection to a ccx server or to the naive executor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JobClient } from "./job_client.ts";
 * import { serveNaive } from "./naive.ts";
 * const server = serveNaive(0);
 * const c = await JobClient.connect(`ws://127.0.0.1:${server.addr.port}/ws`);
 * const runs = await Promise.all([c.run({ command: "echo a" }), c.run({ command: "true" })]);
 * assert.deepEqual(runs.map((r) => [r.status, r.outputs]), [["completed", 1], ["completed", 0]]);
 * await c.close();
 * await server.shutdown();
 * ```
 */
export class JobClient {
  readonly #ws: WebSocket;
  readonly #jobs = new Map<string, Pending>();
  readonly #closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => ws.addEventListener("close", () => resolve()));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data as string);
      const params = msg.params;
      if (msg.method === "process.output") {
        const p = this.#jobs.get(params.job_id);
        if (p) p.outputs++;
      } else if (msg.method === "process.completed") {
        const p = this.#jobs.get(params.job_id);
        if (!p) return;
        this.#jobs.delete(params.job_id);
        p.resolve({ ms: performance.now() - p.t0, status: params.status, outputs: p.outputs });
      } else if (msg.error && msg.id !== undefined && msg.id !== null) {
        const p = this.#jobs.get(String(msg.id));
        if (!p) return;
        this.#jobs.delete(String(msg.id));
        p.resolve({
          ms: performance.now() - p.t0,
          status: `error ${msg.error.code}: ${msg.error.message}`,
          outputs: p.outputs,
        });
      }
    };
    ws.onclose = () => {
      for (const p of this.#jobs.values()) p.resolve({ ms: NaN, status: "closed", outputs: 0 });
      this.#jobs.clear();
    };
  }

  /** Opens the WebSocket; rejects when it cannot be opened within `timeoutMs`. */
  static connect(url: string, timeoutMs = 10000): Promise<JobClient> {
    const ws = new WebSocket(url);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`could not connect to ${url} in ${timeoutMs} ms`));
      }, timeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new JobClient(ws));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`could not connect to ${url}`));
      };
    });
  }

  /** Sends `execute` with these params (and a fresh `job_id`); resolves at `process.completed`. */
  run(params: Record<string, unknown>): Promise<JobRun> {
    const jobId = `b${++counter}`;
    return new Promise((resolve) => {
      this.#jobs.set(jobId, { t0: performance.now(), outputs: 0, resolve });
      this.#ws.send(JSON.stringify({
        jsonrpc: "2.0",
        id: jobId,
        method: "execute",
        params: { ...params, job_id: jobId },
      }));
    });
  }

  /** Closes the connection; resolves once it is closed. */
  close(): Promise<void> {
    try {
      this.#ws.close();
    } catch { /* closed */ }
    return this.#closed;
  }
}

/**
 * `ccx mock-api [--port P] [--script FILE]`: a mock of the Anthropic Messages API (see
 * {@linkcode MockApiServer}) for running the real Claude CLI offline, without credentials. Prints
 * the environment that points the CLI at it, logs one line per request on stderr, and runs until
 * Ctrl+C.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mockApiCommand } from "./mock_api.ts";
 * // Serves until SIGINT/SIGTERM (`ccx mock-api`), so the doc tests only type-check it.
 * Deno.test({ name: "mockApiCommand (runs until a signal)", ignore: true }, async () => {
 *   assert.equal(await mockApiCommand({ port: 8088 }), 0);
 * });
 * ```
 * @module
 */

import { ConfigError } from "../common/config.ts";
import { type Command, defineCommand, onStopSignals } from "../common/cli.ts";
import { mockApiEnv, MockApiServer } from "../claude/mock_api/server.ts";
import { loadMockScript, MockScriptError } from "../claude/mock_api/script.ts";

/**
 * Options of `ccx mock-api`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mockApiCommand, type MockApiCommandOptions } from "./mock_api.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/replies.json`, '{"rules": [{"match": "hi"}]}');
 * const o: MockApiCommandOptions = { port: 0, script: `${dir}/replies.json` };
 * // A bad script is refused before anything listens: --script names the problem (exit 2).
 * await assert.rejects(mockApiCommand(o), /^ConfigError: --script .*reply/);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export interface MockApiCommandOptions {
  /** Port (0: any free port). */
  port: number;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** A JSON script of rules that pick the replies. */
  script?: string;
  /** No per-request lines on stderr. */
  quiet?: boolean;
}

/**
 * Runs the mock until SIGINT/SIGTERM; resolves with the exit code (2 for a bad script).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mockApiCommand } from "./mock_api.ts";
 * // Serves until SIGINT/SIGTERM (`ccx mock-api`), so the doc tests only type-check it.
 * Deno.test({ name: "mockApiCommand with a script (runs until a signal)", ignore: true }, async () => {
 *   const dir = Deno.makeTempDirSync();
 *   const script = `${dir}/replies.json`;
 *   Deno.writeTextFileSync(script, '{"rules": [{"match": "hi", "reply": {"type": "text", "text": "hello"}}]}');
 *   assert.equal(await mockApiCommand({ port: 0, script }), 0);
 * });
 * ```
 */
export async function mockApiCommand(opts: MockApiCommandOptions): Promise<number> {
  let script;
  if (opts.script !== undefined) {
    try {
      script = await loadMockScript(opts.script);
    } catch (e) {
      if (e instanceof MockScriptError) throw new ConfigError(`--script ${e.message}`);
      throw e;
    }
  }
  const enc = new TextEncoder();
  const err = (line: string) => void Deno.stderr.writeSync(enc.encode(`${line}\n`));
  const api = MockApiServer.start({
    port: opts.port,
    hostname: opts.host,
    script,
    log: opts.quiet ? undefined : (l) => err(`ccx mock-api: ${l}`),
  });
  console.log(`ccx mock-api listening on ${api.url}`);
  console.log("Point the Claude CLI (and ccx exec/stress, which pass these on) at it with:");
  for (const [k, v] of Object.entries(mockApiEnv(api.url))) {
    console.log(`  export ${k}=${JSON.stringify(v)}`);
  }
  const done = Promise.withResolvers<void>();
  const stop = () => done.resolve();
  const release = onStopSignals(stop);
  await done.promise;
  release();
  await api.shutdown();
  return 0;
}

/** The `ccx mock-api` declaration. */
export const mockApi: Command = defineCommand({
  name: "mock-api",
  summary: "mock Anthropic Messages API, to run the real Claude CLI offline (tests, demos)",
  options: {
    port: {
      type: "int",
      short: "p",
      default: 8088,
      min: 0,
      max: 65535,
      arg: "P",
      help: "port; 0 = any free port",
    },
    host: { type: "string", default: "127.0.0.1", arg: "H", help: "address to bind" },
    script: {
      type: "string",
      arg: "FILE",
      help: 'JSON rules: {"rules":[{"match":"2+2","reply":{"type":"text","text":"4"}}]}',
    },
    quiet: { type: "boolean", short: "q", help: "no per-request lines on stderr" },
  },
  notes: [
    "Replies: the script's first matching rule; else a [[mock:NAME[:ARG]]] directive in the",
    "prompt (answer:TEXT, write:PATH=CONTENT, bash:CMD, 401, 403, 429[:RETRY_AFTER], 529, 500,",
    "cut, max-tokens, hang, stall, fail-first:N:NAME); else `What is 2+2?` → `2 + 2 = 4`.",
    "A ccx rubric judge's prompt is answered as a judge: a rule (reply type judge), else a",
    "judge directive in it (judge:pass[:REASON], judge:fail[:REASON], judge:none for no",
    "verdict, judge:if:TEXT to pass when the judged answer holds TEXT), else pass.",
  ],
  run(o) {
    return mockApiCommand({ port: o.port, host: o.host, script: o.script, quiet: o.quiet });
  },
});

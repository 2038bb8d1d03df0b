/**
 * `ccx run`: run one command on a server (or an in-process one), stream its
 * stdout and stderr as they arrive, and exit with its exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCommand } from "./run.ts";
 * assert.equal(await runCommand({ argv: ["echo", "hi"] }), 0); // prints "hi"
 * assert.equal(await runCommand({ argv: ["exit 3"], shell: true }), 3);
 * ```
 * @module
 */

import { CcxClient, ClientError, type Completion } from "../client/client.ts";
import type { CcxServer } from "../serve/server.ts";
import { startLocalServer } from "../serve/local.ts";
import { explainConnectError, serverUrl } from "../stress/preflight.ts";
import { type Command, defineCommand } from "../common/cli.ts";
import { ConfigError, readPemFile } from "../common/config.ts";

/** Options of `ccx run`. */
export interface RunOptions {
  /** The command: an argv, or with `shell` a single shell command line. */
  argv: string[];
  /** Run `argv` joined by spaces through `/bin/sh -c`. */
  shell?: boolean;
  /** Server URL; without it an in-process server on an ephemeral loopback port. */
  server?: string;
  /** Token for `server`, when it requires one. */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
  /** Whole-run timeout in seconds. */
  timeoutS?: number;
  /** Seconds without output before the job is stalled. */
  stallTimeoutS?: number;
  /** Working directory of the job (default: the server's). */
  cwd?: string;
  /** Variables the job gets on top of what the server passes it (`--env K=V`). */
  env?: Record<string, string>;
  /** `--sandbox`: the job gets `IS_SANDBOX=1`, so a Claude CLI in it may skip permissions as root. */
  sandbox?: boolean;
}

/**
 * Parses `--env` values (`NAME=VALUE`, repeatable; the value may be empty or hold `=`) into an
 * object. A value without `=` is a {@linkcode ConfigError}: a job gets the server's own
 * variables only through the server's allow-list (`ccx serve --pass-env`), never by name from
 * a client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseEnvFlags } from "./run.ts";
 * assert.deepEqual(parseEnvFlags(["A=1", "B=x=y"]), { A: "1", B: "x=y" });
 * ```
 */
export function parseEnvFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq < 0) {
      throw new ConfigError(
        `--env ${JSON.stringify(v)}: expected NAME=VALUE; which of the server's own variables a ` +
          "job sees is the server's allow-list (ccx serve --pass-env), not a client's to ask for",
      );
    }
    const name = v.slice(0, eq);
    if (name === "" || name.includes("\0")) {
      throw new ConfigError(
        `--env ${JSON.stringify(v)}: ${JSON.stringify(name)} is not a variable name`,
      );
    }
    out[name] = v.slice(eq + 1);
  }
  return out;
}

/**
 * The exit code `ccx run` uses for a completion: the job's own code, 124 on
 * timeout or stall (as `timeout(1)`), 130 when canceled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exitCodeFor } from "./run.ts";
 * assert.equal(exitCodeFor({ status: "timeout", exitCode: 143 }), 124);
 * assert.equal(exitCodeFor({ status: "failed", exitCode: 3 }), 3);
 * ```
 */
export function exitCodeFor(c: Pick<Completion, "status" | "exitCode">): number {
  switch (c.status) {
    case "completed":
      return 0;
    case "timeout":
    case "stalled":
      return 124;
    case "canceled":
      return 130;
    default:
      return c.exitCode ?? 1;
  }
}

class OrderedWriter {
  #chain: Promise<void> = Promise.resolve();
  constructor(private readonly file: { write(p: Uint8Array): Promise<number> }) {}
  write(bytes: Uint8Array): void {
    this.#chain = this.#chain.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await this.file.write(bytes.subarray(off));
    }).catch(() => {});
  }
  flush(): Promise<void> {
    return this.#chain;
  }
}

/**
 * The exit code for a failure of `ccx run` itself, as `timeout(1)` does it, so it never mixes with
 * the command's own code: 127 the program was not found, 126 it could not be executed, 125
 * anything else (no server, refused token, protocol error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownFailureCode } from "./run.ts";
 * assert.equal(ownFailureCode("argv: program not found: nope"), 127);
 * ```
 */
export function ownFailureCode(message: string): 125 | 126 | 127 {
  if (/program not found/i.test(message)) return 127;
  if (/permission denied|not executable|is a directory/i.test(message)) return 126;
  return 125;
}

/** Runs the command and resolves with the exit code for the process. */
export async function runCommand(opts: RunOptions): Promise<number> {
  let server: CcxServer | undefined;
  let url = opts.server;
  let token = opts.token;
  if (url) serverUrl(url);
  if (!url) {
    // Only this process knows its token: no other local user runs commands through it.
    const own = startLocalServer({
      heartbeatS: 0,
      warn: (line) => console.error(`ccx run: ${line}`),
    });
    server = own.server;
    url = own.url;
    token = own.token;
  }
  const out = new OrderedWriter(Deno.stdout);
  const err = new OrderedWriter(Deno.stderr);
  const enc = new TextEncoder();
  let client: CcxClient | undefined;
  let interrupted = false;
  const onInt = () => {
    interrupted = true;
    void job?.cancel().catch(() => {});
  };
  let job: Awaited<ReturnType<CcxClient["execute"]>> | undefined;
  try {
    client = await CcxClient.connect(url, { token, ca: opts.ca });
    Deno.addSignalListener("SIGINT", onInt);
    const env = { ...opts.env, ...(opts.sandbox ? { IS_SANDBOX: "1" } : {}) };
    job = await client.execute({
      ...(opts.shell ? { command: opts.argv.join(" ") } : { argv: opts.argv }),
      ...(Object.keys(env).length ? { env } : {}),
      timeout: opts.timeoutS,
      stall_timeout: opts.stallTimeoutS,
      cwd: opts.cwd,
    }, {
      onOutput(type, data, _seq, raw) {
        const bytes = raw ? Uint8Array.fromBase64(raw) : enc.encode(data);
        (type === "stdout" ? out : err).write(bytes);
      },
    });
    if (interrupted) void job.cancel().catch(() => {});
    const end = await job.done;
    await out.flush();
    await err.flush();
    // A shutdown kills every job, sends its completion, then closes with 1001.
    if (end.status === "killed" && !interrupted && await client.endedByShutdown()) {
      console.error(
        `ccx run: the server shut down while the job ran and killed it ` +
          `(${end.signal ?? `exit ${end.exitCode}`}); all its output up to then is above`,
      );
      return 125;
    }
    if (end.status === "timeout" || end.status === "stalled") {
      console.error(`ccx run: job ${end.status} after ${end.executionTime.toFixed(1)}s`);
    }
    return interrupted ? 130 : exitCodeFor(end);
  } catch (e) {
    await out.flush();
    if (interrupted) return 130;
    const msg = e instanceof Error ? e.message : String(e);
    if (!(e instanceof ClientError)) throw e;
    if (client?.serverShutDown) {
      const why = client.closeInfo?.reason ? ` (${client.closeInfo.reason})` : "";
      console.error(
        `ccx run: the server shut down before the job's end reached us${why}; ` +
          `its output may be incomplete`,
      );
      return 125;
    }
    console.error(`ccx run: ${explainConnectError(msg, url)}`);
    return ownFailureCode(msg);
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    await client?.close();
    await server?.shutdown();
  }
}

/** The `ccx run` declaration: its options, help and how they become {@linkcode RunOptions}. */
export const run: Command = defineCommand({
  name: "run",
  summary: "run one command on a server and stream its output; exit with its code",
  args: "-- CMD [ARGS...]",
  takesCommand: true,
  options: {
    server: {
      type: "string",
      short: "s",
      env: "CCX_SERVER",
      arg: "URL",
      defaultText: "an in-process server",
      help: "server, e.g. ws://127.0.0.1:8004/ws",
    },
    token: { type: "string", env: "CCX_TOKEN", arg: "T", help: "token for the server" },
    ca: {
      type: "string",
      env: "CCX_CA",
      arg: "FILE",
      help: "PEM certificate of a private CA to trust for wss://",
    },
    timeout: {
      type: "number",
      short: "t",
      min: 0.001,
      arg: "S",
      help: "whole-run timeout in seconds (exit 124 when it fires)",
    },
    "stall-timeout": {
      type: "number",
      min: 0.001,
      arg: "S",
      help: "seconds without output before the job is stopped (exit 124)",
    },
    cwd: { type: "string", arg: "DIR", help: "working directory of the command" },
    shell: { type: "boolean", help: "run CMD ARGS... as one /bin/sh -c command line" },
    env: {
      type: "list",
      arg: "K=V",
      help: "set K=V in the job's environment, on top of the server's allow-listed variables",
    },
    sandbox: {
      type: "boolean",
      env: "CCX_SANDBOX",
      help: "this box is a sandbox: the job gets IS_SANDBOX=1, so Claude Code may skip " +
        "permissions as root",
    },
  },
  usageExit: 125,
  notes: [
    "Exit code: the command's; 124 on timeout or stall; 130 after Ctrl+C (the job is canceled).",
    "Failures of ccx run itself, as timeout(1): 127 the program was not found, 126 it could not",
    "be executed, 125 anything else (bad usage, no server, refused token, the server shut down).",
  ],
  run(o, command) {
    if (command.length === 0) throw new ConfigError("no command given (ccx run -- CMD ...)");
    return runCommand({
      argv: command,
      shell: o.shell,
      server: o.server,
      token: o.token,
      ca: readPemFile("ca", o.ca),
      timeoutS: o.timeout,
      stallTimeoutS: o["stall-timeout"],
      cwd: o.cwd,
      env: parseEnvFlags(o.env),
      sandbox: o.sandbox,
    });
  },
});

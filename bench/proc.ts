/**
 * Processes the benchmarks start: a `ccx serve` child, websocketd, timed shell
 * commands. Every child is registered so that {@linkcode stopAll} (run on
 * exit and on Ctrl-C) leaves nothing behind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startServerProcess } from "./proc.ts";
 * const server = await startServerProcess(); // deno run -A main.ts serve --port 0 --quiet
 * assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
 * assert.equal((await (await fetch(`http://127.0.0.1:${server.port}/health`)).json()).status, "ok");
 * await server.stop();
 * ```
 * @module
 */

import { fileURLToPath } from "node:url";

/**
 * Absolute path of the repository root (with a trailing slash).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ROOT } from "./proc.ts";
 * assert.ok(Deno.statSync(`${ROOT}main.ts`).isFile);
 * ```
 */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/**
 * Absolute path of the stand-in Claude CLI (tests/fixtures/claude).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FAKE_CLAUDE } from "./proc.ts";
 * assert.ok(FAKE_CLAUDE.endsWith("/tests/fixtures/claude"));
 * assert.ok(Deno.statSync(FAKE_CLAUDE).isFile);
 * ```
 */
export const FAKE_CLAUDE: string = `${ROOT}tests/fixtures/claude`;

/**
 * The environment a stand-in run needs besides its prompt: like the real CLI, the stand-in says
 * `Not logged in` and exits 1 without an API key (any non-empty one does).
 *
 * @example
 * ```ts
 * import { STAND_IN_ENV } from "./proc.ts";
 * console.log(Object.keys(STAND_IN_ENV)); // ["ANTHROPIC_API_KEY"]
 * ```
 */
export const STAND_IN_ENV: Readonly<Record<string, string>> = {
  ANTHROPIC_API_KEY: "sk-ant-stand-in-bench",
};

const live = new Map<number, () => Promise<void>>();

/**
 * Stops every child still registered (servers, websocketd).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startGroup, stopAll } from "./proc.ts";
 * const p = startGroup("sleep", ["30"]);
 * await stopAll(); // what bench/main.ts does on exit and on Ctrl-C
 * assert.equal((await p.status).signal, "SIGTERM");
 * ```
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((stop) => stop().catch(() => {})));
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Ends a child: `sig` to it (or to its group when `group`), then SIGKILL after
 * `graceMs`; resolves once it has exited.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { endChild } from "./proc.ts";
 * const child = new Deno.Command("sleep", { args: ["100"] }).spawn();
 * await endChild(child); // SIGTERM, then SIGKILL after 5 s
 * assert.equal((await child.status).signal, "SIGTERM");
 * ```
 */
export async function endChild(
  child: Deno.ChildProcess,
  opts: { group?: boolean; graceMs?: number; sig?: Deno.Signal } = {},
): Promise<void> {
  const target = opts.group ? -child.pid : child.pid;
  signal(target, opts.sig ?? "SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      signal(target, "SIGKILL");
      resolve();
    }, opts.graceMs ?? 5000);
  });
  await Promise.race([child.status, killed]);
  await child.status;
  clearTimeout(timer);
}

/** Registers a child so that {@linkcode stopAll} ends it; returns the unregister function. */
function register(pid: number, stop: () => Promise<void>): () => void {
  live.set(pid, stop);
  return () => live.delete(pid);
}

/**
 * A `ccx serve` running as its own process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ServerProcess, startServerProcess } from "./proc.ts";
 * const s: ServerProcess = await startServerProcess(["--max-jobs-per-session", "128"]);
 * assert.ok(s.port > 0);
 * await s.stop();
 * ```
 */
export interface ServerProcess {
  /** The WebSocket endpoint, `ws://127.0.0.1:PORT/ws`. */
  url: string;
  /** The port it listens on. */
  port: number;
  /** The server's pid (the deno process itself). */
  pid: number;
  /** SIGTERM (the server ends its jobs), SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
  /** bench/serve_direct.ts only: the same server's endpoint without the connection gate. */
  directUrl?: string;
}

/**
 * Starts `deno run -A main.ts serve --port 0 --quiet` (plus `extraArgs`) on
 * 127.0.0.1 and waits for its `listening on ws://…` line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startServerProcess } from "./proc.ts";
 * const server = await startServerProcess();
 * const ws = new WebSocket(server.url);
 * const connected = await new Promise<{ method: string }>((resolve) => ws.onmessage = (e) => resolve(JSON.parse(e.data)));
 * assert.equal(connected.method, "connected");
 * ws.close();
 * await new Promise((resolve) => ws.onclose = resolve);
 * await server.stop();
 * ```
 */
export function startServerProcess(extraArgs: string[] = []): Promise<ServerProcess> {
  return spawnServer([`${ROOT}main.ts`, "serve", "--port", "0", "--quiet", ...extraArgs]);
}

/** How the benchmark servers are started, for the report. */
export const SERVER_LAUNCHER = "deno run -A main.ts serve --port 0 --quiet";

/**
 * Starts `ccx serve` through bench/serve_direct.ts: the same server, also reachable
 * without the connection gate at {@linkcode ServerProcess.directUrl}.
 *
 * @example
 * ```ts
 * import { startDirectServerProcess } from "./proc.ts";
 * const server = await startDirectServerProcess();
 * console.log(server.url, server.directUrl);
 * await server.stop();
 * ```
 */
export function startDirectServerProcess(extraArgs: string[] = []): Promise<ServerProcess> {
  return spawnServer(
    [`${ROOT}bench/serve_direct.ts`, "serve", "--port", "0", "--quiet", ...extraArgs],
    true,
  );
}

/**
 * Starts the naive executor (bench/naive.ts) as its own process on a free port.
 *
 * @example
 * ```ts
 * import { startNaiveProcess } from "./proc.ts";
 * const naive = await startNaiveProcess();
 * await naive.stop();
 * ```
 */
export function startNaiveProcess(): Promise<ServerProcess> {
  return spawnServer([`${ROOT}bench/naive.ts`, "0"]);
}

async function spawnServer(args: string[], direct = false): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { CCX_HOST: "127.0.0.1", NO_COLOR: "1" },
  }).spawn();
  let stderr = "";
  const errDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (t) => void (stderr = (stderr + t).slice(-4000)) }),
  ).catch(() => {});
  const stop = async () => {
    unregister();
    await endChild(child);
    await errDone;
  };
  const unregister = register(child.pid, stop);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => reader.cancel().catch(() => {}), 20000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
      const m = seen.match(/listening on (ws:\/\/[^\s]+)/);
      const d = seen.match(/direct on (ws:\/\/[^\s]+)/);
      if (m && (d || !direct)) {
        // Keep draining stdout in the background so the server never blocks on it.
        (async () => {
          try {
            while (!(await reader.read()).done) { /* discard */ }
          } catch { /* canceled */ }
        })();
        const url = m[1];
        return { url, port: Number(new URL(url).port), pid: child.pid, stop, directUrl: d?.[1] };
      }
    }
  } finally {
    clearTimeout(deadline);
  }
  await stop();
  throw new Error(`ccx serve did not start; stdout: ${seen.trim()} stderr: ${stderr.trim()}`);
}

/**
 * A free TCP port on 127.0.0.1 (bound, then released).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { freePort } from "./proc.ts";
 * const port = freePort();
 * const listener = Deno.listen({ hostname: "127.0.0.1", port }); // free: this works
 * assert.equal((listener.addr as Deno.NetAddr).port, port);
 * listener.close();
 * ```
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Waits until something accepts TCP connections on 127.0.0.1:`port`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { waitForPort } from "./proc.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const { port } = listener.addr as Deno.NetAddr;
 * await waitForPort(port, 5000); // resolves at once: something listens
 * listener.close();
 * await assert.rejects(waitForPort(port, 100), /nothing listens on 127\.0\.0\.1:/);
 * ```
 */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (true) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch (e) {
      if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port}: ${e}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * A process started in its own group (`detached`), ended with its whole group.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startGroup } from "./proc.ts";
 * const p = startGroup("sleep", ["100"]);
 * await p.stop(); // SIGTERM to the whole group
 * assert.equal((await p.status).signal, "SIGTERM");
 * ```
 */
export interface GroupProcess {
  /** Its pid (= its process group id). */
  pid: number;
  /** Resolves when it exits by itself. */
  status: Promise<Deno.CommandStatus>;
  /** SIGTERM to the group, SIGKILL after 3 s. */
  stop(): Promise<void>;
}

/**
 * Starts `cmd args` detached (its own process group), output discarded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startGroup } from "./proc.ts";
 * // A shell and its child in one group: stop() ends both.
 * const p = startGroup("sh", ["-c", "sleep 100 & wait"]);
 * await p.stop();
 * assert.equal((await p.status).signal, "SIGTERM");
 * ```
 */
export function startGroup(cmd: string, args: string[]): GroupProcess {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  const stop = async () => {
    unregister();
    await endChild(child, { group: true, graceMs: 3000 });
  };
  const unregister = register(child.pid, stop);
  return { pid: child.pid, status: child.status, stop };
}

/**
 * Runs `sh -c script` with its stdout and stderr discarded, and resolves with
 * its wall time in seconds (spawn included) and exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timeShell } from "./proc.ts";
 * const { seconds, code } = await timeShell("seq 1 20000 > /dev/null");
 * assert.equal(code, 0);
 * assert.ok(seconds > 0);
 * ```
 */
export async function timeShell(script: string): Promise<{ seconds: number; code: number }> {
  const t0 = performance.now();
  const { code } = await new Deno.Command("/bin/sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return { seconds: (performance.now() - t0) / 1000, code };
}

/**
 * Whether an executable is on PATH (or is a path that exists and is executable).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { which } from "./proc.ts";
 * assert.match(which("sh")!, /\/sh$/); // e.g. "/usr/bin/sh"
 * assert.equal(which("no-such-program-here"), undefined); // websocketd, where it is not installed
 * ```
 */
export function which(name: string): string | undefined {
  const dirs = name.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":");
  for (const d of dirs) {
    const p = d ? `${d}/${name}` : name;
    try {
      const st = Deno.statSync(p);
      if (st.isFile && ((st.mode ?? 0) & 0o111)) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The VmRSS (or another `Vm*` field) of a process in KiB, from /proc/PID/status;
 * undefined once it is gone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { vmKiB } from "./proc.ts";
 * assert.ok(vmKiB(Deno.pid)! > 1000); // e.g. 45000
 * assert.equal(vmKiB(2 ** 30), undefined);
 * ```
 */
export function vmKiB(pid: number, field = "VmRSS"): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc/PID/stat
 * (clock ticks of 1/100 s); undefined once it is gone or without /proc. Unlike
 * wall time, it does not grow when other processes share the machine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cpuSeconds } from "./proc.ts";
 * assert.ok(cpuSeconds(Deno.pid)! >= 0); // e.g. 0.42
 * assert.equal(cpuSeconds(2 ** 30), undefined);
 * ```
 */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

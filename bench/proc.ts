/**
 * Processes the benchmarks start: a `ccx serve` child, websocketd, timed shell
 * commands. Every child is registered so that {@linkcode stopAll} (run on
 * exit and on Ctrl-C) leaves nothing behind.
 *
 * @example
 * ```ts
 * import { startServerProcess } from "./proc.ts";
 * const server = await startServerProcess();
 * console.log(server.url, server.pid);
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
 * import { ROOT } from "./proc.ts";
 * console.log(`${ROOT}main.ts`);
 * ```
 */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/**
 * Absolute path of the stand-in Claude CLI (tests/fixtures/claude).
 *
 * @example
 * ```ts
 * import { FAKE_CLAUDE } from "./proc.ts";
 * console.log(FAKE_CLAUDE);
 * ```
 */
export const FAKE_CLAUDE: string = `${ROOT}tests/fixtures/claude`;

const live = new Map<number, () => Promise<void>>();

/**
 * Stops every child still registered (servers, websocketd).
 *
 * @example
 * ```ts
 * import { stopAll } from "./proc.ts";
 * await stopAll();
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
 * import { endChild } from "./proc.ts";
 * const child = new Deno.Command("sleep", { args: ["100"] }).spawn();
 * await endChild(child);
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
 * import { startServerProcess, type ServerProcess } from "./proc.ts";
 * const s: ServerProcess = await startServerProcess(["--max-jobs-per-session", "128"]);
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
 * import { startServerProcess } from "./proc.ts";
 * const server = await startServerProcess();
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
 * import { freePort } from "./proc.ts";
 * const port = freePort();
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
 * import { waitForPort } from "./proc.ts";
 * // await waitForPort(8004, 5000);
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
 * import { startGroup } from "./proc.ts";
 * const p = startGroup("sleep", ["100"]);
 * await p.stop();
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
 * import { startGroup } from "./proc.ts";
 * const p = startGroup("websocketd", ["--port", "9000", "--address", "127.0.0.1", "seq", "3"]);
 * await p.stop();
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
 * import { timeShell } from "./proc.ts";
 * const { seconds } = await timeShell("seq 1 2000000 > /dev/null");
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
 * import { which } from "./proc.ts";
 * which("websocketd"); // "/usr/bin/websocketd" or undefined
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
 * import { vmKiB } from "./proc.ts";
 * vmKiB(Deno.pid); // e.g. 45000
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
 * import { cpuSeconds } from "./proc.ts";
 * cpuSeconds(Deno.pid); // e.g. 0.42
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

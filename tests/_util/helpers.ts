/**
 * Shared test helpers: looking processes up in /proc, running the CLI, and
 * starting a server that stops by itself.
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { CcxServer } from "../../lib/serve/server.ts";
import type { ServerOptions } from "../../lib/serve/options.ts";

/** Absolute path of the repository root. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * This test module's own state directory (history, crash journal, server workspaces): the
 * `CCX_STATE_DIR` of what {@linkcode cli} and {@linkcode serveProcess} start, and the journal
 * directory of {@linkcode withServer}'s servers. Without it, every server of every test, and of
 * anyone else on the machine, shares `~/.local/state/ccx`: one that starts reaps what another
 * test's killed server left there, and says so on stderr. It is passed explicitly, not set in
 * `Deno.env`: test modules running in parallel share one process environment.
 */
export const STATE_DIR: string = Deno.makeTempDirSync({ prefix: "ccx_test_state_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(STATE_DIR, { recursive: true });
  } catch {
    // Already gone, or held by a process that outlived the test module.
  }
});

/** Absolute path of the stand-in Claude CLI. */
export const FAKE_CLAUDE = `${ROOT}tests/fixtures/claude`;

/**
 * The API key every test that runs the stand-in passes it: like the real CLI, the stand-in says
 * `Not logged in` and exits 1 without a key or a login (it checks only that one is set).
 */
export const TEST_API_KEY = "sk-ant-stand-in-test";

/** `{ ANTHROPIC_API_KEY: TEST_API_KEY }`: spread it into the environment of a stand-in run. */
export const KEY_ENV: Readonly<Record<string, string>> = { ANTHROPIC_API_KEY: TEST_API_KEY };

/**
 * The environment of an in-process server whose jobs run the stand-in: this process's own, plus
 * the key (see `ServerOptions.env`), as an operator would start `ccx serve` with the key set.
 */
export function serverEnvWithKey(): Record<string, string> {
  return { ...Deno.env.toObject(), ...KEY_ENV };
}

/** A process seen in /proc. */
export interface ProcInfo {
  pid: number;
  pgid: number;
  state: string;
  cmd: string;
}

/** Every live process (zombies excluded) whose process group is `pgid`. */
export function processesInGroup(pgid: number): ProcInfo[] {
  return allProcesses().filter((p) => p.pgid === pgid && p.state !== "Z");
}

/** Every process on the machine, from /proc/PID/stat. */
export function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const close = stat.lastIndexOf(")");
      const fields = stat.slice(close + 2).split(" ");
      out.push({
        pid: Number(e.name),
        state: fields[0],
        pgid: Number(fields[2]),
        cmd: stat.slice(stat.indexOf("(") + 1, close),
      });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/**
 * Waits until `pred()` holds, polling; throws with `what` after `ms`. The bound only limits how
 * long a broken test hangs, so it is generous: on a loaded machine a process can take seconds to
 * start.
 */
export async function waitFor(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * True exactly when the process group `pgid` is paused: its leader (pid = pgid, as for every ccx
 * job) is still alive, at least one process of the group is stopped (`T`), and none is running or
 * sleeping (`R`/`S`). Other states do not count against it: dash forks with vfork, so when SIGSTOP
 * lands between vfork and exec the shell waits in `D` for its stopped child for as long as the
 * group stays stopped. An empty group is never paused, so a job that ended before the pause
 * cannot pass for a paused one.
 */
export function groupPaused(pgid: number): boolean {
  const procs = processesInGroup(pgid);
  return procs.some((p) => p.pid === pgid) &&
    procs.some((p) => p.state === "T") &&
    !procs.some((p) => p.state === "R" || p.state === "S");
}

/** The states of the group's processes, for failure messages: `pid:state cmd, …`. */
export function groupStates(pgid: number): string {
  return processesInGroup(pgid).map((p) => `${p.pid}:${p.state} ${p.cmd}`).join(", ") ||
    "(empty)";
}

/** Waits until {@linkcode groupPaused} holds for `pgid`; the error lists the group's states. */
export async function waitForPause(pgid: number, ms = 10_000): Promise<void> {
  try {
    await waitFor(() => groupPaused(pgid), `group ${pgid} to be paused`, ms);
  } catch (e) {
    throw new Error(`${(e as Error).message}; group: ${groupStates(pgid)}`);
  }
}

/**
 * Waits until the group `pgid` runs again after a resume: its leader is alive and no process of
 * it is stopped.
 */
export async function waitForResume(pgid: number, ms = 10_000): Promise<void> {
  const running = () => {
    const procs = processesInGroup(pgid);
    return procs.some((p) => p.pid === pgid) && !procs.some((p) => p.state === "T");
  };
  try {
    await waitFor(running, `group ${pgid} to run again`, ms);
  } catch (e) {
    throw new Error(`${(e as Error).message}; group: ${groupStates(pgid)}`);
  }
}

/** Pids of the processes whose command line contains `needle`. */
export function pidsMatching(needle: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      const state = Deno.readTextFileSync(`/proc/${e.name}/stat`).split(") ")[1]?.[0];
      if (state !== "Z" && cmdline.includes(needle)) out.push(Number(e.name));
    } catch {
      // gone
    }
  }
  return out;
}

/** Starts a quiet server on a free loopback port, runs `fn`, and always shuts it down. */
export async function withServer<T>(
  opts: ServerOptions,
  fn: (server: CcxServer) => Promise<T>,
): Promise<T> {
  // Workspaces go to a temp dir of this server, never the user's state directory.
  const root = opts.workspaceRoot ?? await Deno.makeTempDir({ prefix: "ccx-test-ws-" });
  const server = CcxServer.start({
    port: 0,
    log: () => {},
    heartbeatS: 0,
    journalDir: `${STATE_DIR}/jobs`,
    ...opts,
    workspaceRoot: root,
  });
  try {
    return await fn(server);
  } finally {
    await server.shutdown();
    if (opts.workspaceRoot === undefined) await Deno.remove(root, { recursive: true });
  }
}

/**
 * Reads a starting `ccx serve`'s stdout until it prints the WebSocket URL it listens on
 * (`ws://` or `wss://`), and returns that URL; throws with what it printed if it exits first.
 */
export async function listenUrl(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  const pattern = /wss?:\/\/\S+\/ws/;
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited before listening: ${text}`);
    text += value;
  }
  return text.match(pattern)![0];
}

/** A `ccx serve` process started by {@linkcode serveProcess}. */
export interface ServeProcess {
  /** The process. Its stderr is read by the helper from the start: use `stderr()`. */
  child: Deno.ChildProcess;
  /** Reads the rest of its stdout (cancel it when done). */
  reader: ReadableStreamDefaultReader<string>;
  /** Its WebSocket URL, as it printed it. */
  url: string;
  port: number;
  /** What it wrote to stderr so far (its log). */
  stderr(): string;
  /** Resolves with all it wrote to stderr, once it has exited and its stderr has ended. */
  stderrEnded: Promise<string>;
  /** Waits (up to `ms`) until its stderr matches `pattern`; throws with what it wrote. */
  waitStderr(pattern: RegExp, ms?: number): Promise<string>;
  /** Sends `signal` (if it still runs), waits for its exit and releases its pipes. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `ccx serve --port 0 --quiet EXTRA…` as a real process and waits until it prints the
 * WebSocket URL it listens on. `env` adds to the inherited environment. With `bare`, no flag is
 * added (the settings come from the environment and `cwd`'s `.env`).
 */
export async function serveProcess(
  extra: string[] = [],
  env?: Record<string, string>,
  opts: { cwd?: string; bare?: boolean } = {},
): Promise<ServeProcess> {
  const flags = opts.bare ? [] : ["--port", "0", "--quiet"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "serve", ...flags, ...extra],
    cwd: opts.cwd ?? ROOT,
    env: { CCX_STATE_DIR: STATE_DIR, ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  // Its log is read from the start, whether a test looks at it or not: a server that writes
  // more than a pipe holds (64 KiB) to an unread stderr would block on it.
  let err = "";
  const stderrEnded = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (err += chunk) }),
  ).catch(() => {}).then(() => err);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let url: string;
  try {
    url = await listenUrl(reader);
  } catch (e) {
    await child.status;
    throw new Error(`${(e as Error).message}; stderr: ${await stderrEnded}`);
  }
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
    const status = await child.status;
    await reader.cancel().catch(() => {});
    await stderrEnded;
    return status;
  };
  const waitStderr = async (pattern: RegExp, ms = 10_000) => {
    try {
      await waitFor(() => pattern.test(err), `${pattern} on the server's stderr`, ms);
    } catch (e) {
      throw new Error(`${(e as Error).message}; it wrote: ${err}`);
    }
    return err;
  };
  return {
    child,
    reader,
    url,
    port: Number(new URL(url).port),
    stderr: () => err,
    stderrEnded,
    waitStderr,
    stop,
  };
}

/**
 * HOME as the test process started with it. Test files run in parallel in one
 * process, so a test that sets HOME for a moment (isolate_test) would otherwise
 * hand its throwaway HOME, and an empty Deno cache, to other files' subprocesses.
 */
const STARTING_HOME = Deno.env.get("HOME");

/**
 * Runs `deno run -A main.ts ARGS` and collects its output. The Claude API check of `ccx stress`
 * and `ccx exec` is off (`CCX_NO_API_CHECK=1`): the stand-in CLI calls no API, and a test must
 * never connect to Anthropic's; a test of the check turns it on with `CCX_NO_API_CHECK: ""` and
 * a loopback `ANTHROPIC_BASE_URL`.
 */
export async function cli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, ...args],
    cwd: opts.cwd ?? ROOT,
    env: {
      NO_COLOR: "1",
      CCX_STATE_DIR: STATE_DIR,
      CCX_NO_API_CHECK: "1",
      ...(STARTING_HOME ? { HOME: STARTING_HOME } : {}),
      ...opts.env,
    },
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const r = await child.output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** A unique marker to put in command lines so tests can find their processes. */
export function uniqueTag(prefix = "ccxtest"): string {
  return `${prefix}_${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * A fresh numeric tag. It can stand in a shell comment (`: TAG;`), in a prompt, and inside a
 * `sleep` argument (`sleep 30.TAG`), so every process a test starts carries it in its command
 * line and {@linkcode pidsMatching} finds whatever is left of them.
 */
export function newTag(): string {
  return String(10_000_000 + Math.floor(Math.random() * 89_999_999));
}

/** Asserts that no process whose command line contains `tag` is alive. */
export function assertNoneLeft(tag: string): void {
  const left = pidsMatching(tag);
  assert.deepEqual(left, [], `processes left behind: ${left.join(", ")}`);
}

/**
 * A file that a job waits for, so that a test decides when the job goes on instead of guessing
 * with a sleep. `wait` is shell text that returns once {@linkcode Gate.open} has been called.
 */
export class Gate {
  readonly #dir = Deno.makeTempDirSync({ prefix: "ccx_gate_" });
  /** The file whose existence opens the gate. */
  readonly path = `${this.#dir}/open`;
  /** Shell text that waits until the gate is open. */
  readonly wait = `while [ ! -e '${this.path}' ]; do sleep 0.02; done`;

  /** Lets every job waiting at the gate go on. */
  open(): void {
    Deno.writeTextFileSync(this.path, "");
  }

  /** Removes the gate's directory. */
  [Symbol.dispose](): void {
    Deno.removeSync(this.#dir, { recursive: true });
  }
}

/** A `ccx serve` process whose disk the test cannot see, standing in for a remote box. */
export interface RemoteDiskServer {
  /** Its WebSocket URL. */
  url: string;
  /** Its workspace root: a tmpfs inside its own mount namespace (empty from outside). */
  root: string;
  /** Kills it (and, through its PID namespace, every job it ran). */
  stop(): Promise<void>;
}

/**
 * Starts `ccx serve` under bubblewrap, in a working directory of its own, with
 * its workspace root on a private tmpfs, so whatever its jobs write is
 * invisible to the test process, as on another machine. Needs `bwrap`.
 */
export async function remoteDiskServer(extra: string[] = []): Promise<RemoteDiskServer> {
  const root = await Deno.makeTempDir({ prefix: "ccx-remote-ws-" });
  // Its own working directory too, not the test's.
  const cwd = await Deno.makeTempDir({ prefix: "ccx-remote-cwd-" });
  const child = new Deno.Command("bwrap", {
    cwd,
    args: [
      "--bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--tmpfs",
      root,
      "--unshare-pid",
      "--die-with-parent",
      "--",
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}main.ts`,
      "serve",
      "--port",
      "0",
      "--quiet",
      "--workspace-root",
      root,
      ...extra,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const url = await listenUrl(reader);
  void reader.closed.catch(() => {});
  return {
    url,
    root,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await reader.cancel().catch(() => {});
      await Deno.remove(root, { recursive: true }).catch(() => {});
      await Deno.remove(cwd, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * A log that jobs write their own start and end to, with a barrier that makes them overlap, so a
 * test can tell how many ran at once from what the processes recorded, not from wall-clock
 * windows. Each job started by {@linkcode OverlapLog.wrap} appends `start ID`, waits until its
 * wave of `wave` jobs has started (at most about 30 s, then exits 97), runs its body, and appends
 * `end ID`. With `wave` jobs allowed at once they certainly overlap `wave` deep; fewer would wait
 * for each other and fail with exit 97; more show up in {@linkcode OverlapLog.mostAtOnce}.
 */
export class OverlapLog {
  readonly #dir = Deno.makeTempDirSync({ prefix: "ccx_overlap_" });
  /** The log file. */
  readonly path = `${this.#dir}/log`;

  /** @param wave jobs per wave; @param total jobs in all (the last wave may be short). */
  constructor(readonly wave: number, readonly total: number) {
    Deno.writeTextFileSync(this.path, "");
  }

  /** Shell text that runs `body` between its logged start and end, behind the barrier. */
  wrap(id: string, body: string): string {
    const log = `'${this.path}'`;
    const started = `$(grep -c '^start ' ${log})`;
    return [
      `echo "start ${id}" >> ${log}`,
      `n=${started}`,
      `w=$(( (n + ${this.wave - 1}) / ${this.wave} * ${this.wave} ))`,
      `[ "$w" -gt ${this.total} ] && w=${this.total}`,
      `i=0; while [ ${started} -lt "$w" ]; do i=$((i + 1)); [ $i -gt 1500 ] && exit 97; sleep 0.02; done`,
      body,
      `rc=$?; echo "end ${id}" >> ${log}; exit $rc`,
    ].join("\n");
  }

  /** The log's lines: `start ID` / `end ID`, in the order they were written. */
  lines(): string[] {
    return Deno.readTextFileSync(this.path).split("\n").filter(Boolean);
  }

  /** The largest number of jobs between their start and their end at one moment. */
  mostAtOnce(): number {
    let now = 0;
    let most = 0;
    for (const l of this.lines()) most = Math.max(most, now += l.startsWith("start ") ? 1 : -1);
    return most;
  }

  /** Removes the log's directory. */
  [Symbol.dispose](): void {
    Deno.removeSync(this.#dir, { recursive: true });
  }
}

/**
 * Runs `jobs` at most `limit` at a time and resolves with their results in order. For tests that
 * start many `ccx` processes: ten Deno processes at once load a shared machine for every other
 * test running beside them.
 */
export async function atMost<T>(limit: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, lane));
  return results;
}

/**
 * Makes a self-signed certificate for 127.0.0.1 and localhost in `dir` with openssl, valid for a
 * day: `cert.pem` and `key.pem`.
 */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const made = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  assert.ok(made.success, "openssl made a certificate");
  return { cert, key };
}

/**
 * The TCP ports process `pid` listens on: its socket inodes (from `/proc/PID/fd`) matched with
 * the listening sockets of `/proc/PID/net/tcp` and `tcp6`. How a test finds the port of a
 * server that a ccx process started inside itself and does not print.
 */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const ports = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(`/proc/${pid}/net/${table}`);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9])) continue;
      ports.add(parseInt(f[1].split(":")[1], 16));
    }
  }
  return [...ports];
}

/** Waits until process `pid` listens on some TCP port, and returns the ports. */
export async function waitListening(pid: number, ms = 30_000): Promise<number[]> {
  let ports: number[] = [];
  await waitFor(() => (ports = listeningPorts(pid)).length > 0, `process ${pid} to listen`, ms);
  return ports;
}

/**
 * The status line (`HTTP/1.1 401 Unauthorized`, …) that a bare WebSocket upgrade of
 * `ws://127.0.0.1:PORT/ws` gets, sent with `headers` (e.g. an `Authorization`).
 */
export async function upgradeStatus(
  port: number,
  headers: Record<string, string> = {},
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // A server that never answers: the read ends when the connection is closed under it.
  const timer = setTimeout(() => conn.close(), 10_000);
  try {
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await conn.write(
      new TextEncoder().encode(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Version: 13\r\n${extra}\r\n`,
      ),
    );
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text.split("\r\n")[0];
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/**
 * Asserts that process `pid` listens on one port, the ccx server it started inside itself, and
 * that this server refuses a WebSocket upgrade without its token (see {@linkcode assertTokenRequired}).
 */
export async function assertOwnServerTokened(pid: number): Promise<void> {
  const ports = listeningPorts(pid);
  assert.equal(ports.length, 1, `one port: ${ports}`);
  await assertTokenRequired(ports[0]);
}

/**
 * Asserts that the ccx server on loopback port `port` (its `/health` answers) refuses a
 * WebSocket upgrade without its token, and with a wrong or empty one: 401.
 */
export async function assertTokenRequired(port: number): Promise<void> {
  const health = await (await fetch(`http://127.0.0.1:${port}/health`)).json();
  assert.equal(health.status, "ok", `port ${port} is a ccx server: ${JSON.stringify(health)}`);
  assert.match(await upgradeStatus(port), /^HTTP\/1\.1 401\b/, "no token");
  assert.match(
    await upgradeStatus(port, { Authorization: "Bearer guessed" }),
    /^HTTP\/1\.1 401\b/,
    "a wrong token",
  );
  assert.match(
    await upgradeStatus(port, { Authorization: "Bearer " }),
    /^HTTP\/1\.1 401\b/,
    "an empty token",
  );
}

/**
 * Process supervision: a job is one command running in its own process group,
 * its stdout and stderr streamed line by line (or as coalesced text chunks), with pause/resume,
 * whole-run and stall timeouts, and a kill escalation that ends the whole group
 * (SIGCONT → SIGTERM → grace → SIGKILL). No process of a job outlives it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startJob } from "./supervisor.ts";
 * const out: string[] = [];
 * const job = startJob({ argv: ["echo", "hello"] }, {
 *   output: (stream, text) => out.push(`${stream} ${JSON.stringify(text)}`),
 * });
 * const result = await job.done;
 * assert.equal(result.status, "completed");
 * assert.equal(result.exitCode, 0);
 * assert.deepEqual(out, ['stdout "hello\\n"']);
 * ```
 * @module
 */

import type { JobResult, JobState, JobStatus } from "../common/protocol.ts";
import { jobEnvironment } from "./job_env.ts";
import { countGroupProcesses, procStat } from "../common/proc.ts";
import { baseEnvironment, findProgram, setsid } from "./spawn.ts";
import { runAsArgv, runAsEnv, type RunAsUser } from "./run_as.ts";

/** Why the supervisor itself ended a job. */
export type EndReason = "timeout" | "stalled" | "canceled" | "killed";

/** How a job is started. Exactly one of `command` and `argv`. */
export interface JobOptions {
  /** A shell command, run as `/bin/sh -c command`. */
  command?: string;
  /** A program and its arguments, run without a shell. */
  argv?: string[];
  /** Working directory (default: the server's). */
  cwd?: string;
  /**
   * Variables the request sets. The job's environment is these over the
   * allow-listed variables of the server's own (see `passEnv`); nothing else of
   * the server's environment reaches it.
   */
  env?: Record<string, string>;
  /** Server variables a job may see (default `DEFAULT_PASS_ENV` of job_env.ts); `CCX_*` never. */
  passEnv?: readonly string[];
  /** The server's environment the allow-list picks from (default: this process's own). */
  serverEnv?: Readonly<Record<string, string>>;
  /** Text written to stdin, which is then closed. Without it stdin is /dev/null. */
  stdin?: string;
  /** Whole-run timeout in seconds. */
  timeoutS?: number;
  /** Seconds without output (while not paused or held back by a slow reader) before the job is stalled. */
  stallTimeoutS?: number;
  /** Milliseconds between SIGTERM and SIGKILL when the group is ended (default 2000). */
  graceMs?: number;
  /** Largest chunk handed to the sink in bytes (default 256 KiB). */
  maxChunkBytes?: number;
  /** How long a partial line (no newline yet) waits for more before it is sent (default 200 ms). */
  partialLineMs?: number;
  /**
   * `lines` (default): each call of {@linkcode JobSink.output} carries one line with its
   * newline (a partial line after `partialLineMs`; a line longer than `maxChunkBytes` in
   * pieces). `chunks`: as much as one read gave, up to its last newline, in one call.
   */
  outputMode?: OutputMode;
  /**
   * Run the job as this user (see run_as.ts): started through `setpriv`, which
   * execs it, so pid and process group stay the job's; `HOME`, `USER` and
   * `LOGNAME` are the user's unless `env` sets them.
   */
  runAs?: RunAsUser;
}

/** How output is cut into messages: one line each, or coalesced chunks. */
export type OutputMode = "lines" | "chunks";

/** Bytes one read of a job's pipe takes at most. */
const READ_BYTES = 64 * 1024;

/** In lines mode, how many lines are handed over between two looks at the sink's backpressure. */
const LINES_PER_GATE = 256;

/** Where a job's output goes. */
export interface JobSink {
  /**
   * One line (lines mode) or one coalesced chunk (chunks mode), in order. `raw` is
   * given only when the bytes were not valid UTF-8:
   * `text` then holds U+FFFD replacements and `raw` the exact bytes.
   */
  output(stream: "stdout" | "stderr", text: string, raw?: Uint8Array): void;
  /**
   * Backpressure: return a promise when the consumer is behind; the job's pipes are
   * not read until it settles (the job then blocks on its own writes).
   */
  ready?(): Promise<void> | undefined;
}

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The longest delay one `setTimeout` takes (2^31 - 1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer of any length: a chain of `setTimeout`s; `clear()` stops it. */
export class LongTimer {
  #handle: ReturnType<typeof setTimeout> | undefined;
  #cleared = false;

  /**
   * Calls `fn` once `ms` milliseconds have passed, for any `ms` (days, years).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LongTimer } from "./supervisor.ts";
   * const t = new LongTimer(3_000_000_000, () => assert.fail("35 days later"));
   * t.clear();
   * await new Promise<void>((resolve) => new LongTimer(10, resolve)); // short ones work too
   * ```
   */
  constructor(ms: number, fn: () => void) {
    const end = performance.now() + ms;
    const arm = (left: number) => {
      this.#handle = setTimeout(() => {
        if (this.#cleared) return;
        const rest = end - performance.now();
        if (rest > 1) arm(rest);
        else fn();
      }, Math.min(Math.max(0, left), MAX_TIMER_MS));
    };
    arm(ms);
  }

  /** Stops the timer; `fn` is never called after this. */
  clear(): void {
    this.#cleared = true;
    if (this.#handle !== undefined) clearTimeout(this.#handle);
  }
}

/**
 * Sends `signal` to every process in the group; false when the group is empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signalGroup } from "./supervisor.ts";
 * const leader = new Deno.Command("sleep", { args: ["30"], detached: true }).spawn(); // pgid = pid
 * assert.equal(signalGroup(leader.pid, "SIGTERM"), true);
 * await leader.status;
 * assert.equal(signalGroup(leader.pid, "SIGTERM"), false); // the group is empty now
 * ```
 */
export function signalGroup(pgid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    // EPERM: the group exists but is not ours to signal; treat as gone for us.
    if (e instanceof Deno.errors.PermissionDenied) return false;
    throw e;
  }
}

/**
 * Sends `signal` to a job's group, or, when the group does not exist yet, to its
 * `leader` alone: a job started through `setsid` (see {@linkcode startJob}) is in
 * the server's own group until its first instructions have run, and is then the
 * only process of the job. False when neither is there.
 */
function signalJob(pgid: number, signal: Deno.Signal, leader?: number): boolean {
  if (signalGroup(pgid, signal)) return true;
  if (leader === undefined) return false;
  const st = procStat(leader);
  if (st === undefined || st.state === "Z" || st.state === "X") return false;
  // It called setsid between the two looks: its group is there now.
  if (st.pgid === leader) return signalGroup(pgid, signal);
  try {
    Deno.kill(leader, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * True while the group has a member that is not a zombie (or, given a `leader`
 * that has not called setsid yet, while it runs). The kernel keeps a zombie in
 * its group until its parent reaps it (for orphans, PID 1, which may be slow), so
 * a successful kill(2) alone would make us wait for nothing.
 */
function groupAlive(pgid: number, leader?: number): boolean {
  if (!signalGroup(pgid, "SIGCONT")) return signalJob(pgid, "SIGCONT", leader);
  try {
    return countGroupProcesses(new Set([pgid]), { stopAt: 1 }) > 0;
  } catch {
    return true; // no /proc: trust kill(2)
  }
}

/**
 * Ends a whole process group: SIGCONT (a stopped group cannot act on SIGTERM),
 * SIGTERM, up to `graceMs` for it to go, then SIGKILL. Resolves once the group is
 * empty or has been sent SIGKILL. `leader`: the group's leader, still running and
 * maybe not yet in its own group (a job just started; see {@linkcode startJob}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { endProcessGroup } from "./supervisor.ts";
 * // A shell that ignores SIGTERM, and its child: SIGKILL ends both after the grace.
 * const sh = new Deno.Command("sh", {
 *   args: ["-c", "trap '' TERM; echo ready; sleep 30 & wait"],
 *   detached: true, // its own process group: pgid = pid
 *   stdout: "piped",
 * }).spawn();
 * const out = sh.stdout.getReader();
 * await out.read(); // "ready": the trap is set
 * await endProcessGroup(sh.pid, 200);
 * assert.equal((await sh.status).signal, "SIGKILL");
 * await out.cancel();
 * ```
 */
export async function endProcessGroup(
  pgid: number,
  graceMs: number,
  leader?: number,
): Promise<void> {
  if (!signalJob(pgid, "SIGCONT", leader)) return;
  signalJob(pgid, "SIGTERM", leader);
  const deadline = performance.now() + graceMs;
  let wait = 2;
  while (performance.now() < deadline) {
    await sleep(Math.min(wait, Math.max(1, deadline - performance.now())));
    wait = Math.min(wait * 2, 50);
    if (!groupAlive(pgid, leader)) return;
  }
  signalJob(pgid, "SIGKILL", leader);
  // SIGKILL is not ignorable; give the kernel a moment so callers see an empty group.
  for (let i = 0; i < 200 && groupAlive(pgid, leader); i++) await sleep(5);
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true });
const lenientDecoder = new TextDecoder("utf-8");

/** Length of the prefix of `b` that does not end inside a UTF-8 sequence. */
function completeUtf8Prefix(b: Uint8Array): number {
  const n = b.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const c = b[n - back];
    if ((c & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Reads one pipe, breaking output at line ends (one line per message in lines
 * mode, coalesced chunks in chunks mode), honouring backpressure.
 */
class StreamPump {
  bytes = 0;
  invalidChunks = 0;
  reads = 0;
  waitingOnSink = false;
  #pending: Uint8Array[] = [];
  #pendingLen = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerReads = 0;
  #closed = false;

  constructor(
    private readonly stream: "stdout" | "stderr",
    private readonly sink: JobSink,
    private readonly maxChunk: number,
    private readonly partialMs: number,
    private readonly onData: () => void,
    private readonly lines: boolean,
  ) {}

  /**
   * Reads the pipe into one buffer of its own (a BYOB reader), used again for
   * every read once what it held has been handled (what is kept is copied): a
   * default reader allocates a new buffer a read (~12 KB from a pipe) that only
   * the GC frees, which grew the server's RSS by tens of MiB under a stream of
   * output.
   */
  async run(readable: ReadableStream<Uint8Array>): Promise<void> {
    let byob: ReadableStreamBYOBReader | undefined;
    let plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      byob = readable.getReader({ mode: "byob" });
    } catch {
      plain = readable.getReader(); // not a byte stream
    }
    let buf = new Uint8Array(READ_BYTES);
    try {
      while (true) {
        const gate = this.sink.ready?.();
        if (gate) await this.#hold(gate);
        const { value, done } = byob ? await byob.read(buf) : await plain!.read();
        if (done || value === undefined) break;
        this.reads++;
        this.bytes += value.length;
        this.onData();
        const more = this.#take(value);
        if (more) await more;
        if (byob) buf = new Uint8Array(value.buffer as ArrayBuffer); // the same memory, given back
      }
    } catch {
      // The pipe broke (the process is gone): what was read is flushed below.
    } finally {
      this.#closed = true;
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      await this.#flushAll();
      (byob ?? plain)!.releaseLock();
    }
  }

  /** Waits for a slow consumer; the pipe is not read meanwhile (the job blocks on it). */
  async #hold(gate: Promise<void>): Promise<void> {
    this.waitingOnSink = true;
    await gate;
    this.waitingOnSink = false;
    this.onData();
  }

  #take(value: Uint8Array): Promise<void> | undefined {
    const nl = value.lastIndexOf(10);
    if (nl < 0) {
      this.#pending.push(value.slice()); // the read buffer is used again
      this.#pendingLen += value.length;
      if (this.#pendingLen >= this.maxChunk) return this.#flushAll();
      this.#armTimer();
      return undefined;
    }
    // Everything up to the last newline goes now (in pieces of at most maxChunk).
    const head = nl + 1 === value.length ? value : value.subarray(0, nl + 1);
    this.#pending.push(head);
    this.#pendingLen += head.length;
    const more = this.#flushAll();
    if (nl + 1 < value.length) {
      const tail = value.slice(nl + 1);
      this.#pending.push(tail);
      this.#pendingLen += tail.length;
      this.#armTimer();
    }
    return more;
  }

  /**
   * Sends a partial line (no newline yet) once the pipe has been quiet for
   * `partialMs`, so prompts such as `Password: ` show up. Never while we are
   * holding back for a slow consumer (the rest of the line is then waiting in
   * the pipe), and only after one more turn of the event loop, so a read that
   * completed while the loop was busy is taken first.
   */
  #armTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timerReads = this.reads;
    this.#timer = setTimeout(() => {
      if (this.#pendingLen === 0) return void (this.#timer = undefined);
      if (this.reads !== this.#timerReads || this.waitingOnSink) {
        this.#timer = undefined;
        return this.#armTimer(); // data still flowing, or held back
      }
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (this.reads !== this.#timerReads || this.waitingOnSink) return this.#armTimer();
        // What is pending holds no newline, so this is one message (or a few for a
        // line over the chunk limit): it never needs to wait on the sink.
        void this.#flushAll();
      }, 0);
    }, this.partialMs);
  }

  /**
   * Sends everything pending. Resolves at once (undefined) unless, in lines mode,
   * the sink asked to wait part-way; the caller then awaits the rest.
   */
  #flushAll(): Promise<void> | undefined {
    if (this.#pendingLen === 0) return undefined;
    let buf = concat(this.#pending, this.#pendingLen);
    this.#pending = [];
    this.#pendingLen = 0;
    const pieces: Uint8Array[] = [];
    while (buf.length > this.maxChunk) {
      // Break a long run at the last newline that fits, else at the size limit.
      let cut = buf.subarray(0, this.maxChunk).lastIndexOf(10) + 1;
      if (cut === 0) cut = completeUtf8Prefix(buf.subarray(0, this.maxChunk)) || this.maxChunk;
      pieces.push(buf.subarray(0, cut));
      buf = buf.subarray(cut);
    }
    if (!this.#closed && buf[buf.length - 1] !== 10) {
      // Keep an incomplete UTF-8 sequence for the next chunk.
      const ok = completeUtf8Prefix(buf);
      if (ok < buf.length) {
        this.#pending = [buf.slice(ok)];
        this.#pendingLen = buf.length - ok;
        buf = buf.subarray(0, ok);
        this.#armTimer();
      }
    }
    if (buf.length > 0) pieces.push(buf);
    for (let i = 0; i < pieces.length; i++) {
      if (!this.lines) {
        this.#emit(pieces[i]);
        continue;
      }
      const more = this.#emitLines(pieces[i]);
      if (more) return this.#finishLines(more, pieces.slice(i + 1));
    }
    return undefined;
  }

  async #finishLines(more: Promise<void>, rest: Uint8Array[]): Promise<void> {
    await more;
    for (const piece of rest) await this.#emitLines(piece);
  }

  /** Sends one message's bytes (text, plus the raw bytes when they are not UTF-8). */
  #emit(bytes: Uint8Array): void {
    let text: string;
    try {
      text = fatalDecoder.decode(bytes);
    } catch {
      this.invalidChunks++;
      this.sink.output(this.stream, lenientDecoder.decode(bytes), bytes.slice());
      return;
    }
    this.sink.output(this.stream, text);
  }

  /**
   * Sends one message per line of `bytes` (which holds whole lines, or one
   * partial line at its end). Decodes once and slices the string; only bytes
   * that are not UTF-8 fall back to a decode per line. Every
   * {@linkcode LINES_PER_GATE} lines it asks the sink whether to wait, so a slow
   * consumer bounds what is queued even for a read of many short lines.
   */
  #emitLines(bytes: Uint8Array): Promise<void> | undefined {
    let text: string;
    try {
      text = fatalDecoder.decode(bytes);
    } catch {
      return this.#emitRawLines(bytes, 0);
    }
    return this.#emitTextLines(text, 0);
  }

  #emitTextLines(text: string, from: number): Promise<void> | undefined {
    let start = from;
    let sent = 0;
    while (start < text.length) {
      const nl = text.indexOf("\n", start);
      const end = nl === -1 ? text.length : nl + 1;
      this.sink.output(this.stream, text.slice(start, end));
      start = end;
      if (++sent === LINES_PER_GATE && start < text.length) {
        sent = 0;
        const gate = this.sink.ready?.();
        if (gate) return this.#hold(gate).then(() => this.#emitTextLines(text, start));
      }
    }
    return undefined;
  }

  #emitRawLines(bytes: Uint8Array, from: number): Promise<void> | undefined {
    let start = from;
    let sent = 0;
    while (start < bytes.length) {
      const nl = bytes.indexOf(10, start);
      const end = nl === -1 ? bytes.length : nl + 1;
      this.#emit(bytes.subarray(start, end));
      start = end;
      if (++sent === LINES_PER_GATE && start < bytes.length) {
        sent = 0;
        const gate = this.sink.ready?.();
        if (gate) return this.#hold(gate).then(() => this.#emitRawLines(bytes, start));
      }
    }
    return undefined;
  }
}

/**
 * A running job. Create one with {@linkcode startJob}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startJob } from "./supervisor.ts";
 * const job = startJob({ command: "sleep 30" }, { output() {} });
 * job.pause();
 * await job.cancel(); // SIGCONT, SIGTERM, grace, SIGKILL on the whole group
 * assert.equal((await job.done).status, "canceled");
 * ```
 */
export class Job {
  /** Process id of the leader. */
  readonly pid: number;
  /** Process group id (equal to pid: the leader calls setsid). */
  readonly pgid: number;
  /** Resolves once the job has ended, all its output delivered and its group gone. */
  readonly done: Promise<JobResult>;
  #state: JobState = "running";
  #endReason: EndReason | undefined;
  #ending: Promise<void> | undefined;
  #lastActivity = performance.now();
  #startedAt = performance.now();
  #timers: LongTimer[] = [];
  readonly #grace: number;
  readonly #pumps: StreamPump[];
  /** True once the leader has exited (its pid may then be anyone's). */
  #exited = false;

  /** @internal Use {@linkcode startJob}. */
  constructor(child: Deno.ChildProcess, opts: JobOptions, sink: JobSink) {
    this.pid = child.pid;
    this.pgid = child.pid;
    this.#grace = opts.graceMs ?? 2000;
    const touch = () => {
      this.#lastActivity = performance.now();
    };
    const maxChunk = opts.maxChunkBytes ?? 256 * 1024;
    const partialMs = opts.partialLineMs ?? 200;
    const lines = (opts.outputMode ?? "lines") === "lines";
    const out = new StreamPump("stdout", sink, maxChunk, partialMs, touch, lines);
    const err = new StreamPump("stderr", sink, maxChunk, partialMs, touch, lines);
    this.#pumps = [out, err];
    if (opts.timeoutS !== undefined) {
      this.#timers.push(new LongTimer(opts.timeoutS * 1000, () => this.#end("timeout")));
    }
    if (opts.stallTimeoutS !== undefined) this.#watchStall(opts.stallTimeoutS * 1000);
    if (opts.stdin !== undefined) void this.#writeStdin(child, opts.stdin);
    this.done = this.#supervise(child, out, err);
  }

  /** running, paused, ending (being killed) or done. */
  get state(): JobState {
    return this.#state;
  }

  /** Bytes read so far from the job's stdout and stderr. */
  get bytesRead(): { stdout: number; stderr: number } {
    return { stdout: this.#pumps[0].bytes, stderr: this.#pumps[1].bytes };
  }

  /** Seconds since the job started. */
  get elapsed(): number {
    return (performance.now() - this.#startedAt) / 1000;
  }

  /** Stops the whole group (SIGSTOP). The stall clock stops too; the whole-run timeout does not. */
  pause(): boolean {
    if (this.#state !== "running") return false;
    signalJob(this.pgid, "SIGSTOP", this.#leader);
    this.#state = "paused";
    return true;
  }

  /** Continues a paused group (SIGCONT). */
  resume(): boolean {
    if (this.#state !== "paused") return false;
    signalJob(this.pgid, "SIGCONT", this.#leader);
    this.#state = "running";
    this.#lastActivity = performance.now();
    return true;
  }

  /** Ends the whole group; the final status is `reason` (default `canceled`). */
  cancel(reason: EndReason = "canceled"): Promise<JobResult> {
    this.#end(reason);
    return this.done;
  }

  /**
   * Ends the whole group like {@linkcode Job.cancel}, but resolves as soon as the
   * group is gone (or has been sent SIGKILL), before the rest of its output has
   * been delivered; `done` still resolves after that.
   */
  end(reason: EndReason = "canceled"): Promise<void> {
    this.#end(reason);
    return this.#ending ?? Promise.resolve();
  }

  #end(reason: EndReason): void {
    if (this.#state === "done" || this.#ending !== undefined) return;
    this.#endReason = reason;
    this.#state = "ending";
    this.#clearTimers();
    this.#ending = endProcessGroup(this.pgid, this.#grace, this.#leader);
  }

  /** The leader's pid while it runs: it may not be in its own group yet (see startJob). */
  get #leader(): number | undefined {
    return this.#exited ? undefined : this.pid;
  }

  #watchStall(stallMs: number): void {
    const check = () => {
      if (this.#state === "done" || this.#state === "ending") return;
      const quiet = performance.now() - this.#lastActivity;
      const held = this.#state === "paused" || this.#pumps.some((p) => p.waitingOnSink);
      if (held) this.#lastActivity = performance.now();
      if (!held && quiet >= stallMs) return this.#end("stalled");
      this.#timers.push(new LongTimer(held ? stallMs : Math.max(5, stallMs - quiet), check));
    };
    this.#timers.push(new LongTimer(stallMs, check));
  }

  #clearTimers(): void {
    for (const t of this.#timers) t.clear();
    this.#timers = [];
  }

  async #writeStdin(child: Deno.ChildProcess, text: string): Promise<void> {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(text));
      await w.close();
    } catch {
      // The job closed its stdin or ended before reading it all; nothing to deliver.
    }
  }

  async #supervise(
    child: Deno.ChildProcess,
    out: StreamPump,
    err: StreamPump,
  ): Promise<JobResult> {
    const pumping = Promise.all([out.run(child.stdout), err.run(child.stderr)]);
    const status = await child.status;
    this.#exited = true;
    // The leader is gone; anything left in its group must go too. Processes that
    // still hold the pipes get the same escalation as a cancel.
    if (this.#ending === undefined) this.#ending = endProcessGroup(this.pgid, this.#grace);
    await this.#ending;
    await pumping;
    this.#clearTimers();
    this.#state = "done";
    const signal = status.signal ?? null;
    const exitCode = signal ? 128 + (SIGNAL_NUMBERS[signal] ?? 0) : status.code;
    let result: JobStatus;
    if (this.#endReason) result = this.#endReason;
    else if (signal) result = "killed";
    else result = status.code === 0 ? "completed" : "failed";
    return {
      status: result,
      exitCode,
      signal,
      executionTime: (performance.now() - this.#startedAt) / 1000,
      stdoutBytes: out.bytes,
      stderrBytes: err.bytes,
      invalidUtf8Chunks: out.invalidChunks + err.invalidChunks,
    };
  }
}

/** A job that could not be started; `field` names the option at fault. */
export class StartError extends Error {
  /** `argv`, `argv[i]`, `command`, `cwd`, `env` or `env.NAME`. */
  readonly field: string;
  /** Creates the error; {@linkcode startJob} starts `message` with `field` (`cwd: no such …`). */
  constructor(message: string, field: string) {
    super(message);
    this.name = "StartError";
    this.field = field;
  }
}

/**
 * The longest single argument or `NAME=value` string Linux passes to a program
 * (`MAX_ARG_STRLEN`, 32 pages of 4 KiB); longer ones make `execve` fail with E2BIG.
 */
export const MAX_ARG_STRLEN = 131072;

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length + 1; // + its NUL

/**
 * Says which part of a request made `execve` fail with E2BIG ("Argument list too long"):
 * a single string over {@linkcode MAX_ARG_STRLEN} (`env.NAME`, `command`, `argv[i]`), else
 * whichever of the request's `env` and its command/argv is larger, so an oversized `env`
 * is never reported against `command`.
 */
function tooBig(argv: string[], env: Record<string, string>, cmdField: string): StartError {
  const why = "the system refuses to start a program with more (E2BIG)";
  for (const [k, v] of Object.entries(env)) {
    const n = utf8Bytes(`${k}=${v}`);
    if (n > MAX_ARG_STRLEN) {
      return new StartError(
        `env.${k}: variable of ${n} bytes is over the ${MAX_ARG_STRLEN}-byte limit of one ` +
          `environment string; ${why}`,
        `env.${k}`,
      );
    }
  }
  for (const [i, a] of argv.entries()) {
    const n = utf8Bytes(a);
    if (n > MAX_ARG_STRLEN) {
      const f = cmdField === "argv" ? `argv[${i}]` : "command";
      return new StartError(
        `${f}: ${n} bytes is over the ${MAX_ARG_STRLEN}-byte limit of one argument; ${why}`,
        f,
      );
    }
  }
  const envBytes = Object.entries(env).reduce((n, [k, v]) => n + utf8Bytes(`${k}=${v}`), 0);
  const argBytes = argv.reduce((n, a) => n + utf8Bytes(a), 0);
  const f = envBytes >= argBytes ? "env" : cmdField;
  return new StartError(
    `${f}: env (${envBytes} bytes) and ${cmdField} (${argBytes} bytes) together are over the ` +
      `system's limit on arguments plus environment; ${why}`,
    f,
  );
}

/**
 * Starts a job in its own process group. Throws {@linkcode StartError} when the
 * program or the working directory does not exist, or the program cannot be run.
 *
 * The job is started as `setsid PROGRAM…` (util-linux or busybox), which calls
 * setsid(2) and execs the program in the same process, so pid = pgid; without a
 * `setsid` on the host, with `detached: true` (see `setsidPath` for why not always).
 * Until setsid(2) has run (a moment after the start) the job is one process still
 * in the server's group: {@linkcode Job.pause}, {@linkcode Job.cancel} and the
 * timeouts then signal that process alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startJob } from "./supervisor.ts";
 * const chunks: string[] = [];
 * const job = startJob({ command: "printf 'a\\nb\\n'" }, { output: (_s, t) => chunks.push(t) });
 * await job.done;
 * assert.equal(chunks.join(""), "a\nb\n");
 * ```
 */
export function startJob(opts: JobOptions, sink: JobSink): Job {
  const argv = opts.argv ?? ["/bin/sh", "-c", opts.command ?? ""];
  if (opts.cwd !== undefined) {
    let isDir = false;
    try {
      isDir = Deno.statSync(opts.cwd).isDirectory;
    } catch { /* reported below */ }
    if (!isDir) throw new StartError(`cwd: no such directory: ${opts.cwd}`, "cwd");
  }
  const requestEnv = opts.runAs ? { ...runAsEnv(opts.runAs), ...opts.env } : opts.env;
  // The allow-listed part of the server's own environment is read at most once a second
  // (spawn.ts); an embedding that names another environment (tests) is filtered each time.
  const env = opts.serverEnv
    ? jobEnvironment({ ...opts.serverEnv }, requestEnv, opts.passEnv)
    : { ...baseEnvironment(opts.passEnv), ...requestEnv };
  const field = opts.argv ? "argv" : "command";
  const viaSetsid = setsid();
  let spawned = argv;
  if (opts.runAs || viaSetsid) {
    // setpriv and setsid would start and then fail to exec: say "not found" (or "permission
    // denied") as a start of the program itself does.
    const found = findProgram(argv[0], env.PATH, opts.cwd);
    if (!found.found) throw new StartError(`${field}: program not found: ${argv[0]}`, field);
    if (!found.runnable) throw new StartError(`${field}: permission denied: ${argv[0]}`, field);
  }
  if (opts.runAs) spawned = runAsArgv(opts.runAs, argv);
  if (viaSetsid) spawned = [viaSetsid, ...spawned];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(spawned[0], {
      args: spawned.slice(1),
      cwd: opts.cwd,
      env,
      clearEnv: true,
      stdin: opts.stdin !== undefined ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      detached: viaSetsid === undefined,
    }).spawn();
  } catch (e) {
    if (/Argument list too long|os error 7\b/.test((e as Error).message)) {
      throw tooBig(opts.argv ?? [opts.command ?? ""], opts.env ?? {}, field);
    }
    if (e instanceof Deno.errors.NotFound) {
      throw new StartError(`${field}: program not found: ${argv[0]}`, field);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new StartError(`${field}: permission denied: ${argv[0]}`, field);
    }
    throw new StartError(`${field}: could not start ${argv[0]}: ${(e as Error).message}`, field);
  }
  return new Job(child, opts, sink);
}

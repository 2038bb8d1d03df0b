/**
 * Console progress of a `ccx stress` run.
 *
 * On a terminal: one live status line, rewritten in place (`\r` + erase line) with done/total,
 * passed/failed/errors, elapsed time, the running tasks with how long each has been running
 * (longest first, so a hung task shows) and how many processes they hold, cut to the terminal
 * width;
 * every finished task is printed as a permanent line above it. Elsewhere (CI logs, pipes): plain
 * lines only, one per finished task, without control characters:
 *
 * ```text
 * [12/50] PASS simple_1 (0.4s)
 * [13/50] FAIL simple_2 (1.2s) — missing pattern "4"
 * … still running: simple_3 for 1m 30s, 2.1 KB of output, last tool call Bash {"command":"make"}
 * ```
 *
 * and, there, every `stillRunningEveryS` seconds (default 30), one `still running` line per task
 * that is still running, so a long or stuck task is never silent in a CI log.
 *
 * Writes to stderr by default, so stdout stays free for the summary table and the ratio line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Progress } from "./progress.ts";
 * const chunks: string[] = [];
 * const out = { writeSync: (b: Uint8Array) => (chunks.push(new TextDecoder().decode(b)), b.length) };
 * const p = new Progress({ total: 2, out, isTerminal: false }); // default: stderr, live line on a terminal
 * p.start("simple_1");
 * p.finish({ id: "simple_1", status: "passed", durationS: 0.4, reason: "" });
 * p.finish({ id: "simple_2", status: "failed", durationS: 1.2, reason: 'missing pattern "4"' });
 * p.stop();
 * assert.equal(chunks.join(""), '[1/2] PASS simple_1 (0.4s)\n[2/2] FAIL simple_2 (1.2s) — missing pattern "4"\n');
 * ```
 * @module
 */

import { oneLine } from "./report/format.ts";
import { statusWord } from "./report/console.ts";
import type { TestStatus } from "./report/model.ts";
import { formatBytes, formatDuration, formatElapsed, plural } from "../common/format.ts";

/** A synchronous byte sink such as `Deno.stderr`. */
export interface SyncWriter {
  /** Write some bytes, return how many were written. */
  writeSync(b: Uint8Array): number;
}

/** Where progress goes: a synchronous writer (`Deno.stderr`) or a `WritableStream` of bytes. */
export type ProgressOutput = SyncWriter | WritableStream<Uint8Array>;

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** Number of tasks the run will finish. */
  total: number;
  /** The sink; default `Deno.stderr`. */
  out?: ProgressOutput;
  /** Whether `out` is a terminal (live line); default: `out.isTerminal()` when it has one. */
  isTerminal?: boolean;
  /** ANSI colours; default {@linkcode colorEnabled}`(isTerminal)`. Never changes the words. */
  color?: boolean;
  /** Terminal width for the live line; default `Deno.consoleSize().columns`, else 80. */
  columns?: number;
  /**
   * How many processes the running tasks hold (shown on the live line; asked at most once a
   * second); `undefined` when unknown (tasks on another host).
   */
  processes?: () => number | undefined;
  /**
   * Not on a terminal: print a `still running` line for every running task this often, in
   * seconds (0: never). Default 0.
   */
  stillRunningEveryS?: number;
}

/** What {@linkcode Progress.finish} needs about a finished task. */
export interface FinishedTask {
  /** Task id. */
  id: string;
  /** Its outcome. */
  status: TestStatus;
  /** Wall time in seconds. */
  durationS: number;
  /** Why (shown after `—` for failures and errors). */
  reason: string;
  /** The fleet worker that ran it (`ccx stress --queue`), shown as `on WORKER`. */
  worker?: string;
}

/**
 * Whether to colour by default: on a terminal, and `NO_COLOR` unset or empty
 * (https://no-color.org). Without env permission it falls back to `Deno.noColor`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { colorEnabled } from "./progress.ts";
 * assert.equal(colorEnabled(false), false); // pipes and CI logs: never
 * assert.equal(colorEnabled(true), !Deno.env.get("NO_COLOR")); // a terminal: unless NO_COLOR is set
 * ```
 */
export function colorEnabled(isTerminal: boolean): boolean {
  if (!isTerminal) return false;
  try {
    return !Deno.env.get("NO_COLOR");
  } catch {
    return !Deno.noColor;
  }
}

const CLEAR = "\r\x1b[2K";
const REDRAW_MS = 100;

/**
 * Live progress of a run. Call {@linkcode Progress.start} when a task starts,
 * {@linkcode Progress.finish} when it ends, {@linkcode Progress.note} for any other message, and
 * {@linkcode Progress.stop} at the end (erases the live line, stops the redraw timer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Progress } from "./progress.ts";
 * const lines: string[] = [];
 * const out = { writeSync: (b: Uint8Array) => (lines.push(new TextDecoder().decode(b)), b.length) };
 * const p = new Progress({ total: 1, out, isTerminal: false });
 * p.finish({ id: "simple_1", status: "failed", durationS: 1.2, reason: "exit 1" });
 * p.stop();
 * assert.equal(lines.join(""), "[1/1] FAIL simple_1 (1.2s) — exit 1\n");
 * ```
 */
export class Progress {
  readonly #total: number;
  readonly #terminal: boolean;
  readonly #color: boolean;
  readonly #columns?: number;
  readonly #write: (bytes: Uint8Array) => void;
  readonly #release: () => void;
  readonly #enc = new TextEncoder();
  /** Running task ids, each with how the live line shows it (`id` or `id@worker`) and when it started. */
  readonly #running = new Map<string, { label: string; since: number }>();
  /** Output seen per running task: bytes, the unfinished last line, the last tool call. */
  readonly #activity = new Map<string, { bytes: number; partial: string; tool?: string }>();
  #stillTimer?: ReturnType<typeof setInterval>;
  readonly #processes?: () => number | undefined;
  #procCount?: number;
  #procAt = -Infinity;
  readonly #t0 = performance.now();
  #done = 0;
  #passed = 0;
  #failed = 0;
  #errors = 0;
  #timer?: ReturnType<typeof setInterval>;
  #lastDraw = -Infinity;
  #drawn = "";
  #stopped = false;
  #broken = false;

  /** Create the progress display; nothing is written until the first event. */
  constructor(opts: ProgressOptions) {
    this.#total = opts.total;
    const out = opts.out ?? Deno.stderr;
    this.#terminal = opts.isTerminal ?? isTerminalOf(out);
    this.#color = opts.color ?? colorEnabled(this.#terminal);
    this.#columns = opts.columns;
    this.#processes = opts.processes;
    const every = opts.stillRunningEveryS ?? 0;
    if (!this.#terminal && every > 0) {
      this.#stillTimer = setInterval(() => this.#stillRunning(), every * 1000);
      Deno.unrefTimer(this.#stillTimer);
    }
    if ("writeSync" in out) {
      this.#write = (bytes) => {
        let off = 0;
        while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
      };
      this.#release = () => {};
    } else {
      const writer = out.getWriter();
      let last: Promise<void> = Promise.resolve();
      this.#write = (bytes) => {
        last = writer.write(bytes).catch(() => {});
      };
      this.#release = () => void last.finally(() => writer.releaseLock());
    }
  }

  /**
   * A task started: it joins the running list of the live line (terminal only), shown as
   * `id@where` when `where` (a fleet worker) is given.
   */
  start(id: string, where?: string): void {
    this.#running.set(id, { label: where ? `${id}@${where}` : id, since: performance.now() });
    if (!this.#terminal || this.#stopped) return;
    if (performance.now() - this.#lastDraw >= REDRAW_MS) this.#emit("");
  }

  /**
   * Output of a running task (its id, or `id.iN` for an instance of a concurrent task): counted
   * for the `still running` lines, which also name the last tool call its stream-json made.
   */
  output(id: string, type: "stdout" | "stderr", data: string): void {
    const a = this.#activityOf(id);
    if (!a) return;
    a.bytes += this.#enc.encode(data).length;
    if (type !== "stdout") return;
    const lines = (a.partial + data).split("\n");
    a.partial = lines.pop() ?? "";
    if (a.partial.length > 1_000_000) a.partial = ""; // not a stream-json line worth waiting for
    for (const line of lines) a.tool = lastToolCall(line) ?? a.tool;
  }

  /**
   * What a fleet worker reported of a running task: its output so far in bytes, and its last
   * line (a tool call there is remembered).
   */
  outputSoFar(id: string, bytes: number, lastLine?: string): void {
    const a = this.#activityOf(id);
    if (!a) return;
    a.bytes = Math.max(a.bytes, bytes);
    if (lastLine) a.tool = lastToolCall(lastLine) ?? a.tool;
  }

  #activityOf(id: string) {
    if (this.#stillTimer === undefined) return undefined; // nobody will print it
    const key = this.#running.has(id) ? id : id.replace(/\.i\d+$/, "");
    if (!this.#running.has(key)) return undefined;
    let a = this.#activity.get(key);
    if (!a) this.#activity.set(key, a = { bytes: 0, partial: "" });
    return a;
  }

  /** One line per running task: how long, how much output, the last tool call. */
  #stillRunning(): void {
    if (this.#stopped) return;
    const now = performance.now();
    const running = [...this.#running].sort((a, b) => a[1].since - b[1].since);
    for (const [id, r] of running) {
      const a = this.#activity.get(id);
      const out = a?.bytes ? `${formatBytes(a.bytes)} of output` : "no output yet";
      const tool = a?.tool ? `, last tool call ${a.tool}` : "";
      this.#emit(
        `… still running: ${oneLine(r.label, 200)} for ${
          formatElapsed((now - r.since) / 1000)
        }, ${out}${tool}\n`,
      );
    }
  }

  /** A task finished: counts it and prints its permanent line. */
  finish(result: FinishedTask): void {
    this.#running.delete(result.id);
    this.#activity.delete(result.id);
    this.#done++;
    if (result.status === "passed") this.#passed++;
    else if (result.status === "failed") this.#failed++;
    else this.#errors++;
    let line = `[${this.#done}/${this.#total}] ${statusWord(result.status, this.#color)} ${
      oneLine(result.id, 200)
    } (${formatDuration(result.durationS)})`;
    if (result.worker) line += ` on ${oneLine(result.worker, 100)}`;
    const reason = oneLine(result.reason);
    if (result.status !== "passed" && reason) line += ` — ${reason}`;
    this.#emit(line + "\n");
  }

  /** Print a message as permanent line(s), above the live line on a terminal. */
  note(text: string): void {
    const lines = text.split(/\r?\n/).map((l) => oneLine(l, 2000));
    this.#emit(lines.join("\n") + "\n");
  }

  /** Erase the live line and stop redrawing. Safe to call twice. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#stillTimer !== undefined) clearInterval(this.#stillTimer);
    this.#stillTimer = undefined;
    if (this.#terminal && this.#drawn !== "") this.#send(CLEAR);
    this.#drawn = "";
    this.#release();
  }

  /** The live status line for the current state, cut to the terminal width. */
  #liveLine(): string {
    const elapsed = formatElapsed((performance.now() - this.#t0) / 1000);
    let line = `[${this.#done}/${this.#total}] ${this.#passed} passed, ${this.#failed} failed, ` +
      `${plural(this.#errors, "error")} · ${elapsed}`;
    if (this.#running.size) {
      const now = performance.now();
      // Longest-running first: a hung task is the first thing on the line.
      const ids = [...this.#running.values()].sort((a, b) => a.since - b.since)
        .map((r) => `${oneLine(r.label, 60)} ${formatElapsed((now - r.since) / 1000)}`).join(", ");
      const procs = this.#procs(now);
      const what = procs === undefined
        ? `${this.#running.size}`
        : `${this.#running.size}, ${procs} process${procs === 1 ? "" : "es"}`;
      line += ` · running (${what}): ${ids}`;
    }
    const width = Math.max(10, this.#width() - 1); // never touch the last column: no wrap
    const cps = Array.from(line);
    return cps.length > width ? cps.slice(0, width - 1).join("") + "…" : line;
  }

  #procs(now: number): number | undefined {
    if (!this.#processes) return undefined;
    if (now - this.#procAt >= 1000) {
      this.#procAt = now;
      try {
        this.#procCount = this.#processes();
      } catch {
        this.#procCount = undefined;
      }
    }
    return this.#procCount;
  }

  #width(): number {
    if (this.#columns !== undefined) return this.#columns;
    try {
      return Deno.consoleSize().columns || 80;
    } catch {
      return 80;
    }
  }

  /** Print `permanent` (may be empty) and, on a terminal, redraw the live line after it. */
  #emit(permanent: string): void {
    if (!this.#terminal || this.#stopped) {
      if (permanent) this.#send(permanent);
      return;
    }
    this.#ensureTimer();
    const live = this.#liveLine();
    this.#send(CLEAR + permanent + live);
    this.#drawn = live;
    this.#lastDraw = performance.now();
  }

  #ensureTimer(): void {
    if (this.#timer !== undefined) return;
    const timer = setInterval(() => {
      if (this.#liveLine() !== this.#drawn) this.#emit("");
    }, REDRAW_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #send(text: string): void {
    if (this.#broken) return;
    try {
      this.#write(this.#enc.encode(text));
    } catch {
      this.#broken = true; // a closed stderr must not crash the run
    }
  }
}

/**
 * The last tool call on one line of Claude's stream-json (an `assistant` message with a
 * `tool_use` block) as `Name {input}`, cut to 120 characters; `undefined` for any other line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lastToolCall } from "./progress.ts";
 * assert.equal(
 *   lastToolCall('{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}'),
 *   'Bash {"command":"ls"}',
 * );
 * ```
 */
export function lastToolCall(line: string): string | undefined {
  if (!line.includes('"tool_use"') || !line.trimStart().startsWith("{")) return undefined;
  try {
    const o = JSON.parse(line);
    const content = o?.type === "assistant" ? o.message?.content : undefined;
    if (!Array.isArray(content)) return undefined;
    const use = content.filter((c) => c?.type === "tool_use").at(-1);
    if (!use) return undefined;
    return oneLine(`${String(use.name ?? "?")} ${JSON.stringify(use.input ?? {})}`, 120);
  } catch {
    return undefined;
  }
}

function isTerminalOf(out: ProgressOutput): boolean {
  const f = (out as { isTerminal?: unknown }).isTerminal;
  if (typeof f !== "function") return false;
  try {
    return Boolean(f.call(out));
  } catch {
    return false;
  }
}

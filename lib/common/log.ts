/**
 * Operator logs of `ccx serve`: one line per event on stderr, every line with a
 * UTC timestamp; as text (`2026-12-01T14:45:33.123Z [ccx] job … started …`) or as
 * one JSON object a line (`--log-format json`) for log shippers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger("json", (line) => lines.push(line));
 * log("job j1 started", { event: "job_started", job_id: "j1", pid: 42 });
 * // {"ts":"2026-…Z","level":"info","msg":"job j1 started","event":"job_started","job_id":"j1","pid":42}
 * const { ts, ...rest } = JSON.parse(lines[0]);
 * assert.match(ts, /^\d{4}-\d\d-\d\dT.*Z$/);
 * assert.deepEqual(rest, { level: "info", msg: "job j1 started", event: "job_started", job_id: "j1", pid: 42 });
 * ```
 * @module
 */

/** How log lines are written: readable text, or one JSON object per line. */
export type LogFormat = "text" | "json";

/** Severity of a log line. */
export type LogLevel = "info" | "warn" | "error";

/** Structured fields of a log line (`event`, `job_id`, `pid`, …); `level` sets the severity. */
export type LogFields = Record<string, unknown> & { level?: LogLevel };

/** A log sink: a message, and fields that the JSON format keeps as keys. */
export type Logger = (msg: string, fields?: LogFields) => void;

const encoder = new TextEncoder();

/** Lines for stderr not written yet, and whether a write of them is scheduled. */
let pending: string[] = [];
let scheduled = false;

/**
 * Writes the log lines waiting for stderr, in one write, without going through
 * `console` formatting. Runs by itself a timer turn after the first of them, and
 * when the process exits; call it before ending the process otherwise.
 *
 * @example
 * ```ts
 * import { flushLogs } from "./log.ts";
 * flushLogs();
 * ```
 */
export function flushLogs(): void {
  scheduled = false;
  if (pending.length === 0) return;
  const bytes = encoder.encode(pending.join("\n") + "\n");
  pending = [];
  try {
    for (let at = 0; at < bytes.length;) at += Deno.stderr.writeSync(bytes.subarray(at));
  } catch {
    // stderr closed: logging must never take the server down.
  }
}

/**
 * The events whose lines are gathered: the two every job writes. Every other line
 * (the crash journal, sessions, shutdown) is written at once, so that a kill -9 right
 * after it cannot lose it.
 */
const GATHERED = new Set<unknown>(["job_started", "job_ended"]);

/**
 * The default sink: job lines are gathered and written together a timer turn later
 * (one write for a burst of jobs' lines, which a write each made several times
 * slower); any other line is written at once with whatever waits before it.
 */
function toStderr(line: string, urgent: boolean): void {
  pending.push(line);
  if (urgent) return flushLogs();
  if (scheduled) return;
  scheduled = true;
  Deno.unrefTimer(setTimeout(flushLogs, 0)); // never what keeps the process alive
}

// Deno.exit() and the end of the program dispatch `unload`: nothing gathered is lost.
globalThis.addEventListener("unload", flushLogs);

/**
 * A logger that stamps every line with the time (ISO 8601, UTC, milliseconds).
 *
 * @param format `text` (default): `TIMESTAMP [ccx] message`, with `level` shown when not info;
 *   `json`: `{"ts", "level", "msg", ...fields}`.
 * @param write Where finished lines go (default: stderr, gathered and written once a timer
 *   turn, warnings and errors at once; see {@linkcode flushLogs}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger("text", (l) => lines.push(l));
 * log("listening", { event: "listening" });
 * assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z \[ccx\] listening$/); // 2026-12-01T14:45:33.123Z [ccx] listening
 * ```
 */
export function createLogger(
  format: LogFormat = "text",
  write?: (line: string) => void,
): Logger {
  return (msg, fields = {}) => {
    const ts = new Date().toISOString();
    const { level = "info", ...rest } = fields;
    const line = format === "json"
      ? JSON.stringify({ ts, level, msg, ...rest })
      : `${ts} [ccx]${level === "info" ? "" : ` ${level}:`} ${msg}`;
    if (write) write(line);
    else toStderr(line, level !== "info" || !GATHERED.has(rest.event));
  };
}

/**
 * A logger that passes on to `log` only the lines `keep` accepts, judged by message and fields:
 * how `ccx serve --quiet` leaves out per-job lines, and how a silent in-process server still
 * says what is wrong with it.
 *
 * @example
 * ```ts
 * import { createLogger, filterLogger } from "./log.ts";
 * const lines: string[] = [];
 * const warnings = filterLogger(createLogger("text", (l) => lines.push(l)), (_msg, f) =>
 *   f.level === "warn" || f.level === "error");
 * warnings("job j1 started", { event: "job_started" }); // left out
 * warnings("disk full", { level: "warn", event: "journal_unwritable" }); // written
 * lines.length; // 1
 * ```
 */
export function filterLogger(
  log: Logger,
  keep: (msg: string, fields: LogFields) => boolean,
): Logger {
  return (msg, fields = {}) => {
    if (keep(msg, fields)) log(msg, fields);
  };
}

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

/** Writes one line to stderr, whole, without going through `console` formatting. */
function toStderr(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: logging must never take the server down.
  }
}

/**
 * A logger that stamps every line with the time (ISO 8601, UTC, milliseconds).
 *
 * @param format `text` (default): `TIMESTAMP [ccx] message`, with `level` shown when not info;
 *   `json`: `{"ts", "level", "msg", ...fields}`.
 * @param write Where finished lines go (default: stderr).
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
  write: (line: string) => void = toStderr,
): Logger {
  return (msg, fields = {}) => {
    const ts = new Date().toISOString();
    const { level = "info", ...rest } = fields;
    if (format === "json") {
      write(JSON.stringify({ ts, level, msg, ...rest }));
    } else {
      write(`${ts} [ccx]${level === "info" ? "" : ` ${level}:`} ${msg}`);
    }
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

/**
 * The files a run writes: the JSON, JUnit and HTML reports ({@linkcode writeReports}), each
 * appearing complete or not at all, and one output file per task ({@linkcode writeOutputFile}).
 *
 * @module
 */

import { dirname } from "node:path";
import { toHtml } from "./html.ts";
import { type ConversationItem, readConversation } from "./conversation.ts";
import { toJson } from "./json.ts";
import { toJunit } from "./junit.ts";
import type { RunReport } from "./model.ts";

/** Which report files to write (see {@linkcode writeReports}). */
export interface ReportPaths {
  /** Path of the JSON report. */
  json?: string;
  /** Path of the JUnit XML report. */
  junit?: string;
  /** Path of the HTML report (output-file links are made relative to it). */
  html?: string;
}

/** Write text to `path` via a temporary file and a rename, creating parent directories. */
async function writeAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Write each requested report (JSON, JUnit, HTML), creating parent directories; each file
 * appears complete or not at all (temporary file + rename). Returns the written paths in the
 * order json, junit, html.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeReports } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * const paths = await writeReports({
 *   runId: "r1", suite: "smoke", startedAt: new Date(), durationS: 1, results: [],
 *   interrupted: false, threshold: 10,
 * }, { json: `${dir}/out/report.json`, html: `${dir}/out/report.html` });
 * assert.deepEqual(paths, [`${dir}/out/report.json`, `${dir}/out/report.html`]);
 * assert.equal(JSON.parse(await Deno.readTextFile(paths[0])).suite, "smoke");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeReports(report: RunReport, opts: ReportPaths): Promise<string[]> {
  const written: string[] = [];
  if (opts.json !== undefined) {
    await writeAtomic(opts.json, toJson(report));
    written.push(opts.json);
  }
  if (opts.junit !== undefined) {
    await writeAtomic(opts.junit, toJunit(report));
    written.push(opts.junit);
  }
  if (opts.html !== undefined) {
    // Each task's conversation comes from its saved output.
    const conversations = new Map<string, ConversationItem[]>();
    for (const r of report.results) {
      const c = r.outputFile ? await readConversation(r.outputFile) : undefined;
      if (c) conversations.set(r.id, c);
    }
    await writeAtomic(opts.html, toHtml(report, { htmlPath: opts.html, conversations }));
    written.push(opts.html);
  }
  return written;
}

/** Header of a per-task output file (see {@linkcode writeOutputFile}). */
export interface OutputHeader {
  /** Task id. */
  task: string;
  /** Task name. */
  name: string;
  /** Status word (`passed`, `failed`, `error`, or a process status). */
  status: string;
  /** Wall time in seconds. */
  durationS: number;
  /** Exit code, `null` when the process never exited on its own. */
  exitCode: number | null;
  /** When the output was saved. */
  timestamp: Date;
  /** The command that ran. */
  command?: string;
  /** Why the task has its status. */
  reason?: string;
}

/** A header value on one line: line breaks shown as `\n`, other controls dropped. */
function headerValue(v: string): string {
  // deno-lint-ignore no-control-regex
  return v.replace(/\r?\n/g, "\\n").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
}

/**
 * Save one task's output: header lines (`Task:`, `Status:`, `Duration:`, `Exit code:`,
 * `Timestamp:`, then `Command:` and `Reason:` when given; each on one line), a line of 80 `-`,
 * then the output exactly as received. Parent directories are created.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeOutputFile } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await writeOutputFile(`${dir}/simple_1.txt`, {
 *   task: "simple_1", name: "2+2", status: "passed", durationS: 1.2, exitCode: 0,
 *   timestamp: new Date(),
 * }, "4\n");
 * const text = await Deno.readTextFile(`${dir}/simple_1.txt`);
 * assert.match(text, /simple_1/); // a header naming the task, then its output
 * assert.ok(text.endsWith("4\n"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeOutputFile(
  path: string,
  header: OutputHeader,
  body: string,
): Promise<void> {
  const lines = [
    `Task: ${headerValue(header.task)} - ${headerValue(header.name)}`,
    `Status: ${headerValue(header.status)}`,
    `Duration: ${(Number.isFinite(header.durationS) ? header.durationS : 0).toFixed(2)}s`,
    `Exit code: ${header.exitCode ?? "none"}`,
    `Timestamp: ${header.timestamp.toISOString()}`,
  ];
  if (header.command !== undefined) lines.push(`Command: ${headerValue(header.command)}`);
  if (header.reason !== undefined) lines.push(`Reason: ${headerValue(header.reason)}`);
  lines.push("-".repeat(80), "");
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const enc = new TextEncoder();
    for (const chunk of [enc.encode(lines.join("\n")), enc.encode(body)]) {
      let off = 0;
      while (off < chunk.length) off += await file.write(chunk.subarray(off));
    }
  } finally {
    file.close();
  }
}

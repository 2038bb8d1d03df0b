/**
 * Files a run could not write (a full `--out` disk, most often): a task's verdict never
 * depends on whether its output file could be saved, so the runner notes what was not
 * written, and `ccx stress` says so after its summary and exits 3.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Unwritten } from "./unwritten.ts";
 * const notes = new Unwritten();
 * const ok = await notes.write("/nonexistent/dir/a.txt", "output", (p) => Deno.writeTextFile(p, "x"));
 * assert.equal(ok, false);
 * assert.equal(notes.lines().length, 1); // ["could not write …: not written: 1 task output file (…)"]
 * ```
 * @module
 */

/** What kind of file was not written. */
export type UnwrittenKind = "output" | "report";

/** One file that could not be written. */
export interface UnwrittenFile {
  /** Its path. */
  path: string;
  /** A task's output file or a report. */
  kind: UnwrittenKind;
  /** Why. */
  error: Error;
  /** For a report: an older version of the file is still at `path`. */
  stale?: boolean;
}

/**
 * Whether `e` says the disk (or the user's quota) is full: ENOSPC, EDQUOT.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDiskFull } from "./unwritten.ts";
 * assert.equal(isDiskFull(new Error("No space left on device (os error 28)")), true);
 * assert.equal(isDiskFull(new Error("Permission denied (os error 13)")), false);
 * ```
 */
export function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return true;
  return /No space left on device|os error 28\b|Disk quota exceeded|os error 122\b/.test(
    String((e as Error)?.message ?? e),
  );
}

/** The list of files a run could not write, and the lines that tell the user. */
export class Unwritten {
  /** Every file not written, in the order it failed. */
  readonly files: UnwrittenFile[] = [];

  /** Notes a file that was not written. */
  add(path: string, kind: UnwrittenKind, error: unknown, stale = false): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.files.push({ path, kind, error: err, stale });
  }

  /** Runs `write(path)`; when it throws, notes the failure and resolves `false`. */
  async write(
    path: string,
    kind: UnwrittenKind,
    write: (path: string) => Promise<unknown>,
  ): Promise<boolean> {
    try {
      await write(path);
      return true;
    } catch (e) {
      this.add(path, kind, e);
      return false;
    }
  }

  /**
   * What to tell the user: one line naming the cause (`the disk is full` when it is) and
   * every report and the output files that were not written; empty when all were.
   */
  lines(): string[] {
    if (this.files.length === 0) return [];
    const full = this.files.some((f) => isDiskFull(f.error));
    const first = this.files.find((f) => isDiskFull(f.error)) ?? this.files[0];
    const cause = full
      ? `the disk is full (${first.error.message.replace(/\s*\(os error \d+\).*$/s, "")})`
      : `could not write files (${first.error.message})`;
    const what: string[] = [];
    for (const f of this.files.filter((f) => f.kind === "report")) {
      what.push(f.stale ? `${f.path} (an earlier state of the run is left there)` : f.path);
    }
    const outputs = this.files.filter((f) => f.kind === "output").map((f) => f.path);
    if (outputs.length > 0) {
      const shown = outputs.slice(0, 5).join(", ");
      const more = outputs.length > 5 ? `, and ${outputs.length - 5} more` : "";
      what.push(
        `${outputs.length} task output file${outputs.length === 1 ? "" : "s"} (${shown}${more})`,
      );
    }
    return [`${cause}: not written: ${what.join("; ")}`];
  }
}

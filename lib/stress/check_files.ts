/**
 * Hidden tests (`check_files`): the files of a directory next to the suite, read on the machine
 * that runs `ccx stress` and shipped with the task to whichever server runs it (`--server`, a
 * fleet worker, the in-process one), which writes them into the task's workspace after the
 * task ended and before its checks (`execute`'s `workspace.files`). Shipping them with the
 * request, rather than naming a directory on the server, is what makes a remote box work: it
 * needs no copy of the suite.
 *
 * The size is bounded so a request stays well under a server's message limit (4 MiB by
 * default): at most {@linkcode MAX_CHECK_FILES} files and {@linkcode MAX_CHECK_FILES_BYTES}
 * bytes in one directory.
 *
 * @example
 * ```ts
 * import { loadCheckFiles } from "./check_files.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/test_add.py`, "from add import add\nassert add(2, 3) == 5\n");
 * (await loadCheckFiles(dir)).map((f) => f.path); // ["test_add.py"]
 * ```
 * @module
 */

import { join, relative, sep } from "node:path";
import { MAX_WORKSPACE_FILES, type WorkspaceFile } from "../common/protocol.ts";
import type { SuiteTask } from "./suite_model.ts";

/** Most files one `check_files` directory may hold. */
export const MAX_CHECK_FILES: number = MAX_WORKSPACE_FILES;

/** Most bytes one `check_files` directory may hold (its files' contents together). */
export const MAX_CHECK_FILES_BYTES = 2 * 1024 * 1024;

const fatal = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads every file under `dir` (recursively, following symlinks to files) as
 * {@linkcode WorkspaceFile}s: text as is, anything else in base64, the permission bits kept.
 * Throws an Error naming the directory when it cannot be read or exceeds the bounds.
 */
export async function loadCheckFiles(dir: string): Promise<WorkspaceFile[]> {
  const out: WorkspaceFile[] = [];
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(d)) entries.push(e);
    entries.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const e of entries) {
      const abs = join(d, e.name);
      const st = await Deno.stat(abs);
      if (st.isDirectory) {
        await walk(abs);
        continue;
      }
      if (!st.isFile) continue;
      if (out.length >= MAX_CHECK_FILES) {
        throw new Error(`check_files ${dir}: more than ${MAX_CHECK_FILES} files`);
      }
      bytes += st.size;
      if (bytes > MAX_CHECK_FILES_BYTES) {
        throw new Error(
          `check_files ${dir}: more than ${MAX_CHECK_FILES_BYTES / 1024 / 1024} MiB of files`,
        );
      }
      const data = await Deno.readFile(abs);
      const path = relative(dir, abs).split(sep).join("/");
      const mode = (st.mode ?? 0o644) & 0o777;
      let file: WorkspaceFile;
      try {
        file = { path, content: fatal.decode(data) };
      } catch {
        file = { path, content: data.toBase64(), encoding: "base64" };
      }
      out.push(mode === 0o644 ? file : { ...file, mode });
    }
  };
  try {
    await walk(dir);
  } catch (e) {
    if ((e as Error).message.startsWith("check_files ")) throw e;
    throw new Error(`check_files ${dir}: cannot read it: ${(e as Error).message}`);
  }
  return out;
}

/**
 * The tasks with the files of their `check_files` read in (`checkFileData`), each directory
 * read once; tasks without one come back as they are. Throws like {@linkcode loadCheckFiles}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withCheckFiles } from "./check_files.ts";
 * import { parseSuite } from "./suite_load.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${dir}/hidden`);
 * Deno.writeTextFileSync(`${dir}/hidden/test_a.sh`, "test -s a.txt\n");
 * const { tasks } = parseSuite({
 *   tests: [
 *     { id: "a", command: "echo x > a.txt", check: "sh test_a.sh", check_files: "hidden" },
 *     { id: "b", command: "true", check: "true" },
 *   ],
 * }, `${dir}/suite.json`);
 * const [a, b] = await withCheckFiles(tasks);
 * assert.deepEqual(a.checkFileData, [{ path: "test_a.sh", content: "test -s a.txt\n" }]);
 * assert.equal(b.checkFileData, undefined); // no check_files
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function withCheckFiles(tasks: readonly SuiteTask[]): Promise<SuiteTask[]> {
  const read = new Map<string, Promise<WorkspaceFile[]>>();
  return await Promise.all(tasks.map(async (t) => {
    if (t.checkFiles === undefined || t.checkFileData) return t;
    let p = read.get(t.checkFiles);
    if (!p) read.set(t.checkFiles, p = loadCheckFiles(t.checkFiles));
    return { ...t, checkFileData: await p };
  }));
}

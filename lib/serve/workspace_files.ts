/**
 * Files a request writes into a workspace before its job starts (`execute`'s
 * `workspace.files`): how `ccx stress` puts a task's hidden tests into the
 * workspace the task left, after it ended and before its checks run.
 *
 * A workspace is written by the job that ran in it, so nothing found there is
 * trusted: no symlink is ever followed (a link in the way, where a file or a
 * directory of the request goes, is removed, not written through), whatever
 * stands at a file's path is replaced, and each file is created anew
 * (`O_EXCL`), so the server writes only inside the workspace.
 *
 * @example
 * ```ts
 * import { writeWorkspaceFiles } from "./workspace_files.ts";
 * const root = Deno.makeTempDirSync();
 * await writeWorkspaceFiles(root, [{ path: "tests/test_add.py", content: "assert True\n" }]);
 * Deno.readTextFileSync(`${root}/tests/test_add.py`); // "assert True\n"
 * ```
 * @module
 */

import { join } from "node:path";
import type { WorkspaceFile } from "../common/protocol.ts";
import { WorkspaceError } from "./workspace.ts";

async function lstat(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Writes `files` under `root` (a workspace's working directory), replacing whatever is at
 * their paths and making the directories they need, off the event loop; resolves with the
 * bytes written. Paths are relative and `/`-separated (checked again here: no `..`, not
 * absolute). Rejects with a {@linkcode WorkspaceError} naming `workspace.files[i]` when one
 * cannot be written (the files before it are written, the ones after it are not).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeWorkspaceFiles } from "./workspace_files.ts";
 * const root = Deno.makeTempDirSync();
 * Deno.symlinkSync("/etc", `${root}/tests`); // left by the job: never written through
 * await writeWorkspaceFiles(root, [{ path: "tests/t.sh", content: "exit 0\n", mode: 0o755 }]);
 * assert.equal(Deno.lstatSync(`${root}/tests`).isDirectory, true);
 * assert.equal(Deno.statSync(`${root}/tests/t.sh`).mode! & 0o777, 0o755);
 * Deno.removeSync(root, { recursive: true });
 * ```
 */
export async function writeWorkspaceFiles(
  root: string,
  files: readonly WorkspaceFile[],
): Promise<number> {
  let bytes = 0;
  for (const [i, f] of files.entries()) {
    const field = `workspace.files[${i}]`;
    const parts = f.path.split("/").filter((p) => p !== "" && p !== ".");
    if (f.path.startsWith("/") || parts.length === 0 || parts.includes("..")) {
      throw new WorkspaceError(`${field}.path`, `not a path inside the workspace: ${f.path}`);
    }
    try {
      let dir = root;
      for (const part of parts.slice(0, -1)) {
        dir = join(dir, part);
        const st = await lstat(dir);
        if (st?.isDirectory) continue;
        if (st) await Deno.remove(dir); // a file or a symlink where a directory goes
        await Deno.mkdir(dir);
      }
      const abs = join(dir, parts[parts.length - 1]);
      if (await lstat(abs)) await Deno.remove(abs, { recursive: true });
      const data = f.encoding === "base64"
        ? Uint8Array.fromBase64(f.content)
        : new TextEncoder().encode(f.content);
      const mode = f.mode ?? 0o644;
      await Deno.writeFile(abs, data, { createNew: true, mode });
      await Deno.chmod(abs, mode); // past the umask
      bytes += data.length;
    } catch (e) {
      if (e instanceof WorkspaceError) throw e;
      throw new WorkspaceError(field, `cannot write ${f.path}: ${(e as Error).message}`);
    }
  }
  return bytes;
}

/**
 * Helpers for the `ccx exec` tests (exec_test.ts, attempt_test.ts): a temp dir per test and
 * execTask() with the stand-in Claude CLI.
 * @module
 */

import { join } from "node:path";
import { type ExecOptions, type ExecResult, execTask } from "../../lib/exec/exec.ts";
import { FAKE_CLAUDE, KEY_ENV } from "./helpers.ts";

/** Runs `fn` in a fresh temp dir (also the fake's FAKE_CLAUDE_STATE), removed afterwards. */
export async function inTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_exec_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** execTask with the stand-in, in `dir`, progress lines collected. */
export async function runExec(
  dir: string,
  opts: Partial<ExecOptions> & { task: string },
): Promise<ExecResult & { lines: string[] }> {
  const lines: string[] = [];
  const r = await execTask({
    claude: FAKE_CLAUDE,
    cwd: dir,
    onProgress: (l) => lines.push(l),
    // Tests run as root on CI boxes, where the CLI needs IS_SANDBOX=1 (see the root tests).
    sandbox: true,
    ...opts,
    // The stand-in, like the real CLI, needs a key.
    env: { ...KEY_ENV, FAKE_CLAUDE_STATE: join(dir, ".fake_state"), ...opts.env },
  });
  return { ...r, lines };
}

/** Writes an executable shell script `name` in `dir` and returns its path. */
export async function script(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

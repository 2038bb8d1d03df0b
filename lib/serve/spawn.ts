/**
 * How a job's process is started, the parts that cost: through `setsid` by
 * `posix_spawn` rather than a fork of the whole server ({@linkcode setsid}), the
 * program checked where `execvp` would find it ({@linkcode findProgram}), and the
 * allow-listed environment read at most once a second ({@linkcode baseEnvironment}).
 * `startJob` (supervisor.ts) puts them together.
 *
 * @example
 * ```ts
 * import { findProgram, setsid } from "./spawn.ts";
 * console.log(setsid(), findProgram("true", "/usr/bin:/bin"));
 * ```
 * @module
 */

import { isAbsolute, join } from "node:path";
import { jobEnvironment } from "./job_env.ts";

/**
 * What `program` names, as `execvp` would look for it: a path (relative to `cwd`), or a
 * name looked up on `path`. `found`: a file is there; `runnable`: one of them has an
 * execute bit.
 *
 * @example
 * ```ts
 * import { findProgram } from "./spawn.ts";
 * findProgram("sh", "/usr/bin:/bin"); // { found: true, runnable: true }
 * ```
 */
export function findProgram(
  program: string,
  path: string | undefined,
  cwd?: string,
): { found: boolean; runnable: boolean } {
  const look = (p: string) => {
    try {
      const st = Deno.statSync(p);
      // A directory is found too: execve says EACCES for it, as for a file without x.
      return { found: true, runnable: st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0 };
    } catch {
      return { found: false, runnable: false };
    }
  };
  if (program.includes("/")) return look(isAbsolute(program) ? program : join(cwd ?? ".", program));
  // Where it was found last time is looked at first: one stat instead of one a PATH entry
  // before it (each miss is an error thrown, ~30 us).
  const key = `${path}\0${program}`;
  const known = foundOnPath.get(key);
  if (known !== undefined && look(known).runnable) return { found: true, runnable: true };
  let found = false;
  for (const d of (path ?? "").split(":")) {
    if (d === "") continue;
    const r = look(join(d, program));
    if (r.runnable) {
      if (foundOnPath.size >= 256) foundOnPath.clear();
      foundOnPath.set(key, join(d, program));
      return r;
    }
    found ||= r.found;
  }
  return { found, runnable: false };
}

/** Programs found on a PATH (`PATH\0name` → the file), for {@linkcode findProgram}. */
const foundOnPath = new Map<string, string>();

/** The allow-listed part of the server's environment, by `passEnv` list, and when it was read. */
let baseEnv:
  | { at: number; passEnv: readonly string[] | undefined; env: Record<string, string> }
  | undefined;

/**
 * The variables of the server's own environment a job gets (see job_env.ts), read
 * again at most once a second: reading and filtering the whole environment took
 * ~60 us a job, and a server does not change its environment as it runs.
 *
 * @example
 * ```ts
 * import { baseEnvironment } from "./spawn.ts";
 * baseEnvironment(undefined).PATH; // the server's PATH
 * ```
 */
export function baseEnvironment(passEnv: readonly string[] | undefined): Record<string, string> {
  const now = performance.now();
  if (baseEnv === undefined || baseEnv.passEnv !== passEnv || now - baseEnv.at > 1000) {
    baseEnv = { at: now, passEnv, env: jobEnvironment(Deno.env.toObject(), {}, passEnv) };
  }
  return baseEnv.env;
}

/** Where util-linux's (or busybox's) `setsid` is, or undefined. */
function findSetsid(): string | undefined {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]) {
    const p = join(dir, "setsid");
    try {
      const st = Deno.statSync(p);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * The `setsid` jobs start through. `Deno.Command`'s `detached: true` makes the child
 * call setsid(2) itself, but only by forking the whole server (Rust's `pre_exec`
 * rules out `posix_spawn`), which costs time in proportion to the server's memory
 * (2.6 ms at 90 MB, 10–23 ms at 150–250 MB, measured with Deno 2.9.6), every job, on
 * the event loop. `setsid PROGRAM…` started with `posix_spawn` gives the same
 * process group (it calls setsid(2), then execs the job in the same process: pid =
 * pgid) for about 1 ms. Resolved on first use; without one, `detached: true`.
 */
let setsidPath: string | null | undefined;

/**
 * The `setsid` jobs start through (see `setsidPath`), or undefined without one.
 *
 * @example
 * ```ts
 * import { setsid } from "./spawn.ts";
 * setsid(); // "/usr/bin/setsid"
 * ```
 */
export function setsid(): string | undefined {
  if (setsidPath === undefined) setsidPath = findSetsid() ?? null;
  return setsidPath ?? undefined;
}

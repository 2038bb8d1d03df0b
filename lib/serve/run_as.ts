/**
 * Jobs under another user (`ccx serve --run-as USER`): the server (root) starts
 * each job through `setpriv`, which switches to the user's uid, gid and groups
 * and then execs the job, so the job keeps the pid the server started (pid =
 * pgid, its own process group) and every signal to the group still reaches it.
 * A job under another user cannot read the server's `/proc/PID/environ` (where
 * `CCX_TOKEN` lives) nor the files the server's user keeps to itself (a `.env`
 * of mode 600), which the environment allow-list alone does not prevent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveRunAs, runAsArgv } from "./run_as.ts";
 * if (Deno.uid() === 0) {
 *   const user = resolveRunAs("nobody"); // checks at start that the server can switch to it
 *   const [setpriv, ...args] = runAsArgv(user, ["id", "-u"]);
 *   const out = new Deno.Command(setpriv, { args, stdout: "piped" }).outputSync();
 *   assert.equal(new TextDecoder().decode(out.stdout), `${user.uid}\n`);
 * } else {
 *   assert.throws(() => resolveRunAs("nobody"), /needs the server to run as root/);
 * }
 * ```
 * @module
 */

import { existsSync, lchownSync } from "node:fs";
import { isAbsolute, join } from "node:path";

/** The user jobs run as, resolved once at start. */
export interface RunAsUser {
  /** The user's name (as `/etc/passwd` or NSS gives it). */
  name: string;
  /** Its uid. */
  uid: number;
  /** Its primary gid. */
  gid: number;
  /** Its home directory (`HOME` of its jobs, unless a request sets one). */
  home: string;
  /** Absolute path of the `setpriv` that switches to it. */
  setpriv: string;
}

/** Why `--run-as` cannot be used; the message starts with `--run-as USER:`. */
export class RunAsError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RunAsError";
  }
}

const decoder = new TextDecoder();

/** Where `setpriv` (util-linux) is, or undefined. */
function findSetpriv(): string | undefined {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]) {
    const p = join(dir, "setpriv");
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Resolves `spec` (a user name or a numeric uid) to the user jobs run as, and
 * checks that the server can switch to it: the user exists (`getent passwd`),
 * is not the server's own user, the server runs as root, and `setpriv` works.
 * Throws {@linkcode RunAsError} naming `--run-as` otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveRunAs, RunAsError } from "./run_as.ts";
 * assert.throws(() => resolveRunAs("nobdy"), RunAsError);
 * assert.throws(() => resolveRunAs("nobdy"), {
 *   message: "--run-as nobdy: no such user on this machine (getent passwd nobdy finds none)",
 * });
 * assert.throws(() => resolveRunAs("no body"), { message: "--run-as no body: not a user name or uid" });
 * ```
 */
export function resolveRunAs(spec: string): RunAsUser {
  const at = `--run-as ${spec}`;
  if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/.test(spec)) {
    throw new RunAsError(`${at}: not a user name or uid`);
  }
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("getent", { args: ["passwd", spec], stdout: "piped", stderr: "null" })
      .outputSync();
  } catch (e) {
    throw new RunAsError(`${at}: cannot look the user up (getent): ${(e as Error).message}`);
  }
  const line = decoder.decode(out.stdout).split("\n")[0];
  const f = line.split(":");
  if (!out.success || f.length < 7) {
    throw new RunAsError(`${at}: no such user on this machine (getent passwd ${spec} finds none)`);
  }
  const user = { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
  const self = Deno.uid();
  if (user.uid === self) {
    throw new RunAsError(
      `${at}: that is the server's own user (uid ${self}); jobs could still read its ` +
        "secrets. Name another user, e.g. nobody or a user made for jobs (useradd -m ccxjob)",
    );
  }
  if (self !== 0) {
    throw new RunAsError(
      `${at}: switching to another user needs the server to run as root (it runs as uid ${self})`,
    );
  }
  const setpriv = findSetpriv();
  if (!setpriv) {
    throw new RunAsError(
      `${at}: setpriv is not installed (util-linux; Debian/Ubuntu: apt-get install util-linux)`,
    );
  }
  const resolved: RunAsUser = { ...user, setpriv };
  const probe = new Deno.Command(setpriv, {
    args: runAsArgv(resolved, ["true"]).slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!probe.success) {
    const why = decoder.decode(probe.stderr).trim() || `exit ${probe.code}`;
    throw new RunAsError(`${at}: setpriv cannot switch to it: ${why}`);
  }
  return resolved;
}

/**
 * The command line that runs `argv` as `user`: `setpriv` with its uid, gid and
 * groups, which then execs `argv` (same pid, same process group).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runAsArgv } from "./run_as.ts";
 * const user = { name: "nobody", uid: 65534, gid: 65534, home: "/", setpriv: "/usr/bin/setpriv" };
 * assert.deepEqual(runAsArgv(user, ["sh", "-c", "id -u"]), [
 *   "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--init-groups", "--", "sh", "-c", "id -u",
 * ]);
 * ```
 */
export function runAsArgv(user: RunAsUser, argv: readonly string[]): string[] {
  return [
    user.setpriv,
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--init-groups",
    "--",
    ...argv,
  ];
}

/**
 * The variables that say who a job runs as (`HOME`, `USER`, `LOGNAME`), which
 * a request's `env` may still override.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runAsEnv } from "./run_as.ts";
 * assert.deepEqual(
 *   runAsEnv({ name: "ccxjob", uid: 1001, gid: 1001, home: "/home/ccxjob", setpriv: "setpriv" }),
 *   { HOME: "/home/ccxjob", USER: "ccxjob", LOGNAME: "ccxjob" },
 * );
 * ```
 */
export function runAsEnv(user: RunAsUser): Record<string, string> {
  return { HOME: user.home, USER: user.name, LOGNAME: user.name };
}

/**
 * Gives a directory tree to `user` (owner and group), without following
 * symlinks, so a job under that user can write its workspace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chownTree } from "./run_as.ts";
 * const work = Deno.makeTempDirSync(); // a job's workspace, made by the server
 * Deno.mkdirSync(`${work}/src`);
 * Deno.writeTextFileSync(`${work}/src/main.py`, "print(4)\n");
 * const [uid, gid] = Deno.uid() === 0 ? [65534, 65534] : [Deno.uid()!, Deno.gid()!]; // only root gives files away
 * chownTree(work, uid, gid);
 * assert.equal(Deno.statSync(`${work}/src/main.py`).uid, uid);
 * Deno.removeSync(work, { recursive: true });
 * ```
 */
export function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  const stack = [path];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      lchownSync(p, uid, gid);
      if (e.isDirectory) stack.push(p);
    }
  }
}

/**
 * Why `user` cannot enter directory `dir` (a directory on the way without
 * search permission for it), or undefined when it can: checked by running
 * `cd` as the user.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reachProblem, resolveRunAs } from "./run_as.ts";
 * if (Deno.uid() === 0) {
 *   const nobody = resolveRunAs("nobody");
 *   const closed = Deno.makeTempDirSync(); // mode 700: closed to other users
 *   Deno.mkdirSync(`${closed}/workspaces`);
 *   assert.equal(reachProblem(nobody, `${closed}/workspaces`), `${closed} is closed to it (mode 700)`);
 *   assert.equal(reachProblem(nobody, "/tmp"), undefined);
 *   Deno.removeSync(closed, { recursive: true });
 * }
 * ```
 */
export function reachProblem(user: RunAsUser, dir: string): string | undefined {
  if (!isAbsolute(dir)) throw new Error(`reachProblem: ${dir} is not absolute`);
  const out = new Deno.Command(user.setpriv, {
    args: runAsArgv(user, ["/bin/sh", "-c", 'cd -- "$1"', "sh", dir]).slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (out.success) return undefined;
  // Name the first directory on the way that is closed to others.
  let at = "/";
  for (const part of dir.split("/").filter(Boolean)) {
    at = join(at, part);
    try {
      const st = Deno.statSync(at);
      const mode = st.mode ?? 0;
      const open = st.uid === user.uid
        ? mode & 0o100
        : st.gid === user.gid
        ? mode & 0o010
        : mode & 1;
      if (!open) return `${at} is closed to it (mode ${(mode & 0o7777).toString(8)})`;
    } catch {
      break;
    }
  }
  return decoder.decode(out.stderr).trim() || `cd ${dir} fails as ${user.name}`;
}

/**
 * Confinement of jobs with bubblewrap (`bwrap`): a read-only view of the root
 * file system, the job's workspace and a private `/tmp` writable, the
 * workspace root of other jobs hidden, its own PID namespace, and
 * `--die-with-parent` so a server that is killed takes its jobs with it.
 * `HOME` is the workspace's own home directory, with the Claude CLI's
 * credentials made available read-only when the server's user has them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bwrapArgv } from "./isolate.ts";
 * const argv = bwrapArgv(["/bin/sh", "-c", "echo hi > out.txt"], {
 *   dir: "/var/ccx/ws/1", work: "/var/ccx/ws/1/work", home: "/var/ccx/ws/1/home",
 *   hide: ["/var/ccx/ws"], net: "host",
 * });
 * assert.equal(argv[0], "bwrap");
 * assert.deepEqual(argv.slice(-4), ["--", "/bin/sh", "-c", "echo hi > out.txt"]); // the job, confined
 * assert.ok(argv.includes("--die-with-parent"));
 * ```
 * @module
 */

import { existsSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import os from "node:os";
import { runAsArgv, type RunAsUser } from "./run_as.ts";

/**
 * Variables removed inside the sandbox, so the CLI and other tools keep their
 * configuration, caches and state under the job's `HOME` (the server's are
 * read-only there).
 */
export const UNSET_IN_SANDBOX: readonly string[] = [
  "CLAUDE_CONFIG_DIR",
  "XDG_CONFIG_HOME",
  "XDG_CACHE_HOME",
  "XDG_DATA_HOME",
  "XDG_STATE_HOME",
  "XDG_RUNTIME_DIR",
];

/** How a job is confined: not at all, or under bubblewrap. */
export type IsolateMode = "none" | "bwrap";

/** The network a confined job sees: the host's, or none (its own empty namespace). */
export type IsolateNet = "host" | "none";

/** Where a confined job lives. */
export interface BwrapLayout {
  /** The workspace directory (writable; holds `work` and `home`). */
  dir: string;
  /** The job's working directory. */
  work: string;
  /** The job's `HOME`. */
  home: string;
  /** Directories hidden behind an empty tmpfs (e.g. the root of all workspaces). */
  hide?: string[];
  /** `host` (default) or `none`. */
  net?: IsolateNet;
  /** Read-only files mapped into the home: `[host path, path relative to home]`. */
  readOnly?: [string, string][];
  /**
   * Run the job as this user inside the sandbox (`setpriv` after bwrap has set it
   * up as root); the private `/tmp` is then open to all (mode 1777).
   */
  runAs?: RunAsUser;
}

/**
 * The bwrap command line that runs `inner` confined to `layout`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bwrapArgv } from "./isolate.ts";
 * const layout = { dir: "/w", work: "/w/work", home: "/w/home" };
 * assert.equal(bwrapArgv(["true"], { ...layout, net: "none" }).includes("--unshare-net"), true);
 * assert.equal(bwrapArgv(["true"], { ...layout, net: "host" }).includes("--unshare-net"), false);
 * ```
 */
export function bwrapArgv(inner: string[], layout: BwrapLayout): string[] {
  const a = [
    "bwrap",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
  ];
  if (layout.runAs) a.push("--perms", "1777");
  a.push("--tmpfs", "/tmp");
  for (const h of layout.hide ?? []) a.push("--tmpfs", h);
  a.push("--bind", layout.dir, layout.dir);
  // A program that lives under /tmp (a CLI installed into a project checked out there) would
  // vanish behind the private /tmp: its own directory is mapped back in, read-only.
  const program = programUnderTmp(inner[0]);
  if (program) {
    a.push("--ro-bind", dirname(program), dirname(program));
    inner = [program, ...inner.slice(1)];
  }
  for (const [src, rel] of layout.readOnly ?? []) a.push("--ro-bind", src, join(layout.home, rel));
  a.push("--unshare-pid", "--die-with-parent");
  if ((layout.net ?? "host") === "none") a.push("--unshare-net");
  // Per-user directories must be the job's own home, not the server user's (read-only here).
  for (const v of UNSET_IN_SANDBOX) a.push("--unsetenv", v);
  if (layout.runAs) {
    a.push("--setenv", "USER", layout.runAs.name, "--setenv", "LOGNAME", layout.runAs.name);
    inner = runAsArgv(layout.runAs, inner);
  }
  a.push(
    "--chdir",
    layout.work,
    "--setenv",
    "HOME",
    layout.home,
    "--setenv",
    "TMPDIR",
    "/tmp",
    "--",
    ...inner,
  );
  return a;
}

/** The real path of an absolute `program` when it lies under `/tmp`, else `undefined`. */
function programUnderTmp(program: string | undefined): string | undefined {
  if (program === undefined || !isAbsolute(program)) return undefined;
  try {
    const real = realpathSync(program);
    return real.startsWith("/tmp/") ? real : undefined;
  } catch {
    return undefined; // missing: bwrap says so
  }
}

/**
 * The Claude CLI's credentials of the server's user, as bwrap read-only maps
 * (`$CLAUDE_CONFIG_DIR/.credentials.json`, by default `~/.claude/.credentials.json`,
 * seen by the job as `~/.claude/.credentials.json`), plus files to copy writable into the job's
 * home (`~/.claude.json`, which the CLI rewrites as it runs). Absent files are
 * left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claudeCredentials } from "./isolate.ts";
 * const home = Deno.makeTempDirSync(); // the server's user's home
 * Deno.mkdirSync(`${home}/.claude`);
 * Deno.writeTextFileSync(`${home}/.claude/.credentials.json`, "{}");
 * Deno.writeTextFileSync(`${home}/.claude.json`, "{}");
 * const { readOnly, copies } = claudeCredentials(home);
 * assert.deepEqual(readOnly, [[`${home}/.claude/.credentials.json`, ".claude/.credentials.json"]]);
 * assert.deepEqual(copies, [[`${home}/.claude.json`, ".claude.json"]]);
 * Deno.removeSync(home, { recursive: true });
 * ```
 */
export function claudeCredentials(
  home: string = Deno.env.get("HOME") || os.homedir(),
  configDir: string = Deno.env.get("CLAUDE_CONFIG_DIR") || join(home, ".claude"),
): { readOnly: [string, string][]; copies: [string, string][] } {
  const readOnly: [string, string][] = [];
  const copies: [string, string][] = [];
  const cred = join(configDir, ".credentials.json");
  if (existsSync(cred)) readOnly.push([cred, ".claude/.credentials.json"]);
  const config = join(home, ".claude.json");
  if (existsSync(config)) copies.push([config, ".claude.json"]);
  return { readOnly, copies };
}

/**
 * Checks that bubblewrap can confine a job here; returns its version, or
 * throws an error that says what to install or allow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBwrap } from "./isolate.ts";
 * let said: string;
 * try {
 *   said = checkBwrap(); // e.g. "bubblewrap 0.8.0"
 * } catch (e) {
 *   said = (e as Error).message; // e.g. "--isolate bwrap: bwrap is not installed (…)"
 * }
 * assert.match(said, /^bubblewrap \d|^--isolate bwrap: /);
 * ```
 */
export function checkBwrap(): string {
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("bwrap", {
      args: ["--ro-bind", "/", "/", "--unshare-pid", "--die-with-parent", "--", "true"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        "--isolate bwrap: bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)",
      );
    }
    throw e;
  }
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim();
    throw new Error(
      `--isolate bwrap: bwrap cannot make a sandbox here (${why || `exit ${out.code}`}); ` +
        "it needs user namespaces (or root)",
    );
  }
  const v = new Deno.Command("bwrap", { args: ["--version"], stdout: "piped" }).outputSync();
  return new TextDecoder().decode(v.stdout).trim();
}

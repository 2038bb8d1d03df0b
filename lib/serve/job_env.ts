/**
 * The environment a job gets: never the server's whole environment (which may
 * hold `CCX_TOKEN` and other secrets), but an allow-list of the server's
 * variables plus whatever the request's `env` sets. Names in the allow-list
 * may end in `*` to match a prefix (`LC_*`). `CCX_*` variables of the server are
 * never passed, whatever the list says.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jobEnvironment } from "./job_env.ts";
 * const env = jobEnvironment(
 *   { PATH: "/usr/bin", CCX_TOKEN: "s3cret", AWS_SECRET_ACCESS_KEY: "x" },
 *   { FOO: "bar" },
 * );
 * assert.deepEqual(env, { PATH: "/usr/bin", FOO: "bar" });
 * ```
 * @module
 */

/**
 * The server variables a job gets by default: what a shell, a locale, a proxy
 * and the Claude CLI need, and nothing that usually holds a server's secrets.
 */
export const DEFAULT_PASS_ENV: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LANGUAGE",
  "LC_*",
  "TERM",
  "TZ",
  "TMPDIR",
  "NO_COLOR",
  "XDG_*",
  "DENO_DIR",
  "ANTHROPIC_*",
  "CLAUDE_*",
  "CLAUDECODE",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "ALL_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "all_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
];

/** True for the server's own settings, which never reach a job. */
function isCcxSetting(name: string): boolean {
  return name.startsWith("CCX_");
}

/**
 * Checks a `--pass-env` list: names of letters, digits and `_`, optionally
 * ending in `*`; `CCX_*` names are refused. Returns the problem, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { passEnvProblem } from "./job_env.ts";
 * assert.equal(passEnvProblem(["GOPATH", "AWS_*"]), undefined);
 * assert.equal(passEnvProblem(["CCX_TOKEN"]), "CCX_TOKEN: CCX_* settings are never passed to jobs");
 * ```
 */
export function passEnvProblem(names: readonly string[]): string | undefined {
  for (const n of names) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*\*?$|^\*$/.test(n)) {
      return `${JSON.stringify(n)}: expected a variable name, optionally ending in *`;
    }
    if (isCcxSetting(n)) return `${n}: CCX_* settings are never passed to jobs`;
  }
  return undefined;
}

function allowed(name: string, list: readonly string[]): boolean {
  for (const pattern of list) {
    if (pattern.endsWith("*")) {
      if (name.startsWith(pattern.slice(0, -1))) return true;
    } else if (name === pattern) return true;
  }
  return false;
}

/**
 * Builds a job's environment: the allow-listed variables of `serverEnv` (never
 * `CCX_*`), then the request's `requestEnv` on top.
 *
 * @param serverEnv The server's environment (e.g. `Deno.env.toObject()`).
 * @param requestEnv What the request's `env` sets; it may set any name.
 * @param passEnv The allow-list (default {@linkcode DEFAULT_PASS_ENV}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_PASS_ENV, jobEnvironment } from "./job_env.ts";
 * const server = { GOPATH: "/go", PATH: "/bin", CCX_TOKEN: "s3cret" };
 * assert.deepEqual(jobEnvironment(server, {}, [...DEFAULT_PASS_ENV, "GOPATH"]), { GOPATH: "/go", PATH: "/bin" });
 * assert.deepEqual(jobEnvironment(server, {}, ["*"]), { GOPATH: "/go", PATH: "/bin" }); // never CCX_*
 * ```
 */
export function jobEnvironment(
  serverEnv: Record<string, string>,
  requestEnv: Record<string, string> = {},
  passEnv: readonly string[] = DEFAULT_PASS_ENV,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(serverEnv)) {
    if (!isCcxSetting(k) && allowed(k, passEnv)) out[k] = v;
  }
  return Object.assign(out, requestEnv);
}

/** A secret the server process holds, and where a job could find it. */
export interface HeldSecret {
  /** What it is: `the token (CCX_TOKEN)`, `the password in CCX_QUEUE`, … */
  what: string;
  /** Where it is: on the command line, in the environment, or in `./.env`. */
  where: "command line" | "environment" | ".env";
}

/** True when `value` is a URL that carries a password (`redis://:pw@host`). */
function urlWithPassword(value: string): boolean {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(value)) return false;
  try {
    return new URL(value).password !== "";
  } catch {
    return false;
  }
}

/**
 * The secrets the server process holds that a job under the server's user
 * could read: the token and any `CCX_*` URL with a password (a queue's Redis),
 * from the command line (world-readable in `/proc/PID/cmdline`), the environment
 * (`/proc/PID/environ`, readable by the same user) or `./.env`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { heldSecrets } from "./job_env.ts";
 * assert.deepEqual(
 *   heldSecrets({ token: "s3cret", args: ["serve"], env: { CCX_TOKEN: "s3cret" }, dotEnv: {} }),
 *   [{ what: "the token (CCX_TOKEN)", where: "environment" }],
 * );
 * assert.deepEqual(heldSecrets({ args: ["serve"], env: {}, dotEnv: {} }), []);
 * ```
 */
export function heldSecrets(src: {
  /** The token the server requires, if any: found on the command line by its value. */
  token?: string;
  /** The process's command-line arguments. */
  args: readonly string[];
  /** The process environment. */
  env: Record<string, string>;
  /** What `./.env` sets. */
  dotEnv: Record<string, string>;
}): HeldSecret[] {
  const out: HeldSecret[] = [];
  const onCommandLine = (v: string) => src.args.some((a) => a.includes(v));
  // Every copy counts: a .env may hold a token the environment overrides, still a secret.
  if (src.token && onCommandLine(src.token)) {
    out.push({ what: "the token (CCX_TOKEN)", where: "command line" });
  }
  if (src.env.CCX_TOKEN) out.push({ what: "the token (CCX_TOKEN)", where: "environment" });
  if (src.dotEnv.CCX_TOKEN) out.push({ what: "the token (CCX_TOKEN)", where: ".env" });
  const seen = new Set<string>();
  for (const [vars, where] of [[src.env, "environment"], [src.dotEnv, ".env"]] as const) {
    for (const [k, v] of Object.entries(vars)) {
      if (!isCcxSetting(k) || !urlWithPassword(v) || seen.has(k)) continue;
      seen.add(k);
      out.push({ what: `the password in ${k}`, where: onCommandLine(v) ? "command line" : where });
    }
  }
  if (src.args.some((a) => urlWithPassword(a.replace(/^--[a-z-]+=/, "")))) {
    out.push({ what: "a password in a URL", where: "command line" });
  }
  return out;
}

/**
 * Warnings for an operator when jobs could read the server's secrets, given how
 * they run: neither confined nor under another user (they read the server's
 * `/proc` entries and files); confined but as the server's user (they read
 * `./.env` in the read-only root); under another user with a secret on the
 * command line (world-readable) or in a `./.env` that others may read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type HeldSecret, secretWarnings } from "./job_env.ts";
 * const secrets: HeldSecret[] = [{ what: "the token (CCX_TOKEN)", where: "environment" }];
 * const [warning] = secretWarnings(secrets, { isolate: "none" });
 * assert.match(warning, /--run-as/); // it suggests running jobs as another user
 * assert.deepEqual(secretWarnings([], { isolate: "none" }), []);
 * ```
 */
export function secretWarnings(
  secrets: readonly HeldSecret[],
  how: {
    isolate: "none" | "bwrap";
    runAs?: string;
    dotEnvOpenToOthers?: boolean;
    /** Whose secrets, in the warnings' words: `server` (default), or `worker` for `ccx worker`. */
    who?: string;
  },
): string[] {
  if (secrets.length === 0) return [];
  const who = how.who ?? "server";
  const at = {
    "command line": "on the command line",
    environment: "in the environment",
    ".env": "in ./.env",
  };
  const list = (s: readonly HeldSecret[]) => s.map((x) => `${x.what} ${at[x.where]}`).join(", ");
  if (how.isolate === "none" && how.runAs === undefined) {
    return [
      `warning: jobs run unconfined as the ${who}'s own user, so they can read its secrets ` +
      `(${list(secrets)}) in /proc/$PPID/environ, /proc/$PPID/cmdline or ./.env. Run them as ` +
      `another user (--run-as USER) and/or confine them (--isolate bwrap)`,
    ];
  }
  const out: string[] = [];
  const inDotEnv = secrets.filter((s) => s.where === ".env");
  if (how.runAs === undefined && inDotEnv.length > 0) {
    out.push(
      `warning: confined jobs run as the ${who}'s own user over a read-only view of the ` +
        `files, so they can read ./.env (${list(inDotEnv)}). Add --run-as USER, or pass the ` +
        `secret in the environment instead`,
    );
  }
  const onCommandLine = secrets.filter((s) => s.where === "command line");
  if (how.runAs !== undefined && how.isolate === "none" && onCommandLine.length > 0) {
    out.push(
      `warning: ${list(onCommandLine)}: every user of this box, jobs under --run-as too, reads ` +
        `the command line (ps, /proc/PID/cmdline); set it in the environment or in ./.env ` +
        `(chmod 600) instead`,
    );
  }
  if (how.runAs !== undefined && how.dotEnvOpenToOthers && inDotEnv.length > 0) {
    out.push(
      `warning: ./.env holds ${list(inDotEnv)} and other users may read it, jobs under ` +
        `--run-as too: chmod 600 .env`,
    );
  }
  return out;
}

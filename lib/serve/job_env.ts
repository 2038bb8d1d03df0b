/**
 * The environment a job gets: never the server's whole environment (which may
 * hold `CCX_TOKEN` and other secrets), but an allow-list of the server's
 * variables plus whatever the request's `env` sets. Names in the allow-list
 * may end in `*` to match a prefix (`LC_*`). `CCX_*` variables of the server are
 * never passed, whatever the list says.
 *
 * @example
 * ```ts
 * import { jobEnvironment } from "./job_env.ts";
 * const env = jobEnvironment(
 *   { PATH: "/usr/bin", CCX_TOKEN: "s3cret", AWS_SECRET_ACCESS_KEY: "x" },
 *   { FOO: "bar" },
 * );
 * console.log(env); // { PATH: "/usr/bin", FOO: "bar" }
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
 * import { passEnvProblem } from "./job_env.ts";
 * passEnvProblem(["GOPATH", "AWS_*"]); // undefined
 * passEnvProblem(["CCX_TOKEN"]); // "CCX_TOKEN: CCX_* settings are never passed to jobs"
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
 * import { DEFAULT_PASS_ENV, jobEnvironment } from "./job_env.ts";
 * jobEnvironment({ GOPATH: "/go", PATH: "/bin" }, {}, [...DEFAULT_PASS_ENV, "GOPATH"]);
 * // { GOPATH: "/go", PATH: "/bin" }
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

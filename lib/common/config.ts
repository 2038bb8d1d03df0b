/**
 * Settings from flags, the environment and a `.env` file, in that order of
 * precedence, with errors that name the flag or variable at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Settings } from "./config.ts";
 * const s = new Settings({ port: "9000" }, { CCX_PORT: "8100", CCX_HOST: "0.0.0.0" });
 * assert.equal(s.int("port", "CCX_PORT", 8004, { min: 0, max: 65535 }), 9000); // the flag wins
 * assert.equal(s.string("host", "CCX_HOST", "127.0.0.1"), "0.0.0.0"); // then the variable
 * assert.equal(s.string("token", "CCX_TOKEN"), undefined); // then the default
 * ```
 * @module
 */

import { parseEnv } from "node:util";
import { join } from "node:path";
import os from "node:os";

/** A setting that could not be understood; the message names where it came from. */
export class ConfigError extends Error {
  /** Creates the error; `message` should start with the flag or variable at fault. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Reads `.env` in the given directory (missing file: empty). Lines are
 * `NAME=value` as `node:util` `parseEnv` understands them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readDotEnv } from "./config.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/.env`, "CCX_PORT=9000\n# a comment\nCCX_TOKEN='s3cret'\n");
 * assert.deepEqual(readDotEnv(dir), { CCX_PORT: "9000", CCX_TOKEN: "s3cret" });
 * assert.deepEqual(readDotEnv(`${dir}/nowhere`), {});
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function readDotEnv(dir: string): Record<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dir}/.env`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw new ConfigError(`.env: cannot read: ${(e as Error).message}`);
  }
  return { ...parseEnv(text) } as Record<string, string>;
}

/**
 * True when the `.env` file in `dir` exists and users other than its owner may
 * read it (group or world read permission): what it holds is then no secret
 * from jobs run as another user.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dotEnvOpenToOthers } from "./config.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/.env`, "CCX_TOKEN=s3cret\n", { mode: 0o644 });
 * Deno.chmodSync(`${dir}/.env`, 0o644);
 * assert.equal(dotEnvOpenToOthers(dir), true); // warn: chmod 600 .env
 * Deno.chmodSync(`${dir}/.env`, 0o600);
 * assert.equal(dotEnvOpenToOthers(dir), false);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function dotEnvOpenToOthers(dir: string): boolean {
  try {
    return ((Deno.statSync(`${dir}/.env`).mode ?? 0) & 0o044) !== 0;
  } catch {
    return false;
  }
}

/**
 * The process environment over the `.env` file of the working directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { environment } from "./config.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/.env`, "CCX_DEMO_ONLY_IN_DOTENV=from-dotenv\nPATH=/nowhere\n");
 * const env = environment(dir);
 * assert.equal(env.CCX_DEMO_ONLY_IN_DOTENV, "from-dotenv");
 * assert.equal(env.PATH, Deno.env.get("PATH")); // the shell's variables win
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function environment(dir = Deno.cwd()): Record<string, string> {
  return { ...readDotEnv(dir), ...Deno.env.toObject() };
}

/**
 * Parsed command-line flags by name, as `node:util` `parseArgs` returns them
 * (string options, boolean switches, arrays for repeated options).
 */
export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * Looks settings up: flag first, then environment variable, then default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, Settings } from "./config.ts";
 * const s = new Settings({}, { CCX_PORT: "x" });
 * assert.throws(() => s.int("port", "CCX_PORT", 8004), ConfigError);
 * assert.throws(() => s.int("port", "CCX_PORT", 8004), /^ConfigError: CCX_PORT: expected an integer, got "x"$/);
 * ```
 */
export class Settings {
  /**
   * Wraps parsed flags and an environment (e.g. from {@linkcode environment}).
   *
   * @param flags Parsed flags; strings (and arrays, for `list`) count as set, booleans do not.
   * @param env Environment variables; empty strings count as unset.
   */
  constructor(readonly flags: FlagValues, readonly env: Record<string, string>) {}

  #raw(flag: string, envName: string | undefined): { value: string; from: string } | undefined {
    const f = this.flags[flag];
    if (typeof f === "string") return { value: f, from: `--${flag}` };
    if (envName && this.env[envName] !== undefined && this.env[envName] !== "") {
      return { value: this.env[envName], from: envName };
    }
    return undefined;
  }

  /** A string setting: the flag, else the variable, else `fallback`. */
  string(flag: string, envName: string | undefined, fallback: string): string;
  /** A string setting: the flag, else the variable, else `undefined`. */
  string(flag: string, envName: string | undefined): string | undefined;
  string(flag: string, envName: string | undefined, fallback?: string): string | undefined {
    return this.#raw(flag, envName)?.value ?? fallback;
  }

  /** A list: repeated flags, or a comma-separated variable. */
  list(flag: string, envName: string | undefined): string[] {
    const f = this.flags[flag];
    if (Array.isArray(f)) return f.map(String);
    if (typeof f === "string") return [f];
    const e = envName ? this.env[envName] : undefined;
    return e ? e.split(",").map((s) => s.trim()).filter(Boolean) : [];
  }

  /** An integer setting within bounds. */
  int(
    flag: string,
    envName: string | undefined,
    fallback: number,
    bounds: { min?: number; max?: number } = {},
  ): number {
    const r = this.#raw(flag, envName);
    if (!r) return fallback;
    const n = Number(r.value);
    if (!/^-?\d+$/.test(r.value.trim()) || !Number.isSafeInteger(n)) {
      throw new ConfigError(`${r.from}: expected an integer, got ${JSON.stringify(r.value)}`);
    }
    checkBounds(n, r.from, bounds);
    return n;
  }

  /** A number setting within bounds (absent: `fallback`). */
  number(
    flag: string,
    envName: string | undefined,
    fallback?: number,
    bounds: { min?: number; max?: number } = {},
  ): number | undefined {
    const r = this.#raw(flag, envName);
    if (!r) return fallback;
    const n = Number(r.value);
    if (r.value.trim() === "" || !Number.isFinite(n)) {
      throw new ConfigError(`${r.from}: expected a number, got ${JSON.stringify(r.value)}`);
    }
    checkBounds(n, r.from, bounds);
    return n;
  }
}

function checkBounds(n: number, from: string, b: { min?: number; max?: number }): void {
  if (b.min !== undefined && n < b.min) {
    throw new ConfigError(`${from}: must be at least ${b.min}, got ${n}`);
  }
  if (b.max !== undefined && n > b.max) {
    throw new ConfigError(`${from}: must be at most ${b.max}, got ${n}`);
  }
}

/**
 * Reads a PEM file named by a flag (`--cert`, `--key`, `--ca`); undefined when
 * the flag is not given. Throws {@linkcode ConfigError} naming the flag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPemFile } from "./config.ts";
 * assert.equal(readPemFile("ca", undefined), undefined);
 * assert.throws(() => readPemFile("ca", "/nonexistent/ca.pem"), /^ConfigError: --ca: cannot read/);
 * ```
 */
export function readPemFile(flag: string, file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new ConfigError(`--${flag}: cannot read ${file}: ${(e as Error).message}`);
  }
  if (!text.includes("-----BEGIN ")) {
    throw new ConfigError(`--${flag}: ${file} is not a PEM file (no -----BEGIN line)`);
  }
  return text;
}

/**
 * The directory for ccx's own state (history, workspaces): `$CCX_STATE_DIR`,
 * else `$XDG_STATE_HOME/ccx`, else `~/.local/state/ccx`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stateDir } from "./config.ts";
 * assert.equal(stateDir({ CCX_STATE_DIR: "/var/lib/ccx" }), "/var/lib/ccx");
 * assert.equal(stateDir({ XDG_STATE_HOME: "/home/me/.state" }), "/home/me/.state/ccx");
 * assert.equal(stateDir({ HOME: "/home/me" }), "/home/me/.local/state/ccx");
 * ```
 */
export function stateDir(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  if (env.CCX_STATE_DIR) return env.CCX_STATE_DIR;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, "ccx");
  return join(env.HOME || os.homedir(), ".local", "state", "ccx");
}

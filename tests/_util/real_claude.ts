/**
 * The real Claude Code CLI for the real-CLI test tier: a pinned `@anthropic-ai/claude-code`
 * installed once per machine with npm into `.cache/claude-code/` (ignored by git, fmt and lint),
 * under a file lock so test files running in parallel never install twice. What happens when it
 * cannot be had follows the tier rule of tier.ts: npm missing, or npm unable to reach its registry
 * (one of npm's network error codes), is a missing tier (skipped with one line, or a failing test
 * under `CI=true` / `CCX_REQUIRE=claude`); any other install failure is a broken tier (a failure).
 * @module
 */

import { join } from "node:path";
import { ROOT } from "./helpers.ts";
import { tierGate, type TierProbe } from "./tier.ts";

/** The pinned version: what a plain install resolves to on Node 20 (CLAUDE_CLI.md). */
export const CLAUDE_CODE_VERSION = "2.1.197";

/** Where it is installed (`CCX_CLAUDE_CODE_DIR` overrides, e.g. to share one install). */
export const CLAUDE_CODE_DIR = Deno.env.get("CCX_CLAUDE_CODE_DIR") ||
  join(ROOT, ".cache", "claude-code");

/** The native executable npm links. */
export const REAL_CLAUDE = join(CLAUDE_CODE_DIR, "node_modules", ".bin", "claude");

/** The real CLI's path, or why the tier cannot run. */
export type RealClaude = TierProbe & { path?: string };

async function version(path: string): Promise<string | undefined> {
  try {
    const o = await new Deno.Command(path, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      env: { DISABLE_AUTOUPDATER: "1" },
    }).output();
    return o.success ? new TextDecoder().decode(o.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** npm's own codes for a registry it cannot reach (`npm error code E…`), nothing broader. */
const NETWORK_RE =
  /^npm (?:error|ERR!) code (?:ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH)\b/m;

let memo: Promise<RealClaude> | undefined;

/**
 * Installs the pinned CLI unless it is there already; resolves with its path, or with why the
 * tier cannot run (`missing`: no npm, or npm cannot reach its registry; `broken`: any other
 * install failure).
 */
export function realClaude(): Promise<RealClaude> {
  memo ??= install().catch((e) => ({ ok: false as const, broken: (e as Error).message }));
  return memo;
}

/**
 * The claude tier for the calling module: the real CLI's path, or undefined when its tests are
 * to be ignored (after {@linkcode tierGate} registered a failing test or printed the skip line).
 */
export async function claudeTier(): Promise<string | undefined> {
  const r = await realClaude();
  return tierGate("claude", r) ? undefined : r.path;
}

async function install(): Promise<RealClaude> {
  await Deno.mkdir(CLAUDE_CODE_DIR, { recursive: true });
  const lock = await Deno.open(join(CLAUDE_CODE_DIR, ".install.lock"), {
    create: true,
    write: true,
  });
  try {
    await lock.lock(true); // one installer per machine; the others wait here
    const have = await version(REAL_CLAUDE);
    if (have?.startsWith(CLAUDE_CODE_VERSION)) return { ok: true, path: REAL_CLAUDE };
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command("npm", {
        args: [
          "install",
          "--prefix",
          CLAUDE_CODE_DIR,
          "--no-audit",
          "--no-fund",
          "--no-save",
          "--loglevel=error",
          `@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}`,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        return { ok: false, missing: "npm is not on PATH, and the CLI is not installed yet" };
      }
      throw e;
    }
    const err = new TextDecoder().decode(out.stderr);
    if (!out.success) {
      if (NETWORK_RE.test(err)) {
        return {
          ok: false,
          missing: `npm cannot reach its registry: ${err.trim().split("\n")[0]}`,
        };
      }
      throw new Error(
        `npm install @anthropic-ai/claude-code@${CLAUDE_CODE_VERSION} failed:\n${err}`,
      );
    }
    const now = await version(REAL_CLAUDE);
    if (!now?.startsWith(CLAUDE_CODE_VERSION)) {
      throw new Error(
        `installed @anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}, but ${REAL_CLAUDE} ` +
          `--version says ${JSON.stringify(now)}:\n${err}`,
      );
    }
    return { ok: true, path: REAL_CLAUDE };
  } finally {
    lock.close();
  }
}

/**
 * The real Claude Code CLI for the real-CLI test tier: a pinned `@anthropic-ai/claude-code`
 * installed once per machine with npm into `.cache/claude-code/` (ignored by git, fmt and lint),
 * under a file lock so test files running in parallel never install twice. When npm cannot reach
 * its registry the tier is skipped with a message saying so; any other install failure fails.
 * @module
 */

import { join } from "node:path";
import { ROOT } from "./helpers.ts";

/** The pinned version: what a plain install resolves to on Node 20 (CLAUDE_CLI.md). */
export const CLAUDE_CODE_VERSION = "2.1.197";

/** Where it is installed. */
export const CLAUDE_CODE_DIR = join(ROOT, ".cache", "claude-code");

/** The native executable npm links. */
export const REAL_CLAUDE = join(CLAUDE_CODE_DIR, "node_modules", ".bin", "claude");

/** The real CLI, or why the tier is skipped. */
export type RealClaude = { path: string; skip?: undefined } | { path?: undefined; skip: string };

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

const NETWORK_RE =
  /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|request to .* failed/i;

let memo: Promise<RealClaude> | undefined;

/**
 * Installs the pinned CLI unless it is there already; resolves with its path, or with why the
 * tier is skipped (npm unreachable). Throws when npm is reachable but the install fails.
 */
export function realClaude(): Promise<RealClaude> {
  memo ??= install();
  return memo;
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
    if (have?.startsWith(CLAUDE_CODE_VERSION)) return { path: REAL_CLAUDE };
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
      return { skip: `npm is not available (${(e as Error).message})` };
    }
    const err = new TextDecoder().decode(out.stderr);
    if (!out.success) {
      if (NETWORK_RE.test(err)) {
        return { skip: `npm cannot reach its registry: ${err.trim().split("\n")[0]}` };
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
    return { path: REAL_CLAUDE };
  } finally {
    lock.close();
  }
}

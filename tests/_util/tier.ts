/**
 * Test tiers: groups of tests that need something beyond Deno (the real Claude CLI, bubblewrap,
 * a redis-server, Chromium). One rule for all of them:
 *
 * - available: the tests run;
 * - missing, and required (`CI=true` requires every tier; `CCX_REQUIRE=claude,bwrap,redis,chromium`
 *   requires those named, `all` every one): the tier's tests are replaced by one failing test that
 *   names what is missing and how to install it;
 * - missing, not required: the tier's tests are ignored (the summary counts them) and one line
 *   says which tier was skipped, why, and how to get it;
 * - installed but broken (a bwrap that cannot make a sandbox, an npm install that fails for
 *   another reason than the network): always one failing test with the tool's own message.
 * @module
 */

import { checkBwrap } from "../../lib/serve/isolate.ts";
import { onPath } from "./redis.ts";
import { HINTS } from "./capability.ts";

/** The tiers `CCX_REQUIRE` can name. */
export const TIERS = ["claude", "bwrap", "redis", "chromium"] as const;

/** A tier's name. */
export type TierName = typeof TIERS[number];

/** What probing a tier found. */
export type TierProbe =
  | { ok: true }
  | { ok: false; missing: string }
  | { ok: false; broken: string };

/** How to get each tier (said in every skip line and failure). */
export const INSTALL: Record<TierName, string> = {
  claude: "install npm (apt-get install npm); the tests then install the pinned " +
    "@anthropic-ai/claude-code into .cache/claude-code by themselves",
  bwrap: "apt-get install bubblewrap",
  redis: "apt-get install redis-server",
  chromium: "apt-get install chromium, or set CHROMIUM_BIN to a Chromium executable",
};

/**
 * The tiers that must run: all of them under `CI=true`, else those named in `CCX_REQUIRE`
 * (comma-separated; `all` names every tier). An unknown name is an error, so a typo cannot
 * quietly require nothing.
 */
export function requiredTiers(
  env: { get(name: string): string | undefined } = Deno.env,
): Set<TierName> {
  const out = new Set<TierName>();
  if (env.get("CI") === "true") { for (const t of TIERS) out.add(t); }
  for (const raw of (env.get("CCX_REQUIRE") ?? "").split(",")) {
    const name = raw.trim();
    if (name === "") continue;
    if (name === "all") { for (const t of TIERS) out.add(t); }
    else if ((TIERS as readonly string[]).includes(name)) out.add(name as TierName);
    else if (name in HINTS) continue; // a capability of tests/_util/capability.ts, read there
    else {
      throw new Error(
        `CCX_REQUIRE: unknown tier ${JSON.stringify(name)} (expected a comma-separated list of ` +
          `${
            [...TIERS, ...Object.keys(HINTS).filter((k) => !TIERS.includes(k as TierName))].join(
              ", ",
            )
          } or all)`,
      );
    }
  }
  return out;
}

/** Why a required tier is required, for its failure message. */
function requiredBy(name: TierName, env: { get(name: string): string | undefined }): string {
  return env.get("CI") === "true" ? "CI=true requires every tier" : `CCX_REQUIRE names ${name}`;
}

/** The decision for one tier, without side effects (see {@linkcode tierGate}). */
export type TierDecision =
  | { run: true }
  | { run: false; fail?: undefined; note: string }
  | { run: false; fail: string };

/** Decides what a probe result means for a tier's tests under the given environment. */
export function decideTier(
  name: TierName,
  probe: TierProbe,
  env: { get(name: string): string | undefined } = Deno.env,
): TierDecision {
  if (probe.ok) return { run: true };
  if ("broken" in probe) {
    return { run: false, fail: `${name} tier: installed but not working: ${probe.broken}` };
  }
  if (requiredTiers(env).has(name)) {
    return {
      run: false,
      fail: `${name} tier is required (${requiredBy(name, env)}) but ` +
        `${probe.missing}; to install it: ${INSTALL[name]}`,
    };
  }
  return {
    run: false,
    note: `${name} tier skipped: ${probe.missing} (${INSTALL[name]}; CI=true or ` +
      `CCX_REQUIRE=${name} makes this a failure)`,
  };
}

/**
 * Applies the tier rule in the calling test module and returns `ignore` for its tier tests:
 * `false` when the tier is there; otherwise `true`, and either one failing test
 * (`<name> tier is available`) is registered, or one line says the tier is skipped.
 */
export function tierGate(name: TierName, probe: TierProbe): boolean {
  const d = decideTier(name, probe);
  if (d.run) return false;
  if (d.fail !== undefined) {
    const why = d.fail;
    Deno.test(`${name} tier is available`, () => {
      throw new Error(why);
    });
  } else {
    console.warn(d.note);
  }
  return true;
}

/** Probes bubblewrap: missing when not on PATH, broken when it cannot make a sandbox. */
export function probeBwrap(): TierProbe {
  if (!onPath("bwrap")) return { ok: false, missing: "bwrap is not on PATH" };
  try {
    checkBwrap();
    return { ok: true };
  } catch (e) {
    const msg = (e as Error).message;
    // checkBwrap says "not installed" when spawning fails with NotFound.
    if (/not installed/.test(msg)) return { ok: false, missing: "bwrap is not installed" };
    return { ok: false, broken: msg };
  }
}

/** The bwrap tier for the calling module: `ignore` for its bwrap tests. */
export function bwrapTier(): boolean {
  return tierGate("bwrap", probeBwrap());
}

/** Probes redis-server: `CCX_SKIP_REDIS=1` and a missing redis-server count as missing. */
export function probeRedis(): TierProbe {
  if (Deno.env.get("CCX_SKIP_REDIS") === "1") {
    return { ok: false, missing: "CCX_SKIP_REDIS=1 is set" };
  }
  if (!onPath("redis-server")) return { ok: false, missing: "redis-server is not on PATH" };
  return { ok: true };
}

/** The redis tier for the calling module: `ignore` for its Redis tests. */
export function redisTier(): boolean {
  return tierGate("redis", probeRedis());
}

/** The Chromium the web tests drive (`CHROMIUM_BIN`, default Debian's `/usr/bin/chromium`). */
export const CHROMIUM: string = Deno.env.get("CHROMIUM_BIN") ?? "/usr/bin/chromium";

/** Probes Chromium: missing when {@linkcode CHROMIUM} is not an executable file. */
export function probeChromium(): TierProbe {
  try {
    const st = Deno.statSync(CHROMIUM);
    if (!st.isFile || ((st.mode ?? 0o111) & 0o111) === 0) {
      return { ok: false, broken: `${CHROMIUM} is not an executable file` };
    }
    return { ok: true };
  } catch {
    return { ok: false, missing: `no Chromium at ${CHROMIUM}` };
  }
}

/** The chromium tier for the calling module: `ignore` for its browser tests. */
export function chromiumTier(): boolean {
  return tierGate("chromium", probeChromium());
}

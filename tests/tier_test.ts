/**
 * The tier rule (tests/_util/tier.ts): a missing tier is a skip outside CI and a failure naming it
 * under `CI=true` or `CCX_REQUIRE`; a broken one is always a failure. The decision is tested as a
 * function, and end to end by running a small test module (tests/fixtures/tiers_probe.ts) with
 * `deno test` under a PATH that lacks npm, bwrap or redis-server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decideTier, requiredTiers } from "./_util/tier.ts";
import { ROOT } from "./_util/helpers.ts";

const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });

Deno.test("requiredTiers(): CI=true requires every tier; CCX_REQUIRE names some; a typo is an error", () => {
  assert.deepEqual([...requiredTiers(env({}))], []);
  assert.deepEqual([...requiredTiers(env({ CI: "true" }))].sort(), [
    "bwrap",
    "chromium",
    "claude",
    "redis",
  ]);
  assert.deepEqual([...requiredTiers(env({ CI: "1" }))], [], "only CI=true counts, as CI sets it");
  assert.deepEqual([...requiredTiers(env({ CCX_REQUIRE: "claude, bwrap" }))].sort(), [
    "bwrap",
    "claude",
  ]);
  assert.equal(requiredTiers(env({ CCX_REQUIRE: "all" })).size, 4);
  assert.throws(() => requiredTiers(env({ CCX_REQUIRE: "claude,bwarp" })), /unknown tier "bwarp"/);
  // A capability of tests/_util/capability.ts is no tier, and no error either.
  assert.deepEqual([...requiredTiers(env({ CCX_REQUIRE: "chattr,redis" }))], ["redis"]);
});

Deno.test("decideTier(): run, skip with a line, fail naming what is missing and how to install it", () => {
  assert.deepEqual(decideTier("redis", { ok: true }, env({ CI: "true" })), { run: true });
  const skip = decideTier("bwrap", { ok: false, missing: "bwrap is not on PATH" }, env({}));
  assert.equal(skip.run, false);
  assert.equal(skip.run === false && skip.fail, undefined);
  assert.match(
    skip.run === false && "note" in skip ? skip.note : "",
    /^bwrap tier skipped: bwrap is not on PATH \(apt-get install bubblewrap; CI=true or CCX_REQUIRE=bwrap makes this a failure\)$/,
  );
  const ci = decideTier(
    "claude",
    { ok: false, missing: "npm is not on PATH" },
    env({ CI: "true" }),
  );
  assert.match(
    ci.run === false ? ci.fail ?? "" : "",
    /^claude tier is required \(CI=true requires every tier\) but npm is not on PATH; to install it: install npm/,
  );
  const named = decideTier(
    "chromium",
    { ok: false, missing: "no Chromium at /x" },
    env({ CCX_REQUIRE: "chromium" }),
  );
  assert.match(named.run === false ? named.fail ?? "" : "", /\(CCX_REQUIRE names chromium\)/);
  // Not named in CCX_REQUIRE: still a skip.
  const other = decideTier("redis", { ok: false, missing: "m" }, env({ CCX_REQUIRE: "chromium" }));
  assert.equal(other.run === false && other.fail, undefined);
  // Broken is a failure even outside CI, with the tool's own words.
  const broken = decideTier(
    "bwrap",
    { ok: false, broken: "bwrap: No permissions to creating new namespace" },
    env({}),
  );
  assert.match(
    broken.run === false ? broken.fail ?? "" : "",
    /^bwrap tier: installed but not working: bwrap: No permissions to creating new namespace$/,
  );
});

/** A directory of symlinks to everything on PATH except `without`: a PATH that lacks them. */
async function pathWithout(without: string[]): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "ccx-tier-path-" });
  for (const from of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!from) continue;
    try {
      for (const e of Deno.readDirSync(from)) {
        if (without.includes(e.name)) continue;
        try {
          Deno.symlinkSync(join(from, e.name), join(dir, e.name));
        } catch {
          // an earlier PATH entry already provides this name
        }
      }
    } catch {
      // a PATH entry that does not exist
    }
  }
  return { path: dir, remove: () => Deno.remove(dir, { recursive: true }) };
}

/** Runs the probe module with `deno test` for `tiers` under `vars` and a PATH lacking `without`. */
async function probe(tiers: string, without: string[], vars: Record<string, string>) {
  const p = await pathWithout(without);
  const cache = await Deno.makeTempDir({ prefix: "ccx-tier-cache-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", join(ROOT, "tests", "fixtures", "tiers_probe.ts")],
      cwd: ROOT,
      env: {
        PATH: p.path,
        PROBE_TIERS: tiers,
        CI: "",
        CCX_REQUIRE: "",
        CCX_SKIP_REDIS: "",
        // An empty install dir: the claude tier needs npm to get the CLI.
        CCX_CLAUDE_CODE_DIR: cache,
        NO_COLOR: "1",
        ...vars,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    await p.remove();
    await Deno.remove(cache, { recursive: true });
  }
}

Deno.test("under CI=true a PATH without npm, bwrap and redis-server fails, naming each tier", async () => {
  const r = await probe("claude,bwrap,redis", ["npm", "bwrap", "redis-server"], { CI: "true" });
  assert.notEqual(r.code, 0, r.text);
  assert.match(r.text, /claude tier is available \.\.\. FAILED/, r.text);
  assert.match(r.text, /bwrap tier is available \.\.\. FAILED/, r.text);
  assert.match(r.text, /redis tier is available \.\.\. FAILED/, r.text);
  assert.match(
    r.text,
    /claude tier is required \(CI=true requires every tier\) but npm is not on PATH, and the CLI is not installed yet; to install it: install npm/,
  );
  assert.match(
    r.text,
    /bwrap tier is required \(CI=true requires every tier\) but bwrap is not on PATH; to install it: apt-get install bubblewrap/,
  );
  assert.match(
    r.text,
    /redis tier is required .* but redis-server is not on PATH; to install it: apt-get install redis-server/,
  );
  assert.match(
    r.text,
    /3 ignored/,
    "the tier's own tests are ignored, the failure stands for them",
  );
});

Deno.test("outside CI the same PATH skips each tier with one line, counted as ignored", async () => {
  const r = await probe("claude,bwrap,redis,chromium", ["npm", "bwrap", "redis-server"], {
    CHROMIUM_BIN: "/nonexistent/chromium",
  });
  assert.equal(r.code, 0, r.text);
  for (const t of ["claude", "bwrap", "redis", "chromium"]) {
    assert.equal(r.text.split(`${t} tier skipped: `).length - 1, 1, `one line for ${t}: ${r.text}`);
  }
  assert.match(r.text, /0 passed \| 0 failed \| 4 ignored/, r.text);
  // CCX_REQUIRE names one tier: that one fails, the others still skip.
  const req = await probe("bwrap,chromium", ["bwrap"], {
    CCX_REQUIRE: "chromium",
    CHROMIUM_BIN: "/nonexistent/chromium",
  });
  assert.notEqual(req.code, 0, req.text);
  assert.match(
    req.text,
    /chromium tier is required \(CCX_REQUIRE names chromium\) but no Chromium at \/nonexistent\/chromium/,
  );
  assert.match(req.text, /bwrap tier skipped: /);
});

Deno.test("a bwrap that is installed but cannot make a sandbox fails with bwrap's own message, even outside CI", async () => {
  // A `bwrap` on PATH that fails the way bwrap does without user namespaces.
  const p = await pathWithout(["bwrap"]);
  try {
    const fake = join(p.path, "bwrap");
    await Deno.writeTextFile(
      fake,
      "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'bubblewrap 0.0'; exit 0; }\n" +
        "echo 'bwrap: No permissions to create new namespace' >&2; exit 1\n",
    );
    await Deno.chmod(fake, 0o755);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", join(ROOT, "tests", "fixtures", "tiers_probe.ts")],
      cwd: ROOT,
      env: { PATH: p.path, PROBE_TIERS: "bwrap", CI: "", CCX_REQUIRE: "", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.notEqual(out.code, 0, text);
    assert.match(
      text,
      /bwrap tier: installed but not working: .*No permissions to create new namespace/,
    );
  } finally {
    await p.remove();
  }
});

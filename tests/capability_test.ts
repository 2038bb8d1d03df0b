/**
 * tests/_util/capability.ts: a test that needs what the machine lacks fails under CI (or when
 * CCX_REQUIRE names it), saying what is missing and how to get it; elsewhere it is ignored and
 * one line says why. Checked by running `deno test` on a small test module in a subprocess, with
 * and without CI=true.
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./_util/helpers.ts";

const MODULE = `
import { requireCapability } from ${JSON.stringify(join(ROOT, "tests/_util/capability.ts"))};
const GIZMO = requireCapability("gizmo", () => "no gizmo on this box", "apt-get install gizmo");
const THERE = requireCapability("there", () => true, "nothing to do");
const BROKEN = requireCapability("broken", () => { throw new Error("probe blew up"); }, "fix it");
Deno.test({ name: "needs gizmo", ignore: GIZMO.ignore, fn() { GIZMO.need(); } });
Deno.test({ name: "needs gizmo too", ignore: GIZMO.ignore, fn() { GIZMO.need(); } });
Deno.test({ name: "needs there", ignore: THERE.ignore, fn() { THERE.need(); } });
Deno.test({ name: "needs broken", ignore: BROKEN.ignore, fn() { BROKEN.need(); } });
`;

/** Runs `deno test` on {@linkcode MODULE} with `env` (CI and CCX_REQUIRE unset unless given). */
async function runModule(env: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ccx-capability-test-" });
  try {
    const file = join(dir, "cap_test.ts");
    await Deno.writeTextFile(file, MODULE);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-check", file],
      env: { NO_COLOR: "1", CI: "", CCX_REQUIRE: "", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return dec.decode(out.stdout) + dec.decode(out.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("outside CI a missing capability skips its tests, and one line per capability says why", async () => {
  const text = await runModule({});
  assert.match(text, /needs gizmo \.\.\. ignored/);
  assert.match(text, /needs gizmo too \.\.\. ignored/);
  assert.match(text, /needs there \.\.\. ok/);
  assert.match(text, /needs broken \.\.\. ignored/);
  const skips = text.split("\n").filter((l) => l.startsWith("SKIPPED:"));
  assert.deepEqual(skips, [
    "SKIPPED: tests that need gizmo: no gizmo on this box. To get it: apt-get install gizmo. " +
    "(CI=true or CCX_REQUIRE=gizmo makes this a failure.)",
    "SKIPPED: tests that need broken: probe blew up. To get it: fix it. " +
    "(CI=true or CCX_REQUIRE=broken makes this a failure.)",
  ]);
  assert.match(text, /1 passed \| 0 failed \| 3 ignored/);
});

Deno.test("under CI=true a missing capability fails every test that needs it, naming it and the fix", async () => {
  const text = await runModule({ CI: "true" });
  assert.match(text, /needs gizmo \.\.\. FAILED/);
  assert.match(text, /needs gizmo too \.\.\. FAILED/);
  assert.match(text, /needs there \.\.\. ok/);
  assert.match(text, /needs broken \.\.\. FAILED/);
  assert.match(
    text,
    /missing capability gizmo: no gizmo on this box\. To get it: apt-get install gizmo\. \(Required here because CI=true\.\)/,
  );
  assert.doesNotMatch(text, /SKIPPED:/);
});

Deno.test("CCX_REQUIRE fails the capabilities it names and skips the others", async () => {
  const text = await runModule({ CCX_REQUIRE: "gizmo" });
  assert.match(text, /needs gizmo \.\.\. FAILED/);
  assert.match(text, /Required here because CCX_REQUIRE names gizmo/);
  assert.match(text, /needs broken \.\.\. ignored/);
  assert.match(text, /SKIPPED: tests that need broken/);
  assert.doesNotMatch(text, /SKIPPED: tests that need gizmo/);
});

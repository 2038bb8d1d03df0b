import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyTree,
  MountedError,
  mountsBelow,
  removeTree,
  Slices,
  treeBytes,
  walkTree,
} from "../lib/serve/tree.ts";
import { HINTS, probeBindMount, requireCapability } from "./_util/capability.ts";

function temp(): string {
  return Deno.makeTempDirSync({ prefix: "ccx-tree-test-" });
}

Deno.test("copyTree copies files, symlinks verbatim and directory modes (read-only ones too)", async () => {
  const src = temp();
  Deno.mkdirSync(join(src, "ro/deep"), { recursive: true });
  Deno.writeTextFileSync(join(src, "ro/deep/a.go"), "package a\n");
  Deno.writeFileSync(join(src, "big.bin"), new Uint8Array(200 * 1024).fill(7));
  Deno.writeTextFileSync(join(src, "run.sh"), "#!/bin/sh\n");
  Deno.chmodSync(join(src, "run.sh"), 0o755);
  Deno.symlinkSync("../outside", join(src, "link"));
  Deno.chmodSync(join(src, "ro/deep"), 0o555);
  Deno.chmodSync(join(src, "ro"), 0o555);
  const dest = temp();
  try {
    await copyTree(src, dest);
    assert.equal(Deno.readTextFileSync(join(dest, "ro/deep/a.go")), "package a\n");
    assert.deepEqual(
      Deno.readFileSync(join(dest, "big.bin")),
      Deno.readFileSync(join(src, "big.bin")),
    );
    assert.equal(Deno.statSync(join(dest, "run.sh")).mode! & 0o777, 0o755);
    assert.equal(Deno.readLinkSync(join(dest, "link")), "../outside");
    assert.equal(Deno.statSync(join(dest, "ro")).mode! & 0o777, 0o555);
    assert.equal(Deno.statSync(join(dest, "ro/deep")).mode! & 0o777, 0o555);
    assert.equal(await treeBytes(dest), 10 + 200 * 1024 + 10 + "../outside".length);
  } finally {
    for (const d of [src, dest]) await removeTree(d);
  }
});

Deno.test("walkTree visits every entry once, stops when told, and yields to timers in a big directory", async () => {
  const dir = temp();
  Deno.mkdirSync(join(dir, "sub"));
  for (let i = 0; i < 3000; i++) Deno.writeTextFileSync(join(dir, "sub", `f${i}`), "");
  const seen = new Set<string>();
  // A timer set at the first entry of the big directory fires before its last one is visited:
  // the walk yields between entries (a slice of 0 ms ends at every check), not only between
  // directories.
  let fired = false;
  let firedAt = -1;
  await walkTree(join(dir, "sub"), (e) => {
    if (seen.size === 0) setTimeout(() => fired = true, 0);
    seen.add(e.path);
    if (fired && firedAt < 0) firedAt = seen.size;
  }, { slices: new Slices(0) });
  assert.equal(seen.size, 3000);
  assert.ok(seen.has("f42"));
  assert.ok(firedAt > 0 && firedAt < 3000, `the timer fired at entry ${firedAt}`);
  let n = 0;
  assert.equal(await walkTree(dir, () => ++n < 10), false);
  assert.equal(n, 10);
  await removeTree(dir);
});

Deno.test("mountsBelow reads the mount table: /proc is one, a fresh directory holds none", () => {
  assert.ok(mountsBelow("/proc").includes("/proc"));
  const dir = temp();
  assert.deepEqual(mountsBelow(dir), []);
  Deno.removeSync(dir);
});

const MOUNT = requireCapability("mount", probeBindMount, HINTS.mount);

Deno.test({
  name: "removeTree refuses a tree holding a mount point and leaves the mounted files alone",
  ignore: MOUNT.ignore,
  async fn() {
    MOUNT.need();
    const dir = temp();
    const outside = temp();
    Deno.writeTextFileSync(join(outside, "precious"), "x");
    Deno.mkdirSync(join(dir, "m"));
    const m = new Deno.Command("mount", {
      args: ["--bind", outside, join(dir, "m")],
      stderr: "piped",
    }).outputSync();
    assert.ok(m.success, `mount --bind: ${new TextDecoder().decode(m.stderr)}`);
    try {
      await assert.rejects(removeTree(dir), MountedError);
      assert.equal(Deno.readTextFileSync(join(outside, "precious")), "x");
    } finally {
      new Deno.Command("umount", { args: [join(dir, "m")] }).outputSync();
    }
    await removeTree(dir);
    assert.equal(Deno.readTextFileSync(join(outside, "precious")), "x");
    Deno.removeSync(outside, { recursive: true });
  },
});

/**
 * A full disk for tests: a 64 KiB tmpfs, filled to the last byte. Mounting needs root or
 * CAP_SYS_ADMIN; {@linkcode FULL_DISK} says whether this machine can, and under CI a machine
 * that cannot fails the tests that need it (see capability.ts).
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { HINTS, probeTmpfsMount, requireCapability } from "./capability.ts";

/** Whether a tmpfs can be mounted here (the `mount` capability). */
export const FULL_DISK = requireCapability("mount", probeTmpfsMount, HINTS.mount);

/**
 * Runs `fn` with a 64 KiB tmpfs mounted on a fresh directory (with an empty `jobs` directory in
 * it, where a server keeps its crash journal) and filled to the last byte; `free` makes room
 * again. The tmpfs is unmounted whatever happens.
 */
export async function withFullDisk(
  fn: (dir: string, free: () => void) => Promise<void>,
): Promise<void> {
  FULL_DISK.need();
  const dir = await Deno.makeTempDir({ prefix: "ccx-full-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
    stderr: "piped",
  }).output();
  try {
    assert.ok(mount.success, `mount: ${new TextDecoder().decode(mount.stderr)}`);
    Deno.mkdirSync(join(dir, "jobs"));
    const filler = join(dir, "filler");
    const f = Deno.openSync(filler, { write: true, create: true });
    try {
      for (const block = new Uint8Array(4096);;) f.writeSync(block);
    } catch (e) {
      assert.match((e as Error).message, /No space left/);
    } finally {
      f.close();
    }
    await fn(dir, () => Deno.removeSync(filler));
  } finally {
    if (mount.success) {
      const um = await new Deno.Command("umount", { args: ["-l", dir] }).output();
      assert.ok(um.success, `umount ${dir} failed`);
    }
    await Deno.remove(dir, { recursive: true });
  }
}

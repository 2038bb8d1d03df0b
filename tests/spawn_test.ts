import assert from "node:assert/strict";
import { baseEnvironment, findProgram, setsid } from "../lib/serve/spawn.ts";

Deno.test("findProgram looks where execvp would, and says found or runnable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/plain`, "x", { mode: 0o644 });
    await Deno.writeTextFile(`${dir}/tool`, "#!/bin/sh\n", { mode: 0o755 });
    await Deno.mkdir(`${dir}/sub`);
    const path = `/nonexistent:${dir}`;
    assert.deepEqual(findProgram("tool", path), { found: true, runnable: true });
    assert.deepEqual(findProgram("plain", path), { found: true, runnable: false });
    assert.deepEqual(findProgram("sub", path), { found: true, runnable: false });
    assert.deepEqual(findProgram("nothing", path), { found: false, runnable: false });
    assert.deepEqual(findProgram("./tool", undefined, dir), { found: true, runnable: true });
    // Found once, looked for there first: gone from there, found where it is now, or not at all.
    await Deno.remove(`${dir}/tool`);
    assert.deepEqual(findProgram("tool", path), { found: false, runnable: false });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("setsid is found on this host; the base environment holds only allowed names", () => {
  assert.match(setsid() ?? "", /\/setsid$/);
  const pass = ["PATH"];
  const env = baseEnvironment(pass);
  assert.deepEqual(Object.keys(env), ["PATH"]);
  assert.equal(baseEnvironment(pass), env, "read again at most once a second (same list)");
});

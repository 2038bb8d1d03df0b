import assert from "node:assert/strict";
import { isDiskFull, Unwritten } from "../lib/stress/unwritten.ts";

Deno.test("isDiskFull() knows ENOSPC and EDQUOT by code and by message, nothing else", async () => {
  assert.ok(isDiskFull(Object.assign(new Error("x"), { code: "ENOSPC" })));
  assert.ok(isDiskFull(new Error("No space left on device (os error 28): writefile 'a'")));
  assert.ok(isDiskFull(new Error("Disk quota exceeded (os error 122)")));
  const denied = await Deno.writeTextFile("/proc/version", "x").catch((e) => e);
  assert.equal(isDiskFull(denied), false);
  assert.equal(isDiskFull(new Error("os error 280")), false);
});

Deno.test("Unwritten names the cause and every file not written; empty when all were", async () => {
  const notes = new Unwritten();
  assert.deepEqual(notes.lines(), []);
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(
      await notes.write(`${dir}/ok.json`, "report", (p) => Deno.writeTextFile(p, "{}")),
      true,
    );
    assert.deepEqual(notes.lines(), []);
    assert.equal(
      await notes.write(`${dir}/no/such/dir/r.xml`, "report", (p) => Deno.writeTextFile(p, "")),
      false,
    );
    assert.match(
      notes.lines()[0],
      /^could not write files \(No such file.*\): not written: .*r\.xml$/,
    );
    const full = new Error("No space left on device (os error 28): writefile 'x'");
    for (let i = 1; i <= 7; i++) notes.add(`/o/t${i}.txt`, "output", full);
    notes.add("/o/report.json", "report", full, true);
    assert.deepEqual(notes.lines(), [
      `the disk is full (No space left on device): not written: ${dir}/no/such/dir/r.xml; ` +
      "/o/report.json (an earlier state of the run is left there); 7 task output files " +
      "(/o/t1.txt, /o/t2.txt, /o/t3.txt, /o/t4.txt, /o/t5.txt, and 2 more)",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

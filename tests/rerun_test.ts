import assert from "node:assert/strict";
import { join } from "node:path";
import { findLastRun, LiveReport, readRun, rememberLastRun } from "../lib/stress/rerun.ts";
import type { RunReport } from "../lib/stress/report/model.ts";

function report(n: number): RunReport {
  return {
    runId: "r1",
    suite: "s.json",
    startedAt: new Date(0),
    durationS: n,
    results: [],
    interrupted: false,
    threshold: 10,
    skipped: Array.from({ length: n }, (_, i) => ({
      id: `t${i}`,
      name: `t${i}`,
      category: "c",
      reason: "not run yet",
    })),
  };
}

Deno.test("LiveReport writes the latest snapshot, never two writes at once, each one whole", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "sub", "report.json");
    const live = new LiveReport(path);
    let taken = 0;
    for (let i = 1; i <= 50; i++) live.update(() => (taken++, report(i)));
    await live.flush();
    // A burst of updates is coalesced; the file holds the last snapshot.
    assert.ok(taken < 50, `${taken} snapshots written for 50 updates`);
    const back = await readRun(path);
    assert.equal(back.skipped?.length, 50);
    // No temporary file is left beside it.
    assert.deepEqual([...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name), ["report.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findLastRun() prefers the remembered run, else the newest run directory", async () => {
  const root = await Deno.makeTempDir();
  try {
    assert.equal(await findLastRun(root), undefined);
    for (const name of ["old", "new"]) {
      await Deno.mkdir(join(root, name));
      await Deno.writeTextFile(join(root, name, "report.json"), "{}");
      await Deno.utime(join(root, name, "report.json"), 0, name === "old" ? 1000 : 2000);
    }
    assert.equal(await findLastRun(root), join(root, "new", "report.json"));
    await rememberLastRun(join(root, "old", "report.json"), root);
    assert.equal(await findLastRun(root), join(root, "old", "report.json"));
    await assert.rejects(readRun(join(root, "old")), /not a ccx stress report/);
    await assert.rejects(readRun(join(root, "missing")), /no report\.json at/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

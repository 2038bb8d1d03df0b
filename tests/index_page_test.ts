import assert from "node:assert/strict";
import { join } from "node:path";
import { findRuns, toIndexHtml } from "../lib/stress/report/index_page.ts";
import { writeReports } from "../lib/stress/report/files.ts";
import { NASTY, result, run } from "./_util/report.ts";

Deno.test("findRuns() finds every report.json below a directory, newest first, and lists what it cannot read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_index_" });
  try {
    const old = run([result("a", "passed")], { runId: "old" });
    old.startedAt = new Date("2026-01-01T00:00:00Z");
    const recent = run([result("b", "failed")], { runId: "new" });
    recent.startedAt = new Date("2026-02-01T00:00:00Z");
    await writeReports(old, { json: join(dir, "r1", "report.json") });
    await writeReports(recent, {
      json: join(dir, "deeper", "r2", "report.json"),
      html: join(dir, "deeper", "r2", "report.html"),
    });
    await Deno.mkdir(join(dir, "junk"));
    await Deno.writeTextFile(join(dir, "junk", "report.json"), "{}");
    const runs = await findRuns(dir);
    assert.deepEqual(runs.map((r) => r.report.runId), ["new", "old"]);
    assert.equal(runs[0].html, join(dir, "deeper", "r2", "report.html"));
    assert.equal(runs[1].html, undefined);
    assert.deepEqual(runs.unreadable?.map((u) => u.json), [join(dir, "junk", "report.json")]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("toIndexHtml() has a row per run with date, suite, ratio, cost, version, model and link, all escaped", () => {
  const r = run([
    result("a", "passed", { model: NASTY, cliVersion: NASTY, costUsd: 0.25 }),
    result("b", "failed", { model: "claude-haiku", costUsd: 0.5 }),
  ], { runId: "run<1>", suite: NASTY });
  r.startedAt = new Date("2026-03-04T05:06:07Z");
  const html = toIndexHtml(
    Object.assign([{ json: "/runs/x/report.json", report: r, html: "/runs/x/report.html" }], {
      unreadable: [{ json: "/runs/y/report.json", error: NASTY }],
    }),
    { title: NASTY, indexPath: "/runs/index.html" },
  );
  assert.doesNotMatch(html, /<script/i);
  assert.match(html, /<time datetime="2026-03-04T05:06:07\.000Z">2026-03-04 05:06:07<\/time>/);
  assert.match(html, /run&lt;1&gt;/);
  assert.match(html, /NOT GRADUATED<\/span><br>1\.0:1 \(need 10:1 to graduate\)/);
  assert.match(html, /\$0\.7500/);
  assert.match(html, /claude-haiku/);
  assert.match(html, /<a href="x\/report\.html">report<\/a>/);
  assert.match(html, /<a class="muted" href="x\/report\.json">json<\/a>/);
  assert.match(html, /1 run, 1 not graduated/);
  assert.match(html, /Not read/);
});

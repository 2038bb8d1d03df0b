import assert from "node:assert/strict";
import { main, medianChecks } from "../bench/main.ts";
import type { Check, Section } from "../bench/report.ts";

const run = (value: string, ok: boolean | null = true): Check[] => [
  { name: "median", value, target: "< 5 ms", ok },
];

Deno.test("medianChecks() quotes the median run, not the best, with the range seen", () => {
  const [c] = medianChecks([run("4.1 ms"), run("6.0 ms", false), run("4.8 ms")]);
  assert.equal(c.value, "4.8 ms (median of 3; range 4.1 ms – 6.0 ms)");
  assert.equal(c.ok, true, "the verdict is the median run's");
  // An even count takes the lower of the two middle runs; a value that is not a number sorts last.
  const [even] = medianChecks([run("9 ms"), run("not measured", null), run("1 ms"), run("5 ms")]);
  assert.equal(even.value, "5 ms (median of 4; range 1 ms – not measured)");
  // One run is quoted as it is.
  assert.deepEqual(medianChecks([run("3 ms")]), run("3 ms"));
});

Deno.test("bench --quick exits 1 when a benchmark reports a problem or crashes, else 0", async () => {
  const section = (notes: string[]): Section => ({
    id: "x",
    title: "x",
    columns: ["a"],
    rows: [["1"]],
    checks: [],
    notes,
    data: {},
  });
  const tables = (run: () => Promise<Section>) => ({ full: { x: run }, quick: { x: run } });
  const quiet = console.log;
  const quietErr = console.error;
  console.log = console.error = () => {};
  try {
    assert.equal(await main(["--quick"], tables(() => Promise.resolve(section(["fine"])))), 0);
    const broken = tables(() => Promise.resolve(section(["PROBLEM: 3 of 4 tasks did not pass"])));
    assert.equal(await main(["--quick"], broken), 1);
    // The same note in a full run is reported, not failed: the figures are the point there.
    assert.equal(await main([], broken), 0);
    assert.equal(await main(["--quick"], tables(() => Promise.reject(new Error("boom")))), 1);
    assert.equal(await main(["--quick", "--only", "nope"], broken), 2);
  } finally {
    console.log = quiet;
    console.error = quietErr;
  }
});

Deno.test("the naive executor runs a job as the same client sees ccx run one", async () => {
  const { serveNaive } = await import("../bench/naive.ts");
  const { JobClient } = await import("../bench/job_client.ts");
  const server = serveNaive(0);
  try {
    const client = await JobClient.connect(`ws://127.0.0.1:${server.addr.port}/ws`);
    const ok = await client.run({ argv: ["true"] });
    assert.equal(ok.status, "completed");
    const lines = await client.run({ command: "seq 1 5; printf tail" });
    assert.deepEqual([lines.status, lines.outputs], ["completed", 6]);
    assert.equal((await client.run({ command: "exit 3" })).status, "failed");
    await client.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("bench versus, at a tiny size, measures every figure and its ratio", async () => {
  const { QUICK } = await import("../bench/main.ts");
  const { stopAll } = await import("../bench/proc.ts");
  try {
    const s = await QUICK.versus();
    assert.deepEqual(s.notes.filter((n) => n.startsWith("PROBLEM")), []);
    const names = s.checks.map((c) => c.name);
    for (
      const want of [/^per job/, /at once/, /sessions ×/, /^lines mode/, /gate's cost: per job/]
    ) {
      assert.ok(names.some((n) => want.test(n)), `${want} in ${names.join(" | ")}`);
    }
    // Every figure was measured (a number), whatever it is: no time assertions here.
    for (const c of s.checks) {
      assert.ok(Number.isFinite(parseFloat(c.value)), `${c.name}: ${c.value}`);
    }
  } finally {
    await stopAll();
  }
});

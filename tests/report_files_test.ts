import assert from "node:assert/strict";
import { join } from "node:path";
import { writeOutputFile, writeReports } from "../lib/stress/report/files.ts";
import { result, run, T0 } from "./_util/report.ts";
import { descendants, parseXml } from "./_util/xml.ts";

Deno.test("writeReports() writes each requested file, creating directories", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_report_files_test_" });
  try {
    const outputFile = join(dir, "outputs", "simple_1.txt");
    const report = run([result("simple_1", "failed", { outputFile })]);
    const paths = await writeReports(report, {
      json: join(dir, "a", "report.json"),
      junit: join(dir, "b", "c", "junit.xml"),
      html: join(dir, "html", "index.html"),
    });
    assert.deepEqual(paths, [
      join(dir, "a", "report.json"),
      join(dir, "b", "c", "junit.xml"),
      join(dir, "html", "index.html"),
    ]);
    assert.equal(JSON.parse(await Deno.readTextFile(paths[0])).run_id, "run-42");
    assert.equal(descendants(parseXml(await Deno.readTextFile(paths[1])), "failure").length, 1);
    const html = await Deno.readTextFile(paths[2]);
    assert.ok(html.includes('href="../outputs/simple_1.txt"'));
    const names = [...Deno.readDirSync(join(dir, "a"))].map((e) => e.name);
    assert.deepEqual(names, ["report.json"]); // no temporary files left behind
    assert.deepEqual(await writeReports(report, {}), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeOutputFile() writes header lines, 80 dashes, then the output verbatim", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_report_files_test_" });
  try {
    const path = join(dir, "nested", "simple_1_20250102_030405.txt");
    const body = "line 1\n\x1b[1mline 2\x1b[0m\n" + "x".repeat(100_000);
    await writeOutputFile(path, {
      task: "simple_1",
      name: "What is 2+2?",
      status: "passed",
      durationS: 1.234,
      exitCode: 0,
      timestamp: new Date(T0),
      command: "claude -p 'a\nb'",
      reason: "all patterns found",
    }, body);
    const text = await Deno.readTextFile(path);
    const sep = "\n" + "-".repeat(80) + "\n";
    const at = text.indexOf(sep);
    assert.deepEqual(text.slice(0, at).split("\n"), [
      "Task: simple_1 - What is 2+2?",
      "Status: passed",
      "Duration: 1.23s",
      "Exit code: 0",
      "Timestamp: 2025-01-02T03:04:05.678Z",
      "Command: claude -p 'a\\nb'",
      "Reason: all patterns found",
    ]);
    assert.equal(text.slice(at + sep.length), body);

    await writeOutputFile(path, {
      task: "t",
      name: "n",
      status: "error",
      durationS: 0,
      exitCode: null,
      timestamp: new Date(T0),
    }, "");
    const short = await Deno.readTextFile(path);
    assert.ok(short.includes("Exit code: none\n"));
    assert.ok(!short.includes("Command:"));
    assert.ok(short.endsWith("-".repeat(80) + "\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

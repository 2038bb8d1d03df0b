import assert from "node:assert/strict";
import { join } from "node:path";
import {
  formatRatioLine,
  formatSummaryTable,
  fromJson,
  oneLine,
  type RunReport,
  summarize,
  type TestResult,
  type TestStatus,
  toHtml,
  toJson,
  toJunit,
  writeOutputFile,
  writeReports,
} from "../lib/stress/report.ts";
import { formatDuration } from "../lib/common/format.ts";
import { assertJunit10, descendants, parseXml } from "./_util/xml.ts";

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

function result(id: string, status: TestStatus, extra: Partial<TestResult> = {}): TestResult {
  return {
    id,
    name: `name of ${id}`,
    category: "simple",
    status,
    reason: status === "passed" ? "all patterns found" : `${id} went wrong`,
    durationS: 1,
    exitCode: status === "error" ? null : 0,
    patternsFound: status === "passed" ? ["4"] : [],
    patternsMissing: status === "passed" ? [] : ["4"],
    attempts: 1,
    startedAt: T0,
    ...extra,
  };
}

function many(n: number, status: TestStatus): TestResult[] {
  return Array.from({ length: n }, (_, i) => result(`${status}_${i}`, status));
}

function run(results: TestResult[], extra: Partial<RunReport> = {}): RunReport {
  return {
    runId: "run-42",
    suite: "smoke",
    startedAt: new Date(T0),
    durationS: 12.3456,
    results,
    interrupted: false,
    threshold: 10,
    ...extra,
  };
}

/** Data that must never reach a report raw. */
const NASTY = `<script>alert("x&y")</script> it's \x00\x07\x1b[31mred\x1b[0m\ufffe\ud800 end`;
/** What survives: markup characters kept (escaped on output), ANSI and XML-illegal characters gone. */
const NASTY_CLEAN = `<script>alert("x&y")</script> it's red end`;

// ---------------------------------------------------------------- summary and ratio line

Deno.test("summarize() graduates at exactly the threshold and not below it", () => {
  const at = summarize([...many(10, "passed"), ...many(1, "failed")], 10);
  assert.deepEqual(at, {
    total: 11,
    passed: 10,
    failed: 1,
    errors: 0,
    ratio: 10,
    graduated: true,
  });
  const below = summarize([...many(19, "passed"), ...many(2, "failed")], 10);
  assert.equal(below.ratio, 9.5);
  assert.equal(below.graduated, false);
});

Deno.test("summarize() reports an infinite ratio as null when nothing failed, and graduates", () => {
  const s = summarize(many(3, "passed"), 10);
  assert.equal(s.ratio, null);
  assert.equal(s.graduated, true);
  assert.equal(formatRatioLine(s, 10), "Success ratio: ∞:1 (need 10:1 to graduate)");
});

Deno.test("summarize() never graduates a run with errors, whatever the ratio", () => {
  const s = summarize([...many(50, "passed"), ...many(1, "error")], 10);
  assert.equal(s.ratio, 50);
  assert.equal(s.errors, 1);
  assert.equal(s.graduated, false);
});

Deno.test("summarize() of all errors is ratio 0 and not graduated", () => {
  const s = summarize(many(4, "error"), 10);
  assert.deepEqual(s, { total: 4, passed: 0, failed: 0, errors: 4, ratio: 0, graduated: false });
  assert.equal(formatRatioLine(s, 10), "Success ratio: 0.0:1 (need 10:1 to graduate)");
});

Deno.test("summarize() of an empty run is ratio 0 and not graduated", () => {
  const s = summarize([], 10);
  assert.deepEqual(s, { total: 0, passed: 0, failed: 0, errors: 0, ratio: 0, graduated: false });
  assert.equal(formatRatioLine(s, 10), "Success ratio: 0.0:1 (need 10:1 to graduate)");
});

Deno.test("formatRatioLine() has one decimal, truncated so it never overstates", () => {
  const line = (p: number, f: number, e = 0) =>
    formatRatioLine(
      summarize([...many(p, "passed"), ...many(f, "failed"), ...many(e, "error")], 10),
      10,
    );
  assert.equal(line(10, 1), "Success ratio: 10.0:1 (need 10:1 to graduate)");
  assert.equal(line(3, 1), "Success ratio: 3.0:1 (need 10:1 to graduate)");
  assert.equal(line(20, 3), "Success ratio: 6.6:1 (need 10:1 to graduate)");
  assert.equal(line(199, 20), "Success ratio: 9.9:1 (need 10:1 to graduate)"); // 9.95, not 10.0
  assert.equal(line(5, 1, 1), "Success ratio: 2.5:1 (need 10:1 to graduate)");
  assert.equal(line(1, 3), "Success ratio: 0.3:1 (need 10:1 to graduate)");
});

Deno.test("formatRatioLine() names the threshold it was given", () => {
  const s = summarize([...many(4, "passed"), ...many(1, "failed")], 5);
  assert.equal(formatRatioLine(s, 5), "Success ratio: 4.0:1 (need 5:1 to graduate)");
});

Deno.test("oneLine() strips ANSI and control characters and joins lines", () => {
  assert.equal(oneLine("\x1b[31mexit 1\x1b[0m\nstderr:\tboom\x07"), "exit 1 stderr: boom");
  assert.equal(oneLine("x".repeat(10), 5), "xxxx…");
});

// ---------------------------------------------------------------- JSON

Deno.test("toJson() has the documented snake_case shape", () => {
  const concurrent = result("concurrent_1", "passed", {
    category: "concurrent_execution",
    outputFile: "out/concurrent_1.txt",
    attempts: 2,
    exitCode: 0,
    filesCreated: ["config.py"],
    workspace: "/srv/ws/1/work",
    instances: [
      {
        index: 0,
        model: "sonnet",
        temperature: 0.7,
        status: "passed",
        reason: "ok",
        durationS: 2.00049,
        exitCode: 0,
        picked: true,
        score: 0.9,
        outputFile: "out/c1_0.txt",
      },
      {
        index: 1,
        status: "failed",
        reason: "timeout",
        durationS: 3,
        exitCode: null,
        picked: false,
      },
    ],
  });
  const j = JSON.parse(toJson(run([result("simple_1", "failed"), concurrent])));
  assert.deepEqual(Object.keys(j), [
    "run_id",
    "suite",
    "started_at",
    "duration_s",
    "interrupted",
    "threshold",
    "summary",
    "categories",
    "errors_by_kind",
    "tests",
  ]);
  assert.equal(j.run_id, "run-42");
  assert.equal(j.started_at, "2025-01-02T03:04:05.678Z");
  assert.equal(j.duration_s, 12.346);
  assert.equal(j.interrupted, false);
  assert.deepEqual(j.summary, {
    total: 2,
    passed: 1,
    failed: 1,
    errors: 0,
    skipped: 0,
    ratio: 1,
    graduated: false,
    cost_usd: null,
    tokens: null,
  });
  assert.deepEqual(j.tests[0], {
    id: "simple_1",
    name: "name of simple_1",
    category: "simple",
    status: "failed",
    reason: "simple_1 went wrong",
    duration_s: 1,
    exit_code: 0,
    patterns_found: [],
    patterns_missing: ["4"],
    output_file: null,
    attempts: 1,
    answer: null,
    stderr_tail: null,
    model: null,
    turns: null,
    tokens: null,
    cost_usd: null,
    kind: null,
    fix: null,
    started_at: j.tests[0].started_at,
    files_created: [],
    workspace: null,
  });
  assert.equal(j.tests[1].attempts, 2);
  assert.equal(j.tests[1].output_file, "out/concurrent_1.txt");
  assert.deepEqual(j.tests[1].files_created, ["config.py"]);
  assert.equal(j.tests[1].workspace, "/srv/ws/1/work");
  assert.deepEqual(j.tests[1].instances, [
    {
      index: 0,
      model: "sonnet",
      temperature: 0.7,
      status: "passed",
      reason: "ok",
      duration_s: 2,
      exit_code: 0,
      picked: true,
      score: 0.9,
      output_file: "out/c1_0.txt",
    },
    {
      index: 1,
      model: null,
      temperature: null,
      status: "failed",
      reason: "timeout",
      duration_s: 3,
      exit_code: null,
      picked: false,
      score: null,
      output_file: null,
    },
  ]);
});

Deno.test("toJson() writes ratio null and graduated true when nothing failed", () => {
  const j = JSON.parse(toJson(run(many(2, "passed"), { interrupted: true })));
  assert.equal(j.summary.ratio, null);
  assert.equal(j.summary.graduated, true);
  assert.equal(j.interrupted, true);
});

Deno.test("toJson() keeps task data verbatim (JSON escaping is lossless)", () => {
  const j = JSON.parse(toJson(run([result("x", "failed", { reason: 'a\nb "q" <t>' })])));
  assert.equal(j.tests[0].reason, 'a\nb "q" <t>');
});

// ---------------------------------------------------------------- JUnit

Deno.test("toJunit() has a testsuite per category and a testcase per task", () => {
  const results = [
    result("simple_1", "passed", { durationS: 1.5, outputFile: "out/simple_1.txt" }),
    result("simple_2", "failed", { durationS: 2 }),
    result("long_1", "error", { category: "long_running", durationS: 0.25 }),
    result("long_2", "passed", { category: "long_running" }),
  ];
  const doc = parseXml(toJunit(run(results)));
  assert.equal(doc.name, "testsuites");
  assert.deepEqual(
    [doc.attrs.tests, doc.attrs.failures, doc.attrs.errors, doc.attrs.name],
    ["4", "1", "1", "smoke"],
  );
  // junit-10.xsd allows no timestamp on <testsuites>, only on <testsuite>.
  assert.equal(doc.attrs.timestamp, undefined);
  const suites = descendants(doc, "testsuite");
  assert.equal(suites[0].attrs.timestamp, "2025-01-02T03:04:05");
  assert.deepEqual(suites.map((s) => s.attrs.name), ["simple", "long_running"]);
  assert.deepEqual(suites.map((s) => [s.attrs.tests, s.attrs.failures, s.attrs.errors]), [
    ["2", "1", "0"],
    ["2", "0", "1"],
  ]);
  assert.equal(suites[0].attrs.time, "3.500");
  const cases = descendants(doc, "testcase");
  assert.equal(cases.length, 4);
  assert.deepEqual(cases[0].attrs, { classname: "simple", name: "simple_1", time: "1.500" });
  assert.equal(cases[2].attrs.classname, "long_running");
  assert.equal(descendants(doc, "failure").length, 1);
  assert.equal(descendants(doc, "error").length, 1);
  assert.equal(descendants(cases[1], "failure")[0].attrs.message, "simple_2 went wrong");
  assert.equal(descendants(cases[2], "error")[0].attrs.message, "long_1 went wrong");
  assert.match(descendants(cases[1], "failure")[0].text, /patterns missing: 4/);
  assert.match(descendants(cases[0], "system-out")[0].text, /output file: out\/simple_1\.txt/);
  const props = descendants(suites[0], "property").map((p) => [p.attrs.name, p.attrs.value]);
  assert.deepEqual(props.find((p) => p[0] === "run_id"), ["run_id", "run-42"]);
});

Deno.test("toJunit() escapes markup and quotes and drops characters illegal in XML 1.0", () => {
  const bad = result(`id<&"'>`, "failed", {
    category: `cat "&' <x>`,
    reason: NASTY,
    outputFile: "out/<weird> & 'name'.txt",
  });
  const xml = toJunit(run([bad], { suite: NASTY }));
  const doc = parseXml(xml); // throws on anything ill-formed or illegal
  assert.equal(doc.attrs.name, NASTY_CLEAN);
  const tc = descendants(doc, "testcase")[0];
  assert.equal(tc.attrs.name, `id<&"'>`);
  assert.equal(tc.attrs.classname, `cat "&' <x>`);
  const failure = descendants(tc, "failure")[0];
  assert.equal(failure.attrs.message, NASTY_CLEAN);
  assert.ok(failure.text.includes(NASTY_CLEAN));
  assert.ok(descendants(tc, "system-out")[0].text.includes("out/<weird> & 'name'.txt"));
  assert.ok(!xml.includes("<script>"));
});

Deno.test("toJunit() keeps line breaks of a multi-line reason in the message attribute", () => {
  const doc = parseXml(toJunit(run([result("x", "error", { reason: "line one\nline two" })])));
  assert.equal(descendants(doc, "error")[0].attrs.message, "line one\nline two");
});

Deno.test("toJunit() of an empty run is a valid empty testsuites", () => {
  const doc = parseXml(toJunit(run([])));
  assert.equal(doc.attrs.tests, "0");
  assert.equal(descendants(doc, "testcase").length, 0);
});

// ---------------------------------------------------------------- HTML

Deno.test("toHtml() escapes task data everywhere and contains no script at all", () => {
  const html = toHtml(run([
    result(`<script>x</script>`, "failed", {
      name: NASTY,
      reason: NASTY,
      category: "<img src=x onerror=alert(1)>",
      patternsFound: ["<b>"],
      outputFile: `out/<script>.txt`,
    }),
  ], { suite: "<script>suite</script>", runId: `"><script>` }));
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<img/i);
  assert.doesNotMatch(html, /<b>/);
  assert.ok(
    html.includes("&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; it&#39;s red end"),
  );
  assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;"));
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(html, /[\x00-\x08\x0b\x0c\x0e-\x1f]/);
});

Deno.test("toHtml() is self-contained: inline CSS, no external assets, dark mode", () => {
  const html = toHtml(run([result("simple_1", "passed")]));
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<style>[\s\S]*prefers-color-scheme:\s*dark[\s\S]*<\/style>/);
  assert.doesNotMatch(html, /<link|<script|<img|@import|url\(/i);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i);
});

Deno.test("toHtml() shows the header: run id, suite, start, duration, counts and ratio line", () => {
  const html = toHtml(run([...many(10, "passed"), ...many(1, "failed")]));
  assert.ok(html.includes("run-42"));
  assert.ok(html.includes("smoke"));
  assert.ok(html.includes("2025-01-02T03:04:05.678Z"));
  assert.ok(html.includes(formatDuration(12.3456)));
  assert.ok(html.includes("Success ratio: 10.0:1 (need 10:1 to graduate)"));
  assert.ok(html.includes(">GRADUATED<"));
  assert.ok(toHtml(run(many(1, "error"))).includes(">NOT GRADUATED<"));
  assert.ok(toHtml(run([], { interrupted: true })).includes("INTERRUPTED"));
});

Deno.test("toHtml() draws one bar per task, failures first, widths relative to the longest", () => {
  const html = toHtml(run([
    result("p_fast", "passed", { durationS: 1 }),
    result("e_one", "error", { durationS: 2 }),
    result("f_one", "failed", { durationS: 4 }),
    result("p_slow", "passed", { durationS: 8 }),
    result("f_two", "failed", { durationS: 0 }),
  ]));
  const bars = [...html.matchAll(/<li class="b-(\w+)"[^>]*>.*?<\/li>/g)];
  assert.equal(bars.length, 5);
  const ids = bars.map((b) => /<span class="id mono">(?:<a [^>]*>)?([^<]+)/.exec(b[0])![1]);
  assert.deepEqual(ids, ["f_one", "f_two", "e_one", "p_fast", "p_slow"]);
  assert.deepEqual(bars.map((b) => b[1]), ["failed", "failed", "error", "passed", "passed"]);
  const widths = bars.map((b) => /width:([\d.]+)%/.exec(b[0])![1]);
  assert.deepEqual(widths, ["50.00", "0.00", "25.00", "12.50", "100.00"]);
  // The status is written out, not only coloured.
  assert.deepEqual(bars.map((b) => />(PASS|FAIL|ERROR)</.exec(b[0])![1]), [
    "FAIL",
    "FAIL",
    "ERROR",
    "PASS",
    "PASS",
  ]);
});

Deno.test("toHtml() lists failures with reasons and links output files relative to the page", () => {
  const results = [
    result("ok_1", "passed", { outputFile: "/tmp/r/outputs/ok_1.txt" }),
    result("bad_1", "failed", {
      reason: "missing pattern 4",
      outputFile: "/tmp/r/outputs/bad 1.txt",
    }),
  ];
  const html = toHtml(run(results), { htmlPath: "/tmp/r/reports/index.html" });
  const from = html.indexOf('<section id="failures">');
  const section = html.slice(from, html.indexOf("</section>", from));
  assert.ok(section.includes("missing pattern 4"));
  assert.ok(section.includes('href="../outputs/bad%201.txt"'));
  assert.ok(!section.includes("ok_1"));
  const noPath = toHtml(run(results));
  assert.ok(noPath.includes('href="file:///tmp/r/outputs/bad%201.txt"'));
});

// ---------------------------------------------------------------- console table

Deno.test("formatSummaryTable() without colour has no escape codes and ends with the ratio line", () => {
  const text = formatSummaryTable(
    run([
      result("simple_1", "passed", {
        patternsFound: ["4", "four", "IV", "2+2"],
        outputFile: "o/1.txt",
      }),
      result("simple_2", "failed", { reason: "\x1b[31mmissing\x1b[0m 4\nsecond line" }),
      result("simple_3", "error", { reason: "could not connect" }),
    ]),
    { color: false },
  );
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f]/);
  const lines = text.trimEnd().split("\n");
  assert.match(lines[0], /^Test ID\s+Category\s+Status\s+Duration\s+Info\s+Output$/);
  assert.match(
    lines[2],
    /^simple_1\s+simple\s+PASS\s+1\.0s\s+patterns: 4, four, IV \+1\s+o\/1\.txt$/,
  );
  assert.match(lines[3], /^simple_2\s+simple\s+FAIL\s+1\.0s\s+missing 4 second line\s+-$/);
  assert.match(lines[4], /^simple_3\s+simple\s+ERROR\s+1\.0s\s+could not connect/);
  assert.equal(lines.at(-2), "3 tests: 1 passed, 1 failed, 1 errors in 12.3s — NOT GRADUATED");
  assert.equal(lines.at(-1), "Success ratio: 0.5:1 (need 10:1 to graduate)");
  // Columns line up.
  assert.equal(lines[2].indexOf("PASS"), lines[0].indexOf("Status"));
  assert.equal(lines[4].indexOf("ERROR"), lines[0].indexOf("Status"));
});

Deno.test("formatSummaryTable() with colour keeps the status words and the exact ratio line", () => {
  const text = formatSummaryTable(run([result("a", "passed"), result("b", "failed")]), {
    color: true,
  });
  assert.ok(text.includes("\x1b[32mPASS"));
  assert.ok(text.includes("\x1b[31mFAIL"));
  assert.ok(text.trimEnd().endsWith("\nSuccess ratio: 1.0:1 (need 10:1 to graduate)"));
});

Deno.test("formatSummaryTable() of an empty, interrupted run says so", () => {
  const text = formatSummaryTable(run([], { interrupted: true }), { color: false });
  assert.ok(text.includes("(no tests ran)"));
  assert.ok(text.includes("(interrupted)"));
});

// ---------------------------------------------------------------- files

Deno.test("writeReports() writes each requested file, creating directories", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_report_test_" });
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
  const dir = await Deno.makeTempDir({ prefix: "ccx_report_test_" });
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

// ---------------------------------------------------------------- junit-10.xsd

Deno.test("toJunit() follows junit-10.xsd: every status, skipped tasks, answers and stderr", () => {
  const doc = parseXml(toJunit(run([
    result("p", "passed", { answer: "2 + 2 = 4", durationS: 1234.5 }),
    result("f", "failed", { answer: "five", stderrTail: "warn: x" }),
    result("e", "error", { kind: "not_logged_in", fix: "run claude /login", category: "c2" }),
  ], {
    skipped: [{ id: "s", name: "never ran", category: "c2", reason: "interrupted" }],
  })));
  assert.equal(doc.name, "testsuites");
  assertJunit10(doc);
  assert.equal(doc.attrs.tests, "4");
  const suites = descendants(doc, "testsuite");
  assert.deepEqual(suites.map((s) => [s.attrs.name, s.attrs.tests, s.attrs.skipped]), [
    ["simple", "2", "0"],
    ["c2", "2", "1"],
  ]);
  const cases = Object.fromEntries(descendants(doc, "testcase").map((c) => [c.attrs.name, c]));
  const skipped = descendants(cases.s, "skipped")[0];
  assert.equal(skipped.attrs.message, "interrupted");
  // The whole answer in <system-out>, the stderr tail in <system-err>.
  assert.match(descendants(cases.f, "system-out")[0].text, /answer:\nfive$/);
  assert.equal(descendants(cases.f, "system-err")[0].text, "warn: x");
  assert.match(descendants(cases.p, "system-out")[0].text, /2 \+ 2 = 4/);
  const err = descendants(cases.e, "error")[0];
  assert.equal(err.attrs.type, "not_logged_in");
  assert.match(err.text, /fix: run claude \/login/);
});

Deno.test("the junit-10.xsd rules catch what the Jenkins plugin rejects", () => {
  // The checker must fail on the old output's timestamp on <testsuites>.
  const old = parseXml('<testsuites tests="0" timestamp="2025-01-01T00:00:00"></testsuites>');
  assert.throws(() => assertJunit10(old), /attribute timestamp is not allowed on <testsuites>/);
  const noName = parseXml(
    '<testsuites><testsuite tests="1" failures="0" errors="0"/></testsuites>',
  );
  assert.throws(() => assertJunit10(noName), /name is required/);
  const badTime = parseXml('<testsuites time="1e3"></testsuites>');
  assert.throws(() => assertJunit10(badTime), /time/);
});

// ---------------------------------------------------------------- answers, kinds, totals

Deno.test("reports show what the model said, why, and what it cost", () => {
  const results = [
    result("math", "failed", {
      reason: "missing pattern: 4",
      answer: "The answer is five.\nSecond line.",
      stderrTail: "npm warn: old\nreal problem here",
      model: "claude-haiku",
      turns: 2,
      tokens: { input: 100, output: 20, cacheRead: 5, cacheCreation: 1 },
      costUsd: 0.0125,
    }),
    result("ok", "passed", {
      category: "other",
      answer: "4",
      costUsd: 0.0025,
      tokens: { input: 50, output: 10, cacheRead: 0, cacheCreation: 0 },
    }),
    result("e1", "error", { kind: "not_logged_in", fix: "run claude /login" }),
    result("e2", "error", { kind: "not_logged_in", fix: "run claude /login" }),
  ];
  const rep = run(results, {
    skipped: [{ id: "later", name: "later", category: "other", reason: "--max-fail 1 reached" }],
  });
  const j = JSON.parse(toJson(rep));
  assert.equal(j.tests[0].answer, "The answer is five.\nSecond line.");
  assert.equal(j.tests[0].stderr_tail, "npm warn: old\nreal problem here");
  assert.deepEqual(j.tests[0].tokens, { input: 100, output: 20, cache_read: 5, cache_creation: 1 });
  assert.equal(j.tests[0].model, "claude-haiku");
  assert.equal(j.tests[0].turns, 2);
  assert.equal(j.summary.cost_usd, 0.015);
  assert.deepEqual(j.summary.tokens, { input: 150, output: 30, cache_read: 5, cache_creation: 1 });
  assert.equal(j.summary.skipped, 1);
  assert.deepEqual(j.tests.at(-1), {
    id: "later",
    name: "later",
    category: "other",
    status: "skipped",
    reason: "--max-fail 1 reached",
  });
  assert.deepEqual(j.categories, [
    { name: "simple", total: 3, passed: 0, failed: 1, errors: 2, skipped: 0 },
    { name: "other", total: 2, passed: 1, failed: 0, errors: 0, skipped: 1 },
  ]);
  assert.deepEqual(j.errors_by_kind, [
    { kind: "not_logged_in", fix: "run claude /login", count: 2, tests: ["e1", "e2"] },
  ]);

  const text = formatSummaryTable(rep, { color: false });
  assert.match(
    text,
    /FAIL math: missing pattern: 4\n {2}answer: The answer is five\. Second line\.\n {2}stderr: real problem here/,
  );
  // The fix is said once per kind by ccx stress, not under every task.
  assert.doesNotMatch(text, /run claude \/login/);
  assert.match(text, /By category: simple 0\/3 \(1 failed, 2 errors\); other 1\/2/);
  assert.match(text, /Cost \$0\.0150; tokens 150 in, 30 out/);
  assert.match(text, /later\s+other\s+SKIP\s+--max-fail 1 reached/);
  assert.match(text, /4 tests: 1 passed, 1 failed, 2 errors, 1 skipped in/);

  const html = toHtml(rep);
  const from = html.indexOf('<section id="failures">');
  const cards = html.slice(from, html.indexOf("</section>", from));
  assert.ok(cards.includes("The answer is five.\nSecond line."), "answer in the failure card");
  assert.ok(cards.includes("real problem here"), "stderr in the failure card");
  assert.ok(cards.includes("run claude /login"));
  assert.match(html, /<section id="error-kinds">[\s\S]*not_logged_in<\/strong>: 2 tasks/);
  assert.match(html, /<section id="skipped">[\s\S]*later[\s\S]*--max-fail 1 reached/);
  // Every task links to its answer, rendered as text in the page.
  assert.match(html, /<details id="o1"><summary>.*ok/);
  assert.match(html, /href="#o1">ok</);
  assert.ok(html.includes("Cost $0.0150"));
});

Deno.test("fromJson() reads back what toJson() wrote, skipped tasks included", () => {
  const rep = run([
    result("a", "failed", {
      answer: "x",
      tokens: { input: 1, output: 2, cacheRead: 3, cacheCreation: 4 },
      costUsd: 0.5,
      kind: "k",
      fix: "f",
      outputFile: "o/a.txt",
    }),
    result("b", "passed"),
  ], { skipped: [{ id: "c", name: "c", category: "simple", reason: "interrupted" }] });
  const back = fromJson(toJson(rep));
  assert.deepEqual(back.results, rep.results);
  assert.deepEqual(back.skipped, rep.skipped);
  assert.equal(back.runId, "run-42");
  assert.throws(() => fromJson("{}"), /not a ccx stress report/);
});

import assert from "node:assert/strict";
import { toJunit } from "../lib/stress/report/junit.ts";
import { NASTY, NASTY_CLEAN, result, run } from "./_util/report.ts";
import { assertJunit10, descendants, parseXml } from "./_util/xml.ts";

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

Deno.test("JUnit: a failed check is in the failure message and body, its output in system-out; what ran in properties", () => {
  const t = result("add", "failed", {
    reason: 'check "sh test_add.sh" exited 1: AssertionError: add 2 3 gave -1',
    checks: [{
      command: "sh test_add.sh",
      status: "failed",
      exitCode: 1,
      durationS: 0.25,
      stdoutTail: "AssertionError: add 2 3 gave -1",
      stderrTail: "warning",
    }],
    cliVersion: "2.1.197",
  });
  const xml = toJunit(
    run([t], { meta: { ccxVersion: "0.1.0", host: "box", commandLine: ["stress"] } }),
  );
  assert.match(
    xml,
    /<failure message="check &quot;sh test_add\.sh&quot; exited 1: AssertionError: add 2 3 gave -1"/,
  );
  assert.match(xml, /check &quot;sh test_add\.sh&quot;: FAIL, exit 1, 0\.3s<\/failure>/);
  assert.match(
    xml,
    /<system-out>[^<]*check &quot;sh test_add\.sh&quot; stdout:\nAssertionError: add 2 3 gave -1/,
  );
  assert.match(xml, /<property name="claude_code_versions" value="2\.1\.197"\/>/);
  assert.match(xml, /<property name="ccx_version" value="0\.1\.0"\/>/);
  assertJunit10(parseXml(xml));
});

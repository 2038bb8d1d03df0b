import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertNoneLeft,
  assertOwnServerTokened,
  atMost,
  cli,
  FAKE_CLAUDE,
  KEY_ENV,
  newTag,
  OverlapLog,
  pidsMatching,
  ROOT,
  serverEnvWithKey,
  waitFor,
  withServer,
} from "./_util/helpers.ts";
import { assertJunit10, descendants, parseXml } from "./_util/xml.ts";
import { HINTS, probeChattr, requireCapability } from "./_util/capability.ts";
import { FULL_DISK, withFullDisk } from "./_util/full_disk.ts";
import { autoTimeoutScale, pageNote } from "../lib/commands/stress.ts";

// ---------------------------------------------------------------------------------------------
// helpers

/** A scratch directory for one test: suites, outputs, reports and the history state. */
interface Work {
  dir: string;
  /** `CCX_STATE_DIR` of every run, so no test touches the user's history. */
  state: string;
  path(name: string): string;
  /** Writes `json` as a suite file and returns its path. */
  suite(json: unknown, name?: string): Promise<string>;
}

async function withWork(fn: (w: Work) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_stress_test_" });
  const w: Work = {
    dir,
    state: join(dir, "state"),
    path: (name) => join(dir, name),
    async suite(json, name = "suite.json") {
      const p = join(dir, name);
      await Deno.writeTextFile(p, JSON.stringify(json, null, 2));
      return p;
    },
  };
  try {
    await fn(w);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `ccx stress ARGS` in the work directory, with the stand-in as `claude`. */
function stress(w: Work, args: string[], env: Record<string, string> = {}) {
  return cli(["stress", ...args, "--claude", FAKE_CLAUDE], {
    cwd: w.dir,
    // Tests run as root, where the CLI needs IS_SANDBOX=1; the stand-in needs a key.
    env: { CCX_STATE_DIR: w.state, CCX_SANDBOX: "1", ...KEY_ENV, ...env },
  });
}

interface JsonTest {
  id: string;
  name: string;
  category: string;
  status: "passed" | "failed" | "error" | "skipped";
  answer?: string | null;
  stderr_tail?: string | null;
  reason: string;
  duration_s: number;
  exit_code: number | null;
  patterns_found: string[];
  patterns_missing: string[];
  output_file: string | null;
  attempts: number;
  instances?: {
    index: number;
    model: string | null;
    temperature: number | null;
    status: string;
    picked: boolean;
    output_file: string | null;
  }[];
}

interface JsonReport {
  run_id: string;
  suite: string;
  started_at: string;
  duration_s: number;
  interrupted: boolean;
  summary: {
    total: number;
    passed: number;
    failed: number;
    errors: number;
    ratio: number | null;
    graduated: boolean;
    skipped?: number;
    cost_usd?: number | null;
  };
  tests: JsonTest[];
}

async function readReport(path: string): Promise<JsonReport> {
  return JSON.parse(await Deno.readTextFile(path));
}

function testOf(report: JsonReport, id: string): JsonTest {
  const t = report.tests.find((t) => t.id === id);
  assert.ok(t, `no test ${id} in the report: ${report.tests.map((t) => t.id).join(", ")}`);
  return t;
}

/** The output file's body: what the task wrote, after the header. */
async function bodyOf(file: string | null | undefined): Promise<string> {
  assert.ok(file, "the task has no output file");
  const text = await Deno.readTextFile(file);
  const rule = "-".repeat(80) + "\n";
  const at = text.indexOf(rule);
  assert.ok(at >= 0, "no header rule in the output file");
  return text.slice(at + rule.length);
}

const TEST_KEYS = [
  "answer",
  "attempts",
  "category",
  "checks",
  "claude_code_version",
  "cost_usd",
  "duration_s",
  "exit_code",
  "files_created",
  "fix",
  "id",
  "kind",
  "model",
  "name",
  "output_file",
  "patterns_found",
  "patterns_missing",
  "reason",
  "request",
  "rubric",
  "started_at",
  "status",
  "stderr_tail",
  "tokens",
  "turns",
  "workspace",
];

// ---------------------------------------------------------------------------------------------
// suites and schemas

Deno.test("ccx stress runs a seed-schema suite of Claude prompts and graduates", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const suite = await w.suite({
      categories: {
        simple: {
          tasks: [
            {
              id: "simple_add",
              name: "Add two numbers",
              natural_language_request: "What is 2+2?",
              metatags: `[category:math] [run:${tag}]`,
              verification: {
                timeout: 30,
                expected_patterns: ["2 + 2 = 4"],
                marker: "ADD_${TIMESTAMP}",
              },
            },
            {
              id: "templated",
              natural_language_request: `[[answer:Paris is the capital]] ${tag}`,
              command_template:
                'claude -p "[marker:${MARKER}] ${METATAGS} ${REQUEST}" --output-format stream-json --verbose',
              metatags: "[tag:geo]",
              verification: { expected_patterns: ["paris"] },
            },
            {
              id: "shell",
              command_template: `: ${tag}; echo "stamp=\${TIMESTAMP}"`,
              verification: { expected_patterns: ["stamp=2"] },
            },
            {
              id: "unsaved",
              command_template: `: ${tag}; echo not-kept`,
              verification: { expected_patterns: ["not-kept"], save_output: false },
            },
          ],
        },
      },
    });
    const r = await stress(w, [suite]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^Success ratio: ∞:1 \(need 10:1 to graduate\)$/m);
    assert.match(r.stdout, /4 tests: 4 passed, 0 failed, 0 errors .* GRADUATED/);
    // Without --out and --json: test_outputs/<run-id>/ under the working directory.
    const [runDir] = [...Deno.readDirSync(w.path("test_outputs"))].filter((e) => e.isDirectory)
      .map((e) => e.name);
    const report = await readReport(w.path(`test_outputs/${runDir}/report.json`));
    assert.equal(report.run_id, runDir);
    assert.deepEqual(report.tests.map((t) => [t.id, t.category, t.status]), [
      ["simple_add", "simple", "passed"],
      ["templated", "simple", "passed"],
      ["shell", "simple", "passed"],
      ["unsaved", "simple", "passed"],
    ]);
    assert.equal(testOf(report, "unsaved").output_file, null);
    assert.deepEqual(
      [...Deno.readDirSync(w.path(`test_outputs/${runDir}`))].map((e) => e.name).sort(),
      ["report.json", "shell.txt", "simple_add.txt", "templated.txt"],
    );
    assert.equal(testOf(report, "simple_add").name, "Add two numbers");
    // The markers reached the model (it echoes them); patterns never match them.
    assert.match(
      await bodyOf(w.path(testOf(report, "simple_add").output_file!)),
      /\[marker:ADD_\d{8}_/,
    );
    assert.match(
      await bodyOf(w.path(testOf(report, "templated").output_file!)),
      /\[marker:templated_\d/,
    );
    assert.equal(
      testOf(report, "shell").output_file,
      join("test_outputs", runDir, "shell.txt"),
    );
    // The timeout history went to CCX_STATE_DIR, not the user's home.
    await Deno.stat(join(w.state, "history.sqlite"));
  });
  assertNoneLeft(tag);
});

Deno.test("ccx stress runs the upstream schema: categories.<name>.tests[] and top-level tests[]", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const suite = await w.suite({
      name: "upstream-style",
      categories: {
        shell: {
          timeout: 10,
          tests: [
            {
              id: "echo",
              command: `: ${tag}; echo upstream-ok`,
              expected_patterns: ["upstream-ok"],
            },
            {
              id: "claude_cmd",
              command: `claude -p '${tag} [[answer:from the stand-in]]' --output-format json`,
              expected_patterns: ["from the stand-in"],
            },
          ],
        },
      },
      tests: [{
        id: "top_level",
        command: `: ${tag}; echo "$HOME" >/dev/null; printf 'top\\n' >&2; exit 1`,
        expect_non_zero_exit: true,
        expected_patterns: ["top"],
      }],
    });
    const json = w.path("r.json");
    const r = await stress(w, [suite, "--json", json, "--out", w.path("out"), "--no-history"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = await readReport(json);
    assert.equal(report.suite, suite);
    assert.deepEqual(report.tests.map((t) => [t.id, t.category, t.status]), [
      ["echo", "shell", "passed"],
      ["claude_cmd", "shell", "passed"],
      ["top_level", "tests", "passed"],
    ]);
    assert.equal(testOf(report, "top_level").exit_code, 1);
    // --no-history: nothing recorded.
    assert.equal(
      await Deno.stat(join(w.state, "history.sqlite")).catch(() => undefined),
      undefined,
    );
  });
  assertNoneLeft(tag);
});

Deno.test("ccx stress refuses a malformed suite before running anything, naming every JSON path", async () => {
  await withWork(async (w) => {
    const pwned = w.path("ran");
    const suite = await w.suite({
      categories: {
        simple: {
          tasks: [
            { id: "would_run", command_template: `touch ${pwned}` },
            { id: "bad id!", natural_language_request: 5 },
            {
              id: "t3",
              natural_language_request: "What is 2+2?",
              verification: { timeout: "soon", expected_patterns: "4" },
            },
            {
              id: "t4",
              natural_language_request: "x",
              concurrent_instances: 0,
              evaluation_criteria: "BEST",
            },
          ],
        },
        upstream: { tests: [{ id: "u1" }] },
      },
    });
    const r = await stress(w, [suite]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    for (
      const [path, message] of [
        ["categories.simple.tasks[1].id", /not a valid id/],
        ["categories.simple.tasks[1].natural_language_request", /expected a string, got 5/],
        ["categories.simple.tasks[2].verification.timeout", /expected a number/],
        ["categories.simple.tasks[2].verification.expected_patterns", /expected an array/],
        ["categories.simple.tasks[3].concurrent_instances", /positive integer/],
        ["categories.simple.tasks[3].evaluation_criteria", /unknown criterion "BEST"/],
        ["categories.upstream.tests[0].command", /required/],
      ] as const
    ) {
      const line = r.stderr.split("\n").find((l) => l.trim().startsWith(`${path}: `));
      assert.ok(line, `no problem reported at ${path}:\n${r.stderr}`);
      assert.match(line, message);
    }
    assert.match(r.stderr, /7 problems/);
    assert.equal(await Deno.stat(pwned).catch(() => undefined), undefined);
    assert.equal(await Deno.stat(w.path("test_outputs")).catch(() => undefined), undefined);

    const broken = w.path("broken.json");
    await Deno.writeTextFile(broken, '{\n  "tests": [\n    {"id": "x",}\n  ]\n}\n');
    const b = await stress(w, [broken]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /not valid JSON.*line 3/);

    const missing = await stress(w, [w.path("nope.json")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json/);

    const mode = await stress(w, [suite, "--pattern-mode", "most"]);
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /--pattern-mode: expected all or any/);
  });
});

// ---------------------------------------------------------------------------------------------
// quoting and pattern matching

Deno.test("ccx stress --validate refuses a misspelled key with a suggestion and runs nothing", async () => {
  await withWork(async (w) => {
    const bad = await w.suite({
      tests: [{ id: "t", command: "echo ran > ran.txt", expected_pattern: ["hi"], timout: 5 }],
    });
    const r = await stress(w, ["--validate", bad]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /tests\[0\]\.expected_pattern: unknown key "expected_pattern" \(did you mean "expected_patterns"\?\)/,
    );
    assert.match(r.stderr, /tests\[0\]\.timout: unknown key "timout" \(did you mean "timeout"\?\)/);
    // Without --validate the same suite is refused before anything runs.
    const run = await stress(w, [bad, "--out", w.path("out")]);
    assert.equal(run.code, 2);
    await assert.rejects(Deno.stat(w.path("ran.txt")));
    const good = await w.suite({ tests: [{ id: "t", command: "true" }] }, "good.json");
    const g = await stress(w, ["--validate", good]);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /good\.json: valid, 1 task in 1 category, 1 warning\n/);
    assert.match(g.stderr, /warning: .*tests\[0\]: task "t" checks nothing but exit code 0/);
    await assert.rejects(Deno.stat(w.path("ran.txt")));
  });
});

Deno.test("ccx stress passes hostile request text verbatim to shell templates and Claude alike", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const pwned = w.path("pwned");
    const request = `${tag} it's "quoted" $(touch ${pwned}1) \`touch ${pwned}2\` $HOME ` +
      `'; touch ${pwned}3; echo '`;
    const suite = await w.suite({
      categories: {
        quoting: {
          tasks: [
            {
              id: "shell_double",
              natural_language_request: request,
              command_template: `printf '%s\\n' "\${REQUEST}"`,
              verification: { expected_patterns: [request] },
            },
            {
              id: "shell_single",
              natural_language_request: request,
              command_template: `echo '\${REQUEST}'`,
              verification: { expected_patterns: [request] },
            },
            {
              id: "claude_default",
              natural_language_request: request,
              verification: { expected_patterns: [`You asked: ${request}`] },
            },
            {
              id: "claude_template",
              natural_language_request: request,
              command_template: `claude -p "\${REQUEST}" --output-format stream-json --verbose`,
              verification: { expected_patterns: [`You asked: ${request}`] },
            },
          ],
        },
      },
    });
    const json = w.path("r.json");
    const r = await stress(w, [suite, "-c", "4", "--json", json, "--out", w.path("out")]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = await readReport(json);
    assert.equal(await bodyOf(testOf(report, "shell_double").output_file), `${request}\n`);
    assert.equal(await bodyOf(testOf(report, "shell_single").output_file), `${request}\n`);
    for (const n of [1, 2, 3]) {
      assert.equal(await Deno.stat(`${pwned}${n}`).catch(() => undefined), undefined);
    }
  });
  assertNoneLeft(tag);
});

Deno.test("ccx stress matches the model's words, not the JSON envelope, in `all` and `any` mode", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const suite = await w.suite({
      categories: {
        envelope: {
          tasks: [{
            id: "zebra",
            natural_language_request: `${tag} [[answer:A zebra has stripes.]] [[no-marker]]`,
            verification: { expected_patterns: ["ZEBRA", "session_id", '"type"', "2.1.197"] },
          }],
        },
      },
    });
    const all = w.path("all.json");
    const a = await stress(w, [suite, "--json", all, "--out", w.path("out_all")]);
    assert.equal(a.code, 1, a.stdout + a.stderr);
    const t = testOf(await readReport(all), "zebra");
    assert.equal(t.status, "failed");
    assert.deepEqual(t.patterns_found, ["ZEBRA"]);
    assert.deepEqual(t.patterns_missing, ["session_id", '"type"', "2.1.197"]);
    assert.match(t.reason, /missing patterns: session_id, "type", 2\.1\.197/);
    // The envelope did hold them all.
    const raw = await bodyOf(t.output_file);
    for (const p of t.patterns_missing) assert.ok(raw.includes(p), `raw output lacks ${p}`);

    const any = w.path("any.json");
    const b = await stress(w, [
      suite,
      "--pattern-mode",
      "any",
      "--json",
      any,
      "--out",
      w.path("out_any"),
    ]);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.equal(testOf(await readReport(any), "zebra").status, "passed");
  });
  assertNoneLeft(tag);
});

Deno.test("ccx stress removes markers before matching: a 4 or a 2026 in the marker never passes", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const task = (id: string, patterns: string[], answer: string) => ({
      id,
      natural_language_request: `${tag} [[answer:${answer}]]`,
      verification: { marker: "M4_2026_${TIMESTAMP}", expected_patterns: patterns },
    });
    const suite = await w.suite({
      categories: {
        markers: {
          tasks: [
            task("four", ["4"], "five"),
            task("year", ["2026"], "five"),
            task("word", ["word:4"], "It is 42."),
            task("regex", ["regex:^2 \\+ 2 = 4$"], "2 + 2 = 4"),
          ],
        },
      },
    });
    const json = w.path("r.json");
    const r = await stress(w, [suite, "--json", json, "--out", w.path("out"), "-c", "4"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const rep = await readReport(json);
    // The answers did echo the marker, digits and all.
    assert.match(await bodyOf(testOf(rep, "four").output_file), /\[marker:M4_2026_\d{8}_\d{6}\]/);
    assert.equal(testOf(rep, "four").status, "failed");
    assert.deepEqual(testOf(rep, "four").patterns_missing, ["4"]);
    assert.equal(testOf(rep, "year").status, "failed");
    assert.equal(testOf(rep, "word").status, "failed");
    assert.equal(testOf(rep, "regex").status, "passed");
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// reports

Deno.test("ccx stress writes JSON, JUnit, HTML and per-task output files that agree", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const suite = await w.suite({
      name: "reports",
      categories: {
        fast: {
          tests: [
            {
              id: "pass_1",
              name: "Passes",
              command: `: ${tag}; echo alpha`,
              expected_patterns: ["alpha"],
            },
            {
              id: "fail_missing",
              name: "Misses <omega> & more",
              command: `: ${tag}; echo alpha`,
              expected_patterns: ["alpha", "omega"],
            },
            { id: "failure_expected", command: `: ${tag}; echo boom >&2; exit 3` },
          ],
        },
        slow: {
          tests: [{
            id: "timeout_1",
            command: `: ${tag}; echo begin; sleep 30.${tag}`,
            timeout: 0.3,
          }],
        },
      },
    });
    const out = w.path("outputs");
    const json = w.path("reports/run.json");
    const junit = w.path("reports/junit.xml");
    const html = w.path("reports/run.html");
    const r = await stress(w, [
      suite,
      "-c",
      "4",
      "--out",
      out,
      "--json",
      json,
      "--junit",
      junit,
      "--html",
      html,
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^Success ratio: 1\.0:1 \(need 10:1 to graduate\)$/m);
    assert.ok(r.stdout.includes(json) && r.stdout.includes(junit) && r.stdout.includes(html));

    // JSON: the documented shape, exactly.
    const report = await readReport(json);
    assert.deepEqual(Object.keys(report).sort(), [
      "categories",
      "comparison",
      "duration_s",
      "errors_by_kind",
      "interrupted",
      "repeat",
      "repeats",
      "run",
      "run_id",
      "started_at",
      "suite",
      "summary",
      "tests",
      "threshold",
    ]);
    assert.deepEqual(report.summary, {
      total: 4,
      passed: 2,
      failed: 1,
      errors: 1,
      skipped: 0,
      ratio: 1,
      graduated: false,
      cost_usd: null,
      tokens: null,
      pass_at_1: null,
      flaky: [],
    });
    assert.equal(report.interrupted, false);
    assert.ok(!Number.isNaN(Date.parse(report.started_at)));
    for (const t of report.tests) assert.deepEqual(Object.keys(t).sort(), TEST_KEYS);
    assert.deepEqual(report.tests.map((t) => [t.id, t.status]), [
      ["pass_1", "passed"],
      ["fail_missing", "failed"],
      ["failure_expected", "passed"],
      ["timeout_1", "error"],
    ]);
    assert.deepEqual(testOf(report, "fail_missing").patterns_missing, ["omega"]);
    // What the task said is in the report itself, not only in its output file.
    assert.equal(testOf(report, "fail_missing").answer, "alpha");
    assert.equal(testOf(report, "failure_expected").stderr_tail, "boom");
    assert.equal(testOf(report, "failure_expected").exit_code, 3);
    assert.match(testOf(report, "timeout_1").reason, /^timed out after 0\.3s$/);

    // Output files: header, rule, then exactly what the task wrote.
    for (const t of report.tests) {
      assert.equal(t.output_file, join(out, `${t.id}.txt`));
      assert.equal(t.attempts, 1);
    }
    const passText = await Deno.readTextFile(join(out, "pass_1.txt"));
    assert.match(
      passText,
      new RegExp(
        "^Task: pass_1 - Passes\\nStatus: passed\\nDuration: \\d+\\.\\d\\ds\\nExit code: 0\\n" +
          "Timestamp: \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\nCommand: .*echo alpha\\n" +
          "Reason: exit 0, 1/1 patterns\\n-{80}\\nalpha\\n$",
      ),
    );
    assert.match(await Deno.readTextFile(join(out, "failure_expected.txt")), /^Exit code: 3$/m);
    assert.match(await bodyOf(join(out, "failure_expected.txt")), /boom/);
    assert.match(await Deno.readTextFile(join(out, "timeout_1.txt")), /^Status: error$/m);

    // JUnit: well-formed, valid by junit-10.xsd's rules, with counts that match.
    const doc = parseXml(await Deno.readTextFile(junit));
    assert.equal(doc.name, "testsuites");
    assertJunit10(doc);
    assert.deepEqual(
      [doc.attrs.tests, doc.attrs.failures, doc.attrs.errors],
      ["4", "1", "1"],
    );
    assert.deepEqual(
      descendants(doc, "testsuite").map((s) => [s.attrs.name, s.attrs.tests]),
      [["fast", "3"], ["slow", "1"]],
    );
    const cases = descendants(doc, "testcase");
    assert.deepEqual(cases.map((c) => c.attrs.name), report.tests.map((t) => t.id));
    const failures = descendants(doc, "failure");
    const errors = descendants(doc, "error");
    assert.equal(failures.length, 1);
    assert.equal(errors.length, 1);
    const failedCase = cases.find((c) => c.children.some((x) => x.name === "failure"))!;
    assert.equal(failedCase.attrs.name, "fail_missing");
    assert.equal(failures[0].attrs.message, testOf(report, "fail_missing").reason);
    assert.equal(
      cases.find((c) => c.children.some((x) => x.name === "error"))!.attrs.name,
      "timeout_1",
    );

    // HTML: one self-contained page naming every task.
    const page = await Deno.readTextFile(html);
    assert.match(page, /^<!DOCTYPE html>/);
    for (const t of report.tests) assert.ok(page.includes(t.id), `the page lacks ${t.id}`);
    assert.ok(page.includes("Misses &lt;omega&gt; &amp; more"));
    assert.doesNotMatch(page, /<script|src="http|href="http/);
    assert.ok(page.includes("Success ratio: 1.0:1"));
    // The failure card shows the answer; the console names it too.
    const card = page.slice(page.indexOf('<section id="failures">'));
    assert.match(card, /<strong>Answer<\/strong><\/p>\n<pre class="answer">alpha<\/pre>/);
    assert.match(r.stdout, /FAIL fail_missing: missing pattern: omega\n {2}answer: alpha/);
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// what the README promises to work as shipped

Deno.test("`deno task selftest` graduates: every task of tasks/selftest.json passes", async () => {
  await withWork(async (w) => {
    const json = w.path("selftest.json");
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["task", "selftest", "--out", w.path("out"), "--json", json],
      cwd: ROOT,
      env: { NO_COLOR: "1", CCX_STATE_DIR: w.state },
      stdin: "null",
    }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, out);
    const shipped = JSON.parse(await Deno.readTextFile(join(ROOT, "tasks/selftest.json")));
    const categories = Object.values(shipped.categories) as { tests: unknown[] }[];
    const count = categories.reduce((n, c) => n + c.tests.length, 0);
    const report = await readReport(json);
    assert.ok(count > 0);
    assert.equal(report.summary.total, count);
    assert.equal(report.summary.passed, count);
    assert.equal(report.summary.graduated, true);
    assert.match(out, new RegExp(`${count} tests: ${count} passed, 0 failed, 0 errors`));
  });
});

Deno.test("ccx stress --claude tests/fixtures/claude runs the shipped Claude suite and graduates", async () => {
  await withWork(async (w) => {
    const json = w.path("claude.json");
    // No SUITE: the default, tasks/unified_stress_test_tasks.json, as the README runs it.
    const r = await cli([
      "stress",
      "--claude",
      "tests/fixtures/claude",
      "--concurrency",
      "4",
      "--out",
      w.path("out"),
      "--json",
      json,
    ], { cwd: ROOT, env: { CCX_STATE_DIR: w.state, CCX_SANDBOX: "1", ...KEY_ENV } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = await readReport(json);
    assert.ok(report.summary.total >= 20, `only ${report.summary.total} tasks`);
    assert.equal(report.summary.passed, report.summary.total);
    assert.equal(report.summary.graduated, true);
    assert.ok(report.tests.some((t) => t.category === "concurrent_execution"));
  });
});

Deno.test("--timeout-scale auto multiplies timeouts by 3 exactly when the 1-minute load exceeds 14", async () => {
  assert.equal(autoTimeoutScale(0), 1);
  assert.equal(autoTimeoutScale(14), 1);
  assert.equal(autoTimeoutScale(14.01), 3);
  assert.equal(autoTimeoutScale(40), 3);
  // Through the CLI: a task that times out says which scale applied, and it is the one the
  // machine's load average called for when the run started.
  const tag = newTag();
  await withWork(async (w) => {
    const suite = await w.suite({
      tests: [{ id: "slow", command: `: ${tag}; sleep 30.${tag}`, timeout: 0.5 }],
    });
    const json = w.path("r.json");
    // The machine's 1-minute load, read here (not from ccx's output) just before and after the
    // run: ccx read it in between, so when both sides call for the same scale, so did ccx.
    const load = () => Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
    const before = autoTimeoutScale(load());
    const r = await stress(w, [suite, "--timeout-scale", "auto", "--json", json]);
    const after = autoTimeoutScale(load());
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const reason = (await readReport(json)).tests[0].reason;
    const allowed = [...new Set([before, after])].map((x) => `timed out after ${0.5 * x}s`);
    assert.ok(allowed.includes(reason), `${reason}; the load called for ${allowed.join(" or ")}`);
    const bad = await stress(w, [suite, "--timeout-scale", "sometimes"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeout-scale/);
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// exit codes and selection

Deno.test("ccx stress exit code: 0 at the threshold ratio with no error, else 1; selection flags", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const good = Array.from({ length: 10 }, (_, i) => {
      const n = String(i + 1).padStart(2, "0");
      return {
        id: `good_${n}`,
        name: `good task ${n}`,
        command: `: ${tag}; echo ok-${n}`,
        expected_patterns: [`ok-${n}`],
      };
    });
    const suite = await w.suite({
      categories: {
        good: { tests: good },
        bad: {
          tests: [{ id: "bad_1", command: `: ${tag}; echo nope`, expected_patterns: ["yes"] }],
        },
        err: { tests: [{ id: "err_1", command: `: ${tag}; sleep 30.${tag}`, timeout: 0.3 }] },
      },
    });
    const run = async (name: string, args: string[]) => {
      const json = w.path(`${name}.json`);
      const r = await stress(w, [suite, "-c", "6", "--json", json, "--out", w.path(name), ...args]);
      const report = r.code === 2 ? undefined : await readReport(json);
      return { ...r, report, ids: report?.tests.map((t) => t.id) ?? [] };
    };
    const [
      allGood,
      tenToOne,
      stricter,
      withError,
      onlyBad,
      prefix,
      byName,
      unknown,
      repeated,
      scaled,
    ] = await atMost(2, [
      () => run("all_good", ["--category", "good"]),
      () => run("ten_to_one", ["--category", "good", "--category", "bad"]),
      () => run("stricter", ["--category", "good", "--category", "bad", "--threshold", "11"]),
      () => run("with_error", ["--category", "good", "--category", "err"]),
      () => run("only_bad", ["--category", "BAD"]),
      () => run("prefix", ["--filter", "GOOD_0"]),
      () => run("by_name", ["--filter", "task 10"]),
      () => run("unknown", ["--category", "nope"]),
      () => run("repeated", ["--filter", "good_10", "--repeat", "3"]),
      () => run("scaled", ["--category", "err", "--timeout-scale", "2"]),
    ]);

    assert.equal(allGood.code, 0, allGood.stdout + allGood.stderr);
    assert.equal(allGood.ids.length, 10);
    assert.match(allGood.stdout, /Success ratio: ∞:1 \(need 10:1 to graduate\)/);

    assert.equal(tenToOne.code, 0, tenToOne.stdout);
    assert.match(tenToOne.stdout, /Success ratio: 10\.0:1 \(need 10:1 to graduate\)/);
    assert.equal(tenToOne.report?.summary.graduated, true);

    assert.equal(stricter.code, 1);
    assert.match(stricter.stdout, /Success ratio: 10\.0:1 \(need 11:1 to graduate\)/);

    // Ten passes to one error meets the ratio, but an error never graduates.
    assert.equal(withError.code, 1);
    assert.match(withError.stdout, /Success ratio: 10\.0:1/);
    assert.equal(withError.report?.summary.errors, 1);
    assert.equal(withError.report?.summary.graduated, false);

    assert.equal(onlyBad.code, 1);
    assert.deepEqual(onlyBad.ids, ["bad_1"]);
    assert.match(onlyBad.stdout, /Success ratio: 0\.0:1/);

    assert.equal(prefix.code, 0);
    assert.deepEqual(prefix.ids, good.slice(0, 9).map((t) => t.id));
    assert.equal(byName.code, 0);
    assert.deepEqual(byName.ids, ["good_10"]);

    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown category "nope".*good, bad, err/);

    assert.equal(repeated.code, 0);
    assert.deepEqual(repeated.ids, ["good_10.r1", "good_10.r2", "good_10.r3"]);

    assert.equal(scaled.code, 1);
    assert.equal(scaled.report?.tests[0].reason, "timed out after 0.6s");
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// concurrency and servers

Deno.test("ccx stress --concurrency runs tasks at the same time", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    // Each task arrives, then waits (up to ~30 s) for all four to have arrived: only tasks that
    // really run at once can pass.
    using log = new OverlapLog(4, 4);
    const suite = await w.suite({
      tests: [1, 2, 3, 4].map((i) => ({
        id: `meet_${i}`,
        command: log.wrap(`${i}`, `: ${tag}; echo all-four-met`),
        expected_patterns: ["all-four-met"],
        timeout: 60,
      })),
    });
    const r = await stress(w, [suite, "--concurrency", "4", "--out", w.path("out")]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /4 tests: 4 passed/);
    assert.equal(log.mostAtOnce(), 4, log.lines().join(", "));
  });
  assertNoneLeft(tag);
});

Deno.test("ccx stress --server twice spreads the tasks over both servers", async () => {
  const tag = newTag();
  const logA: string[] = [];
  const logB: string[] = [];
  await withWork(async (w) => {
    const suite = await w.suite({
      tests: [1, 2, 3, 4].map((i) => ({
        id: `spread_${i}`,
        command: `: ${tag}; echo spread-${i}`,
        expected_patterns: [`spread-${i}`],
      })),
    });
    await withServer(
      { log: (l) => logA.push(l) },
      (a) =>
        withServer({ log: (l) => logB.push(l) }, async (b) => {
          const r = await stress(w, [
            suite,
            "--server",
            a.url,
            "--server",
            b.url,
            "-c",
            "2",
            "--out",
            w.path("out"),
          ]);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.ok(r.stderr.includes(a.url) && r.stderr.includes(b.url), r.stderr);
        }),
    );
  });
  const started = (log: string[]) => log.filter((l) => / started /.test(l) && l.includes(tag));
  assert.equal(started(logA).length, 2, logA.join("\n"));
  assert.equal(started(logB).length, 2, logB.join("\n"));
  assertNoneLeft(tag);
});

Deno.test("ccx stress pre-flight: a server down, a refused token or a missing CLI is exit 3, nothing run", async () => {
  await withWork(async (w) => {
    const suite = await w.suite({
      tests: [
        { id: "a", command: "echo a > ran_a.txt", expected_patterns: [] },
        { id: "b", command: "echo b > ran_b.txt" },
      ],
    });
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const down = await stress(w, [suite, "--server", "ws://127.0.0.1:1/ws"]);
    assert.equal(down.code, 3, down.stdout + down.stderr);
    const lines = down.stderr.split("\n").filter((l) => l.includes("cannot run"));
    assert.equal(lines.length, 1, down.stderr);
    assert.match(
      lines[0],
      /--server ws:\/\/127\.0\.0\.1:1\/ws: no answer from http:\/\/127\.0\.0\.1:1\/health/,
    );
    const badUrl = await stress(w, [suite, "--server", "http://127.0.0.1:1/ws"]);
    assert.equal(badUrl.code, 2);
    assert.match(
      badUrl.stderr,
      /--server: "http:\/\/127\.0\.0\.1:1\/ws" is not a ws:\/\/ or wss:\/\/ URL \(did you mean ws:/,
    );
    await withServer({ token: "right" }, async (server) => {
      const none = await stress(w, [suite, "--server", server.url]);
      assert.equal(none.code, 3, none.stderr);
      assert.match(none.stderr, /requires a token: pass --token or set CCX_TOKEN/);
      assert.doesNotMatch(none.stderr, /Invalid status code/);
      const wrong = await stress(w, [suite, "--server", server.url, "--token", "wrong"]);
      assert.equal(wrong.code, 3);
      assert.match(wrong.stderr, /refused the token: check --token or CCX_TOKEN/);
    });
    const claude = await w.suite({
      tests: [{ id: "c", command: "claude -p hi", expected_patterns: ["hi"] }],
    }, "claude.json");
    const noCli = await cli(["stress", claude, "--claude", w.path("no-claude-here")], {
      cwd: w.dir,
      env: { CCX_STATE_DIR: w.state },
    });
    assert.equal(noCli.code, 3, noCli.stderr);
    assert.match(noCli.stderr, /Claude CLI not found: .*--claude PATH or the CCX_CLAUDE/);
    for (const f of ["ran_a.txt", "ran_b.txt"]) await assert.rejects(Deno.stat(w.path(f)));
  });
});

Deno.test("ccx stress runs concurrent_execution instances and reports each, one picked", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const suite = await w.suite({
      categories: {
        concurrent_execution: {
          tasks: [{
            id: "concurrent_pick",
            name: "Three instances, hottest wins",
            natural_language_request: `${tag} [[answer:The answer is forty-two.]]`,
            concurrent_instances: 3,
            models: ["sonnet", "haiku"],
            temperature_range: [0, 1],
            evaluation_criteria: "HIGHEST_MODEL_TEMP",
            verification: { expected_patterns: ["forty-two"] },
          }],
        },
      },
    });
    const json = w.path("r.json");
    const r = await stress(w, [suite, "--json", json, "--out", w.path("out")]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const t = testOf(await readReport(json), "concurrent_pick");
    assert.deepEqual(Object.keys(t).sort(), [...TEST_KEYS, "instances"].sort());
    assert.equal(t.status, "passed");
    assert.match(t.reason, /^picked instance 3 of 3 by HIGHEST_MODEL_TEMP/);
    const inst = t.instances!;
    assert.deepEqual(
      inst.map((i) => [i.index, i.model, i.temperature, i.status, i.picked]),
      [
        [1, "sonnet", 0, "passed", false],
        [2, "haiku", 0.5, "passed", false],
        [3, "sonnet", 1, "passed", true],
      ],
    );
    assert.equal(t.output_file, inst[2].output_file);
    // --model reached the stand-in: its init line names the model.
    assert.match(await bodyOf(inst[1].output_file), /"model":"claude-haiku/);
    assert.match(await bodyOf(inst[0].output_file), /"model":"claude-sonnet/);
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// rate limits

Deno.test("ccx stress retries a usage-limited task after the reset; a lasting limit is an error", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const suite = await w.suite({
      categories: {
        limits: {
          tasks: [
            {
              id: "limited_once",
              natural_language_request:
                `${tag} [[fail-first:1:usage-limit:+1]] [[answer:recovered]]`,
              verification: { expected_patterns: ["recovered"] },
            },
            {
              id: "limited_long",
              natural_language_request: `${tag} [[usage-limit:+3600]] [[answer:recovered]]`,
              verification: { expected_patterns: ["recovered"] },
            },
          ],
        },
      },
    });
    const json = w.path("r.json");
    const r = await stress(w, [suite, "-c", "2", "--json", json, "--out", w.path("out")], {
      FAKE_CLAUDE_STATE: w.path("fake_state"),
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const report = await readReport(json);
    const once = testOf(report, "limited_once");
    assert.equal(once.status, "passed", once.reason);
    assert.equal(once.attempts, 2);
    assert.match(r.stdout, /\[2 attempts\]/);
    const long = testOf(report, "limited_long");
    assert.equal(long.status, "error");
    assert.equal(long.attempts, 1);
    assert.match(long.reason, /^rate_limit: /);
    assert.deepEqual(
      [report.summary.total, report.summary.passed, report.summary.errors, report.summary.ratio],
      [2, 1, 1, 1],
    );
    assert.equal(report.summary.graduated, false);
    // Cost and tokens come from the stand-in's result lines.
    assert.ok((report.summary.cost_usd ?? 0) > 0);
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// Ctrl+C

/**
 * Starts `ccx stress` on a suite with one quick and two slow tasks (and one more that must never
 * start), presses Ctrl+C once both slow tasks have printed, and checks the exit code, the
 * partial reports and the interrupted tasks' outputs. With `server`, the tasks run there, and
 * their processes must be gone before that server shuts down: the CLI canceled them.
 */
async function interruptRun(tag: string, server?: string): Promise<void> {
  await withWork(async (w) => {
    // tee writes each line to the job's stdout before the file: once the file shows the
    // stand-in's init line, so has the job's output.
    const seen = w.path(`seen.${tag}`);
    const suite = await w.suite({
      tests: [
        { id: "quick", command: `: ${tag}; echo quick-done`, expected_patterns: ["quick-done"] },
        { id: "slow_shell", command: `: ${tag}; echo started; sleep 30.${tag}`, timeout: 60 },
        {
          id: "slow_claude",
          command:
            `claude -p '${tag} [[hang]]' --output-format stream-json --verbose | tee ${seen}`,
          timeout: 60,
        },
        { id: "never", command: `: ${tag}; echo never` },
      ],
    });
    const out = w.path("out");
    const json = w.path("r.json");
    const junit = w.path("r.xml");
    const html = w.path("r.html");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}main.ts`,
        "stress",
        suite,
        "-c",
        "2",
        "--claude",
        FAKE_CLAUDE,
        "--json",
        json,
        "--junit",
        junit,
        "--html",
        html,
        "--out",
        out,
        ...(server ? ["--server", server] : []),
      ],
      cwd: w.dir,
      // No API check: the stand-in calls no API (see cli() in _util/helpers.ts).
      env: {
        NO_COLOR: "1",
        CCX_STATE_DIR: w.state,
        CCX_SANDBOX: "1",
        CCX_NO_API_CHECK: "1",
        ...KEY_ENV,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let stdout = "";
    let stderr = "";
    const collect = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
      for await (const t of s.pipeThrough(new TextDecoderStream())) add(t);
    };
    const reading = Promise.all([
      collect(child.stdout, (t) => stdout += t),
      collect(child.stderr, (t) => stderr += t),
    ]);
    const seenText = () => {
      try {
        return Deno.readTextFileSync(seen);
      } catch {
        return "";
      }
    };
    try {
      await waitFor(
        () =>
          stderr.includes("PASS quick") && pidsMatching(`30.${tag}`).length > 0 &&
          seenText().includes('"subtype":"init"'),
        "the quick task to pass and both slow tasks to run",
        20_000,
      );
    } catch (e) {
      // Stop everything this test started before reporting.
      child.kill("SIGINT");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.status;
      clearTimeout(t);
      await reading;
      for (const pid of pidsMatching(tag)) Deno.kill(pid, "SIGKILL");
      throw new Error(`${(e as Error).message}\n${stderr}`);
    }
    child.kill("SIGINT");
    const status = await child.status;
    await reading;
    assert.equal(status.code, 130, stdout + stderr);
    assert.match(stderr, /interrupted/);
    assert.match(stdout, /Interrupted after 3 of 4 task runs\./);
    // Ended by the CLI, not by whoever owns the server.
    assertNoneLeft(tag);

    const report = await readReport(json);
    assert.equal(report.interrupted, true);
    assert.deepEqual(report.tests.map((t) => [t.id, t.status, t.reason]), [
      ["quick", "passed", "exit 0, 1/1 patterns"],
      ["slow_shell", "error", "interrupted"],
      ["slow_claude", "error", "interrupted"],
      // Tasks that never started are listed, not dropped.
      ["never", "skipped", "interrupted"],
    ]);
    assert.equal(report.summary.graduated, false);
    assert.equal(report.summary.skipped, 1);
    assert.match(stdout, /Continue with: ccx stress --resume /);
    // What the interrupted tasks had said is kept.
    assert.equal(await bodyOf(testOf(report, "slow_shell").output_file), "started\n");
    assert.match(await bodyOf(testOf(report, "slow_claude").output_file), /"subtype":"init"/);
    assert.match(
      await Deno.readTextFile(join(out, "slow_shell.txt")),
      /^Status: error$[\s\S]*^Reason: interrupted$/m,
    );
    const doc = parseXml(await Deno.readTextFile(junit));
    assertJunit10(doc);
    assert.equal(descendants(doc, "error").length, 2);
    assert.equal(descendants(doc, "skipped")[0].attrs.message, "interrupted");
    assert.match(await Deno.readTextFile(html), /INTERRUPTED/);
  });
}

Deno.test("ccx stress on Ctrl+C cancels running tasks, writes partial reports and exits 130", async () => {
  const tag = newTag();
  await interruptRun(tag);
  assertNoneLeft(tag);
});

Deno.test("ccx stress --server on Ctrl+C cancels the tasks running on that server", async () => {
  const tag = newTag();
  await withServer(
    { graceMs: 500, env: serverEnvWithKey() },
    (server) => interruptRun(tag, server.url),
  );
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// the rerun loop

/** Lines in `file` (0 when missing): how often a task ran. */
function runsOf(file: string): number {
  try {
    return Deno.readTextFileSync(file).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

Deno.test("a killed run's report.json lists every task; --resume runs only what did not finish", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const count = (id: string) => w.path(`count_${id}`);
    const cmd = (id: string) => `: ${tag}; echo run >> ${count(id)}; echo ok-${id}`;
    const suite = await w.suite({
      tests: [
        { id: "a", command: cmd("a"), expected_patterns: ["ok-a"] },
        { id: "b", command: cmd("b"), expected_patterns: ["ok-b"] },
        {
          id: "hang",
          // Hangs until the test drops the file, so the run can be killed in the middle.
          command: `${cmd("hang")}; test -f ${w.path("go")} || sleep 30.${tag}`,
          expected_patterns: ["ok-hang"],
        },
        { id: "d", command: cmd("d"), expected_patterns: ["ok-d"] },
      ],
    });
    const out = w.path("run");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "stress", suite, "--out", out, "--no-history"],
      cwd: w.dir,
      env: { NO_COLOR: "1", CCX_STATE_DIR: w.state },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const report = () => {
      try {
        return JSON.parse(Deno.readTextFileSync(join(out, "report.json"))) as JsonReport;
      } catch {
        return undefined;
      }
    };
    await waitFor(
      () => report()?.tests.find((t) => t.id === "hang")?.reason === "running",
      "report.json to show the hanging task running",
      20_000,
    );
    // No chance to write anything more: the file must already say everything.
    child.kill("SIGKILL");
    await child.status;
    for (const pid of pidsMatching(tag)) Deno.kill(pid, "SIGKILL");
    const killed = report()!;
    assert.deepEqual(killed.tests.map((t) => [t.id, t.status]), [
      ["a", "passed"],
      ["b", "passed"],
      ["hang", "skipped"],
      ["d", "skipped"],
    ]);
    assert.equal(killed.tests[3].reason, "not run yet");

    await Deno.writeTextFile(w.path("go"), "");
    const r = await stress(w, ["--resume", out, "--no-history"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /resuming .*: 2 of 4 task runs already finished/);
    const final = await readReport(join(out, "report.json"));
    assert.equal(final.run_id, killed.run_id);
    assert.deepEqual(final.tests.map((t) => [t.id, t.status]), [
      ["a", "passed"],
      ["b", "passed"],
      ["hang", "passed"],
      ["d", "passed"],
    ]);
    // What finished before the kill did not run again.
    assert.deepEqual(["a", "b", "hang", "d"].map((id) => runsOf(count(id))), [1, 1, 2, 1]);
  });
  assertNoneLeft(tag);
});

Deno.test("--last-failed reruns only the failed and errored tasks of the last run", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const count = (id: string) => w.path(`count_${id}`);
    const fixed = w.path("fixed");
    const suite = await w.suite({
      tests: [
        {
          id: "ok",
          command: `: ${tag}; echo run >> ${count("ok")}; echo fine`,
          expected_patterns: ["fine"],
        },
        {
          id: "flaky",
          command: `: ${tag}; echo run >> ${count("flaky")}; test -f ${fixed} && echo fine`,
          expected_patterns: ["fine"],
        },
      ],
    });
    const first = await stress(w, [suite, "--no-history"]);
    assert.equal(first.code, 1);
    assert.match(first.stdout, /Rerun the failures with: ccx stress --last-failed/);
    await Deno.writeTextFile(fixed, "");
    const again = await stress(w, ["--last-failed", suite, "--no-history"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /1 test: 1 passed/);
    assert.deepEqual([runsOf(count("ok")), runsOf(count("flaky"))], [1, 2]);
    // The last run had no failure: nothing to rerun.
    const none = await stress(w, ["--last-failed", suite, "--no-history"]);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /no failed or errored task in the last run/);
    assert.equal(runsOf(count("flaky")), 2);
  });
  assertNoneLeft(tag);
});

Deno.test("--list, --filter RE, --exclude RE and -x/--max-fail", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const count = w.path("count");
    const t = (id: string, ok: boolean) => ({
      id,
      command: `: ${tag}; echo ${id} >> ${count}; echo ${ok ? "yes" : "no"}`,
      expected_patterns: ["yes"],
    });
    const suite = await w.suite({
      tests: [t("fail_a", false), t("ok_b", true), t("fail_c", false), t("ok_d", true)],
    });
    const list = await stress(w, [suite, "--list", "--filter", "^(ok|fail_a)", "--exclude", "_d$"]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split("\n");
    assert.match(lines[0], /^fail_a {2}\[tests\] {2}: \S+; echo fail_a >> .*count; echo no$/);
    assert.match(lines[1], /^ok_b {2}\[tests\]/);
    assert.equal(lines[2], `2 task runs from ${suite}`);
    assert.equal(runsOf(count), 0, "--list runs nothing");
    const bad = await stress(w, [suite, "--filter", "("]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--filter: Invalid regular expression/);

    const json = w.path("x.json");
    const x = await stress(w, [suite, "-x", "--json", json, "--no-history"]);
    assert.equal(x.code, 1, x.stdout + x.stderr);
    assert.match(
      x.stdout,
      /Stopped after 1 failed or errored \(--max-fail 1\); 3 task runs skipped/,
    );
    const rep = await readReport(json);
    assert.deepEqual(rep.tests.map((t) => [t.id, t.status, t.reason.split(":")[0]]), [
      ["fail_a", "failed", "missing pattern"],
      ["ok_b", "skipped", "--max-fail 1 reached"],
      ["fail_c", "skipped", "--max-fail 1 reached"],
      ["ok_d", "skipped", "--max-fail 1 reached"],
    ]);
    assert.equal(runsOf(count), 1);
    const two = await stress(w, [suite, "--max-fail", "2", "--json", json, "--no-history"]);
    assert.equal(two.code, 1);
    assert.deepEqual((await readReport(json)).tests.map((t) => t.status), [
      "failed",
      "passed",
      "failed",
      "skipped",
    ]);
  });
  assertNoneLeft(tag);
});

Deno.test("ccx stress exits 3 when every task ended in a Claude failure: the model was never asked", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const t = (id: string) => ({
      id,
      command:
        `claude -p '${tag} [[auth-fail]] What is 2+2?' --output-format stream-json --verbose`,
      expected_patterns: ["4"],
    });
    const suite = await w.suite({ tests: [t("a"), t("b")] });
    const json = w.path("r.json");
    const r = await stress(w, [suite, "--json", json]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /Nothing could run: every task ended in a Claude or infrastructure failure/,
    );
    const rep = await readReport(json) as unknown as {
      errors_by_kind: { kind: string; count: number; fix: string | null }[];
    };
    assert.equal(rep.errors_by_kind.length, 1);
    assert.equal(rep.errors_by_kind[0].count, 2);
    assert.ok(rep.errors_by_kind[0].fix, "the classifier's fix is in the report");
    // One passing task makes it a run that did not graduate (1), not one that could not run.
    const mixed = await w.suite({
      tests: [t("a"), { id: "ok", command: `: ${tag}; echo 4`, expected_patterns: ["4"] }],
    }, "mixed.json");
    assert.equal((await stress(w, [mixed])).code, 1);
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// a full --out disk

/**
 * Mounts a tmpfs of `size` on `dir` (root only) and returns how to unmount it, or the reason it
 * could not be mounted.
 */
async function mountTmpfs(dir: string, size: string): Promise<(() => Promise<void>) | string> {
  const r = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch((e) => ({ success: false, stderr: new TextEncoder().encode(String(e)) }));
  if (!r.success) return new TextDecoder().decode(r.stderr).trim() || "mount failed";
  return async () => {
    const u = await new Deno.Command("umount", { args: [dir] }).output();
    assert.ok(u.success, `umount ${dir}: ${new TextDecoder().decode(u.stderr)}`);
  };
}

Deno.test({
  name: "a full --out disk: verdicts stand, the summary is printed, what was not written is " +
    "named, exit 3",
  ignore: FULL_DISK.ignore,
}, async () => {
  FULL_DISK.need();
  const tag = newTag();
  await withWork(async (w) => {
    const out = w.path("out");
    await Deno.mkdir(out);
    const unmount = await mountTmpfs(out, "256k");
    if (typeof unmount === "string") throw new Error(`mount -t tmpfs failed: ${unmount}`);
    try {
      // The first task fills the disk as it runs; each task earns a pass.
      const task = (id: string, fill = "") => ({
        id,
        command: `: ${tag}; echo ok-${id}${fill}`,
        expected_patterns: [`ok-${id}`],
      });
      const suite = await w.suite({
        tests: [
          task("a", `; head -c 4000000 /dev/zero >${out}/fill 2>/dev/null; echo filled`),
          task("b"),
          task("c"),
        ],
      });
      const junit = w.path("junit.xml"); // not on the full disk: it is still written
      const r = await stress(w, [suite, "--out", out, "--no-workspace", "--junit", junit]);
      const all = r.stdout + r.stderr;
      assert.equal(r.code, 3, all);
      assert.doesNotMatch(all, /runner:|Uncaught|No space left on device \(os error/, all);
      // The console summary, with the verdicts the tasks earned.
      for (const id of ["a", "b", "c"]) {
        assert.match(r.stdout, new RegExp(`^${id}\\s+tests\\s+PASS`, "m"));
      }
      assert.match(r.stdout, /3 passed, 0 failed, 0 errors/);
      assert.match(r.stdout, new RegExp(`Reports: ${junit}$`, "m"));
      // The message: the disk is full, and what was not written.
      assert.match(
        r.stderr,
        new RegExp(
          `the disk is full \\(No space left on device\\): not written: ${out}/report\\.json ` +
            `\\(an earlier state of the run is left there\\); 3 task output files ` +
            `\\(${out}/a\\.txt, ${out}/b\\.txt, ${out}/c\\.txt\\)`,
        ),
      );
      assert.match(r.stderr, /\(exit 3\)/);
      const xml = await Deno.readTextFile(junit);
      assert.match(xml, /tests="3"/);
      assert.match(xml, /failures="0"/);
      assert.match(xml, /errors="0"/);
      // No truncated output file is left behind.
      for (const id of ["a", "b", "c"]) {
        assert.equal(await Deno.stat(`${out}/${id}.txt`).catch(() => undefined), undefined);
      }
    } finally {
      await unmount();
    }
  });
  assertNoneLeft(tag);
});

const CHATTR = requireCapability("chattr", probeChattr, HINTS.chattr);

Deno.test({
  name: "ccx stress copies the suite's workspace_template and survives a workspace it cannot " +
    "remove: moved aside, said on stderr, the run still graduates",
  ignore: CHATTR.ignore,
  async fn() {
    CHATTR.need();
    const tag = newTag();
    await withWork(async (w) => {
      await Deno.mkdir(w.path("tpl"));
      await Deno.writeTextFile(w.path("tpl/seed.txt"), "seeded-from-template\n");
      const suite = await w.suite({
        workspace_template: "tpl",
        tests: [{
          id: "frozen",
          command: `: ${tag}; cat seed.txt; echo x > f && chattr +i f`,
          expected_patterns: ["seeded-from-template"],
        }],
      });
      try {
        const r = await stress(w, [suite, "--out", w.path("out")]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /GRADUATED/);
        assert.doesNotMatch(r.stderr, /Uncaught|PermissionDenied/);
        const aside = [...Deno.readDirSync(w.path("out/workspaces/.unremovable"))];
        assert.equal(aside.length, 1);
        assert.match(
          r.stderr,
          new RegExp(`ccx stress: workspace .* cannot be removed .*moved to .*${aside[0].name}`),
        );
      } finally {
        new Deno.Command("chattr", { args: ["-R", "-i", w.dir], stderr: "null" }).outputSync();
      }
    });
    assertNoneLeft(tag);
  },
});

Deno.test("ccx stress --page names the page to open; with --queue it is refused before anything runs", async () => {
  assert.equal(
    pageNote({ httpUrl: "http://127.0.0.1:43117" }, []),
    "ccx stress: live page: http://127.0.0.1:43117/ (this run's own server: it stops when the run ends)",
  );
  assert.equal(
    pageNote({ httpUrl: "http://127.0.0.1:43117", token: "ab12" }, []),
    "ccx stress: live page: http://127.0.0.1:43117/#token=ab12 (this run's own server: it stops when the run ends)",
  );
  assert.equal(
    pageNote(undefined, [{ url: "ws://10.0.0.7:8004/ws" }, { url: "wss://box:8443/ws" }]),
    "ccx stress: live pages: http://10.0.0.7:8004/ https://box:8443/",
  );
  const r = await cli([
    "stress",
    "tasks/selftest.json",
    "--page",
    "--queue",
    "redis://127.0.0.1:1",
  ]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^ccx stress: --page shows the jobs of this machine's server; with --queue/,
  );
});

Deno.test("ccx stress: 10 passed and 1 failed graduates (exit 0) at 10:1; --strict exits 1; --help says both", async () => {
  await withWork(async (w) => {
    const suite = await w.suite({
      tests: [
        ...Array.from({ length: 10 }, (_, i) => ({
          id: `ok${i}`,
          command: `echo ok${i}`,
          expected_patterns: [`ok${i}`],
        })),
        { id: "bad", command: "echo no", expected_patterns: ["yes"] },
      ],
    });
    const plain = await stress(w, [suite, "-c", "4", "--no-history", "--out", w.path("a")]);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stdout, /Success ratio: 10\.0:1 \(need 10:1 to graduate\)/);
    const strict = await stress(w, [
      suite,
      "-c",
      "4",
      "--no-history",
      "--strict",
      "--out",
      w.path("b"),
    ]);
    assert.equal(strict.code, 1, strict.stdout + strict.stderr);
    assert.match(strict.stdout, /--strict: 1 failed and 0 errored \(exit 1, whatever the ratio\)/);
    const help = await cli(["stress", "--help"]);
    assert.match(help.stdout, /10 passed and 1 failed exits 0 \(10:1\)/);
    assert.match(help.stdout, /--strict\s+exit 1 when any task failed or errored/);
  });
});

Deno.test({
  name: "ccx stress says when its in-process server cannot write its crash journal; the run " +
    "still graduates",
  ignore: FULL_DISK.ignore,
  async fn() {
    await withFullDisk((state) =>
      withWork(async (w) => {
        const suite = await w.suite({
          tests: [{ id: "t", command: "echo fine", expected_patterns: ["fine"] }],
        });
        const r = await stress(w, [suite, "--out", w.path("out"), "--no-history"], {
          CCX_STATE_DIR: state,
        });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /GRADUATED/);
        assert.match(
          r.stderr,
          /ccx stress: cannot write the crash journal .*No space left on device/,
        );
      })
    );
  },
});

Deno.test("ccx stress's in-process server refuses a connection without its token while the run goes on", async () => {
  const tag = newTag();
  await withWork(async (w) => {
    const go = w.path("go");
    const suite = await w.suite({
      tests: [{
        id: "t",
        command: `: ${tag}; echo up; while [ ! -e '${go}' ]; do sleep 0.05; done; echo done`,
        expected_patterns: ["done"],
      }],
    });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "stress", suite, "--no-history", "--out", w.path("o")],
      cwd: w.dir,
      env: { NO_COLOR: "1", CCX_STATE_DIR: w.state },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    try {
      await waitFor(() => pidsMatching(tag).length > 0, "the task to run", 30_000);
      await assertOwnServerTokened(child.pid);
    } finally {
      await Deno.writeTextFile(go, "");
    }
    const r = await output;
    const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, text);
    assert.match(text, /GRADUATED/);
  });
  assertNoneLeft(tag);
});

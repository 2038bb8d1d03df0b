import assert from "node:assert/strict";
import { join } from "node:path";
import { formatDuration } from "../lib/common/format.ts";
import { toHtml } from "../lib/stress/report/html.ts";
import { escapeHtml } from "../lib/stress/report/html_template.ts";
import type {
  InstanceResult,
  RunReport,
  SkippedTask,
  TestResult,
  TestStatus,
} from "../lib/stress/report/model.ts";
import { many, modelSaid, NASTY, result, run, T0 } from "./_util/report.ts";
import { cli, FAKE_CLAUDE } from "./_util/helpers.ts";

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

Deno.test("toHtml() shows what the model said, why, and what it cost", () => {
  const rep = modelSaid();
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

// ---------------------------------------------------------------- injection through every field

/** Model output that tries to break out of text, attributes, `<pre>`, `<textarea>` and comments. */
const PAYLOAD = `<script>alert(1)</script>"onmouseover=alert(2) x='<img src=x onerror=alert(3)>'` +
  `</textarea></pre></title><!--<svg onload=alert(4)>`;

/**
 * A run with every text field of every type filled by `text(field)`: each `Required<…>` makes a
 * field added to the types later fail to compile here until it is fed too.
 */
function everyField(text: (field: string) => string): RunReport {
  const instance = (at: string, index: number): Required<InstanceResult> => ({
    index,
    model: text(`${at}.instances.${index}.model`),
    temperature: 0.5,
    status: index ? "failed" : "passed",
    reason: text(`${at}.instances.${index}.reason`),
    durationS: 1,
    exitCode: index,
    picked: index === 0,
    score: 0.5,
    outputFile: text(`/out/${at}.instances.${index}.outputFile`),
  });
  const res = (at: TestStatus, i: number): Required<TestResult> => ({
    id: text(`${at}.id`),
    name: text(`${at}.name`),
    category: text(`${at}.category`),
    status: at,
    reason: text(`${at}.reason`),
    durationS: 1 + i,
    exitCode: at === "error" ? null : i,
    patternsFound: [text(`${at}.patternsFound.0`), text(`${at}.patternsFound.1`)],
    patternsMissing: [text(`${at}.patternsMissing.0`)],
    outputFile: text(`/out/${at}.outputFile`),
    attempts: 2,
    instances: [instance(at, 0), instance(at, 1)],
    startedAt: T0 + i * 1000,
    rerun: text(`${at}.rerun`),
    worker: text(`${at}.worker`),
    kind: text(`${at}.kind`),
    fix: text(`${at}.fix`),
    filesCreated: [text(`${at}.filesCreated.0`), text(`${at}.filesCreated.1`)],
    workspace: text(`${at}.workspace`),
    answer: text(`${at}.answer`),
    stderrTail: text(`${at}.stderrTail`),
    model: text(`${at}.model`),
    turns: 3,
    tokens: { input: 1, output: 2, cacheRead: 3, cacheCreation: 4 },
    costUsd: 0.01,
    cliVersion: text(`${at}.cliVersion`),
    request: text(`${at}.request`),
    checks: [{
      command: text(`${at}.checks.0.command`),
      status: "failed",
      exitCode: 1,
      durationS: 0.5,
      stdoutTail: text(`${at}.checks.0.stdoutTail`),
      stderrTail: text(`${at}.checks.0.stderrTail`),
      reason: text(`${at}.checks.0.reason`),
    }],
    rubric: {
      status: "failed",
      statements: [text(`${at}.rubric.statements.0`)],
      reason: text(`${at}.rubric.reason`),
      model: text(`${at}.rubric.model`),
      durationS: 1,
      costUsd: 0.001,
    },
  });
  const compared = (what: string) => ({
    id: text(`comparison.${what}.id`),
    before: text(`comparison.${what}.before`),
    after: text(`comparison.${what}.after`),
    reason: text(`comparison.${what}.reason`),
  });
  const summary = { total: 2, passed: 1, failed: 1, errors: 0, ratio: 1, graduated: false };
  const skipped: Required<SkippedTask> = {
    id: text("skipped.id"),
    name: text("skipped.name"),
    category: text("skipped.category"),
    reason: text("skipped.reason"),
  };
  const report: Required<RunReport> = {
    runId: text("run.runId"),
    suite: text("run.suite"),
    startedAt: new Date(T0),
    durationS: 9,
    results: [res("failed", 0), res("error", 1), res("passed", 2)],
    interrupted: true,
    threshold: 10,
    skipped: [skipped],
    meta: {
      ccxVersion: text("meta.ccxVersion"),
      host: text("meta.host"),
      commandLine: [text("meta.commandLine.0")],
      suiteHash: text("meta.suiteHash"),
      model: text("meta.model"),
      judgeModel: text("meta.judgeModel"),
    },
    repeat: 1,
    comparison: {
      baseline: {
        runId: text("comparison.baseline.runId"),
        suite: text("comparison.baseline.suite"),
        startedAt: new Date(T0),
        path: text("comparison.baseline.path"),
      },
      regressed: [compared("regressed")],
      fixed: [compared("fixed")],
      stillFailing: [compared("stillFailing")],
      added: [compared("added")],
      gone: [compared("gone")],
      before: summary,
      after: summary,
      differences: [text("comparison.differences.0")],
    },
  };
  return report;
}

/**
 * Whether the page shows a field as text: `rerun` and `worker` it does not show; an instance's
 * output file only as a link (URL-encoded); a passed task has no failure card, so only its id,
 * name, category, reason (the bar's tooltip), answer and stderr are shown.
 */
function shownAsText(label: string): boolean {
  if (/\.(rerun|worker)$|\.instances\.\d\.outputFile$/.test(label)) return false;
  // The rubric's line counts its statements; a baseline is named by its run and path.
  if (/\.rubric\.statements\.|^comparison\.baseline\.suite$/.test(label)) return false;
  if (/^(\/out\/)?passed\./.test(label)) {
    // What ran (model, Claude Code version) is in the header for every task; each task's
    // request is in its conversation, its checks (commands JSON-quoted) and rubric under it.
    return /^passed\.(id|name|category|reason|answer|stderrTail|model|cliVersion|request)$/.test(
      label,
    ) ||
      /^passed\.(checks\.0\.reason|rubric\.(reason|model))$/.test(label);
  }
  return true;
}

const count = (s: string, what: RegExp) => s.match(what)?.length ?? 0;

Deno.test("toHtml() escapes model output in every text field: nothing injected, every field shown escaped", () => {
  const labels: string[] = [];
  everyField((f) => (labels.push(f), f));
  for (const htmlPath of [undefined, "/tmp/r/report.html"]) {
    // The same page with plain labels: everything markup-like in it is the template's own.
    const plain = toHtml(everyField((f) => f), { htmlPath });
    const html = toHtml(everyField((f) => f + PAYLOAD), { htmlPath });
    assert.equal(count(html, /<script/gi), count(plain, /<script/gi), "count of <script");
    assert.equal(count(plain, /<script/gi), 0, "the page has no script of its own");
    // Every tag, attribute quote and comment comes from the template: same count as plain.
    for (const ch of [/</g, />/g, /"/g, /'/g]) {
      assert.equal(count(html, ch), count(plain, ch), `count of ${ch.source}`);
    }
    // No tag has an event-handler attribute (quoted values, where escaped text may say
    // `onerror=`, taken out first).
    for (const tag of html.match(/<[^>]*>/g) ?? []) {
      assert.doesNotMatch(tag.replace(/"[^"]*"/g, '""'), /\son\w+\s*=/i, tag);
    }
    assert.ok(!html.includes(PAYLOAD), "the payload verbatim");
    for (const label of labels) {
      const shown = html.includes(escapeHtml(label + PAYLOAD));
      assert.equal(shown, shownAsText(label), `${label} shown (escaped): ${shown}`);
    }
  }
});

Deno.test("ccx stress --html shows each task's conversation from its saved stream: request, tool calls and results, answer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_html_convo_" });
  try {
    const suite = join(dir, "suite.json");
    const request =
      "Write <hello.py> & say so [[write:hello.py=print('hi')]] [[answer:Done <ok>.]]";
    await Deno.writeTextFile(
      suite,
      JSON.stringify({
        categories: {
          c: {
            tasks: [{
              id: "writer",
              natural_language_request: request,
              verification: { expected_patterns: ["Done"] },
            }, {
              id: "shell",
              command_template: "echo plain-output",
              verification: { expected_patterns: ["plain-output"] },
            }],
          },
        },
      }),
    );
    const html = join(dir, "r.html");
    const r = await cli(
      ["stress", suite, "--claude", FAKE_CLAUDE, "--html", html, "--out", join(dir, "out")],
      {
        cwd: dir,
        env: {
          CCX_SANDBOX: "1",
          CCX_STATE_DIR: join(dir, "state"),
          ANTHROPIC_API_KEY: "sk-ant-stand-in-test",
        },
      },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const page = await Deno.readTextFile(html);
    const details = page.slice(page.indexOf('<details id="o0">'), page.indexOf("</details>"));
    const whos = [...details.matchAll(/<span class="who">([^<]*)<\/span>/g)].map((m) => m[1]);
    assert.deepEqual(whos.map((w) => w.replace(/ · .*/, "")), [
      "request",
      "session",
      "assistant",
      "tool call",
      "tool result",
      "assistant",
      "result",
    ]);
    assert.ok(details.includes(escapeHtml(request)), "the request, escaped");
    assert.match(
      details,
      /tool call · Write<\/span><pre>\{\n {2}&quot;file_path&quot;: &quot;[^&]*hello\.py&quot;/,
    );
    assert.match(details, /tool result · Write<\/span><pre>File created successfully/);
    assert.match(details, /result · success · 2 turns[^<]*<\/span><pre>Done &lt;ok&gt;\./);
    assert.doesNotMatch(details, /\[marker:/, "the harness's marker is not shown as the answer");
    // A plain task shows its output.
    const shell = page.slice(page.indexOf('<details id="o1">'));
    assert.match(shell, /<span class="who">output<\/span><pre>plain-output<\/pre>/);
    assert.doesNotMatch(page, /<script/i);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, FAKE_CLAUDE } from "./_util/helpers.ts";

Deno.test("ccx report DIR indexes past runs (date, suite, ratio, cost, version, model) and links each one's report with its conversation", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_report_cmd_" });
  try {
    const claudeSuite = join(dir, "claude_suite.json");
    await Deno.writeTextFile(
      claudeSuite,
      JSON.stringify({
        name: "claude-suite",
        categories: {
          c: {
            tasks: [{
              id: "writer",
              natural_language_request: "Make it [[write:a.txt=x]] [[answer:Made a.txt.]]",
              verification: { expected_patterns: ["Made"] },
            }, {
              id: "wrong",
              natural_language_request: "What is 2+2?",
              verification: { expected_patterns: ["five"] },
            }],
          },
        },
      }),
    );
    const shellSuite = join(dir, "shell_suite.json");
    await Deno.writeTextFile(
      shellSuite,
      JSON.stringify({
        name: "shell-suite",
        tests: [{ id: "s", command: "echo s", expected_patterns: ["s"] }],
      }),
    );
    const env = {
      CCX_SANDBOX: "1",
      CCX_STATE_DIR: join(dir, "state"),
      ANTHROPIC_API_KEY: "sk-ant-stand-in-test",
    };
    const a = await cli(["stress", claudeSuite, "--claude", FAKE_CLAUDE, "--no-history"], {
      cwd: dir,
      env,
    });
    assert.equal(a.code, 1, a.stdout + a.stderr);
    const b = await cli(["stress", shellSuite, "--no-history"], { cwd: dir, env });
    assert.equal(b.code, 0, b.stdout + b.stderr);

    // From another directory: the reports' relative output paths must still be found.
    const r = await cli(["report", join(dir, "test_outputs")], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /index\.html: 2 runs under .* \(2 HTML reports written beside their report\.json\)/,
    );
    const index = await Deno.readTextFile(join(dir, "test_outputs", "index.html"));
    const rows = index.split("<tr>").slice(2);
    assert.equal(rows.length, 2, index);
    // Newest first: the shell run, then the Claude run.
    assert.match(rows[0], /shell_suite\.json.*GRADUATED.*∞:1/s);
    assert.match(rows[1], /claude_suite\.json.*NOT GRADUATED.*1\.0:1 \(need 10:1 to graduate\)/s);
    assert.match(
      rows[1],
      /<td class="num">\$\d+\.\d{4}<\/td><td>2\.1\.197<\/td><td>claude-[^<]+<\/td>/,
    );
    assert.match(rows[1], /<time datetime="\d{4}-\d\d-\d\dT/);
    const link = rows[1].match(/<a href="([^"]+)">report<\/a>/)![1];
    const report = await Deno.readTextFile(join(dir, "test_outputs", decodeURIComponent(link)));
    assert.match(report, /<span class="who">request<\/span><pre>Make it /);
    assert.match(report, /<span class="who">tool call · Write<\/span>/);
    assert.match(
      report,
      /<span class="who">result · success[^<]*<\/span><pre>Made a\.txt\./,
    );
    // A second pass leaves the reports it wrote alone and still lists both runs.
    const again = await cli(["report", join(dir, "test_outputs"), "--out", join(dir, "i.html")]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /i\.html: 2 runs under/);
    assert.doesNotMatch(again.stdout, /written beside/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ccx report refuses a missing DIR, or none, with exit 2", async () => {
  const none = await cli(["report"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no DIR given \(ccx report DIR\)/);
  const missing = await cli(["report", "/nonexistent/runs"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\/nonexistent\/runs: not a directory/);
  const two = await cli(["report", "a", "b"]);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /one DIR at a time/);
});

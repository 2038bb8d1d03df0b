import assert from "node:assert/strict";
import { type RunnerOptions, runTasks } from "../lib/stress/runner.ts";
import { instanceSettings } from "../lib/stress/task.ts";
import { judgeRun } from "../lib/stress/judge.ts";
import { parseSuite } from "../lib/stress/suite_load.ts";
import { limitWaitMs } from "../lib/common/backoff.ts";
import type { TestResult } from "../lib/stress/report/model.ts";
import { bwrapTier } from "./_util/tier.ts";
import {
  assertNoneLeft,
  FAKE_CLAUDE,
  newTag,
  OverlapLog,
  pidsMatching,
  remoteDiskServer,
  serveProcess,
  serverEnvWithKey,
  waitFor,
  withServer,
} from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";

const bwrapIgnore = bwrapTier();

// ---------------------------------------------------------------------------------------------
// helpers

/** Quotes `s` in single quotes for /bin/sh. */
function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

interface Ran {
  results: TestResult[];
  outDir: string;
  byId: Map<string, TestResult>;
}

/**
 * Parses `suite`, runs it with {@linkcode runTasks} on a fresh in-process server, hands the
 * results to `check`, then removes the output directory.
 */
async function runSuite(
  suite: unknown,
  check: (ran: Ran) => void | Promise<void>,
  opts: Partial<RunnerOptions> = {},
): Promise<void> {
  const { tasks } = parseSuite(suite, "inline", { claude: FAKE_CLAUDE });
  const outDir = await Deno.makeTempDir({ prefix: "ccx_runner_test_" });
  try {
    // The server's environment carries the key, as an operator's would: the stand-in needs one.
    const results = await withServer(
      { graceMs: 200, env: serverEnvWithKey() },
      (server) =>
        runTasks(tasks, {
          servers: [{ url: server.url }],
          outDir,
          claude: FAKE_CLAUDE,
          sandbox: true, // tests run as root, where the CLI needs IS_SANDBOX=1
          ...opts,
        }),
    );
    await check({ results, outDir, byId: new Map(results.map((r) => [r.id, r])) });
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
}

/** The text of `path`, or "" when it cannot be read (yet). */
function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** The output file's body: what the task wrote, after the header. */
async function bodyOf(file: string | undefined): Promise<string> {
  assert.ok(file, "the task has no output file");
  const text = await Deno.readTextFile(file);
  const rule = "-".repeat(80) + "\n";
  const at = text.indexOf(rule);
  assert.ok(at >= 0, "no header rule in the output file");
  return text.slice(at + rule.length);
}

/** A finished shell run, as runToEnd reports it, for judgeRun(). */
function shellRun(
  stdout: string,
  over: Partial<Parameters<typeof judgeRun>[1]> = {},
): Parameters<typeof judgeRun>[1] {
  return {
    status: "completed",
    exitCode: 0,
    signal: null,
    stdout,
    stderr: "",
    limits: [],
    ...over,
  };
}

const task = (patterns: string[], expectNonZeroExit = false) => ({
  expectedPatterns: patterns,
  expectNonZeroExit,
  timeoutS: 10,
});

// ---------------------------------------------------------------------------------------------
// judgeRun

Deno.test("judgeRun() passes exit 0 with every pattern found, case-insensitively", () => {
  const v = judgeRun(task(["HELLO", "world"]), shellRun("Hello World\n"), "all");
  assert.equal(v.status, "passed");
  assert.equal(v.reason, "exit 0, 2/2 patterns");
  assert.deepEqual(v.patternsFound, ["HELLO", "world"]);
  assert.deepEqual(v.patternsMissing, []);
});

Deno.test("judgeRun() fails a wrong exit and a missing pattern, naming what went wrong", () => {
  const exit = judgeRun(task(["hello"]), shellRun("hello\n", { exitCode: 3 }), "all");
  assert.equal(exit.status, "failed");
  assert.equal(exit.reason, "exit code 3, expected exit 0");

  const missing = judgeRun(task(["alpha", "beta", "gamma"]), shellRun("alpha\n"), "all");
  assert.equal(missing.status, "failed");
  assert.deepEqual(missing.patternsMissing, ["beta", "gamma"]);
  assert.match(missing.reason, /missing patterns: beta, gamma/);
});

Deno.test("judgeRun() in `any` mode needs one pattern, and fails only when none is found", () => {
  assert.equal(judgeRun(task(["alpha", "beta"]), shellRun("beta\n"), "any").status, "passed");
  const none = judgeRun(task(["alpha", "beta"]), shellRun("gamma\n"), "any");
  assert.equal(none.status, "failed");
  assert.match(none.reason, /alpha, beta \(none of them found\)/);
});

Deno.test("judgeRun() with expectNonZeroExit passes a failing command and fails exit 0", () => {
  assert.equal(judgeRun(task([], true), shellRun("", { exitCode: 2 }), "all").status, "passed");
  const zero = judgeRun(task([], true), shellRun(""), "all");
  assert.equal(zero.status, "failed");
  assert.equal(zero.reason, "exit code 0, expected a non-zero exit");
});

Deno.test("judgeRun() calls timeouts and stalls errors with their limits, never passes", () => {
  const t = judgeRun(
    task(["begin"]),
    shellRun("begin\n", { status: "timeout", exitCode: null }),
    "all",
    { timeoutS: 1.5 },
  );
  assert.equal(t.status, "error");
  assert.equal(t.reason, "timed out after 1.5s");
  assert.deepEqual(t.patternsFound, ["begin"]);
  const s = judgeRun(
    task([], true),
    shellRun("", { status: "stalled", exitCode: null }),
    "all",
    { stallTimeoutS: 2 },
  );
  assert.equal(s.status, "error");
  assert.equal(s.reason, "stalled: no output for 2s");
});

Deno.test("judgeRun() calls a rate-limited run an error even when it looks like a pass", () => {
  const v = judgeRun(
    task(["hello"]),
    shellRun("hello\n", {
      limits: [{
        kind: "rate_limit",
        errorType: "usage_limit",
        message: "Claude AI usage limit reached",
        resetTimestamp: 1_900_000_000,
        recoverable: true,
      }],
    }),
    "all",
  );
  assert.equal(v.status, "error");
  assert.match(v.reason, /^rate limited: /);
  assert.equal(v.rateLimited?.resetTimestamp, 1_900_000_000);
});

// ---------------------------------------------------------------------------------------------
// instanceSettings

Deno.test("instanceSettings() deals models in turn and spreads temperatures evenly", () => {
  const spec = {
    instances: 3,
    models: ["sonnet", "haiku"],
    temperatureRange: [0.2, 1] as [number, number],
    criteria: "FASTEST" as const,
  };
  assert.deepEqual([0, 1, 2].map((i) => instanceSettings(spec, i)), [
    { model: "sonnet", temperature: 0.2 },
    { model: "haiku", temperature: 0.6 },
    { model: "sonnet", temperature: 1 },
  ]);
  assert.deepEqual(
    instanceSettings({ instances: 1, temperatureRange: [0.3, 0.9], criteria: "FASTEST" }, 0),
    { model: undefined, temperature: 0.3 },
  );
  assert.deepEqual(instanceSettings({ instances: 2, criteria: "CONSENSUS" }, 1), {
    model: undefined,
    temperature: undefined,
  });
});

// ---------------------------------------------------------------------------------------------
// runTasks: verdicts on real processes

Deno.test("runTasks() passes a task that exits 0 with its patterns, and saves its output", async () => {
  const tag = newTag();
  await runSuite(
    { tests: [{ id: "ok", command: `: ${tag}; echo Hello World`, expected_patterns: ["hello"] }] },
    async ({ results }) => {
      assert.equal(results.length, 1);
      const [r] = results;
      assert.equal(r.status, "passed");
      assert.equal(r.reason, "exit 0, 1/1 patterns");
      assert.equal(r.exitCode, 0);
      assert.equal(r.attempts, 1);
      assert.deepEqual(r.patternsFound, ["hello"]);
      assert.equal(await bodyOf(r.outputFile), "Hello World\n");
    },
  );
  assertNoneLeft(tag);
});

Deno.test("runTasks() fails a wrong exit code and names the missing patterns", async () => {
  const tag = newTag();
  await runSuite({
    tests: [
      { id: "bad_exit", command: `: ${tag}; echo hello; exit 3`, expected_patterns: ["hello"] },
      {
        id: "missing",
        command: `: ${tag}; echo alpha; echo to-stderr >&2`,
        expected_patterns: ["alpha", "beta", "to-stderr", "gamma"],
      },
    ],
  }, ({ byId }) => {
    const bad = byId.get("bad_exit")!;
    assert.equal(bad.status, "failed");
    assert.equal(bad.exitCode, 3);
    assert.equal(bad.reason, "exit code 3, expected exit 0");
    const missing = byId.get("missing")!;
    assert.equal(missing.status, "failed");
    assert.deepEqual(missing.patternsFound, ["alpha", "to-stderr"]);
    assert.deepEqual(missing.patternsMissing, ["beta", "gamma"]);
    assert.match(missing.reason, /missing patterns: beta, gamma/);
  }, { concurrency: 2 });
  assertNoneLeft(tag);
});

Deno.test("runTasks() expects a non-zero exit from expect_non_zero_exit and `failure_` ids", async () => {
  const tag = newTag();
  await runSuite({
    categories: {
      seed: {
        tasks: [
          {
            id: "explicit",
            command_template: `: ${tag}; echo refused >&2; exit 4`,
            verification: { expect_non_zero_exit: true, expected_patterns: ["refused"] },
          },
          { id: "failure_by_prefix", command_template: `: ${tag}; exit 2` },
          { id: "failure_but_succeeded", command_template: `: ${tag}; exit 0` },
          {
            id: "failure_overridden",
            command_template: `: ${tag}; exit 0`,
            verification: { expect_non_zero_exit: false },
          },
        ],
      },
    },
  }, ({ byId }) => {
    assert.equal(byId.get("explicit")!.status, "passed");
    assert.equal(byId.get("explicit")!.exitCode, 4);
    assert.equal(byId.get("failure_by_prefix")!.status, "passed");
    const wrong = byId.get("failure_but_succeeded")!;
    assert.equal(wrong.status, "failed");
    assert.equal(wrong.reason, "exit code 0, expected a non-zero exit");
    assert.equal(byId.get("failure_overridden")!.status, "passed");
  }, { concurrency: 4 });
  assertNoneLeft(tag);
});

Deno.test("runTasks() calls a timeout an error, keeps the partial output, and leaves no process", async () => {
  const tag = newTag();
  await runSuite({
    tests: [{
      id: "slow",
      command: `echo begin; sleep 30.${tag}`,
      expected_patterns: ["begin"],
      timeout: 1,
    }],
  }, async ({ results: [r] }) => {
    assert.equal(r.status, "error");
    // --timeout-scale applies: 1 s x 2 (time enough for the shell's first echo under load).
    assert.equal(r.reason, "timed out after 2s");
    assert.notEqual(r.exitCode, 0);
    assert.deepEqual(r.patternsFound, ["begin"]);
    assert.equal(await bodyOf(r.outputFile), "begin\n");
    assert.match(await Deno.readTextFile(r.outputFile!), /^Status: error$/m);
  }, { timeoutScale: 2 });
  assertNoneLeft(tag);
});

Deno.test("runTasks() calls a stall an error, before the whole-run timeout", async () => {
  const tag = newTag();
  await runSuite({
    tests: [{
      id: "stall",
      command: `echo begin; sleep 30.${tag}; echo never`,
      expected_patterns: ["begin"],
      timeout: 30,
      stall_timeout: 0.4,
    }],
  }, ({ results: [r] }) => {
    assert.equal(r.status, "error");
    assert.equal(r.reason, "stalled: no output for 0.4s");
    assert.ok(r.durationS < 10, `took ${r.durationS}s`);
  });
  assertNoneLeft(tag);
});

Deno.test("runTasks() ends a timed-out Claude run with its SIGTERM-proof grandchild", async () => {
  const tag = newTag();
  await runSuite({
    categories: {
      claude: {
        tasks: [{
          id: "grandchild",
          natural_language_request: `${tag} [[grandchild]]`,
          // 5 s: the stand-in is a Deno program, and its cold start on a loaded machine must
          // not eat the whole timeout before it starts the grandchild.
          verification: { timeout: 5 },
        }],
      },
    },
  }, async ({ results: [r] }) => {
    assert.equal(r.status, "error");
    assert.equal(r.reason, "timed out after 5s");
    const body = await bodyOf(r.outputFile);
    const m = body.match(/grandchild pid (\d+)/);
    assert.ok(m, `no grandchild pid in ${body}`);
    assert.equal(pidsMatching("sleep 1000").includes(Number(m[1])), false);
  });
  assertNoneLeft(tag);
});

Deno.test("runTasks() calls a crashed CLI an error and an output-token limit a failure, by kind", async () => {
  const tag = newTag();
  await runSuite({
    categories: {
      claude: {
        tasks: [
          { id: "crash", natural_language_request: `${tag} [[crash]]` },
          { id: "token_limit", natural_language_request: `${tag} [[token-limit]]` },
        ],
      },
    },
  }, ({ byId }) => {
    // The CLI died: Claude's own failure, not the model's answer.
    const crash = byId.get("crash")!;
    assert.equal(crash.status, "error");
    assert.equal(crash.kind, "crash");
    assert.match(crash.reason, /^crash: the CLI died \(exit code 1\) without a result: TypeError/);
    // The model talked past the output limit: counted against the model.
    const token = byId.get("token_limit")!;
    assert.equal(token.status, "failed");
    assert.equal(token.kind, "token_limit");
    assert.match(token.reason, /^token_limit: .*32000 output token maximum/);
    assert.match(token.fix ?? "", /CLAUDE_CODE_MAX_OUTPUT_TOKENS/);
  }, { concurrency: 2 });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// runTasks: what patterns are matched against

Deno.test("runTasks() matches patterns against the model's words, never the stream-json envelope", async () => {
  const tag = newTag();
  // Each of these is in every stream-json line the stand-in prints (keys, its version 2.1.197,
  // the model name claude-sonnet-4-5-…), but not in the answer.
  const envelopeOnly = ["session_id", '"type"', "2.1.197", "claude-sonnet", "uuid", "4"];
  await runSuite({
    categories: {
      claude: {
        tasks: [
          {
            id: "envelope",
            natural_language_request: `${tag} [[answer:no digits, just words]] [[no-marker]]`,
            verification: { expected_patterns: envelopeOnly },
          },
          {
            id: "answer",
            natural_language_request: `${tag} [[answer:no digits, just words]] [[no-marker]]`,
            verification: { expected_patterns: ["JUST WORDS"] },
          },
        ],
      },
    },
  }, async ({ byId }) => {
    const envelope = byId.get("envelope")!;
    const raw = await bodyOf(envelope.outputFile);
    for (const p of envelopeOnly) assert.ok(raw.includes(p), `the raw output lacks ${p}`);
    assert.equal(envelope.status, "failed");
    assert.deepEqual(envelope.patternsFound, []);
    assert.deepEqual(envelope.patternsMissing, envelopeOnly);
    assert.match(envelope.reason, /\(none of them found\)$/);
    assert.equal(byId.get("answer")!.status, "passed");
  }, { patternMode: "any", concurrency: 2 });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// runTasks: quoting

Deno.test("runTasks() hands hostile request text to the program verbatim and runs none of it", async () => {
  const tag = newTag();
  const dir = await Deno.makeTempDir({ prefix: "ccx_quoting_" });
  try {
    const pwned = `${dir}/pwned`;
    const request = `it's "quoted" $(touch ${pwned}1) \`touch ${pwned}2\` $HOME \${HOME} ` +
      `; touch ${pwned}3 # \\ done`;
    const printf = (id: string, template: string) => ({
      id,
      natural_language_request: request,
      command_template: `: ${tag}; ${template}`,
      verification: { expected_patterns: [request] },
    });
    await runSuite({
      categories: {
        quoting: {
          tasks: [
            printf("double", `printf '%s\\n' "\${REQUEST}"`),
            printf("bare", `printf '%s\\n' \${REQUEST}`),
            printf("single", `printf '%s\\n' '\${REQUEST}'`),
            printf("claude_template", `claude -p "\${REQUEST}" --output-format text`),
            {
              id: "claude_argv",
              natural_language_request: `${tag} ${request}`,
              verification: { expected_patterns: [request] },
            },
          ],
        },
      },
    }, async ({ results, byId }) => {
      for (const r of results) assert.equal(r.status, "passed", `${r.id}: ${r.reason}`);
      for (const id of ["double", "bare", "single"]) {
        assert.equal(await bodyOf(byId.get(id)!.outputFile), `${request}\n`);
      }
      assert.match(await bodyOf(byId.get("claude_template")!.outputFile), /^You asked: it's "q/);
    }, { concurrency: 5 });
    for (const n of [1, 2, 3]) {
      assert.equal(await Deno.stat(`${pwned}${n}`).catch(() => undefined), undefined);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// runTasks: rate limits

/** A seed task running the stand-in with FAKE_CLAUDE_STATE set, so `[[fail-first]]` counts. */
function limitedTask(id: string, state: string, request: string, patterns = ["recovered"]) {
  return {
    id,
    natural_language_request: request,
    command_template: `export FAKE_CLAUDE_STATE=${
      shq(state)
    }; claude -p "\${REQUEST}" --output-format stream-json --verbose`,
    verification: { expected_patterns: patterns },
  };
}

Deno.test("runTasks() retries a usage-limited task after the limit's reset, then passes it", async () => {
  const tag = newTag();
  const state = await Deno.makeTempDir({ prefix: "ccx_fake_state_" });
  try {
    await runSuite({
      categories: {
        limits: {
          tasks: [
            limitedTask(
              "limited_once",
              state,
              `${tag} [[fail-first:1:usage-limit:+1]] [[answer:recovered]]`,
            ),
          ],
        },
      },
    }, ({ results: [r] }) => {
      assert.equal(r.status, "passed", r.reason);
      assert.equal(r.attempts, 2);
      // The retry waited for the reset (1 s ahead, plus a second of margin).
      assert.ok(r.durationS >= 1, `retried after ${r.durationS}s`);
    }, { rateLimitRetries: 2, maxLimitWaitS: 5 });
  } finally {
    await Deno.remove(state, { recursive: true });
  }
  assertNoneLeft(tag);
});

Deno.test("runTasks() counts a limit that outlasts its retries as an error, never a pass", async () => {
  const tag = newTag();
  const state = await Deno.makeTempDir({ prefix: "ccx_fake_state_" });
  try {
    await runSuite({
      categories: {
        limits: {
          tasks: [
            // Says the expected word, exits 0... and still reports the limit every time.
            limitedTask("persists", state, `${tag} [[usage-limit:+1]] [[answer:recovered]]`),
            // HTTP 429 without a reset time: exponential backoff, bounded retries.
            limitedTask("http_429", state, `${tag} [[rate-limit-429]]`),
            // A reset beyond maxLimitWaitS is not waited for.
            limitedTask("far_reset", state, `${tag} [[usage-limit:+3600]]`),
          ],
        },
      },
    }, ({ byId }) => {
      const persists = byId.get("persists")!;
      assert.equal(persists.status, "error");
      assert.equal(persists.attempts, 2);
      assert.match(persists.reason, /^rate_limit: .*\(after 2 attempts\)$/);
      assert.equal(persists.kind, "rate_limit");
      const http = byId.get("http_429")!;
      assert.equal(http.status, "error");
      assert.equal(http.attempts, 2);
      assert.match(http.reason, /^rate_limit: /);
      const far = byId.get("far_reset")!;
      assert.equal(far.status, "error");
      assert.equal(far.attempts, 1);
      assert.match(far.reason, /^rate_limit: /);
    }, { rateLimitRetries: 1, maxLimitWaitS: 5, backoffBaseS: 0.05, concurrency: 3 });
  } finally {
    await Deno.remove(state, { recursive: true });
  }
  assertNoneLeft(tag);
});

Deno.test("runTasks() by default retries a lasting usage limit 3 times, and waits for no reset past 300 s", async () => {
  const tag = newTag();
  // The CLI's usage-limit line, with a reset `ahead` seconds from when the command runs.
  const limited = (ahead: number) =>
    `: ${tag}; echo "Claude AI usage limit reached|$(( $(date +%s) + ${ahead} ))"; exit 1`;
  await runSuite({
    tests: [
      // Resets as it is reported: each retry waits about a second.
      { id: "lasting", command: limited(0) },
      // Beyond the default bound of 300 s: not waited for, however many retries are left.
      { id: "beyond_bound", command: limited(310) },
    ],
  }, ({ byId }) => {
    const lasting = byId.get("lasting")!;
    assert.equal(lasting.status, "error");
    assert.equal(lasting.attempts, 4, "the first run and 3 retries");
    assert.match(lasting.reason, /^rate limited: .*\(after 4 attempts\)$/);
    const beyond = byId.get("beyond_bound")!;
    assert.equal(beyond.status, "error");
    assert.equal(beyond.attempts, 1);
    assert.match(beyond.reason, /^rate limited: /);
  }, { concurrency: 2 });
  assertNoneLeft(tag);
  // Inside the bound a reset is waited for: 299 s ahead means a wait of 300 s, the reset plus a
  // second of margin; 300 s ahead would be 301 s, past the bound.
  const now = () => 1_000_000_000_000;
  assert.equal(limitWaitMs({ resetTimestamp: now() / 1000 + 299 }, 0, { now }), 300_000);
  assert.equal(limitWaitMs({ resetTimestamp: now() / 1000 + 300 }, 0, { now }), undefined);
  // Without a reset time the backoff grows but never past the bound.
  assert.equal(limitWaitMs({}, 20, { now, random: () => 0 }), 300_000);
});

// ---------------------------------------------------------------------------------------------
// runTasks: concurrency, servers, repeats

Deno.test("runTasks() overlaps tasks up to `concurrency` and never more", async () => {
  const tag = newTag();
  const ids = ["a", "b", "c", "d", "e", "f"];
  // Each task waits until its wave of three has started (so three certainly run at once), then
  // stays a moment, so that a fourth one running beside them would show in the log.
  using log = new OverlapLog(3, ids.length);
  const tests = ids.map((id) => ({
    id,
    command: log.wrap(id, `: ${tag}; sleep 0.2; echo done-${id}`),
    expected_patterns: [`done-${id}`],
    timeout: 60,
  }));
  await runSuite({ tests }, ({ results }) => {
    assert.deepEqual(results.map((r) => r.id), ids);
    for (const r of results) assert.equal(r.status, "passed", r.reason);
    assert.equal(log.mostAtOnce(), 3, log.lines().join(", "));
  }, { concurrency: 3 });
  assertNoneLeft(tag);
});

Deno.test("runTasks() deals tasks over every server it is given", async () => {
  const tag = newTag();
  const logA: string[] = [];
  const logB: string[] = [];
  const { tasks } = parseSuite({
    tests: [1, 2, 3, 4, 5].map((n) => ({
      id: `t${n}`,
      command: `: ${tag}; echo task-${n}`,
      expected_patterns: [`task-${n}`],
    })),
  }, "inline");
  const outDir = await Deno.makeTempDir({ prefix: "ccx_runner_test_" });
  try {
    const results = await withServer(
      { log: (l) => logA.push(l) },
      (a) =>
        withServer({ log: (l) => logB.push(l) }, (b) =>
          runTasks(tasks, {
            servers: [{ url: a.url }, { url: b.url }],
            concurrency: 2,
            outDir,
            claude: FAKE_CLAUDE,
            sandbox: true,
          })),
    );
    for (const r of results) assert.equal(r.status, "passed", r.reason);
    const started = (log: string[]) => log.filter((l) => / started /.test(l) && l.includes(tag));
    assert.equal(started(logA).length + started(logB).length, 5);
    assert.ok(started(logA).length >= 2, logA.join("\n"));
    assert.ok(started(logB).length >= 2, logB.join("\n"));
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
  assertNoneLeft(tag);
});

Deno.test("runTasks() with `repeat` runs every task again under a numbered id", async () => {
  const tag = newTag();
  await runSuite({
    tests: [
      { id: "x", command: `: ${tag}; echo x` },
      { id: "y", command: `: ${tag}; echo y` },
    ],
  }, async ({ results }) => {
    assert.deepEqual(results.map((r) => r.id), ["x.r1", "y.r1", "x.r2", "y.r2"]);
    for (const r of results) {
      assert.equal(r.status, "passed");
      assert.ok(r.outputFile?.endsWith(`/${r.id}.txt`));
      await Deno.stat(r.outputFile!);
    }
  }, { repeat: 2, concurrency: 2 });
  assertNoneLeft(tag);
});

Deno.test("runTasks() on abort cancels running tasks, keeps their output, and starts no more", async () => {
  const tag = newTag();
  const controller = new AbortController();
  const started: string[] = [];
  const outDir = await Deno.makeTempDir({ prefix: "ccx_runner_test_" });
  // tee writes each line to the job's stdout before the file: once the file shows the stand-in's
  // init line, so has the job's output.
  const seen = `${outDir}/seen.${tag}`;
  const { tasks } = parseSuite({
    tests: [
      { id: "quick", command: `: ${tag}; echo quick` },
      { id: "slow", command: `: ${tag}; echo slow-began; sleep 30.${tag}` },
      {
        id: "hang",
        command: `claude -p '${tag} [[hang]]' --output-format stream-json --verbose | tee ${seen}`,
      },
      { id: "never", command: `: ${tag}; echo never` },
    ],
  }, "inline");
  try {
    await withServer({ graceMs: 200, env: serverEnvWithKey() }, async (server) => {
      const results = await runTasks(tasks, {
        servers: [{ url: server.url }],
        outDir,
        claude: FAKE_CLAUDE,
        sandbox: true,
        concurrency: 2,
        signal: controller.signal,
        onStart: (id) => {
          started.push(id);
          if (id !== "hang") return;
          // Abort once both slow tasks have said something and are waiting.
          waitFor(
            () =>
              pidsMatching(`30.${tag}`).length > 0 &&
              readOr(seen).includes('"subtype":"init"'),
            "the slow tasks to start",
          ).then(() => controller.abort(), (e) => controller.abort(e));
        },
      });
      // Canceled, not left to the server's shutdown: nothing of theirs is alive any more.
      assertNoneLeft(tag);
      const byId = new Map(results.map((r) => [r.id, r]));
      assert.deepEqual(results.map((r) => r.id), ["quick", "slow", "hang"]);
      assert.equal(byId.get("quick")!.status, "passed");
      for (const id of ["slow", "hang"]) {
        assert.equal(byId.get(id)!.status, "error");
        assert.equal(byId.get(id)!.reason, "interrupted");
      }
      assert.equal(await bodyOf(byId.get("slow")!.outputFile), "slow-began\n");
      assert.match(await bodyOf(byId.get("hang")!.outputFile), /"subtype":"init"/);
      assert.equal(started.includes("never"), false);
    });
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
  assertNoneLeft(tag);
});

Deno.test("runTasks() names every job: label and meta (run, task, instance) as observers see them", async () => {
  const tag = newTag();
  const { tasks } = parseSuite(
    {
      categories: {
        plain: {
          tasks: [{ id: "one", name: "first task", command_template: `: ${tag}; echo hi` }],
        },
        concurrent_execution: {
          tasks: [{
            id: "many",
            natural_language_request: "pick one",
            command_template: `: ${tag}; echo hi`,
            concurrent_instances: 2,
            evaluation_criteria: "FASTEST",
          }],
        },
      },
    },
    "inline",
    { claude: FAKE_CLAUDE },
  );
  const outDir = await Deno.makeTempDir({ prefix: "ccx_runner_test_" });
  try {
    await withServer({}, async (server) => {
      const watcher = await RawSession.open(server.url);
      await watcher.call(1, "watch", {});
      await runTasks(tasks, {
        servers: [{ url: server.url }],
        outDir,
        claude: FAKE_CLAUDE,
        repeat: 2,
        jobMeta: { suite: "inline", run_id: "run-7", run_total: 4 },
      });
      const started = watcher.messages
        .filter((m) => m.method === "observe.job" && m.params?.event === "started")
        .map((m) => m.params?.job as { label: string; meta: Record<string, unknown> });
      assert.deepEqual(started.map((j) => j.label).sort(), [
        "many.r1.i1",
        "many.r1.i2",
        "many.r2.i1",
        "many.r2.i2",
        "one.r1 · first task",
        "one.r2 · first task",
      ]);
      const inst = started.find((j) => j.label === "many.r2.i2")!;
      assert.deepEqual(inst.meta, {
        suite: "inline",
        run_id: "run-7",
        run_total: 4,
        task_id: "many",
        result_id: "many.r2",
        category: "concurrent_execution",
        instance: 2,
        prompt: "pick one",
      });
      await watcher.close();
    });
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// runTasks: concurrent_execution tasks

Deno.test("runTasks() runs concurrent instances with spread models and temperatures, and picks one", async () => {
  const tag = newTag();
  await runSuite({
    categories: {
      concurrent_execution: {
        tasks: [{
          id: "pick_by_patterns",
          natural_language_request: "unused",
          command_template: `: ${tag}; echo "alpha model=\${MODEL} temp=\${TEMPERATURE}"; ` +
            `if [ "\${MODEL}" = haiku ]; then echo beta; fi`,
          concurrent_instances: 3,
          models: ["sonnet", "haiku", "opus"],
          temperature_range: [0.2, 1],
          evaluation_criteria: "PATTERN_MATCH",
          verification: { expected_patterns: ["alpha", "beta"] },
        }],
      },
    },
  }, async ({ results: [r] }) => {
    assert.equal(r.status, "passed", r.reason);
    assert.match(r.reason, /^picked instance 2 of 3 by PATTERN_MATCH/);
    const inst = r.instances!;
    assert.deepEqual(
      inst.map((i) => [i.index, i.model, i.temperature, i.status, i.picked]),
      [
        [1, "sonnet", 0.2, "passed", false],
        [2, "haiku", 0.6, "passed", true],
        [3, "opus", 1, "passed", false],
      ],
    );
    assert.deepEqual(r.patternsFound, ["alpha", "beta"]);
    assert.equal(r.outputFile, inst[1].outputFile);
    for (const i of inst) {
      assert.match(
        await bodyOf(i.outputFile),
        new RegExp(`model=${i.model} temp=${i.temperature}`),
      );
    }
  }, { patternMode: "any" });
  assertNoneLeft(tag);
});

Deno.test("runTasks() fails a concurrent task when no instance passes, listing each", async () => {
  const tag = newTag();
  await runSuite({
    categories: {
      concurrent_execution: {
        tasks: [{
          id: "none_pass",
          command_template: `: ${tag}; echo only-alpha; exit \${TEMPERATURE}`,
          concurrent_instances: 2,
          temperature_range: [1, 2],
          evaluation_criteria: "FASTEST",
          verification: { expected_patterns: ["alpha"] },
        }],
      },
    },
  }, ({ results: [r] }) => {
    assert.equal(r.status, "failed");
    assert.match(
      r.reason,
      /^no instance of 2 passed \(FASTEST\): #1 exit code 1.*; #2 exit code 2/,
    );
    assert.equal(r.instances?.length, 2);
    assert.ok(r.instances!.every((i) => !i.picked));
  });
  assertNoneLeft(tag);
});

// ---------------------------------------------------------------------------------------------
// --server failover

/**
 * Four tasks that say `up`, then wait until the file `go` exists, then say `done-N`. With
 * concurrency 4 over two servers, two run on each.
 */
function gatedSuite(tag: string, go: string) {
  return parseSuite({
    tests: [1, 2, 3, 4].map((n) => ({
      id: `t${n}`,
      command: `: ${tag}; echo up; while [ ! -e ${shq(go)} ]; do sleep 0.05; done; echo done-${n}`,
      expected_patterns: [`done-${n}`],
    })),
  }, "inline").tasks;
}

/**
 * Runs the gated suite over servers `a` and `b`; once all four tasks are up, calls `lose` (which
 * takes server `a` away), then opens the gate.
 */
async function runLosingOne(
  a: string,
  b: string,
  lose: () => void | Promise<void>,
): Promise<TestResult[]> {
  const tag = newTag();
  const dir = await Deno.makeTempDir({ prefix: "ccx_failover_test_" });
  const go = `${dir}/go`;
  const up = new Set<string>();
  let allUp!: () => void;
  const ready = new Promise<void>((r) => allUp = r);
  try {
    const running = runTasks(gatedSuite(tag, go), {
      servers: [{ url: a }, { url: b }],
      concurrency: 4,
      outDir: `${dir}/out`,
      claude: FAKE_CLAUDE,
      onOutput(id, _type, data) {
        if (data.includes("up")) up.add(id);
        if (up.size === 4) allUp();
      },
    });
    await ready;
    await lose();
    await Deno.writeTextFile(go, "");
    return await running;
  } finally {
    await Deno.writeTextFile(go, "").catch(() => {});
    await waitFor(() => pidsMatching(tag).length === 0, "the gated tasks to end", 10_000);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("runTasks() reruns the tasks of a server killed with SIGKILL on the live one", async () => {
  const a = await serveProcess();
  try {
    const logB: string[] = [];
    const results = await withServer(
      { log: (l) => logB.push(l) },
      (b) =>
        runLosingOne(a.url, b.url, async () => {
          a.child.kill("SIGKILL");
          await a.child.status;
        }),
    );
    assert.deepEqual(results.map((r) => [r.id, r.status]), [
      ["t1", "passed"],
      ["t2", "passed"],
      ["t3", "passed"],
      ["t4", "passed"],
    ]);
    // t1 and t3 were dealt to the killed server; each ran again, once, on the live one.
    const rerun = results.filter((r) => r.rerun);
    assert.deepEqual(rerun.map((r) => r.id), ["t1", "t3"]);
    for (const r of rerun) {
      assert.match(r.rerun!, new RegExp(`server ${a.url} lost: .*; rerun on ws://`));
      assert.match(r.reason, /\(rerun: server .* lost/);
      assert.equal(r.attempts, 2);
    }
    // Two first runs and two reruns on the live server; none started on the dead one after.
    assert.equal(logB.filter((l) => / started /.test(l)).length, 4, logB.join("\n"));
  } finally {
    await a.stop("SIGKILL");
  }
});

Deno.test("runTasks() reruns, never fails, the tasks a server's shutdown ended", async () => {
  await withServer({ graceMs: 200 }, (a) =>
    withServer({}, async (b) => {
      const results = await runLosingOne(a.url, b.url, () => a.shutdown());
      for (const r of results) assert.equal(r.status, "passed", `${r.id}: ${r.reason}`);
      const rerun = results.filter((r) => r.rerun).map((r) => r.id);
      assert.deepEqual(rerun, ["t1", "t3"]);
      for (const r of results.filter((r) => r.rerun)) {
        assert.match(
          r.rerun!,
          /lost: the server shut down while the task ran \(close 1001: server shutting down\); rerun on/,
        );
      }
    }));
});

Deno.test("runTasks() reports a task `error` when its only server shuts down under it", async () => {
  const tag = newTag();
  const dir = await Deno.makeTempDir({ prefix: "ccx_failover_test_" });
  try {
    const results = await withServer({ graceMs: 200 }, (a) => {
      const { tasks } = parseSuite({
        tests: [{
          id: "only",
          command: `: ${tag}; echo up; sleep 30.${tag}`,
          expected_patterns: ["x"],
        }],
      }, "inline");
      return runTasks(tasks, {
        servers: [{ url: a.url }],
        outDir: dir,
        claude: FAKE_CLAUDE,
        onOutput: () => void a.shutdown(),
      });
    });
    assert.equal(results.length, 1);
    assert.equal(results[0].status, "error");
    assert.match(
      results[0].reason,
      /lost: the server shut down .*no live server left to rerun it on/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertNoneLeft(tag);
});

Deno.test("runTasks() reports the server's shutdown (close 1001) for a task that died at SIGTERM while another lasts the grace", async () => {
  // Two tasks, each on its lane's own connection: `quick` dies at SIGTERM, `stubborn` ignores it
  // and lasts the whole grace (1.5 s) until SIGKILL. Each connection is closed with 1001 as soon
  // as its own job has ended, so `quick` learns of the shutdown at once.
  const tag = newTag();
  const dir = await Deno.makeTempDir({ prefix: "ccx_shutdown_close_test_" });
  try {
    const up = new Set<string>();
    const results = await withServer({ graceMs: 1500 }, (a) => {
      const { tasks } = parseSuite({
        tests: [
          { id: "quick", command: `: ${tag}; echo up; sleep 30.${tag}`, expected_patterns: ["x"] },
          {
            id: "stubborn",
            command: `trap '' TERM; : ${tag}; echo up; sleep 31.${tag}`,
            expected_patterns: ["x"],
          },
        ],
      }, "inline");
      return runTasks(tasks, {
        servers: [{ url: a.url }],
        concurrency: 2,
        outDir: dir,
        claude: FAKE_CLAUDE,
        onOutput(id, _type, data) {
          if (data.includes("up")) up.add(id);
          if (up.size === 2) void a.shutdown();
        },
      });
    });
    assert.deepEqual(results.map((r) => [r.id, r.status]), [["quick", "error"], [
      "stubborn",
      "error",
    ]]);
    for (const r of results) {
      assert.match(
        r.reason,
        /lost: the server shut down while the task ran \(close 1001: server shutting down\); no live server left/,
        `${r.id}: ${r.reason}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertNoneLeft(tag);
});

Deno.test("runTasks(): a task killed by a signal of its own on a live server is its own failure, not a shutdown", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_killed_test_" });
  try {
    const results = await withServer({}, (a) => {
      const { tasks } = parseSuite({
        tests: [{ id: "self", command: "echo up; kill -9 $$", expected_patterns: ["up"] }],
      }, "inline");
      return runTasks(tasks, { servers: [{ url: a.url }], outDir: dir, claude: FAKE_CLAUDE });
    });
    assert.equal(results.length, 1);
    assert.notEqual(results[0].status, "passed");
    assert.doesNotMatch(results[0].reason, /shut down|lost/, results[0].reason);
    assert.equal(results[0].rerun, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// workspaces and expected_files

Deno.test("concurrent tasks writing the same file each run and are judged in their own workspace", async () => {
  const tests = ["one", "two", "three", "four"].map((word) => ({
    id: `w_${word}`,
    command: `printf ${word} > config.py; sleep 0.2; cat config.py`,
    expected_patterns: [word],
    expected_files: [{ path: "config.py", contains: word }],
  }));
  await runSuite({ tests }, ({ results }) => {
    assert.equal(results.length, 4);
    for (const r of results) {
      assert.equal(r.status, "passed", `${r.id}: ${r.reason}`);
      assert.match(r.reason, /1\/1 files/);
      assert.deepEqual(r.filesCreated, ["config.py"]);
      assert.equal(r.workspace, undefined, "passed tasks' workspaces are not kept (keep failed)");
    }
  }, { concurrency: 4 });
});

Deno.test("--no-workspace runs tasks in the server's directory, workspaces elsewhere", async () => {
  const suite = { tests: [{ id: "where", command: "pwd", expected_patterns: [Deno.cwd()] }] };
  await runSuite(suite, ({ byId }) => {
    assert.equal(byId.get("where")!.status, "passed", byId.get("where")!.reason);
    assert.equal(byId.get("where")!.filesCreated, undefined);
  }, { workspace: false });
  await runSuite(suite, ({ byId }) => {
    assert.equal(byId.get("where")!.status, "failed", "a workspace is not the server's cwd");
  });
});

Deno.test({
  name: "expected_files passes and fails as it should against a server whose disk we cannot see",
  ignore: bwrapIgnore,
  fn: async () => {
    const server = await remoteDiskServer();
    const outDir = await Deno.makeTempDir({ prefix: "ccx_runner_test_" });
    try {
      const { tasks } = parseSuite({
        tests: [
          {
            id: "good",
            command: "mkdir -p app && echo 'DATABASE_URL = 1' > app/config.py",
            expected_files: [{ path: "app/config.py", contains: "database_url" }, { path: "app" }],
          },
          {
            id: "wrong_text",
            command: "echo 'nothing here' > config.py",
            expected_files: [{ path: "config.py", contains: "DATABASE_URL" }],
          },
          {
            id: "missing",
            command: "echo 'DATABASE_URL' > other.py",
            expected_files: [{ path: "config.py" }],
          },
          {
            id: "dir_not_file",
            command: "mkdir config.py",
            expected_files: [{ path: "config.py", contains: "x" }],
          },
          {
            id: "symlink_out",
            command: "ln -s /etc/hostname config.py",
            expected_files: [{ path: "config.py" }],
          },
          {
            id: "exit_1_kept",
            command: "echo partial > half.txt; exit 1",
            expected_files: [{ path: "half.txt" }],
          },
        ],
      }, "inline");
      const results = await runTasks(tasks, {
        servers: [{ url: server.url }],
        outDir,
        claude: FAKE_CLAUDE,
        concurrency: 3,
      });
      const by = new Map(results.map((r) => [r.id, r]));
      const status = (id: string) => `${by.get(id)!.status}: ${by.get(id)!.reason}`;
      assert.equal(status("good"), "passed: exit 0, 2/2 files");
      assert.equal(status("wrong_text"), 'failed: config.py does not contain "DATABASE_URL"');
      assert.equal(status("missing"), "failed: missing file config.py");
      assert.equal(status("dir_not_file"), "failed: config.py is not a file");
      assert.equal(status("symlink_out"), "failed: missing file config.py");
      assert.equal(by.get("exit_1_kept")!.status, "failed");
      assert.deepEqual(by.get("good")!.filesCreated, ["app/config.py"]);
      // A failed run's workspace is kept and named; it is on the server's disk, not ours.
      const kept = by.get("exit_1_kept")!.workspace!;
      assert.ok(kept.startsWith(server.root), kept);
      assert.equal(await Deno.stat(kept).then(() => true, () => false), false);
    } finally {
      await server.stop();
      await Deno.remove(outDir, { recursive: true });
    }
  },
});

/**
 * `ccx exec` (lib/exec/exec.ts and lib/commands/exec.ts) against the stand-in Claude CLI, through a
 * real in-process server and real processes. One attempt and the pick among a round are tested in
 * attempt_test.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ExecInputError } from "../lib/claude/argv.ts";
import { execTask } from "../lib/exec/exec.ts";
import { findExecutable, parsePick } from "../lib/exec/setup.ts";
import { parseTools, saysNoRetry } from "../lib/commands/exec.ts";
import { SqliteHistory } from "../lib/claude/history_store.ts";
import { sleepUnlessAborted } from "../lib/common/backoff.ts";
import { bwrapTier } from "./_util/tier.ts";
import {
  assertOwnServerTokened,
  cli,
  FAKE_CLAUDE,
  KEY_ENV,
  pidsMatching,
  remoteDiskServer,
  ROOT,
  serverEnvWithKey,
  uniqueTag,
  waitFor,
  withServer,
} from "./_util/helpers.ts";
import { inTmp, runExec as run, script } from "./_util/exec.ts";

const bwrapIgnore = bwrapTier();

Deno.test("execTask() succeeds when the answer meets the criterion, and reports the --json shape", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, { task: "What is 2+2?", criteria: ["Contains 4"] });
    assert.deepEqual(Object.keys(r).filter((k) => k !== "lines").sort(), [
      "attempts",
      "criteria",
      "duration_s",
      "files_created",
      "result",
      "success",
      "timeout_s",
      "timeout_source",
    ]);
    assert.equal(r.success, true);
    assert.match(r.result, /2 \+ 2 = 4/);
    assert.doesNotMatch(r.result, /\[marker:/, "the echoed marker is not part of the answer");
    assert.deepEqual(r.criteria.map((c) => [c.criterion, c.met]), [["Contains 4", true]]);
    assert.match(r.criteria[0].evidence, /final answer/);
    assert.equal(r.attempts.length, 1);
    const a = r.attempts[0];
    assert.deepEqual(Object.keys(a).sort(), [
      "cost_usd",
      "duration_s",
      "error_type",
      "exit_code",
      "marker_seen",
      "prompt",
      "status",
    ]);
    assert.equal(a.status, "completed");
    assert.equal(a.exit_code, 0);
    assert.equal(a.error_type, null);
    assert.equal(a.marker_seen, true);
    assert.equal(typeof a.cost_usd, "number");
    assert.match(a.prompt, /^\[marker:[0-9a-f-]{36}\] /);
    assert.match(a.prompt, /What is 2\+2\?$/);
    assert.deepEqual(r.files_created, []);
    assert.equal(r.timeout_source, "default");
  });
});

Deno.test("execTask() without criteria succeeds when the run ends without a Claude error", async () => {
  await inTmp(async (dir) => {
    const ok = await run(dir, { task: "What is the capital of France?" });
    assert.equal(ok.success, true);
    assert.deepEqual(ok.criteria, []);
    const bad = await run(dir, { task: "What is 3+3? [[exit:3]]", retries: 0 });
    assert.equal(bad.success, false);
    assert.equal(bad.attempts[0].exit_code, 3);
    assert.equal(bad.attempts[0].error_type, "error");
  });
});

Deno.test("execTask() recovers from a hallucinated write on the refined retry", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, {
      task: "Create config.py [[fail-first:1:claim-write:config.py]] [[write:config.py=X = 1]]",
      criteria: ["File config.py exists"],
    });
    assert.equal(r.success, true);
    assert.equal(r.attempts.length, 2);
    assert.equal(r.attempts[0].error_type, "criteria_not_met");
    assert.match(r.attempts[1].prompt, /create it with the Write tool/);
    assert.equal(r.attempts[1].error_type, null);
    assert.deepEqual(r.files_created, [join(dir, "config.py")]);
  });
});

Deno.test("execTask() retries a token-limit failure asking for a shorter answer", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, { task: "What is 6*7? [[fail-first:1:token-limit]]" });
    assert.equal(r.success, true);
    assert.deepEqual(r.attempts.map((a) => a.error_type), ["token_limit", null]);
    assert.match(r.attempts[1].prompt, /IMPORTANT:\n- .*exceeded the output token limit/);
    assert.match(r.attempts[1].prompt, /answer more briefly/);
  });
});

Deno.test("execTask() waits for a usage limit's reset, without spending a refinement retry", async () => {
  await inTmp(async (dir) => {
    const waits: number[] = [];
    const r = await run(dir, {
      task: "What is 5+5? [[fail-first:1:usage-limit:+1]]",
      retries: 0,
      sleep: (ms, signal) => {
        waits.push(ms);
        return sleepUnlessAborted(ms, signal);
      },
    });
    assert.equal(r.success, true);
    assert.deepEqual(r.attempts.map((a) => a.error_type), ["rate_limit", null]);
    assert.equal(waits.length, 1);
    // The reset is about one second away; limitWaitMs adds a one-second margin.
    assert.ok(waits[0] > 0 && waits[0] <= 3000, `waited ${waits[0]} ms`);
    assert.doesNotMatch(r.attempts[1].prompt, /IMPORTANT:/, "a limit is not the prompt's fault");
    assert.ok(r.lines.some((l) => /usage limit: waiting .* for the reset/.test(l)));
  });
});

Deno.test("execTask() does not wait for a usage limit that resets beyond the bound", async () => {
  await inTmp(async (dir) => {
    const waits: number[] = [];
    const r = await run(dir, {
      task: "What is 9+9? [[usage-limit:+3600]]",
      maxLimitWaitS: 60,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve(true);
      },
    });
    assert.equal(r.success, false);
    assert.equal(r.attempts.length, 1);
    assert.equal(r.attempts[0].error_type, "rate_limit");
    assert.deepEqual(waits, []);
    assert.ok(
      r.lines.some((l) => /stopping: usage limit resets at .*more than the 60 s/.test(l)),
      r.lines.join("\n"),
    );
  });
});

Deno.test("execTask() backs off exponentially on a 429 without a reset time, a bounded number of times", async () => {
  await inTmp(async (dir) => {
    const waits: number[] = [];
    const r = await run(dir, {
      task: "What is 1+1? [[rate-limit-429]]",
      backoffBaseS: 0.01,
      limitRetries: 2,
      random: () => 0.5,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve(true);
      },
    });
    assert.equal(r.success, false);
    assert.deepEqual(r.attempts.map((a) => a.error_type), [
      "rate_limit",
      "rate_limit",
      "rate_limit",
    ]);
    assert.deepEqual(waits.map((ms) => Math.round(ms * 100) / 100), [11.25, 22.5]);
    assert.ok(r.lines.some((l) => /still limited after 2 waits/.test(l)));
  });
});

Deno.test("execTask() by default waits out a limit at most 3 times, and never longer than 300 s", async () => {
  await inTmp(async (dir) => {
    const waits: number[] = [];
    const sleep = (ms: number) => {
      waits.push(ms);
      return Promise.resolve(true);
    };
    // A 429 without a reset time, every time: exponential backoff, 3 waits, then it stops.
    const backoff = await run(dir, { task: "What is 1+1? [[rate-limit-429]]", sleep });
    assert.equal(backoff.success, false);
    assert.equal(backoff.attempts.length, 4);
    assert.equal(waits.length, 3);
    assert.ok(waits[0] < waits[1] && waits[1] < waits[2], `waits ${waits}`);
    // A reset 295 s ahead is waited for (each time); one 310 s ahead is not.
    waits.length = 0;
    const near = await run(dir, { task: "What is 3+3? [[usage-limit:+295]]", sleep });
    assert.equal(near.attempts.length, 4);
    assert.equal(waits.length, 3);
    for (const ms of waits) assert.ok(ms > 290_000 && ms <= 300_000, `waited ${ms} ms`);
    waits.length = 0;
    const far = await run(dir, { task: "What is 4+4? [[usage-limit:+310]]", sleep });
    assert.equal(far.attempts.length, 1);
    assert.deepEqual(waits, []);
  });
});

Deno.test("execTask() never retries an authentication failure", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, { task: "What is 2+2? [[auth-fail]]", retries: 2 });
    assert.equal(r.success, false);
    assert.equal(r.attempts.length, 1);
    assert.equal(r.attempts[0].error_type, "auth");
    assert.ok(r.lines.some((l) => /stopping: auth, which a retry cannot fix/.test(l)));
    assert.ok(r.lines.some((l) => /Fix: .*ANTHROPIC_API_KEY/.test(l)), r.lines.join("\n"));
  });
});

Deno.test("execTask() takes a 403 for auth too, and a 401 in an api_retry line ends the attempt at once", async () => {
  await inTmp(async (dir) => {
    const forbidden = await run(dir, { task: "What is 2+2? [[auth-403]]", retries: 2 });
    assert.deepEqual(forbidden.attempts.map((a) => a.error_type), ["auth"]);
    // The CLI would retry a 401 ten times, 10 minutes apart; ccx ends it at the first api_retry
    // line. No clock: an attempt that waited for the next retry would end by its 60 s timeout
    // (status "timeout"), not be canceled.
    const retrying = await run(dir, {
      task: "What is 2+2? [[auth-fail]] [[retry-delay:600000]]",
      env: { CLAUDE_CODE_MAX_RETRIES: "10" },
      retries: 2,
      timeout: 60,
    });
    assert.deepEqual(retrying.attempts.map((a) => a.error_type), ["auth"]);
    assert.equal(retrying.attempts[0].status, "canceled", "ended at the first retry line");
    assert.ok(retrying.lines.some((l) => /ending it now: auth/.test(l)), retrying.lines.join("\n"));
  });
});

Deno.test("execTask() ends network retries after its bound and backs off, spending no refinement", async () => {
  await inTmp(async (dir) => {
    const waits: number[] = [];
    const r = await run(dir, {
      task: "What is 2+2? [[network:ENOTFOUND]] [[retry-delay:5000]]",
      env: { CLAUDE_CODE_MAX_RETRIES: "10" },
      networkGiveUpS: 0.3,
      limitRetries: 1,
      backoffBaseS: 0.01,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve(true);
      },
    });
    assert.deepEqual(r.attempts.map((a) => a.error_type), ["network", "network"]);
    assert.equal(waits.length, 1);
    assert.ok(r.attempts.every((a) => !a.prompt.includes("IMPORTANT:")), "no refinement");
    assert.ok(r.lines.some((l) => /could not be reached for 0.3 s/.test(l)), r.lines.join("\n"));
  });
});

Deno.test("execTask() backs off on 529 overloaded, then reports it, with no refinement spent", async () => {
  await inTmp(async (dir) => {
    const waits: number[] = [];
    const r = await run(dir, {
      task: "What is 2+2? [[overloaded]]",
      limitRetries: 2,
      backoffBaseS: 0.01,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve(true);
      },
    });
    assert.equal(r.success, false);
    assert.deepEqual(r.attempts.map((a) => a.error_type), [
      "overloaded",
      "overloaded",
      "overloaded",
    ]);
    assert.equal(waits.length, 2);
    assert.ok(r.attempts.every((a) => !a.prompt.includes("IMPORTANT:")));
    assert.ok(r.lines.some((l) => /still overloaded after 2 waits/.test(l)));
  });
});

Deno.test("execTask() as root without IS_SANDBOX stops before spawning; --sandbox runs", async () => {
  await inTmp(async (dir) => {
    const tag = uniqueTag();
    await assert.rejects(
      run(dir, { task: `What is 2+2? ${tag}`, isRoot: true, sandbox: false }),
      (e: Error) =>
        e instanceof ExecInputError && /IS_SANDBOX=1/.test(e.message) &&
        /--sandbox/.test(e.message) && /non-root user/.test(e.message),
    );
    assert.deepEqual(pidsMatching(tag), []);
    const ok = await run(dir, { task: "What is 2+2?", isRoot: true, sandbox: true });
    assert.equal(ok.success, true);
  });
});

Deno.test(
  "ccx exec as root without --sandbox exits 2 before any attempt; the real refusal is root_refused",
  {
    ignore: Deno.uid() !== 0,
  },
  async () => {
    await inTmp(async (dir) => {
      const env = {
        CCX_STATE_DIR: join(dir, "state"),
        IS_SANDBOX: "",
        CCX_SANDBOX: "",
        ...KEY_ENV,
      };
      const r = await cli(["exec", "What is 2+2?", "--claude", FAKE_CLAUDE, "--cwd", dir], { env });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /running as root: .*IS_SANDBOX=1.*--sandbox.*non-root user/s);
      assert.doesNotMatch(r.stderr, /attempt 1/);
      const sandbox = await cli([
        "exec",
        "What is 2+2?",
        "--sandbox",
        "--claude",
        FAKE_CLAUDE,
        "--cwd",
        dir,
      ], { env });
      assert.equal(sandbox.code, 0, sandbox.stderr);
      // Through a server ccx cannot pre-check; the CLI's own refusal is classified and not retried.
      await withServer({}, async (server) => {
        const lines: string[] = [];
        const remote = await execTask({
          task: "What is 2+2?",
          claude: FAKE_CLAUDE,
          cwd: dir,
          server: server.url,
          env: { IS_SANDBOX: "", ...KEY_ENV },
          onProgress: (l) => lines.push(l),
        });
        assert.deepEqual(remote.attempts.map((a) => a.error_type), ["root_refused"]);
        assert.ok(lines.some((l) => /Fix: .*--sandbox/.test(l)), lines.join("\n"));
      });
    });
  },
);

Deno.test("ccx exec finds criteria anywhere in TASK and refuses criteria it cannot read", async () => {
  await inTmp(async (dir) => {
    const env = { CCX_STATE_DIR: join(dir, "state"), CCX_SANDBOX: "1", ...KEY_ENV };
    const args = ["--claude", FAKE_CLAUDE, "--cwd", dir, "--retries", "0", "--json"];
    const found = await cli([
      "exec",
      "What is 2+2? ANSWER=4 Evaluate the response based on: 1) Contains seventeen",
      ...args,
    ], { env });
    assert.equal(found.code, 1, "the criterion was found, and is not met");
    assert.deepEqual(JSON.parse(found.stdout).criteria.map((c: { met: boolean }) => c.met), [
      false,
    ]);
    const unreadable = await cli(
      ["exec", "What is 2+2? Evaluate the response based on:", ...args],
      {
        env,
      },
    );
    assert.equal(unreadable.code, 2);
    assert.match(
      unreadable.stderr,
      /names criteria but none could be read from "Evaluate the response based on:"/,
    );
  });
});

Deno.test("execTask() takes the timeout from the flag, the task, then history or the default", async () => {
  await inTmp(async (dir) => {
    const history = new SqliteHistory({ path: join(dir, "history.sqlite") });
    try {
      const task = "What is the capital of France?";
      const flag = await run(dir, { task, timeout: 7, taskTimeoutS: 45, history });
      assert.deepEqual([flag.timeout_s, flag.timeout_source], [7, "flag"]);
      const fromTask = await run(dir, { task, taskTimeoutS: 45, history });
      assert.deepEqual([fromTask.timeout_s, fromTask.timeout_source], [45, "task"]);
      // Two successes recorded so far: not enough history yet.
      const early = await run(dir, { task, timeout: "auto", taskTimeoutS: 45, history });
      assert.equal(early.timeout_source, "default");
      const later = await run(dir, { task, timeout: "auto", history });
      assert.equal(later.timeout_source, "history");
      assert.ok(later.timeout_s >= 30, "clamped to the 30 s minimum");
      const runs = await history.runs(
        (await import("../lib/claude/history.ts")).taskClass(task).key,
      );
      assert.equal(runs.length, 4, "every attempt is recorded");
      assert.ok(runs.every((r) => r.outcome === "success" && r.source === "exec"));
    } finally {
      await history.close();
    }
  });
});

Deno.test("execTask() refuses to run without the Claude executable and says how to point at it", async () => {
  await assert.rejects(
    execTask({ task: "What is 2+2?", claude: "/nonexistent/dir/claude" }),
    (e: Error) => {
      assert.ok(e instanceof ExecInputError);
      assert.match(e.message, /Claude CLI not found: "\/nonexistent\/dir\/claude" does not exist/);
      assert.match(e.message, /--claude PATH/);
      assert.match(e.message, /CCX_CLAUDE/);
      return true;
    },
  );
  await assert.rejects(
    execTask({ task: "What is 2+2?", claude: "ccx-no-such-claude-cli" }),
    /"ccx-no-such-claude-cli" is not on PATH/,
  );
});

Deno.test("execTask() on a remote server reports a missing Claude executable the same way", async () => {
  await withServer({}, async (server) => {
    await assert.rejects(
      execTask({ task: "What is 2+2?", claude: "/nonexistent/claude", server: server.url }),
      (e: Error) =>
        e instanceof ExecInputError && /--claude PATH or the CCX_CLAUDE/.test(e.message),
    );
  });
});

Deno.test("execTask() leaves no process behind after a timeout, a stall or an abort", async () => {
  await inTmp(async (dir) => {
    const tag = uniqueTag("ccxexec");
    const timedOut = await run(dir, { task: `Wait ${tag} [[hang]]`, timeout: 1, retries: 0 });
    assert.equal(timedOut.attempts[0].status, "timeout");
    assert.equal(timedOut.attempts[0].error_type, "timeout");
    assert.deepEqual(pidsMatching(tag), []);

    const stalled = await run(dir, { task: `Stall ${tag} [[hang]]`, stallTimeoutS: 1, retries: 0 });
    assert.equal(stalled.attempts[0].error_type, "stall");
    assert.deepEqual(pidsMatching(tag), []);

    const controller = new AbortController();
    const pending = run(dir, {
      task: `Abort ${tag} [[grandchild]]`,
      signal: controller.signal,
      retries: 2,
    });
    await waitFor(() => pidsMatching(tag).length > 0, "the stand-in to start", 10_000);
    controller.abort();
    const aborted = await pending;
    assert.equal(aborted.success, false);
    assert.equal(aborted.attempts.length, 1, "no retry after an abort");
    assert.equal(aborted.attempts[0].status, "canceled");
    assert.deepEqual(pidsMatching(tag), []);
  });
});

Deno.test("parsePick() accepts the stress criteria in any case and lists them otherwise", () => {
  assert.equal(parsePick("most_detailed"), "MOST_DETAILED");
  assert.throws(
    () => parsePick("best"),
    /valid values: FASTEST, MOST_DETAILED, .*BEST_CODE_QUALITY/,
  );
});

Deno.test("findExecutable() looks names up on PATH and paths as given", () => {
  assert.equal(findExecutable(FAKE_CLAUDE), FAKE_CLAUDE);
  assert.equal(findExecutable("claude", join(FAKE_CLAUDE, "..")), FAKE_CLAUDE);
  assert.equal(findExecutable("claude", "/nonexistent"), undefined);
});

Deno.test("saysNoRetry() and parseTools() read the request and --tools", () => {
  assert.equal(saysNoRetry("What is 2+2? Do not retry.", "What is 2+2?"), true);
  assert.equal(saysNoRetry("What is 2+2?", "What is 2+2?"), false);
  assert.equal(parseTools(undefined), "auto");
  assert.equal(parseTools("none"), "none");
  assert.deepEqual(parseTools("Write, Bash Read"), ["Write", "Bash", "Read"]);
});

// ------------------------------------------------------------------------------------ the CLI

Deno.test("ccx exec parses a seed-style request, prints JSON and exits 0 when every criterion is met", async () => {
  await inTmp(async (dir) => {
    const task = "Use your ./src/cc_executor/prompts/cc_execute.md to execute the task: " +
      "Create a config.py file with DATABASE_URL [[write:config.py=DATABASE_URL = 1]]. " +
      "Expect a timeout of 45 seconds. Evaluate the response based on: 1) File config.py exists, " +
      "2) Contains DATABASE_URL. If the task fails, retry with more specific instructions.";
    const r = await cli(["exec", task, "--json", "--claude", FAKE_CLAUDE, "--cwd", dir], {
      env: { CCX_STATE_DIR: join(dir, "state"), CCX_SANDBOX: "1", ...KEY_ENV },
    });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.success, true);
    assert.deepEqual(out.criteria.map((c: { criterion: string }) => c.criterion), [
      "File config.py exists",
      "Contains DATABASE_URL",
    ]);
    assert.deepEqual([out.timeout_s, out.timeout_source], [45, "task"]);
    assert.deepEqual(out.files_created, [join(dir, "config.py")]);
    assert.doesNotMatch(out.attempts[0].prompt, /Expect a timeout|Evaluate the response/);
    assert.match(r.stderr, /attempt 1: ok/);
  });
});

Deno.test("ccx exec --server sends --cwd: the CLI runs in that directory on the server", async () => {
  await inTmp(async (dir) => {
    const work = join(dir, "work");
    await Deno.mkdir(work);
    // The CLI notes where it runs, then answers as the stand-in.
    const claude = await script(dir, "claude", `pwd > '${dir}/pwd'\nexec "${FAKE_CLAUDE}" "$@"`);
    const log: string[] = [];
    // The server's environment has the key (the job's allow-list passes ANTHROPIC_*).
    await withServer({ log: (l) => log.push(l), env: serverEnvWithKey() }, async (server) => {
      const r = await cli([
        "exec",
        "What is 2+2?",
        "--server",
        server.url,
        "--cwd",
        work,
        "--claude",
        claude,
        "--retries",
        "0",
        "--sandbox", // the server runs as root: the CLI needs IS_SANDBOX=1
      ], { cwd: dir, env: { CCX_STATE_DIR: join(dir, "state") } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "2 + 2 = 4");
    });
    assert.ok(log.some((l) => /^job \S+ completed/.test(l)), `the server ran it: ${log}`);
    assert.equal((await Deno.readTextFile(join(dir, "pwd"))).trim(), await Deno.realPath(work));
  });
});

Deno.test("ccx exec prints the answer on stdout and exits 1 when a criterion is not met", async () => {
  await inTmp(async (dir) => {
    const r = await cli([
      "exec",
      "What is 2+2?",
      "--criterion",
      "File answer.txt exists",
      "--retries",
      "0",
      "--claude",
      FAKE_CLAUDE,
      "--cwd",
      dir,
    ], { env: { CCX_STATE_DIR: join(dir, "state"), CCX_SANDBOX: "1", ...KEY_ENV } });
    assert.equal(r.code, 1);
    assert.equal(r.stdout.trim(), "2 + 2 = 4");
    assert.match(r.stderr, /not met: File answer.txt exists/);
    assert.match(r.stderr, /FAILED: 0\/1 criteria met/);
  });
});

Deno.test("ccx exec exits 2 for an unknown --pick or a missing Claude CLI", async () => {
  await inTmp(async (dir) => {
    const env = { CCX_STATE_DIR: join(dir, "state") };
    const pick = await cli(["exec", "What is 2+2?", "--instances", "2", "--pick", "best"], { env });
    assert.equal(pick.code, 2);
    assert.match(pick.stderr, /unknown --pick "best"; valid values: FASTEST, MOST_DETAILED/);
    const missing = await cli(["exec", "What is 2+2?"], {
      env: { ...env, CCX_CLAUDE: join(dir, "no-claude-here") },
    });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Claude CLI not found: .*no-claude-here.* does not exist/);
    assert.match(missing.stderr, /--claude PATH or the CCX_CLAUDE environment variable/);
    assert.equal(missing.stdout, "");
  });
});

Deno.test({
  name: "execTask() with --server judges file criteria on the server's workspace through files",
  ignore: bwrapIgnore,
  fn: async () => {
    const server = await remoteDiskServer();
    try {
      const r = await execTask({
        claude: FAKE_CLAUDE,
        server: server.url,
        task: "Create config.py [[write:config.py=DATABASE_URL = 1\\n]]",
        criteria: [
          "File config.py exists",
          "config.py contains DATABASE_URL",
          "File other.py exists",
        ],
        retries: 0,
        sandbox: true, // the server runs as root: the CLI needs IS_SANDBOX=1
        env: { ...KEY_ENV },
      });
      assert.deepEqual(
        r.criteria.map((c) => c.met),
        [true, true, false],
        JSON.stringify(r.criteria),
      );
      const ws = r.attempts[0].workspace!;
      assert.ok(ws.startsWith(server.root), ws);
      assert.deepEqual(r.files_created, [join(ws, "config.py")]);
      assert.match(r.criteria[0].evidence, new RegExp(`${ws}/config.py exists`));
      // The file is on the server's disk only: this process cannot see it.
      assert.equal(await Deno.stat(join(ws, "config.py")).then(() => true, () => false), false);
    } finally {
      await server.stop();
    }
  },
});

Deno.test("execTask() passes --max-turns 0 on, as the real CLI accepts it", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, { task: "What is 2+2?", maxTurns: 0, retries: 0 });
    assert.deepEqual(r.attempts.map((a) => a.error_type), ["max_turns"]);
    assert.match(r.attempts[0].prompt, /What is 2\+2\?/);
  });
});

Deno.test("execTask() --check: a failing check fails the attempt, and its output goes into the next prompt", async () => {
  await inTmp(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "t.sh"),
      'out=$(sh add.sh 2 3); [ "$out" = 5 ] || { echo "AssertionError: add 2 3 gave $out"; exit 1; }\n',
    );
    const r = await run(dir, {
      task: "Create add.sh [[write:add.sh=echo $(($1 - $2))]]",
      checks: ["sh t.sh"],
      retries: 1,
    });
    assert.equal(r.success, false);
    assert.deepEqual(r.attempts.map((a) => a.error_type), ["check_failed", "check_failed"]);
    assert.deepEqual(r.checks, [{
      command: "sh t.sh",
      status: "failed",
      exit_code: 1,
      duration_s: r.checks![0].duration_s,
      output_tail: "AssertionError: add 2 3 gave -1",
    }]);
    assert.match(
      r.attempts[1].prompt,
      /\n\nIMPORTANT:\n- The check `sh t\.sh` failed \(exit 1\); its output ends with:\n {4}AssertionError: add 2 3 gave -1$/,
    );
    assert.ok(
      r.lines.some((l) => /check "sh t\.sh" exited 1: AssertionError/.test(l)),
      r.lines.join("\n"),
    );
    // The right code passes; a check that cannot finish stops without a retry.
    const ok = await run(dir, {
      task: "Create add.sh [[write:add.sh=echo $(($1 + $2))]]",
      checks: ["sh t.sh"],
    });
    assert.equal(ok.success, true, ok.lines.join("\n"));
    assert.equal(ok.checks?.[0].status, "passed");
    const slow = await run(dir, {
      task: "Create add.sh [[write:add.sh=echo 5]]",
      checks: ["sleep 5"],
      checkTimeoutS: 0.3,
      retries: 2,
    });
    assert.deepEqual(slow.attempts.map((a) => a.error_type), ["check_error"]);
    assert.ok(slow.lines.some((l) => /stopping: check "sleep 5" timed out after 0\.3 s/.test(l)));
  });
});

Deno.test("ccx exec's in-process server refuses a connection without its token while the task runs", async () => {
  await inTmp(async (dir) => {
    const tag = uniqueTag();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}main.ts`,
        "exec",
        `What is 2+2? [[hang]] ${tag}`,
        "--claude",
        FAKE_CLAUDE,
        "--cwd",
        dir,
        "--timeout",
        "60",
      ],
      env: { NO_COLOR: "1", CCX_STATE_DIR: join(dir, "state"), CCX_SANDBOX: "1", ...KEY_ENV },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    try {
      // The tag is in this command line too; the CLI is the other process that has it.
      const cliRuns = () => pidsMatching(tag).some((p) => p !== child.pid);
      await waitFor(cliRuns, "the CLI to run", 30_000);
      await assertOwnServerTokened(child.pid);
    } finally {
      child.kill("SIGINT");
    }
    const r = await output;
    assert.equal(r.code, 130, new TextDecoder().decode(r.stderr));
    assert.deepEqual(pidsMatching(tag), [], "the CLI ended with it");
  });
});

Deno.test("execTask() says the server shut down when its shutdown ends an attempt, and retries nothing", async () => {
  await inTmp(async (dir) => {
    const tag = uniqueTag();
    await withServer({ graceMs: 200 }, async (server) => {
      const running = run(dir, {
        task: `What is 2+2? [[hang]] ${tag}`,
        criteria: ["Contains 4"],
        server: server.url,
      });
      await waitFor(() => pidsMatching(tag).length > 0, "the CLI to run", 30_000);
      await server.shutdown();
      const r = await running;
      assert.equal(r.success, false);
      assert.equal(r.attempts.length, 1, r.lines.join("\n"));
      assert.equal(r.attempts[0].error_type, "start_error");
      assert.match(
        r.lines.join("\n"),
        /stopping: the server shut down while attempt 1 ran \(close 1001: server shutting down\)/,
      );
    });
    assert.deepEqual(pidsMatching(tag), []);
  });
});

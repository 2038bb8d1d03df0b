/**
 * One attempt of `ccx exec` (lib/exec/attempt.ts) and the choice among a round's attempts,
 * through execTask() against the stand-in Claude CLI, a real in-process server and real
 * processes: the marker, the evidence (files really written, the answer, never the CLI's error
 * text), the prompt and tools passed verbatim, the attempt's label, and the pick among instances.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { FAKE_CLAUDE, OverlapLog, withServer } from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";
import { inTmp, runExec as run, script } from "./_util/exec.ts";

Deno.test("execTask() does not take a claimed but missing file as met, and retries with a Write refinement", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, {
      task: "Create a config.py file with DATABASE_URL [[claim-write:config.py]]",
      criteria: ["File config.py exists"],
      retries: 1,
    });
    assert.equal(r.success, false);
    assert.match(r.result, /I created config.py successfully/);
    assert.equal(r.criteria[0].met, false);
    assert.match(r.criteria[0].evidence, /config\.py not found .*claims it was created/);
    assert.equal(r.attempts.length, 2);
    assert.deepEqual(r.attempts.map((a) => a.error_type), ["criteria_not_met", "criteria_not_met"]);
    assert.doesNotMatch(r.attempts[0].prompt, /IMPORTANT:/);
    assert.match(
      r.attempts[1].prompt,
      /\n\nIMPORTANT:\n- File config\.py was not created: create it with the Write tool\./,
    );
    assert.deepEqual(r.files_created, []);
    assert.ok(r.lines.some((l) => l.startsWith("retrying with a refined prompt")));
  });
});

Deno.test("execTask() labels each attempt's job for observers; the attempts share a run", async () => {
  await inTmp((dir) =>
    withServer({}, async (server) => {
      const watcher = await RawSession.open(server.url);
      await watcher.call(1, "watch", {});
      const task = "Create a config.py file\nwith DATABASE_URL [[claim-write:config.py]]";
      await run(dir, { task, criteria: ["File config.py exists"], retries: 1, server: server.url });
      const jobs = watcher.messages
        .filter((m) => m.method === "observe.job" && m.params?.event === "started")
        .map((m) => m.params?.job as { label: string; meta: Record<string, unknown> });
      assert.deepEqual(jobs.map((j) => j.label), [
        "Create a config.py file with DATABASE_URL [[claim-write:config.py]] · attempt 1",
        "Create a config.py file with DATABASE_URL [[claim-write:config.py]] · attempt 2",
      ]);
      assert.equal(jobs[0].meta.suite, "ccx exec");
      assert.match(String(jobs[0].meta.run_id), /^exec_[0-9a-f]{8}$/);
      assert.equal(jobs[1].meta.run_id, jobs[0].meta.run_id);
      assert.deepEqual(jobs.map((j) => j.meta.attempt), [1, 2]);
      assert.equal(jobs[0].meta.prompt, task);
      assert.match(String(jobs[1].meta.prompt), /^Create a config\.py file\n.*\n\nIMPORTANT:/s);
      await watcher.close();
    })
  );
});

Deno.test("execTask() takes a file really written as met, and lists it in files_created", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, {
      task:
        'Create out/config.py with DATABASE_URL [[write:out/config.py=DATABASE_URL = "sqlite:///test.db"\\n]]',
      criteria: ["File out/config.py exists", "out/config.py contains sqlite:///test.db"],
    });
    assert.equal(r.success, true, JSON.stringify(r.criteria));
    assert.deepEqual(r.criteria.map((c) => c.met), [true, true]);
    assert.deepEqual(r.files_created, [join(dir, "out", "config.py")]);
    assert.equal(
      await Deno.readTextFile(join(dir, "out", "config.py")),
      'DATABASE_URL = "sqlite:///test.db"\n',
    );
  });
});

Deno.test("execTask() never judges the CLI's error text as the answer", async () => {
  await inTmp(async (dir) => {
    // The 429 text contains "429" and "rate limit"; neither meets a criterion.
    const r = await run(dir, {
      task: "What is 2+2? [[rate-limit-429]]",
      criteria: ["Contains 429", "Contains rate limit"],
      limitRetries: 0,
    });
    assert.equal(r.success, false);
    assert.deepEqual(r.criteria.map((c) => c.met), [false, false]);
    assert.match(r.criteria[0].evidence, /the run failed \(rate_limit\): API rate limit \(429\)/);
    assert.equal(r.result, "");
  });
});

Deno.test("execTask() --tools none really gives the CLI no tools; the stall clock spares a silent startup", async () => {
  await inTmp(async (dir) => {
    const none = await run(dir, {
      task: "Create a.txt [[write:a.txt=x]]",
      tools: "none",
      retries: 0,
    });
    assert.equal(none.files_created.length, 0, "no Write tool, no file");
    // A 3 s silent startup against a 1 s stall timeout: only the startup grace (60 s) lets it
    // through; the lines after it come far faster than 1 s, even on a loaded machine.
    const slow = await run(dir, {
      task: "What is 2+2? [[startup:3000]]",
      stallTimeoutS: 1,
      startupGraceS: 60,
      retries: 0,
    });
    assert.equal(slow.success, true, slow.lines.join("\n"));
  });
});

Deno.test("execTask() records whether the transcript echoed the attempt's marker", async () => {
  await inTmp(async (dir) => {
    const seen = await run(dir, { task: "What is 3+4?" });
    assert.equal(seen.attempts[0].marker_seen, true);
    const unseen = await run(dir, { task: "What is 3+4? [[no-marker]]" });
    assert.equal(unseen.attempts[0].marker_seen, false);
    const markers = [seen, unseen].map((r) => r.attempts[0].prompt.slice(0, 45));
    assert.notEqual(markers[0], markers[1], "every attempt has its own marker");
  });
});

Deno.test("execTask() runs instances at once (each records its own start and end) and keeps one that ended well", async () => {
  await inTmp(async (dir) => {
    // The CLI is a wrapper that logs its start and end around the stand-in. Each instance waits
    // until all three have started, so three run at once or the wrapper gives up (exit 97).
    using log = new OverlapLog(3, 3);
    const claude = await script(dir, "claude", log.wrap("$$", `"${FAKE_CLAUDE}" "$@"`));
    const r = await run(dir, {
      claude,
      task: "What is 8+8? [[fail-first:1:exit:3]]",
      criteria: ["Contains 16"],
      instances: 3,
      pick: "FASTEST",
      retries: 0,
    });
    assert.equal(log.mostAtOnce(), 3, log.lines().join(", "));
    assert.equal(r.success, true);
    assert.equal(r.attempts.length, 3);
    assert.equal(r.attempts.filter((a) => a.exit_code === 3).length, 1, "one instance failed");
    assert.equal(new Set(r.attempts.map((a) => a.prompt)).size, 3, "each has its own marker");
    assert.match(r.result, /8 \+ 8 = 16/);
    assert.ok(
      r.lines.some((l) => /^picked attempt \d of 3 by FASTEST/.test(l)),
      r.lines.join("\n"),
    );
  });
});

Deno.test("execTask() picks by CONSENSUS on the answers, not on their differing markers", async () => {
  await inTmp(async (dir) => {
    // The instances differ: the first to start answers 5, the other two 4 (each echoes its own
    // marker). The pick must be one of the two that agree.
    const r = await run(dir, {
      task: "What is 2+2? [[fail-first:1:answer:2 + 2 = 5]]",
      instances: 3,
      pick: "CONSENSUS",
    });
    assert.equal(r.attempts.length, 3);
    assert.equal(r.result, "2 + 2 = 4");
    const picked = r.lines.find((l) => /^picked attempt \d of 3 by CONSENSUS/.test(l));
    assert.match(picked ?? r.lines.join("\n"), /\(agrees with 1 of 2 others/);
    assert.equal(r.success, true);
  });
});

Deno.test("execTask() keeps the instance closest to the criteria when none meets them all", async () => {
  await inTmp(async (dir) => {
    const r = await run(dir, {
      task: "What is 2+2?",
      criteria: ["Contains 4", "File nothing.txt exists"],
      instances: 2,
      pick: "MOST_DETAILED",
      retries: 0,
    });
    assert.equal(r.success, false);
    assert.equal(r.attempts.length, 2);
    assert.deepEqual(r.criteria.map((c) => c.met), [true, false]);
    assert.ok(r.lines.some((l) => /^picked attempt \d of 2 by most criteria met/.test(l)));
  });
});

Deno.test("execTask() passes a prompt with quotes, $ and backticks to Claude verbatim", async () => {
  await inTmp(async (dir) => {
    const hostile =
      `Echo "double" 'single' $HOME \${PATH} $(touch pwned) \`touch pwned2\` ; | & \\n end`;
    const r = await run(dir, { task: hostile, tools: "none" });
    assert.equal(r.success, true);
    assert.ok(r.result.includes(hostile), r.result);
    assert.ok(r.attempts[0].prompt.endsWith(hostile));
    for (const f of ["pwned", "pwned2"]) {
      await assert.rejects(Deno.stat(join(dir, f)), Deno.errors.NotFound);
    }
  });
});

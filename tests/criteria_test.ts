import assert from "node:assert/strict";
import { join } from "node:path";
import {
  classifyCriterion,
  type Evidence,
  judgeAll,
  judgeCriterion,
  parseTaskRequest,
  refinePrompt,
} from "../lib/verdict/criteria.ts";

const SEED_EXAMPLE = "Use your ./src/cc_executor/prompts/cc_execute.md to execute the task: " +
  'Create a config.py file with DATABASE_URL="sqlite:///test.db". Expect a timeout of 45 seconds. ' +
  "Evaluate the response based on: 1) File config.py exists, 2) Contains DATABASE_URL. " +
  "If the task fails, retry with more specific instructions.";

Deno.test("parseTaskRequest() parses the seed's example", () => {
  assert.deepEqual(parseTaskRequest(SEED_EXAMPLE), {
    task: 'Create a config.py file with DATABASE_URL="sqlite:///test.db"',
    timeoutS: 45,
    criteria: ["File config.py exists", "Contains DATABASE_URL"],
    retry: true,
    retryHint: "more specific instructions",
  });
});

Deno.test("parseTaskRequest() parses the seed's example laid out one directive per line", () => {
  const text = "Use your ./src/cc_executor/prompts/cc_execute.md to execute the task: " +
    'Create a config.py file with DATABASE_URL="sqlite:///test.db".\n' +
    "Expect a timeout of 45 seconds.\n" +
    "Evaluate the response based on: 1) File config.py exists, 2) Contains DATABASE_URL\n" +
    "If the task fails, retry with more specific instructions.\n";
  assert.deepEqual(parseTaskRequest(text), parseTaskRequest(SEED_EXAMPLE));
});

Deno.test("parseTaskRequest() returns a plain task whole", () => {
  assert.deepEqual(parseTaskRequest("  What is 2+2? Answer briefly.  "), {
    task: "What is 2+2? Answer briefly.",
    criteria: [],
    retry: false,
  });
});

Deno.test("parseTaskRequest() reads timeouts in minutes, seconds and units glued to the number", () => {
  assert.equal(parseTaskRequest("Write a haiku.\nTimeout: 2 minutes").timeoutS, 120);
  assert.equal(parseTaskRequest("Write a haiku. Timeout of 90s.").timeoutS, 90);
  assert.equal(parseTaskRequest("Summarize the repo, timeout of 90s.").timeoutS, 90);
  assert.equal(parseTaskRequest("Summarize the repo (timeout: 1.5m)").timeoutS, 90);
  assert.equal(parseTaskRequest("Summarize the repo. Use a timeout of 1 hour.").timeoutS, 3600);
  assert.deepEqual(parseTaskRequest("Summarize the repo, timeout of 90s."), {
    task: "Summarize the repo",
    timeoutS: 90,
    criteria: [],
    retry: false,
  });
});

Deno.test("parseTaskRequest() leaves a timeout that belongs to the task in the task", () => {
  const r = parseTaskRequest(
    "Write a Python script whose HTTP call has a timeout of 5 seconds. Expect a timeout of 60 seconds.",
  );
  assert.equal(r.task, "Write a Python script whose HTTP call has a timeout of 5 seconds");
  assert.equal(r.timeoutS, 60);
});

Deno.test("parseTaskRequest() leaves the timeout to the estimate on 'Redis estimate'", () => {
  const r = parseTaskRequest(
    "Run the tests.\nTimeout: Redis estimate\nRetry strategy: increase timeout",
  );
  assert.deepEqual(r, {
    task: "Run the tests",
    criteria: [],
    retry: true,
    retryHint: "increase timeout",
  });
});

Deno.test("parseTaskRequest() reads bulleted and numbered criteria lists under a header", () => {
  const r = parseTaskRequest(
    "Write a haiku about the sea.\nSuccess criteria:\n- Mentions the sea\n- No errors\n\nDo not retry.",
  );
  assert.deepEqual(r, {
    task: "Write a haiku about the sea",
    criteria: ["Mentions the sea", "No errors"],
    retry: false,
  });
  const n = parseTaskRequest(
    "Task: Create hello.py printing hi.\nCriteria:\n1. File hello.py exists\n2. Output contains hi\n" +
      "   when it runs\nKeep it short.",
  );
  assert.deepEqual(n.criteria, ["File hello.py exists", "Output contains hi when it runs"]);
  assert.equal(n.task, "Create hello.py printing hi.\nKeep it short");
});

Deno.test("parseTaskRequest() reads inline '1.' lists and ';' lists", () => {
  assert.deepEqual(
    parseTaskRequest("Do it. Evaluate based on: 1. File a.txt exists 2. Exit code 0").criteria,
    ["File a.txt exists", "Exit code 0"],
  );
  assert.deepEqual(
    parseTaskRequest("Do it.\nCriteria: No errors; Contains done").criteria,
    ["No errors", "Contains done"],
  );
});

Deno.test("parseTaskRequest() keeps task sentences that merely look like directives", () => {
  const text = "Retry with exponential backoff when the API answers 429. Evaluate using pytest.";
  assert.deepEqual(parseTaskRequest(text), { task: text, criteria: [], retry: false });
});

Deno.test("classifyCriterion() recognizes each kind of check", () => {
  assert.deepEqual(classifyCriterion("File config.py exists"), {
    kind: "file_exists",
    path: "config.py",
    fileOnly: true,
  });
  assert.equal(classifyCriterion("out/report.md exists").kind, "file_exists");
  assert.equal(classifyCriterion("Creates `app.js`").kind, "file_exists");
  assert.equal(classifyCriterion("file notes.txt is created").kind, "file_exists");
  assert.deepEqual(classifyCriterion("Contains DATABASE_URL"), {
    kind: "contains",
    target: "DATABASE_URL",
  });
  assert.deepEqual(classifyCriterion("config.py contains DATABASE_URL"), {
    kind: "contains",
    target: "DATABASE_URL",
    file: "config.py",
  });
  assert.deepEqual(classifyCriterion('Output contains "No errors"'), {
    kind: "contains",
    target: "No errors",
  });
  assert.equal(classifyCriterion("No errors").kind, "no_errors");
  assert.equal(classifyCriterion("Runs without errors").kind, "no_errors");
  assert.deepEqual(classifyCriterion("Exit code 3"), { kind: "exit_code", code: 3 });
  assert.deepEqual(classifyCriterion("Output matches /\\d+ passed/i"), {
    kind: "matches",
    source: "\\d+ passed",
    flags: "i",
  });
  assert.deepEqual(classifyCriterion("The response explains recursion and base cases"), {
    kind: "words",
    words: ["recursion", "base", "cases"],
  });
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ccx-criteria-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function evidence(cwd: string, over: Partial<Evidence> = {}): Evidence {
  return {
    answer: "",
    transcriptText: "",
    toolUses: [],
    isError: false,
    exitCode: 0,
    status: "completed",
    cwd,
    filesWritten: [],
    ...over,
  };
}

Deno.test("judgeCriterion() does not believe a claimed file that is not on disk", async () => {
  await withDir(async (dir) => {
    const claim = "I have created config.py with DATABASE_URL set.";
    const j = await judgeCriterion(
      "File config.py exists",
      evidence(dir, { answer: claim, transcriptText: claim }),
    );
    assert.equal(j.met, false);
    assert.match(j.evidence, /config\.py not found \(the transcript claims it was created\)/);
  });
});

Deno.test("judgeCriterion() finds a file the run wrote, with its size", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "config.py");
    await Deno.writeTextFile(path, 'DATABASE_URL = "sqlite:///test.db"\n');
    const ev = evidence(dir, { filesWritten: [path] });
    const j = await judgeCriterion("File config.py exists", ev);
    assert.equal(j.met, true);
    assert.equal(j.evidence, `${path} exists (35 bytes)`);
    assert.equal((await judgeCriterion("Creates config.py containing sqlite", ev)).met, true);
    assert.equal((await judgeCriterion("Creates config.py containing postgres", ev)).met, false);
  });
});

Deno.test("judgeCriterion() says where a missing file was written instead", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(join(dir, "elsewhere"));
    const other = join(dir, "elsewhere", "config.py");
    await Deno.writeTextFile(other, "x = 1\n");
    const j = await judgeCriterion(
      "File config.py exists",
      evidence(dir, { filesWritten: [other] }),
    );
    assert.equal(j.met, false);
    assert.match(j.evidence, /the run wrote .*elsewhere\/config\.py instead/);
  });
});

Deno.test("judgeCriterion() finds Contains in a file the run wrote when the answer lacks it", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "config.py");
    await Deno.writeTextFile(path, 'DATABASE_URL = "sqlite:///test.db"\n');
    const ev = evidence(dir, { answer: "Done, the file is in place.", filesWritten: [path] });
    const j = await judgeCriterion("Contains DATABASE_URL", ev);
    assert.equal(j.met, true);
    assert.equal(j.evidence, `"DATABASE_URL" found in ${path}`);
    const miss = await judgeCriterion("Contains REDIS_URL", ev);
    assert.equal(miss.met, false);
    assert.match(
      miss.evidence,
      /not found in the final answer or in the 1 file\(s\) the run wrote/,
    );
    const inAnswer = await judgeCriterion("Contains file is in place", ev);
    assert.equal(inAnswer.evidence, '"file is in place" found in the final answer');
  });
});

Deno.test("judgeCriterion() checks 'P contains X' in that file only", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "a.txt"), "alpha\n");
    const ev = evidence(dir, { answer: "beta" });
    assert.equal((await judgeCriterion("a.txt contains alpha", ev)).met, true);
    assert.equal((await judgeCriterion("a.txt contains beta", ev)).met, false);
    assert.match((await judgeCriterion("b.txt contains beta", ev)).evidence, /not found/);
  });
});

Deno.test("judgeCriterion() No errors fails on isError, exit code, status or a traceback", async () => {
  await withDir(async (dir) => {
    const ok = await judgeCriterion(
      "No errors",
      evidence(dir, { answer: "It handles the exception." }),
    );
    assert.equal(ok.met, true);
    const cases: [Partial<Evidence>, RegExp][] = [
      [{ isError: true }, /error result/],
      [{ exitCode: 1, status: "failed" }, /exit code 1; status failed/],
      [{ exitCode: null, status: "timeout" }, /status timeout/],
      [
        { answer: "Traceback (most recent call last):\n  ...\nNameError: x" },
        /Traceback \(most recent call last\), NameError:/,
      ],
      [{ stderr: "Error: boom" }, /stderr shows Error:/],
    ];
    for (const [over, re] of cases) {
      const j = await judgeCriterion("No errors", evidence(dir, over));
      assert.equal(j.met, false, JSON.stringify(over));
      assert.match(j.evidence, re);
    }
  });
});

Deno.test("judgeCriterion() checks exit codes and regular expressions", async () => {
  await withDir(async (dir) => {
    const ev = evidence(dir, { exitCode: 2, answer: "12 passed, 0 failed" });
    assert.equal((await judgeCriterion("Exit code 2", ev)).met, true);
    assert.equal((await judgeCriterion("Exit code 0", ev)).met, false);
    assert.equal((await judgeCriterion("Output matches /\\d+ passed/", ev)).met, true);
    assert.equal((await judgeCriterion("Output matches /^\\d+ failed/", ev)).met, false);
  });
});

Deno.test("judgeCriterion() judges other criteria by their significant words (60%)", async () => {
  await withDir(async (dir) => {
    const ev = evidence(dir, {
      answer: "Recursion needs a base case; each call shrinks the input.",
    });
    const met = await judgeCriterion("The response explains recursion and base cases", ev);
    assert.equal(met.met, true);
    const unmet = await judgeCriterion("Discusses memoization, tail calls and stack depth", ev);
    assert.equal(unmet.met, false);
    assert.match(unmet.evidence, /missing: discusses, memoization, tail, stack, depth/);
    const prefixOnly = await judgeCriterion(
      "Talks about tail recursion",
      evidence(dir, { answer: "In detail: recursion." }),
    );
    assert.match(prefixOnly.evidence, /1\/3 significant words.*missing: talks, tail$/);
  });
});

Deno.test("judgeAll() judges every criterion in order", async () => {
  await withDir(async (dir) => {
    const js = await judgeAll(["Exit code 0", "File none.txt exists"], evidence(dir));
    assert.deepEqual(js.map((j) => [j.criterion, j.met]), [
      ["Exit code 0", true],
      ["File none.txt exists", false],
    ]);
  });
});

Deno.test("refinePrompt() names each failure and what to do, after an IMPORTANT: line", () => {
  const p = refinePrompt("Create config.py", [
    { criterion: "File config.py exists", evidence: "not found" },
    { criterion: "Contains DATABASE_URL", evidence: "not found" },
  ]);
  assert.equal(
    p,
    "Create config.py\n\nIMPORTANT:\n" +
      "- File config.py was not created: create it with the Write tool.\n" +
      "- The answer did not contain DATABASE_URL: include it.",
  );
});

Deno.test("refinePrompt() explains a token-limit failure first and does not stack refinements", () => {
  const once = refinePrompt("Explain X", [], { kind: "token_limit" });
  assert.match(
    once,
    /^Explain X\n\nIMPORTANT:\n- Your previous answer exceeded the output token limit: answer more briefly/,
  );
  const twice = refinePrompt(once, [{ criterion: "Exit code 0", evidence: "exit code 1" }], {
    kind: "timeout",
  });
  assert.equal(twice.match(/IMPORTANT:/g)?.length, 1);
  assert.match(twice, /timed out/);
  assert.match(twice, /exit code 0 \(got exit code 1\)/);
  assert.doesNotMatch(twice, /token limit/);
});

Deno.test("refinePrompt() returns the prompt unchanged when nothing failed", () => {
  assert.equal(refinePrompt("Do it", []), "Do it");
});

Deno.test("parseTaskRequest() finds the seed's criteria header anywhere, and flags one it cannot read", () => {
  const found = parseTaskRequest(
    "What is 2+2? ANSWER=4 Evaluate the response based on: 1) Contains 4",
  );
  assert.deepEqual(found.criteria, ["Contains 4"]);
  assert.equal(found.task, "What is 2+2? ANSWER=4");
  assert.equal(found.unparsedCriteria, undefined);
  const empty = parseTaskRequest("What is 2+2? Evaluate the response based on:");
  assert.deepEqual(empty.criteria, []);
  assert.equal(empty.unparsedCriteria, "Evaluate the response based on:");
});

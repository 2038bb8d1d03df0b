/**
 * Self-check of the stand-in Claude CLI (tests/fixtures/claude): it behaves as
 * ../shared/CLAUDE_CLI.md says the real CLI does, where ccx depends on it (texts, exit codes,
 * stdout/stderr placement, stream fields, signals, stdin), and its directives do what
 * tests/fixtures/README.md promises. These tests check the fixture, not ccx: ccx's own tests
 * (classify_test.ts, exec_test.ts, runner_test.ts, …) rely on it.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { buildClaudeArgv } from "../lib/claude/argv.ts";
import { classifyFailure } from "../lib/claude/classify.ts";
import { detectClaudeLimit } from "../lib/claude/limits.ts";
import {
  ClaudeStreamParser,
  type ClaudeTranscript,
  modelText,
  parseClaudeOutput,
} from "../lib/claude/stream.ts";

import { KEY_ENV } from "./_util/helpers.ts";

const FAKE = fileURLToPath(new URL("./fixtures/claude", import.meta.url));

// ---------------------------------------------------------------------------------------------
// End to end: the stand-in CLI as a real process
// ---------------------------------------------------------------------------------------------

interface Run {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  transcript: ClaudeTranscript;
}

async function run(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<Run> {
  const cmd = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd,
    env: { FAKE_CLAUDE_MODE: "", IS_SANDBOX: "1", ...KEY_ENV, ...opts.env },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  let out: Deno.CommandOutput;
  if (opts.stdin === undefined) {
    out = await cmd.output();
  } else {
    const child = cmd.spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
    out = await child.output();
  }
  const stdout = new TextDecoder().decode(out.stdout);
  return {
    code: out.code,
    signal: out.signal,
    stdout,
    stderr: new TextDecoder().decode(out.stderr),
    transcript: parseClaudeOutput(stdout),
  };
}

function claude(prompt: string, extra: Partial<Parameters<typeof buildClaudeArgv>[0]> = {}) {
  return buildClaudeArgv({ claude: FAKE, prompt, skipPermissions: true, ...extra });
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_claude_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Reads stdout until `pattern` appears; returns what was read. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  pattern: RegExp,
): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
    text += dec.decode(value, { stream: true });
  }
  return text;
}

Deno.test("fake claude: --version prints the version like the real CLI", async () => {
  const r = await run([FAKE, "--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "2.1.197 (Claude Code)\n");
});

Deno.test("fake claude: stream-json without --verbose is refused as by the real CLI", async () => {
  const r = await run([FAKE, "-p", "hi", "--output-format", "stream-json"]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    "Error: When using --print, --output-format=stream-json requires --verbose\n",
  );
});

Deno.test("fake claude: answers arithmetic in stream-json, and the envelope alone would fool a pattern", async () => {
  const r = await run(claude("What is 2+2?"));
  assert.equal(r.code, 0);
  assert.equal(r.transcript.init?.permissionMode, "bypassPermissions");
  assert.equal(r.transcript.result?.text, "2 + 2 = 4");
  assert.equal(modelText(r.stdout), "2 + 2 = 4");
  const envelopeOnly = r.stdout.replaceAll("2 + 2 = 4", "");
  assert.ok(envelopeOnly.includes("4"), "uuids and token counts contain 4");
  assert.equal(classifyFailure(r.transcript, { exitCode: r.code, status: "completed" }), undefined);
  for (const line of r.stdout.trimEnd().split("\n")) assert.doesNotThrow(() => JSON.parse(line));
});

Deno.test("fake claude: answers the seed's calculation list and echoes the marker", async () => {
  const r = await run(claude(
    "[marker:LOCAL_simple_3_20250627_120000] Calculate these 10 math problems quickly: 15+27, " +
      "83-46, 12*9, 144/12, 2^8, sqrt(169), 15% of 200, 3! (factorial), fibonacci(10), " +
      "prime factors of 60",
  ));
  const text = modelText(r.stdout);
  for (
    const p of ["42", "37", "108", "256", "13", "55", "[marker:LOCAL_simple_3_20250627_120000]"]
  ) {
    assert.ok(text.includes(p), `${p} in ${text}`);
  }
  const quiet = await run(claude("What is 2+2? [marker:M1] [[no-marker]]"));
  assert.equal(quiet.transcript.result?.text, "2 + 2 = 4");
});

Deno.test("fake claude: canned answers carry the obvious keywords; text and json formats", async () => {
  const code = await run(claude("What is a Python function to reverse a string?"));
  assert.match(modelText(code.stdout), /def reverse_string\(s\):\s+return s\[::-1\]/);
  const text = await run([FAKE, "-p", "What is the 10th Fibonacci number?"]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /^The 10th Fibonacci number is 55\./);
  const json = await run([
    FAKE,
    "-p",
    "What is a quick chicken and rice recipe?",
    "--output-format",
    "json",
  ]);
  const obj = JSON.parse(json.stdout);
  assert.equal(obj.type, "result");
  assert.match(obj.result, /chicken/i);
  assert.match(obj.result, /rice/i);
});

Deno.test("fake claude: a prompt with quotes, $ and backticks arrives untouched", async () => {
  const prompt = `What is "it's" $HOME \`whoami\` $(id)?`;
  const r = await run(claude(prompt));
  assert.ok(modelText(r.stdout).includes(prompt), modelText(r.stdout));
  const dashed = await run(claude("--version of what?"));
  assert.equal(dashed.code, 0);
  assert.ok(modelText(dashed.stdout).includes("--version of what?"));
});

Deno.test("fake claude: [[write]] really writes the file with Write tool_use and tool_result lines", async () => {
  await withTempDir(async (dir) => {
    const r = await run(claude("Create it [[write:sub/hello.txt=hi\\nthere]]"), { cwd: dir });
    assert.equal(r.code, 0);
    const abs = join(dir, "sub/hello.txt");
    assert.equal(await Deno.readTextFile(abs), "hi\nthere");
    assert.deepEqual(r.transcript.toolUses.map((u) => [u.name, u.input]), [
      ["Write", { file_path: abs, content: "hi\nthere" }],
    ]);
    assert.deepEqual(r.transcript.toolResults, [{
      toolUseId: r.transcript.toolUses[0].id,
      content: `File created successfully at: ${abs}`,
      isError: false,
    }]);
    assert.match(r.transcript.text, /I created sub\/hello\.txt/);
  });
});

Deno.test("fake claude: without permission the Write is denied, as by the real CLI", async () => {
  await withTempDir(async (dir) => {
    const r = await run(claude("Create it [[write:a.txt=x]]", { skipPermissions: false }), {
      cwd: dir,
    });
    assert.equal(r.code, 0);
    assert.equal(await exists(join(dir, "a.txt")), false);
    assert.equal(r.transcript.toolResults[0].isError, true);
    assert.match(r.transcript.toolResults[0].content, /requested permissions to write/);
    const allowed = await run(
      [
        ...claude("Create it [[write:a.txt=x]]", { skipPermissions: false }),
        "--allowedTools",
        "Write",
      ],
      { cwd: dir },
    );
    assert.equal(allowed.transcript.toolResults[0].isError, false);
    assert.equal(await Deno.readTextFile(join(dir, "a.txt")), "x");
  });
});

Deno.test("fake claude: [[claim-write]] claims a file it never wrote", async () => {
  await withTempDir(async (dir) => {
    const r = await run(claude("Make config.py [[claim-write:config.py]]"), { cwd: dir });
    assert.equal(r.code, 0);
    assert.match(r.transcript.text, /I created config\.py/);
    assert.deepEqual(r.transcript.toolUses, []);
    assert.equal(await exists(join(dir, "config.py")), false);
  });
});

Deno.test("fake claude: [[usage-limit:+S]] exits 1 with a parseable reset time", async () => {
  const before = Math.floor(Date.now() / 1000);
  const r = await run(claude("What is 2+2? [[usage-limit:+3600]]"));
  assert.equal(r.code, 1);
  assert.equal(r.transcript.result?.isError, true);
  const limit = detectClaudeLimit(r.stdout);
  assert.equal(limit?.kind, "rate_limit");
  assert.ok(limit!.resetTimestamp! >= before + 3600 && limit!.resetTimestamp! <= before + 3700);
  const f = classifyFailure(r.transcript, { exitCode: r.code, status: "failed" });
  assert.equal(f?.kind, "rate_limit");
  assert.equal(f?.resetTimestamp, limit?.resetTimestamp);
  const fixed = await run(claude("[[usage-limit:1751299200]]"));
  assert.equal(detectClaudeLimit(fixed.stdout)?.resetTimestamp, 1751299200);
});

Deno.test("fake claude: [[rate-limit-429]], [[token-limit]] and [[auth-fail]] are classified", async () => {
  const cases: [string, string][] = [
    ["[[rate-limit-429]]", "rate_limit"],
    ["[[token-limit]]", "token_limit"],
    ["[[auth-fail]]", "auth"],
  ];
  const runs = await Promise.all(cases.map(([d]) => run(claude(`What is 2+2? ${d}`))));
  runs.forEach((r, i) => {
    assert.equal(r.code, 1, cases[i][0]);
    const f = classifyFailure(r.transcript, { exitCode: r.code, status: "failed" });
    assert.equal(f?.kind, cases[i][1], cases[i][0]);
  });
  assert.equal(detectClaudeLimit(runs[0].stdout)?.errorType, "rate_limit_error");
  assert.equal(detectClaudeLimit(runs[1].stdout)?.kind, "token_limit");
  assert.equal(detectClaudeLimit(runs[2].stdout), undefined);
});

Deno.test("fake claude: [[crash]] prints a stack trace and no result", async () => {
  const r = await run(claude("What is 2+2? [[crash]]"));
  assert.equal(r.code, 1);
  assert.equal(r.transcript.result, undefined);
  assert.match(r.stderr, /TypeError: .*\n\s+at /);
  const f = classifyFailure(r.transcript, { exitCode: r.code, status: "failed", stderr: r.stderr });
  assert.equal(f?.kind, "crash");
});

Deno.test("fake claude: [[max-turns]] and a real --max-turns both end in error_max_turns", async () => {
  const forced = await run(claude("What is 2+2? [[max-turns]]"));
  assert.equal(forced.code, 1);
  assert.equal(forced.transcript.result?.subtype, "error_max_turns");
  assert.equal(
    classifyFailure(forced.transcript, { exitCode: 1, status: "failed" })?.kind,
    "max_turns",
  );
  await withTempDir(async (dir) => {
    const natural = await run(claude("[[write:a.txt=1]] [[write:b.txt=2]]", { maxTurns: 1 }), {
      cwd: dir,
    });
    assert.equal(natural.code, 1);
    assert.equal(natural.transcript.result?.subtype, "error_max_turns");
    assert.equal(await exists(join(dir, "a.txt")), true);
    assert.equal(await exists(join(dir, "b.txt")), false);
  });
});

Deno.test("fake claude: [[exit:N]], [[answer]], [[lines]] and FAKE_CLAUDE_MODE", async () => {
  const r = await run(claude("q [[exit:7]] [[answer:exactly this]] [[lines:3]] [[delay:1]]"));
  assert.equal(r.code, 7);
  assert.equal(r.transcript.result?.text, "exactly this");
  assert.equal(r.transcript.assistantText.length, 4);
  const env = await run(claude("What is 2+2?"), {
    env: { FAKE_CLAUDE_MODE: "answer:from-env startup:1" },
  });
  assert.equal(env.transcript.result?.text, "from-env");
  const both = await run(claude("q [[answer:prompt wins]]"), {
    env: { FAKE_CLAUDE_MODE: "[[answer:env]] [[silent:1]]" },
  });
  assert.equal(both.transcript.result?.text, "prompt wins");
});

Deno.test("fake claude: reads the prompt from stdin only when none is given, and [[stdin]] reads input", async () => {
  const piped = await run([FAKE, "-p"], { stdin: "What is 6*7?" });
  assert.equal(piped.stdout, "6 * 7 = 42\n");
  const withInput = await run([FAKE, "-p", "Summarize [[stdin]] [[no-marker]]"], { stdin: "abc" });
  assert.match(withInput.stdout, /Input received \(3 characters\):\nabc/);
  const none = await run([FAKE, "-p"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /Input must be provided/);
});

/** Starts the stand-in on `prompt` with stdin closed, stdout piped and stderr dropped. */
function spawnStandIn(prompt: string, opts: { detached?: boolean } = {}): Deno.ChildProcess {
  return new Deno.Command(FAKE, {
    args: claude(prompt).slice(1),
    env: { FAKE_CLAUDE_MODE: "", IS_SANDBOX: "1", ...KEY_ENV },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    ...opts,
  }).spawn();
}

Deno.test("fake claude: output streamed chunk by chunk parses like the whole output", async () => {
  const child = spawnStandIn("What is 2+2? [[lines:200]]");
  const parser = new ClaudeStreamParser();
  const dec = new TextDecoder();
  let raw = "";
  let events = 0;
  for await (const chunk of child.stdout) {
    const text = dec.decode(chunk, { stream: true });
    raw += text;
    events += parser.push(text).length;
  }
  events += parser.end().length;
  assert.equal((await child.status).code, 0);
  assert.equal(events, 203);
  assert.deepEqual(parser.transcript(), parseClaudeOutput(raw));
});

Deno.test("fake claude: [[hang]] prints init, then waits until the test kills it", async () => {
  const child = spawnStandIn("What is 2+2? [[hang]]");
  const reader = child.stdout.getReader();
  try {
    const text = await readUntil(reader, /\n/);
    assert.equal(JSON.parse(text).subtype, "init");
    child.kill("SIGTERM");
    const status = await child.status;
    assert.deepEqual(
      [status.code, status.signal],
      [143, null],
      "it exits by itself, as the real CLI",
    );
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await reader.cancel();
    await child.status;
  }
});

Deno.test("fake claude: [[grandchild]] leaves a SIGTERM-proof grandchild that only a group SIGKILL ends", async () => {
  const child = spawnStandIn("What is 2+2? [[grandchild]]", { detached: true });
  const reader = child.stdout.getReader();
  let grandchild = 0;
  try {
    const text = await readUntil(reader, /grandchild pid (\d+)/);
    grandchild = Number(text.match(/grandchild pid (\d+)/)![1]);
    assert.ok(await alive(grandchild));
    Deno.kill(-child.pid, "SIGTERM");
    // Both ignore SIGTERM: give them a moment to (not) die.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await alive(child.pid), "the CLI ignores SIGTERM");
    assert.ok(await alive(grandchild), "the grandchild ignores SIGTERM");
    Deno.kill(-child.pid, "SIGKILL");
    assert.equal((await child.status).signal, "SIGKILL");
    for (let i = 0; i < 100 && await alive(grandchild); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await alive(grandchild), false);
  } finally {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* already gone */ }
    await reader.cancel();
    await child.status;
  }
});

Deno.test("fake claude: [[fail-first:N:DIRECTIVE]] fails N times per prompt, then succeeds", async () => {
  await withTempDir(async (state) => {
    const env = { FAKE_CLAUDE_STATE: state };
    const prompt = "What is 2+2? [[fail-first:2:usage-limit:+60]]";
    const kinds: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      // Retries carry a new marker and a refinement; it is still the same prompt.
      const p = i === 0
        ? prompt
        : `[marker:RETRY_${i}] ${prompt}\n\nIMPORTANT: Include '4' in your answer`;
      const r = await run(claude(p), { env });
      kinds.push(
        classifyFailure(r.transcript, { exitCode: r.code, status: r.code ? "failed" : "completed" })
          ?.kind,
      );
    }
    assert.deepEqual(kinds, ["rate_limit", "rate_limit", undefined]);
    // Another prompt has its own count.
    const other = await run(claude("What is 3+3? [[fail-first:1:exit:9]]"), { env });
    assert.equal(other.code, 9);
  });
});

Deno.test("fake claude: a failing attempt does not write; the retry does", async () => {
  await withTempDir(async (dir) => {
    const env = { FAKE_CLAUDE_STATE: join(dir, "state") };
    const prompt =
      "Create config.py [[fail-first:1:claim-write:config.py]] [[write:config.py=X=1]]";
    const first = await run(claude(prompt), { cwd: dir, env });
    assert.match(first.transcript.text, /I created config\.py/);
    assert.equal(await exists(join(dir, "config.py")), false);
    const second = await run(claude(prompt), { cwd: dir, env });
    assert.equal(second.code, 0);
    assert.equal(await Deno.readTextFile(join(dir, "config.py")), "X=1");
  });
});

// ---------------------------------------------------------------------------------------------
// What CLAUDE_CLI.md measured on the real CLI
// ---------------------------------------------------------------------------------------------

Deno.test("stand-in: as root it refuses to skip permissions unless IS_SANDBOX is exactly 1", {
  ignore: Deno.uid() !== 0,
}, async () => {
  for (const value of [undefined, "true"]) {
    const r = await run(claude("What is 2+2?"), {
      env: value === undefined ? { IS_SANDBOX: "" } : { IS_SANDBOX: value },
    });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n",
    );
  }
  const results = await run(claude("What is 2+2?"), {
    env: { IS_SANDBOX: "", CLAUDE_CODE_STARTUP_FAILURE_RESULTS: "1" },
  });
  assert.equal(results.transcript.result?.subtype, "error_during_execution");
  assert.equal(results.transcript.result?.startupFailureReason, "bypass_root");
  assert.match(results.transcript.result?.errors[0] ?? "", /root\/sudo/);
  const sandbox = await run(claude("What is 2+2?"), { env: { IS_SANDBOX: "1" } });
  assert.equal(sandbox.code, 0);
});

Deno.test("stand-in: --allowedTools none keeps every tool; --tools restricts them", async () => {
  const none = await run([...claude("What is 2+2?"), "--allowedTools", "none"]);
  // 24 in 2.1.197, as the real CLI lists them (claude_real_test.ts compares the two lists).
  assert.equal(none.transcript.init?.tools.length, 24);
  const empty = await run(claude("What is 2+2?", { tools: "none" }));
  assert.deepEqual(empty.transcript.init?.tools, []);
  const two = await run(claude("What is 2+2?", { tools: ["Write", "Read"] }));
  assert.deepEqual(two.transcript.init?.tools, ["Read", "Write"]);
});

Deno.test("stand-in: a prompt after --allowedTools is swallowed, as by the real CLI", async () => {
  const r = await run([FAKE, "-p", "--allowedTools", "Write", "What is two plus two?"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /"What is two plus two\?" was read as a value of --allowedTools/);
  assert.match(r.stderr, /Input must be provided either through stdin or as a prompt argument/);
});

Deno.test("stand-in: API errors print the real texts on stdout with their structured fields", async () => {
  // directive, result text, api_error_status, the assistant line's error, api_error_type
  const cases: [string, RegExp, number | null, string, string | undefined][] = [
    [
      "[[auth-fail]]",
      /^Invalid API key · Fix external API key$/,
      401,
      "authentication_failed",
      "authentication_error",
    ],
    [
      "[[auth-403]]",
      /^Failed to authenticate\. API Error: 403 /,
      403,
      "authentication_failed",
      "permission_error",
    ],
    [
      "[[rate-limit-429]]",
      /^API Error: Request rejected \(429\) · /,
      429,
      "rate_limit",
      "rate_limit_error",
    ],
    ["[[overloaded]]", /^API Error: 529 Overloaded\./, 529, "server_error", "overloaded_error"],
    [
      "[[server-error]]",
      /^API Error: 500 Internal server error\./,
      500,
      "server_error",
      "api_error",
    ],
    [
      "[[prompt-too-long]]",
      /^Prompt is too long · /,
      400,
      "invalid_request",
      "invalid_request_error",
    ],
    [
      "[[network:ENOTFOUND]]",
      /Can't reach the API server .*\(ENOTFOUND\)$/,
      null,
      "connection_failed",
      undefined,
    ],
    [
      "[[network:ECONNREFUSED]]",
      /^API Error: Connection refused .*\(ECONNREFUSED\)$/,
      null,
      "connection_failed",
      undefined,
    ],
    [
      "[[not-logged-in]]",
      /^Not logged in · Please run \/login$/,
      null,
      "authentication_failed",
      undefined,
    ],
    [
      "[[request-timeout]]",
      /^Request timed out\. No data arrived for more than 5 minutes/,
      null,
      "unknown",
      undefined,
    ],
    [
      "[[stream-truncated]]",
      /^API Error: Connection to the API was lost \(StreamTruncated\)\. /,
      null,
      "server_error",
      undefined,
    ],
  ];
  const runs = await Promise.all(cases.map(([d]) => run(claude(`What is 2+2? ${d}`))));
  runs.forEach((r, i) => {
    const [d, text, status, error, type] = cases[i];
    assert.equal(r.code, 1, d);
    assert.equal(r.stderr, "", d);
    assert.equal(r.transcript.result?.subtype, "success", d);
    assert.equal(r.transcript.result?.isError, true, d);
    assert.match(r.transcript.result?.text ?? "", text, d);
    assert.equal(r.transcript.result?.apiErrorStatus ?? null, status, d);
    assert.equal(r.transcript.result?.apiErrorType, type, d);
    assert.deepEqual(r.transcript.assistantErrors, [error], d);
  });
});

/** An environment with no credentials at all: no key, no token, an empty HOME. */
async function withoutCredentials<T>(fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const home = await Deno.makeTempDir({ prefix: "ccx_no_login_" });
  try {
    return await fn({
      ANTHROPIC_API_KEY: "",
      ANTHROPIC_AUTH_TOKEN: "",
      CLAUDE_CODE_OAUTH_TOKEN: "",
      CLAUDE_CONFIG_DIR: "",
      HOME: home,
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test("stand-in: without a key or a login it says Not logged in and exits 1, as the real CLI", async () => {
  await withoutCredentials(async (env) => {
    const r = await run(claude("What is 2+2? [[write:x.txt=y]]"), { env, cwd: env.HOME });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "");
    assert.equal(JSON.parse(r.stdout.split("\n")[0]).apiKeySource, "none");
    assert.deepEqual(r.transcript.assistantErrors, ["authentication_failed"]);
    assert.equal(r.transcript.result?.subtype, "success");
    assert.equal(r.transcript.result?.isError, true);
    assert.equal(r.transcript.result?.text, "Not logged in · Please run /login");
    assert.equal(r.transcript.toolUses.length, 0, "no tool ran");
    assert.equal(await exists(join(env.HOME, "x.txt")), false, "nothing was written");
    // In text format, the same sentence on stdout.
    const text = await run([FAKE, "-p", "What is 2+2?"], { env });
    assert.deepEqual([text.code, text.stdout], [1, "Not logged in · Please run /login\n"]);

    // A key (any non-empty one) or a login file is enough.
    const keyed = await run(claude("What is 2+2?"), { env: { ...env, ...KEY_ENV } });
    assert.equal(keyed.code, 0, keyed.stdout);
    assert.equal(keyed.transcript.result?.text, "2 + 2 = 4");
    assert.equal(JSON.parse(keyed.stdout.split("\n")[0]).apiKeySource, "ANTHROPIC_API_KEY");
    await Deno.mkdir(join(env.HOME, ".claude"));
    await Deno.writeTextFile(join(env.HOME, ".claude", ".credentials.json"), "{}");
    const login = await run(claude("What is 2+2?"), { env });
    assert.equal(login.code, 0, login.stdout);
  });
});

Deno.test("stand-in: an unknown --model is warned about on stderr and the run goes on", async () => {
  const r = await run(claude("What is 2+2?", { model: "gpt-9" }));
  assert.equal(r.code, 0);
  assert.match(r.stderr, /^\[claude-code:unrecognized_model\] "gpt-9" /);
  assert.equal(r.transcript.init?.model, "gpt-9");
  for (const known of ["sonnet", "opus", "claude-sonnet-4-5-20250929"]) {
    const k = await run(claude("What is 2+2?", { model: known }));
    assert.equal(k.stderr, "", known);
  }
});

Deno.test("stand-in: API_TIMEOUT_MS shortens Request timed out and names itself", async () => {
  const r = await run(claude("What is 2+2? [[request-timeout]]"), {
    env: { API_TIMEOUT_MS: "50" },
  });
  assert.equal(r.code, 1);
  assert.equal(
    r.transcript.result?.text,
    "Request timed out. If the API is slow to answer, set API_TIMEOUT_MS above 50.",
  );
});

Deno.test("stand-in: the output-token limit names CLAUDE_CODE_MAX_OUTPUT_TOKENS and its value", async () => {
  const def = await run(claude("What is 2+2? [[token-limit]]"));
  assert.match(def.transcript.result?.text ?? "", /exceeded the 32000 output token maximum/);
  const set = await run(claude("What is 2+2? [[token-limit]]"), {
    env: { CLAUDE_CODE_MAX_OUTPUT_TOKENS: "1234" },
  });
  assert.equal(set.code, 1);
  assert.match(
    set.transcript.result?.text ?? "",
    /^API Error: Claude's response exceeded the 1234 output token maximum\. .*set the CLAUDE_CODE_MAX_OUTPUT_TOKENS environment variable\.$/,
  );
});

Deno.test("stand-in: with CLAUDE_CODE_MAX_RETRIES it prints api_retry lines naming the cause first", async () => {
  const r = await run(claude("What is 2+2? [[auth-fail]] [[retry-delay:1]]"), {
    env: { CLAUDE_CODE_MAX_RETRIES: "2" },
  });
  assert.deepEqual(
    r.transcript.apiRetries.map((x) => [x.attempt, x.errorStatus, x.error]),
    [[1, 401, "authentication_failed"], [2, 401, "authentication_failed"]],
  );
  const net = await run(claude("What is 2+2? [[network]] [[retry-delay:1]]"), {
    env: { CLAUDE_CODE_MAX_RETRIES: "1" },
  });
  assert.deepEqual(net.transcript.apiRetries.map((x) => [x.errorStatus, x.error]), [[
    null,
    "unknown",
  ]]);
});

Deno.test("stand-in: SIGTERM ends it with 143 and SIGINT with 0, neither with a result line", async () => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 0]] as const) {
    const child = spawnStandIn("What is 2+2? [[hang]]");
    const reader = child.stdout.getReader();
    const text = await readUntil(reader, /\n/);
    child.kill(signal);
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    const status = await child.status;
    assert.deepEqual([status.code, status.signal], [code, null], signal);
    assert.equal(parseClaudeOutput(text + rest).result, undefined, signal);
  }
});

Deno.test("stand-in: an open stdin pipe that sends nothing costs 3 s and a warning", async () => {
  const child = new Deno.Command(FAKE, {
    args: ["-p", "What is 2+2?"],
    env: { FAKE_CLAUDE_MODE: "", IS_SANDBOX: "1", ...KEY_ENV },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = await child.output(); // stdin stays open until the child is done
  assert.equal(out.code, 0);
  assert.match(new TextDecoder().decode(out.stderr), /^Warning: no stdin data received in 3s/);
  assert.equal(new TextDecoder().decode(out.stdout), "2 + 2 = 4\n");
});

Deno.test("stand-in: --output-format json --verbose prints one JSON array", async () => {
  const r = await run([FAKE, "-p", "What is 2+2?", "--output-format", "json", "--verbose"]);
  const arr = JSON.parse(r.stdout);
  assert.ok(Array.isArray(arr));
  assert.deepEqual(arr.map((e: { type: string }) => e.type), ["system", "assistant", "result"]);
});

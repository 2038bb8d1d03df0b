import assert from "node:assert/strict";
import { parseSuite } from "../lib/stress/suite_load.ts";
import { buildTaskCommand, resolveMarker } from "../lib/stress/task_command.ts";
import { onlyTask, seed, upstream } from "./_util/suite.ts";

/** A fresh temp dir holding an executable (with a space in its path) that prints argv NUL-separated. */
async function argvPrinter(): Promise<{ dir: string; exe: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ccx_suite_test_" });
  const exe = `${dir}/argv printer`;
  await Deno.writeTextFile(exe, `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done\n`);
  await Deno.chmod(exe, 0o755);
  return { dir, exe };
}

/** Runs a built command (shell or argv) the way the server would, returns the printed argv. */
async function runBuilt(
  built: { command?: string; argv?: string[]; env?: Record<string, string> },
  cwd: string,
): Promise<string[]> {
  const [program, args] = built.command !== undefined
    ? ["/bin/sh", ["-c", built.command]]
    : [built.argv![0], built.argv!.slice(1)];
  const out = await new Deno.Command(program, {
    args,
    cwd,
    env: built.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `command failed: ${stderr}`);
  const parts = new TextDecoder().decode(out.stdout).split("\0");
  assert.equal(parts.pop(), "", "output ends with a NUL");
  return parts;
}

const VARS = { marker: "M_1", timestamp: "20250627_120000" };

Deno.test("resolveMarker() fills ${TIMESTAMP}, or derives a marker from the id", () => {
  const [plain] = parseSuite({ tests: [{ id: "t1", command: "true" }] }, "x").tasks;
  assert.equal(resolveMarker(plain, "20250101_000000"), "t1_20250101_000000");
  const withMarker = onlyTask(seed({ verification: { marker: "MATH_${TIMESTAMP}" } }));
  assert.equal(resolveMarker(withMarker, "20250101_000000"), "MATH_20250101_000000");
  const off = onlyTask(seed({ verification: { marker: false } }));
  assert.equal(resolveMarker(off, "20250101_000000"), "");
});

Deno.test("a task without a template gets the seed's default claude argv", () => {
  const task = onlyTask(seed({ metatags: "[category:stress_test]" }));
  const built = buildTaskCommand(task, VARS, { claude: "/opt/claude" });
  assert.equal(built.command, undefined);
  assert.deepEqual(built.argv, [
    "/opt/claude",
    "-p",
    "[marker:M_1] [category:stress_test] What is 2+2?",
    "--output-format",
    "stream-json",
    "--verbose",
    "--dangerously-skip-permissions",
  ]);
  assert.equal(
    built.display,
    "/opt/claude -p '[marker:M_1] [category:stress_test] What is 2+2?' --output-format " +
      "stream-json --verbose --dangerously-skip-permissions",
  );
});

Deno.test("the default argv adds --model when a model is given and skips empty parts", () => {
  const task = onlyTask(seed({}));
  const built = buildTaskCommand(task, { marker: "", timestamp: "T", model: "haiku" }, {
    claude: "claude",
  });
  assert.deepEqual(built.argv!.slice(0, 3), ["claude", "-p", "What is 2+2?"]);
  assert.deepEqual(built.argv!.slice(-2), ["--model", "haiku"]);
});

Deno.test("a template's placeholders become quoted environment references", () => {
  const task = onlyTask(seed({
    metatags: "[m]",
    command_template:
      `claude -p "[marker:\${MARKER}] \${METATAGS} \${REQUEST}" --model \${MODEL} ` +
      `--x '\${TEMPERATURE}' --ts \${TIMESTAMP}`,
  }));
  const built = buildTaskCommand(task, { ...VARS, model: "haiku", temperature: 0.7 }, {
    claude: "claude",
  });
  assert.equal(
    built.command,
    'claude -p "[marker:${CCX_MARKER}] ${CCX_METATAGS} ${CCX_REQUEST}" --model "${CCX_MODEL}" ' +
      `--x ''"\${CCX_TEMPERATURE}"'' --ts "\${CCX_TIMESTAMP}"`,
  );
  assert.deepEqual(built.env, {
    CCX_MARKER: "M_1",
    CCX_METATAGS: "[m]",
    CCX_REQUEST: "What is 2+2?",
    CCX_MODEL: "haiku",
    CCX_TEMPERATURE: "0.7",
    CCX_TIMESTAMP: "20250627_120000",
  });
  assert.equal(
    built.display,
    `claude -p "[marker:M_1] [m] What is 2+2?" --model haiku --x '0.7' --ts 20250627_120000`,
  );
});

Deno.test("the leading claude word is replaced by the configured executable", () => {
  const task = onlyTask(seed({
    command_template: 'claude -p "${REQUEST}" && echo claude; (claude --version) | claude-x',
  }));
  const built = buildTaskCommand(task, VARS, { claude: "/my dir/fake claude" });
  assert.equal(
    built.command,
    `'/my dir/fake claude' -p "\${CCX_REQUEST}" && echo claude; ` +
      `('/my dir/fake claude' --version) | claude-x`,
  );
});

const HOSTILE = [
  "He said \"hi\" and 'bye'",
  "$(touch PWNED_1)",
  "`touch PWNED_2`",
  "'; touch PWNED_3; echo '",
  '"; touch PWNED_4; echo "',
  'back\\slash \\" \\$HOME \\',
  "line one\nline two\n",
  "${HOME} $HOME $(( 1 + 1 )) * ? [a] ~",
  "-rf --help",
  "unicode 🚀 中文 ñ",
  "  spaced   out  ",
  "",
];

Deno.test("hostile requests reach the program verbatim and execute nothing (seed template)", async () => {
  const { dir, exe } = await argvPrinter();
  try {
    for (const request of HOSTILE) {
      const task = onlyTask(seed({
        natural_language_request: request,
        metatags: "[tag:$(touch PWNED_5)]",
        command_template:
          'claude -p "[marker:${MARKER}] ${METATAGS} ${REQUEST}" --output-format stream-json --verbose',
      }));
      const built = buildTaskCommand(task, { ...VARS, marker: "M`touch PWNED_6`" }, {
        claude: exe,
      });
      const argv = await runBuilt(built, dir);
      assert.deepEqual(argv, [
        "-p",
        `[marker:M\`touch PWNED_6\`] [tag:$(touch PWNED_5)] ${request}`,
        "--output-format",
        "stream-json",
        "--verbose",
      ]);
    }
    const created = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n !== "argv printer"
    );
    assert.deepEqual(created, [], "no payload created a file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile requests stay verbatim in single-quoted, bare and mixed positions", async () => {
  const { dir, exe } = await argvPrinter();
  try {
    const templates: [string, (r: string) => string[]][] = [
      ["claude '${REQUEST}'", (r) => [r]],
      ["claude ${REQUEST}", (r) => [r]],
      ["claude x${REQUEST}y", (r) => [`x${r}y`]],
      [`claude "a'\${REQUEST}'b" 'c"\${REQUEST}"d'`, (r) => [`a'${r}'b`, `c"${r}"d`]],
      ["claude --req=${REQUEST} '--req=${REQUEST}'", (r) => [`--req=${r}`, `--req=${r}`]],
      ["claude \"$(printf '%s' ${REQUEST})x\"", (r) => [`${r.replace(/\n+$/, "")}x`]],
      ['claude "`printf %s ${REQUEST}`x"', (r) => [`${r.replace(/\n+$/, "")}x`]],
      ['claude "${REQUEST}" # it\'s a comment', (r) => [r]],
      [`claude "\\\${REQUEST}" \${REQUEST}`, (r) => ["${REQUEST}", r]],
    ];
    for (const [template, expected] of templates) {
      for (const request of HOSTILE) {
        const task = onlyTask(
          seed({ natural_language_request: request, command_template: template }),
        );
        const built = buildTaskCommand(task, VARS, { claude: exe });
        assert.deepEqual(await runBuilt(built, dir), expected(request), `${template} / ${request}`);
      }
    }
    const created = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n !== "argv printer"
    );
    assert.deepEqual(created, [], "no payload created a file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile requests in the default argv reach claude verbatim without a shell", async () => {
  const { dir, exe } = await argvPrinter();
  try {
    for (const request of HOSTILE) {
      const task = onlyTask(seed({ natural_language_request: request, metatags: undefined }));
      const built = buildTaskCommand(task, { marker: "", timestamp: "T", model: "$(touch X)" }, {
        claude: exe,
      });
      const argv = await runBuilt(built, dir);
      assert.equal(argv[1], request);
      assert.deepEqual(argv.slice(-2), ["--model", "$(touch X)"]);
    }
    const created = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n !== "argv printer"
    );
    assert.deepEqual(created, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an upstream command runs as written, its own shell variables intact", async () => {
  const { dir, exe } = await argvPrinter();
  try {
    const task = onlyTask(upstream({ command: 'claude "${CCX_SUITE_TEST_VAR}" "${MARKER}"' }));
    const built = buildTaskCommand(task, VARS, { claude: exe });
    assert.deepEqual(built.env, { CCX_MARKER: "M_1" });
    const argv = await runBuilt(
      { ...built, env: { ...built.env, CCX_SUITE_TEST_VAR: "from-env" } },
      dir,
    );
    assert.deepEqual(argv, ["from-env", "M_1"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

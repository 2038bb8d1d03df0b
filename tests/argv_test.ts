/** The CLI's command line (lib/claude/argv.ts): argv, tools, and the missing-CLI error. */

import assert from "node:assert/strict";
import {
  buildClaudeArgv,
  chooseTools,
  claudeNotFound,
  ExecInputError,
} from "../lib/claude/argv.ts";

Deno.test("buildClaudeArgv() builds the stream-json command line", () => {
  assert.deepEqual(buildClaudeArgv({ claude: "claude", prompt: "What is 2+2?" }), [
    "claude",
    "-p",
    "What is 2+2?",
    "--output-format",
    "stream-json",
    "--verbose",
  ]);
  assert.deepEqual(
    buildClaudeArgv({
      claude: "/opt/claude",
      prompt: "Create x",
      tools: ["Write", "Read"],
      model: "sonnet",
      maxTurns: 5,
      skipPermissions: true,
    }),
    [
      "/opt/claude",
      "-p",
      "Create x",
      "--output-format",
      "stream-json",
      "--verbose",
      "--model",
      "sonnet",
      "--max-turns",
      "5",
      "--tools",
      "Write,Read",
      "--dangerously-skip-permissions",
    ],
  );
  // `--allowedTools none` restricts nothing in the real CLI; `--tools ""` gives no tools.
  assert.deepEqual(buildClaudeArgv({ claude: "c", prompt: "q", tools: "none" }).slice(-2), [
    "--tools",
    "",
  ]);
  assert.equal(buildClaudeArgv({ claude: "c", prompt: "q", tools: [] }).length, 6);
  assert.deepEqual(buildClaudeArgv({ claude: "c", prompt: "q", maxTurns: 0 }).slice(-2), [
    "--max-turns",
    "0",
  ]);
  assert.throws(() => buildClaudeArgv({ claude: "c", prompt: "q", maxTurns: -1 }), RangeError);
});

Deno.test("buildClaudeArgv() passes quotes, $ and backticks as one untouched argument", () => {
  const prompt = `What is "it's" $HOME \`whoami\` $(id) \\n; rm -rf / #?`;
  const argv = buildClaudeArgv({ claude: "claude", prompt });
  assert.equal(argv[2], prompt);
  assert.equal(argv.filter((a) => a === prompt).length, 1);
});

Deno.test("buildClaudeArgv() puts a prompt that starts with a dash after --", () => {
  const argv = buildClaudeArgv({ claude: "claude", prompt: "--help me", skipPermissions: true });
  assert.deepEqual(argv.slice(-2), ["--", "--help me"]);
  assert.equal(argv[1], "-p");
  assert.ok(!argv.slice(0, -1).includes("--help me"));
});

Deno.test("chooseTools() picks tools from whole-word verbs and always includes Read", () => {
  assert.deepEqual(chooseTools("Create a config.py file with DATABASE_URL"), ["Write", "Read"]);
  assert.deepEqual(chooseTools("Run the tests"), ["Bash", "Read"]);
  assert.deepEqual(chooseTools("Execute the script, then verify the output"), ["Bash", "Read"]);
  assert.deepEqual(chooseTools("Check the FILES and run them"), ["Write", "Bash", "Read"]);
  assert.deepEqual(chooseTools("What is 2+2?"), ["Read"]);
  assert.deepEqual(chooseTools("Truncate the profile of a runner"), ["Read"]);
});

Deno.test("claudeNotFound() says what is missing and how to point ccx at the CLI", () => {
  const onPath = claudeNotFound("claude");
  assert.ok(onPath instanceof ExecInputError);
  assert.equal(onPath.name, "ExecInputError");
  assert.match(
    onPath.message,
    /^Claude CLI not found: "claude" is not on PATH\. Install Claude Code/,
  );
  assert.match(onPath.message, /--claude PATH or the CCX_CLAUDE environment variable\.$/);
  assert.match(
    claudeNotFound("./bin/claude").message,
    /"\.\/bin\/claude" does not exist or is not executable/,
  );
  assert.match(
    claudeNotFound("claude", "the server ws://h could not start it (exit 127)").message,
    /^Claude CLI not found: the server ws:\/\/h could not start it \(exit 127\)\. /,
  );
});

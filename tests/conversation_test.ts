import assert from "node:assert/strict";
import { join } from "node:path";
import {
  conversationOf,
  MAX_ITEM_CHARS,
  readConversation,
  splitOutputFile,
} from "../lib/stress/report/conversation.ts";
import { writeOutputFile } from "../lib/stress/report/files.ts";
import { FAKE_CLAUDE } from "./_util/helpers.ts";

/** The stand-in's stream-json for `prompt`, run in `cwd`. */
async function standIn(prompt: string, cwd: string): Promise<string> {
  const out = await new Deno.Command(FAKE_CLAUDE, {
    args: [
      "-p",
      prompt,
      "--output-format",
      "stream-json",
      "--verbose",
      "--permission-mode",
      "acceptEdits",
    ],
    cwd,
    env: { ANTHROPIC_API_KEY: "sk-ant-stand-in-test" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("conversationOf() follows a Claude run: session, tool call and result, answer without its marker", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_convo_" });
  try {
    const said = await standIn(
      "[marker:M_9] [[write:hello.py=print(1)]] [[answer:Wrote it.]]",
      dir,
    );
    const items = conversationOf(said, "a warning\n");
    assert.deepEqual(items.map((i) => i.kind), [
      "system",
      "assistant",
      "tool-call",
      "tool-result",
      "assistant",
      "result",
      "stderr",
    ]);
    assert.match(items[0].text, /^Claude Code 2\.1\.197 · model .* tools · acceptEdits · cwd /);
    assert.equal(items[1].text, "I'll create hello.py.");
    assert.equal(items[2].who, "tool call · Write");
    assert.match(items[2].text, /"file_path": ".*hello\.py"/);
    assert.equal(items[3].who, "tool result · Write");
    assert.match(items[3].text, /File created successfully/);
    assert.equal(items[4].text, "Wrote it.\n\nI created hello.py.");
    assert.match(items[5].who, /^result · success · 2 turns · \$/);
    assert.equal(items[5].text, "Wrote it.\n\nI created hello.py.");
    assert.equal(items[6].text, "a warning");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conversationOf() marks the CLI's own errors and bounds long texts", () => {
  const long = "x".repeat(MAX_ITEM_CHARS + 10);
  const items = conversationOf(
    [
      JSON.stringify({
        type: "assistant",
        message: { model: "<synthetic>", content: [{ type: "text", text: "Invalid API key" }] },
        error: "authentication_failed",
      }),
      JSON.stringify({
        type: "user",
        message: {
          content: [{ type: "tool_result", tool_use_id: "x", content: long, is_error: true }],
        },
      }),
      "",
    ].join("\n"),
  );
  assert.equal(items[0].kind, "error");
  assert.equal(items[0].isError, true);
  assert.equal(items[1].isError, true);
  assert.match(items[1].text, new RegExp(`… \\(${MAX_ITEM_CHARS + 10} characters\\)$`));
  assert.deepEqual(conversationOf("plain\n"), [{ kind: "output", who: "output", text: "plain" }]);
});

Deno.test("readConversation() reads a saved output file back, stdout and stderr apart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx_convo_file_" });
  try {
    const said = await standIn("What is 2+2?", dir);
    const file = join(dir, "t.txt");
    await writeOutputFile(file, {
      task: "t",
      name: "t",
      status: "passed",
      durationS: 1,
      exitCode: 0,
      timestamp: new Date(),
    }, `${said}\n----- stderr -----\noops\n`);
    assert.deepEqual(splitOutputFile(await Deno.readTextFile(file)), {
      stdout: `${said}`,
      stderr: "oops\n",
    });
    const items = await readConversation(file);
    assert.ok(items);
    assert.equal(items.at(-1)?.kind, "stderr");
    assert.equal(items.find((i) => i.kind === "result")?.text, "2 + 2 = 4");
    assert.equal(await readConversation(join(dir, "gone.txt")), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

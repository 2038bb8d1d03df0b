/** The mock Messages API (lib/claude/mock_api/) over real HTTP on 127.0.0.1, and `ccx mock-api`. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { mockApiEnv, MockApiServer } from "../lib/claude/mock_api/server.ts";
import { loadMockScript, MockScriptError, parseMockScript } from "../lib/claude/mock_api/script.ts";
import { readConversation } from "../lib/claude/mock_api/wire.ts";
import { cli } from "./_util/helpers.ts";

/** Posts a Messages API request; resolves with the response. */
function post(api: MockApiServer, messages: unknown[], stream = true): Promise<Response> {
  return fetch(`${api.url}/v1/messages?beta=true`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "k" },
    body: JSON.stringify({ model: "claude-x", max_tokens: 100, stream, messages, betas: ["x"] }),
  });
}

/** The SSE events of a streamed response: [event name, data] in order. */
async function events(res: Response): Promise<[string, Record<string, unknown>][]> {
  const text = await res.text();
  return text.split("\n\n").filter((b) => b.trim() !== "").map((block) => {
    const [ev, data] = block.split("\n");
    assert.match(ev, /^event: /, "every event has its event: line");
    return [ev.slice(7), JSON.parse(data.slice(6))];
  });
}

const user = (text: string) => ({ role: "user", content: [{ type: "text", text }] });

Deno.test("mock API: a text answer streams in the order the CLI needs, markers echoed", async () => {
  const api = MockApiServer.start();
  try {
    const res = await post(api, [user("[marker:M1] What is 2+2?")]);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const evs = await events(res);
    assert.deepEqual(evs.map(([n]) => n), [
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const delta = evs[2][1].delta as { text: string };
    assert.equal(delta.text, "2 + 2 = 4\n\n[marker:M1]");
    assert.equal((evs[4][1].delta as { stop_reason: string }).stop_reason, "end_turn");
    const other = await fetch(`${api.url}/api/hello`, { method: "HEAD" });
    assert.equal(other.status, 404);
    assert.deepEqual(api.requests.map((r) => r.reply), ["text"]);
  } finally {
    await api.shutdown();
  }
});

Deno.test("mock API: a tool call in pieces, then the follow-up text after the tool result", async () => {
  const api = MockApiServer.start();
  try {
    const prompt = "Make it [[mock:write:out/a.txt=hi\\nthere]]";
    const evs = await events(await post(api, [user(prompt)]));
    const start = evs[1][1].content_block as { type: string; id: string; name: string };
    assert.deepEqual([start.type, start.name], ["tool_use", "Write"]);
    const json = evs.filter(([n]) => n === "content_block_delta")
      .map(([, d]) => (d.delta as { partial_json: string }).partial_json).join("");
    assert.deepEqual(JSON.parse(json), { file_path: "out/a.txt", content: "hi\nthere" });
    assert.equal((evs.at(-2)![1].delta as { stop_reason: string }).stop_reason, "tool_use");
    const next = await events(
      await post(api, [
        user(prompt),
        { role: "assistant", content: [{ type: "tool_use", id: start.id, name: "Write" }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: start.id, content: "ok" }] },
      ]),
    );
    assert.equal((next[2][1].delta as { text: string }).text, "I created out/a.txt.");
  } finally {
    await api.shutdown();
  }
});

Deno.test("mock API: HTTP errors with the API's error body, retry-after, and fail-first", async () => {
  const api = MockApiServer.start();
  try {
    for (
      const [d, status, type] of [
        ["401", 401, "authentication_error"],
        ["403", 403, "permission_error"],
        ["529", 529, "overloaded_error"],
        ["500", 500, "api_error"],
      ] as const
    ) {
      const res = await post(api, [user(`q [[mock:${d}]]`)]);
      assert.equal(res.status, status);
      const body = await res.json();
      assert.deepEqual([body.type, body.error.type], ["error", type]);
    }
    const limited = await post(api, [user("q [[mock:429:7]]")]);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "7");
    await limited.body?.cancel();
    // fail-first counts per prompt, markers and refinements aside.
    const statuses: number[] = [];
    for (
      const p of [
        "[marker:A] x [[mock:fail-first:2:529]]",
        "[marker:B] x [[mock:fail-first:2:529]]\n\nIMPORTANT: y",
        "[marker:C] x [[mock:fail-first:2:529]]",
      ]
    ) {
      const r = await post(api, [user(p)], false);
      statuses.push(r.status);
      await r.body?.cancel();
    }
    assert.deepEqual(statuses, [529, 529, 200]);
  } finally {
    await api.shutdown();
  }
});

Deno.test("mock API: max_tokens, a cut stream, and a hang that ends when the mock stops", async () => {
  const api = MockApiServer.start();
  try {
    const max = await events(await post(api, [user("q [[mock:max-tokens]]")]));
    assert.equal((max.at(-2)![1].delta as { stop_reason: string }).stop_reason, "max_tokens");
    const cut = await events(await post(api, [user("q [[mock:cut]]")]));
    assert.ok(!cut.some(([n]) => n === "message_stop" || n === "content_block_stop"));
    const hanging = post(api, [user("q [[mock:hang]]")]);
    let settled = false;
    hanging.then(() => settled = true, () => settled = true);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(settled, false, "no answer comes");
    await api.shutdown();
    await (await hanging.catch(() => undefined))?.body?.cancel();
  } finally {
    await api.shutdown();
  }
});

Deno.test("mock API: script rules come first, in order, each for its `times`", async () => {
  const api = MockApiServer.start({
    script: parseMockScript({
      rules: [
        { match: "/capital of (\\w+)/i", reply: { type: "text", text: "Paris" }, times: 1 },
        { match: "capital", reply: { type: "error", status: 529 } },
      ],
      default: { type: "text", text: "default answer" },
    }),
  });
  try {
    const first = await post(api, [user("What is the capital of France?")], false);
    assert.equal((await first.json()).content[0].text, "Paris");
    const second = await post(api, [user("What is the capital of France?")], false);
    assert.equal(second.status, 529);
    await second.body?.cancel();
    const other = await post(api, [user("Anything else")], false);
    assert.equal((await other.json()).content[0].text, "default answer");
  } finally {
    await api.shutdown();
  }
});

Deno.test("parseMockScript() names the JSON path of what is wrong", () => {
  const bad: [unknown, RegExp][] = [
    [
      { rules: [{ match: "x", reply: { type: "nope" } }] },
      /rules\[0\]\.reply\.type: expected one of/,
    ],
    [{ rules: [{ match: "", reply: { type: "hang" } }] }, /rules\[0\]\.match/],
    [{ rules: [{ match: "/(/", reply: { type: "hang" } }] }, /rules\[0\]\.match: bad regular/],
    [{ rules: [{ match: "x", reply: { type: "error", status: 200 } }] }, /reply\.status/],
    [{ rules: [], extra: 1 }, /extra: unknown key/],
    [{ rules: [{ match: "x", reply: { type: "text" } }] }, /: rules\[0\]\.reply\.text: required$/],
  ];
  for (const [v, re] of bad) assert.throws(() => parseMockScript(v), re);
  // The whole message, path first, for each kind of structural problem.
  const exact: [unknown, string][] = [
    [[], "$: expected an object, got an array"],
    [{ rules: {} }, "rules: expected an array, got an object"],
    [{ rules: [5] }, "rules[0]: expected an object, got 5"],
    [{ rules: [{ match: 1 }] }, "rules[0].match: expected a string, got 1"],
    [
      { rules: [{ match: "x", reply: { type: "hang" } }, { match: "y", times: 1.5 }] },
      "rules[1].times: expected a positive integer, got 1.5",
    ],
    [{ rules: [{ match: "x", reply: [] }] }, "rules[0].reply: expected an object, got an array"],
    [
      { rules: [{ match: "x", reply: { type: "tool", name: "W", input: "a" } }] },
      'rules[0].reply.input: expected an object, got "a"',
    ],
    [
      { rules: [{ match: "x", reply: { type: "error", status: 429, retry_after: -1 } }] },
      "rules[0].reply.retry_after: expected a number of seconds of 0 or more, got -1",
    ],
    [{ default: { type: "cut", text: 3 } }, "default.text: expected a string, got 3"],
  ];
  for (const [v, message] of exact) {
    assert.throws(() => parseMockScript(v), (e: Error) => {
      assert.ok(e instanceof MockScriptError, String(e));
      assert.equal(e.message, message);
      return true;
    });
  }
  assert.equal(readConversation({ messages: [user("hi")] }).prompt, "hi");
  assert.equal(mockApiEnv("http://x").CLAUDE_CODE_MAX_RETRIES, "0");
});

Deno.test("ccx mock-api --script with a bad file exits 2 naming the file and the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "s.json");
    await Deno.writeTextFile(file, JSON.stringify({ rules: [{ match: "x", reply: {} }] }));
    await assert.rejects(loadMockScript(file), /rules\[0\]\.reply\.type/);
    const r = await cli(["mock-api", "--port", "0", "--script", file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /s\.json: rules\[0\]\.reply\.type: expected one of text, tool/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

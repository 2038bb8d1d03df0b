import assert from "node:assert/strict";
import {
  clip,
  ErrorCode,
  errorResponse,
  notification,
  parseIncoming,
  response,
  RpcError,
  toLabel,
  validateControl,
  validateExecute,
} from "../lib/common/protocol.ts";

function invalidMessage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, ErrorCode.InvalidParams);
    return e.message;
  }
  assert.fail("expected an RpcError");
}

function invalidField(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, ErrorCode.InvalidParams);
    return (e.data as { field: string }).field;
  }
  assert.fail("expected an RpcError");
}

Deno.test("parseIncoming() tells requests, notifications, responses and invalid items apart", () => {
  const m = parseIncoming(JSON.stringify([
    { jsonrpc: "2.0", id: 1, method: "ping" },
    { jsonrpc: "2.0", method: "ping" },
    { jsonrpc: "2.0", id: 2, result: {} },
    { jsonrpc: "2.0", id: 3 },
    7,
  ]));
  assert.equal(m.batch, true);
  assert.deepEqual(m.items.map((i) => i.kind), [
    "request",
    "notification",
    "response",
    "invalid",
    "invalid",
  ]);
});

Deno.test("parseIncoming() reports text that is not JSON as a parse error", () => {
  const m = parseIncoming("{oops");
  assert.equal(m.error?.code, ErrorCode.ParseError);
  assert.deepEqual(m.items, []);
});

Deno.test("parseIncoming() refuses an empty batch and a wrong jsonrpc version", () => {
  assert.equal(parseIncoming("[]").error?.code, ErrorCode.InvalidRequest);
  const v1 = parseIncoming('{"jsonrpc":"1.0","id":5,"method":"ping"}').items[0];
  assert.equal(v1.kind, "invalid");
  if (v1.kind === "invalid") {
    assert.equal(v1.error.code, ErrorCode.InvalidRequest);
    assert.equal(v1.id, 5);
  }
});

Deno.test("parseIncoming() keeps the id's type: string, number, null", () => {
  for (const id of ["abc", 42, 1.5, null]) {
    const item = parseIncoming(JSON.stringify({ jsonrpc: "2.0", id, method: "ping" })).items[0];
    assert.equal(item.kind, "request");
    if (item.kind === "request") assert.equal(item.id, id);
  }
  const bad = parseIncoming('{"jsonrpc":"2.0","id":{},"method":"ping"}').items[0];
  assert.equal(bad.kind, "invalid");
});

Deno.test("parseIncoming() keeps an id past a double's range (1e400) as the client wrote it", () => {
  for (const text of ["1e400", "-1E+400"]) {
    const item = parseIncoming(`{"jsonrpc":"2.0","id":${text},"method":"ping"}`).items[0];
    assert.equal(item.kind, "request", "a valid JSON number is a valid id");
    if (item.kind !== "request") continue;
    assert.equal(
      JSON.stringify(response(item.id, {})),
      `{"jsonrpc":"2.0","id":${text},"result":{}}`,
    );
  }
  const v1 = parseIncoming('{"jsonrpc":"1.0","id":1e400,"method":"ping"}').items[0];
  assert.equal(v1.kind, "invalid");
  assert.match(
    JSON.stringify(errorResponse(v1.kind === "invalid" ? v1.id : null, new RpcError(1, "x"))),
    /"id":1e400,/,
  );
});

Deno.test("validateExecute() accepts command or argv and the optional fields", () => {
  assert.deepEqual(validateExecute({ command: "echo hi" }).command, "echo hi");
  const p = validateExecute({
    argv: ["a", "b"],
    cwd: "/tmp",
    env: { A: "1" },
    timeout: 1.5,
    stall_timeout: 2,
    stdin: "x",
    job_id: "job-1",
  });
  assert.deepEqual(p.argv, ["a", "b"]);
  assert.equal(p.timeout, 1.5);
  assert.equal(p.job_id, "job-1");
  assert.equal(p.output_mode, undefined, "lines is the default; the server fills it in");
  assert.equal(validateExecute({ command: "x", output_mode: "chunks" }).output_mode, "chunks");
  assert.equal(validateExecute({ command: "x", output_mode: "lines" }).output_mode, "lines");
});

Deno.test("validateExecute() names the offending field", () => {
  assert.equal(invalidField(() => validateExecute({})), "command");
  assert.equal(invalidField(() => validateExecute({ command: "  " })), "command");
  assert.equal(invalidField(() => validateExecute({ command: 5 })), "command");
  assert.equal(invalidField(() => validateExecute({ command: "a", argv: ["b"] })), "command");
  assert.equal(invalidField(() => validateExecute({ argv: [] })), "argv");
  assert.equal(invalidField(() => validateExecute({ argv: ["a", 1] })), "argv");
  assert.equal(invalidField(() => validateExecute({ command: "a", timeout: -1 })), "timeout");
  assert.equal(invalidField(() => validateExecute({ command: "a", timeout: "5" })), "timeout");
  assert.equal(
    invalidField(() => validateExecute({ command: "a", stall_timeout: 0 })),
    "stall_timeout",
  );
  assert.equal(invalidField(() => validateExecute({ command: "a", env: [] })), "env");
  assert.equal(invalidField(() => validateExecute({ command: "a", env: { X: 1 } })), "env.X");
  assert.equal(invalidField(() => validateExecute({ command: "a", cwd: 3 })), "cwd");
  assert.equal(invalidField(() => validateExecute({ command: "a", job_id: "a b" })), "job_id");
  assert.equal(invalidField(() => validateExecute("not an object")), "params");
  for (const bad of ["line", "CHUNKS", 1, true, {}]) {
    assert.equal(
      invalidField(() => validateExecute({ command: "a", output_mode: bad })),
      "output_mode",
    );
  }
});

Deno.test("validateExecute() messages say the path, what was expected and what was found", () => {
  const message = (p: unknown) => {
    try {
      validateExecute(p);
    } catch (e) {
      assert.ok(e instanceof RpcError);
      return e.message;
    }
    assert.fail("accepted");
  };
  assert.equal(message({ command: 5 }), "command: expected a string, got 5");
  assert.equal(message({ argv: ["a", 1] }), "argv[1]: expected a string, got 1");
  assert.equal(message({ argv: [] }), "argv: expected at least one string, got an empty array");
  assert.equal(message({ command: "a", timeout: "5" }), 'timeout: expected a number, got "5"');
  assert.equal(
    message({ command: "a", stall_timeout: 0 }),
    "stall_timeout: expected a positive number of seconds, got 0",
  );
  assert.equal(message({ command: "a", env: { X: 1 } }), "env.X: expected a string, got 1");
  assert.equal(message({ command: "a", env: [] }), "env: expected an object, got an array");
  assert.match(message({ command: "a", cwd: "/x\0" }), /^cwd: contains a NUL character/);
  // null means "not given", as before.
  assert.equal(validateExecute({ command: "a", cwd: null, timeout: null }).cwd, undefined);
});

Deno.test("validateExecute() takes a label and a meta object, within their limits", () => {
  const p = validateExecute({
    command: "true",
    label: "simple_1 · basic_math",
    meta: { suite: "s", run_id: "r1", run_total: 3, anything: [1, { deep: true }] },
  });
  assert.equal(p.label, "simple_1 · basic_math");
  assert.deepEqual(p.meta, {
    suite: "s",
    run_id: "r1",
    run_total: 3,
    anything: [1, { deep: true }],
  });
  assert.equal(validateExecute({ command: "x", label: null, meta: null }).label, undefined);
  // 200 characters (not UTF-16 units) is the limit.
  assert.equal(validateExecute({ command: "x", label: "é".repeat(200) }).label?.length, 200);
  assert.equal(validateExecute({ command: "x", label: "😀".repeat(200) }).label?.length, 400);
  const big = { prompt: "x".repeat(16 * 1024 - 13) }; // {"prompt":"…"} is 13 bytes more
  assert.equal(validateExecute({ command: "x", meta: big }).meta, big);
});

Deno.test("validateExecute() refuses a bad label or meta with -32602 naming the field and the limit", () => {
  const cases: [unknown, string, RegExp][] = [
    [{ label: 5 }, "label", /^label: expected a string, got 5$/],
    [{ label: ["a"] }, "label", /^label: expected a string, got an array$/],
    [{ label: "" }, "label", /^label: expected a non-blank string$/],
    [{ label: "  " }, "label", /^label: expected a non-blank string$/],
    [{ label: "a".repeat(201) }, "label", /^label: at most 200 characters, got 201$/],
    [
      { label: "two\nlines" },
      "label",
      /^label: contains the control character U\+000A at index 3$/,
    ],
    [{ label: "tab\there" }, "label", /U\+0009/],
    [{ meta: [] }, "meta", /^meta: expected an object, got an array$/],
    [{ meta: "run 1" }, "meta", /^meta: expected an object, got "run 1"$/],
    [
      { meta: { prompt: "x".repeat(16 * 1024) } },
      "meta",
      /^meta: at most 16384 bytes as JSON, got 16397$/,
    ],
  ];
  for (const [extra, field, message] of cases) {
    const params = { command: "true", ...(extra as object) };
    assert.equal(invalidField(() => validateExecute(params)), field, JSON.stringify(extra));
    assert.match(invalidMessage(() => validateExecute(params)), message);
  }
});

Deno.test("clip() keeps text within a number of characters", () => {
  assert.equal(clip("abc", 3), "abc");
  assert.equal(clip("abcdef", 4), "abc…");
  assert.equal([...clip("😀".repeat(10), 5)].length, 5);
});

Deno.test("validateControl() accepts the three types, case-insensitively", () => {
  assert.equal(validateControl({ type: "pause" }).type, "PAUSE");
  assert.equal(validateControl({ type: "RESUME", job_id: "j" }).job_id, "j");
  assert.equal(invalidField(() => validateControl({ type: "KILL" })), "type");
  assert.equal(invalidField(() => validateControl({})), "type");
});

Deno.test("response builders produce JSON-RPC 2.0 objects", () => {
  assert.deepEqual(response(1, { ok: true }), { jsonrpc: "2.0", id: 1, result: { ok: true } });
  assert.deepEqual(errorResponse("x", new RpcError(-32601, "no such method")), {
    jsonrpc: "2.0",
    id: "x",
    error: { code: -32601, message: "no such method" },
  });
  assert.deepEqual(notification("heartbeat", { timestamp: 1 }), {
    jsonrpc: "2.0",
    method: "heartbeat",
    params: { timestamp: 1 },
  });
});

Deno.test("toLabel() makes any text a valid label", () => {
  assert.equal(toLabel("Write a haiku\n\tabout pipes"), "Write a haiku about pipes");
  assert.equal(toLabel("\n"), "(no label)");
  const long = toLabel("x".repeat(500));
  assert.equal(long.length, 200);
  assert.equal(validateExecute({ command: "true", label: long }).label, long);
});

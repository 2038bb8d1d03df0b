import assert from "node:assert/strict";
import {
  commandHelp,
  defineCommand,
  dispatch,
  type OptionDecls,
  parseConfig,
  resolveOptions,
} from "../lib/common/cli.ts";
import { COMMANDS } from "../main.ts";
import { ConfigError } from "../lib/common/config.ts";

Deno.test("resolveOptions: flag over environment over default, typed and bounded", () => {
  const decl: OptionDecls = {
    port: { type: "int", env: "P", default: 8004, min: 0, max: 65535, help: "" },
    scale: { type: "number", default: 1, words: ["auto"], help: "" },
    mode: { type: "string", choices: ["all", "any"], default: "all", help: "" },
    server: { type: "list", env: "S", help: "" },
    quiet: { type: "boolean", help: "" },
    name: { type: "string", help: "" },
  };
  assert.deepEqual(resolveOptions(decl, {}, {}), {
    port: 8004,
    scale: 1,
    mode: "all",
    server: [],
    quiet: false,
    name: undefined,
  });
  assert.deepEqual(
    resolveOptions(decl, { port: "1", scale: "auto", quiet: true }, { P: "2", S: "a,b" }),
    { port: 1, scale: "auto", mode: "all", server: ["a", "b"], quiet: true, name: undefined },
  );
  assert.equal(resolveOptions(decl, {}, { P: "2" }).port, 2);
  assert.throws(
    () => resolveOptions(decl, { port: "70000" }, {}),
    /^ConfigError: --port: must be at most 65535/,
  );
  assert.throws(() => resolveOptions(decl, {}, { P: "x" }), /P: expected an integer, got "x"/);
  assert.throws(
    () => resolveOptions(decl, { scale: "fast" }, {}),
    (e) => e instanceof ConfigError && /--scale: expected a number.*\(or auto\)/.test(e.message),
  );
  assert.throws(
    () => resolveOptions(decl, { mode: "al" }, {}),
    /--mode: expected all or any, got "al" \(did you mean "all"\?\)/,
  );
});

Deno.test("resolveOptions: a switch is on by its flag, or by its variable set to exactly 1", () => {
  const decl = { sandbox: { type: "boolean", env: "SB", help: "a switch" } } as const;
  assert.equal(resolveOptions(decl, {}, {}).sandbox, false);
  assert.equal(resolveOptions(decl, { sandbox: true }, {}).sandbox, true);
  assert.equal(resolveOptions(decl, {}, { SB: "1" }).sandbox, true);
  assert.equal(resolveOptions(decl, {}, { SB: "true" }).sandbox, false, "only 1, as IS_SANDBOX");
});

Deno.test("every declared option of every command is parsed and shown in its help", () => {
  for (const c of COMMANDS) {
    const help = commandHelp(c);
    const cfg = parseConfig(c.decl.options);
    for (const [name, d] of Object.entries(c.decl.options)) {
      assert.ok(help.includes(`--${name}`), `${c.name} --help shows --${name}`);
      assert.ok(cfg[name], `${c.name} parses --${name}`);
      if (d.short) {
        assert.equal(cfg[name].short, d.short);
        assert.ok(help.includes(`--${name}, -${d.short}`), `${c.name} --help shows -${d.short}`);
      }
      if (d.env) assert.ok(help.includes(d.env), `${c.name} --help names ${d.env}`);
      if (d.default !== undefined) {
        assert.ok(help.includes(`default ${d.default}`), `${c.name} --help: default of --${name}`);
      }
    }
    // The command name appears once in the usage line, not twice.
    assert.equal(help.split("\n")[0].split(` ${c.name} `).length, 2, help.split("\n")[0]);
  }
});

Deno.test("dispatch: typed values reach the command; a bad value is exit 2 naming the flag", async () => {
  let got: unknown;
  const cmd = defineCommand({
    name: "demo",
    summary: "a demo",
    options: {
      n: { type: "int", short: "n", default: 3, min: 1, help: "count" },
      tag: { type: "list", help: "tags" },
    },
    run(o, pos) {
      got = { n: o.n, tag: o.tag, pos };
      return Promise.resolve(7);
    },
  });
  assert.equal(
    await dispatch([cmd], ["demo", "-n", "5", "--tag", "a", "--tag", "b", "x"], {
      title: "t",
      env: {},
    }),
    7,
  );
  assert.deepEqual(got, { n: 5, tag: ["a", "b"], pos: ["x"] });
  got = undefined;
  const errors: string[] = [];
  const orig = console.error;
  console.error = (m: string) => errors.push(m);
  try {
    assert.equal(await dispatch([cmd], ["demo", "-n", "0"], { title: "t", env: {} }), 2);
    assert.equal(await dispatch([cmd], ["demo", "--tags", "a"], { title: "t", env: {} }), 2);
    assert.equal(await dispatch([cmd], ["dmeo"], { title: "t", env: {} }), 2);
  } finally {
    console.error = orig;
  }
  assert.equal(got, undefined, "the command did not run");
  assert.match(errors[0], /^ccx demo: --n: must be at least 1, got 0$/);
  assert.match(errors[1], /^ccx demo: unknown option --tags \(did you mean --tag\?\)/);
  assert.match(errors[2], /^ccx: unknown command "dmeo" \(did you mean "demo"\?\)/);
});

import assert from "node:assert/strict";
import { placeholderNames, scanShell, shellQuote } from "../lib/stress/shell_template.ts";

Deno.test("shellQuote() leaves safe words alone and single-quotes the rest", () => {
  assert.equal(shellQuote("/usr/bin/claude"), "/usr/bin/claude");
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote(""), "''");
});

Deno.test("scanShell() tells the quoting context of every placeholder", () => {
  const vars = scanShell(`echo \${A} "\${B} $(printf '\${C}' \${D})" \`x \${E}\` \\\${F}`)
    .filter((t) => t.kind === "var")
    .map((t) => t.kind === "var" ? `${t.name}:${t.ctx}` : "");
  assert.deepEqual(vars, ["A:unquoted", "B:double", "C:single", "D:subst", "E:backtick"]);
});

Deno.test("scanShell() finds claude only where a command starts", () => {
  const claudes = (src: string) => scanShell(src).filter((t) => t.kind === "claude").length;
  assert.equal(claudes("claude -p x"), 1);
  assert.equal(claudes("echo hi | claude -p x && (claude -p y)"), 2);
  assert.equal(claudes("echo claude; echo 'claude' # claude"), 0);
  assert.equal(claudes("claudex -p x"), 0);
});

Deno.test("placeholderNames() lists each placeholder once, skipping escaped ones", () => {
  assert.deepEqual(placeholderNames('a "${REQUEST}" \\${HOME} ${REQUEST} ${MARKER}'), [
    "REQUEST",
    "MARKER",
  ]);
});

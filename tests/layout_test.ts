/**
 * The house rules of `lib/`, checked on the code itself:
 *
 * - every module lives in a subsystem folder, and imports point one way, toward `common/`:
 *   `commands → fleet → stress → exec → serve, client → verdict → claude → common`
 *   (a folder may import its own modules and any folder to its right; folders on the same
 *   step, `serve/` and `client/`, do not import each other, so the client takes the wire
 *   types from `common/protocol.ts` and no cycle between folders can form);
 * - `main.ts` only dispatches, so it imports `commands/` and `common/` alone;
 * - no module is over 900 lines.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "./_util/helpers.ts";

/** The subsystem folders from the bottom up; a higher step may import any lower one. */
const STEPS: readonly (readonly string[])[] = [
  ["common"],
  ["claude"],
  ["verdict"],
  ["serve", "client"],
  ["exec"],
  ["stress"],
  ["fleet"],
  ["commands"],
];

const MAX_LINES = 900;

function stepOf(folder: string): number {
  const i = STEPS.findIndex((s) => s.includes(folder));
  if (i < 0) {
    throw new Error(`lib/${folder}/ is not a subsystem folder (${STEPS.flat().join(", ")})`);
  }
  return i;
}

/** `lib/serve/web/page.ts` → `serve`; a file directly in `lib/` has folder `""`. */
function folderOf(libPath: string): string {
  const parts = libPath.split("/");
  return parts.length > 1 ? parts[0] : "";
}

/** One import of one module: both paths relative to `lib/`. */
interface Edge {
  from: string;
  to: string;
}

/** The edges that break the rule, each with the reason. */
function violations(edges: readonly Edge[]): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === "") out.push(`lib/${from} is not in a subsystem folder`);
    else if (to.startsWith("../")) out.push(`lib/${from} imports ${to.slice(3)}, outside lib/`);
    else if (b === "") {
      out.push(`lib/${from} imports lib/${to}, which is not in a subsystem folder`);
    } else if (a !== b && stepOf(b) >= stepOf(a)) {
      out.push(
        `lib/${from} imports lib/${to}: ${a}/ may not import ${b}/ (imports point toward common/)`,
      );
    }
  }
  return out;
}

const IMPORT =
  /(?:^|\s)(?:import|export)\b[^"'`]*?\bfrom\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** The relative imports of a source text, leaving out JSDoc (examples import the module itself). */
function relativeImports(text: string): string[] {
  const code = text.split("\n").filter((l) => !/^\s*(\*|\/\*\*|\/\/)/.test(l)).join("\n");
  const out: string[] = [];
  for (const m of code.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith(".")) out.push(spec);
  }
  return out;
}

function libModules(dir = join(ROOT, "lib")): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...libModules(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

function libEdges(): Edge[] {
  const lib = join(ROOT, "lib");
  const edges: Edge[] = [];
  for (const file of libModules()) {
    for (const spec of relativeImports(Deno.readTextFileSync(file))) {
      edges.push({ from: relative(lib, file), to: relative(lib, resolve(dirname(file), spec)) });
    }
  }
  return edges;
}

Deno.test("the rule: an import toward common/ is fine, one against it or sideways is named", () => {
  assert.deepEqual(
    violations([
      { from: "stress/runner.ts", to: "client/client.ts" },
      { from: "serve/server.ts", to: "serve/gate.ts" },
      { from: "serve/web/page.ts", to: "common/protocol.ts" },
    ]),
    [],
  );
  assert.deepEqual(
    violations([
      { from: "client/client.ts", to: "serve/server.ts" },
      { from: "verdict/pick.ts", to: "serve/server.ts" },
      { from: "common/log.ts", to: "claude/stream.ts" },
      { from: "stray.ts", to: "common/log.ts" },
      { from: "common/log.ts", to: "../main.ts" },
    ]),
    [
      "lib/client/client.ts imports lib/serve/server.ts: client/ may not import serve/ (imports point toward common/)",
      "lib/verdict/pick.ts imports lib/serve/server.ts: verdict/ may not import serve/ (imports point toward common/)",
      "lib/common/log.ts imports lib/claude/stream.ts: common/ may not import claude/ (imports point toward common/)",
      "lib/stray.ts is not in a subsystem folder",
      "lib/common/log.ts imports main.ts, outside lib/",
    ],
  );
});

Deno.test("the rule reads static, type-only, re-exported and dynamic imports, not JSDoc examples", () => {
  const text = [
    `/**`,
    ` * import { x } from "../serve/server.ts";`,
    ` */`,
    `import { a } from "./a.ts";`,
    `import type { B } from "../common/b.ts";`,
    `import {`,
    `  c,`,
    `  d,`,
    `} from "../claude/c.ts";`,
    `export { e } from "./e.ts";`,
    `const f = await import("../fleet/f.ts");`,
    `import { parseArgs } from "node:util";`,
  ].join("\n");
  assert.deepEqual(relativeImports(text), [
    "./a.ts",
    "../common/b.ts",
    "../claude/c.ts",
    "./e.ts",
    "../fleet/f.ts",
  ]);
});

Deno.test("lib/: every import points toward common/, and no folder cycle", () => {
  const edges = libEdges();
  assert.ok(edges.length > 100, `only ${edges.length} imports found: the scan is broken`);
  assert.deepEqual(violations(edges), []);
});

Deno.test("main.ts only dispatches: it imports commands/ and common/ alone", () => {
  const bad = relativeImports(Deno.readTextFileSync(join(ROOT, "main.ts")))
    .filter((s) => !/^\.\/lib\/(commands|common)\//.test(s));
  assert.deepEqual(bad, []);
});

Deno.test(`no module in lib/ is over ${MAX_LINES} lines`, () => {
  const long = libModules()
    .map((f) => ({ f: relative(ROOT, f), n: Deno.readTextFileSync(f).split("\n").length }))
    .filter(({ n }) => n > MAX_LINES)
    .map(({ f, n }) => `${f}: ${n} lines`);
  assert.deepEqual(long, []);
});

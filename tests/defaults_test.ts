import assert from "node:assert/strict";
import * as defaults from "../lib/fleet/defaults.ts";
import { DEFAULT_QUEUE_NAME } from "../lib/fleet/queue.ts";
import { DEFAULT_DRAIN_S, DEFAULT_LOCK_S } from "../lib/fleet/worker.ts";

Deno.test("the fleet's defaults that the commands declare are the queue's and the worker's", () => {
  assert.equal(defaults.DEFAULT_QUEUE_NAME, DEFAULT_QUEUE_NAME);
  assert.equal(defaults.DEFAULT_LOCK_S, DEFAULT_LOCK_S);
  assert.equal(defaults.DEFAULT_DRAIN_S, DEFAULT_DRAIN_S);
});

Deno.test("ccx does not load BullMQ at start (it costs ~13 MiB of RSS in every server)", async () => {
  // The modules `ccx` loads at start: main.ts's graph of static imports (dynamic ones, loaded
  // when a command needs them, left out). No fleet module that imports bullmq is among them.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../main.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  type Dep = { code?: { specifier: string }; isDynamic?: boolean };
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: Dep[] }[];
    redirects?: Record<string, string>;
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const walk = (spec: string) => {
    spec = info.redirects?.[spec] ?? spec;
    if (seen.has(spec)) return;
    seen.add(spec);
    for (const d of bySpec.get(spec)?.dependencies ?? []) {
      if (!d.isDynamic && d.code) walk(d.code.specifier);
    }
  };
  walk(info.roots[0]);
  assert.ok([...seen].some((s) => s.endsWith("/lib/serve/server.ts")), "main.ts's graph");
  const fleet = [...seen].filter((s) => /\/lib\/fleet\/(queue|worker)\.ts$|bullmq/.test(s));
  assert.deepEqual(fleet, []);
});

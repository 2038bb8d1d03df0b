/**
 * What a grader adds to a task, measured the way `ccx stress` grades (through an in-process
 * server, after a task job in a workspace): a check (`true`: the pure cost of one more job in
 * the task's workspace), a check with a hidden file shipped in (`sh test.sh`), and a rubric's
 * judge (the real Claude CLI against `ccx mock-api`, prompt on stdin, no tools), next to a
 * plain `claude -p` task run for scale. Prints the median, p90 and range of `--runs` runs each.
 * Standalone (not in `deno task bench`): it needs the real CLI, which the real-CLI test tier
 * installs into `.cache/claude-code/`.
 *
 * Usage: `deno run -A bench/graders.ts [--runs 20] [--claude PATH]`
 *
 * @example
 * ```sh
 * deno run -A bench/graders.ts --runs 20
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { startLocalServer } from "../lib/serve/local.ts";
import { CcxClient, runToEnd } from "../lib/client/client.ts";
import { runChecks, runJudge } from "../lib/exec/graders.ts";
import { mockApiEnv, MockApiServer } from "../lib/claude/mock_api/server.ts";
import { buildClaudeArgv } from "../lib/claude/argv.ts";

/** Median, p90, min and max of `xs` (seconds), as milliseconds. */
export function stats(xs: number[]): { median: number; p90: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
  const ms = (x: number) => Math.round(x * 10000) / 10;
  return { median: ms(at(0.5)), p90: ms(at(0.9)), min: ms(s[0]), max: ms(s[s.length - 1]) };
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "20" },
      claude: { type: "string", default: ".cache/claude-code/node_modules/.bin/claude" },
    },
  });
  const runs = Number(values.runs);
  const claude = Deno.realPathSync(values.claude!);
  const dir = await Deno.makeTempDir({ prefix: "ccx_bench_graders_" });
  const local = startLocalServer({ workspaceRoot: join(dir, "ws") });
  const api = MockApiServer.start();
  const client = await CcxClient.connect(local.url, { token: local.token });
  const env = { ...mockApiEnv(api.url, 0), HOME: dir, IS_SANDBOX: "1" };
  const hidden = [{ path: "test.sh", content: "grep -q 'print' a.py\n" }];
  const rows: [string, number[]][] = [
    ["check `true`", []],
    ["check with a hidden file", []],
    ["rubric judge (real CLI, mock API)", []],
    ["for scale: a `claude -p` task", []],
  ];
  try {
    for (let i = 0; i < runs; i++) {
      Deno.stderr.writeSync(new TextEncoder().encode(`\rrun ${i + 1}/${runs}`));
      const task = await runToEnd(client, {
        command: "echo 'print(1)' > a.py",
        workspace: { keep: "never" },
      });
      rows[0][1].push(
        await timed(async () => {
          const r = await runChecks(client, { jobId: task.jobId }, ["true"], { timeoutS: 60 });
          if (r.checks[0].status !== "passed") throw new Error(JSON.stringify(r));
        }),
      );
      rows[1][1].push(
        await timed(async () => {
          const r = await runChecks(client, { jobId: task.jobId }, ["sh test.sh"], {
            timeoutS: 60,
            files: hidden,
          });
          if (r.checks[0].status !== "passed") throw new Error(JSON.stringify(r));
        }),
      );
      rows[2][1].push(
        await timed(async () => {
          const r = await runJudge(client, {
            statements: ["The answer says that 2 + 2 is 4"],
            request: "What is 2+2? [[mock:judge:if:2 + 2 = 4]]",
            answer: "2 + 2 = 4",
            files: [{ path: "a.py", size: 9, text: "print(1)\n" }],
          }, { claude, timeoutS: 60, env });
          if (r.status !== "passed") throw new Error(JSON.stringify(r));
        }),
      );
      rows[3][1].push(
        await timed(async () => {
          const r = await runToEnd(client, {
            argv: buildClaudeArgv({ claude, prompt: "What is 2+2?", skipPermissions: true }),
            env,
            workspace: { keep: "never" },
          });
          if (r.exitCode !== 0) throw new Error(r.stdout + r.stderr);
        }),
      );
    }
    console.error("");
    console.log(`What a grader adds to a task (${runs} runs each, ms)`);
    console.log("| grader | median | p90 | min | max |\n| --- | --- | --- | --- | --- |");
    for (const [name, xs] of rows) {
      const s = stats(xs);
      console.log(`| ${name} | ${s.median} | ${s.p90} | ${s.min} | ${s.max} |`);
    }
  } finally {
    await client.close();
    await local.server.shutdown();
    await api.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `ccx stress`, second step: a {@linkcode StressPlan} run: the pre-flight, the servers (or an
 * in-process one, or the fleet), the tasks with progress and Ctrl+C, the live report.
 *
 * @module
 */

import { join } from "node:path";
import type { CcxServer } from "../serve/server.ts";
import { startLocalServer } from "../serve/local.ts";
import { buildTaskCommand, resolveMarker, usesClaude } from "../stress/task_command.ts";
import { LiveReport, rememberLastRun } from "../stress/rerun.ts";
import { preflight, rootStop } from "../stress/preflight.ts";
import { checkApiEndpoint } from "../claude/endpoint.ts";
import { processesInGroups } from "../common/proc.ts";
import { runTasks, type ServerTarget } from "../stress/runner.ts";
import { DEFAULT_QUEUE_NAME } from "../fleet/defaults.ts";
import { Progress } from "../stress/progress.ts";
import type { RunReport, TestResult } from "../stress/report/model.ts";
import type { HistoryStore } from "../claude/history.ts";
import { openHistory } from "../claude/history_store.ts";
import { connectRedis, redactUrl } from "../common/redis.ts";
import { Unwritten } from "../stress/unwritten.ts";
import { onStopSignals } from "../common/cli.ts";
import { formatTimestamp, plural } from "../common/format.ts";
import type { StressPlan } from "./stress_plan.ts";

/**
 * The `--page` line: the in-process server's page (loopback; its token in the link's fragment,
 * which the browser never sends and the page moves into the tab's session storage), or the page
 * of each `--server` (whose token the page asks for).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageNote } from "./stress_run.ts";
 * assert.equal(pageNote(undefined, [{ url: "wss://box:8004/ws" }]), "ccx stress: live page: https://box:8004/");
 * ```
 */
export function pageNote(
  local: { httpUrl: string; token?: string } | undefined,
  servers: Pick<ServerTarget, "url">[],
): string {
  const fragment = local?.token ? `#token=${encodeURIComponent(local.token)}` : "";
  const urls = local ? [`${local.httpUrl}/${fragment}`] : servers.map((s) => {
    const u = new URL(s.url);
    u.protocol = u.protocol === "wss:" ? "https:" : "http:";
    return `${u.origin}/`;
  });
  const more = local ? " (this run's own server: it stops when the run ends)" : "";
  return `ccx stress: live page${urls.length > 1 ? "s" : ""}: ${urls.join(" ")}${more}`;
}

/** What a run of `ccx stress` ended with, for {@linkcode finishStress} to judge and report. */
export interface StressOutcome {
  /**
   * The run's report, taken as it ended: the results (the resumed run's finished ones too), the
   * task runs not run and why, whether it was interrupted.
   */
  report: RunReport;
  /** How many task runs failed or errored (what `--max-fail` counts). */
  bad: number;
  /** Files the run could not write (a full `--out` disk); the reports are added to it. */
  unwritten: Unwritten;
}

/** Where the tasks run: the servers (the in-process one among them), none with `--queue`. */
interface Targets {
  /** The in-process server, when no `--server` or `--queue` was given. */
  local?: CcxServer;
  /** The servers the runner spreads the tasks over. */
  servers: ServerTarget[];
}

/**
 * The pre-flight, in the order that names the first thing wrong: the fleet's Redis answers, root
 * without `--sandbox`, then the servers (the in-process one started here), their token and Claude
 * CLI, and the Claude API. Resolves with where the tasks run, or 3 (nothing was run, stderr says why).
 */
async function preflightTargets(plan: StressPlan): Promise<Targets | number> {
  const { opts, suite, tasks, toRun, outDir } = plan;
  if (opts.queue) {
    // Pre-flight for the fleet: its Redis answers (workers may join later).
    try {
      await (await connectRedis(opts.queue)).quit();
    } catch (e) {
      console.error(`ccx stress: cannot run: ${(e as Error).message}`);
      console.error("ccx stress: nothing was run (exit 3).");
      return 3;
    }
  }
  // On the in-process server the Claude CLI runs as this user, here: a refusal as root and an
  // unreachable API are certain before any task starts.
  const here = !opts.queue && !opts.servers?.length;
  const claudeHere = here ? toRun.map((p) => p.task).filter(usesClaude) : [];
  const stamp = formatTimestamp();
  const refused = claudeHere.length === 0 ? undefined : rootStop({
    isRoot: opts.isRoot ?? Deno.uid() === 0,
    sandbox: opts.sandbox === true || Deno.env.get("IS_SANDBOX") === "1",
    commands: claudeHere.map((t) =>
      buildTaskCommand(t, { marker: resolveMarker(t, stamp), timestamp: stamp }, {
        claude: suite.claude,
      })
    ),
  });
  if (refused) {
    console.error(`ccx stress: cannot run: ${refused}`);
    console.error("ccx stress: nothing was run (exit 3).");
    return 3;
  }
  let local: CcxServer | undefined;
  let servers: ServerTarget[] = [];
  if (opts.queue) {
    // The fleet's workers run the tasks and record them in the queue's Redis history.
  } else if (opts.servers?.length) {
    servers = opts.servers.map((url) => ({ url, token: opts.token, ca: opts.ca }));
  } else {
    // Kept workspaces end up beside the run's reports. Templates: the ones the suite names.
    // Only this process knows its token: no other local user runs commands through it.
    const own = startLocalServer({
      workspaceRoot: join(outDir, "workspaces"),
      templateRoots: [...new Set(tasks.flatMap((t) => t.workspaceTemplate ?? []))],
      // Quiet about jobs; what is wrong with the server itself is the user's to know.
      warn: (line) => console.error(`ccx stress: ${line}`),
    });
    local = own.server;
    servers = [{ url: own.url, token: own.token }];
  }
  // A rubric's judge is the Claude CLI too, on the server where its task ran.
  const judged = toRun.some((p) => p.task.rubric !== undefined);
  const problems = await preflight({
    servers,
    claude: suite.claude,
    needClaude: judged || tasks.some(usesClaude),
  });
  if (problems.length === 0 && (claudeHere.length > 0 || (here && judged)) && !opts.noApiCheck) {
    const api = await checkApiEndpoint(Deno.env.toObject());
    if (api) problems.push(api);
  }
  if (problems.length > 0) {
    await local?.shutdown();
    for (const p of problems) console.error(`ccx stress: cannot run: ${p}`);
    console.error("ccx stress: nothing was run (exit 3).");
    return 3;
  }
  return { local, servers };
}

/**
 * Runs a {@linkcode StressPlan}: the pre-flight (exit 3 before any task starts when something the
 * run needs is missing), then every task run still to run on the servers, the in-process server
 * or the fleet, with the progress line, the live `report.json` and Ctrl+C (which cancels the
 * running tasks and ends the run as interrupted). Resolves with the {@linkcode StressOutcome}, or
 * with 3 when the pre-flight refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planStress } from "./stress_plan.ts";
 * import { runStress } from "./stress_run.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/suite.json`, JSON.stringify({
 *   tests: [{ id: "hello", command: "echo hello", expected_patterns: ["hello"] }],
 * }));
 * const cwd = Deno.cwd();
 * Deno.chdir(dir); // the run is remembered in ./test_outputs/.last-run
 * try {
 *   const plan = await planStress({ suite: "suite.json", noHistory: true });
 *   assert.ok(typeof plan === "object");
 *   const ran = await runStress(plan); // on an in-process server
 *   assert.ok(typeof ran === "object");
 *   assert.deepEqual(ran.report.results.map((r) => [r.id, r.status]), [["hello", "passed"]]);
 *   assert.equal(ran.bad, 0);
 * } finally {
 *   Deno.chdir(cwd);
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function runStress(plan: StressPlan): Promise<StressOutcome | number> {
  const { opts, suite, tasks, planned, toRun, resumed, runId, outDir, jsonPath } = plan;
  const { threshold, scale, meta } = plan;
  const targets = await preflightTargets(plan);
  if (typeof targets === "number") return targets;
  const { local, servers } = targets;
  // The resumed run's finished results, and each task run's as it finishes.
  const done = new Map(plan.done);
  let history: HistoryStore | undefined;
  // With --queue and no --redis, the workers record the runs in the queue's Redis.
  if (!opts.noHistory && (!opts.queue || opts.redisUrl)) {
    history = await openHistory({ redisUrl: opts.redisUrl }).catch((e) => {
      console.error(`ccx stress: timeout history not recorded: ${(e as Error).message}`);
      return undefined;
    });
  }

  const controller = new AbortController();
  const onInt = () => {
    if (controller.signal.aborted) return;
    console.error("\nccx stress: interrupted, canceling running tasks and writing reports…");
    controller.abort();
  };
  const releaseSignals = onStopSignals(onInt);

  const total = toRun.length;
  // Process groups of the running jobs, counted on the live line when they run on this host.
  const groups = new Map<string, number>();
  const progress = new Progress({
    total,
    processes: local ? () => processesInGroups(new Set(groups.values())) : undefined,
    stillRunningEveryS: opts.progressEveryS ?? 30,
  });
  if (resumed) {
    progress.note(
      `ccx stress: resuming ${runId}: ${planned.length - toRun.length} of ${planned.length} ` +
        "task runs already finished",
    );
  }
  const where = opts.queue
    ? `the fleet queue ${opts.queueName ?? DEFAULT_QUEUE_NAME} at ${redactUrl(opts.queue)}`
    : local
    ? "an in-process server"
    : servers.map((s) => s.url).join(", ");
  if (opts.page) {
    progress.note(pageNote(local && { httpUrl: local.httpUrl, token: servers[0]?.token }, servers));
  }
  progress.note(
    `ccx stress: ${plural(total, "task run")} from ${suite.name} on ${where}` +
      `${opts.queue ? "" : `, concurrency ${opts.concurrency ?? 1}`}` +
      `${scale !== 1 ? `, timeouts x${scale}` : ""}; outputs in ${outDir}`,
  );
  const startedAt = resumed?.startedAt ?? new Date();
  const t0 = performance.now() - (resumed?.durationS ?? 0) * 1000;
  const running = new Set<string>();
  let bad = 0;
  const stopped = () => opts.maxFail !== undefined && bad >= opts.maxFail;
  const notRunReason = (rid: string) =>
    running.has(rid)
      ? "running"
      : controller.signal.aborted
      ? "interrupted"
      : stopped()
      ? `--max-fail ${opts.maxFail} reached`
      : "not run yet";
  const snapshot = (): RunReport => ({
    runId,
    suite: suite.source,
    startedAt,
    durationS: (performance.now() - t0) / 1000,
    results: planned.filter((p) => done.has(p.rid)).map((p) => done.get(p.rid)!),
    skipped: planned.filter((p) => !done.has(p.rid)).map((p) => ({
      id: p.rid,
      name: p.task.name,
      category: p.task.category,
      reason: notRunReason(p.rid),
    })),
    interrupted: controller.signal.aborted,
    threshold,
    meta,
    ...((opts.repeat ?? 1) > 1 ? { repeat: opts.repeat } : {}),
  });
  // Files the run could not write (a full --out disk): the verdicts stand, the run exits 3.
  const unwritten = new Unwritten();
  const onNotWritten = (path: string, e: Error) => unwritten.add(path, "output", e);
  const live = new LiveReport(jsonPath);
  live.update(snapshot);
  await rememberLastRun(jsonPath).catch(() => {});
  // The fleet module loads BullMQ (~13 MiB): only for a run on a queue, not in every `ccx`.
  const fleet = opts.queue ? await import("../fleet/queue.ts") : undefined;
  try {
    const onStart = (id: string, worker?: string) => {
      running.add(id);
      progress.start(id, worker);
      live.update(snapshot);
    };
    const taskOf = new Map(planned.map((p) => [p.rid, p.task]));
    const onFinish = (r: TestResult) => {
      running.delete(r.id);
      r.request ??= taskOf.get(r.id)?.request; // the report shows it atop the conversation
      // A worker that took the task as the run was canceled handed it back unstarted: it stays
      // among the skipped ones rather than counting as an error.
      if (fleet && r.reason === fleet.CANCELED_BEFORE_START) return live.update(snapshot);
      for (const k of groups.keys()) if (k === r.id || k.startsWith(`${r.id}#`)) groups.delete(k);
      done.set(r.id, r);
      if (r.status !== "passed") bad++;
      progress.finish(r);
      live.update(snapshot);
    };
    await (fleet
      ? fleet.runOnQueue(tasks.filter((t) => toRun.some((p) => p.task === t)), {
        onOutput: (id, bytes, tail) => progress.outputSoFar(id, bytes, tail),
        onReady: (workers) => {
          if (workers === 0) {
            progress.note(
              "ccx stress: no worker takes tasks from this queue yet; the tasks wait for one " +
                "(start `ccx worker --queue URL` on a box)",
            );
          }
        },
        url: opts.queue!,
        queueName: opts.queueName,
        runId,
        repeat: opts.repeat,
        patternMode: opts.patternMode,
        timeoutScale: scale,
        outDir,
        claude: suite.claude,
        record: !opts.noHistory,
        history,
        workspace: !opts.noWorkspace,
        keepWorkspaces: opts.keepWorkspaces,
        model: opts.model,
        judgeModel: opts.judgeModel,
        sandbox: opts.sandbox,
        signal: controller.signal,
        onStart,
        onFinish,
        onNotWritten,
      })
      : runTasks(tasks, {
        servers,
        concurrency: opts.concurrency ?? 1,
        repeat: opts.repeat,
        patternMode: opts.patternMode,
        timeoutScale: scale,
        outDir,
        claude: suite.claude,
        history,
        sandbox: opts.sandbox,
        model: opts.model,
        judgeModel: opts.judgeModel,
        workspace: !opts.noWorkspace,
        keepWorkspaces: opts.keepWorkspaces,
        jobMeta: { suite: suite.name, run_id: runId, run_total: total },
        signal: controller.signal,
        skip: new Set(done.keys()),
        stop: stopped,
        onJobStarted: (id, pgid) => groups.set(`${id}#${pgid}`, pgid),
        onOutput: (id, type, data) => progress.output(id, type, data),
        onStart: (id) => onStart(id),
        onFinish,
        onNotWritten,
      }));
  } finally {
    progress.stop();
    releaseSignals();
    await history?.close().catch(() => {});
    await local?.shutdown();
    // Only kept workspaces stay; an empty directory says nothing.
    if (local) await Deno.remove(join(outDir, "workspaces")).catch(() => {});
  }
  // A live write that failed is retried by the final one, which says what it could not write.
  await live.flush().catch(() => {});
  return { report: snapshot(), bad, unwritten };
}

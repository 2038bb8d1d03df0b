/**
 * `ccx stress`: load and validate a suite, run it through one or more ccx
 * servers (or an in-process one), show progress, write every report, and exit 0
 * only when the run graduates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stressCommand } from "./stress.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/suite.json`, JSON.stringify({
 *   tests: [{ id: "hello", command: "echo hello", expected_patterns: ["hello"] }],
 * }));
 * const cwd = Deno.cwd();
 * Deno.chdir(dir); // runs go to ./test_outputs/<run-id>/
 * try {
 *   assert.equal(await stressCommand({ suite: "suite.json", concurrency: 4, noHistory: true }), 0); // graduated
 * } finally {
 *   Deno.chdir(cwd);
 * }
 * assert.ok(Deno.statSync(`${dir}/test_outputs/.last-run`).isFile); // what --last-failed reruns
 * Deno.removeSync(dir, { recursive: true });
 * ```
 * @module
 */

import { hostname, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { CcxServer } from "../serve/server.ts";
import { startLocalServer } from "../serve/local.ts";
import type { KeepPolicy } from "../serve/workspace.ts";
import { buildTaskCommand, resolveMarker, usesClaude } from "../stress/task_command.ts";
import { filterTasks } from "../stress/task_filter.ts";
import { loadSuite } from "../stress/suite_load.ts";
import { SuiteError } from "../stress/suite_model.ts";
import { withCheckFiles } from "../stress/check_files.ts";
import { compareRuns } from "../stress/compare.ts";
import { graderCounts, graderLines } from "../stress/grade.ts";
import { VERSION } from "../common/protocol.ts";
import { shellQuote } from "../stress/shell_template.ts";
import {
  findLastRun,
  findLastRunOf,
  LiveReport,
  readRun,
  rememberLastRun,
  reportPathOf,
  rerunArgs,
  RUNS_DIR,
} from "../stress/rerun.ts";
import { preflight, rootStop, serverUrl } from "../stress/preflight.ts";
import { checkApiEndpoint } from "../claude/endpoint.ts";
import { processesInGroups } from "../common/proc.ts";
import { planRuns, runTasks, type ServerTarget } from "../stress/runner.ts";
import { DEFAULT_QUEUE_NAME } from "../fleet/defaults.ts";
import { colorEnabled, Progress } from "../stress/progress.ts";
import { formatRatioLine } from "../stress/report/format.ts";
import { formatSummaryTable } from "../stress/report/console.ts";
import {
  type RunMeta,
  type RunReport,
  summarize,
  type TestResult,
} from "../stress/report/model.ts";
import { writeReports } from "../stress/report/files.ts";
import type { HistoryStore } from "../claude/history.ts";
import { openHistory } from "../claude/history_store.ts";
import { connectRedis, redactUrl } from "../common/redis.ts";
import { Unwritten } from "../stress/unwritten.ts";
import { type Command, defineCommand, onStopSignals, type OptionDecls } from "../common/cli.ts";
import { ConfigError, readPemFile } from "../common/config.ts";
import { STRESS_OPTIONS } from "./stress_flags.ts";
import { formatTimestamp, newRunId, plural } from "../common/format.ts";

/** Options of `ccx stress`. */
export interface StressOptions {
  /** Path of the suite file (default: the resumed run's, else the shipped suite). */
  suite?: string;
  /** Server URLs; without any, an in-process server on an ephemeral loopback port. */
  servers?: string[];
  /** Token for the servers. */
  token?: string;
  /** PEM text of a private CA (or self-signed certificate) to trust for `wss://`. */
  ca?: string;
  /** Tasks running at once (default 1). */
  concurrency?: number;
  /** Runs of every task (default 1). */
  repeat?: number;
  /** Only these categories (case-insensitive). */
  categories?: string[];
  /** Only tasks whose id or name matches this regular expression (case-insensitive). */
  filter?: string;
  /** Leave out tasks whose id or name matches any of these regular expressions. */
  exclude?: string[];
  /** Continue the run whose directory (or report.json) this is, without rerunning what finished. */
  resume?: string;
  /** Rerun only the failed and errored tasks of the last run. */
  lastFailed?: boolean;
  /** Print the tasks and their commands, run nothing. */
  list?: boolean;
  /** Start no more tasks once this many failed or errored. */
  maxFail?: number;
  /** Output directory for task outputs (default test_outputs/<run-id>). */
  out?: string;
  /** Path of the JSON report (default `<out>/report.json`). */
  json?: string;
  /** Path of the JUnit XML report. */
  junit?: string;
  /** Path of the HTML report. */
  html?: string;
  /** Whether all expected patterns must be found, or any (default all). */
  patternMode?: "all" | "any";
  /** Required ratio (default 10). */
  threshold?: number;
  /** A factor, or "auto" (×3 when the 1-minute load average exceeds 14). */
  timeoutScale?: number | "auto";
  /** The Claude executable (default `claude` on PATH). */
  claude?: string;
  /** Shared history (Redis URL); default the local SQLite file. */
  redisUrl?: string;
  /** Do not record runs in the timeout history. */
  noHistory?: boolean;
  /** Run on the fleet: the `redis://` or `rediss://` URL of the queue `ccx worker`s take from. */
  queue?: string;
  /** Queue name (default `ccx`). */
  queueName?: string;
  /** Run tasks in the server's directory instead of a workspace each. */
  noWorkspace?: boolean;
  /** What servers keep of task workspaces (default `failed`). */
  keepWorkspaces?: KeepPolicy;
  /** Only check the suite: print problems and warnings, run nothing. */
  validate?: boolean;
  /** `--sandbox` (or `CCX_SANDBOX=1`): Claude tasks get `IS_SANDBOX=1` (root on a sandbox box). */
  sandbox?: boolean;
  /** `--model`: the model of every Claude task. */
  model?: string;
  /** `--judge-model`: the model of rubric judges (default: the CLI's). */
  judgeModel?: string;
  /** `--baseline PATH|last`: compare with an earlier run (a report.json or a run directory). */
  baseline?: string;
  /** `--fail-on-regression`: exit 1 when a task that passed in the baseline does not now. */
  failOnRegression?: boolean;
  /** `--page`: print the URL of the web page that shows the run live. */
  page?: boolean;
  /** `--strict`: any failed or errored task exits 1, whatever the ratio. */
  strict?: boolean;
  /** `--no-api-check`: do not check that the Claude API endpoint accepts a connection. */
  noApiCheck?: boolean;
  /**
   * `--progress-every S`: on a non-terminal, a line for every running task each S seconds
   * (default 30; 0 never).
   */
  progressEveryS?: number;
  /** Whether ccx runs as root (default: `Deno.uid() === 0`); the root pre-flight reads it. */
  isRoot?: boolean;
  /**
   * The command line after `stress`, as given: the rerun hints repeat its flags and the
   * reports record it (default: `Deno.args`).
   */
  args?: readonly string[];
}

/**
 * The command that reruns a run: `ccx stress FLAG…` followed by the flags and arguments the run
 * was given (`args`), shell-quoted, without `--resume`, `--last-failed`, `--out` and `--json`
 * (the rerun gets a run directory of its own, so the first run's report stays) and without
 * secrets, which the environment or `./.env` must hold (a note says so).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rerunHint, stress } from "./stress.ts";
 * assert.equal(
 *   rerunHint(["--last-failed"], ["tasks/t.json", "--sandbox", "--claude", "my claude"], stress.decl.options),
 *   "ccx stress --last-failed tasks/t.json --sandbox --claude 'my claude'",
 * );
 * ```
 */
export function rerunHint(
  lead: string[],
  args: readonly string[] | undefined,
  options: OptionDecls,
): string {
  const kept = rerunArgs(args ?? [], options, ["resume", "last-failed", "out", "json"]);
  const line = ["ccx", "stress", ...lead, ...kept.args].map(shellQuote).join(" ");
  if (!kept.secrets.length) return line;
  return `${line}\n  (${kept.secrets.join(", ")} not repeated: ccx never prints a secret; set it ` +
    "in the environment or ./.env, e.g. CCX_TOKEN, CCX_QUEUE, REDIS_URL)";
}

/**
 * One line per Claude failure kind among `results` that has a fix, saying once what to do:
 * `root_refused (3 tasks): as root the CLI refuses …`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fixLines } from "./stress.ts";
 * assert.deepEqual(fixLines([{ kind: "auth", fix: "check ANTHROPIC_API_KEY" }, { kind: "auth", fix: "…" }]), [
 *   "auth (2 tasks): check ANTHROPIC_API_KEY",
 * ]);
 * ```
 */
export function fixLines(results: { kind?: string; fix?: string }[]): string[] {
  const byKind = new Map<string, { fix: string; n: number }>();
  for (const r of results) {
    if (!r.kind || !r.fix) continue;
    const have = byKind.get(r.kind);
    if (have) have.n++;
    else byKind.set(r.kind, { fix: r.fix, n: 1 });
  }
  return [...byKind].map(([k, v]) => `${k} (${v.n} task${v.n === 1 ? "" : "s"}): ${v.fix}`);
}

/**
 * The factor `--timeout-scale auto` uses: 3 when the 1-minute load average
 * exceeds 14 (the seed's advice), else 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { autoTimeoutScale } from "./stress.ts";
 * assert.equal(autoTimeoutScale(20), 3);
 * assert.equal(autoTimeoutScale(2), 1);
 * ```
 */
export function autoTimeoutScale(load1 = loadavg()[0]): number {
  return load1 > 14 ? 3 : 1;
}

/** `sha256:<hex>` of the suite file's bytes, or `undefined` when it cannot be read. */
async function suiteHash(path: string): Promise<string | undefined> {
  try {
    const bytes = await Deno.readFile(path);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  } catch {
    return undefined;
  }
}

/** The suite `ccx stress` runs when given none. */
export const DEFAULT_SUITE = "tasks/unified_stress_test_tasks.json";

/**
 * The `--page` line: the in-process server's page (loopback; its token in the link's fragment,
 * which the browser never sends and the page moves into the tab's session storage), or the page
 * of each `--server` (whose token the page asks for).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageNote } from "./stress.ts";
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

/**
 * Runs the suite; resolves with the exit code: 0 graduated, 1 ran but did not graduate, 2 bad
 * input, 3 could not run (a server, the token or the Claude CLI; see `preflight.ts`), 130
 * interrupted.
 */
export async function stressCommand(opts: StressOptions): Promise<number> {
  try {
    for (const url of opts.servers ?? []) serverUrl(url);
  } catch (e) {
    console.error(`ccx stress: ${(e as Error).message}`);
    return 2;
  }
  // In-process jobs run in workspaces of their own, where a relative --claude path (the README's
  // `--claude tests/fixtures/claude`) would name nothing: it means a path from here.
  const claude = opts.claude?.includes("/") && !opts.servers?.length
    ? resolve(opts.claude)
    : opts.claude;
  if (opts.failOnRegression && opts.baseline === undefined) {
    console.error(
      "ccx stress: --fail-on-regression needs --baseline PATH|last: there is nothing to regress from",
    );
    return 2;
  }
  if (opts.resume !== undefined && opts.lastFailed) {
    console.error("ccx stress: --resume and --last-failed do not go together: pick one");
    return 2;
  }
  let previous: RunReport | undefined;
  let previousPath: string | undefined;
  if (opts.resume !== undefined || opts.lastFailed) {
    const flag = opts.resume !== undefined ? "--resume" : "--last-failed";
    previousPath = opts.resume ?? await findLastRun();
    if (previousPath === undefined) {
      console.error(`ccx stress: --last-failed: no previous run under ${RUNS_DIR}/`);
      return 2;
    }
    try {
      previous = await readRun(previousPath);
    } catch (e) {
      console.error(`ccx stress: ${flag}: ${(e as Error).message}`);
      return 2;
    }
  }
  const suitePath = opts.suite ?? previous?.suite ?? DEFAULT_SUITE;
  let suite;
  try {
    suite = await loadSuite(suitePath, { claude });
  } catch (e) {
    if (e instanceof SuiteError) {
      console.error(e.message);
      return 2;
    }
    if (e instanceof Deno.errors.NotFound) {
      console.error(`ccx stress: suite not found: ${suitePath}`);
      return 2;
    }
    throw e;
  }
  for (const w of suite.warnings ?? []) {
    console.error(`ccx stress: warning: ${suitePath}: ${w.path}: ${w.message}`);
  }
  if (opts.validate) {
    const cats = new Set(suite.tasks.map((t) => t.category)).size;
    console.log(
      `${suitePath}: valid, ${plural(suite.tasks.length, "task")} in ${cats} categor${
        cats === 1 ? "y" : "ies"
      }${graderCounts(suite.tasks)}${
        suite.warnings?.length ? `, ${plural(suite.warnings.length, "warning")}` : ""
      }`,
    );
    return 0;
  }
  let tasks;
  try {
    tasks = filterTasks(suite, {
      categories: opts.categories,
      filter: opts.filter,
      exclude: opts.exclude,
    });
  } catch (e) {
    console.error(`ccx stress: ${(e as Error).message}`);
    return 2;
  }
  if (tasks.length === 0) {
    console.error("ccx stress: no task matches --category/--filter/--exclude");
    return 2;
  }
  if (opts.lastFailed && previous) {
    const bad = new Set(
      previous.results.filter((r) => r.status !== "passed").map((r) => r.id.replace(/\.r\d+$/, "")),
    );
    tasks = tasks.filter((t) => bad.has(t.id));
    if (tasks.length === 0) {
      console.log(`ccx stress: no failed or errored task in the last run (${previousPath}).`);
      return 0;
    }
  }
  // Hidden tests are read here and shipped with each task to the server that runs it.
  try {
    tasks = await withCheckFiles(tasks);
  } catch (e) {
    console.error(`ccx stress: ${(e as Error).message}`);
    return 2;
  }
  const planned = planRuns(tasks, opts.repeat);
  if (opts.list) {
    const ts = formatTimestamp();
    for (const { task, rid } of planned) {
      const built = buildTaskCommand(
        task,
        { marker: resolveMarker(task, ts), timestamp: ts, model: opts.model },
        { claude: suite.claude },
      );
      console.log(`${rid}  [${task.category}]  ${built.display}`);
      for (const line of graderLines(task)) console.log(`    ${line}`);
    }
    console.log(`${planned.length} task runs from ${suitePath}`);
    return 0;
  }
  const threshold = opts.threshold ?? 10;
  const resumed = opts.resume !== undefined ? previous : undefined;
  const runId = resumed?.runId || newRunId();
  const outDir = opts.out ??
    (resumed && previousPath ? dirname(await reportPathOf(previousPath)) : join(RUNS_DIR, runId));
  const jsonPath = opts.json ?? join(outDir, "report.json");
  // What finished stays; what was cut off by the interruption runs again.
  const done = new Map(
    (resumed?.results ?? []).filter((r) => !(r.status === "error" && r.reason === "interrupted"))
      .map((r) => [r.id, r]),
  );
  const toRun = planned.filter((p) => !done.has(p.rid));
  // The baseline to compare with, read now: the run about to start must not be its own.
  let baseline: { report: RunReport; path: string } | undefined;
  if (opts.baseline !== undefined) {
    const path = opts.baseline === "last"
      ? await findLastRunOf(suite.source, RUNS_DIR, jsonPath)
      : opts.baseline;
    if (path === undefined) {
      console.error(
        `ccx stress: --baseline last: no earlier run of ${suite.source} under ${RUNS_DIR}/; ` +
          "nothing to compare with",
      );
    } else {
      try {
        baseline = { report: await readRun(path), path: await reportPathOf(path) };
      } catch (e) {
        console.error(`ccx stress: --baseline: ${(e as Error).message}`);
        return 2;
      }
    }
  }
  const meta: RunMeta = {
    ccxVersion: VERSION,
    host: hostname(),
    // Recorded in the reports: the command line as given (`args`), else this process's.
    commandLine: opts.args ? ["stress", ...opts.args] : [...Deno.args],
    suiteHash: await suiteHash(suite.source),
    ...(opts.model ? { model: opts.model } : {}),
    ...(opts.judgeModel ? { judgeModel: opts.judgeModel } : {}),
  };
  const scale = opts.timeoutScale === "auto" || opts.timeoutScale === undefined
    ? (opts.timeoutScale === "auto" ? autoTimeoutScale() : 1)
    : opts.timeoutScale;

  if (opts.queue) {
    if (opts.page) {
      console.error(
        "ccx stress: --page shows the jobs of this machine's server; with --queue the tasks run " +
          "on the workers' own servers: leave out --page",
      );
      return 2;
    }
    if (opts.servers?.length) {
      console.error(
        "ccx stress: --queue and --server exclude each other: the fleet's workers run the tasks",
      );
      return 2;
    }
    // The fleet module loads BullMQ (~13 MiB): only for a run on a queue, not in every `ccx`.
    const { checkQueueUrl } = await import("../fleet/queue.ts");
    try {
      checkQueueUrl(opts.queue);
    } catch (e) {
      console.error(`ccx stress: ${(e as Error).message}`);
      return 2;
    }
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
  const report = snapshot();
  if (baseline) report.comparison = compareRuns(baseline.report, report, baseline.path);
  const results = report.results;
  // Each report on its own: one that cannot be written does not keep the others from it.
  const written: string[] = [];
  for (
    const [path, paths] of [
      [jsonPath, { json: jsonPath }],
      [opts.junit, { junit: opts.junit }],
      [opts.html, { html: opts.html }],
    ] as const
  ) {
    if (path === undefined) continue;
    if (await unwritten.write(path, "report", () => writeReports(report, paths))) {
      written.push(path);
    } else if (path === jsonPath && await Deno.stat(path).then(() => true, () => false)) {
      unwritten.files.at(-1)!.stale = true;
    }
  }
  const color = colorEnabled(Deno.stdout.isTerminal());
  console.log(formatSummaryTable(report, { color }));
  const summary = summarize(results, threshold);
  for (const line of fixLines(results)) console.log(`Fix: ${line}`);
  if (written.length > 0) console.log(`Reports: ${written.join(", ")}`);
  const notWritten = unwritten.lines();
  for (const line of notWritten) console.error(`ccx stress: ${line}`);
  if (report.interrupted) {
    console.log(`Interrupted after ${results.length} of ${planned.length} task runs.`);
    console.log(
      `Continue with: ${rerunHint(["--resume", outDir], opts.args, stress.decl.options)}`,
    );
    return 130;
  }
  if (stopped() && report.skipped?.length) {
    console.log(
      `Stopped after ${bad} failed or errored (--max-fail ${opts.maxFail}); ` +
        `${report.skipped.length} task runs skipped.`,
    );
  }
  if (bad > 0) {
    console.log(
      `Rerun the failures with: ${rerunHint(["--last-failed"], opts.args, stress.decl.options)}`,
    );
  }
  // The table ends with the ratio line already; repeat it only if it does not.
  const ratio = formatRatioLine(summary, threshold);
  if (!formatSummaryTable(report, { color: false }).includes(ratio)) console.log(ratio);
  if (notWritten.length > 0) {
    console.error(
      "ccx stress: the verdicts above are the tasks' own; the files listed were not written " +
        "(exit 3).",
    );
    return 3;
  }
  // Every task ended in a Claude or infrastructure failure (not logged in, CLI refused to start,
  // …): the model was never asked, so this is "could not run", not a regression.
  if (results.length > 0 && results.every((r) => r.status === "error" && r.kind !== undefined)) {
    console.log(
      "Nothing could run: every task ended in a Claude or infrastructure failure (exit 3).",
    );
    return 3;
  }
  const regressed = report.comparison?.regressed.length ?? 0;
  if (opts.failOnRegression && regressed > 0) {
    console.log(
      `${regressed} task${regressed === 1 ? "" : "s"} regressed since the baseline ` +
        "(--fail-on-regression): exit 1.",
    );
    return 1;
  }
  if (opts.strict && summary.failed + summary.errors > 0) {
    console.log(
      `--strict: ${summary.failed} failed and ${summary.errors} errored (exit 1, whatever the ratio)`,
    );
    return 1;
  }
  return summary.graduated ? 0 : 1;
}

/** The `ccx stress` declaration: its options, help and how they become {@linkcode StressOptions}. */
export const stress: Command = defineCommand({
  name: "stress",
  summary: "run a suite of tasks through ccx servers and report a pass ratio",
  args: "[SUITE]",
  positionals: [[
    "SUITE",
    "suite file (default: the resumed run's, else tasks/unified_stress_test_tasks.json)",
  ]],
  options: STRESS_OPTIONS,
  notes: [
    "Exit: 0 when the run graduates: passed >= R x (failed + errors), R being --threshold",
    "(10), and no task errored; so 10 passed and 1 failed exits 0 (10:1), 10 passed and 1",
    "error exits 1. --strict exits 1 on any failure or error. 1 ran but did not graduate;",
    "2 bad input; 3 could not run (server down, token refused, Claude CLI missing, root",
    "without --sandbox, the Claude API unreachable: checked before any task starts; or every",
    "task ended in a Claude/infrastructure failure); 130 after Ctrl+C (reports are written).",
    "With --queue the tasks run on `ccx worker` boxes (their concurrency applies, not",
    "--concurrency); runs are recorded in --redis, else by the workers in the queue's Redis.",
    "Ctrl+C removes the run's waiting tasks and cancels its running ones on the workers.",
    "Graders (suite fields check, check_files, rubric) run on the server where the task ran;",
    "a check that cannot run or a judge without a verdict makes the task an error.",
    "--fail-on-regression needs --baseline (exit 2 without); with it, any regression exits 1.",
  ],
  run(o, positionals, args) {
    if (positionals.length > 1) {
      throw new ConfigError(`one suite at a time, got ${positionals.length}`);
    }
    return stressCommand({
      suite: positionals[0],
      servers: o.server,
      token: o.token,
      ca: readPemFile("ca", o.ca),
      concurrency: o.concurrency,
      repeat: o.repeat,
      categories: o.category,
      filter: o.filter,
      exclude: o.exclude,
      list: o.list,
      maxFail: o["max-fail"] ?? (o.exitfirst ? 1 : undefined),
      resume: o.resume,
      lastFailed: o["last-failed"],
      out: o.out,
      json: o.json,
      junit: o.junit,
      html: o.html,
      patternMode: o["pattern-mode"],
      threshold: o.threshold,
      timeoutScale: o["timeout-scale"],
      claude: o.claude,
      redisUrl: o.redis,
      noHistory: o["no-history"],
      sandbox: o.sandbox,
      queue: o.queue,
      queueName: o["queue-name"],
      noWorkspace: o["no-workspace"],
      keepWorkspaces: o["keep-workspaces"],
      validate: o.validate,
      model: o.model,
      judgeModel: o["judge-model"],
      baseline: o.baseline,
      failOnRegression: o["fail-on-regression"],
      page: o.page,
      strict: o.strict,
      noApiCheck: o["no-api-check"],
      progressEveryS: o["progress-every"],
      args,
    });
  },
});

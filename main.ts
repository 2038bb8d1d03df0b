/**
 * ccx: run AI coding CLIs (and any command) unattended and at volume.
 * This file only parses arguments and dispatches to `lib/commands/`.
 *
 * @example
 * ```sh
 * deno run -A main.ts serve --port 8004
 * deno run -A main.ts run -- echo hello
 * ```
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { VERSION } from "./lib/protocol.ts";
import { ConfigError, environment, Settings } from "./lib/config.ts";
import { serveCommand } from "./lib/commands/serve.ts";
import { runCommand } from "./lib/commands/run.ts";
import { historyCommand } from "./lib/commands/history.ts";
import { stressCommand } from "./lib/commands/stress.ts";
import { execCommand } from "./lib/commands/exec.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;
type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

interface CommandSpec {
  summary: string;
  usage: string;
  options: Options;
  /** Help lines for the options, in order. */
  help: string[];
  /** Everything after `--` is the command (run) rather than positionals. */
  takesCommand?: boolean;
  main(values: Values, positionals: string[], settings: Settings): Promise<number>;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

const COMMANDS: Record<string, CommandSpec> = {
  serve: {
    summary: "WebSocket JSON-RPC server that runs commands as supervised process groups",
    usage: "ccx serve [options]",
    options: {
      host: { type: "string" },
      port: { type: "string", short: "p" },
      token: { type: "string" },
      "allow-origin": { type: "string", multiple: true },
      "max-sessions": { type: "string" },
      "max-jobs-per-session": { type: "string" },
      "grace-ms": { type: "string" },
      "heartbeat-s": { type: "string" },
      "max-message-bytes": { type: "string" },
      "default-timeout": { type: "string" },
      quiet: { type: "boolean", short: "q" },
    },
    help: [
      "--host H                  address to bind (CCX_HOST, default 127.0.0.1; non-loopback needs a token)",
      "--port, -p P              port (CCX_PORT, default 8004; 0 = any free port)",
      "--token T                 require this token: Authorization: Bearer T or ?token=T (CCX_TOKEN)",
      "--allow-origin O          browser Origin allowed to connect; repeatable (CCX_ALLOW_ORIGIN, comma-separated)",
      "--max-sessions N          concurrent connections (CCX_MAX_SESSIONS, default 64)",
      "--max-jobs-per-session N  running jobs per connection (CCX_MAX_JOBS_PER_SESSION, default 32)",
      "--grace-ms N              SIGTERM to SIGKILL grace (CCX_GRACE_MS, default 2000)",
      "--heartbeat-s N           seconds between heartbeats, 0 = off (CCX_HEARTBEAT_S, default 20)",
      "--max-message-bytes N     largest accepted message (CCX_MAX_MESSAGE_BYTES, default 4194304)",
      "--default-timeout S       timeout for jobs that give none (CCX_DEFAULT_TIMEOUT, default 3600)",
      "--quiet, -q               no per-job log lines on stderr",
      "Settings come from flags, then the environment, then ./.env.",
    ],
    main(v, _p, s) {
      return serveCommand({
        host: s.string("host", "CCX_HOST", "127.0.0.1"),
        port: s.int("port", "CCX_PORT", 8004, { min: 0, max: 65535 }),
        token: s.string("token", "CCX_TOKEN"),
        allowOrigins: s.list("allow-origin", "CCX_ALLOW_ORIGIN"),
        maxSessions: s.int("max-sessions", "CCX_MAX_SESSIONS", 64, { min: 1 }),
        maxJobsPerSession: s.int("max-jobs-per-session", "CCX_MAX_JOBS_PER_SESSION", 32, {
          min: 1,
        }),
        graceMs: s.int("grace-ms", "CCX_GRACE_MS", 2000, { min: 0 }),
        heartbeatS: s.number("heartbeat-s", "CCX_HEARTBEAT_S", 20, { min: 0 }),
        maxMessageBytes: s.int("max-message-bytes", "CCX_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, {
          min: 1024,
        }),
        defaultTimeoutS: s.number("default-timeout", "CCX_DEFAULT_TIMEOUT", 3600, { min: 0.001 }),
        log: v.quiet ? () => {} : undefined,
      });
    },
  },
  run: {
    summary: "run one command on a server and stream its output; exit with its code",
    usage: "ccx run [options] -- CMD [ARGS...]",
    takesCommand: true,
    options: {
      server: { type: "string", short: "s" },
      token: { type: "string" },
      timeout: { type: "string", short: "t" },
      "stall-timeout": { type: "string" },
      cwd: { type: "string" },
      shell: { type: "boolean" },
    },
    help: [
      "--server, -s URL     server, e.g. ws://127.0.0.1:8004/ws (CCX_SERVER; default: an in-process server)",
      "--token T            token for the server (CCX_TOKEN)",
      "--timeout, -t S      whole-run timeout in seconds (exit 124 when it fires)",
      "--stall-timeout S    seconds without output before the job is stopped (exit 124)",
      "--cwd DIR            working directory of the command",
      "--shell              run CMD ARGS... as one /bin/sh -c command line",
      "Exit code: the command's; 124 on timeout or stall; 130 after Ctrl+C (the job is canceled).",
    ],
    main(_v, command, s) {
      if (command.length === 0) throw new ConfigError("run: no command given (ccx run -- CMD ...)");
      return runCommand({
        argv: command,
        shell: _v.shell === true,
        server: s.string("server", "CCX_SERVER"),
        token: s.string("token", "CCX_TOKEN"),
        timeoutS: s.number("timeout", undefined, undefined, { min: 0.001 }),
        stallTimeoutS: s.number("stall-timeout", undefined, undefined, { min: 0.001 }),
        cwd: str(_v.cwd),
      });
    },
  },
  stress: {
    summary: "run a suite of tasks through ccx servers and report a pass ratio",
    usage: "ccx stress [SUITE] [options]",
    options: {
      server: { type: "string", short: "s", multiple: true },
      token: { type: "string" },
      concurrency: { type: "string", short: "c" },
      repeat: { type: "string" },
      category: { type: "string", multiple: true },
      filter: { type: "string" },
      out: { type: "string" },
      json: { type: "string" },
      junit: { type: "string" },
      html: { type: "string" },
      "pattern-mode": { type: "string" },
      threshold: { type: "string" },
      "timeout-scale": { type: "string" },
      claude: { type: "string" },
      redis: { type: "string" },
      "no-history": { type: "boolean" },
    },
    help: [
      "SUITE                  suite file (default tasks/unified_stress_test_tasks.json)",
      "--server, -s URL       a ccx server; repeat to spread tasks over several (default: in-process)",
      "--token T              token for the servers (CCX_TOKEN)",
      "--concurrency, -c N    tasks at once (default 1)",
      "--repeat N             run every task N times (default 1)",
      "--category NAME        only this category; repeatable",
      "--filter TEXT          only tasks whose id or name contains TEXT",
      "--out DIR              task outputs (default test_outputs/<run-id>); report.json goes there too",
      "--json FILE            JSON report",
      "--junit FILE           JUnit XML report",
      "--html FILE            one-page HTML report",
      "--pattern-mode M       all (default) or any expected pattern must be found",
      "--threshold R          pass ratio needed to graduate (default 10, i.e. 10:1)",
      "--timeout-scale X      multiply timeouts by X, or auto: x3 when the load average exceeds 14",
      "--claude CMD           the Claude executable (CCX_CLAUDE, default claude on PATH)",
      "--redis URL            record runs in a shared Redis history (REDIS_URL)",
      "--no-history           do not record runs in the timeout history",
      "Exit: 0 when the ratio meets the threshold and nothing errored; 1 otherwise;",
      "2 for bad input; 130 after Ctrl+C (reports are still written).",
    ],
    main(v, positionals, s) {
      if (positionals.length > 1) {
        throw new ConfigError(`stress: one suite at a time, got ${positionals.length}`);
      }
      const mode = s.string("pattern-mode", undefined, "all");
      if (mode !== "all" && mode !== "any") {
        throw new ConfigError(`--pattern-mode: expected all or any, got ${JSON.stringify(mode)}`);
      }
      const ts = s.string("timeout-scale", undefined);
      return stressCommand({
        suite: positionals[0] ?? "tasks/unified_stress_test_tasks.json",
        servers: s.list("server", "CCX_SERVER"),
        token: s.string("token", "CCX_TOKEN"),
        concurrency: s.int("concurrency", undefined, 1, { min: 1, max: 1024 }),
        repeat: s.int("repeat", undefined, 1, { min: 1 }),
        categories: s.list("category", undefined),
        filter: str(v.filter),
        out: str(v.out),
        json: str(v.json),
        junit: str(v.junit),
        html: str(v.html),
        patternMode: mode,
        threshold: s.number("threshold", undefined, 10, { min: 0 }),
        timeoutScale: ts === "auto" ? "auto" : s.number("timeout-scale", undefined, 1, {
          min: 0.01,
        }),
        claude: s.string("claude", "CCX_CLAUDE"),
        redisUrl: s.string("redis", "REDIS_URL"),
        noHistory: v["no-history"] === true,
      });
    },
  },
  exec: {
    summary: "run one Claude task with success criteria, a timeout from history, and retries",
    usage: "ccx exec TASK [options]",
    options: {
      criterion: { type: "string", multiple: true },
      timeout: { type: "string", short: "t" },
      "stall-timeout": { type: "string" },
      retries: { type: "string" },
      tools: { type: "string" },
      model: { type: "string" },
      "max-turns": { type: "string" },
      cwd: { type: "string" },
      server: { type: "string", short: "s" },
      token: { type: "string" },
      claude: { type: "string" },
      json: { type: "boolean" },
      instances: { type: "string" },
      pick: { type: "string" },
      redis: { type: "string" },
      sandbox: { type: "boolean" },
    },
    help: [
      'TASK                  the task, or a whole request ("... Expect a timeout of 45 seconds.',
      '                      Evaluate the response based on: 1) File config.py exists ...")',
      "--criterion TEXT      a success criterion; repeatable (adds to those in TASK)",
      "--timeout, -t S|auto  whole-run timeout per attempt; auto = estimate from history",
      "--stall-timeout S     seconds without output before an attempt is stopped",
      "--retries N           retries with a refined prompt (default 2)",
      "--tools auto|none|L   the CLI's --tools: chosen from the task's verbs, none (--tools \"\"), or a list",
      "--model M             Claude model",
      "--max-turns N         Claude's --max-turns (0 is accepted, as the CLI does)",
      "--cwd DIR             working directory of the run (file criteria are checked there)",
      "--server, -s URL      a ccx server (CCX_SERVER; default: in-process)",
      "--token T             token for the server (CCX_TOKEN)",
      "--claude CMD          the Claude executable (CCX_CLAUDE, default claude on PATH)",
      "--json                print the result as JSON",
      "--instances N         run N attempts at once and keep the best (with --pick)",
      "--pick CRITERIA       FASTEST, MOST_DETAILED, HIGHEST_MODEL_TEMP, PATTERN_MATCH, CONSENSUS, BEST_CODE_QUALITY",
      "--redis URL           shared timeout history in Redis (REDIS_URL)",
      "--sandbox             this box is a sandbox: IS_SANDBOX=1 for the CLI, so root may skip",
      "                      permissions (CCX_SANDBOX=1); as root without it, exec stops (exit 2)",
      "Exit: 0 when every criterion is met, 1 otherwise, 2 for bad input.",
    ],
    main(v, positionals, s) {
      if (positionals.length === 0) throw new ConfigError("exec: no TASK given");
      const t = s.string("timeout", undefined);
      return execCommand({
        task: positionals.join(" "),
        criteria: s.list("criterion", undefined),
        timeout: t === "auto" ? "auto" : s.number("timeout", undefined, undefined, {
          min: 0.001,
        }),
        stallTimeoutS: s.number("stall-timeout", undefined, undefined, { min: 0.001 }),
        // Absent: the task text decides ("Do not retry"), else the default of 2.
        retries: v.retries === undefined
          ? undefined
          : s.int("retries", undefined, 2, { min: 0, max: 20 }),
        tools: str(v.tools),
        model: str(v.model),
        maxTurns: v["max-turns"] === undefined
          ? undefined
          : s.int("max-turns", undefined, 1, { min: 0 }),
        cwd: str(v.cwd),
        server: s.string("server", "CCX_SERVER"),
        token: s.string("token", "CCX_TOKEN"),
        claude: s.string("claude", "CCX_CLAUDE"),
        json: v.json === true,
        instances: v.instances === undefined
          ? undefined
          : s.int("instances", undefined, 1, { min: 1, max: 64 }),
        pick: str(v.pick),
        redisUrl: s.string("redis", "REDIS_URL"),
        sandbox: v.sandbox === true || undefined,
      });
    },
  },
  history: {
    summary: "list task classes in the timeout history with counts and estimates",
    usage: "ccx history [--redis URL] [--json]",
    options: {
      redis: { type: "string" },
      json: { type: "boolean" },
    },
    help: [
      "--redis URL   read the shared Redis history (REDIS_URL) instead of the local SQLite file",
      "--json        print JSON instead of a table",
    ],
    main(v, _p, s) {
      return historyCommand({ redisUrl: s.string("redis", "REDIS_URL"), json: v.json === true });
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    `ccx ${VERSION}: run AI coding CLIs (and any command) unattended and at volume`,
    "",
    "Usage: ccx COMMAND [options]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    "",
    "ccx COMMAND --help for a command's options. ccx --version prints the version.",
  ].join("\n");
}

function commandHelp(c: CommandSpec): string {
  return [`${c.usage}`, "", c.summary, "", ...c.help.map((l) => `  ${l}`)].join("\n");
}

/** Parses `args` and runs the command; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    console.log(`ccx ${VERSION}`);
    return 0;
  }
  const spec = COMMANDS[name];
  if (!spec) {
    console.error(`ccx: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  let flagArgs = rest;
  let command: string[] = [];
  if (spec.takesCommand) {
    const dd = rest.indexOf("--");
    if (dd >= 0) {
      flagArgs = rest.slice(0, dd);
      command = rest.slice(dd + 1);
    } else {
      // Without `--`, the command starts at the first word that is not an option.
      const first = firstPositional(rest, spec.options);
      flagArgs = rest.slice(0, first);
      command = rest.slice(first);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: flagArgs,
      options: { ...spec.options, help: { type: "boolean", short: "h" } },
      allowPositionals: !spec.takesCommand,
      strict: true,
    });
  } catch (e) {
    console.error(`ccx ${name}: ${(e as Error).message}\n\n${commandHelp(spec)}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(commandHelp(spec));
    return 0;
  }
  try {
    const settings = new Settings(parsed.values as Values, environment());
    return await spec.main(
      parsed.values as Values,
      spec.takesCommand ? command : parsed.positionals,
      settings,
    );
  } catch (e) {
    if (e instanceof ConfigError || (e as Error).name === "ServerConfigError") {
      console.error(`ccx ${name}: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}

function firstPositional(args: string[], options: Options): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-") || a === "-") return i;
    const long = a.startsWith("--") ? a.slice(2).split("=")[0] : undefined;
    const opt = long !== undefined
      ? options[long]
      : Object.values(options).find((o) => o.short === a.slice(1));
    if (opt?.type === "string" && !a.includes("=")) i++;
  }
  return args.length;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

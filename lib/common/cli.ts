/**
 * Command-line declarations: each command declares every option once (name,
 * type, short flag, environment variable, default, bounds, help text) and from
 * that one declaration come the `node:util` `parseArgs` config, the typed and
 * checked values, and the `--help` text, so they cannot drift apart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineCommand, dispatch } from "./cli.ts";
 * const greeted: string[] = [];
 * const hello = defineCommand({
 *   name: "hello",
 *   summary: "greet someone",
 *   args: "[NAME]",
 *   options: {
 *     loud: { type: "boolean", short: "l", help: "shout" },
 *     times: { type: "int", default: 1, min: 1, arg: "N", help: "how often" },
 *   },
 *   run(o, names) {
 *     for (let i = 0; i < o.times; i++) greeted.push(`hello ${names[0] ?? "world"}${o.loud ? "!" : ""}`);
 *     return Promise.resolve(0);
 *   },
 * });
 * assert.equal(await dispatch([hello], ["hello", "--times", "2", "-l", "you"], { title: "demo" }), 0);
 * assert.deepEqual(greeted, ["hello you!", "hello you!"]);
 * ```
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError, environment, Settings } from "./config.ts";
import { didYouMean } from "./suggest.ts";

/** One option of a command, declared once. */
export interface OptionDecl {
  /**
   * `string`, `boolean` (a switch), `int` / `number` (checked against `min`/`max`),
   * or `list` (repeatable flag; a comma-separated environment variable).
   */
  type: "string" | "boolean" | "int" | "number" | "list";
  /** One-letter alias, e.g. `"p"` for `-p`. */
  short?: string;
  /** Environment variable read when the flag is absent (also from `./.env`); a switch is on when it is `1`. */
  env?: string;
  /** Value when neither the flag nor the variable is set. */
  default?: string | number;
  /** How to describe a default computed elsewhere, e.g. `"test_outputs/<run-id>"`. */
  defaultText?: string;
  /** Smallest accepted value (`int`, `number`). */
  min?: number;
  /** Largest accepted value (`int`, `number`). */
  max?: number;
  /** The only accepted values (`string`). */
  choices?: readonly string[];
  /** Words accepted besides a number (`int`, `number`), e.g. `["auto"]`. */
  words?: readonly string[];
  /** Placeholder for the value in the help, e.g. `"URL"` (default `"X"`). */
  arg?: string;
  /** One line of help. */
  help: string;
}

/** The options of a command, by long flag name (without `--`). */
export type OptionDecls = Record<string, OptionDecl>;

/** `T` when the declaration `D` has a default, else `T | undefined`. */
export type Maybe<D, T> = D extends { default: string | number } ? T : T | undefined;

/** The parsed value type of one declared option. */
export type OptionValue<D extends OptionDecl> = D["type"] extends "boolean" ? boolean
  : D["type"] extends "list" ? string[]
  : D["type"] extends "int" | "number" ?
      | Maybe<D, number>
      | (D extends { words: readonly (infer W)[] } ? W : never)
  : D extends { choices: readonly (infer C)[] } ? Maybe<D, C>
  : Maybe<D, string>;

/** Parsed values of a command's options, typed from its declaration. */
export type OptionValues<O extends OptionDecls> = { -readonly [K in keyof O]: OptionValue<O[K]> };

/** A command as declared: summary, arguments, options, notes and what runs it. */
export interface CommandDecl<O extends OptionDecls> {
  /** The word after `ccx`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments in the usage line, e.g. `"[SUITE]"` or `"-- CMD [ARGS...]"`. */
  args?: string;
  /** Help lines for positional arguments: `[name, help]`. */
  positionals?: readonly (readonly [string, string])[];
  /** The options. `--help`/`-h` is added to every command. */
  options: O;
  /** Lines after the options (exit codes, precedence notes). */
  notes?: readonly string[];
  /**
   * The rest of the line is a command to run (`ccx run`): everything after `--`,
   * or from the first word that is not an option.
   */
  takesCommand?: boolean;
  /** Exit code for usage errors and {@linkcode ConfigError}s (default 2). */
  usageExit?: number;
  /**
   * Runs the command; resolves with the exit code. Throw {@linkcode ConfigError} for bad input.
   * `args` is the command's own part of the command line as given (everything after its name),
   * for messages that repeat it (`ccx stress`'s rerun hint).
   */
  run(values: OptionValues<O>, positionals: string[], args: readonly string[]): Promise<number>;
}

/** A declared command, ready for {@linkcode dispatch}. */
export interface Command {
  /** The word after `ccx`. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The declaration it came from. */
  readonly decl: CommandDecl<OptionDecls>;
}

/**
 * Declares a command; the option value types follow from the declaration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineCommand, dispatch } from "./cli.ts";
 * const printed: string[] = [];
 * const cmd = defineCommand({
 *   name: "echo",
 *   summary: "print words",
 *   options: { upper: { type: "boolean", help: "upper-case" } },
 *   run: (o, words) => {
 *     printed.push(o.upper ? words.join(" ").toUpperCase() : words.join(" "));
 *     return Promise.resolve(0);
 *   },
 * });
 * assert.equal(cmd.name, "echo");
 * assert.equal(await dispatch([cmd], ["echo", "--upper", "hi", "there"], { title: "demo" }), 0);
 * assert.deepEqual(printed, ["HI THERE"]);
 * ```
 */
export function defineCommand<const O extends OptionDecls>(decl: CommandDecl<O>): Command {
  return {
    name: decl.name,
    summary: decl.summary,
    decl: decl as unknown as CommandDecl<OptionDecls>,
  };
}

function flagLabel(name: string, d: OptionDecl): string {
  const arg = d.type === "boolean" ? "" : ` ${d.arg ?? "X"}`;
  return `--${name}${d.short ? `, -${d.short}` : ""}${arg}`;
}

function describe(d: OptionDecl): string {
  const extra: string[] = [];
  if (d.choices) extra.push(`one of ${d.choices.join(", ")}`);
  if (d.type === "list") extra.push("repeatable");
  if (d.env) {
    extra.push(
      d.type === "list" ? `${d.env}, comma-separated` : d.type === "boolean" ? `${d.env}=1` : d.env,
    );
  }
  const def = d.defaultText ?? (d.default !== undefined ? String(d.default) : undefined);
  if (def !== undefined) extra.push(`default ${def}`);
  return extra.length ? `${d.help} (${extra.join("; ")})` : d.help;
}

/**
 * The `--help` text of a command, generated from its declaration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commandHelp, defineCommand } from "./cli.ts";
 * const c = defineCommand({
 *   name: "x",
 *   summary: "demo",
 *   options: { port: { type: "int", env: "PORT", default: 1, arg: "P", help: "port" } },
 *   run: () => Promise.resolve(0),
 * });
 * const help = commandHelp(c);
 * assert.ok(help.startsWith("Usage: ccx x [options]\n\ndemo\n"));
 * assert.match(help, /--port P +port \(PORT; default 1\)/);
 * ```
 */
export function commandHelp(c: Command): string {
  const d = c.decl;
  const rows: [string, string][] = [
    ...(d.positionals ?? []).map(([n, h]) => [n, h] as [string, string]),
    ...Object.entries(d.options).map(([n, o]) =>
      [flagLabel(n, o), describe(o)] as [string, string]
    ),
    ["--help, -h", "this help"],
  ];
  const width = Math.min(28, Math.max(...rows.map(([l]) => l.length)));
  const lines = rows.map(([l, h]) =>
    l.length > width ? `  ${l}\n  ${" ".repeat(width)}  ${h}` : `  ${l.padEnd(width)}  ${h}`
  );
  const args = d.args ? ` ${d.args}` : "";
  const usage = d.takesCommand
    ? `ccx ${d.name} [options]${args}`
    : `ccx ${d.name}${args} [options]`;
  return [
    `Usage: ${usage}`,
    "",
    d.summary,
    "",
    ...lines,
    ...(d.notes?.length ? ["", ...d.notes] : []),
  ].join("\n");
}

/**
 * The parse config `node:util` `parseArgs` takes for a declaration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "./cli.ts";
 * assert.deepEqual(parseConfig({ server: { type: "list", short: "s", help: "" } }), {
 *   server: { type: "string", short: "s", multiple: true },
 *   help: { type: "boolean", short: "h" },
 * });
 * ```
 */
export function parseConfig(options: OptionDecls): NonNullable<ParseArgsConfig["options"]> {
  const out: NonNullable<ParseArgsConfig["options"]> = {};
  for (const [name, d] of Object.entries(options)) {
    out[name] = {
      type: d.type === "boolean" ? "boolean" : "string",
      ...(d.short ? { short: d.short } : {}),
      ...(d.type === "list" ? { multiple: true } : {}),
    };
  }
  out.help = { type: "boolean", short: "h" };
  return out;
}

/**
 * Resolves every declared option from parsed flags, then the environment, then
 * the default; checks types, bounds and choices. Errors name the flag or the
 * variable at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveOptions } from "./cli.ts";
 * const port = { port: { type: "int", env: "PORT", default: 8004, help: "" } } as const;
 * assert.deepEqual(resolveOptions(port, {}, { PORT: "9000" }), { port: 9000 });
 * assert.deepEqual(resolveOptions(port, { port: "9001" }, { PORT: "9000" }), { port: 9001 });
 * assert.deepEqual(resolveOptions(port, {}, {}), { port: 8004 });
 * ```
 */
export function resolveOptions(
  options: OptionDecls,
  flags: Record<string, string | boolean | (string | boolean)[] | undefined>,
  env: Record<string, string>,
): Record<string, unknown> {
  const s = new Settings(flags, env);
  const out: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(options)) {
    const bounds = { min: d.min, max: d.max };
    switch (d.type) {
      case "boolean":
        // A switch: the flag, or its variable set to exactly "1" (as IS_SANDBOX is read).
        out[name] = flags[name] === true || (d.env !== undefined && env[d.env] === "1");
        break;
      case "list":
        out[name] = s.list(name, d.env);
        break;
      case "int":
      case "number": {
        const raw = s.string(name, d.env);
        if (raw !== undefined && d.words?.includes(raw)) {
          out[name] = raw;
          break;
        }
        try {
          out[name] = d.type === "int"
            ? (raw === undefined ? d.default : s.int(name, d.env, 0, bounds))
            : s.number(name, d.env, d.default as number | undefined, bounds);
        } catch (e) {
          if (!d.words || !/expected an? /.test((e as Error).message)) throw e;
          throw new ConfigError(`${(e as Error).message} (or ${d.words.join(", ")})`);
        }
        break;
      }
      default: {
        const v = s.string(name, d.env, d.default as string);
        if (v !== undefined && d.choices && !d.choices.includes(v)) {
          const from = typeof flags[name] === "string" ? `--${name}` : (d.env ?? `--${name}`);
          throw new ConfigError(
            `${from}: expected ${d.choices.join(" or ")}, got ${JSON.stringify(v)}` +
              didYouMean(v, d.choices),
          );
        }
        out[name] = v;
      }
    }
  }
  return out;
}

/** What {@linkcode dispatch} prints in the command list. */
export interface ProgramInfo {
  /** The first line of the top-level help. */
  title: string;
  /** Printed by `--version`. */
  version?: string;
  /** Environment (default: the process's over `./.env`). */
  env?: Record<string, string>;
}

/**
 * The top-level help: the commands and their summaries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { programHelp } from "./cli.ts";
 * assert.ok(programHelp([], { title: "ccx" }).startsWith("ccx\n\nUsage: ccx COMMAND [options]\n"));
 * ```
 */
export function programHelp(commands: readonly Command[], info: ProgramInfo): string {
  const width = Math.max(0, ...commands.map((c) => c.name.length));
  return [
    info.title,
    "",
    "Usage: ccx COMMAND [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "ccx COMMAND --help for a command's options. ccx --version prints the version.",
  ].join("\n");
}

function splitCommand(args: string[], options: OptionDecls): [string[], string[]] {
  const dd = args.indexOf("--");
  if (dd >= 0) return [args.slice(0, dd), args.slice(dd + 1)];
  // Without `--`, the command starts at the first word that is not an option.
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-") || a === "-") return [args.slice(0, i), args.slice(i)];
    const long = a.startsWith("--") ? a.slice(2).split("=")[0] : undefined;
    const d = long !== undefined
      ? options[long]
      : Object.values(options).find((o) => o.short === a.slice(1));
    if (d && d.type !== "boolean" && !a.includes("=")) i++;
  }
  return [args, []];
}

/** Adds "did you mean" to parseArgs' unknown-option message. */
function usageMessage(e: Error, options: OptionDecls): string {
  const m = /Unknown option '(--?)([^']+)'/.exec(e.message);
  if (!m) return e.message;
  const flag = m[1] + m[2];
  const hint = m[1] === "--" ? didYouMean(m[2], Object.keys(options)) : "";
  return `unknown option ${flag}${hint.replace(/"([^"]+)"/, "--$1")}`;
}

/**
 * Parses `args` (`COMMAND [options]...`) against the declared commands and runs
 * the one named; resolves with the exit code. Usage errors go to stderr with
 * exit 2; an unknown command gets a "did you mean".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dispatch } from "./cli.ts";
 * // Prints "demo 1.0".
 * assert.equal(await dispatch([], ["--version"], { title: "demo", version: "demo 1.0" }), 0);
 * ```
 */
export async function dispatch(
  commands: readonly Command[],
  args: string[],
  info: ProgramInfo,
): Promise<number> {
  const [name, ...rest] = args;
  if (name === "--help" || name === "-h" || name === "help") {
    const sub = commands.find((c) => c.name === rest[0]);
    console.log(sub ? commandHelp(sub) : programHelp(commands, info));
    return 0;
  }
  if (name === undefined) {
    console.error(programHelp(commands, info));
    return 2;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    console.log(info.version ?? info.title);
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    const hint = didYouMean(name, commands.map((c) => c.name));
    console.error(
      `ccx: unknown command ${JSON.stringify(name)}${hint}; commands: ` +
        `${commands.map((c) => c.name).join(", ")} (ccx --help)`,
    );
    return 2;
  }
  const d = cmd.decl;
  const [flagArgs, command] = d.takesCommand ? splitCommand(rest, d.options) : [rest, []];
  let parsed;
  try {
    parsed = parseArgs({
      args: flagArgs,
      options: parseConfig(d.options),
      allowPositionals: !d.takesCommand,
      strict: true,
    });
  } catch (e) {
    console.error(`ccx ${name}: ${usageMessage(e as Error, d.options)} (ccx ${name} --help)`);
    return d.usageExit ?? 2;
  }
  if (parsed.values.help) {
    console.log(commandHelp(cmd));
    return 0;
  }
  try {
    const values = resolveOptions(d.options, parsed.values, info.env ?? environment());
    return await d.run(
      values as OptionValues<OptionDecls>,
      d.takesCommand ? command : parsed.positionals,
      rest,
    );
  } catch (e) {
    if (e instanceof ConfigError || (e as Error).name === "ServerConfigError") {
      console.error(`ccx ${name}: ${(e as Error).message}`);
      return d.usageExit ?? 2;
    }
    throw e;
  }
}

/**
 * Calls `handler` with the signal's name on SIGINT and SIGTERM until the returned function is
 * called, which removes both listeners. Every long-running command stops this way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { onStopSignals } from "./cli.ts";
 * const controller = new AbortController();
 * const release = onStopSignals((signal) => controller.abort(signal));
 * try {
 *   // Work that honours controller.signal: Ctrl-C (SIGINT) or SIGTERM ends it early.
 *   await new Promise((resolve) => setTimeout(resolve, 10));
 * } finally {
 *   release();
 * }
 * assert.equal(controller.signal.aborted, false);
 * ```
 */
export function onStopSignals(handler: (signal: "SIGINT" | "SIGTERM") => void): () => void {
  const int = () => handler("SIGINT");
  const term = () => handler("SIGTERM");
  Deno.addSignalListener("SIGINT", int);
  Deno.addSignalListener("SIGTERM", term);
  return () => {
    Deno.removeSignalListener("SIGINT", int);
    Deno.removeSignalListener("SIGTERM", term);
  };
}

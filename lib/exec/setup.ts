/**
 * What `ccx exec` settles before it runs anything: the Claude executable
 * ({@linkcode findExecutable}), the refusal the CLI gives as root ({@linkcode rootRefusal}), the
 * `--pick` criterion, the numbers it was given, and the per-attempt timeout
 * ({@linkcode resolveTimeout}: the flag, the task's own wish, or an estimate from history).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTimeout } from "./setup.ts";
 * assert.equal((await resolveTimeout({ task: "What is 2+2?", timeout: 30 })).source, "flag");
 * ```
 * @module
 */

import { isAbsolute, join, resolve } from "node:path";
import { ExecInputError } from "../claude/argv.ts";
import { EVALUATION_CRITERIA, type EvaluationCriterion } from "../verdict/pick.ts";
import {
  DEFAULT_TIMEOUT_S,
  estimateForPrompt,
  estimateTimeout,
  systemLoad,
  taskClass,
} from "../claude/history.ts";
import type { ExecOptions, TimeoutSource } from "./exec.ts";

/**
 * The absolute path of an executable: `name` itself when it contains a `/` (resolved against
 * the current directory), else the first match on `PATH`. `undefined` when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findExecutable } from "./setup.ts";
 * assert.match(findExecutable("sh")!, /\/sh$/); // e.g. "/usr/bin/sh": wherever PATH finds it
 * assert.equal(findExecutable("sh", "/nowhere"), undefined);
 * assert.equal(findExecutable("no-such-program-here"), undefined);
 * ```
 */
export function findExecutable(
  name: string,
  path: string = Deno.env.get("PATH") ?? "",
): string | undefined {
  const isExec = (p: string) => {
    try {
      const st = Deno.statSync(p);
      return st.isFile && (st.mode === null || (st.mode & 0o111) !== 0);
    } catch {
      return false;
    }
  };
  if (name === "") return undefined;
  if (name.includes("/")) {
    const abs = resolve(name);
    return isExec(abs) ? abs : undefined;
  }
  for (const dir of path.split(":")) {
    const p = join(dir === "" ? "." : dir, name);
    if (isExec(p)) return isAbsolute(p) ? p : resolve(p);
  }
  return undefined;
}

/**
 * The root pre-check: the real CLI refuses `--dangerously-skip-permissions` as root unless
 * `IS_SANDBOX` is exactly `1` in its environment. Returns the error to stop with (naming both
 * fixes) when that refusal is certain, else `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rootRefusal } from "./setup.ts";
 * assert.match(rootRefusal({ isRoot: true, skipPermissions: true, env: {} })!.message, /IS_SANDBOX=1/);
 * assert.equal(rootRefusal({ isRoot: true, skipPermissions: true, env: { IS_SANDBOX: "1" } }), undefined);
 * assert.equal(rootRefusal({ isRoot: false, skipPermissions: true, env: {} }), undefined);
 * ```
 */
export function rootRefusal(
  o: { isRoot: boolean; skipPermissions: boolean; env: Record<string, string | undefined> },
): ExecInputError | undefined {
  if (!o.isRoot || !o.skipPermissions || o.env.IS_SANDBOX === "1") return undefined;
  const had = o.env.IS_SANDBOX === undefined
    ? ""
    : ` (IS_SANDBOX=${JSON.stringify(o.env.IS_SANDBOX)} does not count: only 1 does)`;
  return new ExecInputError(
    "running as root: Claude Code refuses --dangerously-skip-permissions as root/sudo unless " +
      `IS_SANDBOX=1${had}. Nothing was run. Either this box is a sandbox: pass --sandbox (or set ` +
      "CCX_SANDBOX=1, or IS_SANDBOX=1), or run ccx as a non-root user.",
  );
}

/** This process's uid, or `null` where there is none (Windows). */
export function currentUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

/**
 * Parses a `--pick` value, case-insensitively; throws {@linkcode ExecInputError} listing the
 * valid names for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePick } from "./setup.ts";
 * assert.equal(parsePick("fastest"), "FASTEST");
 * assert.equal(parsePick("best-code-quality"), "BEST_CODE_QUALITY");
 * assert.throws(() => parsePick("best"), /^ExecInputError: unknown --pick "best"; valid values: FASTEST, /);
 * ```
 */
export function parsePick(value: string): EvaluationCriterion {
  const up = value.trim().toUpperCase().replaceAll("-", "_");
  const found = EVALUATION_CRITERIA.find((c) => c === up);
  if (!found) {
    throw new ExecInputError(
      `unknown --pick ${JSON.stringify(value)}; valid values: ${EVALUATION_CRITERIA.join(", ")}`,
    );
  }
  return found;
}

/**
 * `v` when it is an integer of at least `min` (or absent); else an {@linkcode ExecInputError}
 * naming `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validCount } from "./setup.ts";
 * assert.equal(validCount("retries", 2, 0), 2);
 * assert.throws(() => validCount("retries", -1, 0), /retries must be an integer >= 0, got -1/);
 * ```
 */
export function validCount(name: string, v: number | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min) {
    throw new ExecInputError(`${name} must be an integer >= ${min}, got ${v}`);
  }
  return v;
}

/**
 * `v` when it is a positive number of seconds (or absent); else an {@linkcode ExecInputError}
 * naming `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validSeconds } from "./setup.ts";
 * assert.equal(validSeconds("timeout", 30), 30);
 * assert.throws(() => validSeconds("timeout", 0), /timeout must be a positive number of seconds/);
 * ```
 */
export function validSeconds(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!(Number.isFinite(v) && v > 0)) {
    throw new ExecInputError(`${name} must be a positive number of seconds, got ${v}`);
  }
  return v;
}

/**
 * The per-attempt timeout and where it came from: a number `timeout` (`flag`); else, unless
 * `timeout` is `"auto"`, the task's own timeout (`task`); else an estimate from the history
 * store's runs of the task's class (`history`, or `default` with too little history or no store).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTimeout } from "./setup.ts";
 * assert.deepEqual(await resolveTimeout({ task: "What is 2+2?", timeout: 30 }), {
 *   timeoutS: 30,
 *   source: "flag",
 *   basis: "--timeout 30",
 * });
 * ```
 */
export async function resolveTimeout(
  opts: Pick<ExecOptions, "task" | "timeout" | "taskTimeoutS" | "history">,
): Promise<{ timeoutS: number; source: TimeoutSource; basis: string }> {
  if (typeof opts.timeout === "number") {
    return { timeoutS: opts.timeout, source: "flag", basis: `--timeout ${opts.timeout}` };
  }
  if (opts.timeout === undefined && opts.taskTimeoutS !== undefined) {
    return {
      timeoutS: opts.taskTimeoutS,
      source: "task",
      basis: `the task asks for ${opts.taskTimeoutS} s`,
    };
  }
  if (opts.history) {
    try {
      const est = await estimateForPrompt(opts.history, opts.task);
      return { timeoutS: est.timeoutS, source: est.source, basis: est.basis };
    } catch {
      // The store went away; fall through to the default.
    }
  }
  const cls = taskClass(opts.task);
  const est = estimateTimeout([], {
    defaultS: DEFAULT_TIMEOUT_S[cls.complexity],
    load: systemLoad(),
  });
  return { timeoutS: est.timeoutS, source: "default", basis: `no history; ${est.basis}` };
}

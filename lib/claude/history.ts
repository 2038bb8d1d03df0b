/**
 * Timeout history: every run of a task records its task class, duration and
 * outcome, and `--timeout auto` estimates a timeout from the runs of the same
 * class. Two stores share one interface: SQLite (a file in the user's state
 * directory, the default) and Redis (so many test boxes share one history).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateTimeout, taskClass } from "./history.ts";
 * import { openHistory } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = await openHistory({ path: `${dir}/history.sqlite` });
 * const cls = taskClass("What is the 10th Fibonacci number?");
 * for (const durationS of [10, 20, 30]) {
 *   await store.record({ ...cls, durationS, outcome: "success", at: Date.now() });
 * }
 * // `ccx exec --timeout auto` also passes { load: systemLoad() }, which scales the estimate.
 * const est = estimateTimeout(await store.runs(cls.key), { minS: 1 });
 * assert.equal(est.timeoutS, 56); // p90 of the successes (28 s) × safety 2
 * assert.equal(est.source, "history");
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 * @module
 */

import * as os from "node:os";
import { formatSeconds } from "../common/format.ts";

// ---------------------------------------------------------------------------
// Task classes
// ---------------------------------------------------------------------------

/**
 * How heavy a task looks before it runs; picks the default timeout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Complexity, DEFAULT_TIMEOUT_S } from "./history.ts";
 * const c: Complexity = "medium";
 * assert.equal(DEFAULT_TIMEOUT_S[c], 180);
 * ```
 */
export type Complexity = "simple" | "medium" | "complex";

/**
 * The class of a task: runs of the same class share a timeout estimate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type TaskClass, taskClass } from "./history.ts";
 * const cls: TaskClass = taskClass("What is a Python function to reverse a string?");
 * assert.equal(cls.key, "medium:python function reverse string");
 * assert.equal(cls.complexity, "medium");
 * ```
 */
export interface TaskClass {
  /** `complexity + ":" + normalized prompt`, the identity of the class. */
  key: string;
  /** How heavy the task looks. */
  complexity: Complexity;
  /** A readable example of the class: the prompt without markers, shortened. */
  label: string;
}

/**
 * At most this many significant words of a prompt make its class.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASS_WORDS, taskClass } from "./history.ts";
 * assert.equal(CLASS_WORDS, 12);
 * const words = Array.from({ length: 20 }, (_, i) => `word${String.fromCharCode(97 + i)}`).join(" ");
 * assert.equal(taskClass(words).key.split(":")[1].split(" ").length, CLASS_WORDS);
 * ```
 */
export const CLASS_WORDS = 12;

const DIRECTIVE_RE = /\[\[[^\]]*\]\]/g;
const MARKER_RE = /\[[a-z][\w-]*:[^\]\n]*\]|\bmarker_\w*/gi;
const URL_RE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;
/** `what's`, `user's`, `don't`: keep the word, drop the apostrophe and suffix. */
const CONTRACTION_RE = /(\p{L})['\u2019]\p{L}{1,2}\b/gu;
const QUOTED_RE =
  /"[^"\n]*"|\u201c[^\u201d\n]*\u201d|`[^`\n]*`|(?<![\p{L}\p{N}])'[^'\n]*'(?![\p{L}\p{N}])/gu;
const PATH_RE = new RegExp(
  [
    // absolute or explicitly relative: /etc/hosts, ./x, ../a/b, ~/notes
    String.raw`(?<![\p{L}\p{N}_<>])(?:~|\.{1,2})?\/[^\s"'\x60),;]+`,
    // relative with a directory and an extension: src/prompts/cc_execute.md
    String.raw`[\p{L}\p{N}_-]+(?:\/[\p{L}\p{N}_.-]+)+\.[a-z][a-z0-9]{0,5}\b`,
    // bare file names with a common extension: config.py
    String
      .raw`\b[\p{L}\p{N}_-]+\.(?:py|ts|tsx|js|jsx|mjs|cjs|json|jsonl|md|txt|ya?ml|toml|sh|rs|go|c|h|cpp|java|rb|html|css|sql|csv|db|sqlite|ini|cfg|conf|log|xml|env)\b`,
  ].join("|"),
  "giu",
);
const ID_RE =
  /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b/gi;
const NUMBER_RE = /\d+(?:[.,:_]\d+)*/g;
const TOKEN_RE = /<(?:n|str|path|url|id)>|[\p{L}\p{N}_]+/gu;
const PLACEHOLDER_RE = /^<(?:n|str|path|url|id)>$/;

const STOPWORDS = new Set(
  ("a an the is are was were be been of to in on at for from by and or with as " +
    "please me my your you i it its this that these those what which who whom " +
    "can could would should will shall do does did how")
    .split(" "),
);

const COMPLEX_RE =
  /\b(?:architecture|architect|production|checklist|comprehensive|microservices?|end-to-end)\b|\b\d{3,}[- ]?words?\b/i;
const MEDIUM_RE =
  /\b(?:code|function|recipe|script|program|implement|haiku|story|stories|essay|outline|example)/i;
/** Prompts with at least this many words are at least medium. */
const MEDIUM_WORDS = 30;
/** Prompts with at least this many words are complex. */
const COMPLEX_WORDS = 100;

function stripMarkers(prompt: string): string {
  return prompt.replace(DIRECTIVE_RE, " ").replace(MARKER_RE, " ");
}

/**
 * The class of a task prompt. Prompts that differ only in numbers, quoted
 * strings, paths, ids, `[marker:…]` tags or `[[…]]` directives share a class.
 *
 * Normalization: lowercase; strip markers and directives; replace quoted
 * strings, URLs, paths and file names, hex ids and numbers by `<str>`, `<url>`,
 * `<path>`, `<id>` and `<n>`; drop punctuation and common stop words; collapse
 * repeated placeholders; keep the first {@linkcode CLASS_WORDS} words.
 *
 * Complexity: `complex` when the prompt mentions architecture, production,
 * a checklist, "comprehensive", microservices, end-to-end or a 3-digit word
 * count ("500-word"), or has 100+ words; `medium` when it mentions code,
 * function, recipe, script, program, implement, haiku, story, essay, outline
 * or example, or has 30+ words; `simple` otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskClass } from "./history.ts";
 * const a = taskClass("[marker:LOCAL_1] What is 2+2?");
 * const b = taskClass("What is 17 + 25?");
 * assert.equal(a.key, "simple:<n>");
 * assert.equal(b.key, a.key);
 * ```
 */
export function taskClass(prompt: string): TaskClass {
  const stripped = stripMarkers(prompt).replace(/\s+/g, " ").trim();
  const lower = stripped.toLowerCase();

  const text = lower
    .replace(QUOTED_RE, " <str> ")
    .replace(URL_RE, " <url> ")
    .replace(CONTRACTION_RE, "$1")
    .replace(PATH_RE, " <path> ")
    .replace(ID_RE, " <id> ")
    .replace(NUMBER_RE, " <n> ");
  const tokens = text.match(TOKEN_RE) ?? [];
  let words = tokens.filter((w) => !STOPWORDS.has(w));
  if (words.length === 0) words = tokens;
  const collapsed: string[] = [];
  for (const w of words) {
    if (PLACEHOLDER_RE.test(w) && collapsed[collapsed.length - 1] === w) continue;
    collapsed.push(w);
  }
  const normalized = collapsed.slice(0, CLASS_WORDS).join(" ") || "<empty>";

  const wordCount = stripped === "" ? 0 : stripped.split(" ").length;
  let complexity: Complexity = "simple";
  if (COMPLEX_RE.test(lower) || wordCount >= COMPLEX_WORDS) complexity = "complex";
  else if (MEDIUM_RE.test(lower) || wordCount >= MEDIUM_WORDS) complexity = "medium";

  const label = stripped.length > 60 ? stripped.slice(0, 59).trimEnd() + "\u2026" : stripped;
  return { key: `${complexity}:${normalized}`, complexity, label };
}

// ---------------------------------------------------------------------------
// Estimates
// ---------------------------------------------------------------------------

/**
 * How a run ended: `success` (criteria met), `failure` (ran, criteria not met
 * or non-zero exit), `timeout` (killed by the timeout or stall detection),
 * `error` (could not run, rate limit…).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateTimeout, type Outcome, taskClass } from "./history.ts";
 * const o: Outcome = "timeout";
 * const run = { ...taskClass("What is 2+2?"), durationS: 120, outcome: o, at: 0 };
 * assert.equal(estimateTimeout([run, run, run]).source, "default"); // only successes count
 * ```
 */
export type Outcome = "success" | "failure" | "timeout" | "error";

/**
 * One recorded run of a task.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type RunRecord, taskClass } from "./history.ts";
 * const r: RunRecord = { ...taskClass("What is 2+2?"), durationS: 8, outcome: "success", at: Date.now() };
 * assert.equal(r.key, "simple:<n>");
 * ```
 */
export interface RunRecord {
  /** The task class key (see {@linkcode taskClass}). */
  key: string;
  /** A readable example of the class. */
  label: string;
  /** How heavy the class looks. */
  complexity: Complexity;
  /** Wall-clock duration of the run in seconds. */
  durationS: number;
  /** How the run ended. */
  outcome: Outcome;
  /** When the run ended, epoch milliseconds. */
  at: number;
  /** Who recorded it (a command name, a host, a suite id…). */
  source?: string;
}

/**
 * Per-class statistics, as `ccx history` shows them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ClassSummary, summarize } from "./history.ts";
 * const s: ClassSummary = summarize("simple:x", []);
 * assert.equal(s.count, 0);
 * assert.equal(s.estimateS, 120);
 * ```
 */
export interface ClassSummary {
  /** The class key (see {@linkcode taskClass}). */
  key: string;
  /** The label of the newest run. */
  label: string;
  /** How heavy the class looks. */
  complexity: Complexity;
  /** Runs retained for the class (at most the store's per-class limit). */
  count: number;
  /** Of those, how many succeeded. */
  successes: number;
  /** Median duration of the successes, seconds. */
  p50S?: number;
  /** 90th percentile duration of the successes, seconds. */
  p90S?: number;
  /** The timeout `--timeout auto` would pick for this class now. */
  estimateS: number;
}

/**
 * The system's 1-minute load average and its CPU count.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadFactor, type SystemLoad } from "./history.ts";
 * const load: SystemLoad = { load1: 12, cores: 4 };
 * assert.equal(loadFactor(load), 3);
 * ```
 */
export interface SystemLoad {
  /** 1-minute load average (runnable and uninterruptible processes). */
  load1: number;
  /** Number of CPUs available to this process. */
  cores: number;
}

/**
 * Options of {@linkcode estimateTimeout}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EstimateOptions, estimateTimeout } from "./history.ts";
 * const opts: EstimateOptions = { percentile: 0.95, safety: 1.5, minS: 60 };
 * assert.equal(estimateTimeout([], opts).timeoutS, 120); // too few runs: the default
 * ```
 */
export interface EstimateOptions {
  /** Timeout when there is too little history, seconds (default 120, the seed's minimum for Claude). */
  defaultS?: number;
  /** Lower bound of the result, seconds (default 30). */
  minS?: number;
  /** Upper bound of the result, seconds (default 3600). */
  maxS?: number;
  /** Multiplier on the percentile (default 2). */
  safety?: number;
  /** Which percentile of successful durations to start from, 0–1 (default 0.9). */
  percentile?: number;
  /** Successes needed before history is trusted (default 3). */
  minSamples?: number;
  /** Current system load; scales the timeout (see {@linkcode loadFactor}). */
  load?: SystemLoad;
}

/**
 * The result of {@linkcode estimateTimeout}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Estimate, estimateTimeout } from "./history.ts";
 * const e: Estimate = estimateTimeout([]);
 * assert.deepEqual(e, {
 *   timeoutS: 120,
 *   source: "default",
 *   basis: "0 of 3 successes needed; default 120s = 120s",
 * });
 * ```
 */
export interface Estimate {
  /** The timeout to use, whole seconds. */
  timeoutS: number;
  /** Whether it came from past runs or from the default. */
  source: "history" | "default";
  /** A one-line explanation, for logs. */
  basis: string;
}

/**
 * Default timeouts per complexity, from the seed's guidelines (Claude's CLI has
 * 30–60 s of startup overhead): simple 120 s, medium 180 s, complex 240 s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_TIMEOUT_S } from "./history.ts";
 * assert.deepEqual(DEFAULT_TIMEOUT_S, { simple: 120, medium: 180, complex: 240 });
 * ```
 */
export const DEFAULT_TIMEOUT_S: Readonly<Record<Complexity, number>> = Object.freeze({
  simple: 120,
  medium: 180,
  complex: 240,
});

/**
 * The p-th percentile (0–1) of `values` by linear interpolation between the
 * closest ranks (numpy's default). `undefined` for an empty list.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { percentile } from "./history.ts";
 * assert.equal(percentile([10, 20, 30, 40], 0.5), 25);
 * assert.equal(percentile([], 0.5), undefined);
 * ```
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile must be within 0..1, got ${p}`);
  const xs = [...values].sort((a, b) => a - b);
  const pos = p * (xs.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

/**
 * How much slower runs are expected to be under the given load: the 1-minute
 * load average per core, clamped to 1..3. An idle or fully used machine gives
 * 1; twice as many runnable processes as cores gives 2 (each gets half a CPU);
 * three or more times gives 3, the seed's "3x slower under high load".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadFactor } from "./history.ts";
 * assert.equal(loadFactor({ load1: 16, cores: 8 }), 2);
 * assert.equal(loadFactor({ load1: 0.5, cores: 8 }), 1); // never below 1
 * ```
 */
export function loadFactor(load: SystemLoad): number {
  const cores = load.cores > 0 ? load.cores : 1;
  const perCore = load.load1 / cores;
  if (!Number.isFinite(perCore)) return 1;
  return Math.min(3, Math.max(1, perCore));
}

/**
 * The current 1-minute load average and number of CPUs, from `node:os`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadFactor, systemLoad } from "./history.ts";
 * const load = systemLoad(); // e.g. { load1: 3.2, cores: 2 }
 * assert.ok(load.cores >= 1);
 * assert.ok(loadFactor(load) >= 1);
 * ```
 */
export function systemLoad(): SystemLoad {
  const cores = typeof os.availableParallelism === "function"
    ? os.availableParallelism()
    : os.cpus().length;
  return { load1: os.loadavg()[0] ?? 0, cores: cores > 0 ? cores : 1 };
}

/**
 * Estimate a timeout from past runs of one class: the `percentile` (0.9) of
 * successful durations × `safety` (2) × {@linkcode loadFactor}, clamped to
 * [`minS`, `maxS`] and rounded up to whole seconds. With fewer than
 * `minSamples` (3) successes it is `defaultS` (120) × the load factor, clamped
 * the same way. Failures, timeouts and errors never shorten or lengthen it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateTimeout, type RunRecord } from "./history.ts";
 * const run = (durationS: number): RunRecord => ({
 *   key: "simple:x", label: "x", complexity: "simple", durationS, outcome: "success", at: 0,
 * });
 * const est = estimateTimeout([run(10), run(20), run(30)], { minS: 1 });
 * assert.equal(est.timeoutS, 56); // p90 = 28 s × 2
 * assert.equal(est.source, "history");
 * ```
 */
export function estimateTimeout(runs: readonly RunRecord[], opts: EstimateOptions = {}): Estimate {
  const defaultS = opts.defaultS ?? 120;
  const minS = opts.minS ?? 30;
  const maxS = opts.maxS ?? 3600;
  const safety = opts.safety ?? 2;
  const p = opts.percentile ?? 0.9;
  const minSamples = opts.minSamples ?? 3;
  if (!(minS > 0 && maxS >= minS)) {
    throw new RangeError(`need 0 < minS <= maxS, got ${minS}, ${maxS}`);
  }
  if (!(safety > 0)) throw new RangeError(`safety must be positive, got ${safety}`);
  if (!(p > 0 && p <= 1)) throw new RangeError(`percentile must be within (0, 1], got ${p}`);

  const lf = opts.load ? loadFactor(opts.load) : 1;
  const loadNote = opts.load
    ? ` × load ${lf.toFixed(2)} (${opts.load.load1.toFixed(2)} on ${opts.load.cores} cores)`
    : "";
  const durations = runs
    .filter((r) => r.outcome === "success" && Number.isFinite(r.durationS) && r.durationS >= 0)
    .map((r) => r.durationS);

  let raw: number;
  let source: Estimate["source"];
  let basis: string;
  if (durations.length < minSamples) {
    raw = defaultS * lf;
    source = "default";
    basis = `${durations.length} of ${minSamples} successes needed; default ${
      formatSeconds(defaultS)
    }${loadNote}`;
  } else {
    const base = percentile(durations, p)!;
    raw = base * safety * lf;
    source = "history";
    basis = `p${Math.round(p * 100)} of ${durations.length} successes ${
      formatSeconds(base)
    } × safety ${safety}${loadNote}`;
  }
  const clamped = Math.min(maxS, Math.max(minS, raw));
  if (clamped !== raw) basis += `, clamped to [${minS}s, ${maxS}s]`;
  const timeoutS = Math.ceil(clamped);
  return { timeoutS, source, basis: `${basis} = ${timeoutS}s` };
}

/**
 * Summarize the retained runs of one class (newest first) as `ccx history`
 * shows them. The estimate uses the class's complexity default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summarize } from "./history.ts";
 * assert.equal(summarize("simple:x", []).estimateS, 120);
 * ```
 */
export function summarize(
  key: string,
  runs: readonly RunRecord[],
  opts: EstimateOptions = {},
): ClassSummary {
  const newest = runs[0];
  const complexity = newest?.complexity ?? complexityOfKey(key);
  const ok = runs.filter((r) => r.outcome === "success").map((r) => r.durationS);
  const round = (x: number | undefined) =>
    x === undefined ? undefined : Math.round(x * 1000) / 1000;
  const p50S = round(percentile(ok, 0.5));
  const p90S = round(percentile(ok, 0.9));
  return {
    key,
    label: newest?.label ?? key,
    complexity,
    count: runs.length,
    successes: ok.length,
    ...(p50S === undefined ? {} : { p50S }),
    ...(p90S === undefined ? {} : { p90S }),
    estimateS: estimateTimeout(runs, { defaultS: DEFAULT_TIMEOUT_S[complexity], ...opts })
      .timeoutS,
  };
}

function complexityOfKey(key: string): Complexity {
  const c = key.slice(0, key.indexOf(":"));
  return c === "medium" || c === "complex" ? c : "simple";
}

// ---------------------------------------------------------------------------
// The store interface (the stores are in history_store.ts)
// ---------------------------------------------------------------------------

/**
 * Where runs are kept: `SqliteHistory` or `RedisHistory` (in `history_store.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type HistoryStore, taskClass } from "./history.ts";
 * import { openHistory } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const store: HistoryStore = await openHistory({ path: `${dir}/history.sqlite` });
 * await store.record({ ...taskClass("What is 2+2?"), durationS: 8, outcome: "success", at: 1 });
 * const runs = await store.runs("simple:<n>", 10);
 * assert.deepEqual(runs.map((r) => [r.durationS, r.outcome]), [[8, "success"]]);
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export interface HistoryStore {
  /** A description of the store for messages: a file path or a Redis URL without password. */
  readonly location: string;
  /** Add a run; the oldest runs of its class beyond the per-class limit are dropped. */
  record(r: RunRecord): Promise<void>;
  /** The runs of one class, newest recorded first, at most `limit`. */
  runs(key: string, limit?: number): Promise<RunRecord[]>;
  /** One summary per class, most runs first. Estimates use `opts` (e.g. the current load). */
  classes(opts?: EstimateOptions): Promise<ClassSummary[]>;
  /** Release the file or connection. */
  close(): Promise<void>;
}
/**
 * The `--timeout auto` estimate for a prompt: its class's recent runs, the
 * class's complexity default, and the current system load.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateForPrompt } from "./history.ts";
 * import { openHistory } from "./history_store.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = await openHistory({ path: `${dir}/history.sqlite` });
 * const est = await estimateForPrompt(store, "What is 2+2?", { load: { load1: 0, cores: 1 } });
 * assert.equal(est.taskClass.key, "simple:<n>");
 * assert.deepEqual([est.timeoutS, est.source], [120, "default"]); // no runs yet: the class default
 * await store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function estimateForPrompt(
  store: HistoryStore,
  prompt: string,
  opts: EstimateOptions = {},
): Promise<Estimate & { taskClass: TaskClass }> {
  const cls = taskClass(prompt);
  const runs = await store.runs(cls.key);
  const est = estimateTimeout(runs, {
    defaultS: DEFAULT_TIMEOUT_S[cls.complexity],
    load: systemLoad(),
    ...opts,
  });
  return { ...est, taskClass: cls };
}

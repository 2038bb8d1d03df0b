/**
 * Choosing the best of N concurrent responses to one prompt (`ccx stress`'s
 * `concurrent_execution` tasks and `ccx exec`). Pure logic plus one linter run.
 *
 * Only candidates that ended well (`ok`) are eligible. Each criterion ranks the
 * eligible candidates and breaks ties deterministically (documented per criterion
 * on {@linkcode pickBest}), so the same inputs always give the same winner.
 *
 * @module
 */

import { basename, join } from "node:path";
import { type MatchOptions, matchPatterns } from "./patterns.ts";

/**
 * The names a suite may give in `evaluation_criteria`, as in the seed system's
 * `EvaluationCriteria` enum.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EVALUATION_CRITERIA } from "./pick.ts";
 * assert.ok(EVALUATION_CRITERIA.includes("FASTEST"));
 * ```
 */
export const EVALUATION_CRITERIA = [
  "FASTEST",
  "MOST_DETAILED",
  "HIGHEST_MODEL_TEMP",
  "PATTERN_MATCH",
  "CONSENSUS",
  "BEST_CODE_QUALITY",
] as const;

/**
 * One of {@linkcode EVALUATION_CRITERIA}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EvaluationCriterion, isEvaluationCriterion } from "./pick.ts";
 * const c: EvaluationCriterion = "CONSENSUS";
 * assert.ok(isEvaluationCriterion(c));
 * ```
 */
export type EvaluationCriterion = typeof EVALUATION_CRITERIA[number];

/**
 * Whether `value` names an evaluation criterion (exact and case-sensitive, as in the seed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isEvaluationCriterion } from "./pick.ts";
 * assert.equal(isEvaluationCriterion("CONSENSUS"), true);
 * assert.equal(isEvaluationCriterion("consensus"), false);
 * ```
 */
export function isEvaluationCriterion(value: unknown): value is EvaluationCriterion {
  return typeof value === "string" &&
    (EVALUATION_CRITERIA as readonly string[]).includes(value);
}

/**
 * One response among the N concurrent ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Candidate, pickBest } from "./pick.ts";
 * const c: Candidate = { index: 0, text: "The answer is 4.", durationS: 3.2, ok: true };
 * assert.equal((await pickBest([c], "FASTEST")).best, c);
 * ```
 */
export interface Candidate {
  /** Position of the instance (stable id used in `scores`). */
  index: number;
  /** What the model said (assistant and result text, not the JSON envelope). */
  text: string;
  /** Wall-clock seconds the instance took. */
  durationS: number;
  /** The instance ended well: exit as expected, no error. Only these can be picked. */
  ok: boolean;
  /** Model name the instance ran with, when known. */
  model?: string;
  /** Sampling temperature the instance ran with, when known. */
  temperature?: number;
  /** Expected patterns found, when the caller already counted them. */
  patternsFound?: number;
}

/**
 * A fenced code block found in a response.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CodeBlock, extractCodeBlocks } from "./pick.ts";
 * const b: CodeBlock = { lang: "python", code: "print(4)\n" };
 * const fence = "`".repeat(3);
 * assert.deepEqual(extractCodeBlocks(`${fence}python\nprint(4)\n${fence}\n`), [b]);
 * ```
 */
export interface CodeBlock {
  /** First word of the fence's info string, lowercased (`""` when unlabeled). */
  lang: string;
  /** The block's text, fence lines excluded, ending with a newline. */
  code: string;
}

/**
 * How one candidate fared under the criterion.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CandidateScore, pickBest } from "./pick.ts";
 * const { scores } = await pickBest([
 *   { index: 0, text: "4", durationS: 2, ok: true },
 *   { index: 1, text: "4", durationS: 1, ok: true },
 * ], "FASTEST");
 * const fast: CandidateScore = scores.find((s) => s.index === 1)!;
 * assert.equal(fast.score, 1); // FASTEST scores seconds: lower is better
 * ```
 */
export interface CandidateScore {
  /** The candidate's `index`. */
  index: number;
  /**
   * The criterion's raw measure: seconds (FASTEST, lower is better), words
   * (MOST_DETAILED), temperature (HIGHEST_MODEL_TEMP), patterns found
   * (PATTERN_MATCH), size of the candidate's agreement cluster (CONSENSUS),
   * linter findings (BEST_CODE_QUALITY, lower is better). `NaN` (JSON `null`)
   * when the candidate is ineligible or there is nothing to measure.
   */
  score: number;
  /** Human-readable explanation. */
  note: string;
}

/**
 * Options of {@linkcode pickBest}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pickBest, type PickOptions } from "./pick.ts";
 * const o: PickOptions = { expectedPatterns: ["fibonacci", "def "] };
 * const { best } = await pickBest([
 *   { index: 0, text: "fib(10) = 55", durationS: 1, ok: true },
 *   { index: 1, text: "def fibonacci(n): ...", durationS: 2, ok: true },
 * ], "PATTERN_MATCH", o);
 * assert.equal(best?.index, 1);
 * ```
 */
export interface PickOptions {
  /** Patterns for PATTERN_MATCH (case-insensitive substrings). */
  expectedPatterns?: string[];
  /** How `expectedPatterns` are matched (whole words, markers to remove). */
  match?: MatchOptions;
  /** Linter for BEST_CODE_QUALITY: number of findings. Defaults to {@linkcode denoLint}. */
  lint?: (code: CodeBlock[]) => Promise<number>;
}

/**
 * The outcome of {@linkcode pickBest}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pickBest, type PickResult } from "./pick.ts";
 * const r: PickResult = await pickBest([{ index: 0, text: "x", durationS: 1, ok: false }], "FASTEST");
 * assert.equal(r.best, undefined); // no candidate ended well
 * assert.equal(r.scores[0].note, "not eligible: did not end well");
 * ```
 */
export interface PickResult {
  /** The winner; `undefined` when no candidate is `ok`. */
  best?: Candidate;
  /** One entry per candidate, in input order. */
  scores: CandidateScore[];
}

/**
 * Picks the best of N responses under `criterion`. Only `ok` candidates are
 * eligible; when none is, `best` is `undefined`. The final tie-break is always
 * the lower `durationS`, then the lower `index`.
 *
 * - FASTEST: lowest `durationS`.
 * - MOST_DETAILED: most words; ties go to more code blocks plus list items.
 * - HIGHEST_MODEL_TEMP: highest `temperature` (missing ranks last); ties go to
 *   the model name first in alphabetical order (missing last), then faster.
 * - PATTERN_MATCH: most `expectedPatterns` found in `text` (as `patterns.ts` matches them)
 *   (without `expectedPatterns`, the candidate's own `patternsFound`).
 * - CONSENSUS: answers are normalized (lowercase, markdown and punctuation
 *   dropped, numbers canonical: `4.0` = `4`, `1,000` = `1000`, `four` = `4`)
 *   and, when present, reduced to their final short answer ("The answer is 4",
 *   "Answer: 4", "... = 4" on the last line, or a whole answer of at most six
 *   words). Two answers agree when the Jaccard similarity of their word sets is
 *   at least 0.6 (short answers compared when both have one, whole texts
 *   otherwise); agreement is transitive (connected components). The biggest
 *   cluster wins (ties: the tighter cluster, then the one holding the faster
 *   answer) and within it the member with the highest mean similarity to the
 *   others.
 * - BEST_CODE_QUALITY: fewest linter findings over the fenced code blocks
 *   (`opts.lint`, default {@linkcode denoLint}); a candidate without code blocks,
 *   or whose lint failed, ranks last; ties go to the faster.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pickBest } from "./pick.ts";
 * const { best } = await pickBest([
 *   { index: 0, text: "4", durationS: 2, ok: true },
 *   { index: 1, text: "4", durationS: 1, ok: false },
 * ], "FASTEST");
 * assert.equal(best?.index, 0); // candidate 1 was faster but did not end well
 * ```
 */
export async function pickBest(
  cands: Candidate[],
  criterion: EvaluationCriterion,
  opts: PickOptions = {},
): Promise<PickResult> {
  const eligible = cands.filter((c) => c.ok);
  const measured = new Map<number, CandidateScore>();
  let ranked: Candidate[];
  switch (criterion) {
    case "FASTEST":
      for (const c of eligible) {
        measured.set(c.index, score(c, c.durationS, `${c.durationS.toFixed(2)} s`));
      }
      ranked = [...eligible].sort(byFastest);
      break;
    case "MOST_DETAILED": {
      const detail = new Map(eligible.map((c) => [c.index, measureDetail(c.text)]));
      for (const c of eligible) {
        const d = detail.get(c.index)!;
        measured.set(
          c.index,
          score(c, d.words, `${d.words} words, ${d.structure} code blocks + list items`),
        );
      }
      ranked = [...eligible].sort((a, b) => {
        const da = detail.get(a.index)!, db = detail.get(b.index)!;
        return db.words - da.words || db.structure - da.structure || byFastest(a, b);
      });
      break;
    }
    case "HIGHEST_MODEL_TEMP":
      for (const c of eligible) {
        const t = c.temperature ?? Number.NaN;
        const m = c.model ?? "unknown model";
        measured.set(
          c.index,
          score(c, t, Number.isNaN(t) ? `no temperature (${m})` : `temperature ${t} (${m})`),
        );
      }
      ranked = [...eligible].sort((a, b) => {
        const ta = a.temperature ?? -Infinity, tb = b.temperature ?? -Infinity;
        if (ta !== tb) return tb - ta;
        if (a.model !== b.model) {
          if (a.model === undefined) return 1;
          if (b.model === undefined) return -1;
          return a.model < b.model ? -1 : 1;
        }
        return byFastest(a, b);
      });
      break;
    case "PATTERN_MATCH": {
      const pats = opts.expectedPatterns;
      const found = new Map<number, number>();
      for (const c of eligible) {
        let n: number;
        let note: string;
        if (pats) {
          const { found: hit, missing: miss } = matchPatterns(c.text, pats, opts.match);
          n = hit.length;
          note = `${n}/${pats.length} patterns` +
            (miss.length ? `; missing ${miss.map((p) => JSON.stringify(p)).join(", ")}` : "");
        } else {
          n = c.patternsFound ?? 0;
          note = `${n} patterns (as counted by the caller)`;
        }
        found.set(c.index, n);
        measured.set(c.index, score(c, n, note));
      }
      ranked = [...eligible].sort((a, b) =>
        found.get(b.index)! - found.get(a.index)! || byFastest(a, b)
      );
      break;
    }
    case "CONSENSUS":
      ranked = consensus(eligible, measured);
      break;
    case "BEST_CODE_QUALITY":
      ranked = await codeQuality(eligible, measured, opts.lint ?? denoLint);
      break;
    default:
      throw new TypeError(`unknown evaluation criterion: ${String(criterion)}`);
  }
  const scores = cands.map((c) =>
    measured.get(c.index) ??
      { index: c.index, score: Number.NaN, note: "not eligible: did not end well" }
  );
  return { best: ranked[0], scores };
}

function score(c: Candidate, value: number, note: string): CandidateScore {
  return { index: c.index, score: value, note };
}

function byFastest(a: Candidate, b: Candidate): number {
  return a.durationS - b.durationS || a.index - b.index;
}

function measureDetail(text: string): { words: number; structure: number } {
  const words = text.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
  const outside = text.replace(/^[ \t]*(```|~~~)[\s\S]*?^[ \t]*\1[^\n]*$/gm, "");
  const listItems = outside.split("\n").filter((l) => /^\s*(?:[-*+•]|\d{1,3}[.)])\s+\S/.test(l))
    .length;
  return { words, structure: extractCodeBlocks(text).length + listItems };
}

// ---------------------------------------------------------------- CONSENSUS

const NUMBER_WORDS: Record<string, string> = {
  zero: "0",
  one: "1",
  two: "2",
  three: "3",
  four: "4",
  five: "5",
  six: "6",
  seven: "7",
  eight: "8",
  nine: "9",
  ten: "10",
  eleven: "11",
  twelve: "12",
};

/** Lowercased word tokens with markdown and punctuation dropped and numbers canonical. */
function tokens(text: string): string[] {
  const plain = text
    .replace(/\]\([^)\s]*\)/g, "]") // markdown links: keep the label, drop the URL
    .toLowerCase();
  const raw = plain.match(/-?\d+(?:[.,]\d+)*|[\p{L}\p{N}]+/gu) ?? [];
  return raw.map((t) => {
    if (/^-?\d/.test(t)) {
      const n = /^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(t)
        ? Number(t.replaceAll(",", ""))
        : Number(t.replace(/,/g, "."));
      return Number.isFinite(n) ? String(n) : t;
    }
    return NUMBER_WORDS[t] ?? t;
  });
}

/** The final short answer of a response, as tokens, or undefined. */
function shortAnswer(text: string): string[] | undefined {
  const marker =
    /(?:final answer|the answer is|answer\s*:|result\s*:|the result is)\s*[:=]?\s*(?:\*\*)?([^\n]*)/gi;
  let last: string | undefined;
  for (const m of text.matchAll(marker)) last = m[1];
  if (last === undefined) {
    const lines = text.trim().split("\n");
    const eq = /=\s*(-?[\d.,]*\d)\W*$/.exec(lines[lines.length - 1] ?? "");
    if (eq) last = eq[1];
  }
  if (last === undefined) {
    const all = tokens(text);
    return all.length > 0 && all.length <= 6 ? all : undefined;
  }
  const sentence = last.split(/[.!?](?=\s|$)/)[0];
  const t = tokens(sentence);
  return t.length > 0 && t.length <= 6 ? t : undefined;
}

function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let inter = 0;
  for (const w of a) if (b.has(w)) inter++;
  return inter / (a.size + b.size - inter);
}

function consensus(eligible: Candidate[], measured: Map<number, CandidateScore>): Candidate[] {
  const n = eligible.length;
  const full = eligible.map((c) => new Set(tokens(c.text)));
  const short = eligible.map((c) => {
    const s = shortAnswer(c.text);
    return s ? new Set(s) : undefined;
  });
  const sim: number[][] = eligible.map((_, i) =>
    eligible.map((_, j) => {
      if (i === j) return 1;
      const si = short[i], sj = short[j];
      return si && sj ? jaccard(si, sj) : jaccard(full[i], full[j]);
    })
  );
  // Connected components of the "agrees" graph (similarity >= 0.6).
  const cluster = new Array<number>(n).fill(-1);
  let next = 0;
  for (let i = 0; i < n; i++) {
    if (cluster[i] !== -1) continue;
    const stack = [i];
    cluster[i] = next;
    while (stack.length) {
      const k = stack.pop()!;
      for (let j = 0; j < n; j++) {
        if (cluster[j] === -1 && sim[k][j] >= 0.6) {
          cluster[j] = next;
          stack.push(j);
        }
      }
    }
    next++;
  }
  const members = Array.from(
    { length: next },
    (_, c) => eligible.flatMap((_, i) => cluster[i] === c ? [i] : []),
  );
  const closeness = eligible.map((_, i) => {
    const others = members[cluster[i]].filter((j) => j !== i);
    return others.length ? others.reduce((s, j) => s + sim[i][j], 0) / others.length : 0;
  });
  const tightness = members.map((m) => m.reduce((s, i) => s + closeness[i], 0) / m.length);
  const fastest = members.map((m) => Math.min(...m.map((i) => eligible[i].durationS)));
  eligible.forEach((c, i) => {
    const size = members[cluster[i]].length;
    const s = short[i] ? `short answer "${[...short[i]!].join(" ")}"` : "whole text compared";
    measured.set(
      c.index,
      score(
        c,
        size,
        `agrees with ${size - 1} of ${n - 1} others; closeness ${closeness[i].toFixed(2)}; ${s}`,
      ),
    );
  });
  const order = eligible.map((_, i) => i).sort((i, j) => {
    const ci = cluster[i], cj = cluster[j];
    if (ci !== cj) {
      return members[cj].length - members[ci].length || tightness[cj] - tightness[ci] ||
        fastest[ci] - fastest[cj] || ci - cj;
    }
    return closeness[j] - closeness[i] || byFastest(eligible[i], eligible[j]);
  });
  return order.map((i) => eligible[i]);
}

// ---------------------------------------------------------------- BEST_CODE_QUALITY

async function codeQuality(
  eligible: Candidate[],
  measured: Map<number, CandidateScore>,
  lint: (code: CodeBlock[]) => Promise<number>,
): Promise<Candidate[]> {
  const findings = new Map<number, number>();
  await Promise.all(eligible.map(async (c) => {
    const blocks = extractCodeBlocks(c.text);
    if (blocks.length === 0) {
      measured.set(c.index, score(c, Number.NaN, "no code blocks (ranked last)"));
      return;
    }
    try {
      const n = await lint(blocks);
      findings.set(c.index, n);
      measured.set(c.index, score(c, n, `${n} linter findings in ${blocks.length} code blocks`));
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      measured.set(c.index, score(c, Number.NaN, `lint failed (ranked last): ${msg}`));
    }
  }));
  return [...eligible].sort((a, b) =>
    (findings.get(a.index) ?? Infinity) - (findings.get(b.index) ?? Infinity) ||
    byFastest(a, b)
  );
}

/**
 * Extracts the fenced code blocks (three or more backticks or tildes, possibly
 * indented as inside a list) from a markdown text. An unclosed fence runs to the end of the
 * text (a truncated answer still shows its code).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { extractCodeBlocks } from "./pick.ts";
 * const fence = "`".repeat(3);
 * assert.deepEqual(extractCodeBlocks(`Here:\n${fence}python\nprint(4)\n${fence}\n`), [
 *   { lang: "python", code: "print(4)\n" },
 * ]);
 * ```
 */
export function extractCodeBlocks(text: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const open = /^([ \t]*)(`{3,}|~{3,})\s*([^`\s]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^[ \t]*(`{3,}|~{3,})\s*$/.exec(lines[j]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
    }
    blocks.push({
      lang: (/^[\w+#.-]*/.exec(info)?.[0] ?? "").toLowerCase(),
      code: body.length ? body.join("\n") + "\n" : "",
    });
    i = j;
  }
  return blocks;
}

// ---------------------------------------------------------------- linting

const JS_EXT: Record<string, string> = {
  js: "jsx",
  javascript: "jsx",
  mjs: "jsx",
  cjs: "jsx",
  jsx: "jsx",
  ts: "ts",
  typescript: "ts",
  mts: "ts",
  tsx: "tsx",
};
const PY_LANGS = new Set(["py", "python", "python3", "py3"]);

/** Findings a syntax error counts for: broken code is worse than any style issue. */
const SYNTAX_ERROR_WEIGHT = 10;

/**
 * The default linter of BEST_CODE_QUALITY: the number of findings over the
 * blocks that can be checked. Blocks in other languages count 0.
 *
 * - JavaScript/TypeScript (`js`, `javascript`, `jsx`, `ts`, `typescript`,
 *   `tsx`, and unlabeled blocks that parse as TypeScript) are written to a
 *   temporary directory and checked by one `deno lint --json --no-config` run
 *   (the running `deno`, else `deno` on `PATH`) with its recommended rules.
 *   Each diagnostic counts 1, each syntax error {@linkcode SYNTAX_ERROR_WEIGHT}.
 *   `no-unused-vars` on an unindented top-level declaration is not counted: an
 *   answer's snippet defines things for the reader to use. Unlabeled blocks that
 *   do not parse are taken for prose or another language and ignored.
 * - Python (`py`, `python`, `python3`): `python3` compiles each block (when
 *   `python3` is on `PATH`); a syntax error counts 10. Then a heuristic, one
 *   finding each: bare `except:`, `from x import *`, an imported name never used
 *   again in the block, `== None`/`!= None`, a line over 120 characters, an
 *   indentation mixing tabs and spaces (within a line, or lines indented in the
 *   block's minority style). It is no substitute for a real Python linter, only
 *   enough to rank clean code above sloppy code.
 *
 * Throws when `deno` cannot be run for JavaScript/TypeScript blocks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoLint } from "./pick.ts";
 * assert.equal(await denoLint([{ lang: "js", code: "var x = 1;\nif (x) {}\n" }]), 2); // no-var, no-empty
 * ```
 */
export async function denoLint(blocks: CodeBlock[]): Promise<number> {
  const js: { file: string; code: string; labeled: boolean }[] = [];
  const py: { file: string; code: string }[] = [];
  blocks.forEach((b, i) => {
    if (JS_EXT[b.lang]) {
      js.push({ file: `block${i}.${JS_EXT[b.lang]}`, code: b.code, labeled: true });
    } else if (b.lang === "") js.push({ file: `block${i}.ts`, code: b.code, labeled: false });
    else if (PY_LANGS.has(b.lang)) py.push({ file: `block${i}.py`, code: b.code });
  });
  if (js.length === 0 && py.length === 0) return 0;
  const dir = await Deno.makeTempDir({ prefix: "ccx-lint-" });
  try {
    let total = 0;
    if (js.length) total += await lintJs(dir, js);
    if (py.length) total += await lintPython(dir, py);
    return total;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function denoBinary(): string {
  // In a `deno compile`d ccx, execPath() is ccx itself, which has no `lint`.
  const exec = Deno.execPath();
  return /^deno(\.exe)?$/i.test(basename(exec)) ? exec : "deno";
}

interface LintJson {
  diagnostics: { filename: string; code: string; range: { start: { line: number } } }[];
  errors: { file_path: string }[];
}

async function lintJs(
  dir: string,
  files: { file: string; code: string; labeled: boolean }[],
): Promise<number> {
  for (const f of files) await Deno.writeTextFile(join(dir, f.file), f.code);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(denoBinary(), {
      args: ["lint", "--json", "--no-config", ...files.map((f) => f.file)],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).output();
  } catch (e) {
    throw new Error(`cannot run deno lint: ${e instanceof Error ? e.message : e}`);
  }
  let report: LintJson;
  try {
    report = JSON.parse(new TextDecoder().decode(out.stdout));
  } catch {
    throw new Error(`deno lint gave no JSON report: ${new TextDecoder().decode(out.stderr)}`);
  }
  const byName = new Map(files.map((f) => [f.file, f]));
  const broken = new Set(report.errors.map((e) => basename(e.file_path)));
  let total = 0;
  for (const name of broken) if (byName.get(name)?.labeled) total += SYNTAX_ERROR_WEIGHT;
  for (const d of report.diagnostics) {
    const name = basename(d.filename);
    const f = byName.get(name);
    if (!f || broken.has(name)) continue;
    if (d.code === "no-unused-vars") {
      const line = f.code.split("\n")[d.range.start.line - 1] ?? "";
      if (/^(?:export\s+)?(?:async\s+)?(?:function\b|class\b|const\b|let\b|var\b)/.test(line)) {
        continue;
      }
    }
    total++;
  }
  return total;
}

const PY_COMPILE = `import sys, json
bad = []
for p in sys.argv[1:]:
    try:
        with open(p, encoding="utf-8") as f:
            compile(f.read(), p, "exec", dont_inherit=True)
        bad.append(False)
    except (SyntaxError, ValueError):
        bad.append(True)
print(json.dumps(bad))
`;

async function lintPython(dir: string, files: { file: string; code: string }[]): Promise<number> {
  for (const f of files) await Deno.writeTextFile(join(dir, f.file), f.code);
  let total = 0;
  try {
    const out = await new Deno.Command("python3", {
      args: ["-I", "-c", PY_COMPILE, ...files.map((f) => f.file)],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const bad: boolean[] = JSON.parse(new TextDecoder().decode(out.stdout));
    total += bad.filter(Boolean).length * SYNTAX_ERROR_WEIGHT;
  } catch {
    // No python3 (or it misbehaved): only the heuristic below applies.
  }
  for (const f of files) total += pythonHeuristic(f.code);
  return total;
}

/** The cheap Python checks documented on {@linkcode denoLint}. */
function pythonHeuristic(code: string): number {
  const lines = code.split("\n");
  let n = 0;
  const indents = lines.map((l) => /^[ \t]*/.exec(l)![0]).filter((w, i) => w && lines[i].trim());
  const tabs = indents.filter((w) => w.startsWith("\t")).length;
  const spaces = indents.filter((w) => w.startsWith(" ")).length;
  const minority = tabs && spaces ? (tabs <= spaces ? "\t" : " ") : undefined;
  for (const [i, line] of lines.entries()) {
    const lead = /^[ \t]*/.exec(line)![0];
    if (line.trim() && lead.includes("\t") && lead.includes(" ")) n++;
    else if (line.trim() && minority && lead.startsWith(minority)) n++;
    if (/^\s*except\s*:/.test(line)) n++;
    if (/^\s*from\s+\S+\s+import\s+\*/.test(line)) n++;
    if (/[=!]=\s*None\b/.test(line)) n++;
    if (line.length > 120) n++;
    for (const name of importedNames(line)) {
      const rest = lines.filter((_, k) => k !== i).join("\n");
      if (!new RegExp(`\\b${name}\\b`).test(rest)) n++;
    }
  }
  return n;
}

function importedNames(line: string): string[] {
  const imp = /^import\s+(.+?)\s*(?:#.*)?$/.exec(line);
  if (imp) {
    return imp[1].split(",").map((part) => {
      const p = part.trim().split(/\s+as\s+/);
      return (p[1] ?? p[0].split(".")[0]).trim();
    }).filter((w) => /^\w+$/.test(w));
  }
  const from = /^from\s+(\S+)\s+import\s+\(?([^()#*]+)\)?\s*(?:#.*)?$/.exec(line);
  if (from && from[1] !== "__future__") {
    return from[2].split(",").map((part) => {
      const p = part.trim().split(/\s+as\s+/);
      return (p[1] ?? p[0]).trim();
    }).filter((w) => /^\w+$/.test(w));
  }
  return [];
}

/**
 * Expected-pattern matching for suite tasks. Markers are removed first (every
 * `[marker:…]` and the run's own marker wherever it appears), so a timestamp in
 * a marker can never satisfy a pattern. Then each pattern is matched
 * case-insensitively:
 *
 * - `4`, `Paris`: a substring (`4` is found in `42`);
 * - `word:4`: a whole word (`4` is found in `2 + 2 = 4.` but not in `42`);
 *   a task's `whole_word: true` makes every plain pattern whole-word;
 * - `regex:^\d+ apples?$`: a regular expression (JavaScript syntax, flags `i`, `m`
 *   and `u`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchPatterns } from "./patterns.ts";
 * assert.deepEqual(matchPatterns("five [marker:BASIC_MATH_20260101_140000]", ["4", "2026"]), {
 *   found: [],
 *   missing: ["4", "2026"],
 * });
 * assert.deepEqual(matchPatterns("2 + 2 = 4", ["word:4", "regex:\\d \\+ \\d"]), {
 *   found: ["word:4", "regex:\\d \\+ \\d"],
 *   missing: [],
 * });
 * ```
 * @module
 */

/** How patterns are matched. */
export interface MatchOptions {
  /** Plain patterns must match whole words (as if each had `word:`). */
  wholeWord?: boolean;
  /** Marker strings of the run, removed from the text wherever they appear. */
  markers?: string[];
}

/** Every `[marker:…]` tag, whatever it holds. */
const MARKER_TAG = /\[marker:[^\]]*\]/gi;

/**
 * The text without any `[marker:…]` tag and without the given marker strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stripMarkers } from "./patterns.ts";
 * assert.equal(stripMarkers("five\n\n[marker:M_2026] M_2026", ["M_2026"]), "five\n\n ");
 * ```
 */
export function stripMarkers(text: string, markers: string[] = []): string {
  let out = text.replace(MARKER_TAG, "");
  for (const m of markers) if (m) out = out.replaceAll(m, "");
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The regular expression a pattern stands for. Throws a `SyntaxError` for a
 * `regex:` pattern that does not compile, or an empty pattern.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compilePattern } from "./patterns.ts";
 * assert.equal(compilePattern("word:cat").test("a Cat sat"), true);
 * assert.equal(compilePattern("word:cat").test("concatenate"), false);
 * ```
 */
export function compilePattern(pattern: string, wholeWord = false): RegExp {
  if (pattern.startsWith("regex:")) {
    const source = pattern.slice("regex:".length);
    if (source === "") throw new SyntaxError("empty regular expression");
    return new RegExp(source, "imu");
  }
  let word = wholeWord;
  let text = pattern;
  if (pattern.startsWith("word:")) {
    word = true;
    text = pattern.slice("word:".length);
  }
  if (text === "") throw new SyntaxError("empty pattern");
  const body = escapeRegex(text);
  return new RegExp(word ? `(?<![\\p{L}\\p{N}_])${body}(?![\\p{L}\\p{N}_])` : body, "iu");
}

/**
 * Why a pattern is unusable, or `undefined` when it is fine (for suite validation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patternProblem } from "./patterns.ts";
 * assert.match(patternProblem("regex:(unclosed")!, /^invalid regular expression: /);
 * assert.equal(patternProblem("4"), undefined);
 * ```
 */
export function patternProblem(pattern: string): string | undefined {
  try {
    compilePattern(pattern);
    return undefined;
  } catch (e) {
    const what = pattern.startsWith("regex:") ? "invalid regular expression: " : "";
    return `${what}${(e as Error).message}`;
  }
}

/**
 * Which patterns the text holds, after removing markers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchPatterns } from "./patterns.ts";
 * assert.deepEqual(matchPatterns("The answer is 42", ["4", "word:4"], {}), { found: ["4"], missing: ["word:4"] });
 * ```
 */
export function matchPatterns(
  text: string,
  patterns: string[],
  opts: MatchOptions = {},
): { found: string[]; missing: string[] } {
  const clean = stripMarkers(text, opts.markers);
  const found: string[] = [];
  const missing: string[] = [];
  for (const p of patterns) {
    let hit = false;
    try {
      hit = compilePattern(p, opts.wholeWord).test(clean);
    } catch {
      hit = false;
    }
    (hit ? found : missing).push(p);
  }
  return { found, missing };
}

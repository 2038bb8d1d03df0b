/**
 * "Did you mean …?" for misspelled names: commands, flags, suite keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { didYouMean, suggest } from "./suggest.ts";
 * assert.equal(suggest("strss", ["serve", "stress", "run"]), "stress");
 * assert.equal(didYouMean("timout", ["timeout", "prompt"]), ' (did you mean "timeout"?)');
 * ```
 * @module
 */

/**
 * Edit distance (insertions, deletions, substitutions, adjacent swaps) between
 * two strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { editDistance } from "./suggest.ts";
 * assert.equal(editDistance("timout", "timeout"), 1);
 * assert.equal(editDistance("kitten", "sitting"), 3);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word` (case-insensitive), when it is close enough to
 * be a likely misspelling: at most a third of the word's letters differ, or one
 * is a prefix of the other. `undefined` when nothing is close.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { suggest } from "./suggest.ts";
 * assert.equal(suggest("expected_pattern", ["expected_patterns", "prompt"]), "expected_patterns");
 * assert.equal(suggest("zzz", ["prompt"]), undefined);
 * ```
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const l = c.toLowerCase();
    let d = editDistance(w, l);
    if (w.length >= 3 && (l.startsWith(w) || w.startsWith(l))) d = Math.min(d, 1);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(w.length / 3));
  return bestD <= limit ? best : undefined;
}

/**
 * ` (did you mean "X"?)` for the closest candidate, or `""` when none is close,
 * ready to append to an error message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { didYouMean } from "./suggest.ts";
 * assert.equal(`unknown command "strees"${didYouMean("strees", ["stress"])}`, 'unknown command "strees" (did you mean "stress"?)');
 * assert.equal(didYouMean("xyz", ["stress"]), "");
 * ```
 */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = suggest(word, candidates);
  return s === undefined ? "" : ` (did you mean ${JSON.stringify(s)}?)`;
}

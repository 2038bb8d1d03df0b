/**
 * What every benchmark returns (a {@linkcode Section}: a table of figures, the
 * checks against their targets, notes) and how it is printed: plain, aligned
 * text tables.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { check, formatSection, type Section } from "./report.ts";
 * const s: Section = {
 *   id: "demo",
 *   title: "Demo",
 *   columns: ["run", "seconds"],
 *   rows: [["ccx", "1.00"]],
 *   checks: [check("speed", "1.00 s", "< 2 s", true)],
 *   notes: [],
 *   data: { seconds: 1 },
 * };
 * assert.equal(
 *   formatSection(s),
 *   "Demo\n\n" +
 *     "  run   seconds\n  ---   -------\n  ccx      1.00\n\n" +
 *     "  figure   measured   target   ok\n  ------   --------   ------   --\n  speed      1.00 s    < 2 s    ✓",
 * );
 * ```
 * @module
 */

/**
 * One figure compared with its target.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Check, formatChecks } from "./report.ts";
 * const c: Check = { name: "median", value: "1.2 ms", target: "< 5 ms", ok: true };
 * assert.match(formatChecks([c]), /median +1\.2 ms +< 5 ms +✓/);
 * ```
 */
export interface Check {
  /** What is measured. */
  name: string;
  /** The measured value, formatted. */
  value: string;
  /** The target, formatted (e.g. `≥ 3x websocketd`). */
  target: string;
  /** Whether the value meets the target; `null` when it could not be measured. */
  ok: boolean | null;
}

/**
 * The result of one benchmark.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSection, type Section } from "./report.ts";
 * const s: Section = { id: "x", title: "X", columns: [], rows: [], checks: [], notes: [], data: {} };
 * assert.ok(formatSection(s).startsWith("X\n"));
 * ```
 */
export interface Section {
  /** Short name, as given to `--only`. */
  id: string;
  /** Heading printed above the table. */
  title: string;
  /** Column headings of the table. */
  columns: string[];
  /** Rows of formatted cells (first column: what the row is). */
  rows: string[][];
  /** Figures against their targets. */
  checks: Check[];
  /** Extra lines printed under the table (method, caveats). */
  notes: string[];
  /** The raw numbers, for `--json`. */
  data: Record<string, unknown>;
}

/**
 * Builds a {@linkcode Check}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { check } from "./report.ts";
 * assert.deepEqual(check("median", "1.2 ms", "< 5 ms", 1.2 < 5), {
 *   name: "median", value: "1.2 ms", target: "< 5 ms", ok: true,
 * });
 * ```
 */
export function check(name: string, value: string, target: string, ok: boolean | null): Check {
  return { name, value, target, ok };
}

/**
 * The mark printed for a check: ✓, ✗, or `-` when it was not measured.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mark } from "./report.ts";
 * assert.equal(mark(true), "✓");
 * assert.equal(mark(false), "✗");
 * ```
 */
export function mark(ok: boolean | null): string {
  return ok === null ? "-" : ok ? "✓" : "✗";
}

/** Display width of a string (code points; every character here is one column wide). */
function width(s: string): number {
  return [...s].length;
}

/**
 * Formats rows as an aligned table: the first column left-aligned, the others
 * right-aligned, a dashed rule under the heading.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTable } from "./report.ts";
 * assert.equal(
 *   formatTable(["run", "s"], [["ccx", "1.0"], ["raw", "0.1"]]),
 *   "  run     s\n  ---   ---\n  ccx   1.0\n  raw   0.1",
 * );
 * ```
 */
export function formatTable(columns: string[], rows: string[][], indent = "  "): string {
  const all = [columns, ...rows];
  const n = Math.max(...all.map((r) => r.length));
  const widths = Array.from(
    { length: n },
    (_, i) => Math.max(...all.map((r) => width(r[i] ?? ""))),
  );
  const line = (r: string[]) =>
    indent + widths.map((w, i) => {
      const cell = r[i] ?? "";
      const pad = " ".repeat(w - width(cell));
      return i === 0 ? cell + pad : pad + cell;
    }).join("   ").trimEnd();
  const rule = indent + widths.map((w) => "-".repeat(w)).join("   ");
  return [line(columns), rule, ...rows.map(line)].join("\n");
}

/**
 * Formats checks as a table with a ✓/✗ column.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { check, formatChecks } from "./report.ts";
 * assert.equal(
 *   formatChecks([check("median", "1.2 ms", "< 5 ms", true)]),
 *   "  figure   measured   target   ok\n  ------   --------   ------   --\n  median     1.2 ms   < 5 ms    ✓",
 * );
 * ```
 */
export function formatChecks(checks: Check[], indent = "  "): string {
  return formatTable(
    ["figure", "measured", "target", "ok"],
    checks.map((c) => [c.name, c.value, c.target, mark(c.ok)]),
    indent,
  );
}

/**
 * Formats a whole section: title, figures table, checks table and notes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { check, formatSection } from "./report.ts";
 * const text = formatSection({
 *   id: "overhead", title: "Per-job overhead", columns: ["jobs", "median"], rows: [["200", "4.1 ms"]],
 *   checks: [check("median", "4.1 ms", "< 5 ms", true)], notes: ["one server process"], data: {},
 * });
 * assert.ok(text.startsWith("Per-job overhead\n"));
 * assert.ok(text.includes("one server process"));
 * ```
 */
export function formatSection(s: Section): string {
  const out = [s.title, "", formatTable(s.columns, s.rows)];
  if (s.checks.length) out.push("", formatChecks(s.checks));
  if (s.notes.length) out.push("", ...s.notes.map((n) => `  note: ${n}`));
  return out.join("\n");
}

/**
 * Formats a number with a k/M suffix for rates, e.g. `1.84M`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { si } from "./report.ts";
 * assert.equal(si(1_840_000), "1.84M");
 * ```
 */
export function si(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/**
 * Formats a number with fixed decimals, `-` when it is not finite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fixed } from "./report.ts";
 * assert.equal(fixed(3.14159, 2), "3.14");
 * assert.equal(fixed(undefined, 2), "-");
 * ```
 */
export function fixed(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits);
}

/**
 * The `q`-quantile (0..1) of numbers, by nearest rank.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quantile } from "./report.ts";
 * assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
 * ```
 */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

/**
 * The median (the mean of the two middle values for an even count).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { median } from "./report.ts";
 * assert.equal(median([1, 2, 3, 4]), 2.5);
 * ```
 */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The arithmetic mean.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mean } from "./report.ts";
 * assert.equal(mean([1, 2, 3]), 2);
 * ```
 */
export function mean(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

/**
 * A progress line on stderr (stdout carries only the tables).
 *
 * @example
 * ```ts
 * import { progress } from "./report.ts";
 * progress("throughput: ccx run 1/3"); // prints "[bench] throughput: ccx run 1/3" on stderr
 * ```
 */
export function progress(line: string): void {
  console.error(`[bench] ${line}`);
}

/**
 * Formatting shared across ccx: the one-line text of an error.
 *
 * @example
 * ```ts
 * import { errorText } from "./format.ts";
 * errorText(new AggregateError([new Error("ECONNREFUSED ::1"), new Error("ECONNREFUSED 127.0.0.1")]));
 * // "ECONNREFUSED ::1; ECONNREFUSED 127.0.0.1"
 * ```
 * @module
 */

/**
 * The text of an error for a message: its `message`, else its `code` (Node's `ECONNREFUSED`…),
 * else its name; the errors of an `AggregateError` (a connection tried on several addresses)
 * joined by `; `; anything else as a string.
 *
 * @example
 * ```ts
 * import { errorText } from "./format.ts";
 * errorText(Object.assign(new Error(""), { code: "ENOENT" })); // "ENOENT"
 * errorText("plain"); // "plain"
 * ```
 */
export function errorText(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) {
    return e.errors.map(errorText).join("; ");
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return e.message || (typeof code === "string" ? code : e.name);
  }
  return String(e);
}

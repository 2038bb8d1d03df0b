/**
 * HTML escaped by default: the {@linkcode markup} tagged template escapes every `${…}` it is
 * given, so text from a task (its id, the model's answer, stderr, a file name) can never become
 * markup. Markup goes in only as a {@linkcode Markup} value: a fragment made by `markup` itself,
 * or a constant declared trusted with {@linkcode raw}. Arrays of values are joined with nothing
 * between them.
 *
 * The rule for the HTML report: build every piece with `markup`; call `raw` only on a constant
 * written in the source (the page's CSS), never on anything that came from a run.
 *
 * The tag is not called `html` on purpose: `deno fmt` reformats the contents of templates tagged
 * `html` (it breaks `<dt>…</dt><dd>…</dd>` onto indented lines), which would change the page.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markup, raw } from "./html_template.ts";
 * const name = `"><script>alert(1)</script>`;
 * const items = ["a", "b<c"].map((x) => markup`<li>${x}</li>`);
 * const page = markup`<p title="${name}">${name}</p><ul>${items}</ul>${raw("<hr>")}`;
 * assert.equal(page.html.includes("<script"), false);
 * assert.equal(String(markup`<ul>${items}</ul>`), "<ul><li>a</li><li>b&lt;c</li></ul>");
 * ```
 * @module
 */

import { clean } from "./format.ts";

/**
 * HTML trusted to be inserted as is: what {@linkcode markup} and {@linkcode raw} return.
 * `String(fragment)` (or joining an array of fragments) gives the HTML.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markup } from "./html_template.ts";
 * const fragment = markup`<b>${"1 < 2"}</b>`;
 * assert.equal(fragment.html, "<b>1 &lt; 2</b>");
 * ```
 */
export class Markup {
  /** The HTML. */
  readonly html: string;

  /**
   * Wraps HTML as is. Prefer {@linkcode markup} or {@linkcode raw}, which say at the call site
   * why the HTML is trusted.
   */
  constructor(html: string) {
    this.html = html;
  }

  /** The HTML, so that fragments can be joined and written out. */
  toString(): string {
    return this.html;
  }
}

/**
 * What a `${…}` of {@linkcode markup} accepts: text and numbers (escaped), {@linkcode Markup} (as
 * is), `null` and `undefined` (nothing), and arrays of these (each rendered, joined with nothing).
 * Booleans are not accepted, so `${cond && x}` cannot print `false`; write `${cond ? x : ""}`.
 */
export type MarkupValue = string | number | Markup | null | undefined | readonly MarkupValue[];

/**
 * Escape text for HTML text and for attribute values quoted with `"` or `'`: ANSI escape
 * sequences and characters XML 1.0 does not allow are removed first, then `&`, `<`, `>`, `"` and
 * `'` become entities (`&#39;`, not `&apos;`, which HTML 4 lacks).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeHtml } from "./html_template.ts";
 * assert.equal(escapeHtml(`<a href="x">it's</a>`), "&lt;a href=&quot;x&quot;&gt;it&#39;s&lt;/a&gt;");
 * ```
 */
export function escapeHtml(text: string): string {
  return clean(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/**
 * Declare `html` trusted: {@linkcode markup} inserts it without escaping. Only for constants
 * written in the source, never for data from a run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markup, raw } from "./html_template.ts";
 * assert.equal(String(markup`<style>${raw("a>b{color:red}")}</style>`), "<style>a>b{color:red}</style>");
 * ```
 */
export function raw(html: string): Markup {
  return new Markup(html);
}

function render(value: MarkupValue): string {
  if (value instanceof Markup) return value.html;
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/**
 * Tagged template for HTML: the literal parts are HTML as written, every `${…}` is rendered by
 * the rules of {@linkcode MarkupValue}, so text is always escaped and only {@linkcode Markup}
 * goes in as is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markup } from "./html_template.ts";
 * const answer = `</textarea><script>`;
 * const cell = markup`<td class="answer">${answer}</td>`;
 * assert.equal(cell.html, '<td class="answer">&lt;/textarea&gt;&lt;script&gt;</td>');
 * ```
 */
export function markup(strings: TemplateStringsArray, ...values: MarkupValue[]): Markup {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Markup(out);
}

/**
 * The start of a report page up to `</head>`: doctype, charset, viewport, colour scheme, the
 * title (escaped) and the page's own trusted style sheet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { documentHead, raw } from "./html_template.ts";
 * const head = documentHead("a <b> c", raw("body { margin: 0 }")).join("\n");
 * assert.ok(head.startsWith("<!DOCTYPE html>"));
 * assert.ok(head.includes("<title>a &lt;b&gt; c</title>"));
 * assert.ok(head.endsWith("</head>"));
 * ```
 */
export function documentHead(title: string, css: Markup): Markup[] {
  return [
    markup`<!DOCTYPE html>`,
    markup`<html lang="en">`,
    markup`<head>`,
    markup`<meta charset="utf-8">`,
    markup`<meta name="viewport" content="width=device-width, initial-scale=1">`,
    markup`<meta name="color-scheme" content="light dark">`,
    markup`<title>${title}</title>`,
    markup`<style>\n${css}\n</style>`,
    markup`</head>`,
  ];
}

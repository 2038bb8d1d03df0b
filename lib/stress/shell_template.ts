/**
 * Reading shell source the way `/bin/sh` will: {@linkcode scanShell} splits a command template
 * into text, `${NAME}` placeholders (each with the quoting context it stands in) and the word
 * `claude` where it stands as a command name, so that `task_command.ts` can replace each
 * placeholder with a correctly quoted variable reference; {@linkcode shellQuote} quotes one word.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placeholderNames, shellQuote } from "./shell_template.ts";
 * assert.deepEqual(placeholderNames('claude -p "${REQUEST}" > "out_${MARKER}.txt"'), ["REQUEST", "MARKER"]);
 * assert.deepEqual(placeholderNames('claude -p "${REQUEST}" # ${MARKER}'), ["REQUEST"]); // a comment
 * assert.equal(shellQuote("it's"), `'it'\\''s'`);
 * ```
 * @module
 */

/** Quoting context of a position in shell source. */
export type ShellContext = "unquoted" | "single" | "double" | "backtick" | "subst";

/** One piece of shell source: text, a `${NAME}` placeholder, or the command word `claude`. */
export type Token =
  | { kind: "text"; text: string }
  | { kind: "var"; name: string; raw: string; ctx: ShellContext }
  | { kind: "claude"; raw: string };

interface Frame {
  ctx: ShellContext;
  /** Open parentheses inside a `$(…)`. */
  depth: number;
  /** At a position where a command name may start (unquoted-like contexts). */
  atCommand: boolean;
}

const PLACEHOLDER_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/y;

/**
 * Splits shell source into text, `${NAME}` placeholders (with the quoting context they stand in)
 * and the word `claude` where it stands as a command name. Escaped `\${…}` is text.
 *
 * The scanner follows POSIX quoting (single and double quotes, backslashes, backticks, `$(…)`,
 * comments); it does not parse here-documents or `case` patterns inside `$(…)`. A misjudged
 * context can only make a value arrive differently quoted (split into words, with literal quote
 * characters): values are never part of the shell source, so nothing in them is executed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanShell } from "./shell_template.ts";
 * assert.deepEqual(scanShell(`claude -p '\${REQUEST}'`).map((t) => t.kind), ["claude", "text", "var", "text"]);
 * ```
 */
export function scanShell(src: string): Token[] {
  const tokens: Token[] = [];
  let text = "";
  const flush = () => {
    if (text !== "") tokens.push({ kind: "text", text });
    text = "";
  };
  const stack: Frame[] = [{ ctx: "unquoted", depth: 0, atCommand: true }];
  let i = 0;
  while (i < src.length) {
    const top = stack[stack.length - 1];
    const ch = src[i];
    PLACEHOLDER_RE.lastIndex = i;
    const m = PLACEHOLDER_RE.exec(src);
    if (m) {
      flush();
      tokens.push({ kind: "var", name: m[1], raw: m[0], ctx: top.ctx });
      top.atCommand = false;
      i += m[0].length;
      continue;
    }
    if (top.ctx === "single") {
      if (ch === "'") stack.pop();
      text += ch;
      i++;
      continue;
    }
    if (ch === "\\") {
      text += src.slice(i, i + 2);
      i += 2;
      top.atCommand = false;
      continue;
    }
    if (top.ctx === "double") {
      if (ch === '"') stack.pop();
      else if (ch === "`") stack.push({ ctx: "backtick", depth: 0, atCommand: true });
      else if (src.startsWith("$(", i)) {
        stack.push({ ctx: "subst", depth: 0, atCommand: true });
        text += "$(";
        i += 2;
        continue;
      }
      text += ch;
      i++;
      continue;
    }
    // unquoted, subst, backtick: command-level syntax
    if (
      top.atCommand && src.startsWith("claude", i) &&
      (i + 6 === src.length || /[\s;&|)`]/.test(src[i + 6]))
    ) {
      flush();
      tokens.push({ kind: "claude", raw: "claude" });
      top.atCommand = false;
      i += 6;
      continue;
    }
    const wordStart = i === 0 || /[\s;&|(`]/.test(src[i - 1]);
    if (ch === "#" && wordStart) {
      const end = src.indexOf("\n", i);
      const stop = end === -1 ? src.length : end;
      text += src.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === "'") {
      stack.push({ ctx: "single", depth: 0, atCommand: false });
      top.atCommand = false;
    } else if (ch === '"') {
      stack.push({ ctx: "double", depth: 0, atCommand: false });
      top.atCommand = false;
    } else if (ch === "`") {
      if (top.ctx === "backtick") stack.pop();
      else {
        top.atCommand = false;
        stack.push({ ctx: "backtick", depth: 0, atCommand: true });
      }
    } else if (src.startsWith("$(", i)) {
      top.atCommand = false;
      stack.push({ ctx: "subst", depth: 0, atCommand: true });
      text += "$(";
      i += 2;
      continue;
    } else if (ch === "(") {
      if (top.ctx === "subst") top.depth++;
      top.atCommand = true;
    } else if (ch === ")") {
      if (top.ctx === "subst") {
        if (top.depth === 0) stack.pop();
        else top.depth--;
      }
      top.atCommand = false;
    } else if (ch === ";" || ch === "&" || ch === "|" || ch === "\n") {
      top.atCommand = true;
    } else if (ch !== " " && ch !== "\t") {
      top.atCommand = false;
    }
    text += ch;
    i++;
  }
  flush();
  return tokens;
}

/**
 * The distinct `${NAME}` placeholder names of a template, in order of appearance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placeholderNames } from "./shell_template.ts";
 * assert.deepEqual(placeholderNames('echo "${REQUEST}" \\${HOME} ${REQUEST}'), ["REQUEST"]);
 * ```
 */
export function placeholderNames(template: string): string[] {
  const names: string[] = [];
  for (const t of scanShell(template)) {
    if (t.kind === "var" && !names.includes(t.name)) names.push(t.name);
  }
  return names;
}

/**
 * Quotes a word for POSIX `sh`: unchanged when it only holds safe characters, else in single
 * quotes (an embedded `'` becomes `'\''`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shellQuote } from "./shell_template.ts";
 * assert.equal(shellQuote("claude"), "claude");
 * assert.equal(shellQuote("it's"), `'it'\\''s'`);
 * ```
 */
export function shellQuote(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_\/.,:+=@%-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

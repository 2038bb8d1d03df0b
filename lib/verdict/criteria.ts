/**
 * `ccx exec`'s task language: parsing a cc_execute request (task, timeout,
 * success criteria, retry), judging each criterion on evidence (the file
 * system, exit code, what the model actually said) rather than on the model's
 * claims, and refining the prompt for a retry.
 *
 * @module
 */

import { basename, resolve } from "node:path";

/**
 * A parsed cc_execute request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTaskRequest, type TaskRequest } from "./criteria.ts";
 * const r: TaskRequest = parseTaskRequest("What is 2+2? Do not retry.");
 * assert.deepEqual(r, { task: "What is 2+2?", criteria: [], retry: false });
 * ```
 */
export interface TaskRequest {
  /** The task itself, directives removed. */
  task: string;
  /** Timeout in seconds, when the request gives one ("Redis estimate" gives none). */
  timeoutS?: number;
  /** Success criteria, in order. */
  criteria: string[];
  /** The request asks for a retry when the task fails. */
  retry: boolean;
  /** How to retry ("more specific instructions"), when said. */
  retryHint?: string;
  /**
   * Set when the request names criteria ("Evaluate the response based on: …") but none could be
   * read from what follows: the header and the text after it. `ccx exec` refuses such a task
   * (exit 2) rather than succeed on anything.
   */
  unparsedCriteria?: string;
}

// A directive starts a sentence: at a line start, or after ". ", "! ", "? ".
const B = String.raw`(?<=^[ \t]*|[.!?]\s+)`;
/** Anywhere a word can start: "… ANSWER=4 Evaluate the response based on: …" still counts. */
const ANYWHERE = String.raw`(?<=^|\s)`;
const DUR = String
  .raw`(?<n>\d+(?:\.\d+)?)\s*(?<u>milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)?\b`;

const PREFIX = new RegExp(
  String
    .raw`^\s*(?:please\s+)?(?:use\s+(?:your\s+|the\s+)?\S*cc_execute(?:\.md)?\s+(?:prompt\s+)?to\s+|)(?:execute|run|do|perform)\s+(?:the\s+|this\s+)?(?:following\s+)?task\s*:\s*`,
  "i",
);
const TIMEOUT_SENTENCE = new RegExp(
  B +
    String
      .raw`(?:please\s+)?(?:(?:expect(?:ed)?|use|set|allow|give\s+it)\s+)?(?:an?\s+|the\s+)?(?:time\s*-?out|time\s+limit)(?:\s+(?:of|is|should\s+be|will\s+be))?\s*[:=]?\s*(?:(?:about|around|approximately|roughly|~)\s*)?(?:${DUR}|(?<est>redis\s+estimate|estimated?|auto(?:matic)?|default))[^.!?\n]*(?:[.!?](?=\s|$))?`,
  "gim",
);
const TIMEOUT_PAREN = new RegExp(
  String.raw`[ \t]*\(\s*time\s*-?out\s*(?:of\s+|:\s*|=\s*)?${DUR}\s*\)`,
  "gi",
);
const TIMEOUT_CLAUSE = new RegExp(
  String
    .raw`[ \t]*[,;][ \t]*(?:with\s+)?(?:an?\s+)?time\s*-?out\s*(?:of\s+|:\s*|=\s*)?${DUR}(?=[ \t]*(?:[.!?](?:\s|$)|\n|$))`,
  "gi",
);
const SENTENCE_END = String.raw`\s*(?:[.!?](?=\s|$)|(?=\n)|$)`;
const RETRY_IF = new RegExp(
  B +
    String
      .raw`(?:if\s+(?:the\s+task|it|this|that|the\s+run)\s+fails?|on\s+failure|upon\s+failure|if\s+(?:it\s+is\s+|it's\s+)?unsuccessful|if\s+not\s+successful)\s*,?\s*(?:then\s+)?(?:please\s+)?retry\b[ \t]*(?:(?:with|using|by|and|:)\s*)?(?<hint>[^\n]*?)` +
    SENTENCE_END,
  "gim",
);
const RETRY_LABEL = new RegExp(
  B + String.raw`retry(?:\s+strategy)?\s*:\s*(?<hint>[^\n]*?)` + SENTENCE_END,
  "gim",
);
const RETRY_CMD = new RegExp(
  B +
    String.raw`retry(?:\s+(?:on|upon)\s+failure)?(?:\s+(?:with|using|by)\s+(?<hint>[^\n]*?))?` +
    SENTENCE_END,
  "gim",
);
const NO_RETRY = new RegExp(
  B + String.raw`(?:do\s+not|don't|never|no)\s+retr(?:y|ies)\b[^.!?\n]*(?:[.!?](?=\s|$))?`,
  "gim",
);
const CRITERIA_HEADER = new RegExp(
  B +
    String
      .raw`(?:please\s+)?(?:evaluate\s+(?:the\s+)?(?:response|result|output|answer|outcome)?\s*(?:based\s+on\s*:?|(?:against|by|using|on)\s*:)|(?:check|verify|judge|assess)\s+(?:the\s+)?(?:response|result|output|answer|outcome)?\s*(?:based\s+on|against|by|using|on|that)?\s*:|(?:(?:success|acceptance|evaluation|completion)\s+)?criteria\s*:|(?:success|done)\s+(?:when|if)\s*:)[ \t]*`,
  "gim",
);
/** The seed's own header, found anywhere in the task, not only at a sentence start. */
const CRITERIA_HEADER_ANYWHERE = new RegExp(
  ANYWHERE +
    String
      .raw`evaluate\s+(?:the\s+)?(?:response|result|output|answer|outcome)\s+based\s+on\s*:?[ \t]*`,
  "gim",
);

const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

function durationS(groups: Record<string, string | undefined>): number | undefined {
  if (groups.n === undefined) return undefined;
  const u = (groups.u ?? "s").toLowerCase();
  const key = u.startsWith("ms") || u.startsWith("milli")
    ? "ms"
    : u.startsWith("h")
    ? "h"
    : u.startsWith("m")
    ? "m"
    : "s";
  return Number(groups.n) * UNIT_S[key];
}

interface Span {
  start: number;
  end: number;
  kind: "timeout" | "retry" | "noretry" | "criteria";
  groups: Record<string, string | undefined>;
}

/**
 * Parses a cc_execute request in the seed's style. Recognized, wherever they
 * start a sentence or line, and removed from the task:
 *
 * - the prefix "Use your …/cc_execute.md to execute the task:" (or "Execute the
 *   task:") and a leading "Task:" label;
 * - a timeout: "Expect a timeout of 45 seconds", "Timeout: 2 minutes",
 *   "Timeout of 90s", "(timeout: 30s)", ", timeout of 90s" ending a sentence;
 *   units ms/s/m/h in any spelling, seconds by default; "Redis estimate" (or
 *   "estimate", "auto", "default") leaves `timeoutS` undefined;
 * - criteria after "Evaluate the response based on:", "Success criteria:",
 *   "Criteria:", "Check that:" …: inline "1) A, 2) B" / "1. A 2. B", or one per
 *   line with "1."/"1)"/"-"/"*" markers (indented lines continue an item), or
 *   unmarked lines up to a blank line, or "A; B"; the list ends at the next
 *   directive, or at an unmarked line, which goes back to the task;
 * - retry: "If the task fails, retry with X" (hint X), "Retry strategy: X",
 *   "Retry with X", "Retry on failure"; "Do not retry" / "Retry: no" set
 *   `retry` false.
 *
 * When anything was removed, one trailing period is dropped from the task. A
 * plain task with none of these comes back whole (trimmed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTaskRequest } from "./criteria.ts";
 * const r = parseTaskRequest(
 *   "Create hello.py. Timeout: 2 minutes. Success criteria: 1) File hello.py exists",
 * );
 * assert.deepEqual(r, { task: "Create hello.py", timeoutS: 120, criteria: ["File hello.py exists"], retry: false });
 * ```
 */
export function parseTaskRequest(text: string): TaskRequest {
  let s = text.replace(/\r\n?/g, "\n");
  let removed = false;
  const pre = PREFIX.exec(s);
  if (pre) {
    s = s.slice(pre[0].length);
    removed = true;
  }
  const found: Span[] = [];
  // `notFirst`: a sentence such as "Retry with backoff…" or "No retries…" that opens the
  // text is the task itself, not a directive.
  const collect = (re: RegExp, kind: Span["kind"], notFirst = false) => {
    for (const m of s.matchAll(re)) {
      if (m[0].trim() === "" || (notFirst && s.slice(0, m.index).trim() === "")) continue;
      found.push({ start: m.index, end: m.index + m[0].length, kind, groups: m.groups ?? {} });
    }
  };
  collect(CRITERIA_HEADER, "criteria");
  collect(CRITERIA_HEADER_ANYWHERE, "criteria");
  collect(TIMEOUT_SENTENCE, "timeout");
  collect(TIMEOUT_PAREN, "timeout");
  collect(TIMEOUT_CLAUSE, "timeout");
  collect(RETRY_IF, "retry");
  collect(RETRY_LABEL, "retry");
  collect(RETRY_CMD, "retry", true);
  collect(NO_RETRY, "noretry", true);
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const spans: Span[] = [];
  for (const sp of found) {
    if (spans.length && sp.start < spans[spans.length - 1].end) continue;
    spans.push(sp);
  }

  const out: TaskRequest = { task: "", criteria: [], retry: false };
  let timeoutSet = false;
  const pieces: string[] = [];
  let cursor = 0;
  spans.forEach((sp, k) => {
    pieces.push(s.slice(cursor, sp.start));
    cursor = sp.end;
    removed = true;
    if (sp.kind === "criteria") {
      const bodyEnd = spans[k + 1]?.start ?? s.length;
      const { items, rest } = parseCriteriaBody(s.slice(sp.end, bodyEnd));
      out.criteria.push(...items);
      if (items.length === 0) {
        out.unparsedCriteria ??= s.slice(sp.start, bodyEnd).trim().slice(0, 200);
      }
      pieces.push(rest);
      cursor = bodyEnd;
    } else if (sp.kind === "timeout") {
      if (!timeoutSet) {
        timeoutSet = true;
        const t = durationS(sp.groups);
        if (t !== undefined) out.timeoutS = t;
      }
    } else if (sp.kind === "noretry") {
      out.retry = false;
      delete out.retryHint;
    } else {
      const hint = cleanItem(sp.groups.hint ?? "");
      if (/^(?:no|none|false|never|off|0)$/i.test(hint)) {
        out.retry = false;
        delete out.retryHint;
      } else {
        out.retry = true;
        if (hint && !/^(?:yes|true|on)$/i.test(hint)) out.retryHint = hint;
      }
    }
  });
  pieces.push(s.slice(cursor));
  let task = pieces.reduce((acc, p) => {
    if (!acc.trim()) return p;
    if (!p.trim()) return acc + p;
    const sep = /\n\s*$/.test(acc) || /^\s*\n/.test(p) ? "\n" : /^\s*[.,;:!?]/.test(p) ? "" : " ";
    return acc.trimEnd() + sep + p.trimStart();
  }, "");
  task = task.replace(/\n{3,}/g, "\n\n").trim().replace(/^task\s*:\s*/i, "");
  if (removed) task = task.replace(/[,;:]+$/, "").replace(/(?<!\.)\.$/, "").trimEnd();
  out.task = task;
  return out;
}

const ITEM_MARK = /^\s*(?:\(?\d{1,3}[.)]|[-*•+]|\[[ xX]?\])\s+(.*\S)\s*$/;

function cleanItem(s: string): string {
  let t = s.trim();
  for (let prev = ""; prev !== t;) {
    prev = t;
    t = t.replace(/\s+(?:and|or)$/i, "").replace(/[,;]+$/, "").replace(/(?<!\.)\.$/, "")
      .trim();
  }
  return t;
}

function splitInline(line: string): string[] {
  const first = /^\s*\(?1[.)]\s+/.exec(line);
  if (first) {
    const items: string[] = [];
    let pos = first[0].length;
    for (let n = 2;; n++) {
      const re = new RegExp(String.raw`(?:^|[\s,;])\(?${n}[.)]\s+`, "g");
      re.lastIndex = pos;
      const m = re.exec(line);
      if (!m) break;
      items.push(line.slice(pos, m.index));
      pos = m.index + m[0].length;
    }
    items.push(line.slice(pos));
    return items.map(cleanItem).filter(Boolean);
  }
  return line.split(";").map(cleanItem).filter(Boolean);
}

function parseCriteriaBody(body: string): { items: string[]; rest: string } {
  const lines = body.split("\n");
  const items: string[] = [];
  const first = lines[0].trim();
  if (first) items.push(...splitInline(first));
  const marked = lines.slice(1).some((l) => ITEM_MARK.test(l));
  let i = 1;
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) {
      if (items.length === 0) continue;
      const next = lines.slice(i + 1).find((l) => l.trim());
      if (marked && next !== undefined && ITEM_MARK.test(next)) continue;
      break;
    }
    const m = ITEM_MARK.exec(line);
    if (marked && m) {
      items.push(cleanItem(m[1]));
    } else if (marked && items.length && /^\s/.test(line)) {
      items[items.length - 1] = cleanItem(`${items[items.length - 1]} ${line.trim()}`);
    } else if (!marked && !first) {
      items.push(cleanItem(line));
    } else {
      break;
    }
  }
  return { items: items.filter(Boolean), rest: lines.slice(i).join("\n") };
}

// ---------------------------------------------------------------- evidence

/**
 * What a run left behind, for judging criteria.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Evidence, judgeCriterion } from "./criteria.ts";
 * const ev: Evidence = {
 *   answer: "Created config.py", transcriptText: "Created config.py", toolUses: [],
 *   isError: false, exitCode: 0, status: "completed", cwd: "/tmp/w", filesWritten: [],
 * };
 * assert.equal((await judgeCriterion("Contains config.py", ev)).met, true);
 * ```
 */
export interface Evidence {
  /** Final answer text. */
  answer: string;
  /** All assistant and result text. */
  transcriptText: string;
  /** Tool uses in the transcript. */
  toolUses: { name: string; input: Record<string, unknown> }[];
  /** The CLI reported an error result. */
  isError: boolean;
  /** Exit code of the run, `null` when it was killed or never exited. */
  exitCode: number | null;
  /** completed/failed/timeout/stalled/canceled/killed … */
  status: string;
  /** Directory the run worked in; relative paths resolve here. */
  cwd: string;
  /** Absolute paths the run wrote per its Write/Edit tool uses, existing or not. */
  filesWritten: string[];
  /** The run's stderr, when captured. */
  stderr?: string;
  /**
   * How files are looked at: default {@linkcode localFiles} (this machine's
   * disk); a run on a remote server's workspace passes one that reads through
   * the server's `files` method.
   */
  files?: FileAccess;
}

/**
 * How criteria look at files (absolute paths): a stat and a text read, each
 * `undefined` when the file cannot be seen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FileAccess, localFiles } from "./criteria.ts";
 * const fa: FileAccess = localFiles;
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/a.txt`, "hello");
 * assert.deepEqual(await fa.stat(`${dir}/a.txt`), { isFile: true, isDirectory: false, size: 5 });
 * assert.equal(await fa.stat(`${dir}/missing.txt`), undefined);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export interface FileAccess {
  /** What is at `path`, or undefined when nothing (visible) is. */
  stat(path: string): Promise<{ isFile: boolean; isDirectory: boolean; size: number } | undefined>;
  /** The text of the regular file at `path` (at most a few MiB), or undefined. */
  readText(path: string): Promise<string | undefined>;
}

/**
 * The verdict on one criterion.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeCriterion, type Judgement } from "./criteria.ts";
 * const j: Judgement = await judgeCriterion("Exit code 0", {
 *   answer: "", transcriptText: "", toolUses: [], isError: false, exitCode: 0,
 *   status: "completed", cwd: "/tmp", filesWritten: [],
 * });
 * assert.equal(j.criterion, "Exit code 0");
 * assert.equal(j.met, true);
 * ```
 */
export interface Judgement {
  /** The criterion as given. */
  criterion: string;
  /** Whether the evidence shows it met. */
  met: boolean;
  /** What was checked and found, for the report and for refinement. */
  evidence: string;
}

/**
 * How a criterion is checked, as decided by {@linkcode classifyCriterion}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyCriterion, type CriterionCheck } from "./criteria.ts";
 * const c: CriterionCheck = { kind: "exit_code", code: 0 };
 * assert.deepEqual(classifyCriterion("Exit code 0"), c);
 * ```
 */
export type CriterionCheck =
  | { kind: "exit_code"; code: number }
  | { kind: "matches"; source: string; flags: string }
  | { kind: "no_errors" }
  | { kind: "file_exists"; path: string; fileOnly: boolean; containing?: string }
  | { kind: "contains"; target: string; file?: string }
  | { kind: "words"; words: string[] };

const STOPWORDS = new Set(
  ("that this with from have been were will would should could must into than then them they " +
    "their there these those what when where which while about your also each only some such " +
    "very more most other over does done make sure being here just like well both after before " +
    "because under between using used uses response answer output result results correct " +
    "correctly properly clearly explains explain describes describe mentions provides provide " +
    "gives shows contain contains include includes").split(" "),
);

const GENERIC_SUBJECTS = /^(?:it|output|answer|response|result|code|error|errors|everything)$/i;

function cleanToken(t: string): string {
  return t.trim().replace(/^["'`]+|["'`]+$/g, "").replace(/[,;:!?)]+$/, "").replace(
    /(?<!\.)\.$/,
    "",
  ).replace(/^["'`(]+|["'`]+$/g, "");
}

function cleanTarget(t: string): string {
  const s = t.trim().replace(/(?<!\.)\.$/, "").trim()
    .replace(/^(?:the\s+)?(?:word|text|string|phrase|value|line)\s+/i, "");
  const q = /^(["'`])(.*)\1$/.exec(s);
  return q ? q[2] : s;
}

/**
 * Decides how a criterion is checked (first match wins): "Exit code N" /
 * "exits with N"; "Output matches /re/flags"; "Contains \"X\"" (quoted);
 * "No errors" (also "without errors", "runs successfully", "error-free");
 * "File P contains X" / "P contains X" (P looks like a path); "Contains X" /
 * "Output includes X"; "File P exists" / "P exists" / "file P is created" /
 * "Creates P" (P with a dot or slash), optionally "… containing X"; anything
 * else: its significant words (longer than 3 characters, not stopwords).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyCriterion } from "./criteria.ts";
 * assert.deepEqual(classifyCriterion("File config.py exists"), {
 *   kind: "file_exists", path: "config.py", fileOnly: true,
 * });
 * ```
 */
export function classifyCriterion(criterion: string): CriterionCheck {
  const c = criterion.trim();
  let m = /\bexit(?:s|ed)?\s*(?:with\s+)?(?:code|status)?\s*(?:is|of|=|==|:|equals)?\s*(-?\d+)\b/i
    .exec(c);
  if (m) return { kind: "exit_code", code: Number(m[1]) };
  m = /\bmatch(?:es)?\s+(?:the\s+)?(?:regex\s+|regexp\s+|pattern\s+)?\/(.+)\/([a-z]*)\s*\.?$/i.exec(
    c,
  );
  if (m) return { kind: "matches", source: m[1], flags: m[2] };
  const verbs = String
    .raw`(?:(?:should|must|will|does)\s+)?(?:contains?|includes?|mentions?|shows?|prints?|outputs?)`;
  const subject = String
    .raw`^(?:the\s+)?(?:(?:final\s+)?(?:output|answer|response|result|stdout|text)\s+)?`;
  m = new RegExp(`${subject}${verbs}\\s+(["'\`])(.+)\\1\\s*\\.?$`, "i").exec(c);
  if (m) return { kind: "contains", target: m[2] };
  if (
    /\b(?:no|zero|without(?:\s+any)?)\s+(?:errors?|exceptions?|failures?|tracebacks?)\b|\berror[- ]free\b|\bruns?\s+(?:cleanly|successfully)\b|\bsucceeds\b|\bcompletes?\s+successfully\b/i
      .test(c)
  ) return { kind: "no_errors" };
  m =
    /^(?:the\s+)?(?:file\s+(\S+)|(\S*\/\S+|\S+\.[A-Za-z0-9]+))\s+(?:(?:should|must)\s+)?(?:contains?|includes?|has|defines?)\s+(.+)$/i
      .exec(c);
  if (m) return { kind: "contains", target: cleanTarget(m[3]), file: cleanToken(m[1] ?? m[2]) };
  m = new RegExp(`${subject}${verbs}\\s+(.+)$`, "i").exec(c);
  if (m) return { kind: "contains", target: cleanTarget(m[1]) };
  const containing = String.raw`(?:\s*,?\s+(?:containing|that\s+contains|with\s+content)\s+(.+))?`;
  const created = String
    .raw`(?:exists|is\s+created|was\s+created|gets\s+created|is\s+written|was\s+written|is\s+present)`;
  m = new RegExp(
    String.raw`^(?:the\s+)?file\s+(?:named\s+|called\s+)?(\S+)\s+${created}\b${containing}`,
    "i",
  ).exec(c);
  if (m) return fileExists(m[1], true, m[2]);
  m = new RegExp(String.raw`^(?:the\s+)?(\S+)\s+(file\s+)?${created}\b${containing}`, "i").exec(
    c,
  );
  if (m && !GENERIC_SUBJECTS.test(cleanToken(m[1]))) return fileExists(m[1], !!m[2], m[3]);
  m = new RegExp(
    String
      .raw`\bcreates?\s+(?:an?\s+|the\s+)?(?:new\s+)?(?:file\s+)?(?:named\s+|called\s+)?["'\`]?([\w~.\/-]*[.\/][\w~.\/-]*\w)["'\`]?(?:\s+file)?\b${containing}`,
    "i",
  ).exec(c);
  if (m) return fileExists(m[1], true, m[2]);
  const words = [...new Set(c.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [])]
    .filter((w) => w.length > 3 && !STOPWORDS.has(w));
  return { kind: "words", words };
}

function fileExists(path: string, fileOnly: boolean, containing?: string): CriterionCheck {
  const c: CriterionCheck = { kind: "file_exists", path: cleanToken(path), fileOnly };
  if (containing) c.containing = cleanTarget(containing);
  return c;
}

const OK_STATUS = new Set(["completed", "complete", "success", "succeeded", "ok", "done"]);
const ERROR_MARKERS: RegExp[] = [
  /Traceback \(most recent call last\)/,
  /(?:^|[\s(\[:])(?:[A-Z][A-Za-z]*)?Error:/m,
  /(?:^|[\s(\[:])(?:[A-Z][A-Za-z]*)?Exception:/m,
  /\b(?:uncaught|unhandled)\s+(?:exception|error)\b/i,
  /^panic:|thread '[^']*' panicked/m,
];

function errorMarkers(text: string): string[] {
  const hits: string[] = [];
  for (const re of ERROR_MARKERS) {
    const m = re.exec(text);
    if (m) hits.push(m[0].trim().replace(/^[(\[:]/, ""));
  }
  return hits;
}

const MAX_READ = 4 * 1024 * 1024;

/**
 * {@linkcode FileAccess} on this machine's disk (texts read up to 4 MiB).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { localFiles } from "./criteria.ts";
 * const path = Deno.makeTempFileSync();
 * Deno.writeTextFileSync(path, "DATABASE_URL = 'sqlite://'\n");
 * assert.equal(await localFiles.readText(path), "DATABASE_URL = 'sqlite://'\n");
 * assert.equal(await localFiles.readText(`${path}.missing`), undefined);
 * Deno.removeSync(path);
 * ```
 */
export const localFiles: FileAccess = {
  async stat(path) {
    try {
      const st = await Deno.stat(path);
      return { isFile: st.isFile, isDirectory: st.isDirectory, size: st.size };
    } catch {
      return undefined;
    }
  },
  readText: readLocalText,
};

async function readLocalText(path: string): Promise<string | undefined> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) return undefined;
    if (st.size <= MAX_READ) return await Deno.readTextFile(path);
    using f = await Deno.open(path);
    const buf = new Uint8Array(MAX_READ);
    const n = (await f.read(buf)) ?? 0;
    return new TextDecoder().decode(buf.subarray(0, n));
  } catch {
    return undefined;
  }
}

function stem(w: string): string {
  for (const suf of ["ing", "ed", "es", "ly", "s"]) {
    if (w.endsWith(suf) && w.length - suf.length >= 4) return w.slice(0, -suf.length);
  }
  return w;
}

/**
 * Judges one criterion on evidence, not on what the model claims
 * ({@linkcode classifyCriterion} says which check applies):
 *
 * - file exists: a stat (through `ev.files`, default the local disk) of the path resolved under `ev.cwd` ("File P" must
 *   be a regular file, "P exists" may be a directory); when missing, the
 *   evidence says whether the transcript claims it was created and where the
 *   run wrote a file of that name instead; "… containing X" also checks the
 *   file's text;
 * - contains X: case-insensitive, in the final answer and in the text of every
 *   existing file of `ev.filesWritten` (or only in the named file for "P
 *   contains X"); the evidence names where it was found;
 * - no errors: `isError` false, exit code 0 (or none), a successful `status`, and
 *   no error markers (`Traceback (most recent call last)`, `Error:`/`XxxError:`,
 *   `Exception:`, "uncaught/unhandled exception", Go/Rust panics) in the answer
 *   or stderr; prose such as "handles the exception" is not a marker;
 * - exit code N: `ev.exitCode === N`;
 * - matches /re/: the final answer, else the whole transcript text;
 * - anything else: met when at least 60 % of its significant words appear in
 *   the final answer (a word counts when an answer word starts with its stem:
 *   "cases" is found by "case", "tail" is not found by "detail"); the evidence
 *   lists the missing ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeCriterion } from "./criteria.ts";
 * const j = await judgeCriterion("Exit code 0", {
 *   answer: "", transcriptText: "", toolUses: [], isError: false, exitCode: 1,
 *   status: "failed", cwd: "/tmp", filesWritten: [],
 * });
 * assert.equal(j.met, false);
 * assert.equal(j.evidence, "exit code 1");
 * ```
 */
export async function judgeCriterion(criterion: string, ev: Evidence): Promise<Judgement> {
  const check = classifyCriterion(criterion);
  const verdict = (met: boolean, evidence: string): Judgement => ({ criterion, met, evidence });
  switch (check.kind) {
    case "exit_code":
      return verdict(
        ev.exitCode === check.code,
        ev.exitCode === null ? `no exit code (status ${ev.status})` : `exit code ${ev.exitCode}`,
      );
    case "matches": {
      let re: RegExp;
      try {
        re = new RegExp(check.source, check.flags.replace(/[gy]/g, ""));
      } catch (e) {
        return verdict(false, `invalid regular expression: ${(e as Error).message}`);
      }
      for (
        const [where, text] of [["final answer", ev.answer], ["transcript", ev.transcriptText]]
      ) {
        const m = re.exec(text);
        if (m) return verdict(true, `${JSON.stringify(m[0].slice(0, 80))} in the ${where}`);
      }
      return verdict(false, `no match for /${check.source}/${check.flags} in the transcript`);
    }
    case "no_errors": {
      const problems: string[] = [];
      if (ev.isError) problems.push("the run reported an error result");
      if (ev.exitCode !== null && ev.exitCode !== 0) problems.push(`exit code ${ev.exitCode}`);
      if (!OK_STATUS.has(ev.status.toLowerCase())) problems.push(`status ${ev.status}`);
      const inAnswer = errorMarkers(ev.answer);
      if (inAnswer.length) problems.push(`the answer shows ${inAnswer.join(", ")}`);
      const inStderr = errorMarkers(ev.stderr ?? "");
      if (inStderr.length) problems.push(`stderr shows ${inStderr.join(", ")}`);
      return problems.length ? verdict(false, problems.join("; ")) : verdict(
        true,
        `exit code ${ev.exitCode ?? "none"}, status ${ev.status}, no error markers`,
      );
    }
    case "file_exists":
      return await judgeFileExists(check, ev, verdict);
    case "contains":
      return await judgeContains(check, ev, verdict);
    case "words": {
      if (check.words.length === 0) return verdict(false, "no checkable words in the criterion");
      const said = ev.answer.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
      const missing = check.words.filter((w) => {
        const st = stem(w);
        return !said.some((t) => t === w || t.startsWith(st));
      });
      const present = check.words.length - missing.length;
      const met = present / check.words.length >= 0.6;
      return verdict(
        met,
        `${present}/${check.words.length} significant words in the answer (60% needed)` +
          (missing.length ? `; missing: ${missing.join(", ")}` : ""),
      );
    }
  }
}

async function judgeFileExists(
  check: Extract<CriterionCheck, { kind: "file_exists" }>,
  ev: Evidence,
  verdict: (met: boolean, evidence: string) => Judgement,
): Promise<Judgement> {
  const abs = resolve(ev.cwd, check.path);
  const fa = ev.files ?? localFiles;
  const readIfFile = (p: string) => fa.readText(p);
  const st = await fa.stat(abs);
  if (st && (st.isFile || !check.fileOnly)) {
    const what = st.isFile ? `${st.size} bytes` : "a directory";
    if (check.containing === undefined) return verdict(true, `${abs} exists (${what})`);
    const text = (await readIfFile(abs)) ?? "";
    const has = text.toLowerCase().includes(check.containing.toLowerCase());
    return verdict(
      has,
      `${abs} exists (${what}) and ${has ? "contains" : "does not contain"} ${check.containing}`,
    );
  }
  if (st) return verdict(false, `${abs} is a directory, not a file`);
  const name = basename(check.path);
  const notes: string[] = [];
  const elsewhere: string[] = [];
  for (const f of new Set(ev.filesWritten)) {
    if (basename(f) === name && resolve(f) !== abs && (await readIfFile(f)) !== undefined) {
      elsewhere.push(f);
    }
  }
  if (elsewhere.length) notes.push(`the run wrote ${elsewhere.join(", ")} instead`);
  const said = `${ev.answer}\n${ev.transcriptText}`;
  const tried = ev.filesWritten.some((f) => resolve(ev.cwd, f) === abs);
  if (tried) notes.push("the run's Write/Edit tool targeted it");
  else if (
    said.includes(name) &&
    /\b(?:created|creating|wrote|written|writing|saved|generated)\b/i.test(said)
  ) notes.push("the transcript claims it was created");
  return verdict(false, `${abs} not found${notes.length ? ` (${notes.join("; ")})` : ""}`);
}

async function judgeContains(
  check: Extract<CriterionCheck, { kind: "contains" }>,
  ev: Evidence,
  verdict: (met: boolean, evidence: string) => Judgement,
): Promise<Judgement> {
  const needle = check.target.toLowerCase();
  const q = JSON.stringify(check.target);
  const readIfFile = (p: string) => (ev.files ?? localFiles).readText(p);
  if (check.file !== undefined) {
    const abs = resolve(ev.cwd, check.file);
    const text = await readIfFile(abs);
    if (text === undefined) return verdict(false, `${abs} not found, so it cannot contain ${q}`);
    const has = text.toLowerCase().includes(needle);
    return verdict(has, `${q} ${has ? "found" : "not found"} in ${abs}`);
  }
  const where: string[] = [];
  if (ev.answer.toLowerCase().includes(needle)) where.push("the final answer");
  const files = [...new Set(ev.filesWritten.map((f) => resolve(ev.cwd, f)))];
  const missingFiles: string[] = [];
  for (const f of files) {
    const text = await readIfFile(f);
    if (text === undefined) missingFiles.push(f);
    else if (text.toLowerCase().includes(needle)) where.push(f);
  }
  if (where.length) return verdict(true, `${q} found in ${where.join(", ")}`);
  const existing = files.filter((f) => !missingFiles.includes(f));
  let evidence = `${q} not found in the final answer`;
  evidence += existing.length
    ? ` or in the ${existing.length} file(s) the run wrote (${existing.join(", ")})`
    : " (the run wrote no files)";
  if (missingFiles.length) evidence += `; not on disk: ${missingFiles.join(", ")}`;
  return verdict(false, evidence);
}

/**
 * Judges every criterion (in order) with {@linkcode judgeCriterion}. The task
 * succeeded when every judgement is `met`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeAll } from "./criteria.ts";
 * const js = await judgeAll(["Exit code 0", "No errors"], {
 *   answer: "done", transcriptText: "done", toolUses: [], isError: false, exitCode: 0,
 *   status: "completed", cwd: "/tmp", filesWritten: [],
 * });
 * assert.deepEqual(js.map((j) => j.met), [true, true]);
 * ```
 */
export async function judgeAll(criteria: string[], ev: Evidence): Promise<Judgement[]> {
  const out: Judgement[] = [];
  for (const c of criteria) out.push(await judgeCriterion(c, ev));
  return out;
}

// ---------------------------------------------------------------- refinement

function failureLine(kind: string): string {
  const k = kind.toLowerCase();
  if (k.includes("token") || k.includes("shorter")) {
    return "Your previous answer exceeded the output token limit: answer more briefly, and write long content to files with the Write tool instead of printing it.";
  }
  if (k.includes("stall")) {
    return "Your previous attempt went silent for too long: work in small steps and report progress as you go.";
  }
  if (k.includes("timeout") || k.includes("timed")) {
    return "Your previous attempt timed out: take the most direct route, with fewer steps, and give the final answer as soon as the task is done.";
  }
  if (k.includes("rate") || k.includes("usage")) {
    return "Your previous attempt was cut off by a usage limit: do the task directly, with as few steps as possible.";
  }
  return `Your previous attempt failed (${kind}): avoid what caused it.`;
}

function criterionLine(f: { criterion: string; evidence: string }): string {
  const c = classifyCriterion(f.criterion);
  switch (c.kind) {
    case "file_exists":
      return `File ${c.path} was not created: create it with the Write tool` +
        (c.containing ? `, and make it contain ${c.containing}.` : ".");
    case "contains":
      return c.file
        ? `${c.file} did not contain ${c.target}: write it into that file.`
        : `The answer did not contain ${c.target}: include it.`;
    case "no_errors":
      return `The run ended with errors (${f.evidence}): make sure the code or command runs without errors, and check it before answering.`;
    case "exit_code":
      return `The run must end with exit code ${c.code} (got ${f.evidence}).`;
    case "matches":
      return `The answer did not match /${c.source}/${c.flags}: make sure it does.`;
    case "words":
      return `The answer did not address "${f.criterion}" (${f.evidence}): address it explicitly.`;
  }
}

/**
 * Builds the retry prompt: `original` followed by a blank line, a line
 * `IMPORTANT:` and one "- " line per problem — first the failure of the run
 * itself (`failure.kind`: token limit, timeout, stall, rate/usage limit, other),
 * then each failed criterion, naming what failed and what to do ("File config.py
 * was not created: create it with the Write tool."). A previous `IMPORTANT:`
 * block at the end of `original` is replaced, not stacked. With nothing to say,
 * `original` comes back unchanged. Pure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refinePrompt } from "./criteria.ts";
 * assert.equal(
 *   refinePrompt("Create config.py", [{ criterion: "File config.py exists", evidence: "not found" }]),
 *   "Create config.py\n\nIMPORTANT:\n- File config.py was not created: create it with the Write tool.",
 * );
 * ```
 */
export function refinePrompt(
  original: string,
  failed: { criterion: string; evidence: string }[],
  failure?: { kind: string },
): string {
  const lines: string[] = [];
  if (failure) lines.push(failureLine(failure.kind));
  for (const f of failed) lines.push(criterionLine(f));
  if (lines.length === 0) return original;
  const base = original.replace(/\n\nIMPORTANT:\n(?:- [^\n]*(?:\n|$))+\s*$/, "").trimEnd();
  return `${base}\n\nIMPORTANT:\n${[...new Set(lines)].map((l) => `- ${l}`).join("\n")}`;
}

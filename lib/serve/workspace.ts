/**
 * Per-job workspaces: a fresh directory for each job under a root, seeded from
 * an optional template, with the list of files the job created or changed, a
 * keep policy (`always`, `never`, `failed`), a bound on the total size kept
 * (oldest removed first), and reading confined to the workspace for the
 * `files` method.
 *
 * Layout of one workspace: `ROOT/<stamp>-<job>-<rand>/work` is the job's
 * working directory (the path reported to clients and the one `files` reads),
 * `…/home` is `HOME` for confined jobs, `…/owner.json` names the server while
 * the workspace's fate is open. Removing a workspace removes all of them.
 *
 * @example
 * ```ts
 * import { WorkspaceManager } from "./workspace.ts";
 * const root = Deno.makeTempDirSync();
 * const spaces = new WorkspaceManager({ root });
 * const ws = spaces.create("job-1", { keep: "never" });
 * Deno.writeTextFileSync(`${ws.path}/out.txt`, "hello\n");
 * console.log(ws.changes().files); // [{ path: "out.txt", size: 6 }]
 * spaces.finish(ws, "completed");
 * spaces.release(ws); // not kept: removed
 * ```
 * @module
 */

import { cpSync, existsSync } from "node:fs";
import { isAbsolute, join, normalize, relative, resolve, sep } from "node:path";

/** What happens to a workspace once its job has ended. */
export type KeepPolicy = "always" | "never" | "failed";

/** The keep policies, for validation and help text. */
export const KEEP_POLICIES: readonly KeepPolicy[] = ["always", "never", "failed"];

/** How a job asks for its workspace (`execute`'s `workspace` param, validated). */
export interface WorkspaceSpec {
  /** A directory on the server whose contents are copied into the workspace first. */
  template?: string;
  /** What to remove after the job (default `failed`: keep only failed jobs' workspaces). */
  keep?: KeepPolicy;
}

/** One file in a listing. Paths are relative to the workspace and use `/`. */
export interface FileEntry {
  /** Path relative to the workspace. */
  path: string;
  /** Size in bytes (for a symlink: the length of its target). */
  size: number;
  /** Only in listings of `files`: `file`, `dir` or `symlink`. */
  type?: "file" | "dir" | "symlink";
}

/** The files a job created or changed, bounded. */
export interface Changes {
  /** Created or changed files (not directories), sorted by path, at most the manager's bound. */
  files: FileEntry[];
  /** How many there were in all. */
  total: number;
  /** True when `files` is shorter than `total` (or the walk itself hit its bound). */
  truncated: boolean;
}

/** A problem with a workspace request; `field` names the param at fault. */
export class WorkspaceError extends Error {
  /** The param at fault, e.g. `workspace.template` or `path`. */
  readonly field: string;
  /** Creates the error; the message starts with `field`. */
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "WorkspaceError";
    this.field = field;
  }
}

/** Entries visited at most by one walk, so a huge tree cannot stall the server. */
const MAX_WALK = 20_000;

interface Walked {
  entries: FileEntry[];
  complete: boolean;
}

/** Lists `dir` recursively (without following symlinks), paths relative to `base`. */
function walk(base: string, dir = base, limit = MAX_WALK): Walked {
  const entries: FileEntry[] = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let list: Deno.DirEntry[];
    try {
      list = [...Deno.readDirSync(d)];
    } catch {
      continue; // removed meanwhile, or unreadable
    }
    for (const e of list) {
      if (entries.length >= limit) return { entries, complete: false };
      const abs = join(d, e.name);
      const rel = relative(base, abs).split(sep).join("/");
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(abs);
      } catch {
        continue;
      }
      const type = st.isSymlink ? "symlink" : st.isDirectory ? "dir" : "file";
      entries.push({ path: rel, size: type === "dir" ? 0 : st.size, type });
      if (type === "dir") stack.push(abs);
    }
  }
  return { entries, complete: true };
}

function stamp(e: FileEntry, mtime: number | null): string {
  return `${e.type}:${e.size}:${mtime ?? 0}`;
}

function fingerprint(base: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of walk(base).entries) {
    if (e.type === "dir") continue;
    let mtime: number | null = null;
    try {
      mtime = Deno.lstatSync(join(base, e.path)).mtime?.getTime() ?? null;
    } catch { /* gone */ }
    out.set(e.path, stamp(e, mtime));
  }
  return out;
}

/** Bytes used by a tree (files and symlinks; directories count 0). */
function treeBytes(dir: string): number {
  let n = 0;
  for (const e of walk(dir, dir, Number.MAX_SAFE_INTEGER).entries) n += e.size;
  return n;
}

/**
 * One job's workspace. Create it with {@linkcode WorkspaceManager.create}.
 *
 * @example
 * ```ts
 * import { WorkspaceManager } from "./workspace.ts";
 * const ws = new WorkspaceManager({ root: Deno.makeTempDirSync() }).create("j", {});
 * console.log(ws.path, ws.home, ws.keep); // …/work …/home "failed"
 * ```
 */
export class Workspace {
  /** The directory holding `work` and `home`; removing it removes the workspace. */
  readonly dir: string;
  /** The job's working directory: what clients see and `files` reads. */
  readonly path: string;
  /** `HOME` for confined jobs (beside `path`, not inside it, so listings stay clean). */
  readonly home: string;
  /** The keep policy. */
  readonly keep: KeepPolicy;
  /** When it was created (ms since the epoch). */
  readonly createdAt: number;
  /** True once the job ended and the policy said keep it. */
  kept = false;
  /** True once the workspace has been removed from disk. */
  removed = false;
  /** Bytes on disk when the job ended (0 before). */
  bytes = 0;
  /** Jobs running in it now (its own, then any that reuse it); it is not removed meanwhile. */
  users = 0;
  readonly #before: Map<string, string>;
  readonly #maxListed: number;

  /** @internal Use {@linkcode WorkspaceManager.create}. */
  constructor(dir: string, keep: KeepPolicy, maxListed: number) {
    this.dir = dir;
    this.path = join(dir, "work");
    this.home = join(dir, "home");
    this.keep = keep;
    this.createdAt = Date.now();
    this.#maxListed = maxListed;
    this.#before = fingerprint(this.path);
  }

  /** The files created or changed since the workspace was made (template files that changed count). */
  changes(): Changes {
    const w = walk(this.path);
    const changed: FileEntry[] = [];
    for (const e of w.entries) {
      if (e.type === "dir") continue;
      let mtime: number | null = null;
      try {
        mtime = Deno.lstatSync(join(this.path, e.path)).mtime?.getTime() ?? null;
      } catch { /* gone */ }
      if (this.#before.get(e.path) !== stamp(e, mtime)) {
        changed.push({ path: e.path, size: e.size });
      }
    }
    changed.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    return {
      files: changed.slice(0, this.#maxListed),
      total: changed.length,
      truncated: changed.length > this.#maxListed || !w.complete,
    };
  }
}

/** Options of {@linkcode WorkspaceManager}. */
export interface WorkspaceManagerOptions {
  /** Where workspaces are made (created if missing). */
  root: string;
  /** Bound on the bytes of kept workspaces; the oldest go first (default: no bound). */
  maxBytes?: number;
  /** Most files listed in {@linkcode Changes} (default 100). */
  maxListed?: number;
}

/**
 * Makes, keeps and removes workspaces under one root.
 *
 * @example
 * ```ts
 * import { WorkspaceManager } from "./workspace.ts";
 * const spaces = new WorkspaceManager({ root: Deno.makeTempDirSync(), maxBytes: 100 * 2 ** 20 });
 * const ws = spaces.create("j1", { keep: "always" });
 * spaces.finish(ws, "failed"); // kept (policy always); the oldest kept go beyond 100 MiB
 * ```
 */
export class WorkspaceManager {
  /** The root directory (absolute). */
  readonly root: string;
  /** Bound on kept bytes, or undefined for none. */
  readonly maxBytes?: number;
  readonly #maxListed: number;
  /** Workspaces of dead servers removed when this manager started (not kept by their policy). */
  swept = 0;
  /** Kept workspaces, oldest first: from earlier runs (found at start) and this one. */
  readonly #kept: { dir: string; bytes: number; ws?: Workspace }[] = [];

  /** Creates the root if needed and takes stock of workspaces kept by earlier runs. */
  constructor(opts: WorkspaceManagerOptions) {
    this.root = resolve(opts.root);
    this.maxBytes = opts.maxBytes;
    this.#maxListed = opts.maxListed ?? 100;
    Deno.mkdirSync(this.root, { recursive: true });
    const earlier: { dir: string; bytes: number; at: number }[] = [];
    for (const e of Deno.readDirSync(this.root)) {
      if (!e.isDirectory) continue;
      const dir = join(this.root, e.name);
      const owner = readOwner(dir);
      if (owner) {
        // In use by a live server (this one included): not ours to judge.
        if (owner.pid === Deno.pid || existsSync(`/proc/${owner.pid}`)) continue;
        // Its server died: a finished job's workspace that was waiting to go, or a job that
        // died with the server (a failure: kept unless its policy is never).
        if (owner.remove || owner.keep === "never") {
          this.#remove(dir);
          this.swept++;
          continue;
        }
        Deno.removeSync(join(dir, OWNER_FILE));
      }
      if (this.maxBytes !== undefined) {
        const at = Deno.statSync(dir).mtime?.getTime() ?? 0;
        earlier.push({ dir, bytes: treeBytes(dir), at });
      }
    }
    if (this.maxBytes !== undefined) {
      earlier.sort((a, b) => a.at - b.at);
      this.#kept.push(...earlier.map(({ dir, bytes }) => ({ dir, bytes })));
      this.#enforce();
    }
  }

  /**
   * Makes a fresh workspace for `jobId`, copying `spec.template` into it.
   * Throws {@linkcode WorkspaceError} (field `workspace.template`) when the
   * template is not a readable directory.
   */
  create(jobId: string, spec: WorkspaceSpec): Workspace {
    let template: string | undefined;
    if (spec.template !== undefined) {
      template = resolve(spec.template);
      let isDir = false;
      try {
        isDir = Deno.statSync(template).isDirectory;
      } catch { /* reported below */ }
      if (!isDir) {
        throw new WorkspaceError(
          "workspace.template",
          `no such directory on the server: ${template}`,
        );
      }
    }
    const t = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
    const safe = jobId.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40);
    const dir = join(this.root, `${t}-${safe}-${crypto.randomUUID().slice(0, 8)}`);
    const work = join(dir, "work");
    Deno.mkdirSync(work, { recursive: true });
    Deno.mkdirSync(join(dir, "home"));
    if (template !== undefined) {
      try {
        cpSync(template, work, { recursive: true, verbatimSymlinks: true });
      } catch (e) {
        Deno.removeSync(dir, { recursive: true });
        throw new WorkspaceError(
          "workspace.template",
          `cannot copy ${template}: ${(e as Error).message}`,
        );
      }
    }
    const keep = spec.keep ?? "failed";
    writeOwner(dir, { pid: Deno.pid, keep });
    return new Workspace(dir, keep, this.#maxListed);
  }

  /**
   * Applies the keep policy once the job has ended with `status`
   * (`completed` counts as success, anything else as failure) and returns
   * whether the workspace is kept. A kept workspace counts toward the size
   * bound at once; one that is not kept stays on disk until
   * {@linkcode WorkspaceManager.release}, so its files can still be read.
   */
  finish(ws: Workspace, status: string): boolean {
    ws.kept = ws.keep === "always" || (ws.keep === "failed" && status !== "completed");
    // Should this server die before releasing it, the next one on this root knows its fate.
    if (ws.kept) {
      try {
        Deno.removeSync(join(ws.dir, OWNER_FILE));
      } catch { /* already gone */ }
    } else writeOwner(ws.dir, { pid: Deno.pid, keep: ws.keep, remove: true });
    if (ws.kept) {
      ws.bytes = treeBytes(ws.dir);
      this.#kept.push({ dir: ws.dir, bytes: ws.bytes, ws });
      this.#enforce();
    }
    return ws.kept && !ws.removed;
  }

  /**
   * Removes the workspace unless it is kept (the owner no longer needs to read it) or a job
   * runs in it.
   */
  release(ws: Workspace): void {
    if (ws.kept || ws.removed || ws.users > 0) return;
    this.#remove(ws.dir);
    ws.removed = true;
  }

  /** Bytes of kept workspaces now counted against the bound. */
  get keptBytes(): number {
    return this.#kept.reduce((n, k) => n + k.bytes, 0);
  }

  #enforce(): void {
    if (this.maxBytes === undefined) return;
    let total = this.keptBytes;
    while (total > this.maxBytes && this.#kept.length > 0) {
      const oldest = this.#kept.shift()!;
      total -= oldest.bytes;
      this.#remove(oldest.dir);
      if (oldest.ws) oldest.ws.removed = true;
    }
  }

  #remove(dir: string): void {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/**
 * Each workspace's dir holds this file while its server may still remove it
 * (the job runs, or ended and is not kept): `{pid, keep, remove?}`. A server
 * starting on the same root removes the workspaces of dead servers that were
 * due to go, and adopts the rest as kept.
 */
const OWNER_FILE = "owner.json";

interface Owner {
  pid: number;
  keep: KeepPolicy;
  remove?: boolean;
}

function writeOwner(dir: string, owner: Owner): void {
  try {
    Deno.writeTextFileSync(join(dir, OWNER_FILE), JSON.stringify(owner));
  } catch { /* removed meanwhile */ }
}

function readOwner(dir: string): Owner | undefined {
  try {
    const o = JSON.parse(Deno.readTextFileSync(join(dir, OWNER_FILE)));
    return typeof o?.pid === "number" ? o as Owner : undefined;
  } catch {
    return undefined;
  }
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Resolves `path` (relative, `/`-separated) inside the workspace `root` and
 * returns the absolute path. Refuses, with a {@linkcode WorkspaceError} naming
 * `path`: absolute paths, any `..` component, NUL bytes, and paths that leave
 * the workspace through a symlink (checked on the real path of the deepest
 * part that exists). The result may not exist.
 *
 * @example
 * ```ts
 * import { resolveInside } from "./workspace.ts";
 * const root = Deno.makeTempDirSync();
 * resolveInside(root, "src/main.py"); // `${root}/src/main.py`
 * // resolveInside(root, "../../etc/passwd") throws WorkspaceError "path: … leaves the workspace"
 * ```
 */
export function resolveInside(root: string, path: string): string {
  if (path.includes("\0")) throw new WorkspaceError("path", "must not contain NUL bytes");
  if (isAbsolute(path)) {
    throw new WorkspaceError("path", `must be relative to the workspace, got ${path}`);
  }
  if (path.split(/[\\/]/).includes("..")) {
    throw new WorkspaceError("path", `must not contain "..": ${path}`);
  }
  const realRoot = Deno.realPathSync(root);
  const abs = normalize(join(realRoot, path));
  if (!inside(realRoot, abs)) throw new WorkspaceError("path", `${path} leaves the workspace`);
  // The deepest existing ancestor (or the path itself) must really be inside.
  let probe = abs;
  while (true) {
    let real: string | undefined;
    try {
      real = Deno.realPathSync(probe);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      // A dangling symlink: where it points decides.
      try {
        if (Deno.lstatSync(probe).isSymlink) {
          const target = resolve(join(probe, ".."), Deno.readLinkSync(probe));
          if (!inside(realRoot, target)) {
            throw new WorkspaceError("path", `${path} leaves the workspace through a symlink`);
          }
        }
      } catch (e2) {
        if (e2 instanceof WorkspaceError) throw e2;
      }
    }
    if (real !== undefined) {
      if (!inside(realRoot, real)) {
        throw new WorkspaceError("path", `${path} leaves the workspace through a symlink`);
      }
      return abs;
    }
    probe = join(probe, "..");
  }
}

/** What {@linkcode readWorkspace} answers (the `files` method's result). */
export type WorkspaceRead =
  | { path: string; exists: false }
  | {
    path: string;
    exists: true;
    type: "dir";
    /** Entries below `path`, recursively, relative to the workspace. */
    entries: FileEntry[];
    /** True when the listing was cut at its bound. */
    truncated: boolean;
  }
  | {
    path: string;
    exists: true;
    type: "file";
    /** Size of the whole file. */
    size: number;
    /** `utf-8` for text, `base64` for anything that is not valid UTF-8. */
    encoding: "utf-8" | "base64";
    /** The content (at most `maxBytes` of it). */
    content: string;
    /** True when only the first `maxBytes` bytes are in `content`. */
    truncated: boolean;
  };

const fatal = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a workspace for the `files` method: the whole listing (no `path`, or a
 * directory), or one file of at most `maxBytes` (base64 when it is binary).
 * Paths are confined with {@linkcode resolveInside}.
 *
 * @example
 * ```ts
 * import { readWorkspace } from "./workspace.ts";
 * const root = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${root}/a.txt`, "hi");
 * readWorkspace(root, "a.txt"); // { path: "a.txt", exists: true, type: "file", content: "hi", … }
 * readWorkspace(root); // { path: "", exists: true, type: "dir", entries: [{ path: "a.txt", … }] }
 * ```
 */
export function readWorkspace(
  root: string,
  path = "",
  opts: { maxBytes?: number; maxEntries?: number } = {},
): WorkspaceRead {
  const abs = path === "" ? Deno.realPathSync(root) : resolveInside(root, path);
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(abs);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { path, exists: false };
    throw e;
  }
  if (st.isDirectory) {
    const base = Deno.realPathSync(root);
    const w = walk(base, abs, opts.maxEntries ?? 1000);
    w.entries.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    return { path, exists: true, type: "dir", entries: w.entries, truncated: !w.complete };
  }
  if (!st.isFile) throw new WorkspaceError("path", `${path} is not a regular file or directory`);
  const max = opts.maxBytes ?? 1024 * 1024;
  using f = Deno.openSync(abs);
  const buf = new Uint8Array(Math.min(max, st.size));
  let n = 0;
  while (n < buf.length) {
    const r = f.readSync(buf.subarray(n));
    if (r === null || r === 0) break;
    n += r;
  }
  const bytes = buf.subarray(0, n);
  const truncated = st.size > n;
  try {
    // A cut in the middle of a character is still text: drop the partial tail.
    let end = bytes.length;
    if (truncated) {
      for (let back = 1; back <= 3 && end - back >= 0; back++) {
        const c = bytes[end - back];
        if ((c & 0xc0) === 0x80) continue;
        const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (need > back) end -= back;
        break;
      }
    }
    const content = fatal.decode(bytes.subarray(0, end));
    return {
      path,
      exists: true,
      type: "file",
      size: st.size,
      encoding: "utf-8",
      content,
      truncated,
    };
  } catch {
    return {
      path,
      exists: true,
      type: "file",
      size: st.size,
      encoding: "base64",
      content: bytes.toBase64(),
      truncated,
    };
  }
}

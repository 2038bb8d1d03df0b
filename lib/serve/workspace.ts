/**
 * Per-job workspaces: a fresh directory for each job under a root, seeded from
 * an optional template (only from under the directories the operator allows),
 * with the list of files the job created or changed, a keep policy (`always`,
 * `never`, `failed`), a bound on the total size kept (oldest removed first),
 * and reading confined to the workspace for the `files` method.
 *
 * Nothing here holds the event loop for long: copying a template, taking its
 * fingerprint, listing the changes, measuring and removing run off it or in
 * slices that yield (see `tree.ts`). Nothing here throws because a job left
 * files it cannot remove: such a workspace is moved aside, into
 * `ROOT/.unremovable/`, and logged once (see {@linkcode UNREMOVABLE_DIR}).
 *
 * Layout of one workspace: `ROOT/<stamp>-<job>-<rand>/work` is the job's
 * working directory (the path reported to clients and the one `files` reads),
 * `…/home` is `HOME` for confined jobs, `…/owner.json` names the server while
 * the workspace's fate is open. Removing a workspace removes all of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WorkspaceManager } from "./workspace.ts";
 * const root = Deno.makeTempDirSync();
 * const spaces = new WorkspaceManager({ root });
 * const ws = spaces.create("job-1", { keep: "never" });
 * Deno.writeTextFileSync(`${ws.path}/out.txt`, "hello\n");
 * const { kept, changes } = await spaces.finish(ws, "completed");
 * assert.equal(kept, false);
 * assert.deepEqual(changes.files, [{ path: "out.txt", size: 6 }]);
 * spaces.release(ws); // not kept: removed
 * await spaces.idle();
 * assert.throws(() => Deno.statSync(ws.dir), Deno.errors.NotFound);
 * Deno.removeSync(root, { recursive: true });
 * ```
 * @module
 */

import { existsSync } from "node:fs";
import { basename, isAbsolute, join, normalize, resolve, sep } from "node:path";
import type { Logger } from "../common/log.ts";
import type { FileEntry, WorkspaceRead } from "../common/protocol.ts";
import { processAlive, processStartTime } from "../common/proc.ts";
import { copyTree, removeTree, treeBytes, walkTree } from "./tree.ts";

/** What happens to a workspace once its job has ended. */
export type KeepPolicy = "always" | "never" | "failed";

/** The keep policies, for validation and help text. */
export const KEEP_POLICIES: readonly KeepPolicy[] = ["always", "never", "failed"];

/**
 * Where, under the workspace root, workspaces that could not be removed are
 * moved (`ROOT/.unremovable/<name>`): out of the way of the size bound and of
 * the next server's start, for the operator to remove by hand.
 */
export const UNREMOVABLE_DIR = ".unremovable";

/** How a job asks for its workspace (`execute`'s `workspace` param, validated). */
export interface WorkspaceSpec {
  /**
   * A directory on the server whose contents are copied into the workspace first;
   * it must be under one of the manager's template roots.
   */
  template?: string;
  /** What to remove after the job (default `failed`: keep only failed jobs' workspaces). */
  keep?: KeepPolicy;
}

/** The files a job created or changed, bounded. */
export interface Changes {
  /** Created or changed files (not directories), sorted by path, at most the manager's bound. */
  files: FileEntry[];
  /** How many there were in all (every file is counted, however many). */
  total: number;
  /** True when `files` is shorter than `total`. */
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

function typeOf(info: Deno.FileInfo): "file" | "dir" | "symlink" {
  return info.isSymlink ? "symlink" : info.isDirectory ? "dir" : "file";
}

function stamp(info: Deno.FileInfo): string {
  return `${typeOf(info)}:${info.size}:${info.mtime?.getTime() ?? 0}`;
}

const byPath = (a: FileEntry, b: FileEntry) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0;

/** What each file (not directory) under `base` looks like now: type, size, mtime. */
async function fingerprint(base: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await walkTree(base, (e) => {
    if (!e.info.isDirectory) out.set(e.path, stamp(e.info));
  });
  return out;
}

/**
 * One job's workspace. Create it with {@linkcode WorkspaceManager.create} or
 * {@linkcode WorkspaceManager.createFromTemplate}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WorkspaceManager } from "./workspace.ts";
 * const root = Deno.makeTempDirSync();
 * const ws = new WorkspaceManager({ root }).create("j", {});
 * assert.equal(ws.path, `${ws.dir}/work`);
 * assert.equal(ws.home, `${ws.dir}/home`);
 * assert.equal(ws.keep, "failed"); // the default policy
 * Deno.removeSync(root, { recursive: true });
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
  /** True once the workspace has been removed from disk (or is being removed). */
  removed = false;
  /** Bytes on disk when the job ended (measured only under a size bound; 0 before). */
  bytes = 0;
  /** Jobs running in it now (its own, then any that reuse it); it is not removed meanwhile. */
  users = 0;
  /**
   * @internal `finishing` while {@linkcode WorkspaceManager.finish} looks at it
   * (a release then waits for it), `ended` after.
   */
  state: "open" | "finishing" | "ended" = "open";
  /** @internal A release was asked for while finishing. */
  releaseWanted = false;
  readonly #before: Map<string, string>;
  readonly #maxListed: number;

  /** @internal Use {@linkcode WorkspaceManager.create}. */
  constructor(dir: string, keep: KeepPolicy, maxListed: number, before: Map<string, string>) {
    this.dir = dir;
    this.path = join(dir, "work");
    this.home = join(dir, "home");
    this.keep = keep;
    this.createdAt = Date.now();
    this.#maxListed = maxListed;
    this.#before = before;
  }

  /**
   * The files created or changed since the workspace was made (template files
   * that changed count). Every file is looked at, in slices that yield.
   */
  async changes(): Promise<Changes> {
    return (await this.scan()).changes;
  }

  /** @internal {@linkcode changes}, and the bytes of `path` found on the way (one walk for both). */
  async scan(): Promise<{ changes: Changes; bytes: number }> {
    const max = this.#maxListed;
    // The first `max` paths in order, without holding a list of every changed file.
    const cap = Math.max(1000, 4 * max);
    let listed: FileEntry[] = [];
    let total = 0;
    let bytes = 0;
    await walkTree(this.path, (e) => {
      if (e.info.isDirectory) return;
      bytes += e.info.size;
      if (this.#before.get(e.path) === stamp(e.info)) return;
      total++;
      listed.push({ path: e.path, size: e.info.size });
      if (listed.length > cap) listed = listed.sort(byPath).slice(0, max);
    });
    listed.sort(byPath);
    return { changes: { files: listed.slice(0, max), total, truncated: total > max }, bytes };
  }
}

/** Bytes of a workspace's dir outside `work` (`home`, and whatever a job put beside them). */
async function bytesBesideWork(ws: Workspace): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(ws.dir)) {
      if (e.name === "work") continue;
      const abs = join(ws.dir, e.name);
      const info = await Deno.lstat(abs).catch(() => undefined);
      if (info) n += info.isDirectory ? await treeBytes(abs) : info.size;
    }
  } catch { /* gone meanwhile */ }
  return n;
}

/** Options of {@linkcode WorkspaceManager}. */
export interface WorkspaceManagerOptions {
  /** Where workspaces are made (created if missing). */
  root: string;
  /** Bound on the bytes of kept workspaces; the oldest go first (default: no bound). */
  maxBytes?: number;
  /** Most files listed in {@linkcode Changes} (default 100). */
  maxListed?: number;
  /**
   * Directories a job's template may come from (they and everything below them;
   * default none: every template is refused). See
   * {@linkcode WorkspaceManager.allowTemplateRoot}.
   */
  templateRoots?: string[];
  /** Where a workspace that cannot be removed is reported (default: nowhere). */
  log?: Logger;
}

/** The outcome of {@linkcode WorkspaceManager.finish}. */
export interface Finished {
  /** Whether the workspace stays on disk (its policy kept it, and the size bound did not take it). */
  kept: boolean;
  /** What the job created or changed. */
  changes: Changes;
}

/**
 * Makes, keeps and removes workspaces under one root.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WorkspaceManager } from "./workspace.ts";
 * const root = Deno.makeTempDirSync();
 * const spaces = new WorkspaceManager({ root, maxBytes: 100 * 2 ** 20 });
 * const ws = spaces.create("j1", { keep: "always" });
 * // Kept (policy always); the oldest kept ones go once they pass 100 MiB in all.
 * assert.equal((await spaces.finish(ws, "failed")).kept, true);
 * spaces.release(ws);
 * await spaces.idle();
 * assert.ok(Deno.statSync(ws.path).isDirectory);
 * Deno.removeSync(root, { recursive: true });
 * ```
 */
export class WorkspaceManager {
  /** The root directory (absolute). */
  readonly root: string;
  /** Bound on kept bytes, or undefined for none. */
  readonly maxBytes?: number;
  /**
   * Workspaces of dead servers found at start that were due to go (not kept by
   * their policy); they are removed by the time {@linkcode ready} resolves.
   */
  readonly swept: number = 0;
  /** Resolves once what the start found is dealt with: dead servers' workspaces removed, kept ones measured. */
  readonly ready: Promise<void>;
  readonly #maxListed: number;
  readonly #log: Logger;
  /** Allowed template roots: as given (resolved) and, when it differs, the real path. */
  readonly #templateRoots: string[] = [];
  /** Kept workspaces, oldest first: from earlier runs (found at start) and this one. */
  readonly #kept: { dir: string; bytes: number; ws?: Workspace }[] = [];
  /** Work under way (removals, finishing), for {@linkcode idle}. */
  readonly #pending = new Set<Promise<unknown>>();
  /** Workspaces that could neither be removed nor moved aside (reported once each). */
  readonly #stuck = new Set<string>();

  /**
   * Creates the root if needed and takes stock of what earlier servers left:
   * those of dead servers due to go are removed, the rest adopted as kept
   * (and, with a size bound, measured), off the event loop: see {@linkcode ready}.
   * Throws only when the root cannot be made or read; never because of a workspace in it.
   */
  constructor(opts: WorkspaceManagerOptions) {
    this.root = resolve(opts.root);
    this.maxBytes = opts.maxBytes;
    this.#maxListed = opts.maxListed ?? 100;
    this.#log = opts.log ?? (() => {});
    for (const dir of opts.templateRoots ?? []) this.allowTemplateRoot(dir);
    Deno.mkdirSync(this.root, { recursive: true });
    const sweep: string[] = [];
    const earlier: { dir: string; at: number }[] = [];
    for (const e of Deno.readDirSync(this.root)) {
      // `.unremovable` and anything else hidden is not a workspace.
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      const dir = join(this.root, e.name);
      const owner = readOwner(dir);
      if (owner) {
        // In use by a live server (this one included): not ours to judge. A server killed
        // but not yet reaped by its parent (a zombie) is gone, as is one whose pid was reused.
        if (owner.pid === Deno.pid || processAlive(owner.pid, owner.start)) continue;
        // Its server died: a finished job's workspace that was waiting to go, or a job that
        // died with the server (a failure: kept unless its policy is never).
        if (owner.remove || owner.keep === "never") {
          sweep.push(dir);
          continue;
        }
        try {
          Deno.removeSync(join(dir, OWNER_FILE));
        } catch { /* a read-only workspace: adopted all the same */ }
      }
      if (this.maxBytes !== undefined) {
        let at = 0;
        try {
          at = Deno.statSync(dir).mtime?.getTime() ?? 0;
        } catch { /* gone meanwhile */ }
        earlier.push({ dir, at });
      }
    }
    this.swept = sweep.length;
    this.ready = this.#track(this.#takeStock(sweep, earlier));
  }

  async #takeStock(sweep: string[], earlier: { dir: string; at: number }[]): Promise<void> {
    for (const dir of sweep) await this.#remove(dir);
    if (this.maxBytes === undefined) return;
    earlier.sort((a, b) => a.at - b.at);
    const measured: { dir: string; bytes: number }[] = [];
    for (const { dir } of earlier) measured.push({ dir, bytes: await treeBytes(dir) });
    // Older than anything this run kept meanwhile.
    this.#kept.unshift(...measured);
    this.#enforce();
  }

  /**
   * Allows templates from `dir` and everything below it (`--template-root`).
   * A template is checked on its real path, so a symlink cannot lead out.
   */
  allowTemplateRoot(dir: string): void {
    const abs = resolve(dir);
    for (const p of [abs, realPath(abs)]) {
      if (p !== undefined && !this.#templateRoots.includes(p)) this.#templateRoots.push(p);
    }
  }

  /** The allowed template roots (as given, resolved). */
  get templateRoots(): string[] {
    return [...this.#templateRoots];
  }

  /**
   * The real path of the template a job names, once it is known to be a
   * directory under an allowed root; else a {@linkcode WorkspaceError} naming
   * `workspace.template`. Nothing outside the roots is looked at.
   */
  templateDir(template: string): string {
    const abs = resolve(template);
    const roots = this.#templateRoots;
    const fail = (why: string) => new WorkspaceError("workspace.template", why);
    if (roots.length === 0) {
      throw fail(
        `${abs}: this server takes no templates (its operator names the directories they may ` +
          `come from with --template-root)`,
      );
    }
    const allowed = (p: string) => roots.some((r) => inside(r, p));
    if (!allowed(abs)) {
      throw fail(`${abs} is not under a template root of this server (${roots.join(", ")})`);
    }
    const real = realPath(abs);
    let isDir = false;
    try {
      isDir = real !== undefined && Deno.statSync(real).isDirectory;
    } catch { /* reported below */ }
    if (!isDir) throw fail(`no such directory on the server: ${abs}`);
    if (!allowed(real!)) {
      throw fail(`${abs} leads out of the template roots through a symlink (to ${real})`);
    }
    return real!;
  }

  /** A fresh directory for a job, with `work` and `home` in it and its owner noted. */
  #makeDir(jobId: string, keep: KeepPolicy): string {
    const t = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
    const safe = jobId.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40);
    const dir = join(this.root, `${t}-${safe}-${crypto.randomUUID().slice(0, 8)}`);
    Deno.mkdirSync(join(dir, "work"), { recursive: true });
    Deno.mkdirSync(join(dir, "home"));
    writeOwner(dir, { pid: Deno.pid, start: SELF_START, keep });
    return dir;
  }

  /**
   * Makes a fresh, empty workspace for `jobId`, at once. A `spec` with a
   * template is for {@linkcode createFromTemplate}.
   */
  create(jobId: string, spec: Omit<WorkspaceSpec, "template">): Workspace {
    if ((spec as WorkspaceSpec).template !== undefined) {
      throw new TypeError("create: a template is copied by createFromTemplate");
    }
    const keep = spec.keep ?? "failed";
    return new Workspace(this.#makeDir(jobId, keep), keep, this.#maxListed, new Map());
  }

  /**
   * Makes a fresh workspace for `jobId` with `spec.template` copied into it, off
   * the event loop. Rejects with a {@linkcode WorkspaceError} (field
   * `workspace.template`) when the template is not a directory under an allowed
   * root (see {@linkcode templateDir}) or cannot be copied.
   */
  createFromTemplate(
    jobId: string,
    spec: WorkspaceSpec & { template: string },
  ): Promise<Workspace> {
    // Tracked, so that a server shutting down waits for the copy (and removes what it made).
    return this.#track(this.#createFromTemplate(jobId, spec));
  }

  async #createFromTemplate(
    jobId: string,
    spec: WorkspaceSpec & { template: string },
  ): Promise<Workspace> {
    const template = this.templateDir(spec.template);
    const keep = spec.keep ?? "failed";
    const dir = this.#makeDir(jobId, keep);
    const work = join(dir, "work");
    try {
      await copyTree(template, work);
    } catch (e) {
      void this.#track(this.#remove(dir));
      throw new WorkspaceError(
        "workspace.template",
        `cannot copy ${template}: ${(e as Error).message}`,
      );
    }
    return new Workspace(dir, keep, this.#maxListed, await fingerprint(work));
  }

  /**
   * Once the job has ended with `status` (`completed` counts as success,
   * anything else as failure): lists what it changed, applies the keep policy
   * and says whether the workspace is kept. A kept workspace counts toward the
   * size bound at once; one that is not kept stays on disk until
   * {@linkcode WorkspaceManager.release}, so its files can still be read (a
   * release asked for meanwhile waits for this to end).
   */
  finish(ws: Workspace, status: string): Promise<Finished> {
    ws.state = "finishing";
    return this.#track(this.#finish(ws, status));
  }

  async #finish(ws: Workspace, status: string): Promise<Finished> {
    try {
      const { changes, bytes } = await ws.scan();
      ws.kept = ws.keep === "always" || (ws.keep === "failed" && status !== "completed");
      // Should this server die before releasing it, the next one on this root knows its fate.
      if (ws.kept) {
        try {
          Deno.removeSync(join(ws.dir, OWNER_FILE));
        } catch { /* already gone, or read-only */ }
        if (this.maxBytes !== undefined) ws.bytes = bytes + await bytesBesideWork(ws);
        if (!ws.removed) {
          this.#kept.push({ dir: ws.dir, bytes: ws.bytes, ws });
          this.#enforce();
        }
      } else writeOwner(ws.dir, { pid: Deno.pid, start: SELF_START, keep: ws.keep, remove: true });
      return { kept: ws.kept && !ws.removed, changes };
    } finally {
      ws.state = "ended";
      if (ws.releaseWanted) this.release(ws);
    }
  }

  /**
   * Removes the workspace unless it is kept (the owner no longer needs to read
   * it) or a job runs in it; the removal runs off the event loop and never
   * fails (see {@linkcode UNREMOVABLE_DIR}). While {@linkcode finish} runs, the
   * release waits for it.
   */
  release(ws: Workspace): void {
    if (ws.kept || ws.removed || ws.users > 0) return;
    if (ws.state === "finishing") {
      ws.releaseWanted = true;
      return;
    }
    ws.removed = true;
    void this.#track(this.#remove(ws.dir));
  }

  /** Bytes of kept workspaces now counted against the bound. */
  get keptBytes(): number {
    return this.#kept.reduce((n, k) => n + k.bytes, 0);
  }

  /** Resolves once no removal, finishing or start-up work is under way. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    const done = () => this.#pending.delete(p);
    p.then(done, done);
    return p;
  }

  #enforce(): void {
    if (this.maxBytes === undefined) return;
    let total = this.keptBytes;
    while (total > this.maxBytes && this.#kept.length > 0) {
      const oldest = this.#kept.shift()!;
      total -= oldest.bytes;
      if (oldest.ws) oldest.ws.removed = true;
      void this.#track(this.#remove(oldest.dir));
    }
  }

  /**
   * Removes a workspace; never rejects. What cannot be removed (an immutable
   * file, a mount point inside, a directory not ours) is moved into
   * {@linkcode UNREMOVABLE_DIR} and logged; if even that fails it is left in
   * place, logged once.
   */
  async #remove(dir: string): Promise<void> {
    let cause: Error;
    try {
      await removeTree(dir);
      return;
    } catch (e) {
      cause = e as Error;
    }
    const asideRoot = join(this.root, UNREMOVABLE_DIR);
    const aside = join(asideRoot, basename(dir));
    try {
      Deno.mkdirSync(asideRoot, { recursive: true });
      Deno.renameSync(dir, aside);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && !existsSync(dir)) return;
      if (this.#stuck.has(dir)) return;
      this.#stuck.add(dir);
      this.#log(
        `workspace ${dir} cannot be removed (${cause.message}) nor moved to ${asideRoot} ` +
          `(${(e as Error).message}): left in place`,
        { level: "warn", event: "workspace_unremovable", workspace: dir, moved_to: null },
      );
      return;
    }
    this.#log(
      `workspace ${dir} cannot be removed (${cause.message}): moved to ${aside}; remove it by hand`,
      { level: "warn", event: "workspace_unremovable", workspace: dir, moved_to: aside },
    );
  }
}

function realPath(p: string): string | undefined {
  try {
    return Deno.realPathSync(p);
  } catch {
    return undefined;
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
  /** The server's start time (`/proc/PID/stat` field 22); absent in files of older servers. */
  start?: number;
  keep: KeepPolicy;
  remove?: boolean;
}

/** This process's start time: with the pid, it names this server for good. */
const SELF_START = processStartTime(Deno.pid);

function writeOwner(dir: string, owner: Owner): void {
  try {
    Deno.writeTextFileSync(join(dir, OWNER_FILE), JSON.stringify(owner));
  } catch { /* removed meanwhile, or read-only */ }
}

function readOwner(dir: string): Owner | undefined {
  try {
    const o = JSON.parse(Deno.readTextFileSync(join(dir, OWNER_FILE)));
    if (typeof o?.pid !== "number") return undefined;
    return { ...o, start: Number.isInteger(o.start) ? o.start : undefined } as Owner;
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
 * import assert from "node:assert/strict";
 * import { resolveInside, WorkspaceError } from "./workspace.ts";
 * const root = Deno.realPathSync(Deno.makeTempDirSync());
 * assert.equal(resolveInside(root, "src/main.py"), `${root}/src/main.py`);
 * assert.throws(() => resolveInside(root, "../../etc/passwd"), WorkspaceError);
 * Deno.symlinkSync("/etc", `${root}/etc`);
 * assert.throws(() => resolveInside(root, "etc/passwd"), /leaves the workspace through a symlink/);
 * Deno.removeSync(root, { recursive: true });
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

const fatal = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a workspace for the `files` method: the whole listing (no `path`, or a
 * directory), or one file of at most `maxBytes` (base64 when it is binary).
 * Paths are confined with {@linkcode resolveInside}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readWorkspace } from "./workspace.ts";
 * const root = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${root}/a.txt`, "hi");
 * const file = await readWorkspace(root, "a.txt");
 * assert.deepEqual(file, { path: "a.txt", exists: true, type: "file", size: 2, encoding: "utf-8", content: "hi", truncated: false });
 * const dir = await readWorkspace(root);
 * assert.ok(dir.exists && dir.type === "dir");
 * assert.deepEqual(dir.entries.map((e) => e.path), ["a.txt"]);
 * assert.deepEqual(await readWorkspace(root, "b.txt"), { path: "b.txt", exists: false });
 * Deno.removeSync(root, { recursive: true });
 * ```
 */
export async function readWorkspace(
  root: string,
  path = "",
  opts: { maxBytes?: number; maxEntries?: number } = {},
): Promise<WorkspaceRead> {
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
    const max = opts.maxEntries ?? 1000;
    const entries: FileEntry[] = [];
    const complete = await walkTree(abs, (e) => {
      if (entries.length >= max) return false;
      const type = typeOf(e.info);
      entries.push({ path: e.path, size: type === "dir" ? 0 : e.info.size, type });
      return true;
    }, { base });
    entries.sort(byPath);
    return { path, exists: true, type: "dir", entries, truncated: !complete };
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

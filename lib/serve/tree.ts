/**
 * Directory trees handled without holding the event loop: walking, copying,
 * measuring and removing a tree that may hold 100,000 files. Directory listings
 * are read off the event loop (`Deno.readDir`); the per-entry work (`lstat`, a
 * small file's copy, a `chmod`) runs in slices of at most {@linkcode SLICE_MS}
 * that yield between them, so other sessions' messages are answered meanwhile;
 * large files are copied off the event loop.
 *
 * Removal ({@linkcode removeTree}) makes what it can writable and tries again
 * (a read-only directory with files in it, as Go's module cache leaves), and
 * never descends into a mount point below the tree: it refuses instead, so a
 * bind mount a job made inside its workspace does not cost the mounted files.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyTree, removeTree, treeBytes } from "./tree.ts";
 * const src = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${src}/a.txt`, "hello");
 * const dest = Deno.makeTempDirSync();
 * await copyTree(src, dest);
 * assert.equal(await treeBytes(dest), 5);
 * await removeTree(dest);
 * await removeTree(src);
 * assert.throws(() => Deno.statSync(dest), Deno.errors.NotFound);
 * ```
 * @module
 */

import { join, relative, resolve, sep } from "node:path";

/** Longest stretch, in ms, that a tree operation keeps the event loop before it yields. */
export const SLICE_MS = 8;

/** Files up to this size are copied in a slice; larger ones off the event loop. */
const SMALL_FILE = 64 * 1024;

/**
 * Measures the time spent on the event loop and yields (a macrotask) once a
 * slice has lasted {@linkcode SLICE_MS}. Checks the clock every few calls only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Slices } from "./tree.ts";
 * let ticked = false;
 * setTimeout(() => ticked = true, 0); // another session's work
 * const slices = new Slices();
 * const t0 = performance.now();
 * while (!ticked && performance.now() - t0 < 5000) await slices.pause(); // busy work between pauses
 * assert.equal(ticked, true); // it ran in a pause, within SLICE_MS
 * ```
 */
export class Slices {
  #since = performance.now();
  #calls = 0;
  /** Length of a slice in ms. */
  readonly ms: number;
  /** Starts the first slice; `ms` is its length (default {@linkcode SLICE_MS}). */
  constructor(ms: number = SLICE_MS) {
    this.ms = ms;
  }

  /** Undefined while the slice lasts; once spent, a promise that resolves after yielding. */
  pause(): Promise<void> | undefined {
    if (++this.#calls % 16 !== 0 || performance.now() - this.#since < this.ms) return undefined;
    return new Promise<void>((r) => setTimeout(r, 0)).then(() => {
      this.#since = performance.now();
    });
  }
}

/** One entry seen by {@linkcode walkTree}. */
export interface TreeEntry {
  /** Path relative to the walk's base, `/`-separated. */
  path: string;
  /** Absolute path. */
  abs: string;
  /** `lstat` of the entry (symlinks are not followed). */
  info: Deno.FileInfo;
}

/**
 * Visits every entry below `dir` (directories before what they hold, symlinks
 * not followed) and resolves with true once all were seen, or false when
 * `visit` returned false to stop. Unreadable directories and entries that
 * vanish meanwhile are skipped (with `strict`, a directory that cannot be read
 * is an error naming it). `visit` may return a promise (it is awaited).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { walkTree } from "./tree.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${dir}/src`);
 * Deno.writeTextFileSync(`${dir}/src/a.ts`, "");
 * Deno.writeTextFileSync(`${dir}/b.txt`, "");
 * let files = 0;
 * await walkTree(dir, (e) => void (e.info.isFile && files++));
 * assert.equal(files, 2);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function walkTree(
  dir: string,
  visit: (e: TreeEntry) => boolean | void | Promise<boolean | void>,
  opts: { base?: string; slices?: Slices; strict?: boolean } = {},
): Promise<boolean> {
  const base = resolve(opts.base ?? dir);
  const start = resolve(dir);
  const slices = opts.slices ?? new Slices();
  // Paths are built by concatenation: node:path's join and relative per entry cost more than
  // the lstat itself.
  const stack: [abs: string, rel: string][] = [[start, relative(base, start).split(sep).join("/")]];
  while (stack.length > 0) {
    const [d, rel] = stack.pop()!;
    let names: string[];
    try {
      names = [];
      for await (const e of Deno.readDir(d)) names.push(e.name);
    } catch (e) {
      if (opts.strict) throw new Error(`${rel || "."}: ${(e as Error).message}`, { cause: e });
      continue; // removed meanwhile, or unreadable
    }
    const prefix = d.endsWith("/") ? d : `${d}/`;
    for (const name of names) {
      const abs = prefix + name;
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(abs);
      } catch {
        continue;
      }
      const path = rel === "" ? name : `${rel}/${name}`;
      const r = visit({ path, abs, info });
      if ((r instanceof Promise ? await r : r) === false) return false;
      if (info.isDirectory) stack.push([abs, path]);
      const p = slices.pause();
      if (p) await p;
    }
  }
  return true;
}

/**
 * Bytes used by a tree: the sizes of its files and symlinks (directories count 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeBytes } from "./tree.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${dir}/sub`);
 * Deno.writeTextFileSync(`${dir}/sub/a.txt`, "12345");
 * Deno.writeTextFileSync(`${dir}/b.txt`, "123");
 * assert.equal(await treeBytes(dir), 8);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  await walkTree(dir, (e) => {
    if (!e.info.isDirectory) n += e.info.size;
  });
  return n;
}

/**
 * Copies the contents of `src` into the existing directory `dest`: files with
 * their permission bits, symlinks as symlinks (verbatim), directories with
 * their modes once their contents are in. Other kinds of file (FIFOs, sockets,
 * devices) are skipped. Throws the first error met, naming the path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyTree } from "./tree.ts";
 * const template = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${template}/run.sh`, "echo hi\n", { mode: 0o755 });
 * const dest = Deno.makeTempDirSync();
 * await copyTree(template, dest);
 * assert.equal(Deno.readTextFileSync(`${dest}/run.sh`), "echo hi\n");
 * assert.equal(Deno.statSync(`${dest}/run.sh`).mode! & 0o777, 0o755); // modes come along
 * Deno.removeSync(template, { recursive: true });
 * Deno.removeSync(dest, { recursive: true });
 * ```
 */
export async function copyTree(src: string, dest: string): Promise<void> {
  const dirModes: [string, number][] = [];
  const slices = new Slices();
  await walkTree(src, async (e) => {
    const to = join(dest, e.path);
    try {
      if (e.info.isDirectory) {
        Deno.mkdirSync(to);
        if (e.info.mode !== null) dirModes.push([to, e.info.mode & 0o7777]);
      } else if (e.info.isSymlink) {
        Deno.symlinkSync(Deno.readLinkSync(e.abs), to);
      } else if (e.info.isFile) {
        if (e.info.size <= SMALL_FILE) Deno.copyFileSync(e.abs, to);
        else await Deno.copyFile(e.abs, to);
      }
    } catch (err) {
      throw new Error(`${e.path}: ${(err as Error).message}`, { cause: err });
    }
  }, { slices, strict: true });
  // Deepest first, so a read-only directory is made read-only only once it is full.
  for (const [dir, mode] of dirModes.reverse()) {
    Deno.chmodSync(dir, mode);
    const p = slices.pause();
    if (p) await p;
  }
}

/**
 * The mount points at or below `dir`, from `/proc/self/mountinfo` (empty when
 * it cannot be read). A mount made inside a workspace shows here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mountsBelow } from "./tree.ts";
 * assert.equal(mountsBelow("/proc")[0], "/proc"); // ["/proc", …]
 * assert.deepEqual(mountsBelow(Deno.makeTempDirSync()), []);
 * ```
 */
export function mountsBelow(dir: string): string[] {
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return [];
  }
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined) continue;
    // Spaces, tabs, newlines and backslashes come as octal escapes (\040).
    const point = field.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (point === dir || point.startsWith(prefix)) out.push(point);
  }
  return out;
}

/** What stops a tree's removal: the tree holds a mount point, which is not descended into. */
export class MountedError extends Error {
  /** The mount points found below the tree. */
  readonly mounts: string[];
  /** Creates the error for `dir` and the mount points below it. */
  constructor(dir: string, mounts: string[]) {
    super(`${dir} holds a mount point (${mounts.join(", ")}): not removed`);
    this.name = "MountedError";
    this.mounts = mounts;
  }
}

/**
 * Removes a tree, off the event loop. When that fails (a read-only directory
 * with files in it), makes every directory of the tree writable by its owner
 * and tries once more. A tree that holds a mount point is not touched (a
 * {@linkcode MountedError}). Resolves once removed (or already gone); rejects
 * with the error that stopped the last try.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeTree } from "./tree.ts";
 * const d = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${d}/ro`);
 * Deno.writeTextFileSync(`${d}/ro/f`, "x");
 * Deno.chmodSync(`${d}/ro`, 0o555); // as Go's module cache leaves it
 * await removeTree(d);
 * assert.throws(() => Deno.statSync(d), Deno.errors.NotFound);
 * ```
 */
export async function removeTree(dir: string): Promise<void> {
  const mounts = mountsBelow(dir);
  if (mounts.length > 0) throw new MountedError(dir, mounts);
  try {
    await Deno.remove(dir, { recursive: true });
    return;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
  }
  await makeWritable(dir);
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Adds the owner's rwx to every directory of the tree that lacks it (each before it is read). */
async function makeWritable(dir: string): Promise<void> {
  const fix = (d: string, info: Deno.FileInfo) => {
    if (info.mode === null || (info.mode & 0o700) === 0o700) return;
    try {
      Deno.chmodSync(d, (info.mode & 0o7777) | 0o700);
    } catch { /* not ours, or immutable: the removal will say */ }
  };
  try {
    fix(dir, Deno.lstatSync(dir));
  } catch {
    return;
  }
  await walkTree(dir, (e) => {
    if (e.info.isDirectory) fix(e.abs, e.info);
  });
}

/**
 * What a test needs from the machine beyond Deno (root, `chattr`, mounting, `setpriv`, `bwrap`):
 * probed once when the test module loads. A missing capability never makes a test pass in
 * silence:
 *
 * - under CI (`CI=true`), or when `CCX_REQUIRE` names it (`CCX_REQUIRE=chattr,mount`, or `all`),
 *   every test that needs it FAILS, saying what is missing, why, and how to get it;
 * - elsewhere those tests are ignored, and one line on stderr says which capability is missing,
 *   why, and how to get it.
 *
 * @example
 * ```ts
 * import { requireCapability } from "./capability.ts";
 * const CHATTR = requireCapability("chattr", probeChattr, "run as root on ext4/xfs/btrfs");
 * Deno.test({ name: "…", ignore: CHATTR.ignore, fn() { CHATTR.need(); … } });
 * ```
 * @module
 */

/** A capability as probed on this machine, and what tests that need it do about it. */
export interface Capability {
  /** Its short name (`chattr`, `mount`, …): what `CCX_REQUIRE` lists. */
  readonly name: string;
  /** Why the machine lacks it; undefined when it has it. */
  readonly missing: string | undefined;
  /** True when the tests that need it are skipped: it is missing and not required. */
  readonly ignore: boolean;
  /** Throws, naming what is missing and how to get it, when it is missing (call it first). */
  need(): void;
}

/** True when a missing `name` must fail its tests: `CI=true`, or `CCX_REQUIRE` names it. */
export function capabilityRequired(name: string): boolean {
  if (Deno.env.get("CI") === "true") return true;
  const listed = (Deno.env.get("CCX_REQUIRE") ?? "").split(",").map((s) => s.trim());
  return listed.includes(name) || listed.includes("all");
}

/** Capabilities already said to be skipped in this process: one line each. */
const announced = new Set<string>();

/**
 * Probes a capability once and says what its tests do. `probe` answers `true` when the machine
 * has it, or `false` / a string saying why not (what the failed command printed); a probe that
 * throws counts as missing, with the error as the reason. `installHint` says how to get it, e.g.
 * `apt-get install bubblewrap`.
 */
export function requireCapability(
  name: string,
  probe: () => boolean | string,
  installHint: string,
): Capability {
  let missing: string | undefined;
  try {
    const r = probe();
    if (r !== true) missing = typeof r === "string" && r ? r : "the probe failed";
  } catch (e) {
    missing = e instanceof Deno.errors.NotFound
      ? `a program it needs is not installed (${(e as Error).message})`
      : (e as Error).message;
  }
  const required = capabilityRequired(name);
  if (missing !== undefined && !required && !announced.has(name)) {
    announced.add(name);
    console.warn(
      `SKIPPED: tests that need ${name}: ${missing}. To get it: ${installHint}. ` +
        `(CI=true or CCX_REQUIRE=${name} makes this a failure.)`,
    );
  }
  return {
    name,
    missing,
    ignore: missing !== undefined && !required,
    need() {
      if (missing === undefined) return;
      throw new Error(
        `missing capability ${name}: ${missing}. To get it: ${installHint}. ` +
          `(Required here because ${
            Deno.env.get("CI") === "true" ? "CI=true" : `CCX_REQUIRE names ${name}`
          }.)`,
      );
    },
  };
}

/** The text a command wrote to stderr, trimmed, or `exit N` when it wrote nothing. */
function why(out: Deno.CommandOutput): string {
  return new TextDecoder().decode(out.stderr).trim() || `exit ${out.code}`;
}

/**
 * Probe: this process is root (uid 0), for tests that switch users, mount, or make files
 * immutable.
 */
export function probeRoot(): true | string {
  return Deno.uid() === 0 || `this process runs as uid ${Deno.uid()}, not root`;
}

/** Probe: `chattr +i` works on a file in the temp directory (root, and a file system with it). */
export function probeChattr(): true | string {
  const d = Deno.makeTempDirSync({ prefix: "ccx-probe-chattr-" });
  try {
    Deno.writeTextFileSync(`${d}/f`, "");
    const on = new Deno.Command("chattr", { args: ["+i", `${d}/f`], stderr: "piped" })
      .outputSync();
    if (!on.success) return `chattr +i ${d}/f: ${why(on)}`;
    new Deno.Command("chattr", { args: ["-i", `${d}/f`] }).outputSync();
    return true;
  } finally {
    Deno.removeSync(d, { recursive: true });
  }
}

/** Probe: a bind mount can be made (and undone) in the temp directory. */
export function probeBindMount(): true | string {
  const d = Deno.makeTempDirSync({ prefix: "ccx-probe-mount-" });
  try {
    Deno.mkdirSync(`${d}/a`);
    Deno.mkdirSync(`${d}/b`);
    const m = new Deno.Command("mount", {
      args: ["--bind", `${d}/a`, `${d}/b`],
      stderr: "piped",
    }).outputSync();
    if (!m.success) return `mount --bind: ${why(m)}`;
    new Deno.Command("umount", { args: [`${d}/b`] }).outputSync();
    return true;
  } finally {
    Deno.removeSync(d, { recursive: true });
  }
}

/** Probe: a small tmpfs can be mounted (and unmounted) in the temp directory. */
export function probeTmpfsMount(): true | string {
  const d = Deno.makeTempDirSync({ prefix: "ccx-probe-tmpfs-" });
  try {
    const m = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=16k", "tmpfs", d],
      stderr: "piped",
    }).outputSync();
    if (!m.success) return `mount -t tmpfs: ${why(m)}`;
    new Deno.Command("umount", { args: [d] }).outputSync();
    return true;
  } finally {
    Deno.removeSync(d);
  }
}

/** Probe: util-linux's `setpriv` is installed (switching users with it needs root as well). */
export function probeSetpriv(): true | string {
  const out = new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "piped" })
    .outputSync();
  return out.success || `setpriv --version: ${why(out)}`;
}

/** Probe: `bwrap` (bubblewrap) runs a command in a sandbox here. */
export function probeBwrap(): true | string {
  const out = new Deno.Command("bwrap", {
    args: ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  return out.success || `bwrap: ${why(out)}`;
}

/** How to get root, `chattr`, mounts, `setpriv` and `bwrap` for the tests (install hints). */
export const HINTS = {
  root: "run the tests as root (.ci/run does; e.g. sudo -E deno test -A tests/…)",
  chattr: "run the tests as root with TMPDIR on ext4, xfs or btrfs (tmpfs has no immutable " +
    "flag); chattr comes with e2fsprogs (apt-get install e2fsprogs)",
  mount: "run the tests as root with CAP_SYS_ADMIN (in a container: --privileged or " +
    "--cap-add SYS_ADMIN)",
  setpriv: "install util-linux (apt-get install util-linux) and run the tests as root",
  bwrap: "install bubblewrap (apt-get install bubblewrap); it needs root or unprivileged " +
    "user namespaces",
} as const;

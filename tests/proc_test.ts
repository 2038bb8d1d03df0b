/**
 * The /proc readers (lib/common/proc.ts) on real processes: a detached group with a live member
 * and a zombie, its start time, and the counts before and after it ends.
 * @module
 */

import assert from "node:assert/strict";
import {
  countGroupProcesses,
  processAlive,
  processesInGroups,
  processStartTime,
  procStat,
} from "../lib/common/proc.ts";
import { waitFor } from "./_util/helpers.ts";

/** The pids of group `pgid` with their states, from /proc. */
function members(pgid: number): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    const st = /^\d+$/.test(e.name) ? procStat(e.name) : undefined;
    if (st?.pgid === pgid) out.push({ pid: Number(e.name), state: st.state });
  }
  return out;
}

Deno.test("procStat() and processStartTime() read this process, and nothing for a pid that is not there", () => {
  const self = procStat(Deno.pid);
  assert.ok(self, "this process has a /proc entry");
  assert.match(self.state, /^[RS]$/);
  assert.ok(Number.isInteger(self.pgid) && self.pgid > 0);
  assert.ok(Number.isInteger(self.start) && self.start > 0);
  assert.equal(processStartTime(Deno.pid), self.start);
  assert.equal(procStat(2 ** 30), undefined);
  assert.equal(processStartTime(2 ** 30), undefined);
});

Deno.test("countGroupProcesses() counts a group's live members, not its zombie, not before `since`", async () => {
  // setsid: pgid = pid. The backgrounded `sleep 0` exits and stays a zombie: its parent became
  // `sleep 30` by exec and never reaps it.
  const child = new Deno.Command("sh", {
    args: ["-c", "sleep 0 & exec sleep 30"],
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const pgid = child.pid;
  try {
    await waitFor(
      () => members(pgid).some((m) => m.state === "Z"),
      `a zombie in group ${pgid}`,
    );
    assert.equal(members(pgid).length, 2, "the leader and its zombie");
    const group = new Set([pgid]);
    assert.equal(countGroupProcesses(group), 1, "the zombie does not count");
    assert.equal(countGroupProcesses(new Set([pgid, Deno.pid])), 1);
    assert.equal(processesInGroups(group), 1);
    assert.equal(countGroupProcesses(group, { stopAt: 1 }), 1);
    const start = processStartTime(pgid)!;
    assert.equal(countGroupProcesses(group, { since: start }), 1, "started at `since` counts");
    assert.equal(countGroupProcesses(group, { since: start + 1 }), 0, "older ones do not");
  } finally {
    Deno.kill(-pgid, "SIGKILL");
    await child.status;
  }
  await waitFor(() => members(pgid).length === 0, `group ${pgid} to be reaped`);
  assert.equal(countGroupProcesses(new Set([pgid])), 0);
  assert.equal(processesInGroups(new Set([pgid])), 0);
  assert.equal(processesInGroups(new Set()), 0);
});

Deno.test("processAlive(): this process is; a zombie, a missing pid and a reused pid are not", async () => {
  assert.equal(processAlive(Deno.pid), true);
  assert.equal(processAlive(Deno.pid, processStartTime(Deno.pid)), true);
  assert.equal(processAlive(Deno.pid, processStartTime(Deno.pid)! - 1), false, "another start");
  assert.equal(processAlive(2 ** 30), false);
  // The backgrounded `sleep 0.2` ends after the shell has exec'd `sleep 30`, which never reaps
  // it: a zombie (one that ends at once may be reaped by the shell before its exec).
  const child = new Deno.Command("sh", {
    args: ["-c", "sleep 0.2 & exec sleep 30"],
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor(() => members(child.pid).some((m) => m.state === "Z"), "the zombie");
    const zombie = members(child.pid).find((m) => m.state === "Z")!.pid;
    assert.equal(processAlive(zombie), false);
    assert.equal(processAlive(zombie, procStat(zombie)!.start), false);
    assert.equal(processAlive(child.pid), true, "its parent lives");
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

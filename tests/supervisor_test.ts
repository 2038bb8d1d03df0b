import assert from "node:assert/strict";
import { endProcessGroup, type JobSink, StartError, startJob } from "../lib/serve/supervisor.ts";
import { setTimeout as delay } from "node:timers/promises";
import {
  Gate,
  groupPaused,
  processesInGroup,
  waitFor,
  waitForPause,
  waitForResume,
} from "./_util/helpers.ts";

/** A sink that records every chunk. */
function recorder(): JobSink & { chunks: { stream: string; text: string; raw?: Uint8Array }[] } {
  const chunks: { stream: string; text: string; raw?: Uint8Array }[] = [];
  return {
    chunks,
    output(stream, text, raw) {
      chunks.push({ stream, text, raw });
    },
  };
}

const joined = (r: ReturnType<typeof recorder>, stream = "stdout") =>
  r.chunks.filter((c) => c.stream === stream).map((c) => c.text).join("");

/** A job whose shell and its background grandchild both ignore SIGTERM. */
const STUBBORN = `trap '' TERM; sh -c "trap '' TERM; sleep 1000" & echo ready; sleep 1000; wait`;

Deno.test("a job's stdout and stderr arrive separately and exit 0 is completed", async () => {
  const r = recorder();
  const job = startJob({ command: "echo out; echo err >&2" }, r);
  const end = await job.done;
  assert.equal(end.status, "completed");
  assert.equal(end.exitCode, 0);
  assert.equal(joined(r), "out\n");
  assert.equal(joined(r, "stderr"), "err\n");
  assert.equal(end.stdoutBytes, 4);
  assert.equal(end.stderrBytes, 4);
});

Deno.test("a job runs in its own process group (pgid = pid)", async () => {
  const r = recorder();
  const job = startJob({ command: "sleep 0.2" }, r);
  assert.equal(job.pgid, job.pid);
  // The leader calls setsid a moment after the start (see startJob).
  await waitFor(() => processesInGroup(job.pgid).length >= 1, "the job's group");
  await job.done;
});

Deno.test("a job signalled at once, before its setsid can have run, is still ended/paused", async () => {
  // Started through setsid, a job is in the server's group for a moment: signals to its
  // group would find none. Cancel, pause and resume in the very tick of the start.
  for (let i = 0; i < 10; i++) {
    const job = startJob({ command: "sleep 30" }, recorder());
    const end = await job.cancel();
    assert.equal(end.status, "canceled");
    assert.ok(end.executionTime < 10, `canceled at once, not after 30 s (${end.executionTime})`);
    assert.deepEqual(processesInGroup(job.pgid), []);
  }
  // Paused in the very tick of its start (before its setsid, unless the machine is so busy
  // that the job got further first), the job makes no progress until it is resumed. Not
  // "its leader is in state T": a pause that lands while `sh` waits on a vforked child stops
  // the child, and the leader waits in state D.
  const r = recorder();
  const job = startJob({ command: "while :; do echo t; sleep 0.02; done" }, r);
  job.pause();
  // Stopped: its output stops growing (what it wrote before the stop may still arrive).
  let seen = -1;
  let steady = 0;
  const deadline = Date.now() + 10_000;
  while (steady < 5) {
    assert.ok(Date.now() < deadline, `still writing 10 s after the pause: ${joined(r).length} B`);
    await delay(100);
    const now = joined(r).length;
    steady = now === seen ? steady + 1 : 0;
    seen = now;
  }
  job.resume();
  await waitFor(() => joined(r).length >= seen + 4, "the job to run again");
  assert.equal((await job.cancel()).status, "canceled");
  assert.deepEqual(processesInGroup(job.pgid), []);
});

Deno.test("a program that cannot be run is a StartError, not a failed job", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/script`, "#!/bin/sh\necho hi\n", { mode: 0o644 });
    assert.throws(
      () => startJob({ argv: [`${dir}/script`] }, recorder()),
      (e: unknown) =>
        e instanceof StartError && e.field === "argv" && /permission denied/.test(e.message),
    );
    assert.throws(
      () => startJob({ argv: [dir] }, recorder()),
      (e: unknown) => e instanceof StartError && /permission denied/.test(e.message),
    );
    assert.throws(
      () => startJob({ argv: ["ccx-no-such-program"] }, recorder()),
      (e: unknown) => e instanceof StartError && /program not found/.test(e.message),
    );
    // A program found on PATH, and one relative to cwd, start.
    await Deno.chmod(`${dir}/script`, 0o755);
    assert.equal(
      (await startJob({ argv: ["./script"], cwd: dir }, recorder()).done).status,
      "completed",
    );
    assert.equal((await startJob({ argv: ["true"] }, recorder()).done).status, "completed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a non-zero exit is failed with its code", async () => {
  const end = await startJob({ command: "exit 3" }, recorder()).done;
  assert.equal(end.status, "failed");
  assert.equal(end.exitCode, 3);
  assert.equal(end.signal, null);
});

Deno.test("a job killed by a signal nobody at ccx sent is killed, exit 128+n", async () => {
  const end = await startJob({ command: "kill -9 $$" }, recorder()).done;
  assert.equal(end.status, "killed");
  assert.equal(end.signal, "SIGKILL");
  assert.equal(end.exitCode, 137);
});

Deno.test("argv reaches the program verbatim: quotes, $, backticks, no shell", async () => {
  const hostile = [`a "b" 'c'`, "$(touch /tmp/ccx-should-not-exist)", "`id`", "$HOME", "\\n"];
  const r = recorder();
  const end = await startJob({ argv: ["printf", "%s\\n", ...hostile] }, r).done;
  assert.equal(end.status, "completed");
  assert.equal(joined(r), hostile.map((h) => h + "\n").join(""));
});

Deno.test("stdin is closed when not given: cat ends at once", async () => {
  const r = recorder();
  const end = await startJob({ command: "cat; echo stdin-closed" }, r).done;
  assert.equal(end.status, "completed");
  assert.equal(joined(r), "stdin-closed\n");
});

Deno.test("stdin text is written and then closed", async () => {
  const r = recorder();
  await startJob({ argv: ["cat"], stdin: "line one\nline two" }, r).done;
  assert.equal(joined(r), "line one\nline two");
});

Deno.test("env adds variables and cwd sets the directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = recorder();
    await startJob({ command: 'echo "$CCX_T" && pwd', env: { CCX_T: "v 1" }, cwd: dir }, r).done;
    assert.equal(joined(r), `v 1\n${await Deno.realPath(dir)}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing program or directory is a StartError naming the field", () => {
  assert.throws(
    () => startJob({ argv: ["/nonexistent/ccx-prog"] }, recorder()),
    (e: unknown) => e instanceof StartError && e.field === "argv",
  );
  assert.throws(
    () => startJob({ command: "true", cwd: "/nonexistent/dir" }, recorder()),
    (e: unknown) => e instanceof StartError && e.field === "cwd",
  );
});

Deno.test("cancel ends a SIGTERM-ignoring job and its SIGTERM-ignoring grandchild", async () => {
  const r = recorder();
  const job = startJob({ command: STUBBORN, graceMs: 300 }, r);
  await waitFor(() => joined(r).includes("ready"), "ready");
  await waitFor(() => processesInGroup(job.pgid).length >= 3, "three processes in the group");
  const end = await job.cancel();
  assert.equal(end.status, "canceled");
  assert.deepEqual(processesInGroup(job.pgid), []);
});

Deno.test("cancel while paused still ends the whole group", async () => {
  const r = recorder();
  const job = startJob({ command: STUBBORN, graceMs: 300 }, r);
  await waitFor(() => joined(r).includes("ready"), "ready");
  assert.ok(job.pause());
  await waitForPause(job.pgid);
  const end = await job.cancel();
  assert.equal(end.status, "canceled");
  assert.deepEqual(processesInGroup(job.pgid), []);
});

Deno.test("pause stops the whole group and resume continues it", async () => {
  using gate = new Gate();
  const r = recorder();
  // The job cannot end before the test opens the gate, so it certainly outlives the pause.
  const job = startJob({ command: `echo 1; ${gate.wait}; echo 2` }, r);
  await waitFor(() => joined(r) === "1\n", "first line");
  assert.ok(job.pause());
  assert.equal(job.state, "paused");
  await waitForPause(job.pgid);
  // The way on is open, but a stopped group cannot take it.
  gate.open();
  await delay(300);
  assert.equal(joined(r), "1\n");
  assert.ok(groupPaused(job.pgid));
  assert.ok(job.resume());
  assert.equal(job.state, "running");
  const end = await job.done;
  assert.equal(end.status, "completed");
  assert.equal(joined(r), "1\n2\n");
});

Deno.test("the whole-run timeout ends the group with status timeout", async () => {
  const r = recorder();
  const job = startJob({ command: STUBBORN, timeoutS: 0.3, graceMs: 200 }, r);
  const end = await job.done;
  assert.equal(end.status, "timeout");
  assert.deepEqual(processesInGroup(job.pgid), []);
});

Deno.test("no output for stall_timeout seconds is stalled", async () => {
  const r = recorder();
  // 1.5 s: the shell must get to its first echo within the window even on a loaded machine.
  const job = startJob({ command: "echo start; sleep 30", stallTimeoutS: 1.5, graceMs: 200 }, r);
  const end = await job.done;
  assert.equal(end.status, "stalled");
  assert.equal(joined(r), "start\n");
  assert.deepEqual(processesInGroup(job.pgid), []);
});

Deno.test("steady output within the stall window is not a stall", async () => {
  const r = recorder();
  // A tick every 0.1 s against a 2 s window (slack for a loaded machine), for longer than it.
  const cmd = "for i in $(seq 30); do echo tick; sleep 0.1; done";
  const end = await startJob({ command: cmd, stallTimeoutS: 2 }, r).done;
  assert.equal(end.status, "completed");
  assert.equal(joined(r), "tick\n".repeat(30));
  assert.ok(end.executionTime > 2, `ran ${end.executionTime}s, not past the stall window`);
});

Deno.test("a job paused for longer than its stall timeout is not stalled", async () => {
  const r = recorder();
  // The job is never quiet except while paused.
  const job = startJob({
    command: "while :; do echo tick; sleep 0.05; done",
    stallTimeoutS: 2,
    graceMs: 200,
  }, r);
  await waitFor(() => joined(r).includes("tick"), "the first tick");
  assert.ok(job.pause());
  await waitForPause(job.pgid);
  // A stall clock that kept running while paused would end the job during this wait.
  await delay(3000);
  assert.equal(job.state, "paused");
  const before = joined(r).length;
  assert.ok(job.resume());
  await waitForResume(job.pgid);
  await waitFor(() => joined(r).length > before, "a tick after the resume");
  const end = await job.cancel();
  assert.equal(end.status, "canceled");
});

Deno.test("processes left behind by a finished leader are ended with it", async () => {
  const r = recorder();
  const job = startJob({ command: "sleep 1000 > /dev/null 2>&1 & echo leader-done" }, r);
  const end = await job.done;
  assert.equal(end.status, "completed");
  assert.deepEqual(processesInGroup(job.pgid), []);
});

Deno.test("a leftover holding the pipe does not hold the job past the grace", async () => {
  const r = recorder();
  const job = startJob({ command: "trap '' TERM; (sleep 1000 &); echo bye", graceMs: 200 }, r);
  const end = await job.done;
  assert.equal(end.status, "completed");
  assert.equal(joined(r), "bye\n");
  assert.deepEqual(processesInGroup(job.pgid), []);
});

Deno.test("lines mode (the default): one call per line, with its newline, in order", async () => {
  const r = recorder();
  const end = await startJob({ argv: ["seq", "1", "200000"] }, r).done;
  assert.equal(end.status, "completed");
  assert.equal(r.chunks.length, 200000);
  for (let i = 0; i < 200000; i++) {
    if (r.chunks[i].text !== `${i + 1}\n`) assert.fail(`call ${i}: ${JSON.stringify(r.chunks[i])}`);
  }
});

Deno.test("chunks mode: chunks break at line ends and everything arrives in order", async () => {
  const r = recorder();
  const end = await startJob({ argv: ["seq", "1", "200000"], outputMode: "chunks" }, r).done;
  assert.equal(end.status, "completed");
  const text = joined(r);
  const expected = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join("");
  assert.equal(text, expected);
  assert.ok(r.chunks.length < 2000, `coalesced into ${r.chunks.length} chunks`);
  for (const c of r.chunks) assert.ok(c.text.endsWith("\n"), "every chunk ends at a line end");
});

for (const outputMode of ["lines", "chunks"] as const) {
  Deno.test(`${outputMode} mode: a line longer than the chunk limit is split without breaking UTF-8`, async () => {
    const r = recorder();
    // 3001 two-byte characters and no newline, with an odd chunk limit.
    const end = await startJob(
      { command: "printf 'é%.0s' $(seq 1 3001)", maxChunkBytes: 1001, outputMode },
      r,
    ).done;
    assert.equal(end.status, "completed");
    assert.equal(joined(r), "é".repeat(3001));
    assert.ok(r.chunks.length >= 6);
    assert.ok(r.chunks.every((c) => !c.text.includes("\ufffd") && c.raw === undefined));
    assert.ok(r.chunks.every((c) => new TextEncoder().encode(c.text).length <= 1001));
  });
}

Deno.test("lines mode: a line longer than a pipe read still arrives as one call", async () => {
  const r = recorder();
  const end = await startJob({ command: "head -c 200000 /dev/zero | tr '\\0' x; echo; echo b" }, r)
    .done;
  assert.equal(end.status, "completed");
  assert.deepEqual(r.chunks.map((c) => c.text), ["x".repeat(200000) + "\n", "b\n"]);
});

Deno.test("a partial line is sent after a short quiet period, before the job ends", async () => {
  using gate = new Gate();
  const r = recorder();
  const job = startJob({ command: `printf 'Password: '; ${gate.wait}; echo done` }, r);
  // The job writes nothing more until the gate opens, so the prompt can only arrive alone.
  await waitFor(() => joined(r) === "Password: ", "the prompt without newline");
  assert.equal(job.state, "running");
  gate.open();
  await job.done;
  assert.equal(joined(r), "Password: done\n");
  // Lines mode: the partial line is its own message, the rest of the line the next one.
  assert.deepEqual(r.chunks.map((c) => c.text), ["Password: ", "done\n"]);
});

Deno.test("lines mode: a last line without a newline is sent at the end", async () => {
  const r = recorder();
  await startJob({ command: "printf 'one\\ntwo\\nthree'" }, r).done;
  assert.deepEqual(r.chunks.map((c) => c.text), ["one\n", "two\n", "three"]);
});

Deno.test("lines mode: only the line that is not UTF-8 carries raw bytes", async () => {
  const r = recorder();
  const end = await startJob({ command: "printf 'ok\\n\\377\\376 bad\\nfine é\\n'" }, r).done;
  assert.equal(end.invalidUtf8Chunks, 1);
  assert.deepEqual(r.chunks.map((c) => c.text), ["ok\n", "\ufffd\ufffd bad\n", "fine é\n"]);
  assert.deepEqual(r.chunks.map((c) => c.raw && [...c.raw]), [
    undefined,
    [0xff, 0xfe, ...new TextEncoder().encode(" bad\n")],
    undefined,
  ]);
});

for (const outputMode of ["lines", "chunks"] as const) {
  Deno.test(`${outputMode} mode: bytes that are not UTF-8 are kept: replacement text plus the raw bytes`, async () => {
    const r = recorder();
    const end = await startJob({ command: "printf 'ok \\377\\376 end\\n'", outputMode }, r).done;
    assert.equal(end.invalidUtf8Chunks, 1);
    const chunk = r.chunks.find((c) => c.raw);
    assert.ok(chunk);
    assert.equal(chunk.text, "ok \ufffd\ufffd end\n");
    assert.deepEqual([...chunk.raw!], [
      ...new TextEncoder().encode("ok "),
      0xff,
      0xfe,
      ...new TextEncoder().encode(" end\n"),
    ]);
  });
}

Deno.test("when the sink is not ready the pipes are not read and the job blocks", async () => {
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  let held = true;
  let bytes = 0;
  const job = startJob({ command: "head -c 50000000 /dev/zero" }, {
    output(_s, text) {
      bytes += text.length;
    },
    ready: () => (held && bytes > 0 ? gate : undefined),
  });
  await new Promise((res) => setTimeout(res, 500));
  // One read got through before the gate closed; the job is blocked on its pipe.
  assert.ok(bytes <= 1024 * 1024, `only ${bytes} bytes read while held`);
  assert.equal(job.state, "running");
  held = false;
  release();
  const end = await job.done;
  assert.equal(end.status, "completed");
  assert.equal(bytes, 50000000);
});

Deno.test("end() resolves once the group is gone, while its last output still waits on the sink", async () => {
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  let held = true;
  let bytes = 0;
  const job = startJob({ command: "seq 1 30000000", graceMs: 500 }, {
    output(_s, text) {
      bytes += text.length;
    },
    ready: () => (held && bytes > 0 ? gate : undefined),
  });
  await waitFor(() => bytes > 0, "the first output");
  let done = false;
  void job.done.then(() => done = true);
  await job.end("killed");
  assert.deepEqual(processesInGroup(job.pgid), [], "the group is gone");
  assert.equal(done, false, "done waits for the output the sink holds back");
  const before = bytes;
  held = false;
  release();
  const end = await job.done;
  assert.equal(end.status, "killed");
  assert.ok(bytes > before, "what was left in the pipe was delivered after end()");
  assert.equal(end.stdoutBytes, bytes);
});

for (const outputMode of ["lines", "chunks"] as const) {
  Deno.test(`${outputMode} mode: a sink that asks to wait mid-read is waited for, nothing lost`, async () => {
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    let held = true;
    let asked = false;
    const texts: string[] = [];
    const holdAfter = outputMode === "lines" ? 1000 : 2;
    const askedAt: number[] = [];
    const job = startJob({ argv: ["seq", "1", "300000"], outputMode }, {
      output(_s, text) {
        texts.push(text);
      },
      ready() {
        askedAt.push(texts.length);
        if (!held || texts.length < holdAfter) return undefined;
        asked = true;
        return gate;
      },
    });
    await waitFor(() => asked, "the sink to ask the job to wait");
    const seen = texts.length;
    // Lines mode looks at the sink every 256 lines, not only between reads (one read
    // of seq's output holds thousands of lines); chunks mode sends whole reads.
    if (outputMode === "lines") assert.ok(seen <= holdAfter + 256, `${seen} lines while held`);
    assert.equal(job.state, "running");
    held = false;
    release();
    const end = await job.done;
    assert.equal(end.status, "completed");
    const all = texts.join("");
    assert.ok(all === Array.from({ length: 300000 }, (_, i) => `${i + 1}\n`).join(""), "in order");
    if (outputMode === "lines") {
      assert.equal(texts.length, 300000);
      // A slow consumer is asked at least every 256 lines (512 across a chunk-limit cut).
      const gaps = askedAt.slice(1).map((n, i) => n - askedAt[i]);
      assert.ok(
        Math.max(...gaps) <= 512,
        `largest run of lines without asking: ${Math.max(...gaps)}`,
      );
    }
  });
}

Deno.test("being held back by a slow reader does not count as a stall", async () => {
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  let held = true;
  let seen = 0;
  const job = startJob({ command: "head -c 5000000 /dev/zero", stallTimeoutS: 1 }, {
    output(_s, text) {
      seen += text.length;
    },
    ready: () => (held && seen > 0 ? gate : undefined),
  });
  await waitFor(() => seen > 0, "the first read");
  // Held back for twice the stall timeout.
  await delay(2000);
  assert.equal(job.state, "running");
  held = false;
  release();
  const end = await job.done;
  assert.equal(end.status, "completed");
});

Deno.test("endProcessGroup on an empty group returns at once", async () => {
  const job = startJob({ command: "true" }, recorder());
  await job.done;
  const t = performance.now();
  await endProcessGroup(job.pgid, 5000);
  assert.ok(performance.now() - t < 1000);
});

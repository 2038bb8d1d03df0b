import assert from "node:assert/strict";
import {
  findJob,
  jobTitle,
  type ObservedJob,
  observeUrl,
  shellLine,
  WatcherError,
} from "../lib/client/watcher.ts";

function job(session_id: string, job_id: string, label?: string): ObservedJob {
  return { session_id, job_id, label, command: "true" } as ObservedJob;
}

Deno.test("observeUrl() takes a ws URL as is, and a page's http URL as its /ws", () => {
  assert.equal(observeUrl("ws://127.0.0.1:8004/ws"), "ws://127.0.0.1:8004/ws");
  assert.equal(observeUrl("wss://box:8004/ws/mcp"), "wss://box:8004/ws/mcp");
  assert.equal(observeUrl("http://127.0.0.1:43117/"), "ws://127.0.0.1:43117/ws");
  assert.equal(observeUrl("https://box:8004"), "wss://box:8004/ws");
  assert.throws(() => observeUrl("127.0.0.1:8004"), /"127\.0\.0\.1:8004" is not a/);
  assert.throws(() => observeUrl("ftp://x/"), /not a ws:\/\/, wss:\/\/, http:\/\/ or https/);
});

Deno.test("findJob() takes an id, a unique prefix, SESSION/JOB or a label, and refuses ambiguity", () => {
  const jobs = [
    job("aaaa1111", "build-42", "nightly build"),
    job("bbbb2222", "build-43"),
    job("bbbb2222", "j1"),
    job("cccc3333", "j1"),
  ];
  assert.equal(findJob(jobs, "build-42").job_id, "build-42");
  assert.equal(findJob(jobs, "nightly build").job_id, "build-42");
  assert.equal(findJob(jobs, "cccc/j1").session_id, "cccc3333");
  assert.equal(findJob(jobs, "bbbb2222/build").job_id, "build-43");
  const ambiguous = (spec: string, re: RegExp) =>
    assert.throws(
      () => findJob(jobs, spec),
      (e) => e instanceof WatcherError && e.kind === "job" && re.test(e.message),
    );
  ambiguous(
    "build",
    /"build" matches 2 jobs \(aaaa1111\/build-42, bbbb2222\/build-43\): give more/,
  );
  ambiguous("j1", /"j1" matches 2 jobs .*SESSION\/JOB/);
  ambiguous("nope", /no job "nope" among the 4 jobs the server lists/);
  ambiguous("", /no job ""/);
  assert.throws(() => findJob([job("s", "x")], "y"), /among the 1 job the server/);
});

Deno.test("jobTitle() is the label, else the command as a shell line", () => {
  assert.equal(jobTitle({ label: "t1 · first", command: "x" }), "t1 · first");
  assert.equal(
    jobTitle({ command: "[]", argv: ["claude", "-p", "What's 2+2?", "--verbose"] }),
    `claude -p 'What'\\''s 2+2?' --verbose`,
  );
  assert.equal(jobTitle({ command: "echo a | wc -l" }), "echo a | wc -l");
  assert.equal(shellLine(["a=b", "x y", ""]), "a=b 'x y' ''");
});

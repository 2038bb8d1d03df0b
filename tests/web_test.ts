/**
 * The web page at `GET /`, driven in a real Chromium (Debian's `chromium`, through
 * playwright-core) against a real `ccx serve` process, with jobs started by other clients.
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { page as pageDoc } from "../lib/serve/web/page.ts";
import { taskClass } from "../lib/claude/history.ts";
import { SqliteHistory } from "../lib/claude/history_store.ts";
import {
  cli,
  FAKE_CLAUDE,
  KEY_ENV,
  processesInGroup,
  ROOT,
  selfSignedCert,
  waitFor,
  waitForPause,
  waitForResume,
} from "./_util/helpers.ts";
import { RawSession } from "./_util/ws.ts";
import { CHROMIUM, chromiumTier } from "./_util/tier.ts";

// The tier rule of tests/_util/tier.ts: without Chromium the browser tests are skipped with one
// line, or fail under CI=true / CCX_REQUIRE=chromium.
const browserIgnore = chromiumTier();

/** Chromium with a fresh profile (playwright makes a temporary one and removes it on close). */
async function launch(): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A `ccx serve` process on a free loopback port, as an operator would start it. */
class Serve {
  private constructor(
    readonly child: Deno.ChildProcess,
    readonly httpUrl: string,
    readonly stateDir: string,
    /** Its operator log, one JSON object a line, as it comes (only with `log: true`). */
    readonly log: Record<string, unknown>[],
  ) {}

  /** The server's `session_open` log entries: how each accepted handshake looked. */
  sessions(): SessionOpen[] {
    return this.log.filter((e) => e.event === "session_open") as unknown as SessionOpen[];
  }

  static async start(
    env: Record<string, string> = {},
    stateDir?: string,
    args: string[] = [],
    opts: { log?: boolean } = {},
  ): Promise<Serve> {
    const dir = stateDir ?? await Deno.makeTempDir({ prefix: "ccx-web-state-" });
    const logFlags = opts.log ? ["--log-format", "json"] : ["--quiet"];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "serve", "--port", "0", ...logFlags, ...args],
      env: { CCX_STATE_DIR: dir, REDIS_URL: "", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: opts.log ? "piped" : "inherit",
    }).spawn();
    const log: Record<string, unknown>[] = [];
    if (opts.log) {
      let buf = "";
      void child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({
          write(chunk) {
            buf += chunk;
            const lines = buf.split("\n");
            buf = lines.pop()!;
            for (const l of lines) {
              try {
                log.push(JSON.parse(l));
              } catch {
                log.push({ text: l });
              }
            }
          },
        }),
      ).catch(() => {});
    }
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/health at (\S+)\/health/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`ccx serve exited before listening: ${text}`);
      text += value;
    }
    void reader.closed.catch(() => {});
    void (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })().catch(() => {});
    return new Serve(child, text.match(/health at (\S+)\/health/)![1], dir, log);
  }

  get wsUrl(): string {
    return this.httpUrl.replace(/^http/, "ws") + "/ws";
  }

  async stop(): Promise<void> {
    this.child.kill("SIGTERM");
    assert.equal((await this.child.status).code, 0);
    await Deno.remove(this.stateDir, { recursive: true });
  }
}

/** A `session_open` line of the server's log (lib/serve/server.ts): a handshake it accepted. */
interface SessionOpen {
  path: string;
  query_keys: string[];
  subprotocols: string[];
  token_via: "bearer" | "subprotocol" | "query" | "none";
}

/**
 * Where `token` leaked into a URL: any of the browser's `urls` (page requests and WebSocket
 * handshakes) that holds it, and any handshake the server logged with a `token` query parameter
 * or a token that came by query. Empty when none did.
 */
function tokenLeaks(token: string, urls: string[], sessions: SessionOpen[]): string[] {
  const out: string[] = [];
  for (const u of urls) if (u.includes(token)) out.push(`browser URL holds the token: ${u}`);
  for (const s of sessions) {
    if (s.token_via === "query" || s.query_keys.includes("token")) {
      out.push(`the server saw the token in the URL of ${s.path} (${JSON.stringify(s)})`);
    }
  }
  return out;
}

async function started(s: RawSession, params: Record<string, unknown>) {
  const r = await s.call(String(params.job_id), "execute", params);
  assert.ok(r.result, `execute failed: ${JSON.stringify(r.error)}`);
  return r.result as { job_id: string; pid: number };
}

function row(p: Page, jobId: string) {
  return p.locator(`#jobs-body tr[data-job-id="${jobId}"]`);
}

/**
 * Share of pixels that differ from the top-left pixel, and the number of distinct colours, of a
 * PNG, measured by decoding it in a canvas of a blank page of the same browser.
 */
async function inkOf(browser: Browser, png: Uint8Array): Promise<{ ink: number; colors: number }> {
  const scratch = await browser.newPage();
  try {
    // Runs in the browser (DOM types are not part of this program's types).
    const measure = `(async (b64) => {
      const img = new Image();
      img.src = "data:image/png;base64," + b64;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.width;
      c.height = img.height;
      const g = c.getContext("2d");
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let ink = 0;
      const colors = new Set();
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) ink++;
        colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      }
      return { ink: ink / (d.length / 4), colors: colors.size };
    })(${JSON.stringify(png.toBase64())})`;
    return await scratch.evaluate(measure) as { ink: number; colors: number };
  } finally {
    await scratch.close();
  }
}

Deno.test("GET / serves one self-contained page whose only script is allowed by hash", async () => {
  const srv = await Serve.start();
  try {
    const res = await fetch(srv.httpUrl + "/");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/html/);
    const csp = res.headers.get("content-security-policy")!;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /connect-src 'self'/);
    const html = await res.text();
    assert.equal(html, pageDoc().html);
    // No external assets: nothing is loaded from anywhere but this document and /ws.
    assert.doesNotMatch(html, /\s(src|href)=["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /<link\b|<script\s+src/i);
  } finally {
    await srv.stop();
  }
});

Deno.test("ccx serve --keep-finished bounds the finished jobs observers see", async () => {
  const srv = await Serve.start({}, undefined, ["--keep-finished", "1"]);
  const s = await RawSession.open(srv.wsUrl);
  try {
    for (const id of ["one", "two"]) {
      await started(s, { job_id: id, command: "true" });
      await s.completed(id);
    }
    const w = await s.call("w", "watch", {});
    const jobs = w.result?.jobs as { job_id: string }[];
    assert.deepEqual(jobs.map((j) => j.job_id), ["two"]);
  } finally {
    await s.close();
    await srv.stop();
  }
});

Deno.test(
  "the page in Chromium: jobs of other clients, live output, conversation, CANCEL, screenshot",
  { ignore: browserIgnore },
  async (t) => {
    const state = await Deno.makeTempDir({ prefix: "ccx-web-state-" });
    const history = new SqliteHistory({ path: `${state}/history.sqlite` });
    const cls = taskClass("Write a haiku about process groups");
    for (const d of [12, 15, 19]) {
      await history.record({ ...cls, durationS: d, outcome: "success", at: Date.now() });
    }
    await history.close();
    const srv = await Serve.start({}, state);
    const browser = await launch();
    const other = await RawSession.open(srv.wsUrl);
    try {
      const p = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      const errors: string[] = [];
      p.on("pageerror", (e) => errors.push(e.message));
      p.on("dialog", (d) => void d.accept());
      await p.goto(srv.httpUrl + "/");
      await p.locator("#conn.up").waitFor();

      await t.step("server facts and the timeout history are shown", async () => {
        await p.locator('#facts [data-fact="version"] b').filter({ hasText: "0.1.0" }).waitFor();
        await p.locator('#facts [data-fact="memory"] b').filter({ hasText: /MiB/ }).waitFor();
        const h = p.locator("#history-body tr").first();
        await h.waitFor();
        assert.equal(await h.locator("td").nth(0).textContent(), cls.label);
        assert.equal(await h.locator("td").nth(2).textContent(), "3");
      });

      await t.step(
        "it lists a job started by another client, with pid and who started it",
        async () => {
          const connected = await other.next((m) => m.method === "connected");
          const sid = String(connected.params?.session_id);
          const r = await started(other, { job_id: "listed", command: "echo listed; sleep 30" });
          const tr = row(p, "listed");
          await tr.waitFor();
          const text = await tr.textContent();
          assert.match(text!, /running/);
          assert.match(text!, new RegExp(String(r.pid)));
          assert.match(text!, /echo listed; sleep 30/);
          // The only running job is chosen by itself; its header says who started it.
          await p.locator('#jobs-body tr.sel[data-job-id="listed"]').waitFor();
          await p.locator("#out").filter({ hasText: "listed" }).waitFor();
          assert.match(
            (await p.locator("#detail-meta").textContent())!,
            new RegExp(
              `job listed · pid ${r.pid} · started by 127\\.0\\.0\\.1:\\d+ · session ${
                sid.slice(0, 8)
              }`,
            ),
          );
          await other.call("c1", "control", { type: "CANCEL", job_id: "listed" });
          await row(p, "listed").locator(".st.canceled").waitFor();
        },
      );

      await t.step("it shows the chosen job's output as it arrives", async () => {
        const gate = `${state}/gate`;
        await started(other, {
          job_id: "live",
          command: `echo first-line; while [ ! -e ${gate} ]; do sleep 0.02; done; ` +
            `echo second-line; echo to-stderr >&2; sleep 30`,
        });
        await row(p, "live").click();
        await p.locator("#out").filter({ hasText: "first-line" }).waitFor();
        assert.doesNotMatch((await p.locator("#out").textContent())!, /second-line/);
        await Deno.writeTextFile(gate, "");
        // stdout and stderr are separate pipes: each keeps its order, not their interleaving.
        await p.locator("#out .stderr").filter({ hasText: "to-stderr" }).waitFor();
        await p.locator("#out .stdout").filter({ hasText: "second-line" }).waitFor();
        const stdout = await p.locator("#out .stdout").allTextContents();
        assert.equal(stdout.join(""), "first-line\nsecond-line\n");
        await other.call("c2", "control", { type: "CANCEL", job_id: "live" });
      });

      await t.step("Claude's stream-json is rendered as the conversation", async () => {
        const cwd = await Deno.makeTempDir();
        await started(other, {
          job_id: "claude-run",
          argv: [
            FAKE_CLAUDE,
            "-p",
            "What is 2+2? [[write:notes.txt=hello]] [[no-marker]]",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
          ],
          env: { IS_SANDBOX: "1", ...KEY_ENV }, // as root the CLI refuses without it; and a key
          cwd,
        });
        await other.completed("claude-run");
        await row(p, "claude-run").click();
        const conv = p.locator("#conversation");
        await conv.locator(".msg.result").waitFor();
        assert.ok(await conv.isVisible());
        assert.ok(!(await p.locator("#out").isVisible()));
        assert.match((await conv.locator(".msg.system").first().textContent())!, /model claude-/);
        await conv.locator(".msg.tool-call").filter({ hasText: "Write" }).filter({
          hasText: "notes.txt",
        }).waitFor();
        await conv.locator(".msg.tool-result").filter({ hasText: "notes.txt" }).waitFor();
        await conv.locator(".msg.assistant").filter({ hasText: "2 + 2 = 4" }).first().waitFor();
        assert.match((await conv.locator(".msg.result").textContent())!, /success.*2 \+ 2 = 4/s);
        // Rendered, not raw: no JSON line is shown as such.
        assert.doesNotMatch((await conv.textContent())!, /"type"\s*:/);
        // The raw view has the JSON lines.
        await p.locator("#tab-raw").click();
        assert.match((await p.locator("#out").textContent())!, /"type":"result"/);
        await p.locator("#tab-conv").click();
        await Deno.remove(cwd, { recursive: true });
      });

      await t.step(
        "PAUSE, RESUME, and CANCEL ends the job: its process group is gone",
        async () => {
          const r = await started(other, {
            job_id: "runaway",
            command:
              `trap '' TERM; sh -c "trap '' TERM; sleep 1000" & echo ready; sleep 1000; wait`,
          });
          await waitFor(
            () => processesInGroup(r.pid).filter((x) => x.cmd === "sleep").length === 2,
            "the runaway job's two sleeps",
            15000,
          );
          await row(p, "runaway").click();
          await p.locator("#out").filter({ hasText: "ready" }).waitFor();
          await p.locator("#pause").click();
          await row(p, "runaway").locator(".st.paused").waitFor();
          await waitForPause(r.pid, 15000);
          await p.locator("#resume").click();
          await row(p, "runaway").locator(".st.running").waitFor();
          // RESUME really ran the group again: no process of it is stopped any more.
          await waitForResume(r.pid, 15000);
          await p.locator("#cancel").click();
          const done = await other.completed("runaway");
          assert.equal(done.params?.status, "canceled");
          assert.deepEqual(processesInGroup(r.pid), []);
          await row(p, "runaway").locator(".st.canceled").waitFor();
          assert.ok(await p.locator("#cancel").isDisabled());
        },
      );

      await t.step(
        "a screenshot of the page is not blank (and the check fails on a blank page)",
        async () => {
          await started(other, {
            job_id: "build-42",
            command: "for i in 1 2 3; do echo step $i; done; sleep 30",
          });
          await row(p, "build-42").locator(".st.running").waitFor();
          await row(p, "claude-run").click();
          await p.locator("#conversation .msg.result").waitFor();
          const shot = await p.screenshot();
          await other.call("c3", "control", { type: "CANCEL", job_id: "build-42" });
          const where = Deno.env.get("CCX_PAGE_SCREENSHOT");
          if (where) await Deno.writeFile(where, shot);
          const seen = await inkOf(browser, shot);
          assert.ok(seen.ink > 0.1 && seen.colors > 50, `looks blank: ${JSON.stringify(seen)}`);
          const blank = await browser.newPage({ viewport: { width: 1400, height: 860 } });
          const empty = await inkOf(browser, await blank.screenshot());
          await blank.close();
          assert.ok(empty.ink < 0.01 && empty.colors < 5, `blank page: ${JSON.stringify(empty)}`);
        },
      );
      assert.deepEqual(errors, []);
    } finally {
      await other.close();
      await browser.close();
      await srv.stop();
    }
  },
);

Deno.test("with a token the page shows nothing until it is given; it stays out of URLs", {
  ignore: browserIgnore,
}, async () => {
  const token = "t0k-" + crypto.randomUUID();
  const srv = await Serve.start({ CCX_TOKEN: token }, undefined, [], { log: true });
  const browser = await launch();
  const client = await RawSession.open(srv.wsUrl, { authorization: `Bearer ${token}` });
  try {
    await started(client, { job_id: "hidden-job", command: "echo secret-output; sleep 30" });
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    // Every URL the browser asks for: `request` sees page loads but never a WebSocket handshake,
    // which only `websocket` reports.
    const requests: string[] = [];
    const sockets: string[] = [];
    p.on("request", (r) => requests.push(r.url()));
    p.on("websocket", (ws) => sockets.push(ws.url()));
    await p.goto(srv.httpUrl + "/");
    await p.locator("#gate").waitFor();
    assert.ok(!(await p.locator("#app").isVisible()));
    assert.doesNotMatch((await p.content())!, /hidden-job|secret-output/);

    await p.locator("#token").fill("wrong");
    await p.locator("#gate button[type=submit]").click();
    await p.locator("#gate-error").filter({ hasText: "refused" }).waitFor();
    assert.ok(!(await p.locator("#app").isVisible()));
    assert.equal(await p.evaluate('sessionStorage.getItem("ccx.token")'), null);

    await p.locator("#token").fill(token);
    await p.locator("#gate button[type=submit]").click();
    await row(p, "hidden-job").waitFor();
    assert.ok(!(await p.locator("#gate").isVisible()));
    assert.equal(await p.evaluate('sessionStorage.getItem("ccx.token")'), token);
    // A reload in the same tab reconnects with the kept token, without asking again.
    await p.reload();
    await row(p, "hidden-job").waitFor();
    // The token never appeared in a URL: not in the browser's requests, not in its WebSocket
    // handshakes, not in any handshake the server logged. The page's handshakes (the server saw
    // one for each accepted socket: the first, the one after the reload) carried the token as
    // the `ccx.token.*` subprotocol, beside `ccx`.
    assert.ok(requests.length > 0);
    await waitFor(() => sockets.length >= 3, "the page's three WebSockets (wrong, right, reload)");
    const pageSessions = () => srv.sessions().filter((x) => x.token_via !== "bearer");
    await waitFor(() => pageSessions().length >= 2, "the server's log of the page's sessions");
    for (const x of pageSessions()) {
      assert.equal(x.token_via, "subprotocol", JSON.stringify(x));
      assert.deepEqual(x.subprotocols.sort(), ["ccx", "ccx.token.…"], JSON.stringify(x));
      assert.equal(x.path, "/ws");
    }
    assert.deepEqual(tokenLeaks(token, [...requests, ...sockets, p.url()], srv.sessions()), []);

    // The check sees a leak when there is one: a page that puts the token in its WebSocket URL.
    const bad = await ctx.newPage();
    const badSockets: string[] = [];
    bad.on("websocket", (ws) => badSockets.push(ws.url()));
    await bad.goto(srv.httpUrl + "/health");
    const before = srv.sessions().length;
    const opened = await bad.evaluate(`new Promise((resolve) => {
      const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws?token=" +
        encodeURIComponent(${JSON.stringify(token)}));
      ws.onopen = () => { ws.close(); resolve("open"); };
      ws.onerror = () => resolve("error");
    })`);
    assert.equal(opened, "open", "the server takes ?token= (for clients that cannot set headers)");
    await waitFor(() => srv.sessions().length > before, "the server's log of the leaking session");
    const leaks = tokenLeaks(token, badSockets, srv.sessions().slice(before));
    assert.equal(leaks.length, 2, leaks.join("\n"));
    assert.match(leaks[0], /^browser URL holds the token: ws:\/\/.*\/ws\?token=/);
    assert.match(leaks[1], /^the server saw the token in the URL of \/ws/);
    await bad.close();
    // A new tab (new session storage) asks again.
    const p2 = await ctx.newPage();
    await p2.goto(srv.httpUrl + "/");
    await p2.locator("#gate").waitFor();
    assert.ok(!(await p2.locator("#app").isVisible()));
  } finally {
    await client.close();
    await browser.close();
    await srv.stop();
  }
});

Deno.test(
  "the page reconnects by itself when the server comes back, and drops jobs that are gone",
  { ignore: browserIgnore },
  async () => {
    const first = await Serve.start();
    const port = new URL(first.httpUrl).port;
    const browser = await launch();
    let second: Serve | undefined;
    try {
      const s1 = await RawSession.open(first.wsUrl);
      await started(s1, { job_id: "before-restart", command: "echo old; sleep 300" });
      const p = await browser.newPage();
      await p.goto(first.httpUrl + "/");
      await row(p, "before-restart").click();
      await p.locator("#out").filter({ hasText: "old" }).waitFor();
      await first.stop();
      await s1.closed;
      await p.locator("#conn").filter({ hasText: /retrying/ }).waitFor();
      second = await Serve.start({}, undefined, ["--port", port]);
      const s2 = await RawSession.open(second.wsUrl);
      await started(s2, { job_id: "after-restart", command: "echo new; sleep 300" });
      await row(p, "after-restart").waitFor();
      await p.locator("#conn.up").waitFor();
      assert.equal(await row(p, "before-restart").count(), 0);
      // The chosen job is gone; the only running job now is chosen instead.
      await p.locator('#jobs-body tr.sel[data-job-id="after-restart"]').waitFor();
      await p.locator("#out").filter({ hasText: "new" }).waitFor();
      assert.doesNotMatch((await p.locator("#out").textContent())!, /old/);
      assert.ok(!(await p.locator("#gate").isVisible()));
      await s2.close();
    } finally {
      await browser.close();
      await second?.stop();
    }
  },
);

Deno.test("over TLS the page connects with wss://, and its CANCEL ends another client's job", {
  ignore: browserIgnore,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "ccx-web-tls-" });
  const { cert, key } = await selfSignedCert(dir);
  const token = "tls-" + crypto.randomUUID();
  const srv = await Serve.start({ CCX_TOKEN: token }, undefined, ["--cert", cert, "--key", key]);
  const browser = await launch();
  try {
    assert.match(srv.httpUrl, /^https:\/\//);
    // Another client: `ccx run` over wss, trusting the self-signed certificate.
    const run = cli(
      ["run", "--server", srv.wsUrl, "--ca", cert, "--", "sh", "-c", "echo over-tls; sleep 300"],
      { env: { CCX_TOKEN: token } },
    );
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await ctx.newPage();
    p.on("dialog", (d) => void d.accept());
    const sockets: string[] = [];
    p.on("websocket", (ws) => sockets.push(ws.url()));
    await p.goto(srv.httpUrl + "/");
    await p.locator("#gate").waitFor();
    await p.locator("#token").fill(token);
    await p.locator("#gate button[type=submit]").click();
    const tr = p.locator("#jobs-body tr").filter({ hasText: "over-tls" });
    await tr.waitFor();
    assert.ok(sockets.length > 0 && sockets.every((u) => u.startsWith("wss://")), sockets.join());
    await tr.click();
    await p.locator("#out").filter({ hasText: "over-tls" }).waitFor();
    await p.locator("#cancel").click();
    const r = await run;
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, "over-tls\n");
    await tr.locator(".st.canceled").waitFor();
  } finally {
    await browser.close();
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A `document.querySelector` expression for an element of a job's row. */
function sel(jobId: string, inRow: string): string {
  return `document.querySelector('#jobs-body tr[data-job-id="${jobId}"] ${inRow}')`;
}

/** Horizontal overflow of the jobs table's box and of the whole page, in pixels (0: none). */
async function overflow(p: Page): Promise<{ table: number; page: number }> {
  return await p.evaluate(`(() => {
    const box = document.querySelector("#jobs").parentElement;
    const doc = document.documentElement;
    return { table: box.scrollWidth - box.clientWidth, page: doc.scrollWidth - doc.clientWidth };
  })()`) as { table: number; page: number };
}

Deno.test(
  "the page names its tasks: labels, shell lines, runs with progress, expected failures, no stray scrollbar",
  { ignore: browserIgnore },
  async (t) => {
    const srv = await Serve.start();
    const browser = await launch();
    const other = await RawSession.open(srv.wsUrl);
    try {
      const p = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      const errors: string[] = [];
      p.on("pageerror", (e) => errors.push(e.message));
      await p.goto(srv.httpUrl + "/");
      await p.locator("#conn.up").waitFor();
      // Evaluated in one go in the page: the rows are redrawn often, a handle may be stale.
      const inPage = async <T>(expr: string) => await p.evaluate(expr) as T;
      const run = (result_id: string, extra: Record<string, unknown> = {}) => ({
        suite: "unified_stress_test_tasks",
        run_id: "20260101_120000_abc123",
        run_total: 4,
        result_id,
        ...extra,
      });
      const longName = "simple_2 · " + "a task with a very long name ".repeat(6).trim();
      await started(other, {
        job_id: "j1",
        command: "echo one",
        label: "simple_1 · basic_math",
        meta: run("simple_1"),
      });
      await started(other, {
        job_id: "j2",
        command: "echo two; exit 3",
        label: "failure_1 · exit_code",
        meta: run("failure_1", { expect_exit: "non-zero" }),
      });
      await started(other, {
        job_id: "j3",
        command: "exit 5",
        label: "failure_2 · wrong",
        meta: run("failure_2"),
      });
      await other.completed("j1");
      await other.completed("j2");
      await other.completed("j3");
      await started(other, {
        job_id: "j4",
        command: "sleep 60",
        label: longName,
        meta: run("simple_2"),
      });
      const argv = ["sh", "-c", "echo 'a quoted word'; sleep 60 # " + "x".repeat(40)];
      await started(other, { job_id: "plain-argv", argv });

      await t.step(
        "a job's title is its label, else its command as a shell line, whole",
        async () => {
          await row(p, "j4").waitFor();
          assert.equal(
            await row(p, "j1").locator("td.title").textContent(),
            "simple_1 · basic_math",
          );
          assert.equal(await row(p, "j4").locator("td.title").textContent(), longName);
          const title = await row(p, "plain-argv").locator("td.title").textContent();
          assert.equal(title, `sh -c 'echo '\\''a quoted word'\\''; sleep 60 # ${"x".repeat(40)}'`);
          assert.doesNotMatch((await p.locator("#jobs-body").textContent())!, /\["sh"/);
        },
      );

      await t.step("jobs are grouped by run, with the run's progress", async () => {
        const head = p.locator('#jobs-body tr.run[data-run="20260101_120000_abc123"]');
        await head.filter({ hasText: "3 of 4 done · 1 running" }).waitFor();
        assert.match(
          (await head.textContent())!,
          /^unified_stress_test_tasks · run 20260101_120000_abc123 · 3 of 4 done · 1 running$/,
        );
        assert.equal(await head.locator(".bar i").getAttribute("style"), "width: 75%;");
        // The run's jobs follow its header, running first; jobs of no run come last, apart.
        const order = await p.locator("#jobs-body tr").evaluateAll((trs) =>
          trs.map((tr) => tr.getAttribute("data-job-id") ?? `[${tr.textContent}]`)
        );
        assert.deepEqual(order.slice(1), ["j4", "j3", "j2", "j1", "[other jobs]", "plain-argv"]);
        assert.match(order[0], /^\[unified_stress_test_tasks · run /);
        // Progress moves as the run does.
        await other.call("c-j4", "control", { type: "CANCEL", job_id: "j4" });
        await head.filter({ hasText: "4 of 4 done · 0 running" }).waitFor();
      });

      await t.step("an expected failure that passed is not red; a real failure is", async () => {
        const expected = row(p, "j2").locator(".st");
        assert.equal(await expected.textContent(), "failed (expected)");
        assert.equal(await expected.getAttribute("class"), "st expected");
        const red = "rgb(240, 97, 109)";
        const color = (jobId: string) =>
          inPage<string>(`getComputedStyle(${sel(jobId, ".st")}).color`);
        assert.notEqual(await color("j2"), red);
        assert.equal(await color("j3"), red);
        assert.equal(await row(p, "j3").locator(".st").textContent(), "failed");
      });

      await t.step("the jobs table has no scrollbar, wide or narrow", async () => {
        assert.deepEqual(await overflow(p), { table: 0, page: 0 });
        // Cut with an ellipsis, the whole text in the tooltip.
        const cell = row(p, "j4").locator("td.title");
        const cut = await inPage<boolean>(
          `(() => { const e = ${sel("j4", "td.title")}; return e.scrollWidth > e.clientWidth; })()`,
        );
        assert.ok(cut, "the long label is wider than its cell");
        assert.match((await cell.getAttribute("title"))!, /^simple_2 · a task with .*\njob j4$/s);
        for (const width of [1100, 900, 700]) {
          await p.setViewportSize({ width, height: 800 });
          assert.deepEqual(await overflow(p), { table: 0, page: 0 }, `at ${width} px`);
        }
      });
      assert.deepEqual(errors, []);
    } finally {
      await other.close();
      await browser.close();
      await srv.stop();
    }
  },
);

/** A job that prints Claude's stream-json lines `lines`, then stays silent until canceled. */
function streamJsonJob(lines: unknown[]): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return lines.map((l) => `echo ${q(JSON.stringify(l))}`).join("; ") + "; sleep 60";
}

Deno.test(
  "a Claude job: its prompt first, system events in one line, a silent tool call with its time",
  { ignore: browserIgnore },
  async (t) => {
    const srv = await Serve.start();
    const browser = await launch();
    const other = await RawSession.open(srv.wsUrl);
    try {
      const p = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      const errors: string[] = [];
      p.on("pageerror", (e) => errors.push(e.message));
      await p.goto(srv.httpUrl + "/");
      await p.locator("#conn.up").waitFor();

      await t.step("the prompt of a claude -p argv heads its conversation", async () => {
        const cwd = await Deno.makeTempDir();
        await started(other, {
          job_id: "claude-argv",
          argv: [
            FAKE_CLAUDE,
            "-p",
            "What is 2+2? [[no-marker]]",
            "--output-format",
            "stream-json",
            "--verbose",
          ],
          cwd,
        });
        await other.completed("claude-argv");
        await row(p, "claude-argv").click();
        const first = p.locator("#conversation .msg").first();
        await p.locator("#conversation .msg.result").waitFor();
        assert.equal(await first.getAttribute("class"), "msg prompt");
        assert.equal(await first.textContent(), "promptWhat is 2+2? [[no-marker]]");
        await Deno.remove(cwd, { recursive: true });
      });

      const init = {
        type: "system",
        subtype: "init",
        model: "claude-sonnet-4-5",
        cwd: "/w",
        tools: ["Bash", "Read"],
        permissionMode: "bypassPermissions",
        session_id: "s-1",
      };
      const retry = {
        type: "system",
        subtype: "api_retry",
        attempt: 2,
        max_retries: 10,
        retry_delay_ms: 1200,
        error_status: 429,
        error: "rate_limit",
        session_id: "s-1",
      };
      const hook = {
        type: "system",
        subtype: "hook_response",
        hook_name: "SessionStart",
        exit_code: 0,
        stdout: "ok",
        output: { big: "x".repeat(500) },
      };
      const bash = {
        type: "assistant",
        message: {
          content: [{ type: "tool_use", id: "tu_1", name: "Bash", input: { command: "sleep 40" } }],
        },
      };

      await t.step("system events are one-line summaries, the JSON only in a tooltip", async () => {
        await started(other, {
          job_id: "sys",
          command: streamJsonJob([init, retry, hook]),
          label: "medium_1 · summarize",
          meta: { prompt: "Summarize the notes." },
        });
        await row(p, "sys").click();
        const lines = p.locator("#conversation .msg.system.line");
        await lines.nth(2).waitFor();
        assert.deepEqual(await lines.allTextContents(), [
          "sessionmodel claude-sonnet-4-5 · cwd /w · 2 tools · bypassPermissions",
          "systemapi_retry · attempt 2 of 10 · next in 1.2 s · HTTP 429 · error rate_limit",
          "systemhook_response · hook_name SessionStart · exit_code 0 · stdout ok",
        ]);
        // One line each (no card of JSON), and no JSON in the conversation's text.
        const heights = await p.evaluate(
          `[...document.querySelectorAll("#conversation .msg.system.line")]` +
            `.map((l) => l.getBoundingClientRect().height)`,
        ) as number[];
        assert.equal(heights.length, 3);
        for (const h of heights) {
          assert.ok(h < 30, `a system line is ${h} px high`);
        }
        assert.doesNotMatch((await p.locator("#conversation").textContent())!, /[{"]/);
        assert.match((await lines.nth(1).getAttribute("title"))!, /"retry_delay_ms": 1200/);
        // The prompt given in meta heads it.
        assert.equal(
          await p.locator("#conversation .msg").first().textContent(),
          "promptSummarize the notes.",
        );
        await other.call("c-sys", "control", { type: "CANCEL", job_id: "sys" });
      });

      await t.step(
        "a tool call that has not answered says 'running Bash for N s', from when it was made",
        async () => {
          await started(other, {
            job_id: "silent",
            command: streamJsonJob([init, bash]),
            label: "complex_1 · tests",
          });
          // Chosen only after 2 s of silence: the time counts from the call, not from the page's look.
          await other.next((m) =>
            m.method === "process.output" && m.params?.job_id === "silent" &&
            String(m.params?.data).includes("tool_use")
          );
          const calledAt = performance.now();
          await new Promise((r) => setTimeout(r, 2100));
          await row(p, "silent").click();
          const live = p.locator("#tool-live");
          await live.filter({ hasText: /^running Bash for \d+ s$/ }).waitFor();
          const secs = () => live.textContent().then((s) => Number(s!.match(/for (\d+) s/)![1]));
          const first = await secs();
          assert.ok(
            first >= 2,
            `running for ${first} s, chosen ${
              (performance.now() - calledAt) / 1000
            } s after the call`,
          );
          assert.equal(await live.getAttribute("title"), "sleep 40");
          // It keeps counting.
          await live.filter({
            hasText: new RegExp(`^running Bash for (${first + 1}|${first + 2}|${first + 3}) s$`),
          }).waitFor({ timeout: 10000 });
          // Once the job ended it is gone.
          await other.call("c-silent", "control", { type: "CANCEL", job_id: "silent" });
          await row(p, "silent").locator(".st.canceled").waitFor();
          await live.waitFor({ state: "hidden" });
        },
      );
      assert.deepEqual(errors, []);
    } finally {
      await other.close();
      await browser.close();
      await srv.stop();
    }
  },
);

Deno.test(
  "ccx stress --page: its own server's page shows the run's tasks by label, grouped, as it goes",
  { ignore: browserIgnore },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "ccx-web-stress-" });
    const browser = await launch();
    let child: Deno.ChildProcess | undefined;
    try {
      const gate = (i: number) => `${dir}/go${i}`;
      const task = (i: number, name: string) => ({
        id: `t${i}`,
        name,
        command: `echo up-${i}; while [ ! -e '${gate(i)}' ]; do sleep 0.05; done; echo done-${i}`,
        expected_patterns: [`done-${i}`],
        timeout: 120,
      });
      await Deno.writeTextFile(
        `${dir}/watched.json`,
        JSON.stringify({ tests: [task(1, "first"), task(2, "second"), task(3, "third")] }),
      );
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${ROOT}main.ts`,
          "stress",
          "watched.json",
          "--page",
          "-c",
          "2",
          "--no-history",
        ],
        cwd: dir,
        env: { CCX_STATE_DIR: `${dir}/state`, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      while (!/live page: \S+/.test(said)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`ccx stress ended before printing its page: ${said}`);
        said += value;
      }
      const url = said.match(/live page: (\S+)/)![1];
      // The run's own server takes only its token, which the link carries in its fragment.
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{64}$/);
      const stderr = (async () => {
        while (true) {
          const { value, done } = await reader.read();
          if (done) return said;
          said += value;
        }
      })();
      const p = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      await p.goto(url);
      // The page moved the token into the tab's session storage and out of the address bar.
      await p.locator("#conn.up").waitFor();
      assert.equal(p.url(), url.replace(/#.*/, ""));
      assert.equal(
        await p.evaluate('sessionStorage.getItem("ccx.token")'),
        url.match(/#token=(\S+)/)![1],
      );
      const runId = said.match(/outputs in test_outputs\/(\S+)/)?.[1] ??
        (await (async () => {
          await p.locator("#jobs-body tr.run").first().waitFor();
          return (await p.locator("#jobs-body tr.run").getAttribute("data-run"))!;
        })());
      const head = p.locator(`#jobs-body tr.run[data-run="${runId}"]`);
      await head.filter({ hasText: "0 of 3 done · 2 running" }).waitFor();
      assert.match(
        (await head.textContent())!,
        new RegExp(`^watched · run ${runId} · 0 of 3 done · 2 running$`),
      );
      const titles = () => p.locator("#jobs-body tr.job td.title").allTextContents();
      assert.deepEqual((await titles()).sort(), ["t1 · first", "t2 · second"]);
      await Deno.writeTextFile(gate(1), "");
      await head.filter({ hasText: "1 of 3 done · 2 running" }).waitFor();
      assert.deepEqual((await titles()).sort(), ["t1 · first", "t2 · second", "t3 · third"]);
      // A job's header says which run and task it belongs to.
      await p.locator('#jobs-body tr.job:has(td.title:text-is("t3 · third"))').click();
      await p.locator("#out").filter({ hasText: "up-3" }).waitFor();
      assert.match(
        (await p.locator("#detail-meta").textContent())!,
        new RegExp(`suite watched · run ${runId} · task t3$`),
      );
      await Deno.writeTextFile(gate(2), "");
      await Deno.writeTextFile(gate(3), "");
      const status = await child.status;
      await child.stdout.cancel();
      assert.equal(status.code, 0, await stderr);
    } finally {
      if (child) {
        try {
          child.kill("SIGKILL");
        } catch { /* ended */ }
      }
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

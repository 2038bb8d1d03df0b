/**
 * The web page at `GET /`, driven in a real Chromium (Debian's `chromium`, through
 * playwright-core) against a real `ccx serve` process, with jobs started by other clients.
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { page as pageDoc } from "../lib/serve/web/page.ts";
import { SqliteHistory, taskClass } from "../lib/claude/history.ts";
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
          assert.match(text!, new RegExp(`127\\.0\\.0\\.1:\\d+ · ${sid.slice(0, 8)}`));
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
      assert.ok(await p.locator("#detail-empty").isVisible());
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

/**
 * The web page `ccx serve` answers at `GET /`: one self-contained HTML document (CSS and plain
 * JavaScript inline, no external assets, no build step) that speaks the server's JSON-RPC over
 * `/ws` as an observer (`watch`, `history`, `control`). It is kept here as a string so that
 * `deno run main.ts`, the bundle `dist/ccx.js` and a compiled binary all carry it.
 *
 * The page holds no data of its own. It shows nothing but a token field until a WebSocket to the
 * server is open; the token is kept in the tab's `sessionStorage` and sent as the WebSocket
 * subprotocol `ccx.token.<base64url>`, never in a URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { page } from "./page.ts";
 * const { html, csp } = page();
 * assert.ok(html.startsWith("<!doctype html>"));
 * assert.ok(csp.includes("script-src 'sha256-")); // the page's one inline script, by its hash
 * ```
 * @module
 */

import { createHash } from "node:crypto";

const STYLE = String.raw`
:root { --bg:#0f1419; --panel:#161c23; --line:#263039; --fg:#d7dde3; --dim:#8a96a3;
  --accent:#5ab0f0; --ok:#4cc38a; --bad:#f0616d; --warn:#e8b44c; --paused:#b48ce8; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font:13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display:flex; align-items:center; gap:16px; padding:10px 16px;
  border-bottom:1px solid var(--line); background:var(--panel); }
header h1 { font-size:15px; margin:0; letter-spacing:.5px; }
header h1 span { color:var(--accent); }
#conn { margin-left:auto; color:var(--dim); }
#conn.up::before { content:"● "; color:var(--ok); }
#conn.down::before { content:"● "; color:var(--bad); }
#facts { display:flex; flex-wrap:wrap; gap:6px 18px; color:var(--dim); }
#facts b { color:var(--fg); font-weight:600; }
main { display:grid; grid-template-columns:minmax(420px, 52%) 1fr; gap:12px; padding:12px; }
section { background:var(--panel); border:1px solid var(--line); border-radius:6px;
  min-width:0; }
section h2 { font-size:12px; text-transform:uppercase; letter-spacing:1px; color:var(--dim);
  margin:0; padding:8px 12px; border-bottom:1px solid var(--line); display:flex;
  align-items:center; gap:8px; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
  white-space:nowrap; }
th { color:var(--dim); font-weight:500; font-size:11px; }
.scroll { overflow-x:auto; }
/* Fixed columns: a long label or command is cut with an ellipsis, never widens the table. */
#jobs { table-layout:fixed; }
#jobs col.c-status { width:124px; } #jobs col.c-pid { width:64px; }
#jobs col.c-elapsed { width:72px; } #jobs col.c-exit { width:44px; }
#jobs col.c-out { width:78px; }
#jobs td { overflow:hidden; text-overflow:ellipsis; }
td.title.cmd { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
#jobs tbody tr.job { cursor:pointer; }
#jobs tbody tr.job:hover { background:#1c242d; }
#jobs tbody tr.sel { background:#1d3246; }
#jobs tr.run td { background:#121920; color:var(--dim); font-size:12px; padding:6px 8px 4px; }
#jobs tr.run b { color:var(--fg); font-weight:600; }
#jobs tr.run .bar { height:3px; background:#243140; border-radius:2px; margin-top:4px;
  overflow:hidden; }
#jobs tr.run .bar i { display:block; height:100%; background:var(--ok); }
.st { display:inline-block; padding:0 6px; border-radius:9px; font-size:11px; font-weight:600; }
.st.running { background:#173a2b; color:var(--ok); }
.st.paused { background:#2e2340; color:var(--paused); }
.st.ending { background:#3a3017; color:var(--warn); }
.st.completed { background:#1b2a22; color:#8fd6b0; }
.st.failed, .st.killed { background:#3a1a1e; color:var(--bad); }
.st.timeout, .st.stalled, .st.canceled { background:#3a3017; color:var(--warn); }
.st.expected { background:#1b2a22; color:#8fd6b0; }
.empty { color:var(--dim); padding:14px 12px; }
#detail-head { padding:8px 12px; border-bottom:1px solid var(--line); display:flex; gap:8px;
  align-items:center; flex-wrap:wrap; }
#detail-head code, #detail-meta { font-size:12px; color:var(--dim); overflow:hidden;
  text-overflow:ellipsis; white-space:nowrap; max-width:100%; }
#detail-title { overflow:hidden; text-overflow:ellipsis; white-space:nowrap; max-width:100%; }
#detail-meta { flex-basis:100%; }
button { background:#223040; color:var(--fg); border:1px solid #34465a; border-radius:4px;
  padding:4px 12px; font:inherit; font-weight:600; cursor:pointer; }
button:hover:not(:disabled) { background:#2b3d52; }
button:disabled { opacity:.4; cursor:default; }
button.danger { border-color:#7a2f37; color:#ffb3ba; }
.tabs { margin-left:auto; display:flex; gap:4px; }
.tabs button { font-weight:500; padding:2px 10px; }
.tabs button.on { background:var(--accent); color:#081421; border-color:var(--accent); }
#out, #conversation { height:calc(100vh - 330px); min-height:260px; overflow:auto; margin:0;
  padding:10px 12px; }
#out { font:12px/1.4 ui-monospace, Menlo, Consolas, monospace; white-space:pre-wrap;
  word-break:break-all; }
#out .stderr { color:#ff9aa4; }
#out .note, .note { color:var(--dim); font-style:italic; }
.msg { margin:0 0 10px; padding:8px 10px; border-radius:6px; border:1px solid var(--line);
  white-space:pre-wrap; word-break:break-word; }
.msg .who { display:block; font-size:11px; font-weight:700; letter-spacing:.5px;
  text-transform:uppercase; color:var(--dim); margin-bottom:3px; }
.msg.system { background:#141a20; color:var(--dim); }
.msg.line { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; padding:3px 10px;
  font-size:12px; margin-bottom:6px; }
.msg.line .who { display:inline; margin:0 6px 0 0; }
.msg.prompt { background:#1a1f2e; border-color:#3b4d7a; }
#tool-live { padding:4px 12px 8px; color:var(--warn); font-style:italic; }
.msg.assistant { background:#17232f; border-color:#23405a; }
.msg.tool-call { background:#1b1a2b; border-color:#3a3260;
  font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
.msg.tool-result { background:#151f1a; border-color:#24402f;
  font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
.msg.tool-result.error { background:#261518; border-color:#5a2a30; }
.msg.result { background:#1a2a1f; border-color:#2f6b47; }
.msg.result.error { background:#2a1719; border-color:#7a2f37; }
.msg.plain { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
#history td.label { max-width:320px; overflow:hidden; text-overflow:ellipsis; }
#gate { max-width:420px; margin:12vh auto; background:var(--panel); border:1px solid var(--line);
  border-radius:8px; padding:20px; }
#gate h2 { margin:0 0 8px; font-size:16px; }
#gate p { color:var(--dim); }
#gate input { width:100%; padding:7px 9px; margin:6px 0 10px; background:#0b0f13;
  color:var(--fg); border:1px solid #34465a; border-radius:4px; font:inherit; }
#gate .err { color:var(--bad); min-height:1.4em; }
/* Narrow windows: the jobs table takes the whole width, the chosen job's output goes below it. */
@media (max-width: 1100px) { main { grid-template-columns:minmax(0, 1fr); } }
.hidden { display:none !important; }
.wide { grid-column:1 / -1; }
`;

const SCRIPT = String.raw`
"use strict";
(function () {
  var TOKEN_KEY = "ccx.token";
  var MAX_NODES = 5000; // output chunks and conversation entries kept on the page per job
  var $ = function (id) { return document.getElementById(id); };
  var ws = null, nextId = 1, pending = {}, retry = null;
  var jobs = new Map(); // key -> job
  var selected = null; // key
  var autoPicked = false; // the selection was made by the page (the only running job), not a click
  var view = "auto"; // auto | conversation | raw
  var buffers = new Map(); // key -> {chunks:[], partial:"", items:[], streamJson:false, lastSeq:-1}
  var clockSkew = 0; // server time - browser time, seconds

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function keyOf(j) { return j.session_id + "/" + j.job_id; }
  function shellWord(a) {
    return /^[\w@%+=:,.\/-]+$/.test(a) ? a : "'" + a.replace(/'/g, "'\\''") + "'";
  }
  // What a job is called: its label, else its command as a shell line (an argv is quoted).
  function titleOf(j) {
    if (j.label) return j.label;
    return j.argv ? j.argv.map(shellWord).join(" ") : j.command;
  }
  function commandOf(j) { return j.argv ? j.argv.map(shellWord).join(" ") : j.command; }
  function metaOf(j) { return j.meta && typeof j.meta === "object" ? j.meta : {}; }
  // What a Claude job asks: meta.prompt, else the prompt of a "claude -p PROMPT" argv.
  function promptOf(j) {
    var m = metaOf(j);
    if (typeof m.prompt === "string" && m.prompt !== "") return m.prompt;
    var a = j.argv;
    if (!a) return "";
    var dd = a.indexOf("--");
    if (dd > 0 && dd + 1 < a.length) return a[dd + 1];
    for (var i = 1; i + 1 < a.length; i++) {
      if ((a[i] === "-p" || a[i] === "--print") && a[i + 1].charAt(0) !== "-") return a[i + 1];
    }
    return "";
  }
  // A task that must fail (expect_exit non-zero) and did: not shown as a failure.
  function statusOf(j) {
    if (j.state !== "done") return { cls: j.state, text: j.state };
    if (j.status === "failed" && metaOf(j).expect_exit === "non-zero") {
      return { cls: "expected", text: "failed (expected)" };
    }
    return { cls: j.status, text: j.status };
  }
  function fmtBytes(n) {
    if (n === undefined || n === null) return "";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(2) + " GiB";
  }
  function fmtSecs(s) {
    if (s === undefined || s === null) return "";
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60), r = Math.floor(s % 60);
    if (m < 60) return m + "m " + r + "s";
    return Math.floor(m / 60) + "h " + (m % 60) + "m";
  }
  function b64url(text) {
    var bytes = new TextEncoder().encode(text), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // ---- connection -------------------------------------------------------------------------
  function connect() {
    if (retry) { clearTimeout(retry); retry = null; }
    var token = sessionStorage.getItem(TOKEN_KEY);
    var protocols = ["ccx"];
    if (token) protocols.push("ccx.token." + b64url(token));
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    var opened = false;
    setConn("down", "connecting…");
    try {
      ws = new WebSocket(url, protocols);
    } catch (e) {
      showGate("Could not connect: " + e.message);
      return;
    }
    ws.onopen = function () {
      opened = true;
      setConn("up", "live");
      $("forget").classList.toggle("hidden", !token);
      $("gate").classList.add("hidden");
      $("app").classList.remove("hidden");
      watch();
      loadHistory();
    };
    ws.onmessage = function (ev) { onMessage(JSON.parse(ev.data)); };
    ws.onclose = function () {
      ws = null;
      for (var id in pending) { pending[id].reject(new Error("connection closed")); }
      pending = {};
      if (!opened) {
        // Refused at the handshake (no token or a wrong one), or the server is unreachable:
        // /health (no token needed) tells which.
        fetch("/health", { cache: "no-store" }).then(function (r) {
          if (!r.ok) throw new Error("health " + r.status);
          $("app").classList.add("hidden");
          jobs.clear(); buffers.clear(); selected = null;
          if (token) sessionStorage.removeItem(TOKEN_KEY);
          showGate(token ? "The server refused that token." : "");
        }).catch(function () {
          setConn("down", "server unreachable, retrying…");
          retry = setTimeout(connect, 2000);
        });
        return;
      }
      setConn("down", "disconnected, retrying…");
      retry = setTimeout(connect, 2000);
    };
  }
  function setConn(cls, text) { var c = $("conn"); c.className = cls; c.textContent = text; }
  function showGate(err) {
    setConn("down", "not connected");
    $("app").classList.add("hidden");
    $("gate").classList.remove("hidden");
    $("gate-error").textContent = err || "";
    $("token").focus();
  }
  function call(method, params) {
    return new Promise(function (resolve, reject) {
      if (!ws || ws.readyState !== 1) { reject(new Error("not connected")); return; }
      var id = nextId++;
      pending[id] = { resolve: resolve, reject: reject };
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: id, method: method, params: params }));
    });
  }
  function onMessage(m) {
    if (m.id !== undefined && m.method === undefined) {
      var p = pending[m.id];
      if (!p) return;
      delete pending[m.id];
      if (m.error) p.reject(new Error(m.error.message)); else p.resolve(m.result);
      return;
    }
    var params = m.params || {};
    if (m.method === "observe.job") {
      var j = params.job, k = keyOf(j);
      if (params.event === "removed") {
        jobs.delete(k); buffers.delete(k);
        if (selected === k) selected = null;
      } else {
        jobs.set(k, j);
      }
      renderJobs(); renderDetailHead(); autoSelect();
    } else if (m.method === "observe.output") {
      addOutput(params.session_id + "/" + params.job_id, params);
    } else if (m.method === "observe.server") {
      renderFacts(params);
    }
  }
  function watch() {
    var output = [];
    if (selected && jobs.has(selected)) {
      var j = jobs.get(selected);
      output.push({ session_id: j.session_id, job_id: j.job_id });
    }
    return call("watch", { output: output }).then(function (snap) {
      renderFacts(snap.server);
      var seen = new Set();
      snap.jobs.forEach(function (j) { var k = keyOf(j); seen.add(k); jobs.set(k, j); });
      Array.from(jobs.keys()).forEach(function (k) { if (!seen.has(k)) jobs.delete(k); });
      if (selected && !jobs.has(selected)) { selected = null; renderOutput(); }
      renderJobs(); renderDetailHead(); autoSelect();
    }, function (e) {
      if (output.length > 0 && ws && ws.readyState === 1) {
        // The chosen job is gone (e.g. the server restarted): list again without it.
        selected = null;
        renderOutput(); renderDetailHead();
        return watch();
      }
      setConn("down", "watch failed: " + e.message);
    });
  }

  // ---- server facts -----------------------------------------------------------------------
  function renderFacts(f) {
    if (!f) return;
    if (typeof f.timestamp === "number") clockSkew = f.timestamp - Date.now() / 1000;
    var box = $("facts");
    box.textContent = "";
    var items = [
      ["version", f.version],
      ["host", f.hostname],
      ["uptime", fmtSecs(f.uptime_seconds)],
      ["sessions", f.active_sessions + " / " + f.max_sessions],
      ["running jobs", f.running_jobs],
      ["memory", fmtBytes(f.memory_rss_bytes)],
      ["load", (f.load_average || []).map(function (x) { return x.toFixed(2); }).join(" ")],
      ["observers", f.observers],
    ];
    items.forEach(function (it) {
      var s = el("span", "fact");
      s.setAttribute("data-fact", it[0]);
      s.appendChild(document.createTextNode(it[0] + " "));
      s.appendChild(el("b", "", it[1]));
      box.appendChild(s);
    });
  }

  // ---- jobs -------------------------------------------------------------------------------
  function elapsedOf(j) {
    if (j.state === "done" || j.ended_at) return j.elapsed;
    return Math.max(j.elapsed, Date.now() / 1000 + clockSkew - j.started_at);
  }
  function metaStr(j, key) {
    var v = metaOf(j)[key];
    return typeof v === "string" && v !== "" ? v : undefined;
  }
  // Jobs by run (meta.run_id), each with its progress: a task run (meta.result_id, else the job)
  // is done when all of its jobs are. Runs with running jobs first, then the newest.
  function groupsOf(list) {
    var byRun = new Map();
    list.forEach(function (j) {
      var id = metaStr(j, "run_id");
      var g = byRun.get(id);
      if (!g) { g = { id: id, jobs: [], running: 0, newest: 0 }; byRun.set(id, g); }
      g.jobs.push(j);
      if (!g.suite) g.suite = metaStr(j, "suite");
      if (typeof metaOf(j).run_total === "number") g.total = metaOf(j).run_total;
      if (j.state !== "done") g.running++;
      g.newest = Math.max(g.newest, j.started_at);
    });
    var out = Array.from(byRun.values());
    out.forEach(function (g) {
      var tasks = new Map();
      g.jobs.forEach(function (j) {
        var t = metaStr(j, "result_id") || keyOf(j);
        tasks.set(t, (tasks.has(t) ? tasks.get(t) : true) && j.state === "done");
      });
      g.done = Array.from(tasks.values()).filter(function (d) { return d; }).length;
      g.jobs.sort(function (a, b) {
        var ar = a.state === "done" ? 1 : 0, br = b.state === "done" ? 1 : 0;
        return ar - br || b.started_at - a.started_at;
      });
    });
    return out.sort(function (a, b) {
      if ((a.id === undefined) !== (b.id === undefined)) return a.id === undefined ? 1 : -1;
      return (b.running > 0) - (a.running > 0) || b.newest - a.newest;
    });
  }
  function runRow(g) {
    var tr = el("tr", "run");
    tr.setAttribute("data-run", g.id || "");
    var td = el("td");
    td.colSpan = 6;
    if (g.id === undefined) {
      td.textContent = "other jobs";
    } else {
      if (g.suite) td.appendChild(el("b", "", g.suite));
      td.appendChild(document.createTextNode((g.suite ? " · " : "") + "run " + g.id + " · "));
      var prog = el("span", "progress",
        g.done + (g.total !== undefined ? " of " + g.total : "") + " done · " + g.running + " running");
      td.appendChild(prog);
      if (g.total) {
        var bar = el("div", "bar"), fill = el("i");
        fill.style.width = Math.min(100, Math.round(100 * g.done / g.total)) + "%";
        bar.appendChild(fill); td.appendChild(bar);
      }
    }
    td.title = td.textContent;
    tr.appendChild(td);
    return tr;
  }
  function jobRow(j) {
    var k = keyOf(j);
    var tr = el("tr", "job");
    tr.setAttribute("data-key", k);
    tr.setAttribute("data-job-id", j.job_id);
    if (k === selected) tr.className = "job sel";
    var st = statusOf(j);
    var pill = el("span", "st " + st.cls, st.text);
    if (st.cls === "expected") pill.title = "this task passes when its command fails";
    var c1 = el("td"); c1.appendChild(pill); tr.appendChild(c1);
    var title = el("td", "title" + (j.label ? "" : " cmd"), titleOf(j));
    title.title = (j.label ? j.label + "\n" : "") + commandOf(j) + "\njob " + j.job_id;
    tr.appendChild(title);
    tr.appendChild(el("td", "num", j.pid));
    tr.appendChild(el("td", "num elapsed", fmtSecs(elapsedOf(j))));
    tr.appendChild(el("td", "num", j.exit_code === undefined || j.exit_code === null ? "" : j.exit_code));
    tr.appendChild(el("td", "num", fmtBytes(j.stdout_bytes + j.stderr_bytes)));
    tr.onclick = function () { select(k, false); };
    return tr;
  }
  function renderJobs() {
    var tbody = $("jobs-body");
    tbody.textContent = "";
    var list = Array.from(jobs.values());
    $("jobs-empty").classList.toggle("hidden", list.length > 0);
    $("jobs-count").textContent = list.length ? "(" + list.length + ")" : "";
    var groups = groupsOf(list);
    var named = groups.some(function (g) { return g.id !== undefined; });
    groups.forEach(function (g) {
      if (named) tbody.appendChild(runRow(g));
      g.jobs.forEach(function (j) { tbody.appendChild(jobRow(j)); });
    });
  }
  // Nothing chosen (or only by the page itself) and exactly one job runs: follow that one.
  function autoSelect() {
    if (selected && !autoPicked && jobs.has(selected)) return;
    var live = Array.from(jobs.values()).filter(function (j) { return j.state !== "done"; });
    if (live.length !== 1) return;
    var k = keyOf(live[0]);
    if (k !== selected) select(k, true);
  }
  function select(k, auto) {
    autoPicked = !!auto;
    if (selected === k) return;
    selected = k;
    buffers.delete(k); // the server sends its tail again when a job is followed anew
    view = "auto";
    renderJobs(); renderDetailHead(); renderOutput();
    watch();
  }

  // ---- output and the conversation ----------------------------------------------------------
  function bufferOf(k) {
    var b = buffers.get(k);
    if (!b) {
      // pending: tool calls without a result yet, by id: {name, at} (at: server epoch seconds)
      b = { chunks: [], partial: "", items: [], streamJson: false, lastSeq: -1, chars: 0,
        pending: new Map(), at: 0 };
      buffers.set(k, b);
    }
    return b;
  }
  function addOutput(k, p) {
    var b = bufferOf(k);
    if (p.seq <= b.lastSeq) return; // seen already (a tail resent after reconnecting)
    b.lastSeq = p.seq;
    if (p.truncated) b.chunks.push({ type: "note", data: "… earlier output not kept by the server …\n" });
    if (p.dropped_chars) b.chunks.push({ type: "note", data: "… " + p.dropped_chars + " characters skipped (this page fell behind) …\n" });
    b.chunks.push({ type: p.type, data: p.data });
    b.chars += p.data.length;
    while (b.chars > 2000000 && b.chunks.length > 1) b.chars -= b.chunks.shift().data.length;
    var fresh = [];
    b.at = typeof p.at === "number" ? p.at : Date.now() / 1000 + clockSkew;
    if (p.type === "stdout") {
      var text = b.partial + p.data, lines = text.split("\n");
      b.partial = lines.pop();
      lines.forEach(function (line) { var it = parseLine(line, b); if (it) fresh.push(it); });
    } else if (p.data.trim() !== "") {
      fresh.push({ kind: "plain stderr", who: "stderr", text: p.data.replace(/\n$/, "") });
    }
    fresh.forEach(function (it) { b.items.push(it); });
    if (b.items.length > MAX_NODES) b.items.splice(0, b.items.length - MAX_NODES);
    if (k === selected) appendOutput(b, p, fresh);
  }
  function short(v, n) {
    var s = typeof v === "string" ? v : JSON.stringify(v, null, 2);
    return s.length > n ? s.slice(0, n) + "… (" + s.length + " characters)" : s;
  }
  // One line for a system event: its subtype and its plain fields (api_retry: attempt N of M,
  // the wait and the error), never the raw JSON (kept as the line's tooltip).
  function systemSummary(o) {
    var bits = [o.subtype || "event"];
    if (o.subtype === "api_retry") {
      if (o.attempt !== undefined) bits.push("attempt " + o.attempt + (o.max_retries !== undefined ? " of " + o.max_retries : ""));
      if (typeof o.retry_delay_ms === "number") bits.push("next in " + (o.retry_delay_ms / 1000).toFixed(1) + " s");
      if (o.error_status !== undefined && o.error_status !== null) bits.push("HTTP " + o.error_status);
      if (o.error) bits.push("error " + (typeof o.error === "string" ? o.error : JSON.stringify(o.error)));
      return bits.join(" · ");
    }
    Object.keys(o).forEach(function (k) {
      if (k === "type" || k === "subtype" || k === "session_id" || k === "uuid") return;
      var v = o[k];
      if (v === null || typeof v === "object") return;
      var t = String(v);
      bits.push(k + " " + (t.length > 60 ? t.slice(0, 59) + "…" : t));
    });
    var line = bits.slice(0, 7).join(" · ");
    return line.length > 240 ? line.slice(0, 239) + "…" : line;
  }
  function parseLine(line, b) {
    if (line.trim() === "") return null;
    var o = null;
    if (line.charAt(0) === "{") { try { o = JSON.parse(line); } catch (e) { o = null; } }
    if (!o || typeof o.type !== "string") return { kind: "plain", who: "", text: line };
    var content = o.message && Array.isArray(o.message.content) ? o.message.content : [];
    if (o.type === "system") {
      b.streamJson = true;
      var full = short(o, 4000);
      if (o.subtype === "init") {
        return { kind: "system line", who: "session", full: full, text: "model " +
          (o.model || "?") + " · cwd " + (o.cwd || "?") + " · " + ((o.tools || []).length) +
          " tools" + (o.permissionMode ? " · " + o.permissionMode : "") };
      }
      return { kind: "system line", who: "system", full: full, text: systemSummary(o) };
    }
    if (o.type === "assistant") {
      b.streamJson = true;
      var parts = [];
      content.forEach(function (c) {
        if (c.type === "text" && c.text) parts.push({ kind: "assistant", who: "assistant", text: c.text });
        else if (c.type === "tool_use") {
          if (c.id) b.pending.set(c.id, { name: c.name || "a tool", at: b.at, input: c.input });
          parts.push({ kind: "tool-call", who: "tool call · " + c.name, text: short(c.input || {}, 1200) });
        } else if (c.type === "thinking" && c.thinking) {
          parts.push({ kind: "system", who: "thinking", text: c.thinking });
        }
      });
      return parts.length ? { group: parts } : null;
    }
    if (o.type === "user") {
      b.streamJson = true;
      var res = [];
      content.forEach(function (c) {
        if (c.type !== "tool_result") return;
        b.pending.delete(c.tool_use_id);
        var t = typeof c.content === "string" ? c.content : Array.isArray(c.content) ?
          c.content.map(function (x) { return x.text || ""; }).join("\n") : "";
        res.push({ kind: "tool-result" + (c.is_error ? " error" : ""),
          who: "tool result" + (c.is_error ? " · error" : ""), text: short(t, 1200) });
      });
      return res.length ? { group: res } : null;
    }
    if (o.type === "result") {
      b.streamJson = true;
      b.pending.clear();
      var bits = [o.subtype || "result"];
      if (o.num_turns !== undefined) bits.push(o.num_turns + " turns");
      var cost = o.total_cost_usd !== undefined ? o.total_cost_usd : o.cost_usd;
      if (typeof cost === "number") bits.push("$" + cost.toFixed(4));
      if (typeof o.duration_ms === "number") bits.push((o.duration_ms / 1000).toFixed(1) + " s");
      var bad = o.is_error || (o.subtype && o.subtype !== "success");
      return { kind: "result" + (bad ? " error" : ""), who: "result · " + bits.join(" · "),
        text: o.result !== undefined ? String(o.result) : "" };
    }
    return { kind: "plain", who: "", text: line };
  }
  function showConversation(b) { return view === "conversation" || (view === "auto" && b.streamJson); }
  function renderItem(box, it) {
    (it.group || [it]).forEach(function (x) {
      var d = el("div", "msg " + x.kind);
      if (x.who) d.appendChild(el("span", "who", x.who));
      d.appendChild(document.createTextNode(x.text));
      if (x.full) d.title = x.full;
      box.appendChild(d);
    });
  }
  // The prompt of the chosen job, first in its conversation.
  function renderPrompt(conv) {
    var j = selected ? jobs.get(selected) : null;
    var text = j ? promptOf(j) : "";
    if (!text) return;
    var d = el("div", "msg prompt");
    d.appendChild(el("span", "who", "prompt"));
    d.appendChild(document.createTextNode(text));
    conv.appendChild(d);
  }
  // "running Bash for 40 s" while the chosen job waits on a tool call that has not answered.
  function renderToolLive() {
    var box = $("tool-live");
    var j = selected ? jobs.get(selected) : null;
    var b = selected ? buffers.get(selected) : null;
    var last = null;
    if (j && b && j.state !== "done" && b.pending.size > 0 && showConversation(b)) {
      b.pending.forEach(function (t) { last = t; });
    }
    box.classList.toggle("hidden", !last);
    if (!last) { box.textContent = ""; return; }
    var secs = Math.max(0, Date.now() / 1000 + clockSkew - last.at);
    box.textContent = "running " + last.name + " for " + Math.floor(secs) + " s";
    var inp = last.input || {};
    var what = inp.command || inp.file_path || inp.pattern || inp.url || "";
    box.title = what ? String(what) : "";
  }
  function stick(box, fn) {
    var atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    fn();
    if (atEnd) box.scrollTop = box.scrollHeight;
  }
  function renderOutput() {
    var out = $("out"), conv = $("conversation");
    out.textContent = ""; conv.textContent = "";
    var b = selected ? buffers.get(selected) : null;
    $("detail-empty").classList.toggle("hidden", !!selected);
    renderToolLive();
    if (!selected) { out.classList.add("hidden"); conv.classList.add("hidden"); return; }
    var convo = b ? showConversation(b) : false;
    out.classList.toggle("hidden", convo);
    conv.classList.toggle("hidden", !convo);
    $("tab-conv").classList.toggle("on", convo);
    $("tab-raw").classList.toggle("on", !convo);
    if (!b) return;
    b.chunks.slice(-MAX_NODES).forEach(function (c) { out.appendChild(el("span", c.type, c.data)); });
    renderPrompt(conv);
    b.items.forEach(function (it) { renderItem(conv, it); });
    renderToolLive();
    out.scrollTop = out.scrollHeight; conv.scrollTop = conv.scrollHeight;
  }
  function appendOutput(b, p, fresh) {
    var convo = showConversation(b);
    if (convo && $("conversation").classList.contains("hidden")) { renderOutput(); return; }
    var out = $("out"), conv = $("conversation");
    stick(out, function () {
      out.appendChild(el("span", p.type, p.data));
      while (out.childNodes.length > MAX_NODES) out.removeChild(out.firstChild);
    });
    stick(conv, function () {
      fresh.forEach(function (it) { renderItem(conv, it); });
      while (conv.childNodes.length > MAX_NODES) conv.removeChild(conv.firstChild);
    });
    renderToolLive();
  }

  // ---- the chosen job's header and buttons ----------------------------------------------------
  function renderDetailHead() {
    var j = selected ? jobs.get(selected) : null;
    $("detail-title").textContent = j ? titleOf(j) : "";
    $("detail-title").title = j ? titleOf(j) : "";
    $("detail-cmd").textContent = j ? commandOf(j) : "";
    $("detail-cmd").title = j ? commandOf(j) : "";
    var facts = [];
    if (j) {
      var m = metaOf(j);
      facts.push("job " + j.job_id, "pid " + j.pid,
        "started by " + j.started_by.remote + " · session " + j.started_by.session_id.slice(0, 8));
      if (m.suite) facts.push("suite " + m.suite);
      if (m.run_id) facts.push("run " + m.run_id);
      if (m.task_id) facts.push("task " + m.task_id);
      if (m.instance !== undefined) facts.push("instance " + m.instance);
      if (m.attempt !== undefined) facts.push("attempt " + m.attempt);
    }
    $("detail-meta").textContent = facts.join(" · ");
    $("detail-meta").title = j ? JSON.stringify(metaOf(j), null, 2) : "";
    var live = j && j.state !== "done" && j.state !== "ending";
    $("pause").disabled = !(live && j.state === "running");
    $("resume").disabled = !(live && j.state === "paused");
    $("cancel").disabled = !live;
    $("detail-actions").classList.toggle("hidden", !j);
  }
  function control(type) {
    var j = selected ? jobs.get(selected) : null;
    if (!j) return;
    if (type === "CANCEL" && !confirm("Cancel " + titleOf(j) + " (job " + j.job_id + ", pid " + j.pid + ")? Its whole process group is ended.")) return;
    call("control", { type: type, session_id: j.session_id, job_id: j.job_id }).catch(function (e) {
      alert(type + " failed: " + e.message);
    });
  }

  // ---- timeout history ----------------------------------------------------------------------
  function loadHistory() {
    return call("history").then(function (h) {
      var tbody = $("history-body");
      tbody.textContent = "";
      $("history-where").textContent = h.location ? "· " + h.location : "";
      $("history-empty").classList.toggle("hidden", h.classes.length > 0);
      h.classes.forEach(function (c) {
        var tr = el("tr");
        var l = el("td", "label", c.label); l.title = c.key; tr.appendChild(l);
        tr.appendChild(el("td", "", c.complexity));
        tr.appendChild(el("td", "num", c.count));
        tr.appendChild(el("td", "num", c.successes));
        tr.appendChild(el("td", "num", c.p50S === undefined ? "" : fmtSecs(c.p50S)));
        tr.appendChild(el("td", "num", c.p90S === undefined ? "" : fmtSecs(c.p90S)));
        tr.appendChild(el("td", "num", c.estimateS + " s"));
        tbody.appendChild(tr);
      });
    }, function (e) { $("history-where").textContent = "· unavailable: " + e.message; });
  }

  // ---- wiring -------------------------------------------------------------------------------
  $("gate-form").onsubmit = function (ev) {
    ev.preventDefault();
    var t = $("token").value;
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $("token").value = "";
    connect();
  };
  $("pause").onclick = function () { control("PAUSE"); };
  $("resume").onclick = function () { control("RESUME"); };
  $("cancel").onclick = function () { control("CANCEL"); };
  $("tab-conv").onclick = function () { view = "conversation"; renderOutput(); };
  $("tab-raw").onclick = function () { view = "raw"; renderOutput(); };
  $("history-refresh").onclick = function () { loadHistory(); };
  $("forget").onclick = function () {
    sessionStorage.removeItem(TOKEN_KEY);
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    jobs.clear(); buffers.clear(); selected = null;
    renderJobs(); renderOutput();
    showGate("");
  };
  setInterval(function () {
    if (ws && ws.readyState === 1) watch();
  }, 3000);
  setInterval(function () {
    document.querySelectorAll("#jobs-body tr.job").forEach(function (tr) {
      var j = jobs.get(tr.getAttribute("data-key"));
      if (j && j.state !== "done") tr.querySelector(".elapsed").textContent = fmtSecs(elapsedOf(j));
    });
    renderToolLive();
  }, 1000);
  setInterval(function () { if (ws && ws.readyState === 1) loadHistory(); }, 30000);
  renderOutput();
  // A link that carries the token in its fragment (#token=…, what "ccx stress --page" prints for
  // its own server): the fragment never goes to the server, and it is taken out of the address
  // bar at once, kept only in this tab's sessionStorage like a typed token.
  var m = /^#token=(.+)$/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  connect();
})();
`;

const BODY = String.raw`
<header>
  <h1><span>ccx</span> serve</h1>
  <div id="facts"></div>
  <div id="conn" class="down">connecting…</div>
</header>
<div id="gate" class="hidden">
  <h2>Token</h2>
  <p>This server needs its token. It is kept in this tab only (session storage) and sent with
  the WebSocket handshake, never in a URL.</p>
  <form id="gate-form" autocomplete="off">
    <input id="token" type="password" placeholder="CCX_TOKEN" aria-label="token" autocomplete="off">
    <div id="gate-error" class="err"></div>
    <button type="submit">Connect</button>
  </form>
</div>
<main id="app" class="hidden">
  <section>
    <h2>Jobs <span id="jobs-count"></span>
      <button id="forget" title="Disconnect and forget the token in this tab"
        style="margin-left:auto;font-weight:500;padding:1px 8px">Forget token</button></h2>
    <div class="scroll"><table id="jobs">
      <colgroup><col class="c-status"><col class="c-title"><col class="c-pid"><col class="c-elapsed">
        <col class="c-exit"><col class="c-out"></colgroup>
      <thead><tr><th>status</th><th>task</th><th>pid</th><th>elapsed</th>
        <th>exit</th><th>output</th></tr></thead>
      <tbody id="jobs-body"></tbody>
    </table></div>
    <div id="jobs-empty" class="empty">No jobs yet. Jobs of every session appear here.</div>
  </section>
  <section>
    <div id="detail-head">
      <strong id="detail-title"></strong>
      <span id="detail-actions" class="hidden">
        <button id="pause">PAUSE</button>
        <button id="resume">RESUME</button>
        <button id="cancel" class="danger">CANCEL</button>
      </span>
      <span class="tabs"><button id="tab-conv">Conversation</button><button id="tab-raw">Raw</button></span>
      <code id="detail-cmd"></code>
      <div id="detail-meta"></div>
    </div>
    <div id="detail-empty" class="empty">Choose a job to follow its output.</div>
    <pre id="out" class="hidden"></pre>
    <div id="conversation" class="hidden"></div>
    <div id="tool-live" class="hidden"></div>
  </section>
  <section class="wide">
    <h2>Timeout history <span id="history-where" style="text-transform:none;letter-spacing:0"></span>
      <button id="history-refresh" style="margin-left:auto;font-weight:500;padding:1px 8px">Refresh</button></h2>
    <table id="history">
      <thead><tr><th>task class</th><th>complexity</th><th>runs</th><th>successes</th>
        <th>p50</th><th>p90</th><th>estimate</th></tr></thead>
      <tbody id="history-body"></tbody>
    </table>
    <div id="history-empty" class="empty">No runs recorded yet (ccx exec and ccx stress record them).</div>
  </section>
</main>
`;

function hash(text: string): string {
  return `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
}

/** The page and the Content-Security-Policy that lets exactly its inline script and style run. */
export interface Page {
  /** The whole HTML document. */
  html: string;
  /** A `Content-Security-Policy` value: nothing external, the inline script only by its hash. */
  csp: string;
}

let cached: Page | undefined;

/**
 * The web page served at `GET /`, built once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { page } from "./page.ts";
 * assert.ok(page().html.includes("<title>ccx serve</title>"));
 * ```
 */
export function page(): Page {
  cached ??= {
    html: `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>ccx serve</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`,
    csp: [
      "default-src 'none'",
      `script-src ${hash(SCRIPT)}`,
      "style-src 'unsafe-inline'",
      "connect-src 'self'",
      "img-src 'none'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  };
  return cached;
}

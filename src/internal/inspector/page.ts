/**
 * The inspector's page: one self-contained HTML document (inline CSS and
 * JavaScript, no CDN, no build step, works offline). It reads `<prefix>/state`
 * once, then follows `<prefix>/events`. Everything it shows comes from the
 * JSON and is put in the page as text (`textContent`), never as markup; a
 * Content-Security-Policy allows only this script and this style (by hash)
 * and requests to the page's own origin.
 */
import { createHash } from "node:crypto"

const style = `
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --ink: #1c2430; --muted: #667085; --line: #e3e6eb;
  --accent: #2563eb; --warn: #b45309; --bad: #c0262d; --ok: #15803d; --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
@media (prefers-color-scheme: dark) { :root { --bg: #0f1419; --card: #171d25; --ink: #e6e9ee; --muted: #8b95a5; --line: #27303b;
  --accent: #60a5fa; --warn: #f59e0b; --bad: #f87171; --ok: #4ade80; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; align-items: center; gap: 12px; padding: 14px 20px; border-bottom: 1px solid var(--line); background: var(--card);
  position: sticky; top: 0; z-index: 1; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; }
header h1 small { color: var(--muted); font-weight: 400; margin-left: 6px; }
#updated { margin-left: auto; color: var(--muted); font-variant-numeric: tabular-nums; }
.pill { border-radius: 999px; padding: 2px 10px; font-size: 12px; font-weight: 600; border: 1px solid var(--line); }
.pill.running { color: var(--ok); border-color: currentColor; }
.pill.stopping, .pill.reconnecting { color: var(--warn); border-color: currentColor; }
.pill.stopped, .pill.error { color: var(--bad); border-color: currentColor; }
main { padding: 16px 20px 40px; display: grid; gap: 16px; max-width: 1400px; margin: 0 auto; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; min-width: 0; overflow-x: auto; }
section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 10px; font-weight: 600; }
section h2 .count { text-transform: none; letter-spacing: 0; font-weight: 400; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.levels { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
.level { border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
.level .title { display: flex; justify-content: space-between; gap: 8px; font-weight: 600; }
.level .title span:last-child { color: var(--accent); font-variant-numeric: tabular-nums; }
.level .figures { color: var(--muted); font-size: 12px; margin: 2px 0 6px; font-variant-numeric: tabular-nums; }
.level svg { width: 100%; height: 64px; display: block; }
.level svg .area { fill: var(--accent); opacity: .15; }
.level svg .line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.level svg .axis { stroke: var(--line); }
.level .scale { color: var(--muted); font-size: 11px; text-align: right; font-variant-numeric: tabular-nums; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
td.num, th.num { text-align: right; }
td.key { font-family: var(--mono); max-width: 220px; overflow: hidden; text-overflow: ellipsis; }
td.path { font-family: var(--mono); color: var(--muted); max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
tr.stuck td.age { color: var(--bad); font-weight: 600; }
.empty { color: var(--muted); padding: 8px 0; }
nav.tabs { display: flex; gap: 4px; margin-bottom: 8px; }
nav.tabs button { font: inherit; font-size: 12px; border: 1px solid var(--line); background: transparent; color: var(--ink);
  border-radius: 6px; padding: 2px 10px; cursor: pointer; }
nav.tabs button.active { background: var(--accent); border-color: var(--accent); color: #fff; }
.indent { display: inline-block; }
#failures { list-style: none; padding: 0; margin: 0; display: grid; gap: 6px; }
#failures li { border: 1px solid var(--line); border-radius: 8px; padding: 6px 10px; }
#failures .head { display: flex; gap: 10px; flex-wrap: wrap; font-variant-numeric: tabular-nums; }
#failures .head .key { font-family: var(--mono); }
#failures .head .path { font-family: var(--mono); color: var(--muted); }
#failures .gaveup { color: var(--bad); font-weight: 600; }
#failures pre { margin: 6px 0 0; font: 12px/1.4 var(--mono); white-space: pre-wrap; word-break: break-word; max-height: 200px; overflow: auto;
  color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: center; }
`

const script = `
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("config").textContent);
  var history = {};
  var historyLength = 60;
  var tab = "rate";
  var emptyText = { depth: "no request waits", rate: "no request since the last refresh", oldest: "no request waits", failures: "no key is failing" };
  var last;
  var lastAt = 0;
  function $(id) { return document.getElementById(id); }
  function el(tag, className, children) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    (children || []).forEach(function (child) { node.append(child instanceof Node ? child : document.createTextNode(String(child))); });
    return node;
  }
  function svg(tag, attributes) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attributes).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    return node;
  }
  function age(ms) {
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    if (ms < 3600000) return (ms / 60000).toFixed(1) + " min";
    return (ms / 3600000).toFixed(1) + " h";
  }
  function num(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(2) + "M";
    if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n * 10) / 10);
  }
  function setStatus(status, title) {
    var pill = $("status");
    pill.className = "pill " + status;
    pill.textContent = status;
    pill.title = title || "";
  }
  function card(label, value, id) {
    var node = el("div", "card", [el("div", "label", [label]), el("div", "value", [value])]);
    node.id = id;
    return node;
  }
  function chart(values) {
    var width = 300, height = 64, max = Math.max.apply(null, values.concat([1]));
    var root = svg("svg", { viewBox: "0 0 " + width + " " + height, preserveAspectRatio: "none", role: "img" });
    root.append(svg("line", { class: "axis", x1: 0, y1: height - 1, x2: width, y2: height - 1 }));
    if (values.length > 1) {
      var step = width / (historyLength - 1), offset = width - step * (values.length - 1);
      var points = values.map(function (v, i) {
        return (offset + i * step).toFixed(1) + "," + (height - 2 - (v / max) * (height - 14)).toFixed(1);
      });
      root.append(svg("polygon", { class: "area", points: offset.toFixed(1) + "," + (height - 1) + " " + points.join(" ") + " " + width + "," + (height - 1) }));
      root.append(svg("polyline", { class: "line", points: points.join(" ") }));
    }
    return root;
  }
  function keyTable(rows, empty, columns) {
    if (rows.length === 0) return el("div", "empty", [empty]);
    var head = el("tr", "", columns.map(function (c) { return el("th", c[2] ? "num" : "", [c[0]]); }));
    var body = rows.map(function (row) {
      var tr = el("tr", row.stuck ? "stuck" : "", columns.map(function (c) {
        var td = el("td", c[3] || (c[2] ? "num" : ""), [c[1](row)]);
        if (c[3] === "key" || c[3] === "path") td.title = c[1](row);
        return td;
      }));
      tr.dataset.key = row.key;
      return tr;
    });
    return el("table", "", [el("thead", "", [head]), el("tbody", "", body)]);
  }
  var keyColumn = ["key", function (k) { return k.key; }, false, "key"];
  var pathColumn = ["dispatcher", function (k) { return k.path; }, false, "path"];
  var columns = [
    keyColumn, pathColumn,
    ["waiting", function (k) { return num(k.depth); }, true],
    ["oldest", function (k) { return k.oldest > 0 ? age(k.oldest) : "–"; }, true, "num age"],
    ["req/s", function (k) { return num(k.rate); }, true],
    ["failures", function (k) { return k.failures + (k.restarts > 0 ? " (" + k.restarts + " restarts)" : ""); }, true]
  ];
  function renderHot() {
    if (!last) return;
    Array.prototype.forEach.call(document.querySelectorAll("nav.tabs button"), function (button) {
      button.className = button.dataset.tab === tab ? "active" : "";
    });
    $("hot").replaceChildren(keyTable(last.hot[tab], emptyText[tab], columns));
  }
  function render(state) {
    last = state;
    lastAt = Date.now();
    $("name").textContent = state.name;
    document.title = state.name + " · effect-dispatcher inspector";
    setStatus(state.status);
    var live = 0, rate = 0, failures = 0, rejected = 0;
    state.levels.forEach(function (level) {
      live += level.live; failures += level.failures;
      rejected += level.rejected.tooManyRequests + level.rejected.unavailable + level.rejected.requestTimeout + level.rejected.childFailed;
    });
    rate = state.levels.length > 0 ? state.levels[0].rate : 0;
    $("summary").replaceChildren(
      card("keys", num(state.keys), "summary-keys"),
      card("dispatchers", num(state.dispatchers.length + state.omittedDispatchers), "summary-dispatchers"),
      card("live children", num(live), "summary-live"),
      card("accepted/s (root)", num(rate), "summary-rate"),
      card("stuck keys", state.stuck.length >= state.top ? state.top + "+" : String(state.stuck.length), "summary-stuck"),
      card("child failures", num(failures), "summary-failures"),
      card("refused or timed out", num(rejected), "summary-rejected")
    );
    $("levels").replaceChildren.apply($("levels"), state.levels.map(function (level) {
      var values = history[level.depth] || (history[level.depth] = []);
      values.push(level.rate);
      if (values.length > historyLength) values.shift();
      var node = el("div", "level", [
        el("div", "title", [el("span", "", ["level " + level.depth + ": " + level.names.join(", ")]), el("span", "", [num(level.rate) + " req/s"])]),
        el("div", "figures", [level.dispatchers + " dispatcher" + (level.dispatchers === 1 ? "" : "s") + " · " + num(level.keys) + " keys · " +
          num(level.live) + " live · " + num(level.accepted) + " accepted · " + level.failures + " failures · " +
          level.rejected.tooManyRequests + " full · " + level.rejected.requestTimeout + " timed out"]),
        chart(values),
        el("div", "scale", ["last " + values.length + " of " + historyLength + " refreshes · peak " + num(Math.max.apply(null, values)) + " req/s"])
      ]);
      node.dataset.depth = level.depth;
      return node;
    }));
    var stuckAfter = state.stuckAfter === null ? "the requestTimeout of each level" : age(state.stuckAfter);
    $("stuck-count").textContent = "(oldest request older than " + stuckAfter + ")";
    $("stuck").replaceChildren(keyTable(state.stuck, "no key is stuck", columns));
    renderHot();
    var tree = el("tbody", "", state.dispatchers.map(function (d) {
      var name = el("td", "path", [d.path]);
      name.style.paddingLeft = (8 + d.depth * 18) + "px";
      name.title = d.path;
      var row = el("tr", "", [name, el("td", "num", [num(d.keys)]), el("td", "num", [num(d.live)]), el("td", "num", [num(d.accepted)]),
        el("td", "num", [num(d.rate)]), el("td", "num", [d.failures]),
        el("td", "num", [d.rejected.tooManyRequests + " / " + d.rejected.requestTimeout + " / " + d.rejected.unavailable + " / " + d.rejected.childFailed])]);
      row.dataset.path = d.path;
      return row;
    }));
    var head = el("tr", "", ["dispatcher", "keys", "live", "accepted", "req/s", "failures", "full / timed out / unavailable / failed"].map(function (h, i) {
      return el("th", i === 0 ? "" : "num", [h]);
    }));
    $("dispatchers").replaceChildren(el("thead", "", [head]), tree);
    $("omitted").textContent = state.omittedDispatchers > 0 ? "and " + state.omittedDispatchers + " more dispatchers not listed" : "";
    $("failures").replaceChildren.apply($("failures"), state.failures.length === 0 ? [el("li", "empty", ["no child has failed since the page was mounted"])] :
      state.failures.map(function (f) {
        var item = el("li", "", [
          el("div", "head", [el("span", "", [age(Math.max(0, state.at - f.at)) + " ago"]), el("span", "key", [f.key]), el("span", "path", [f.path]),
            el("span", "", ["child #" + f.incarnation]), f.gaveUp ? el("span", "gaveup", ["gave up: no successor"]) : el("span", "", ["restarting"])]),
          el("details", "", [el("summary", "", ["cause"]), el("pre", "", [f.cause])])
        ]);
        return item;
      }));
  }
  function tick() {
    if (last) $("updated").textContent = "updated " + age(Date.now() - lastAt) + " ago";
  }
  setInterval(tick, 500);
  Array.prototype.forEach.call(document.querySelectorAll("nav.tabs button"), function (button) {
    button.addEventListener("click", function () { tab = button.dataset.tab; renderHot(); });
  });
  function follow() {
    var source = new EventSource(config.prefix + "/events");
    source.onmessage = function (event) { render(JSON.parse(event.data)); };
    source.addEventListener("end", function (event) {
      source.close();
      try { render(JSON.parse(event.data)); } catch (e) {}
      setStatus("stopped", "the dispatcher stopped; the events ended");
    });
    source.onerror = function () { if (source.readyState !== 2) setStatus("reconnecting", "lost the events; trying again"); };
  }
  fetch(config.prefix + "/state", { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) { setStatus("error", "GET " + config.prefix + "/state answered " + response.status); throw response.status; }
      return response.json();
    })
    .then(function (state) { render(state); follow(); })
    .catch(function () {});
})();
`

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("base64")

/**
 * The Content-Security-Policy the page is served with: its own script and
 * style only, requests to its own origin only.
 *
 * @internal
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src 'sha256-${sha256(script)}'`,
  `style-src 'sha256-${sha256(style)}'`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

/** JSON inside a `<script type="application/json">`: nothing in it can close the tag. */
const embedded = (value: unknown): string =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026")

/**
 * The page for an inspector mounted at `prefix`.
 *
 * @internal
 */
export const page = (prefix: string): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>effect-dispatcher inspector</title>
<style>${style}</style>
</head>
<body>
<header>
<h1><span id="name">…</span><small>effect-dispatcher inspector</small></h1>
<span id="status" class="pill">connecting</span>
<span id="updated"></span>
</header>
<main>
<section><h2>Totals</h2><div id="summary" class="cards"></div></section>
<section><h2>Levels <span class="count">(requests accepted per second, one point per refresh)</span></h2><div id="levels" class="levels"></div></section>
<div class="grid2">
<section><h2>Stuck keys <span class="count" id="stuck-count"></span></h2><div id="stuck"></div></section>
<section><h2>Hot keys</h2>
<nav class="tabs"><button data-tab="rate" class="active">req/s</button><button data-tab="depth">waiting</button><button data-tab="oldest">oldest</button><button data-tab="failures">failures</button></nav>
<div id="hot"></div></section>
</div>
<section><h2>Dispatchers</h2><table id="dispatchers"></table><p id="omitted" class="empty"></p></section>
<section><h2>Recent failures</h2><ol id="failures"></ol></section>
<footer>read-only · top keys only · keys as the application chose to show them</footer>
</main>
<script type="application/json" id="config">${embedded({ prefix })}</script>
<script>${script}</script>
</body>
</html>
`

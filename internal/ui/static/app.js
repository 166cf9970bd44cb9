// herd dashboard: plain JavaScript, no build step, no external asset.
// Every value from the cluster is attacker-controlled (names, labels, KV
// keys and values): it reaches the page only as text (textContent, text
// nodes, attribute values set one by one), never as HTML.
"use strict";

const ui = {
  token: sessionStorage.getItem("herd-token") || "",
  samples: [],        // metrics samples: {t, services: {name: {req, failed, buckets}}}
  lastEvent: 0,
  refreshTimer: null,
};

// ---- DOM helpers ----
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function table(headers, rows, caption) {
  return el("div", { class: "table-wrap" },
    el("table", {}, caption ? el("caption", { class: "muted", text: caption }) : null,
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))));
}
function card(label, value, cls) {
  return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value " + (cls || ""), text: value }));
}
const good = new Set(["alive", "ready", "running", "healthy", "complete", "yes"]);
const bad = new Set(["failed", "down", "lost", "unhealthy", "panic", "ejected"]);
function state(s) { return el("span", { class: "nowrap " + (good.has(s) ? "good" : bad.has(s) ? "bad" : "warn"), text: s || "-" }); }
function link(href, text) { return el("a", { href: href, text: text }); }
function ago(t) {
  if (!t) return "-";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  return s < 90 ? Math.round(s) + "s ago" : s < 5400 ? Math.round(s / 60) + "m ago" : Math.round(s / 3600) + "h ago";
}
function fmt(n, digits) { return n === null || n === undefined || Number.isNaN(n) ? "-" : Number(n).toFixed(digits ?? 1); }

// ---- API ----
class AuthError extends Error {}
async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  if (ui.token) o.headers["Authorization"] = "Bearer " + ui.token;
  const r = await fetch(path, o);
  if (r.status === 401 || r.status === 403) {
    let msg = "";
    try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
    if (r.status === 401) showLogin(msg);
    throw new AuthError(msg || r.statusText);
  }
  if (r.status === 404 && r.headers.get("Content-Length") === "0") return null;
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  const type = r.headers.get("Content-Type") || "";
  return type.includes("json") ? r.json() : r.text();
}
function showLogin(why) {
  document.getElementById("login").hidden = false;
  document.getElementById("why").textContent = why || "";
}
document.getElementById("login").addEventListener("submit", (e) => {
  e.preventDefault();
  ui.token = document.getElementById("token").value.trim();
  sessionStorage.setItem("herd-token", ui.token);
  document.getElementById("token").value = "";
  document.getElementById("login").hidden = true;
  follow();
  render();
});

// ---- metrics: request rate, error ratio and latency per service ----
function parseMetrics(text) {
  const out = {};
  const get = (s) => (out[s] ||= { req: 0, failed: 0, buckets: {} });
  for (const line of text.split("\n")) {
    let m = line.match(/^herd_gateway_requests_total\{service="([^"]*)"\} (\S+)/);
    if (m) { get(m[1]).req += Number(m[2]); continue; }
    m = line.match(/^herd_gateway_failed_requests_total\{service="([^"]*)"\} (\S+)/);
    if (m) { get(m[1]).failed += Number(m[2]); continue; }
    m = line.match(/^herd_gateway_backend_response_seconds_bucket\{(.*)\} (\S+)/);
    if (m) {
      const svc = (m[1].match(/service="([^"]*)"/) || [])[1];
      const le = (m[1].match(/le="([^"]*)"/) || [])[1];
      if (svc !== undefined && le !== undefined) { const b = get(svc).buckets; b[le] = (b[le] || 0) + Number(m[2]); }
    }
  }
  return out;
}
async function sampleMetrics() {
  try {
    const text = await api("/v1/metrics");
    ui.samples.push({ t: Date.now(), services: parseMetrics(text) });
    if (ui.samples.length > 180) ui.samples.shift(); // about 6 minutes at 2 s
  } catch (e) { /* shown by the views */ }
}
// series returns per-interval values of f(prev, cur) for a service.
function series(name, f) {
  const out = [];
  for (let i = 1; i < ui.samples.length; i++) {
    const a = ui.samples[i - 1], b = ui.samples[i];
    const pa = a.services[name], pb = b.services[name];
    out.push(pa && pb ? f(pa, pb, (b.t - a.t) / 1000) : null);
  }
  return out;
}
function rate(p, c, dt) { return Math.max(0, c.req - p.req) / dt; }
function errRatio(p, c) { const r = c.req - p.req; return r > 0 ? Math.max(0, c.failed - p.failed) / r : 0; }
function quantile(q) {
  return (p, c) => {
    const les = Object.keys(c.buckets).sort((x, y) => (x === "+Inf" ? Infinity : Number(x)) - (y === "+Inf" ? Infinity : Number(y)));
    const inf = (c.buckets["+Inf"] || 0) - (p.buckets["+Inf"] || 0);
    if (inf <= 0) return null;
    for (const le of les) {
      if ((c.buckets[le] || 0) - (p.buckets[le] || 0) >= q * inf) return le === "+Inf" ? null : Number(le) * 1000;
    }
    return null;
  };
}
function spark(values, label, unit) {
  const v = values.filter((x) => x !== null);
  const last = v.length ? v[v.length - 1] : null;
  const maxV = Math.max(1e-9, ...v);
  const pts = values.map((x, i) => x === null ? null : `${(i / Math.max(1, values.length - 1)) * 100},${30 - (x / maxV) * 28}`).filter(Boolean).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 100 30"); svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img"); svg.setAttribute("aria-label", label);
  const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  pl.setAttribute("points", pts); svg.appendChild(pl);
  return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: last === null ? "-" : fmt(last, 2) + " " + unit }), svg);
}
function nowRates() {
  const n = ui.samples.length;
  if (n < 2) return { rps: null, err: null };
  const a = ui.samples[n - 2], b = ui.samples[n - 1], dt = (b.t - a.t) / 1000;
  let req = 0, failed = 0;
  for (const [name, cur] of Object.entries(b.services)) {
    const prev = a.services[name];
    if (!prev) continue;
    req += Math.max(0, cur.req - prev.req); failed += Math.max(0, cur.failed - prev.failed);
  }
  return { rps: req / dt, err: req > 0 ? failed / req : 0 };
}

// ---- views ----
const views = {
  async overview(v) {
    const [self, members, raft, services, gw, events] = await Promise.all([
      api("/v1/agent/self"), api("/v1/agent/members"), api("/v1/operator/raft/configuration").catch(() => null),
      api("/v1/services").catch(() => []), api("/v1/gateway/services").catch(() => []), api("/v1/events").catch(() => [])]);
    const alive = members.filter((m) => m.Status === "alive").length;
    const failed = members.filter((m) => m.Status === "failed").length;
    const aliveNames = new Set(members.filter((m) => m.Status === "alive").map((m) => m.Name));
    const voters = raft ? raft.Servers.filter((s) => s.Voter) : [];
    const up = voters.filter((s) => aliveNames.has(s.Node)).length;
    const degraded = (gw || []).filter((s) => s.panic || s.backends.some((b) => !b.healthy)).length;
    const r = nowRates();
    v.append(el("h1", { text: "Cluster" }),
      el("div", { class: "cards" },
        card("Leader", self.Leader || "none", self.Leader ? "" : "bad"),
        card("Servers in quorum", `${up} of ${voters.length}`, up * 2 > voters.length ? "good" : "bad"),
        card("Nodes up", String(alive), "good"),
        card("Nodes failed", String(failed), failed ? "bad" : ""),
        card("Services", String((services || []).length)),
        card("Degraded", String(degraded), degraded ? "bad" : ""),
        card("Requests/s now", fmt(r.rps)),
        card("Error rate now", r.err === null ? "-" : fmt(r.err * 100) + " %", r.err > 0.01 ? "bad" : "")),
      el("h2", { text: "Recent events" }), eventTable((events || []).slice(-12).reverse()));
  },
  async nodes(v) {
    const [nodes, members, replicas] = await Promise.all([api("/v1/nodes?usage"), api("/v1/agent/members"), api("/v1/replicas").catch(() => [])]);
    const count = {};
    for (const r of replicas || []) if (r.desired !== "stop") count[r.node] = (count[r.node] || 0) + 1;
    v.append(el("h1", { text: "Nodes" }),
      table(["Name", "State", "Zone", "Labels", "CPU in use", "CPU reserved/offered", "Memory MiB reserved/offered", "Replicas", "Eligible"],
        (nodes || []).map((n) => [n.name, state(n.status), n.zone || "-",
          Object.entries(n.labels || {}).map(([k, val]) => k + "=" + val).join(" ") || "-",
          n.usage_cpu === undefined ? "-" : fmt(n.usage_cpu, 0) + "m", `${n.used.cpu || 0}/${n.resources.cpu}`, `${n.used.memory_mb || 0}/${n.resources.memory_mb}`,
          String(count[n.name] || 0), n.drain ? state("draining") : n.eligible ? "yes" : "no"])),
      el("h2", { text: "Members (gossip)" }),
      table(["Name", "Status", "Role", "Zone", "API", "Version"],
        members.map((m) => [m.Name, state(m.Status), m.Role, m.Zone || "-", m.APIAddr, m.Version])));
  },
  async services(v) {
    const [services, gw] = await Promise.all([api("/v1/services"), api("/v1/gateway/services").catch(() => [])]);
    const view = Object.fromEntries((gw || []).map((s) => [s.name, s]));
    v.append(el("h1", { text: "Services" }),
      table(["Name", "Routes", "Backends healthy", "Panic", "Requests/s"],
        (services || []).map((s) => {
          const g = view[s.name];
          const healthy = g ? g.backends.filter((b) => b.healthy).length + "/" + g.backends.length : "-";
          const rs = series(s.name, rate);
          return [link("#/service/" + encodeURIComponent(s.name), s.name),
            (s.routes || []).map((r) => (r.host || "*") + (r.path_prefix || "") + (r.port ? ":" + r.port : "")).join(" "),
            healthy, g && g.panic ? state("panic") : "no", fmt(rs.length ? rs[rs.length - 1] : null)];
        })));
  },
  async service(v, name) {
    const [svc, gw, replicas, events] = await Promise.all([api("/v1/service/" + encodeURIComponent(name)),
      api("/v1/gateway/services").catch(() => []), api("/v1/replicas?service=" + encodeURIComponent(name)).catch(() => []),
      api("/v1/events").catch(() => [])]);
    const g = (gw || []).find((s) => s.name === name);
    v.append(el("h1", {}, "Service ", el("code", { text: name })),
      el("div", { class: "charts" },
        spark(series(name, rate), "Requests/s", "/s"),
        spark(series(name, (p, c) => errRatio(p, c) * 100), "Errors", "%"),
        spark(series(name, quantile(0.5)), "p50 latency", "ms"),
        spark(series(name, quantile(0.99)), "p99 latency", "ms")),
      el("h2", { text: "Backends, as this agent's gateway sees them" }),
      g ? table(["Backend", "Health", "Ejected", "Ejections", "In flight", "Req/s", "Last error"],
        g.backends.map((b) => [b.address, state(b.healthy ? "healthy" : "unhealthy"), b.ejected ? state("ejected") : "no",
          String(b.ejections || 0), String(b.in_flight), fmt(b.rate_per_second), b.last_error || "-"]))
        : el("p", { class: "muted", text: "This agent runs no gateway, or the service has no backend here." }),
      ...(replicas && replicas.length ? [el("h2", { text: "Replicas" }),
        table(["Replica", "Node", "State", "Health", "Restarts", "Version"],
          replicas.map((r) => [r.id, r.node || "-", state(r.state), state(r.health), String(r.restarts || 0), String(r.version)]))] : []),
      el("h2", { text: "Events" }),
      eventTable((events || []).filter((e) => e.subject === name || (e.attrs && e.attrs.service === name)).slice(-15).reverse()),
      el("h2", { text: "Spec" }), el("pre", { text: JSON.stringify(svc, null, 2) }));
  },
  async kv(v, prefix) {
    prefix = prefix || "";
    const keys = await api("/v1/kv/" + encodePath(prefix) + "?keys&separator=/").catch((e) => { if (e instanceof AuthError) throw e; return []; }) || [];
    const crumbs = [link("#/kv/", "(root)")];
    let acc = "";
    for (const part of prefix.split("/").filter(Boolean)) { acc += part + "/"; crumbs.push(" / ", link("#/kv/" + encodeURIComponent(acc), part)); }
    const out = el("div");
    const form = el("form", { class: "kv", onsubmit: async (e) => {
      e.preventDefault();
      const k = form.querySelector("#kv-key").value, val = form.querySelector("#kv-value").value;
      try { await api("/v1/kv/" + encodePath(k), { method: "PUT", body: val }); form.querySelector("#kv-msg").textContent = "written"; render(); }
      catch (err) { form.querySelector("#kv-msg").textContent = err.message; }
    } },
      el("label", { for: "kv-key", text: "Key" }), el("input", { id: "kv-key", value: prefix, required: "" }),
      el("label", { for: "kv-value", text: "Value" }), el("textarea", { id: "kv-value", rows: "3" }),
      el("div", {}, el("button", { text: "Write" }), " ", el("span", { id: "kv-msg", class: "muted" })));
    v.append(el("h1", { text: "KV" }), el("p", {}, crumbs),
      table(["Key"], keys.map((k) => [k.endsWith("/") ? link("#/kv/" + encodeURIComponent(k), k.slice(prefix.length))
        : el("a", { href: "#/kv/" + encodeURIComponent(prefix), "data-key": k, onclick: (e) => { e.preventDefault(); showValue(out, k); }, text: k.slice(prefix.length) })])),
      out, el("h2", { text: "Write a key (needs kv write)" }), form);
  },
  async raft(v) {
    const [raft, self] = await Promise.all([api("/v1/operator/raft/configuration?stats"), api("/v1/agent/self")]);
    const r = self.Raft || {};
    v.append(el("h1", { text: "Raft" }),
      el("div", { class: "cards" }, card("Term", r.term || "-"), card("Commit index", r.commit_index || "-"),
        card("Applied index", r.applied_index || "-"), card("This agent", (self.Name || "") + " (" + (r.state || self.Role) + ")"),
        card("Last contact", r.last_contact || "-")),
      el("h2", { text: "Peers" }),
      table(["Node", "Address", "Leader", "Voter", "Term", "Applied", "Lag (entries)"], raft.Servers.map((s) => [s.Node, s.Address,
        s.Leader ? state("yes") : "", s.Voter ? "yes" : "no", s.Term || "-", s.AppliedIndex ? String(s.AppliedIndex) : "-",
        s.StatsError ? el("span", { class: "bad", text: "unreachable" }) : s.Lag === undefined ? "-" : el("span", { class: s.Lag > 100 ? "bad" : "", text: String(s.Lag) })])));
  },
  async events(v) {
    const events = await api("/v1/events");
    v.append(el("h1", { text: "Events" }), eventTable((events || []).slice(-200).reverse()));
  },
};
function encodePath(p) { return p.split("/").map(encodeURIComponent).join("/"); }
async function showValue(out, key) {
  out.replaceChildren();
  try {
    const val = await api("/v1/kv/" + encodePath(key) + "?raw");
    out.append(el("h2", {}, "Value of ", el("code", { text: key })), el("pre", { class: "kv-value", text: val === null ? "(missing)" : String(val) }));
  } catch (e) { out.append(el("p", { class: "bad", text: e.message })); }
}
function eventTable(events) {
  if (!events.length) return el("p", { class: "muted", text: "No events yet." });
  return table(["#", "When", "Type", "Subject", "What"], events.map((e) => [String(e.index), ago(e.time),
    el("span", { class: "nowrap " + (/failed|lost|ejected|panic|revoked/.test(e.type) ? "bad" : /started|joined|restored|completed|elected/.test(e.type) ? "good" : ""), text: e.type }),
    e.subject, e.message || ""]));
}

// ---- routing and live updates ----
async function render() {
  const hash = location.hash || "#/";
  const [, name, ...rest] = hash.slice(1).split("/");
  const view = name || "overview";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === (view === "service" ? "services" : view));
  const v = el("section", { id: "view", "aria-live": "polite" });
  try {
    const arg = decodeURIComponent(rest.join("/"));
    await (views[view] || views.overview)(v, arg);
    document.getElementById("login").hidden = true;
  } catch (e) {
    if (!(e instanceof AuthError)) v.append(el("p", { class: "bad", text: "Could not read the cluster: " + e.message }));
  }
  // Keep the user's place in a form while re-rendering.
  const old = document.getElementById("view");
  const focused = document.activeElement && old.contains(document.activeElement) && ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (!focused) old.replaceWith(v);
}
function scheduleRender() {
  clearTimeout(ui.refreshTimer);
  ui.refreshTimer = setTimeout(render, 150);
}
// follow reads the event stream and re-renders on every event, so the page
// updates itself; it reconnects after a break.
async function follow() {
  if (ui.following) return;
  ui.following = true;
  const live = document.getElementById("live");
  while (true) {
    try {
      const headers = ui.token ? { Authorization: "Bearer " + ui.token } : {};
      const r = await fetch("/v1/events?follow&index=" + ui.lastEvent, { headers });
      if (!r.ok) throw new Error(r.statusText);
      live.classList.add("on");
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim(); buf = buf.slice(i + 1);
          if (!line) continue;
          try { const ev = JSON.parse(line); ui.lastEvent = Math.max(ui.lastEvent, ev.index || 0); } catch (e) { continue; }
          scheduleRender();
        }
      }
    } catch (e) { /* reconnect below */ }
    live.classList.remove("on");
    await new Promise((res) => setTimeout(res, 2000));
  }
}
window.addEventListener("hashchange", () => { render(); document.getElementById("main").focus(); });
setInterval(async () => { await sampleMetrics(); const view = (location.hash.split("/")[1] || "overview"); if (["overview", "services", "service"].includes(view)) render(); }, 2000);
sampleMetrics().then(render);
follow();

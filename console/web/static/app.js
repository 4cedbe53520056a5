// The console's script: fills the pages from the JSON API and refreshes
// them on the server's events. No framework, no build step.
"use strict";

const $ = (s, el = document) => el.querySelector(s);
let csrf = "";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function message(text, isError) {
  const m = $("#message");
  m.textContent = text;
  m.className = "message" + (isError ? " error" : "");
  m.hidden = !text;
}

// api calls the JSON API; a write sends the session's CSRF token. It
// resolves to {status, body}; a 401 goes to the login page.
async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && !path.startsWith("/api/login")) location.href = "/login";
  return { status: r.status, body: data };
}

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function duration(s) {
  if (s === undefined || s === null) return "";
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

// load is the Sys Agent's headline in one line ("" while it is off); a
// figure its collector did not give is left out.
function load(h) {
  if (!h) return "";
  const parts = [];
  if (h.cpu_percent != null) parts.push(`CPU ${Math.round(h.cpu_percent)}%`);
  if (h.load1 != null) parts.push(`load ${h.load1.toFixed(1)}`);
  if (h.memory_used_percent != null) parts.push(`mem ${Math.round(h.memory_used_percent)}%`);
  if (h.disk_busy_percent != null) parts.push(`disk ${Math.round(h.disk_busy_percent)}%`);
  if (h.network_rx_bytes_per_s != null) parts.push(`rx ${bytes(Math.round(h.network_rx_bytes_per_s))}/s`);
  if (h.network_tx_bytes_per_s != null) parts.push(`tx ${bytes(Math.round(h.network_tx_bytes_per_s))}/s`);
  return parts.join(" · ");
}

function stateBadge(state) {
  return el("span", { class: "state " + state, text: state.replace("_", " ") });
}

// live calls refresh on every change the server reports.
function live(refresh) {
  const es = new EventSource("/api/events");
  let timer = null;
  es.addEventListener("fleet", () => {
    $("#live") && $("#live").classList.remove("down");
    clearTimeout(timer);
    timer = setTimeout(refresh, 100);
  });
  es.onerror = () => { $("#live") && $("#live").classList.add("down"); };
}

// ---- login
function loginPage() {
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/login", { user: $("#login-user").value, password: $("#login-password").value });
    if (r.status === 200) location.href = "/";
    else message(r.body.error || "login failed", true);
  });
}

// ---- fleet
function fleetPage() {
  const st = { sort: "host", order: "asc", page: 1, perPage: 50 };
  const tbody = $("#hosts tbody");
  async function refresh() {
    const q = new URLSearchParams({ sort: st.sort, order: st.order, page: st.page, per_page: st.perPage });
    if ($("#f-q").value) q.set("q", $("#f-q").value);
    if ($("#f-state").value) q.set("state", $("#f-state").value);
    if ($("#f-label").value) q.set("label", $("#f-label").value);
    const r = await api("GET", "/api/hosts?" + q);
    if (r.status !== 200) { message(r.body.error, true); return; }
    const rows = r.body.hosts.map((h) => {
      const rev = el("td");
      rev.append(`${h.applied_revision || "–"} / ${h.config_revision || "–"}`);
      if (h.config_stale) rev.append(" ", el("span", { class: "stale", text: "not applied" }));
      const state = el("td", {}, stateBadge(h.state));
      if (h.reason) state.append(el("div", { class: "reason", text: h.reason }));
      const labels = Object.entries(h.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
      return el("tr", { "data-host": h.host, "data-state": h.state },
        el("td", {}, el("a", { href: "/hosts/" + encodeURIComponent(h.host), text: h.host })),
        state, el("td", { text: h.version || "" }), el("td", { text: duration(h.uptime_seconds) }),
        el("td", { text: h.files }), el("td", { text: h.files_in_error }), el("td", { text: bytes(h.lag_bytes) }),
        rev, el("td", { class: "load", text: load(h.sys) }), el("td", { text: labels }));
    });
    tbody.replaceChildren(...rows);
    const pages = Math.max(1, Math.ceil(r.body.total / st.perPage));
    $("#pageinfo").textContent = `page ${st.page} of ${pages} · ${r.body.total} hosts`;
    $("#prev").disabled = st.page <= 1;
    $("#next").disabled = st.page >= pages;
    $("#counts").textContent = Object.entries(r.body.states).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(" · ");
    document.querySelectorAll("#hosts th[data-sort]").forEach((th) => th.classList.toggle("sorted", th.dataset.sort === st.sort));
  }
  document.querySelectorAll("#hosts th[data-sort]").forEach((th) => th.addEventListener("click", () => {
    st.order = st.sort === th.dataset.sort && st.order === "asc" ? "desc" : "asc";
    st.sort = th.dataset.sort;
    refresh();
  }));
  $("#filter").addEventListener("input", () => { st.page = 1; refresh(); });
  $("#filter").addEventListener("submit", (ev) => ev.preventDefault());
  $("#prev").addEventListener("click", () => { st.page--; refresh(); });
  $("#next").addEventListener("click", () => { st.page++; refresh(); });
  refresh();
  live(refresh);
}

// ---- host
function hostPage() {
  const host = document.body.dataset.host;
  let revision = 0;
  let dirty = false;
  const tbody = $("#entries tbody");

  function entryRow(e) {
    const rf = el("select", { class: "e-readfrom" }, el("option", { value: "", text: "default" }),
      el("option", { text: "beginning" }), el("option", { text: "end" }));
    rf.value = e.read_from || "";
    const del = el("button", { type: "button", class: "e-remove", text: "Remove" });
    del.addEventListener("click", () => { tr.remove(); dirty = true; });
    const tr = el("tr", {}, el("td", {}, el("input", { class: "e-path", value: e.path || "", placeholder: "/var/log/app.log" })),
      el("td", {}, el("input", { class: "e-topic", value: e.topic || "", placeholder: "topic" })),
      el("td", {}, rf), el("td", {}, del));
    tr.addEventListener("input", () => { dirty = true; });
    // The fields the form does not show are kept as they were.
    original.set(tr, e);
    return tr;
  }
  const original = new WeakMap();
  function formEntries() {
    return [...tbody.rows].map((tr) => {
      const e = Object.assign({}, original.get(tr) || {}, { path: $(".e-path", tr).value.trim(), topic: $(".e-topic", tr).value.trim() });
      delete e.read_from;
      if ($(".e-readfrom", tr).value) e.read_from = $(".e-readfrom", tr).value;
      return e;
    });
  }
  function showConfig(c) {
    revision = c.revision;
    $("#config-rev").textContent = c.revision || "none (no key yet)";
    tbody.replaceChildren(...c.entries.map(entryRow));
    const sel = $("#tail-path"), was = sel.value;
    sel.replaceChildren(el("option", { value: "", text: "every entry" }), ...c.entries.map((e) => el("option", { value: e.path, text: e.path })));
    sel.value = c.entries.some((e) => e.path === was) ? was : "";
    $("#raw").value = c.raw ? JSON.stringify(JSON.parse(c.raw), null, 2) : "[]";
    const probs = c.error ? [c.error] : c.problems || [];
    $("#config-problems").textContent = probs.length ? "The agent ignores: " + probs.join("; ") : "";
    $("#config-problems").hidden = !probs.length;
    dirty = false;
  }
  async function refresh(withConfig) {
    const r = await api("GET", "/api/hosts/" + encodeURIComponent(host));
    if (r.status === 404 && withConfig) {
      showConfig({ revision: 0, entries: [], raw: "" });
      message(r.body.error + ". Saving entries creates its collect_config.");
      return;
    }
    if (r.status !== 200) { message(r.body.error, true); return; }
    const h = r.body.host;
    $("#host-state").replaceWith(Object.assign(stateBadge(h.state), { id: "host-state" }));
    $("#host-reason").textContent = h.reason || "";
    const meta = [];
    if (h.version) meta.push("version " + h.version);
    if (h.uptime_seconds) meta.push("up " + duration(h.uptime_seconds));
    meta.push(`config revision applied ${h.applied_revision || "–"}, current ${h.config_revision || "–"}` + (h.config_stale ? " (not applied)" : ""));
    $("#host-meta").textContent = meta.join(" · ");
    if (withConfig || !dirty) showConfig(r.body.config);
    $("#files tbody").replaceChildren(...r.body.files.map((f) => el("tr", {},
      el("td", { text: f.path }), el("td", { text: f.topic }), el("td", { text: f.state }),
      el("td", { text: bytes(f.lag_bytes) }), el("td", { text: f.lines_read }), el("td", { text: f.lines_acked }),
      el("td", { text: f.rotations || 0 }), el("td", { text: f.last_error || "" }))));
  }
  // Live tail: the last tailKeep lines, newest at the bottom.
  const tailKeep = 500;
  let tail = null;
  function stopTail(state) {
    if (tail) tail.close();
    tail = null;
    $("#tail-start").disabled = false;
    $("#tail-stop").disabled = true;
    $("#tail-state").textContent = state || "";
  }
  function tailAppend(text) {
    const pre = $("#tail");
    pre.append(text + "\n");
    while (pre.childNodes.length > tailKeep) pre.firstChild.remove();
    pre.scrollTop = pre.scrollHeight;
  }
  $("#tail-start").addEventListener("click", () => {
    const path = $("#tail-path").value;
    tail = new EventSource(`/api/hosts/${encodeURIComponent(host)}/tail` + (path ? "?path=" + encodeURIComponent(path) : ""));
    $("#tail-start").disabled = true;
    $("#tail-stop").disabled = false;
    $("#tail-state").textContent = "connecting…";
    tail.addEventListener("ready", (ev) => { $("#tail-state").textContent = "following " + JSON.parse(ev.data).topics.join(", "); });
    tail.addEventListener("line", (ev) => { const l = JSON.parse(ev.data); tailAppend(`${l.path}:${l.offset}  ${l.value}`); });
    tail.addEventListener("skipped", (ev) => tailAppend(`… ${JSON.parse(ev.data).lines} lines skipped (too many a second to show)`));
    tail.addEventListener("error", (ev) => { if (ev.data) tailAppend("kafka: " + JSON.parse(ev.data).error); });
    tail.onerror = () => { if (tail && tail.readyState === EventSource.CLOSED) stopTail("unavailable (see GET /api/hosts/" + host + "/tail)"); };
  });
  $("#tail-stop").addEventListener("click", () => stopTail("stopped"));

  $("#add-entry").addEventListener("click", () => { tbody.append(entryRow({})); dirty = true; });
  $("#reload").addEventListener("click", () => { message(""); refresh(true); });
  $("#raw-toggle").addEventListener("change", () => {
    const raw = $("#raw-toggle").checked;
    if (raw) $("#raw").value = JSON.stringify(formEntries(), null, 2);
    $("#raw").hidden = !raw;
    $("#entries").hidden = raw;
    $("#add-entry").hidden = raw;
  });
  $("#raw").addEventListener("input", () => { dirty = true; });
  $("#save").addEventListener("click", async () => {
    let entries;
    if ($("#raw-toggle").checked) {
      try { entries = JSON.parse($("#raw").value); } catch (e) { message("raw JSON: " + e.message, true); return; }
    } else entries = formEntries();
    const r = await api("PUT", `/api/hosts/${encodeURIComponent(host)}/entries`, { revision, entries });
    if (r.status === 200) {
      showConfig(r.body.config);
      message(`Saved: revision ${r.body.config.revision}.`);
    } else if (r.status === 409) {
      message(r.body.error + "\nCurrent value (revision " + r.body.current.revision + "):\n" + r.body.current.raw, true);
    } else {
      message(r.body.error + (r.body.problems ? "\n" + r.body.problems.join("\n") : ""), true);
    }
  });
  refresh(true);
  live(() => refresh(false));
}

// ---- bulk
function bulkPage() {
  let preview = null;
  function request() {
    const req = { filter: { q: $("#b-q").value, states: $("#b-state").value ? [$("#b-state").value] : [], labels: $("#b-label").value ? [$("#b-label").value] : [] },
      action: $("#b-action").value };
    if (req.action === "set") {
      req.entry = { path: $("#b-path").value.trim(), topic: $("#b-topic").value.trim() };
      if ($("#b-readfrom").value) req.entry.read_from = $("#b-readfrom").value;
    } else req.path = $("#b-path").value.trim();
    return req;
  }
  function show(hosts, results) {
    const res = Object.fromEntries((results || []).map((r) => [r.host, r.result]));
    $("#bulk-hosts tbody").replaceChildren(...hosts.map((h) => el("tr", { "data-host": h.host },
      el("td", { text: h.host }), el("td", {}, el("pre", { text: h.before || "(none)" })),
      el("td", {}, el("pre", { text: h.error ? h.error : h.changed ? h.after : "(unchanged)" })),
      el("td", { class: "result", text: res[h.host] || "" }))));
  }
  $("#bulk-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const req = request();
    const r = await api("POST", "/api/bulk/preview", req);
    if (r.status !== 200) { message(r.body.error + (r.body.problems ? "\n" + r.body.problems.join("\n") : ""), true); return; }
    preview = { req, hosts: r.body.hosts };
    show(r.body.hosts);
    const n = r.body.hosts.filter((h) => h.changed).length;
    message(`${r.body.hosts.length} hosts selected, ${n} would change.`);
    $("#b-apply").disabled = n === 0;
  });
  $("#b-apply").addEventListener("click", async () => {
    const req = Object.assign({}, preview.req, { revisions: Object.fromEntries(preview.hosts.map((h) => [h.host, h.revision])) });
    const r = await api("POST", "/api/bulk/apply", req);
    $("#b-apply").disabled = true;
    if (r.body.results) {
      show(preview.hosts, r.body.results);
      message(r.status === 200 ? "Applied." : "Not applied: a host's config changed since the preview. Preview again.", r.status !== 200);
    } else message(r.body.error, true);
  });
}

// ---- audit
function auditPage() {
  async function refresh() {
    const q = new URLSearchParams({ limit: 200 });
    if ($("#a-host").value) q.set("host", $("#a-host").value);
    const r = await api("GET", "/api/audit?" + q);
    if (r.status !== 200) { message(r.body.error, true); return; }
    $("#audit tbody").replaceChildren(...r.body.records.map((a) => el("tr", {},
      el("td", { text: new Date(a.time).toLocaleString() }), el("td", { text: a.user }), el("td", { text: a.action }),
      el("td", {}, el("a", { href: "/hosts/" + encodeURIComponent(a.host), text: a.host })),
      el("td", {}, el("pre", { text: diff(a.before, a.after) })))));
  }
  $("#audit-filter").addEventListener("input", refresh);
  $("#audit-filter").addEventListener("submit", (ev) => ev.preventDefault());
  refresh();
  live(refresh);
}

// ---- search
function searchPage() {
  const form = $("#search-form");
  if (!form) return; // not configured: the page says so
  let page = 1;
  // The form lives in the URL, so that a search can be linked and reloaded.
  const params = new URLSearchParams(location.search);
  for (const k of ["q", "host", "path", "index"]) $("#s-" + k).value = params.get(k) || "";
  const local = (iso) => { const d = new Date(iso); return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); };
  if (params.get("to")) {
    $("#s-range").value = "custom";
    $("#s-from").value = local(params.get("from"));
    $("#s-to").value = local(params.get("to"));
  } else if (params.get("from")) {
    $("#s-range").value = params.get("from");
  }
  page = Number(params.get("page")) || 1;
  const showCustom = () => { $("#s-custom").hidden = $("#s-range").value !== "custom"; };
  showCustom();
  $("#s-range").addEventListener("change", showCustom);

  function query() {
    const q = new URLSearchParams();
    for (const k of ["q", "host", "path", "index"]) if ($("#s-" + k).value.trim()) q.set(k, $("#s-" + k).value.trim());
    if ($("#s-range").value === "custom") {
      if ($("#s-from").value) q.set("from", new Date($("#s-from").value).toISOString());
      q.set("to", ($("#s-to").value ? new Date($("#s-to").value) : new Date()).toISOString());
    } else {
      q.set("from", $("#s-range").value);
    }
    if (page > 1) q.set("page", page);
    return q;
  }

  async function run() {
    const q = query();
    history.replaceState(null, "", "/search?" + q);
    const r = await api("GET", "/api/search?" + q);
    if (r.status !== 200) { message(r.body.error, true); return; }
    message("");
    const res = r.body;
    $("#s-summary").textContent = res.total + " lines from " + new Date(res.from).toLocaleString() +
      " to " + new Date(res.to).toLocaleString() + " (bars of " + res.interval + ")";
    histogram(res);
    $("#s-hits tbody").replaceChildren(...res.hits.map((h) => {
      const line = el("td", { class: "line" });
      // line_html is the line escaped by the server, with only <mark>
      // added: no markup of the line's own reaches the page.
      line.innerHTML = h.line_html;
      const ctx = el("a", { href: "#", class: "context", text: "lines around" });
      ctx.addEventListener("click", (ev) => { ev.preventDefault(); context(h); });
      return el("tr", {}, el("td", { text: new Date(h.time).toLocaleString() }), el("td", { text: h.host }),
        el("td", { text: h.path }), el("td", { text: h.offset }), line, el("td", {}, ctx));
    }));
    $("#s-pageno").textContent = res.pages ? "page " + res.page + " of " + res.pages : "";
    $("#s-prev").disabled = res.page <= 1;
    $("#s-next").disabled = res.page >= res.pages;
  }

  function histogram(res) {
    const max = Math.max(1, ...res.histogram.map((b) => b.count));
    $("#s-histogram").replaceChildren(...res.histogram.map((b) => {
      const bar = el("span", { class: "bar", title: new Date(b.time).toLocaleString() + ": " + b.count });
      bar.style.height = Math.round((100 * b.count) / max) + "%";
      return bar;
    }));
  }

  async function context(h) {
    const q = new URLSearchParams({ host: h.host, file: h.file, offset: h.offset });
    const r = await api("GET", "/api/search/context?" + q);
    if (r.status !== 200) { message(r.body.error, true); return; }
    $("#s-context-of").textContent = h.host + " " + h.path + " @" + h.offset;
    $("#s-context tbody").replaceChildren(...r.body.lines.map((l) => el("tr", { class: l.this ? "this" : "" },
      el("td", { text: l.offset }), el("td", { text: new Date(l.time).toLocaleString() }), el("td", { class: "line", text: l.line }))));
    $("#s-context").hidden = false;
    $("#s-context").scrollIntoView();
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); page = 1; run(); });
  $("#s-prev").addEventListener("click", () => { page--; run(); });
  $("#s-next").addEventListener("click", () => { page++; run(); });
  run();
}

// diff lists the entries removed (-) and added (+), one a line.
function diff(before, after) {
  const lines = (v) => { try { return JSON.parse(v || "[]").map((e) => JSON.stringify(e)); } catch { return [v]; } };
  const b = lines(before), a = lines(after);
  const out = b.filter((x) => !a.includes(x)).map((x) => "- " + x).concat(a.filter((x) => !b.includes(x)).map((x) => "+ " + x));
  return out.join("\n") || "(no change)";
}

document.addEventListener("DOMContentLoaded", async () => {
  const page = document.body.dataset.page;
  if (page !== "login") {
    const s = await api("GET", "/api/session");
    csrf = s.body.csrf || "";
    $("#logout").addEventListener("click", async () => { await api("POST", "/api/logout"); location.href = "/login"; });
  }
  ({ login: loginPage, fleet: fleetPage, host: hostPage, bulk: bulkPage, audit: auditPage, search: searchPage })[page]();
});

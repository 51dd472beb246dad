// Tillbridge ops console: plain DOM, no external code. Data is shown only after the admin API accepts the key.
"use strict";
const API = location.pathname.replace(/console(\/.*)?$/, "ops/");
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("tillbridge-key") || "";
let continuation = null;
let current = null;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method, headers: { "x-functions-key": key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) { signOut("The key was rejected."); throw new Error("unauthorised"); }
  const document_ = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((document_.error && document_.error.message) || response.statusText);
  return document_;
}

function say(text) { $("message").textContent = text; }

function signOut(reason) {
  key = ""; sessionStorage.removeItem("tillbridge-key");
  $("workspace").hidden = true; $("signin").hidden = false; $("health").textContent = "";
  $("signin-message").textContent = reason || "";
  $("key").focus();
}

async function signIn(candidate) {
  key = candidate;
  try {
    await api("GET", "health");
  } catch (error) { return; }
  sessionStorage.setItem("tillbridge-key", key);
  $("signin").hidden = true; $("workspace").hidden = false; $("signin-message").textContent = "";
  await Promise.all([refresh(), loadFlowFilter()]);
}

async function refresh() {
  await Promise.all([loadHealth(), loadFlows(), loadFailures(false), loadReconcile()]);
}

// the flows a failure can be filed under (the "queue" flow too), as the API's own description lists them
async function loadFlowFilter() {
  const spec = await api("GET", "openapi.json");
  const flow = spec.paths["/failures/{flow}/{record_id}"].get.parameters.find((p) => p.name === "flow");
  const select = $("filters").elements.namedItem("flow"); const chosen = select.value;
  select.replaceChildren(el("option", "all", { value: "" }));
  for (const name of flow.schema.enum) select.append(el("option", name, { value: name }));
  select.value = chosen;
}

async function loadHealth() {
  const health = await api("GET", "health");
  const queue = health.queue || {};
  $("health").textContent = `Status ${health.status} · queue ${queue.active ?? "n/a"} · dead letters ${queue.dead_letter ?? "n/a"}` +
    ` · dead-lettered failures ${health.dead_lettered_failures} · last reconcile ${health.last_reconcile || "never"}` +
    changeTracking(health.flows || []);
  const configuration = health.configuration || { valid: true, problems: [] };
  const box = $("config-problems");
  box.hidden = configuration.valid;
  box.replaceChildren();
  if (!configuration.valid) {
    box.append(el("strong", `The configuration file ${configuration.file} is invalid: no event is processed until it is fixed.`));
    const list = el("ul");
    for (const problem of configuration.problems) list.append(el("li", problem));
    box.append(list);
  }
  const segments = health.segments || { sizes: {} };
  $("segments-run").textContent = `Last run ${segments.run_at || "never"}`;
  const sizes = $("segments"); sizes.replaceChildren();
  for (const [name, size] of Object.entries(segments.sizes || {})) {
    sizes.append(el("li", `${name}: ${size} member(s), +${(segments.entered || {})[name] || 0} / -${(segments.left || {})[name] || 0} last run`));
  }
}

function changeTracking(flows) {
  const tracking = (flows.find((flow) => flow.change_tracking) || {}).change_tracking;
  if (!tracking || !tracking.mode) return "";
  const age = tracking.delta_link_age_seconds ?? "n/a";
  return ` · CRM changes: last poll ${tracking.started_at || "never"} (${tracking.mode}), delta link ${age} s old` +
    (tracking.last_full_pass_at ? `, last full pass ${tracking.last_full_pass_at} (${tracking.last_full_pass_mode})` : "");
}

async function loadReconcile() {
  const { report } = await api("GET", "reconcile");
  const body = $("reconcile").querySelector("tbody"); body.replaceChildren();
  $("reconcile-when").textContent = report ? `Run at ${report.started_at}` : "No reconcile has run yet.";
  for (const kind of (report && report.kinds) || []) {
    const row = el("tr");
    row.append(el("th", kind.kind, { scope: "row" }));
    for (const name of ["examined", "missing", "stale", "repaired"]) row.append(el("td", String(kind[name])));
    row.append(el("td", kind.error ? `${kind.failed} (${kind.error})` : String(kind.failed)));
    body.append(row);
  }
}

async function loadFlows() {
  const { flows } = await api("GET", "flows");
  const list = $("flows"); list.replaceChildren();
  for (const flow of flows) {
    const item = el("li");
    item.append(el("strong", flow.flow), " ");
    item.append(el("span", flow.paused ? "paused" : "running", { class: flow.paused ? "paused" : "" }));
    item.append(` · last write ${flow.last_written_at || "never"} `);
    const button = el("button", flow.paused ? `Resume ${flow.flow}` : `Pause ${flow.flow}`, { type: "button" });
    button.addEventListener("click", async () => {
      await api("POST", `flows/${encodeURIComponent(flow.flow)}/${flow.paused ? "resume" : "pause"}`, { note: "from the console" });
      say(`${flow.flow} ${flow.paused ? "resumed" : "paused"}`); await loadFlows();
    });
    item.append(button); list.append(item);
  }
}

function filterQuery() {
  const form = new FormData($("filters")); const params = new URLSearchParams();
  for (const [name, value] of form.entries()) {
    if (!value) continue;
    params.set(name, name === "from" || name === "to" ? new Date(value).toISOString() : value);
  }
  return params;
}

async function loadFailures(more) {
  const params = filterQuery();
  if (more && continuation) params.set("continuation", continuation);
  const page = await api("GET", `failures?${params}`);
  const body = $("failures").querySelector("tbody");
  if (!more) body.replaceChildren();
  for (const failure of page.items) {
    const row = el("tr");
    const cell = el("td");
    const open = el("button", failure.record_id, { type: "button", class: "link", "aria-label": `Open ${failure.flow} record ${failure.record_id}` });
    open.addEventListener("click", () => showRecord(failure.flow, failure.record_id));
    cell.append(open); row.append(cell);
    for (const value of [failure.flow, failure.reason_code, failure.field || "", failure.attempts, failure.last_seen]) row.append(el("td", value));
    row.append(el("td", failure.status, { class: `status-${failure.status}` }));
    body.append(row);
  }
  continuation = page.continuation || null;
  $("more").hidden = !continuation;
  $("failures-summary").textContent = `${page.total} failure(s) match`;
}

function pre(title, value) {
  const box = el("div"); box.append(el("h4", title)); box.append(el("pre", JSON.stringify(value, null, 2))); return box;
}

async function showRecord(flow, recordId) {
  const record = await api("GET", `records/${encodeURIComponent(flow)}/${encodeURIComponent(recordId)}`);
  current = { flow, recordId };
  $("record").hidden = false;
  $("record-title").textContent = `Record ${flow}/${recordId}`;
  const facts = $("record-facts"); facts.replaceChildren();
  const failure = record.failure || {};
  for (const [name, value] of [["Status", failure.status || "no failure"], ["Reason", failure.reason_code], ["Field", failure.field],
    ["Message", failure.message], ["Candidates", (failure.candidates || []).join(", ")], ["Ledger version", record.ledger && record.ledger.version],
    ["Dataverse id", record.ledger && record.ledger.dataverse_id]]) {
    if (value === undefined || value === null || value === "") continue;
    facts.append(el("dt", name), el("dd", value));
  }
  const timeline = $("timeline"); timeline.replaceChildren();
  for (const attempt of record.attempts) {
    const item = el("li");
    item.append(el("h4", `${attempt.started_at} · ${attempt.event_type} · attempt ${attempt.attempt} · delivery ${attempt.delivery_count} · ${attempt.outcome}`));
    const steps = el("ol");
    for (const step of attempt.steps) steps.append(el("li", `${step.at} ${step.stage} ${JSON.stringify(step.detail)}`));
    item.append(steps);
    const snapshot = attempt.snapshot || {};
    const snapshots = snapshot.snapshots || {};
    const side = el("div", null, { class: "side-by-side" });
    side.append(pre("Square object", snapshots.square_object ?? null), pre("Mapped Dataverse payload", snapshots.mapped_payload ?? null));
    item.append(side);
    const exchanges = el("table");
    const head = el("tr");
    for (const name of ["Service", "Method", "Path", "Status", "Error code", "Retry-After", "Correlation id"]) head.append(el("th", name, { scope: "col" }));
    exchanges.append(head);
    for (const call of snapshot.exchanges || []) {
      const row = el("tr");
      for (const value of [call.service, call.method, call.path, call.status, call.error_code, call.retry_after, call.correlation_id]) row.append(el("td", value ?? ""));
      exchanges.append(row);
    }
    item.append(el("h5", "API responses"), exchanges);
    timeline.append(item);
  }
  $("record-title").focus();
}

async function act(path, body, done) {
  if (!current) return;
  const result = await api("POST", `failures/${encodeURIComponent(current.flow)}/${encodeURIComponent(current.recordId)}/${path}`, body);
  say(done(result)); await loadFailures(false); await showRecord(current.flow, current.recordId);
}

$("key-form").addEventListener("submit", (event) => { event.preventDefault(); signIn($("key").value); });
$("filters").addEventListener("submit", (event) => { event.preventDefault(); loadFailures(false).catch((e) => say(e.message)); });
$("more").addEventListener("click", () => loadFailures(true).catch((e) => say(e.message)));
$("retry-all").addEventListener("click", async () => {
  const form = Object.fromEntries(filterQuery().entries());
  const result = await api("POST", "failures/retry", form);
  say(`${result.retried} failure(s) re-enqueued with a fresh fetch from Square`); await loadFailures(false);
});
$("retry-one").addEventListener("click", () => act("retry", {}, (r) => `Retry queued as ${r.retry_event_id}`).catch((e) => say(e.message)));
$("resolve-one").addEventListener("click", () => act("resolve", { status: "resolved", note: $("note").value }, () => "Marked resolved").catch((e) => say(e.message)));
$("ignore-one").addEventListener("click", () => act("resolve", { status: "ignored", note: $("note").value }, () => "Marked ignored").catch((e) => say(e.message)));
$("record-title").setAttribute("tabindex", "-1");
if (key) signIn(key); else signOut("");

// Incident console: the incidents of the signed-in user's sites, refreshed every few seconds, and the
// operators' actions on them (acknowledge, assign, resolve, confirm, false positive with a reason, comment), all through
// reporting's /api/v1/console (which checks the user's role on the incident's site and calls the notifier).
// No build step, no network beyond this service; the session cookie authorises, writes carry X-PPE-CSRF.
// The snapshot is the camera's latest face-blurred frame (the zone editor's route), never a raw frame.
"use strict";

const REFRESH_MS = 3000;
const state = { incidents: [], selected: null, snapshotUrl: null };

function duration(fromIso, toIso) {
  const seconds = Math.max(0, Math.round((new Date(toIso || Date.now()) - new Date(fromIso)) / 1000));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
}

function renderList() {
  const body = $("incidents").querySelector("tbody");
  body.replaceChildren();
  for (const incident of state.incidents) {
    const row = document.createElement("tr");
    row.dataset.incidentId = incident.id;
    row.dataset.acknowledged = String(Boolean(incident.acknowledged_at));
    if (incident.id === state.selected) row.className = "selected";
    cell(row, incident.camera_id);
    cell(row, incident.zone_id);
    cell(row, (incident.missing_equipment || []).join(", "));
    cell(row, new Date(incident.started_at).toLocaleString());
    cell(row, duration(incident.started_at, incident.status === "resolved" ? incident.resolved_at : incident.last_seen_at));
    cell(row, incident.status + (incident.review ? ` (${incident.review.replace("_", " ")})` : ""));
    cell(row, incident.acknowledged_by ? incident.acknowledged_by.replace(/^user:/, "") : "not yet");
    cell(row, incident.assigned_to || "");
    row.addEventListener("click", () => select(incident.id));
    body.appendChild(row);
  }
  $("empty").hidden = state.incidents.length > 0;
}

async function refresh() {
  const params = new URLSearchParams({ status: $("status-filter").value });
  if ($("site").value) params.set("site_id", $("site").value);
  try {
    state.incidents = await (await api("GET", `console/incidents?${params}`)).json();
    renderList();
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.state = "ready";
    if (state.selected) await showDetail(false);
  } catch (error) {
    setStatus(`could not load incidents: ${error.message}`, true);
    document.body.dataset.state = "error";
  }
}

async function select(incidentId) {
  state.selected = incidentId;
  renderList();
  await showDetail(true);
}

async function showSnapshot(cameraId) {
  try {
    const blob = await (await api("GET", `cameras/${encodeURIComponent(cameraId)}/snapshot`)).blob();
    if (state.snapshotUrl) URL.revokeObjectURL(state.snapshotUrl);
    state.snapshotUrl = URL.createObjectURL(blob);
    $("snapshot").src = state.snapshotUrl;
    $("snapshot").hidden = false;
  } catch (error) {
    $("snapshot").hidden = true;  // no analysed frame yet, or the zone editor's ingest link is off
  }
}

async function showDetail(withSnapshot) {
  const incident = await (await api("GET", `console/incidents/${encodeURIComponent(state.selected)}`)).json();
  $("detail").hidden = false;
  $("detail").dataset.incidentId = incident.id;
  $("detail-id").textContent = incident.id;
  $("detail-summary").textContent = `${incident.site_id} / ${incident.camera_id} / ${incident.zone_id}: missing `
    + `${(incident.missing_equipment || []).join(", ")}; ${incident.status}`
    + (incident.acknowledged_by ? `, acknowledged by ${incident.acknowledged_by.replace(/^user:/, "")}` : ", not acknowledged");
  const history = $("history");
  history.replaceChildren();
  for (const entry of incident.history || []) {
    const item = document.createElement("li");
    const details = entry.details && Object.keys(entry.details).length ? ` ${JSON.stringify(entry.details)}` : "";
    item.textContent = `${entry.created_at || entry.at || ""} ${entry.action} by ${entry.actor}${details}`;
    history.appendChild(item);
  }
  $("detail").dataset.assignedTo = incident.assigned_to || "";
  if (withSnapshot) {
    await showSnapshot(incident.camera_id);
    await loadAssignees(incident);
  }
}

// The operators of the incident's site (an operator's own list; a viewer cannot assign: no form).
async function loadAssignees(incident) {
  const select = $("assignee");
  select.replaceChildren(new Option("nobody", ""));
  try {
    const names = await (await api("GET", `console/incidents/${encodeURIComponent(incident.id)}/assignees`)).json();
    for (const name of names) select.appendChild(new Option(name, name));
    select.value = incident.assigned_to || "";
    $("assign-form").hidden = false;
  } catch (error) {
    $("assign-form").hidden = true;
  }
}

async function act(action, body) {
  if (!state.selected) return;
  try {
    await api("POST", `console/incidents/${encodeURIComponent(state.selected)}/${action}`, body);
    setStatus(`${action}: done`, false);
    await refresh();
  } catch (error) {
    setStatus(`${action} failed: ${error.message}`, true);
  }
}

async function init() {
  const me = await whoAmI();
  const sites = Object.keys(me.site_roles || {}).sort();
  for (const site of sites) {
    const option = document.createElement("option");
    option.value = option.textContent = site;
    $("site").appendChild(option);
  }
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  $("acknowledge").addEventListener("click", () => act("acknowledge"));
  $("resolve").addEventListener("click", () => act("resolve"));
  $("confirm").addEventListener("click", () => act("confirm"));
  $("assign-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("assign", { user: $("assignee").value || null });
  });
  $("fp-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("false-positive", { reason: $("fp-reason").value.trim() });
  });
  $("comment-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("comment", { text: $("comment-text").value.trim() }).then(() => { $("comment-text").value = ""; });
  });
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

init().catch((error) => setStatus(`could not start: ${error.message}`, true));

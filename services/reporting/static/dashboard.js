// Reporting dashboard: no build step, no network beyond this service. The signed-in session (an HttpOnly
// cookie set by the sign-in page) authorises its requests. Options may come in the URL fragment (never sent
// to a server): #site=...&bucket=day&start=ISO&end=ISO, and token=... (a personal API token) for a kiosk.
// Runs after common.js ($, LOGIN_PAGE, ppe, cell).
"use strict";

let trendChart = null;

function fragmentOptions() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  return Object.fromEntries(params.entries());
}

function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function init() {
  const options = fragmentOptions();
  const end = options.end ? new Date(options.end) : new Date();
  const start = options.start ? new Date(options.start) : new Date(end.getTime() - 30 * 86400e3);
  ppe.token = options.token || "";
  $("site").value = options.site || "";
  $("bucket").value = options.bucket || "day";
  $("start").value = toLocalInput(start);
  $("end").value = toLocalInput(end);
  showDigestLink();
  $("site").addEventListener("input", showDigestLink);
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  $("signout").addEventListener("click", signOut);
  showWho().then((me) => { if (me) { refresh(); showDigests(me); } });
}

// The header's digest link: the named site's latest weekly digest as PDF (the session cookie goes with it).
function showDigestLink() {
  const name = $("site").value.trim();
  const link = $("digest-link");
  link.href = name ? `/api/v1/digests/${encodeURIComponent(name)}.pdf?period=weekly` : "#site";
  link.title = name ? `The latest weekly digest of ${name}` : "Name a site to download its digest";
}

function toLogin() {
  window.location.assign(LOGIN_PAGE + window.location.hash);
}

async function showWho() {
  const response = await fetch("/api/v1/auth/me", { headers: authHeaders() });
  if (response.status === 401 && !ppe.token) { toLogin(); return null; }
  if (!response.ok) { $("status").textContent = `sign-in check failed: ${response.status}`; return null; }
  const me = await response.json();
  const roles = me.global_role ? [`${me.global_role} of every site`] : [];
  roles.push(...Object.entries(me.site_roles).map(([site, role]) => `${role} of ${site}`));
  $("who-name").textContent = `${me.name} (${roles.join(", ") || "no role yet"})`;
  $("signout").hidden = me.via !== "session";
  return me;
}

async function signOut() {
  await fetch("/api/v1/auth/logout", { method: "POST", headers: { "X-PPE-CSRF": "1" } });
  toLogin();
}

// Writes sent with the session cookie must carry X-PPE-CSRF (docs/access.md): authHeaders(true).
function authHeaders(write = false) {
  const headers = ppe.token ? { Authorization: `Bearer ${ppe.token}` } : {};
  if (write) headers["X-PPE-CSRF"] = "1";
  return headers;
}

async function query(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const response = await fetch(`/api/v1/${path}?${query}`, { headers: authHeaders() });
  if (response.status === 401 && !ppe.token) { toLogin(); throw new Error("signed out"); }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${path}: ${response.status} ${body.detail || response.statusText}`);
  }
  return response.json();
}

const percent = (rate) => (rate == null ? "–" : `${(rate * 100).toFixed(1)} %`);

function renderTrend(trend) {
  $("trend-tz").textContent = `(${trend.bucket}, ${trend.timezone})`;
  const labels = trend.points.map((p) => p.bucket_local.replace("T", " ").slice(0, trend.bucket === "hour" ? 16 : 10));
  const data = trend.points.map((p) => (p.compliance_rate == null ? null : p.compliance_rate * 100));
  if (trendChart) trendChart.destroy();
  trendChart = new Chart($("trend-chart"), {
    type: "line",
    data: { labels, datasets: [{ label: "Compliance %", data, borderColor: "#1f6feb", backgroundColor: "#1f6feb33", fill: true, spanGaps: true, tension: 0 }] },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } } },
  });
}

function renderBreakdown(breakdown) {
  const body = $("breakdown-table").querySelector("tbody");
  body.replaceChildren();
  for (const row of breakdown.rows) {
    const tr = document.createElement("tr");
    cell(tr, row.site_id); cell(tr, row.zone_id); cell(tr, row.camera_id);
    cell(tr, row.persons_with, "num"); cell(tr, row.persons_without, "num"); cell(tr, row.persons_indeterminate, "num");
    cell(tr, percent(row.compliance_rate), row.compliance_rate != null && row.compliance_rate < 0.8 ? "num bad" : "num");
    body.appendChild(tr);
  }
}

function renderIncidents(page) {
  const body = $("incidents-table").querySelector("tbody");
  body.replaceChildren();
  for (const item of page.items) {
    const tr = document.createElement("tr");
    cell(tr, item.started_at.replace("T", " ").slice(0, 19));
    cell(tr, `${item.site_id} / ${item.zone_id} / ${item.camera_id}`);
    cell(tr, item.missing_equipment.join(", "));
    cell(tr, item.severity, item.severity === "critical" ? "bad" : "");
    cell(tr, item.status);
    body.appendChild(tr);
  }
}

async function refresh() {
  document.body.dataset.state = "loading";
  $("status").textContent = "Loading…";
  const range = {
    start: new Date($("start").value).toISOString(),
    end: new Date($("end").value).toISOString(),
    site_id: $("site").value.trim(),
  };
  try {
    const [trend, breakdown, incidents] = await Promise.all([
      query("compliance/trend", { ...range, bucket: $("bucket").value }),
      query("compliance/breakdown", { ...range, by: "camera" }),
      query("incidents", { site_id: range.site_id, limit: 20 }),
    ]);
    renderTrend(trend);
    renderBreakdown(breakdown);
    renderIncidents(incidents);
    $("status").textContent = `${trend.points.length} buckets, ${breakdown.rows.length} cameras, ${incidents.items.length} incidents`;
    document.body.dataset.state = "ready";
  } catch (error) {
    $("status").textContent = String(error.message || error);
    document.body.dataset.state = "error";
  }
}

init();

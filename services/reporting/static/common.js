// Shared by the console's pages (dashboard, incidents, zones, audit, users, notifications): one way to call reporting's
// API. The signed-in session (an HttpOnly cookie set by the sign-in page) authorises; writes sent with the
// cookie carry X-PPE-CSRF (docs/access.md); a kiosk or script may set `ppe.token` (a personal API token)
// instead. A 401 without a token goes to the sign-in page. No build step, no network beyond this service.
"use strict";

const $ = (id) => document.getElementById(id);
const LOGIN_PAGE = "/static/login.html";
const ppe = { token: "" };

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function describe(body, response) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return detail || response.statusText;
}

async function api(method, path, body) {
  const headers = ppe.token ? { Authorization: `Bearer ${ppe.token}` } : {};
  if (method !== "GET") headers["X-PPE-CSRF"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && !ppe.token) {
    // back to this page after sign-in (login.js accepts local paths only)
    const here = window.location.pathname + window.location.search;
    window.location.assign(`${LOGIN_PAGE}?next=${encodeURIComponent(here)}${window.location.hash}`);
  }
  if (!response.ok) {
    const payload = await response.json().catch(() => null);
    const error = new Error(`${response.status}: ${describe(payload, response)}`);
    error.status = response.status;
    throw error;
  }
  return response;
}

// Who is signed in; the links of admin pages ([data-admin]) show for an admin of some site.
async function whoAmI() {
  const me = await (await api("GET", "auth/me")).json();
  const admin = me.global_role === "admin" || Object.values(me.site_roles || {}).includes("admin");
  for (const link of document.querySelectorAll("[data-admin]")) link.hidden = !admin;
  if ($("who-name")) $("who-name").textContent = me.name;
  return me;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

// An action of the page: "<what>: done" or "<what> failed: <why>" in the status line.
async function run(what, fn) {
  try {
    await fn();
    setStatus(`${what}: done`, false);
  } catch (error) {
    setStatus(`${what} failed: ${error.message}`, true);
  }
}

// Audit trail: the hash-chained records an admin may read (a site admin: their sites; a global admin: all,
// sign-ins and users included), filtered, newest first, a page at a time; and the chain's verification
// (global admin). Read only: nothing here can change a record.
"use strict";

const PAGE = 100;
const state = { oldest: null };

function query() {
  const params = new URLSearchParams({ limit: String(PAGE) });
  for (const name of ["site", "actor", "action"]) {
    const value = $(name).value.trim();
    if (value) params.set(name === "site" ? "site_id" : name, value);
  }
  for (const name of ["start", "end"]) {
    if ($(name).value) params.set(name, new Date($(name).value).toISOString());
  }
  return params;
}

function render(records, append) {
  const body = $("records").querySelector("tbody");
  if (!append) body.replaceChildren();
  for (const record of records) {
    const row = document.createElement("tr");
    row.dataset.seq = record.seq;
    row.dataset.action = record.action;
    cell(row, String(record.seq));
    cell(row, new Date(record.occurred_at).toLocaleString());
    cell(row, record.actor);
    cell(row, record.action);
    cell(row, record.site_id || "");
    cell(row, record.target || "");
    cell(row, Object.keys(record.details || {}).length ? JSON.stringify(record.details) : "").className = "details";
    body.appendChild(row);
  }
  if (records.length) state.oldest = records[records.length - 1].seq;
  $("older").hidden = records.length < PAGE;
  $("empty").hidden = body.children.length > 0;
}

async function load(append) {
  const params = query();
  if (append && state.oldest) params.set("before_seq", String(state.oldest));
  try {
    render(await (await api("GET", `audit?${params}`)).json(), append);
    setStatus("", false);
    document.body.dataset.state = "ready";
  } catch (error) {
    setStatus(`could not read the audit trail: ${error.message}`, true);
    document.body.dataset.state = "error";
  }
}

async function verify() {
  try {
    const verdict = await (await api("GET", "audit/verify")).json();
    $("verdict").textContent = verdict.ok
      ? `intact: ${verdict.records} records; head #${verdict.head_seq} ${verdict.head_hash}`
      : `BROKEN at record ${verdict.bad_seq}: ${verdict.problem}`;
    $("verdict").className = verdict.ok ? "" : "bad";
  } catch (error) {
    $("verdict").textContent = error.status === 403 ? "only a global admin verifies the whole chain" : error.message;
  }
}

async function init() {
  await whoAmI();
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); load(false); });
  $("older").addEventListener("click", () => load(true));
  $("verify").addEventListener("click", verify);
  await load(false);
}

init().catch((error) => setStatus(`could not start: ${error.message}`, true));

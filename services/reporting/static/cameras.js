// Cameras for admins: listed from reporting's /api/v1/cameras (the zone editor's list), registered, their keys
// rotated, disabled and enabled through reporting, which checks the admin role on the camera's site and calls
// ingest's admin API server-side. A new key is shown once, in #key-box, and never stored by the page.
"use strict";

const me = { adminSites: null };  // null: a global admin (every site)

function showKey(result) {
  $("key-camera").textContent = result.camera.camera_id;
  $("key-value").textContent = result.api_key;
  $("key-box").hidden = false;
}

function hideKey() {
  $("key-value").textContent = "";
  $("key-box").hidden = true;
}

function administered(camera) {
  return me.adminSites === null || me.adminSites.includes(camera.site_id);
}

function renderCameras(cameras) {
  const body = $("cameras").querySelector("tbody");
  body.replaceChildren();
  for (const camera of cameras.filter(administered)) {
    const row = document.createElement("tr");
    row.dataset.cameraId = camera.camera_id;
    const zones = camera.zones ? camera.zones.zones.map((zone) => zone.zone_id).join(", ") : "";
    for (const value of [camera.camera_id, camera.site_id, camera.zone_id, camera.required_ppe.join(", "),
                         String(camera.min_confidence), zones]) cell(row, value);
    cell(row, camera.enabled ? "enabled" : "disabled").className = "state";
    const actions = cell(row, "");
    const path = `cameras/${encodeURIComponent(camera.camera_id)}`;
    actions.appendChild(button("Rotate key", () => run(`rotate key of ${camera.camera_id}`, async () => {
      if (!window.confirm(`A new key for ${camera.camera_id}: the old one stops working now. Go on?`)) return;
      showKey(await (await api("POST", `${path}/rotate-key`)).json());
      await load();
    })));
    const toggle = camera.enabled ? "disable" : "enable";
    actions.appendChild(button(camera.enabled ? "Disable" : "Enable", () => run(`${toggle} ${camera.camera_id}`,
      async () => {
        await api("POST", `${path}/${toggle}`);
        await load();
      })));
    body.appendChild(row);
  }
}

async function load() {
  const site = $("site").value.trim();
  renderCameras(await (await api("GET", `cameras${site ? `?site_id=${encodeURIComponent(site)}` : ""}`)).json());
  document.body.dataset.state = "ready";
}

function init() {
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); run("load", load); });
  $("key-done").addEventListener("click", hideKey);
  $("camera-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("register camera", async () => {
      const ppe = $("camera-ppe").value.split(",").map((name) => name.trim()).filter(Boolean);
      const created = await (await api("POST", "cameras", {
        camera_id: $("camera-id").value.trim(), site_id: $("camera-site").value.trim(),
        zone_id: $("camera-zone").value.trim(), required_ppe: ppe,
        min_confidence: Number($("camera-confidence").value),
      })).json();
      showKey(created);
      $("camera-form").reset();
      await load();
    });
  });
}

async function start() {
  const who = await whoAmI();
  me.adminSites = who.global_role === "admin" ? null
    : Object.entries(who.site_roles || {}).filter(([, role]) => role === "admin").map(([site]) => site);
  if (me.adminSites && me.adminSites.length === 1) $("camera-site").value = me.adminSites[0];
  init();
  await load();
}

start().catch((error) => setStatus(`could not start: ${error.message}`, true));

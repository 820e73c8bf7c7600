// Zone editor: draw polygon zones on a camera's latest face-blurred frame and save them to ingest (through
// reporting's API). No build step, no network beyond this service. The signed-in session (an HttpOnly cookie set
// by the sign-in page) authorises its requests, as on the dashboard; a kiosk or script may pass a personal API
// token in the URL fragment (never sent to a server; kept in sessionStorage for reloads). The camera may come in
// the fragment too: /zones#camera=cam-1. Coordinates are normalised (0..1 of width and height, origin top left).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { cameras: [], camera: null, zones: [], draft: [], closed: false, snapshotUrl: null };

const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
const pointsAttr = (points) => points.map((p) => `${p.x},${p.y}`).join(" ");

function draw() {
  const svg = $("overlay");
  svg.replaceChildren();
  document.querySelectorAll("#stage .zone-label").forEach((label) => label.remove());
  state.zones.forEach((zone, index) => {
    // the label is HTML over the stage: SVG text would be stretched by the overlay's free aspect ratio
    const top = zone.polygon.reduce((a, b) => (b.y < a.y ? b : a));
    const label = document.createElement("span");
    label.className = "zone-label";
    label.textContent = `${index + 1}. ${zone.zone_id}`;
    label.style.left = `${top.x * 100}%`;
    label.style.top = `${top.y * 100}%`;
    $("stage").appendChild(label);
  });
  for (const zone of state.zones) {
    const polygon = document.createElementNS(SVG, "polygon");
    polygon.setAttribute("points", pointsAttr(zone.polygon));
    polygon.setAttribute("class", "saved");
    polygon.dataset.zoneId = zone.zone_id;
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${zone.zone_id}: ${zone.required_equipment.join(", ") || "nothing required"}`;
    polygon.appendChild(title);
    svg.appendChild(polygon);
  }
  if (state.draft.length) {
    const shape = document.createElementNS(SVG, state.closed ? "polygon" : "polyline");
    shape.setAttribute("points", pointsAttr(state.draft));
    shape.setAttribute("class", "draft");
    shape.id = "draft";
    svg.appendChild(shape);
    const size = svg.getBoundingClientRect();
    for (const p of state.draft) {
      const dot = document.createElementNS(SVG, "ellipse");
      dot.setAttribute("cx", p.x); dot.setAttribute("cy", p.y);
      dot.setAttribute("rx", 0.006); dot.setAttribute("ry", 0.006 * size.width / Math.max(1, size.height));
      dot.setAttribute("fill", "#f0a300");
      svg.appendChild(dot);
    }
  }
  const list = $("zone-list");
  list.replaceChildren();
  state.zones.forEach((zone, index) => {
    const item = document.createElement("li");
    const hours = zone.active_from ? `, ${zone.active_from.slice(0, 5)}-${zone.active_to.slice(0, 5)} ${zone.timezone}` : "";
    item.textContent = `${zone.zone_id}: ${zone.required_equipment.join(", ") || "nothing required"}, ` +
      `MinConfidence ${zone.min_confidence}${hours} `;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => { state.zones.splice(index, 1); draw(); setStatus("zone removed; save to keep the change"); });
    item.appendChild(remove);
    list.appendChild(item);
  });
}

function onFrameClick(event) {
  if (!state.camera) return;
  if (state.closed) { setStatus("the polygon is closed: add the zone or clear it first", true); return; }
  const box = $("overlay").getBoundingClientRect();
  state.draft.push({ x: round((event.clientX - box.left) / box.width), y: round((event.clientY - box.top) / box.height) });
  draw();
}

function closePolygon() {
  if (state.draft.length < 3) {
    setStatus(`a zone needs at least 3 points; it has ${state.draft.length}: click the frame to add more`, true);
    return;
  }
  state.closed = true;
  draw();
  setStatus("polygon closed: name the zone, choose its PPE and add it");
}

function addZone(event) {
  event.preventDefault();
  if (!state.closed) { setStatus("close the polygon first (at least 3 points)", true); return; }
  const zoneId = $("zone-id").value.trim();
  if (!zoneId) { setStatus("name the zone (letters, digits, . _ -)", true); return; }
  if (state.zones.some((z) => z.zone_id === zoneId)) { setStatus(`zone ${zoneId} exists: choose another id`, true); return; }
  const from = $("active-from").value, to = $("active-to").value;
  state.zones.push({
    zone_id: zoneId,
    polygon: state.draft,
    required_equipment: [...document.querySelectorAll("#equipment input:checked")].map((box) => box.value),
    min_confidence: Number($("min-confidence").value),
    active_from: from ? `${from}:00` : null,
    active_to: to ? `${to}:00` : null,
    timezone: $("timezone").value.trim() || "UTC",
  });
  state.draft = []; state.closed = false;
  $("zone-id").value = "";
  draw();
  setStatus(`zone ${zoneId} added; save to store it`);
}

async function save() {
  const layout = { outside: $("outside").value, zones: state.zones };
  try {
    const camera = await (await api("PUT", `cameras/${encodeURIComponent(state.camera)}/zones`, layout)).json();
    state.zones = camera.zones ? camera.zones.zones : [];
    draw();
    setStatus(`saved ${state.zones.length} zone(s) of ${state.camera}`);
    document.body.dataset.saved = String(Date.now());
  } catch (error) {
    setStatus(error.status === 403 ? "saving zones needs the admin role on this camera's site; yours is read-only" : `not saved: ${error.message}`, true);
  }
}

async function loadSnapshot() {
  try {
    const response = await api("GET", `cameras/${encodeURIComponent(state.camera)}/snapshot`);
    if (state.snapshotUrl) URL.revokeObjectURL(state.snapshotUrl);
    state.snapshotUrl = URL.createObjectURL(await response.blob());
    await new Promise((resolve, reject) => { $("frame").onload = resolve; $("frame").onerror = reject; $("frame").src = state.snapshotUrl; });
    $("frame-info").textContent = `(frame ${response.headers.get("X-Frame-Id")}, ${response.headers.get("X-Captured-At")})`;
  } catch (error) {
    $("frame").removeAttribute("src");
    $("frame-info").textContent = "";
    setStatus(`no frame to show: ${error.message}`, true);
    return false;
  }
  return true;
}

async function loadCamera() {
  state.camera = $("camera").value;
  const camera = state.cameras.find((c) => c.camera_id === state.camera);
  state.zones = camera && camera.zones ? camera.zones.zones : [];
  $("outside").value = camera && camera.zones ? camera.zones.outside : "camera";
  state.draft = []; state.closed = false;
  window.location.hash = `camera=${encodeURIComponent(state.camera)}`;
  const shown = await loadSnapshot();
  draw();
  if (shown) setStatus(`${state.camera} (site ${camera.site_id}): ${state.zones.length} zone(s)`);
  document.body.dataset.state = "ready";
}

async function load(event) {
  if (event) event.preventDefault();
  document.body.dataset.state = "loading";
  try {
    const [cameras, equipment] = await Promise.all([
      api("GET", "cameras").then((r) => r.json()),
      api("GET", "equipment").then((r) => r.json()),
    ]);
    state.cameras = cameras;
    const wanted = new URLSearchParams(window.location.hash.slice(1)).get("camera") || $("camera").value;
    $("camera").replaceChildren(...cameras.map((c) => new Option(`${c.camera_id} (${c.site_id})`, c.camera_id)));
    if (cameras.some((c) => c.camera_id === wanted)) $("camera").value = wanted;
    $("equipment").replaceChildren($("equipment").firstElementChild || document.createElement("legend"));
    for (const name of equipment.names) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox"; box.value = name; box.name = "equipment";
      label.append(box, ` ${name}`);
      $("equipment").appendChild(label);
    }
    if (!cameras.length) { setStatus("no camera registered at ingest yet", true); document.body.dataset.state = "ready"; return; }
    await loadCamera();
  } catch (error) {
    setStatus(error.message, true);
    document.body.dataset.state = "error";
  }
}

function init() {
  const fromFragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (fromFragment) sessionStorage.setItem("reporting-token", fromFragment);
  ppe.token = fromFragment || sessionStorage.getItem("reporting-token") || "";
  $("controls").addEventListener("submit", load);
  $("camera").addEventListener("change", loadCamera);
  $("overlay").addEventListener("click", onFrameClick);
  $("undo").addEventListener("click", () => { if (!state.closed) state.draft.pop(); draw(); });
  $("close").addEventListener("click", closePolygon);
  $("clear").addEventListener("click", () => { state.draft = []; state.closed = false; draw(); });
  $("zone-form").addEventListener("submit", addZone);
  $("save").addEventListener("click", save);
  whoAmI().catch(() => {});  // the name and the admin links; the page works without them
  load();
}

init();

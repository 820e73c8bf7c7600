// Rules and channels for admins: listed and changed through reporting's /api/v1/notifications, which checks the
// admin role on the site and calls the notifier in the signed-in user's name (the notifier's audit names them).
"use strict";

const siteParams = () => ($("site").value.trim() ? `?site_id=${encodeURIComponent($("site").value.trim())}` : "");
const orNull = (value) => (value.trim() ? value.trim() : null);

function renderRules(rules) {
  const body = $("rules").querySelector("tbody");
  body.replaceChildren();
  for (const rule of rules) {
    const row = document.createElement("tr");
    row.dataset.ruleId = rule.id;
    cell(row, String(rule.id));
    cell(row, rule.site_id);
    cell(row, rule.zone_id || "");
    cell(row, rule.camera_id || "");
    const policy = document.createElement("textarea");
    policy.rows = 3;
    policy.cols = 50;
    policy.value = JSON.stringify(rule.policy, null, 1);
    cell(row, "").appendChild(policy);
    const actions = cell(row, "");
    actions.appendChild(button("Save", () => run("save rule", async () => {
      const changed = { site_id: rule.site_id, zone_id: rule.zone_id, camera_id: rule.camera_id,
                        policy: JSON.parse(policy.value) };
      await api("PUT", `notifications/rules/${rule.id}`, changed);
      await load();
    })));
    actions.appendChild(button("Delete", () => run("delete rule", async () => {
      await api("DELETE", `notifications/rules/${rule.id}`);
      await load();
    })));
    body.appendChild(row);
  }
}

function editChannel(channel) {
  $("channel-id").value = String(channel.id);
  $("channel-name").value = channel.name;
  $("channel-kind").value = channel.kind;
  $("channel-target").value = channel.target;
  $("channel-secret").value = "";
  $("channel-site").value = channel.site_id || "";
  $("channel-severity").value = channel.min_severity;
  $("channel-enabled").checked = channel.enabled;
}

function renderChannels(channels) {
  const body = $("channels").querySelector("tbody");
  body.replaceChildren();
  for (const channel of channels) {
    const row = document.createElement("tr");
    row.dataset.channelName = channel.name;
    for (const value of [channel.id, channel.name, channel.kind, channel.site_id || "every site", channel.min_severity,
                         channel.enabled ? "yes" : "no", channel.target]) cell(row, String(value));
    const actions = cell(row, "");
    actions.appendChild(button("Edit", () => editChannel(channel)));
    actions.appendChild(button("Delete", () => run("delete channel", async () => {
      await api("DELETE", `notifications/channels/${channel.id}`);
      await load();
    })));
    body.appendChild(row);
  }
}

async function load() {
  renderRules(await (await api("GET", `notifications/rules${siteParams()}`)).json());
  renderChannels(await (await api("GET", `notifications/channels${siteParams()}`)).json());
  document.body.dataset.state = "ready";
}

function init() {
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); run("load", load); });
  $("rule-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("add rule", async () => {
      await api("POST", "notifications/rules", {
        site_id: $("rule-site").value.trim(), zone_id: orNull($("rule-zone").value),
        camera_id: orNull($("rule-camera").value), policy: JSON.parse($("rule-policy").value || "{}"),
      });
      await load();
    });
  });
  $("channel-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("save channel", async () => {
      const channel = {
        name: $("channel-name").value.trim(), kind: $("channel-kind").value, target: $("channel-target").value.trim(),
        secret: $("channel-secret").value || null, site_id: orNull($("channel-site").value),
        min_severity: $("channel-severity").value, enabled: $("channel-enabled").checked,
      };
      const id = $("channel-id").value;
      await api(id ? "PUT" : "POST", id ? `notifications/channels/${id}` : "notifications/channels", channel);
      $("channel-form").reset();
      await load();
    });
  });
  // a hidden input keeps its value through reset(): clear it, so "New" makes a new channel
  $("channel-form").addEventListener("reset", () => { $("channel-id").value = ""; });
}

async function start() {
  await whoAmI();
  init();
  await load();
}

start().catch((error) => setStatus(`could not start: ${error.message}`, true));

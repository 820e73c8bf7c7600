// Users: accounts and their roles per site. A global admin manages everyone (global roles, disabling, other
// users' tokens); a site admin sees the users of the sites they administer and grants or takes away roles
// there only (the server enforces it: docs/access.md). Everyone here manages their own personal API tokens.
"use strict";

const state = { me: null, global: false, users: [] };
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

function renderUsers() {
  const body = $("users").querySelector("tbody");
  body.replaceChildren();
  $("role-user").replaceChildren();
  for (const user of state.users) {
    const row = document.createElement("tr");
    row.dataset.username = user.username;
    cell(row, user.username);
    cell(row, user.global_role || "");
    cell(row, Object.entries(user.site_roles).map(([site, role]) => `${site}: ${role}`).join(", "));
    cell(row, user.disabled ? "disabled" : "enabled");
    const actions = cell(row, "");
    if (state.global) {
      actions.appendChild(button(user.disabled ? "Enable" : "Disable", () => setDisabled(user, !user.disabled)));
      actions.appendChild(button("Tokens", () => showTokens(user)));
    }
    body.appendChild(row);
    $("role-user").appendChild(new Option(user.username, String(user.id)));
  }
}

async function loadUsers() {
  state.users = await (await api("GET", "users")).json();
  renderUsers();
}

async function setDisabled(user, disabled) {
  await run(disabled ? "disable" : "enable", async () => {
    await api("PUT", `users/${user.id}`, { global_role: user.global_role, site_roles: user.site_roles, disabled });
    await loadUsers();
  });
}

function tokenRows(table, tokens, revoke) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const token of tokens) {
    const row = document.createElement("tr");
    row.dataset.tokenName = token.name;
    cell(row, token.name);
    cell(row, when(token.created_at));
    cell(row, token.revoked_at ? `revoked ${when(token.revoked_at)}` : when(token.expires_at) || "never");
    cell(row, when(token.last_used_at));
    const actions = cell(row, "");
    if (!token.revoked_at) actions.appendChild(button("Revoke", () => revoke(token)));
    body.appendChild(row);
  }
}

async function showTokens(user) {
  const tokens = await (await api("GET", `users/${user.id}/tokens`)).json();
  $("user-tokens").hidden = false;
  $("tokens-of").textContent = user.username;
  tokenRows($("user-tokens").querySelector("table"), tokens, (token) => run("revoke", async () => {
    await api("DELETE", `users/${user.id}/tokens/${token.id}`);
    await showTokens(user);
  }));
}

async function loadMyTokens() {
  if (state.me.kind !== "user") return;
  const tokens = await (await api("GET", "auth/tokens")).json();
  tokenRows($("my-tokens").querySelector("table"), tokens, (token) => run("revoke", async () => {
    await api("DELETE", `auth/tokens/${token.id}`);
    await loadMyTokens();
  }));
}

function init() {
  $("role-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("grant", async () => {
      const site = encodeURIComponent($("role-site").value.trim());
      await api("PUT", `users/${$("role-user").value}/sites/${site}`, { role: $("role-role").value });
      await loadUsers();
    });
  });
  $("revoke").addEventListener("click", () => run("take away", async () => {
    await api("DELETE", `users/${$("role-user").value}/sites/${encodeURIComponent($("role-site").value.trim())}`);
    await loadUsers();
  }));
  $("create-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("create", async () => {
      const site = $("new-site").value.trim();
      await api("POST", "users", {
        username: $("new-username").value.trim(), password: $("new-password").value,
        global_role: $("new-global").value || null, site_roles: site ? { [site]: $("new-role").value } : {},
      });
      $("create-form").reset();
      await loadUsers();
    });
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("issue", async () => {
      const made = await (await api("POST", "auth/tokens", {
        name: $("token-name").value.trim(), expires_in_days: Number($("token-days").value) || null,
      })).json();
      $("new-token").hidden = false;
      $("new-token-value").textContent = made.token;
      await loadMyTokens();
    });
  });
}

async function start() {
  state.me = await whoAmI();
  state.global = state.me.global_role === "admin";
  $("scope").textContent = state.global ? "every site" : "of the sites you administer";
  for (const element of document.querySelectorAll("[data-global]")) element.hidden = !state.global;
  init();
  await loadUsers();
  await loadMyTokens();
  document.body.dataset.state = "ready";
}

start().catch((error) => setStatus(`could not start: ${error.message}`, true));

// The dashboard's "Digest e-mails" section: the signed-in user's own digest subscriptions (docs/reporting.md,
// "Digests"): subscribe to a site's daily or weekly digest at an address, list them, unsubscribe. Runs after
// common.js; dashboard.js calls showDigests(me) once it knows who is signed in.
"use strict";

async function loadDigests() {
  const subscriptions = await (await api("GET", "digests/subscriptions")).json();
  const body = $("digest-table").querySelector("tbody");
  body.replaceChildren();
  for (const s of subscriptions) {
    const tr = document.createElement("tr");
    cell(tr, s.site_id); cell(tr, s.period); cell(tr, s.email);
    cell(tr, s.created_at.replace("T", " ").slice(0, 16));
    const path = `digests/subscriptions/${encodeURIComponent(s.site_id)}/${s.period}`;
    cell(tr, "").appendChild(button("Unsubscribe", () => run(`Unsubscribe from ${s.site_id} ${s.period}`, async () => {
      await api("DELETE", path);
      await loadDigests();
    })));
    body.appendChild(tr);
  }
  $("digest-none").hidden = subscriptions.length > 0;
}

function showDigests(me) {
  if (me.kind !== "user") return;  // a service token has no mailbox
  $("digests").hidden = false;
  const sites = $("digest-sites");
  for (const site of Object.keys(me.site_roles || {})) sites.appendChild(new Option(site));
  if (sites.options.length === 1) $("digest-site").value = sites.options[0].value;
  $("digest-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const site = $("digest-site").value.trim();
    const period = $("digest-period").value;
    run(`Subscribe to ${site} ${period}`, async () => {
      await api("PUT", `digests/subscriptions/${encodeURIComponent(site)}/${period}`, { email: $("digest-email").value.trim() });
      await loadDigests();
    });
  });
  loadDigests().catch((error) => setStatus(`digest subscriptions: ${error.message}`, true));
}

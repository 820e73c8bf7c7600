// Sign-in page: the session comes back as an HttpOnly cookie (the page never sees it), then the page asked for
// (`?next=/audit`, set by reporting's 303 or common.js) or the dashboard, with the URL fragment kept.
"use strict";

// Only a page of this site: a path starting with one "/", no backslash, no control character (a browser drops
// tabs and newlines, so "/\t/host" would become "//host"). Anything else is the dashboard: no open redirect.
function localPage(next) {
  if (typeof next !== "string" || !next.startsWith("/") || next.startsWith("//")) return "/";
  if (/[\\\u0000-\u001f\u007f]/.test(next)) return "/";
  const url = new URL(next, window.location.origin);
  return url.origin === window.location.origin ? url.pathname + url.search : "/";
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("status");
  document.body.dataset.state = "loading";
  status.textContent = "Signing in…";
  const response = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      username: document.getElementById("username").value.trim(),
      password: document.getElementById("password").value,
    }),
  }).catch(() => null);
  if (response && response.ok) {
    const next = new URLSearchParams(window.location.search).get("next");
    window.location.assign(localPage(next) + window.location.hash);
    return;
  }
  const body = response ? await response.json().catch(() => ({})) : {};
  status.textContent = response ? body.detail || `sign-in failed (${response.status})` : "the server did not answer";
  document.body.dataset.state = "error";
});

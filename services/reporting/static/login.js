// Sign-in page: the session comes back as an HttpOnly cookie (the page never sees it), then the dashboard.
"use strict";

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
    window.location.assign("/" + window.location.hash);
    return;
  }
  const body = response ? await response.json().catch(() => ({})) : {};
  status.textContent = response ? body.detail || `sign-in failed (${response.status})` : "the server did not answer";
  document.body.dataset.state = "error";
});

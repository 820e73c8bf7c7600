// The header's digest link: the named site's latest weekly digest as PDF (the session cookie goes with it).
"use strict";
(() => {
  const link = document.getElementById("digest-link");
  const site = document.getElementById("site");
  const update = () => {
    const name = site.value.trim();
    link.href = name ? `/api/v1/digests/${encodeURIComponent(name)}.pdf?period=weekly` : "#site";
    link.title = name ? `The latest weekly digest of ${name}` : "Name a site to download its digest";
  };
  site.addEventListener("input", update);
  window.addEventListener("hashchange", () => setTimeout(update));
  setTimeout(update, 500);  // after dashboard.js has filled the site from the URL or the user's only site
  update();
})();

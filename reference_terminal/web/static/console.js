// The console's only script: refresh a live chart (an element with data-live-src) every 5 s
// while its "live" box is ticked, by fetching its SVG again (same origin, the session cookie).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-live-src]");
  const live = document.getElementById("live");
  if (!box || !live) return;
  let busy = false;
  const refresh = async () => {
    if (!live.checked || busy || document.hidden) return;
    busy = true;
    try {
      const answer = await fetch(box.dataset.liveSrc, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok && (answer.headers.get("content-type") || "").startsWith("image/svg+xml")) {
        box.innerHTML = await answer.text();
        box.dataset.refreshed = String(Date.now());
      } else if (answer.redirected || answer.status === 401) {
        window.location.reload();
      }
    } finally {
      busy = false;
    }
  };
  setInterval(refresh, 5000);
});

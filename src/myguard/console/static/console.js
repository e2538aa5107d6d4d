// myguard console: live updates, no build step. Served with a CSP that allows this file
// and nothing inline; fragments come from the same origin and are rendered server-side
// (escaped), so they are put in place as they are.
"use strict";
(function () {
  const body = document.body;
  const live = body.dataset.live;
  if (!live) return;
  const marker = document.getElementById("live");

  async function replace(url, target) {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) return;
      const html = await response.text();
      const node = document.getElementById(target);
      if (node) node.innerHTML = html;
    } catch (e) { /* the next event or tick tries again */ }
  }

  function refresh() {
    if (live === "approvals") {
      replace("/console/approvals/rows" + window.location.search, "queue");
    } else if (live === "approval") {
      // Keep a reason being typed: refresh only when nobody is typing one.
      const reason = document.getElementById("reason");
      if (reason && reason.value) return;
      replace("/console/approvals/" + body.dataset.id + "/panel", "panel");
    } else if (live === "sessions") {
      replace("/console/sessions/rows", "sessions");
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button#deny");
    if (!button) return;
    const reason = document.getElementById("reason");
    if (reason && !reason.value.trim()) {
      event.preventDefault();
      reason.setCustomValidity("A denial needs a reason.");
      reason.reportValidity();
      reason.addEventListener("input", function () { reason.setCustomValidity(""); }, { once: true });
    }
  });

  if (live === "sessions") {
    window.setInterval(refresh, 5000);
    return;
  }
  let polling = null;
  function poll() {
    if (polling === null) polling = window.setInterval(refresh, 5000);
    if (marker) { marker.classList.add("off"); marker.textContent = "polling"; }
  }
  if (!window.EventSource) { poll(); return; }
  const source = new EventSource("/console/approvals/events");
  source.addEventListener("queue", refresh);
  source.addEventListener("hello", function () {
    if (polling !== null) { window.clearInterval(polling); polling = null; }
    if (marker) { marker.classList.remove("off"); marker.textContent = "live"; }
  });
  source.onerror = function () { poll(); };

})();

// The workers page refreshes its rows every few seconds (the server renders them).
"use strict";
(() => {
  const rows = document.getElementById("worker-rows");
  const toggle = document.getElementById("auto-refresh");
  const KEY = "executor.workers.autoRefresh";
  toggle.checked = window.localStorage.getItem(KEY) !== "off";
  toggle.addEventListener("change", () => window.localStorage.setItem(KEY, toggle.checked ? "on" : "off"));

  async function refresh() {
    if (!toggle.checked || document.hidden) return;
    try {
      const answer = await fetch("/ui/workers?partial=true", { credentials: "same-origin" });
      if (answer.ok) rows.innerHTML = await answer.text(); // server-rendered, escaped
    } catch (_) { /* the next tick tries again */ }
  }
  setInterval(refresh, 2000);
})();

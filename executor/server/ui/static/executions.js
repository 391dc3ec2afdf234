// The executions list refreshes its rows every few seconds (the server renders them).
"use strict";
(() => {
  const rows = document.getElementById("execution-rows");
  const toggle = document.getElementById("auto-refresh");
  const KEY = "executor.executions.autoRefresh";
  toggle.checked = window.localStorage.getItem(KEY) !== "off";
  toggle.addEventListener("change", () => window.localStorage.setItem(KEY, toggle.checked ? "on" : "off"));

  async function refresh() {
    if (!toggle.checked || document.hidden) return;
    const params = new URLSearchParams(window.location.search);
    params.set("partial", "true");
    try {
      const answer = await fetch(`/ui/executions?${params}`, { credentials: "same-origin" });
      if (answer.ok) rows.innerHTML = await answer.text(); // server-rendered, escaped
    } catch (_) { /* the next tick tries again */ }
  }
  setInterval(refresh, 2500);
})();

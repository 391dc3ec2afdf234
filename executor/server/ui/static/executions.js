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
      if (answer.ok) {
        rows.innerHTML = await answer.text(); // server-rendered, escaped
        keepPicks();
      }
    } catch (_) { /* the next tick tries again */ }
  }
  setInterval(refresh, 2500);

  // ----- restart of several: the ticked FAILED/KILLED executions, kept across refreshes
  const picked = new Set();
  const button = document.getElementById("restart-selected");
  const status = document.getElementById("bulk-status");

  function keepPicks() {
    for (const box of rows.querySelectorAll(".pick-restart")) box.checked = picked.has(box.value);
    const live = new Set(Array.from(rows.querySelectorAll(".pick-restart"), (box) => box.value));
    for (const id of Array.from(picked)) if (!live.has(id)) picked.delete(id);
    button.disabled = picked.size === 0;
    button.textContent = picked.size ? `Restart selected (${picked.size})` : "Restart selected";
  }

  rows.addEventListener("change", (event) => {
    const box = event.target.closest(".pick-restart");
    if (!box) return;
    if (box.checked) picked.add(box.value); else picked.delete(box.value);
    keepPicks();
  });

  button.addEventListener("click", async () => {
    const ids = Array.from(picked);
    button.disabled = true;
    status.textContent = `restarting ${ids.length}…`;
    try {
      const answer = await UI.call("POST", "/executions/restart/by-ids", JSON.stringify(ids),
        { "Content-Type": "application/json" });
      const result = await answer.json();
      const refused = (result.errors || []).map((e) => `${e.id}: ${e.message}`);
      status.textContent = `${result.count} restarted` + (refused.length ? `; not restarted: ${refused.join("; ")}` : "");
    } catch (error) {
      status.textContent = `restart failed: ${error.message}`;
    }
    picked.clear();
    keepPicks();
    refresh();
  });
})();

// The triggers table (the Triggers page, and the flow page's section): enable, disable,
// backfill through Kestra's trigger API, then the rows are rendered again by the server.
"use strict";
(() => {
  const table = document.getElementById("triggers");
  if (!table) return;
  const rows = document.getElementById("trigger-rows");
  const toggle = document.getElementById("auto-refresh");

  async function refresh() {
    try {
      const answer = await fetch(table.dataset.rowsUrl, { credentials: "same-origin" });
      if (answer.ok) rows.innerHTML = await answer.text(); // server-rendered, escaped
    } catch (_) { /* the next tick tries again */ }
  }

  function keyOf(row) {
    return {
      namespace: row.dataset.namespace,
      flowId: row.dataset.flowId,
      triggerId: row.dataset.triggerId,
    };
  }

  async function send(row, method, path, body) {
    const error = row.querySelector(".error-message");
    error.textContent = "";
    try {
      await UI.call(method, path, JSON.stringify(body), { "Content-Type": "application/json" });
      await refresh();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  rows.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr.trigger");
    const key = keyOf(row);
    const action = button.dataset.action;
    if (action === "enable" || action === "disable") {
      send(row, "PUT", "/triggers", { ...key, disabled: action === "disable" });
    } else {
      send(row, "POST", `/triggers/backfill/${action}`, key);
    }
  });

  rows.addEventListener("submit", (event) => {
    const form = event.target.closest("form.backfill-form");
    if (!form) return;
    event.preventDefault();
    const row = form.closest("tr.trigger");
    const backfill = { start: form.elements.start.value.trim() };
    if (form.elements.end.value.trim()) backfill.end = form.elements.end.value.trim();
    send(row, "PUT", "/triggers", { ...keyOf(row), backfill });
  });

  setInterval(() => {
    if (document.hidden || (toggle && !toggle.checked)) return;
    if (rows.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
    refresh();
  }, 2000);
})();

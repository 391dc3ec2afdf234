// The execution page: state, task tree and Gantt follow the execution's event stream (the
// server re-renders that part); logs follow the log stream, filtered by level and text here.
"use strict";
(() => {
  const live = document.getElementById("live");
  const executionId = live.dataset.executionId;
  const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
  const LOG_QUIET_MS = 2000;

  const terminal = () => {
    const summary = document.getElementById("summary");
    return summary && summary.dataset.terminal === "true";
  };

  // ----- the live part: re-rendered by the server on each change
  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const answer = await fetch(live.dataset.url, { credentials: "same-origin" });
      if (answer.ok) {
        live.innerHTML = await answer.text(); // server-rendered and escaped by the template
        if (terminal()) ended();
      }
    } catch (_) { /* the next event or tick tries again */ } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  let stateStream = null;
  let ticker = null;
  let finished = false;
  function ended() {
    if (finished) return;
    finished = true;
    if (stateStream) stateStream.close();
    clearInterval(ticker);
    // lines written just before the end still arrive; once they stop, the stream is closed
    const quiet = setInterval(() => {
      if (Date.now() - lastLogAt > LOG_QUIET_MS) { clearInterval(quiet); closeLogs(); }
    }, 500);
  }

  function followState() {
    if (terminal()) { ended(); return; }
    stateStream = new EventSource(UI.api(`/executions/${UI.enc(executionId)}/follow`));
    stateStream.onmessage = (event) => {
      if (event.lastEventId === "progress" || event.lastEventId === "end") refresh();
      if (event.lastEventId === "end") stateStream.close();
    };
    // bars of running tasks grow with time: redraw now and then between events
    ticker = setInterval(() => { if (!document.hidden) refresh(); }, 2000);
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("#kill");
    if (!button) return;
    if (!window.confirm("Kill this execution?")) return;
    button.disabled = true;
    button.textContent = "Killing…";
    try {
      await UI.call("DELETE", `/executions/${UI.enc(executionId)}/kill`);
    } catch (error) {
      button.disabled = false;
      button.textContent = "Kill";
      window.alert(`Kill failed: ${error.message}`);
    }
    refresh();
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("#resume");
    if (!button) return;
    button.disabled = true;
    try {
      await UI.call("POST", `/executions/${UI.enc(executionId)}/resume`, new FormData());
    } catch (error) {
      button.disabled = false;
      window.alert(`Resume failed: ${error.message}`);
    }
    refresh();
  });

  // ----- logs
  const box = document.getElementById("logs");
  const status = document.getElementById("log-status");
  const levelSelect = document.getElementById("log-level");
  const search = document.getElementById("log-search");
  const tail = document.getElementById("log-tail");
  const count = document.getElementById("log-count");
  let logStream = null;
  let logsClosed = false;
  let lines = 0;
  let lastLogAt = Date.now();
  let scrollQueued = false;

  function timeOf(stamp) {
    const match = /T(\d\d:\d\d:\d\d(?:\.\d{1,3})?)/.exec(stamp || "");
    return match ? match[1] : (stamp || "");
  }

  function marked(text, needle) {
    // the message as text nodes, with <mark> around each match of the search
    const parts = [];
    if (!needle) { parts.push(document.createTextNode(text)); return parts; }
    const lower = text.toLowerCase();
    let from = 0;
    for (;;) {
      const at = lower.indexOf(needle, from);
      if (at < 0) break;
      if (at > from) parts.push(document.createTextNode(text.slice(from, at)));
      parts.push(UI.el("mark", null, text.slice(at, at + needle.length)));
      from = at + needle.length;
    }
    if (from < text.length) parts.push(document.createTextNode(text.slice(from)));
    return parts;
  }

  function filters() {
    return { min: LEVELS.indexOf(levelSelect.value), needle: search.value.trim().toLowerCase() };
  }

  function show(row, wanted) {
    const visible = row.levelIndex >= wanted.min && (!wanted.needle || row.lower.includes(wanted.needle));
    row.hidden = !visible;
    if (visible) row.message.replaceChildren(...marked(row.text, wanted.needle));
  }

  function addLine(entry) {
    const row = UI.el("div", "log");
    row.levelIndex = Math.max(LEVELS.indexOf(entry.level), 0);
    row.text = String(entry.message ?? "");
    row.lower = `${row.text} ${entry.taskId || ""}`.toLowerCase();
    row.append(
      UI.el("span", "ts", timeOf(entry.timestamp)),
      UI.el("span", `lvl lvl-${entry.level}`, entry.level),
      UI.el("span", "task", entry.taskId || ""),
    );
    row.message = UI.el("span", "msg");
    row.append(row.message);
    row.dataset.level = entry.level;
    show(row, filters());
    box.append(row);
    lines += 1;
    if (!scrollQueued) {
      scrollQueued = true;
      requestAnimationFrame(() => {
        scrollQueued = false;
        if (tail.checked) box.scrollTop = box.scrollHeight;
        count.textContent = `${lines} line${lines === 1 ? "" : "s"}`;
      });
    }
  }

  function refilter() {
    const wanted = filters();
    for (const row of box.children) show(row, wanted);
  }

  function openLogs() {
    if (logsClosed) return;
    logStream = new EventSource(UI.api(`/logs/${UI.enc(executionId)}/follow`));
    logStream.onopen = () => { status.textContent = "live"; };
    logStream.onmessage = (event) => {
      lastLogAt = Date.now();
      if (event.lastEventId === "progress") addLine(JSON.parse(event.data));
      if (event.lastEventId === "end") closeLogs(); // the run ended and every line came
    };
    logStream.onerror = () => {
      // the stream replays every stored line when reopened: start over from an empty box
      logStream.close();
      if (logsClosed) return;
      status.textContent = "reconnecting…";
      setTimeout(() => { box.replaceChildren(); lines = 0; openLogs(); }, 2000);
    };
  }

  function closeLogs() {
    logsClosed = true;
    if (logStream) logStream.close();
    status.textContent = "complete";
  }

  levelSelect.addEventListener("change", refilter);
  search.addEventListener("input", UI.debounce(refilter, 150));

  async function loadEndedLogs() {
    // an execution that has ended: its logs at once, no stream to keep open
    logsClosed = true;
    try {
      const answer = await UI.call("GET", `/logs/${UI.enc(executionId)}`);
      for (const entry of await answer.json()) addLine(entry);
      status.textContent = "complete";
    } catch (error) {
      status.textContent = `logs unavailable: ${error.message}`;
    }
  }

  if (terminal()) {
    finished = true;
    loadEndedLogs();
  } else {
    openLogs();
    followState();
  }
})();

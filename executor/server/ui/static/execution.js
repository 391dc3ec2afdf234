// The execution page: state, task tree and Gantt follow the execution's event stream (the
// server re-renders that part); logs follow the log stream, filtered by task, level and text
// here, with their terminal colours. What the user did to the live part (folded tasks, open
// previews) is applied again each time it is re-rendered.
"use strict";
(() => {
  const live = document.getElementById("live");
  const executionId = live.dataset.executionId;
  const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
  const LOG_QUIET_MS = 2000;
  const PREVIEW_ROWS = 50;

  const summary = () => document.getElementById("summary");
  const terminal = () => summary() !== null && summary().dataset.terminal === "true";

  // ----- folding the tree: folded task runs are remembered by id across re-renders
  const folded = new Set();

  function applyFolds() {
    const rows = Array.from(live.querySelectorAll("#task-tree tr.task"));
    const hiddenParents = new Set();
    for (const row of rows) {
      const runId = row.dataset.taskRunId;
      const parent = row.dataset.parent;
      const hide = parent !== "" && hiddenParents.has(parent);
      row.hidden = hide;
      if (runId && (hide || folded.has(runId))) hiddenParents.add(runId);
      const twisty = row.querySelector(".twisty");
      if (twisty) {
        const isFolded = folded.has(runId);
        twisty.textContent = isFolded ? "▸" : "▾";
        twisty.setAttribute("aria-expanded", isFolded ? "false" : "true");
      }
    }
  }

  // ----- file previews: open ones stay open (and are not fetched again) across re-renders
  const previews = new Map(); // uri -> rendered node

  function csvRows(text) {
    // RFC 4180: quoted fields may hold commas, quotes ("") and newlines
    const rows = [];
    let row = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; } else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i += 1;
        row.push(field); rows.push(row); row = []; field = "";
      } else field += c;
    }
    if (field !== "" || row.length) { row.push(field); rows.push(row); }
    return rows;
  }

  function previewNode(uri, data) {
    const box = UI.el("div", "preview-body");
    const extension = String(data.extension || "").toLowerCase();
    const content = String(data.content ?? "");
    if (extension === "csv" || extension === "tsv") {
      const rows = extension === "tsv" ? content.split("\n").filter((l) => l).map((l) => l.split("\t")) : csvRows(content);
      const wrap = UI.el("div", "table-wrap");
      const table = UI.el("table", "grid compact preview-table");
      rows.forEach((cells, index) => {
        const tr = UI.el("tr");
        for (const cell of cells) tr.append(UI.el(index === 0 ? "th" : "td", null, cell));
        table.append(tr);
      });
      wrap.append(table);
      box.append(wrap);
    } else {
      let text = content;
      if (extension === "json") {
        try { text = JSON.stringify(JSON.parse(content), null, 2); } catch (_) { /* lines of JSON */ }
      }
      box.append(UI.el("pre", "code preview-text", text));
    }
    const note = data.truncated ? `first ${PREVIEW_ROWS} lines` : "whole file";
    box.append(UI.el("p", "muted small", note));
    box.dataset.uri = uri;
    return box;
  }

  function applyPreviews() {
    for (const item of live.querySelectorAll("#output-files li[data-uri]")) {
      const node = previews.get(item.dataset.uri);
      const slot = item.querySelector(".preview");
      const button = item.querySelector(".preview-button");
      if (node && slot) {
        slot.replaceChildren(node);
        slot.hidden = false;
        button.textContent = "Hide";
        button.setAttribute("aria-expanded", "true");
      }
    }
  }

  async function togglePreview(button) {
    const uri = button.dataset.uri;
    const slot = button.closest("li").querySelector(".preview");
    if (previews.has(uri)) {
      previews.delete(uri);
      slot.replaceChildren();
      slot.hidden = true;
      button.textContent = "Preview";
      button.setAttribute("aria-expanded", "false");
      return;
    }
    button.disabled = true;
    try {
      const answer = await UI.call("GET", `/executions/${UI.enc(executionId)}/file/preview?path=${UI.enc(uri)}&maxRows=${PREVIEW_ROWS}`);
      previews.set(uri, previewNode(uri, await answer.json()));
    } catch (error) {
      previews.set(uri, UI.el("p", "error-message", `No preview: ${error.message}`));
    } finally {
      button.disabled = false;
    }
    applyPreviews();
  }

  // ----- the resume form lives outside the live part: fetched when the execution pauses
  const resumeBox = document.getElementById("resume-box");

  async function updateResume() {
    const paused = summary() !== null && summary().dataset.state === "PAUSED";
    if (!paused) { resumeBox.replaceChildren(); return; }
    if (resumeBox.querySelector("#resume-form")) return;
    try {
      const answer = await fetch(resumeBox.dataset.url, { credentials: "same-origin" });
      if (answer.ok) resumeBox.innerHTML = await answer.text(); // server-rendered, escaped
    } catch (_) { /* the next refresh tries again */ }
  }

  async function submitResume(form) {
    const panel = document.getElementById("resume-panel");
    const errorBox = document.getElementById("resume-error");
    const button = document.getElementById("resume");
    errorBox.textContent = "";
    button.disabled = true;
    try {
      const check = await UI.call("POST", `/executions/${UI.enc(executionId)}/resume/validate`, UI.inputsForm(panel));
      const result = await check.json();
      const errors = {};
      for (const item of result.inputs || []) {
        if (item.errors && item.errors.length) errors[item.input.id] = item.errors.map((e) => e.message).join("; ");
      }
      UI.fieldErrors(panel, errors);
      if (Object.keys(errors).length || (result.checks || []).length) {
        errorBox.textContent = (result.checks || []).map((c) => c.message).join("; ");
        button.disabled = false;
        return;
      }
      await UI.call("POST", `/executions/${UI.enc(executionId)}/resume`, UI.inputsForm(panel));
      button.textContent = "Resuming…";
      refresh();
    } catch (error) {
      errorBox.textContent = error.message;
      button.disabled = false;
    }
  }

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
        applyFolds();
        applyPreviews();
        addTaskOptions();
        await updateResume();
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
    const kill = event.target.closest("#kill");
    if (kill) {
      if (!window.confirm("Kill this execution?")) return;
      kill.disabled = true;
      kill.textContent = "Killing…";
      try {
        await UI.call("DELETE", `/executions/${UI.enc(executionId)}/kill`);
      } catch (error) {
        kill.disabled = false;
        kill.textContent = "Kill";
        window.alert(`Kill failed: ${error.message}`);
      }
      refresh();
      return;
    }
    const restart = event.target.closest("#restart");
    if (restart) {
      restart.disabled = true;
      restart.textContent = "Restarting…";
      try {
        await UI.call("POST", `/executions/${UI.enc(executionId)}/restart`);
      } catch (error) {
        restart.disabled = false;
        restart.textContent = "Restart";
        window.alert(`Restart failed: ${error.message}`);
        return;
      }
      window.location.reload(); // the same execution runs again: follow it from the start
      return;
    }
    const replay = event.target.closest("#replay, .replay-from");
    if (replay) {
      const from = replay.dataset.taskRunId;
      const query = from ? `?taskRunId=${UI.enc(from)}` : "";
      replay.disabled = true;
      try {
        const answer = await UI.call("POST", `/executions/${UI.enc(executionId)}/replay${query}`);
        window.location.assign((await answer.json()).url); // the new execution's page
      } catch (error) {
        replay.disabled = false;
        window.alert(`Replay failed: ${error.message}`);
      }
      return;
    }
    const twisty = event.target.closest(".twisty");
    if (twisty) {
      const runId = twisty.closest("tr").dataset.taskRunId;
      if (folded.has(runId)) folded.delete(runId); else folded.add(runId);
      applyFolds();
      return;
    }
    const taskLink = event.target.closest(".task-link");
    if (taskLink) {
      showTask(taskLink.dataset.task);
      return;
    }
    const preview = event.target.closest(".preview-button");
    if (preview) togglePreview(preview);
  });

  document.addEventListener("submit", (event) => {
    if (event.target.closest("#resume-box")) {
      event.preventDefault();
      submitResume(event.target);
    }
  });

  // ----- logs
  const box = document.getElementById("logs");
  const status = document.getElementById("log-status");
  const taskSelect = document.getElementById("log-task");
  const levelSelect = document.getElementById("log-level");
  const search = document.getElementById("log-search");
  const tail = document.getElementById("log-tail");
  const count = document.getElementById("log-count");
  let logStream = null;
  let logsClosed = false;
  let lines = 0;
  let lastLogAt = Date.now();
  let scrollQueued = false;

  function addTaskOptions(extra) {
    const known = new Set(Array.from(taskSelect.options, (o) => o.value));
    const wanted = new Set(Array.from(live.querySelectorAll("#task-tree tr.task:not(.pending)"), (r) => r.dataset.taskId));
    if (extra) wanted.add(extra);
    for (const id of Array.from(wanted).sort()) {
      if (id && !known.has(id)) taskSelect.append(UI.el("option", null, id));
    }
  }

  function showTask(taskId) {
    addTaskOptions(taskId);
    taskSelect.value = taskId;
    refilter();
    document.getElementById("logs-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function timeOf(stamp) {
    const match = /T(\d\d:\d\d:\d\d(?:\.\d{1,3})?)/.exec(stamp || "");
    return match ? match[1] : (stamp || "");
  }

  // ANSI SGR colours (ESC[...m) as pieces of text with classes; every other escape is dropped
  const ESCAPES = /\x1b\[([0-9;]*)m|\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;
  function ansiPieces(text) {
    const pieces = [];
    let style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
    let from = 0;
    const push = (chunk) => { if (chunk) pieces.push({ text: chunk, style: { ...style } }); };
    for (const match of text.matchAll(ESCAPES)) {
      push(text.slice(from, match.index));
      from = match.index + match[0].length;
      if (match[1] === undefined) continue;
      const codes = match[1] === "" ? [0] : match[1].split(";").map(Number);
      for (let i = 0; i < codes.length; i += 1) {
        const code = codes[i];
        if (code === 0) style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
        else if (code === 1) style.bold = true;
        else if (code === 2) style.dim = true;
        else if (code === 3) style.italic = true;
        else if (code === 4) style.underline = true;
        else if (code === 22) { style.bold = false; style.dim = false; } else if (code === 23) style.italic = false;
        else if (code === 24) style.underline = false;
        else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) style.fg = code;
        else if (code === 39) style.fg = null;
        else if ((code >= 40 && code <= 47) || (code >= 100 && code <= 107)) style.bg = code;
        else if (code === 49) style.bg = null;
        else if ((code === 38 || code === 48) && codes[i + 1] === 5) {
          const n = codes[i + 2];
          const basic = n < 8 ? 30 + n : n < 16 ? 82 + n : null; // 0-15: the 16 colours
          if (basic !== null) { if (code === 38) style.fg = basic; else style.bg = basic + 10; }
          i += 2;
        } else if ((code === 38 || code === 48) && codes[i + 1] === 2) i += 4;
      }
    }
    push(text.slice(from));
    return pieces;
  }

  function styleClass(style) {
    const names = [];
    if (style.fg !== null) names.push(`ansi-${style.fg}`);
    if (style.bg !== null) names.push(`ansi-${style.bg}`);
    if (style.bold) names.push("ansi-bold");
    if (style.dim) names.push("ansi-dim");
    if (style.italic) names.push("ansi-italic");
    if (style.underline) names.push("ansi-underline");
    return names.join(" ");
  }

  function marked(pieces, needle) {
    // each piece as a span (or text) with <mark> around each match of the search
    const nodes = [];
    for (const piece of pieces) {
      const className = styleClass(piece.style);
      const parts = [];
      const text = piece.text;
      if (!needle) parts.push(document.createTextNode(text));
      else {
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
      }
      if (className) {
        const span = UI.el("span", className);
        span.append(...parts);
        nodes.push(span);
      } else nodes.push(...parts);
    }
    return nodes;
  }

  function filters() {
    return {
      task: taskSelect.value,
      min: LEVELS.indexOf(levelSelect.value),
      needle: search.value.trim().toLowerCase(),
    };
  }

  function show(row, wanted) {
    const visible = row.levelIndex >= wanted.min
      && (!wanted.task || row.taskId === wanted.task)
      && (!wanted.needle || row.lower.includes(wanted.needle));
    row.hidden = !visible;
    if (visible) row.message.replaceChildren(...marked(row.pieces, wanted.needle));
  }

  function addLine(entry) {
    const row = UI.el("div", "log");
    row.levelIndex = Math.max(LEVELS.indexOf(entry.level), 0);
    row.pieces = ansiPieces(String(entry.message ?? ""));
    row.taskId = entry.taskId || "";
    const plain = row.pieces.map((p) => p.text).join("");
    row.lower = `${plain} ${row.taskId}`.toLowerCase();
    row.append(
      UI.el("span", "ts", timeOf(entry.timestamp)),
      UI.el("span", `lvl lvl-${entry.level}`, entry.level),
      UI.el("span", "task", row.taskId),
    );
    row.message = UI.el("span", "msg");
    row.append(row.message);
    row.dataset.level = entry.level;
    row.dataset.task = row.taskId;
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
    logStream.onopen = () => { if (!logsClosed) status.textContent = "live"; };
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
      setTimeout(() => { if (logsClosed) return; box.replaceChildren(); lines = 0; openLogs(); }, 2000);
    };
  }

  function closeLogs() {
    logsClosed = true;
    if (logStream) logStream.close();
    status.textContent = "complete";
  }

  taskSelect.addEventListener("change", refilter);
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

  applyFolds();
  if (terminal()) {
    finished = true;
    loadEndedLogs();
  } else {
    openLogs();
    followState();
  }
})();

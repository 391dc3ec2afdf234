// The flow page: the YAML editor (line gutter, validation while typing, save) and the
// Execute form built from the flow's inputs.
"use strict";
(() => {
  const LOCATED = /^\s*flow:(\d+):(\d+):\s*(.*)$/;
  const section = document.getElementById("flow");

  // ----- editor
  const editor = document.getElementById("editor");
  if (editor) {
    const gutter = document.getElementById("gutter");
    const problemsList = document.getElementById("problems");
    const validation = document.getElementById("validation");
    const save = document.getElementById("save");
    const mode = section.dataset.mode;
    let badLines = new Set();
    let checked = 0;

    function drawGutter() {
      const count = editor.value.split("\n").length;
      const rows = [];
      for (let n = 1; n <= count; n += 1) {
        const row = UI.el("div", badLines.has(n) ? "bad" : "", n);
        row.dataset.line = n;
        rows.push(row);
      }
      gutter.replaceChildren(...rows);
      gutter.scrollTop = editor.scrollTop;
    }

    function parseProblems(message) {
      const found = [];
      for (const text of String(message).split("\n")) {
        const match = LOCATED.exec(text);
        if (match) found.push({ line: Number(match[1]), message: match[3] });
        else if (text.trim() && !/problem\(s\) in the flow:\s*$/.test(text)) found.push({ line: null, message: text.trim() });
      }
      return found;
    }

    function showProblems(problems) {
      badLines = new Set(problems.filter((p) => p.line).map((p) => p.line));
      problemsList.replaceChildren(...problems.map((p) => {
        const item = UI.el("li");
        if (p.line) {
          item.dataset.line = p.line;
          item.append(UI.el("strong", null, `line ${p.line}: `));
        }
        item.append(document.createTextNode(p.message));
        return item;
      }));
      drawGutter();
    }

    function setStatus(state, text) {
      validation.dataset.state = state;
      validation.textContent = text;
    }

    async function validate() {
      const mine = ++checked;
      setStatus("checking", "Checking…");
      try {
        const answer = await UI.call("POST", "/flows/validate", editor.value, { "Content-Type": "application/x-yaml" });
        const results = await answer.json();
        if (mine !== checked) return; // a newer check is on its way
        const problems = results.flatMap((r) => (r.constraints ? parseProblems(r.constraints) : []));
        if (!results.length) problems.push({ line: null, message: "the flow is empty" });
        showProblems(problems);
        if (problems.length) setStatus("bad", `${problems.length} problem${problems.length === 1 ? "" : "s"}`);
        else setStatus("ok", "Valid");
      } catch (error) {
        if (mine !== checked) return;
        showProblems(parseProblems(error.message));
        setStatus("bad", "Not checked: see below");
      }
    }
    const validateSoon = UI.debounce(validate, 400);

    editor.addEventListener("input", () => { drawGutter(); validateSoon(); });
    editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });
    editor.addEventListener("keydown", (event) => {
      if (event.key !== "Tab" || event.shiftKey) return;
      event.preventDefault();
      editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
      drawGutter();
      validateSoon();
    });

    save.addEventListener("click", async () => {
      save.disabled = true;
      try {
        let answer;
        if (mode === "create") {
          answer = await UI.call("POST", "/flows", editor.value, { "Content-Type": "application/x-yaml" });
        } else {
          const path = `/flows/${UI.enc(section.dataset.namespace)}/${UI.enc(section.dataset.flowId)}`;
          answer = await UI.call("PUT", path, editor.value, { "Content-Type": "application/x-yaml" });
        }
        const flow = await answer.json();
        window.location.assign(`/ui/flows/${UI.enc(flow.namespace)}/${UI.enc(flow.id)}`);
      } catch (error) {
        showProblems(parseProblems(error.message));
        setStatus("bad", "Not saved");
        save.disabled = false;
      }
    });

    const editButton = document.getElementById("edit");
    if (editButton) {
      editButton.addEventListener("click", () => {
        document.getElementById("source").hidden = true;
        const stored = document.getElementById("stored-problems");
        if (stored) stored.hidden = true;
        document.getElementById("editing").hidden = false;
        editButton.hidden = true;
        drawGutter();
        editor.focus();
        validate();
      });
    } else {
      drawGutter();
      validate();
    }
  }

  // ----- execute
  // Controls are found by data-input and read through the DOM, never through the form's own
  // properties: a flow input may be called "action", "elements", "dataset" or "submit".
  const executeBox = document.getElementById("execute");
  const form = document.getElementById("execute-form");
  if (executeBox && form) {
    const errorBox = document.getElementById("execute-error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errorBox.textContent = "";
      UI.fieldErrors(executeBox, {});
      const body = UI.inputsForm(executeBox);
      const labels = [];
      for (const line of document.getElementById("execute-labels").value.split("\n")) {
        if (line.trim()) labels.push(line.trim());
      }
      const query = labels.map((l) => `labels=${UI.enc(l)}`).join("&");
      const ns = executeBox.dataset.namespace;
      const id = executeBox.dataset.flowId;
      const button = document.getElementById("execute-button");
      button.disabled = true;
      try {
        const answer = await UI.call("POST", `/executions/${UI.enc(ns)}/${UI.enc(id)}${query ? `?${query}` : ""}`, body);
        const execution = await answer.json();
        window.location.assign(`/ui/executions/${UI.enc(ns)}/${UI.enc(id)}/${UI.enc(execution.id)}`);
      } catch (error) {
        // "input 'x' (INT) is required; input 'y' is not a valid INT: ..." goes next to x and y
        const byInput = {};
        const rest = [];
        for (const part of String(error.message).split("; ")) {
          const match = /^input '([^']+)' (?:\([A-Z]+\) )?is (.*)$/.exec(part);
          if (match && executeBox.querySelector(`[data-error-for="${CSS.escape(match[1])}"]`)) {
            byInput[match[1]] = match[2].replace(/: pass -i .*$/, "");
          } else rest.push(part);
        }
        UI.fieldErrors(executeBox, byInput);
        errorBox.textContent = rest.join("; ");
        button.disabled = false;
      }
    });
  }
})();

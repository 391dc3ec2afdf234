// What every page's script shares: calling Kestra's API and reading its errors.
// Everything shown from the API goes through textContent, never innerHTML.
"use strict";

const UI = {
  api(path) {
    return document.body.dataset.api + path;
  },

  // fetch, throwing an Error with the API's {"message": ...} when the answer is not 2xx
  async call(method, path, body, headers) {
    const answer = await fetch(UI.api(path), { method, body, headers, credentials: "same-origin" });
    if (!answer.ok) {
      let message = `${answer.status} ${answer.statusText}`;
      try {
        const data = await answer.json();
        if (data && data.message) message = data.message;
      } catch (_) { /* not JSON: the status says it */ }
      const error = new Error(message);
      error.status = answer.status;
      throw error;
    }
    return answer;
  },

  debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  },

  el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  },

  enc: encodeURIComponent,

  // The input fields under `box` (see _fields.html) as multipart form data: a file as a file
  // part, a multiple select as JSON, an empty field left out (the input's default applies).
  inputsForm(box) {
    const body = new FormData();
    for (const field of box.querySelectorAll("[data-input]")) {
      const name = field.dataset.input;
      if (field.type === "file") {
        if (field.files.length) body.append(name, field.files[0], field.files[0].name);
      } else if (field.dataset.multi === "json") {
        const chosen = Array.from(field.selectedOptions, (o) => o.value);
        if (chosen.length) body.append(name, JSON.stringify(chosen));
      } else if (field.value !== "") {
        body.append(name, field.value);
      }
    }
    return body;
  },

  // Show each input's message next to its field (`errors`: input id -> message); clears others.
  fieldErrors(box, errors) {
    for (const slot of box.querySelectorAll("[data-error-for]")) {
      const message = errors[slot.dataset.errorFor];
      slot.textContent = message || "";
      slot.hidden = !message;
      const field = slot.closest(".field");
      if (field) field.classList.toggle("invalid", Boolean(message));
    }
  },
};
window.UI = UI;

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
};
window.UI = UI;

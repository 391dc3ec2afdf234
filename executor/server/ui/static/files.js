// Namespace files: upload, new directory and delete, through Kestra's namespace files API.
"use strict";
(() => {
  const box = document.getElementById("files");
  const ns = box.dataset.namespace;
  const here = box.dataset.path.replace(/\/+$/, "");
  const filesApi = `/namespaces/${UI.enc(ns)}/files`;
  const browse = (path) => `/ui/namespaces/${UI.enc(ns)}/files?path=${UI.enc(path || "/")}`;

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button.delete");
    if (!button) return;
    const path = button.dataset.path;
    if (!window.confirm(`Delete ${path}?`)) return;
    try {
      await UI.call("DELETE", `${filesApi}?path=${UI.enc(path)}`);
      if (button.dataset.then === "up") window.location.assign(browse(path.replace(/\/[^/]*$/, "")));
      else window.location.reload();
    } catch (error) {
      window.alert(`Delete failed: ${error.message}`);
    }
  });

  const upload = document.getElementById("upload-form");
  if (upload) {
    upload.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = document.getElementById("upload-file").files[0];
      const errorBox = document.getElementById("upload-error");
      errorBox.textContent = "";
      if (!file) return;
      const name = document.getElementById("upload-name").value.trim() || file.name;
      const body = new FormData();
      body.append("fileContent", file, file.name);
      try {
        await UI.call("POST", `${filesApi}?path=${UI.enc(`${here}/${name}`)}`, body);
        window.location.reload();
      } catch (error) {
        errorBox.textContent = error.message;
      }
    });
  }

  const mkdir = document.getElementById("mkdir-form");
  if (mkdir) {
    mkdir.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = document.getElementById("mkdir-name").value.trim();
      const errorBox = document.getElementById("mkdir-error");
      errorBox.textContent = "";
      try {
        await UI.call("POST", `${filesApi}/directory?path=${UI.enc(`${here}/${name}`)}`);
        window.location.assign(browse(`${here}/${name}`));
      } catch (error) {
        errorBox.textContent = error.message;
      }
    });
  }
})();

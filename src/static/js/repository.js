// Repository export (download the bundle as a .json file) and import (from a file picker or a file
// dropped on the page; merge or replace, replace confirmed; the server's errors listed).

import { api } from "./api.js";
import { choose, confirmAction } from "./dialogs.js";
import { h } from "./dom.js";
import { Emitter } from "./events.js";
import { askClashes, resolveBundle } from "./importclash.js";
import { status } from "./status.js";
import { detailLines } from "./wording.js";

export class Repository extends Emitter {
  constructor({ fileInput, dropZone }) {
    super();
    this.fileInput = fileInput;
    fileInput.addEventListener("change", () => {
      const [file] = fileInput.files;
      fileInput.value = "";
      if (file) this.importFile(file);
    });
    this.#acceptDrops(dropZone);
  }

  async exportBundle() {
    try {
      const { bundle, filename } = await api.exportRepository();
      const blob = new Blob([JSON.stringify(bundle, null, 2)], { type: "application/json" });
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: filename, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      const specs = Object.keys(bundle.nodespec || {}).length;
      const flows = Object.keys(bundle.flow || {}).length;
      status.toast(`Exported ${specs} nodespecs and ${flows} flows to ${filename}`, "success");
    } catch (error) {
      status.error(error, "Export failed");
    }
  }

  pickFile() {
    this.fileInput.click();
  }

  async importFile(file) {
    let bundle;
    try {
      bundle = JSON.parse(await file.text());
    } catch (error) {
      status.toast(`${file.name} is not a JSON file: ${error.message}`, "error");
      return;
    }
    const specs = Object.keys(bundle?.nodespec || {}).length;
    const flows = Object.keys(bundle?.flow || {}).length;
    const mode = await choose({
      title: `Import ${file.name}`,
      message: `The file holds ${specs} nodespec${specs === 1 ? "" : "s"} and ${flows} flow${flows === 1 ? "" : "s"}. ` +
        "Merge adds them and updates those with the same id; replace makes the repository exactly this file.",
      buttons: [
        { label: "Cancel", value: null },
        { label: "Replace…", value: "replace", danger: true },
        { label: "Merge", value: "merge", primary: true },
      ],
    });
    if (!mode) return;
    if (mode === "replace") {
      const sure = await confirmAction("Replace the whole repository?",
        "Every nodespec and flow that is not in the file will be deleted. The server keeps a copy of what it deletes " +
        "or overwrites (backups/ beside its database); importing that copy puts them back.", "Replace everything", true);
      if (!sure) return;
    }
    if (mode === "merge") {
      bundle = await this.#resolveClashes(file, bundle);
      if (!bundle) return;
    }
    try {
      const summary = await api.importRepository(bundle, mode);
      const parts = ["created", "updated", "unchanged", "deleted"].filter((k) => summary[k]).map((k) => `${summary[k]} ${k}`);
      status.toast(`Imported ${file.name} (${mode}): ${parts.join(", ") || "nothing changed"}`, "success",
        { detail: summary.backup ? `What it replaced is kept on the server in ${summary.backup}` : undefined });
      this.emit("imported", summary);
    } catch (error) {
      this.#showImportErrors(file, error, bundle);
    }
  }

  /** The bundle with the person's answer for each id it would overwrite; null when cancelled. */
  async #resolveClashes(file, bundle) {
    let preview;
    try {
      preview = await api.previewImport(bundle);
    } catch (error) {
      this.#showImportErrors(file, error, bundle);
      return null;
    }
    if (!preview.clashes.length) return bundle;
    const choices = await askClashes(file.name, preview);
    if (!choices) return null;
    const stored = new Set(preview.clashes.map((c) => c.id));
    try {
      const [specs, flows] = await Promise.all([api.listSpecs(), api.listFlows()]);
      for (const item of [...specs, ...flows]) stored.add(item.id);
    } catch { /* copies still get ids new to the file and its clashes; the server refuses a taken one */ }
    return resolveBundle(bundle, choices, stored);
  }

  #showImportErrors(file, error, bundle) {
    const details = error.details || [];
    const body = h("div.import-errors", {},
      details.length
        ? h("ul.error-list", {}, detailLines(details, bundle, { tag: "li", limit: 50 }))
        : null);
    status.say(`Import failed: ${error.message}`, "error");
    choose({ title: `Could not import ${file.name}`, message: error.message, body, buttons: [{ label: "Close", value: null, primary: true }], className: "import-error-dialog" });
  }

  // A JSON file dropped anywhere on the page imports it.
  #acceptDrops(zone) {
    let depth = 0;
    const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
    zone.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      depth += 1;
      document.body.classList.add("file-over");
    });
    zone.addEventListener("dragleave", (event) => {
      if (!hasFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (!depth) document.body.classList.remove("file-over");
    });
    zone.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      document.body.classList.remove("file-over");
      const [file] = event.dataTransfer.files;
      if (file) this.importFile(file);
    });
  }
}

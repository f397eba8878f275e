// The nodespec editor: id, title, description, a table of ports, the Python function in CodeMirror, a
// button that infers the ports from the function's signature, and a test panel that runs the draft once.
// Server validation errors (JSON pointers in details[].path) are shown next to the field they concern.

import { api, ApiError } from "./api.js";
import { choose, confirmAction } from "./dialogs.js";
import { clear, formatDuration, h, valueToText } from "./dom.js";
import { Emitter } from "./events.js";
import { idProblem } from "./flows.js";
import { jsonTree } from "./jsontree.js";
import { status } from "./status.js";
import { RequirementsField } from "./requirements.js";
import { truthy } from "./vocabulary.js";
import { detailLines } from "./wording.js";

const TEMPLATE = `def func(a: int, b: int = 1) -> int:
    """Add b to a.

    :returns: out
    """
    return a + b
`;

// The template's own ports, so a new nodespec runs as it opens.
const TEMPLATE_PORTS = {
  input: [{ name: "a", order: 0, type: "Int", required: true }, { name: "b", order: 1, type: "Int", default: 1 }],
  output: [{ name: "out", type: "Int" }],
};
const SYNC_DELAY_MS = 300; // after the last keystroke, the signature is read again

let codeEditorModule = null;

/** The code editor module (CodeMirror), loaded on first use; see code-editor.js. */
function loadCodeEditor() {
  codeEditorModule ||= import("./code-editor.js").catch((error) => {
    codeEditorModule = null; // let a later attempt try again
    throw error;
  });
  return codeEditorModule;
}

/** The value typed in a default cell: JSON for non-string types when it parses, else the text itself. */
function parseDefault(text, type) {
  if (type === "String") return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class NodespecEditor extends Emitter {
  constructor({ catalog }) {
    super();
    this.catalog = catalog;
    this.root = null;
  }

  get isOpen() {
    return Boolean(this.root?.isConnected);
  }

  // --------------------------------------------------------------------------------- opening
  async open(specId = null) {
    if (this.isOpen && !(await this.close())) return;
    const loading = loadCodeEditor(); // fetched while the nodespec is
    loading.catch(() => {}); // a failure is reported below, unless opening stops earlier
    let doc = { id: "", title: "", description: "", port: structuredClone(TEMPLATE_PORTS), func: TEMPLATE };
    let etag = null;
    if (specId) {
      try {
        ({ doc, etag } = await api.getSpec(specId));
      } catch (error) {
        status.error(error, `Could not open nodespec ${specId}`);
        return;
      }
    }
    let codeEditor;
    try {
      ({ createCodeEditor: codeEditor } = await loading);
    } catch (error) {
      status.error(error, "Could not load the code editor");
      return;
    }
    if (this.isOpen) return; // opened again meanwhile
    this.etag = etag;
    this.isNew = !specId;
    this.original = JSON.stringify(doc);
    this.#build(doc, codeEditor);
    this.#loadPorts(doc);
    this.signature = (doc.port?.input || []).map((p) => p.name).join(); // as the table has them
  }

  /** Close, asking first when there are unsaved edits; true when closed. */
  async close() {
    if (!this.isOpen) return true;
    if (this.#changed()) {
      const ok = await confirmAction("Discard changes?", "This nodespec has unsaved changes.", "Discard", true);
      if (!ok) return false;
    }
    this.code?.destroy();
    this.root.remove();
    this.root = null;
    return true;
  }

  #changed() {
    try {
      return JSON.stringify(this.#document()) !== this.original;
    } catch {
      return true;
    }
  }

  // ---------------------------------------------------------------------------------- layout
  #build(doc, createCodeEditor) {
    this.fields = {
      id: h("input.input", { type: "text", value: doc.id, readOnly: !this.isNew, dataset: { path: "/id" }, spellcheck: "false", placeholder: "e.g. text.upper" }),
      title: h("input.input", { type: "text", value: doc.title || "", dataset: { path: "/title" }, placeholder: "Shown on the node" }),
      description: h("textarea.input", { rows: 2, dataset: { path: "/description" }, placeholder: "What it does (optional)" }, doc.description || ""),
      tags: h("input.input", { type: "text", value: (doc.tags || []).join(", "), dataset: { path: "/tags" }, placeholder: "comma separated (optional)" }),
    };
    this.extra = Object.fromEntries(Object.entries(doc).filter(([key]) => !["id", "title", "description", "tags", "requirements", "port", "func"].includes(key)));
    this.requirements = new RequirementsField(doc.requirements, () => this.code.text());
    this.inputRows = h("tbody");
    this.outputRows = h("tbody");
    this.codeHost = h("div.code-host", { dataset: { path: "/func" } });
    this.testInputs = h("div.test-inputs");
    this.testResult = h("div.test-result", { "aria-live": "polite" });
    this.generalErrors = h("div.general-errors", { role: "alert" });

    const field = (label, input, path) => h("label.field", { dataset: { for: path } }, h("span.field-label", label), input, h("div.field-error"));
    const portTable = (kind, rows) => h("div.ports-block", { dataset: { for: `/port/${kind}` } },
      h("div.ports-head", {}, h("h4.subsection", kind === "input" ? "Input ports" : "Output ports"),
        h("button.btn.btn-small", { type: "button", onclick: () => this.#addPortRow(kind, {}), dataset: { action: `add-${kind}` } }, "+ Add")),
      h("table.ports-table", {},
        h("thead", {}, h("tr", {}, kind === "input"
          ? ["Name", "Type", "Default", "Req.", "Order", ""].map((t) => h("th", t))
          : ["Name", "Type", ""].map((t) => h("th", t)))),
        rows),
      h("div.field-error"));

    const title = this.isNew ? "New nodespec" : `Nodespec ${doc.id}`;
    const dialog = h("div.dialog.spec-editor", { role: "dialog", "aria-modal": "true", "aria-label": title },
      h("header.spec-editor-head", {},
        h("h2.dialog-title", title),
        h("button.icon-button", { type: "button", "aria-label": "Close", onclick: () => this.close() }, "×")),
      this.generalErrors,
      h("div.spec-editor-body", {},
        h("div.spec-editor-form", {},
          h("div.two-columns", {}, field("Id", this.fields.id, "/id"), field("Title", this.fields.title, "/title")),
          field("Description", this.fields.description, "/description"),
          field("Tags", this.fields.tags, "/tags"),
          field("Requirements", this.requirements.el, "/requirements"),
          portTable("input", this.inputRows),
          portTable("output", this.outputRows)),
        h("div.spec-editor-code", {},
          h("div.code-head", {}, h("h4.subsection", "Function (Python)"),
            h("button.btn.btn-small", { type: "button", onclick: () => this.#inferPorts(), dataset: { action: "infer" } }, "Infer ports from signature")),
          this.codeHost,
          h("div.field-error", { dataset: { for: "/func" } }),
          h("section.test-panel", {},
            h("div.code-head", {}, h("h4.subsection", "Test"),
              h("button.btn.btn-small.btn-primary", { type: "button", onclick: () => this.#runTest(), dataset: { action: "test" } }, "▶ Run test")),
            this.testInputs, this.testResult))),
      h("footer.dialog-buttons", {},
        this.isNew ? null : h("button.btn.btn-danger", { type: "button", onclick: () => this.#delete(), dataset: { action: "delete" } }, "Delete"),
        h("span.spacer"),
        h("button.btn", { type: "button", onclick: () => this.close() }, "Close"),
        h("button.btn.btn-primary", { type: "button", onclick: () => this.save(), dataset: { action: "save" } }, "Save")));
    this.root = h("div.dialog-backdrop.spec-editor-backdrop", {}, dialog);
    this.root.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.target.closest(".cm-editor")) {
        event.preventDefault();
        this.close();
      } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
        event.preventDefault();
        this.save();
      }
    });
    document.body.append(this.root);
    this.code = createCodeEditor({ doc: doc.func || "", parent: this.codeHost, onChange: () => this.#codeChanged() });
    (this.isNew ? this.fields.id : this.fields.title).focus();
  }

  // ----------------------------------------------------------------------------------- ports
  /** The code changed: its old test result no longer says anything, and the ports follow the signature. */
  #codeChanged() {
    this.#clearError("/func");
    clear(this.testResult);
    delete this.testResult.dataset.status;
    clearTimeout(this.syncTimer);
    this.syncTimer = setTimeout(() => this.#syncPorts(), SYNC_DELAY_MS);
  }

  /** Read the signature again (quietly: half-typed code does not parse) and, when its parameters
   * changed, make the input table match them; rows of parameters that stay keep their edits. */
  async #syncPorts() {
    const asked = (this.syncAsked = (this.syncAsked || 0) + 1);
    let inferred;
    try {
      inferred = await api.inferPorts(this.code.text());
    } catch {
      return;
    }
    if (asked !== this.syncAsked || !this.isOpen) return; // a later edit asked again
    const wanted = inferred.input || [];
    const signature = wanted.map((p) => p.name).join();
    if (signature === this.signature) return; // the parameters did not change: the table's edits stand
    this.signature = signature;
    const current = this.#readPorts().input;
    const kept = new Map(current.map((p) => [p.name, p]));
    const input = wanted.map((p, order) => (kept.has(p.name) ? { ...kept.get(p.name), order } : p));
    const output = this.#readPorts().output;
    this.#loadPorts({ port: { input, output: output.length ? output : inferred.output } });
  }

  #loadPorts(doc) {
    clear(this.inputRows);
    clear(this.outputRows);
    for (const port of doc.port?.input || []) this.#addPortRow("input", port);
    for (const port of doc.port?.output?.length ? doc.port.output : [{ name: "out" }]) this.#addPortRow("output", port);
    this.#renderTestInputs();
  }

  #typeSelect(value) {
    const names = this.catalog.typeNames;
    const selected = value || "Any";
    return h("select.input.port-type", { "aria-label": "Type" },
      [...new Set([...names, selected])].map((name) => h("option", { value: name, selected: name === selected }, name)));
  }

  #addPortRow(kind, port) {
    const rows = kind === "input" ? this.inputRows : this.outputRows;
    const index = rows.children.length;
    const name = h("input.input.port-name", { type: "text", value: port.name || "", "aria-label": "Port name", spellcheck: "false", placeholder: "name" });
    const type = this.#typeSelect(port.type);
    const remove = h("button.icon-button", {
      type: "button", title: "Remove port", "aria-label": "Remove port",
      onclick: () => { row.remove(); this.#renumber(kind); this.#renderTestInputs(); },
    }, "×");
    let row;
    if (kind === "input") {
      const hasDefault = "default" in port;
      const fallback = h("input.input.port-default", { type: "text", value: hasDefault ? valueToText(port.default) : "", "aria-label": "Default", placeholder: "—", spellcheck: "false" });
      const required = h("input.port-required", { type: "checkbox", checked: truthy(port.required ?? false), "aria-label": "Required" });
      const order = h("input.input.port-order", { type: "number", value: String(port.order ?? index), "aria-label": "Order", step: "1" });
      row = h("tr.port-row", {}, [name, type, fallback, required, order, remove].map((cell) => h("td", {}, cell, cell === remove ? null : h("div.cell-error"))));
    } else {
      row = h("tr.port-row", {}, [name, type, remove].map((cell) => h("td", {}, cell, cell === remove ? null : h("div.cell-error"))));
    }
    rows.append(row);
    this.#renumber(kind);
    name.addEventListener("change", () => this.#renderTestInputs());
    type.addEventListener("change", () => this.#renderTestInputs());
    if (!port.name) name.focus();
  }

  // Rows carry their JSON pointer so server errors find them after rows are added or removed.
  #renumber(kind) {
    const rows = kind === "input" ? this.inputRows : this.outputRows;
    [...rows.children].forEach((row, index) => {
      row.dataset.path = `/port/${kind}/${index}`;
      const cells = row.querySelectorAll("td");
      const names = kind === "input" ? ["name", "type", "default", "required", "order"] : ["name", "type"];
      names.forEach((cellName, i) => { cells[i].dataset.path = `/port/${kind}/${index}/${cellName}`; });
    });
  }

  #readPorts() {
    const input = [...this.inputRows.children].map((row) => {
      const type = row.querySelector(".port-type").value;
      const port = { name: row.querySelector(".port-name").value.trim(), type };
      const orderText = row.querySelector(".port-order").value.trim();
      port.order = orderText === "" ? 0 : Number.parseInt(orderText, 10);
      const fallback = row.querySelector(".port-default").value;
      if (fallback !== "") port.default = parseDefault(fallback, type);
      if (row.querySelector(".port-required").checked) port.required = true;
      return port;
    });
    const output = [...this.outputRows.children].map((row) => ({
      name: row.querySelector(".port-name").value.trim(), type: row.querySelector(".port-type").value,
    }));
    return { input, output };
  }

  async #inferPorts() {
    this.#clearErrors();
    try {
      const inferred = await api.inferPorts(this.code.text());
      this.signature = (inferred.input || []).map((p) => p.name).join();
      this.#loadPorts({ port: { input: inferred.input || [], output: inferred.output?.length ? inferred.output : [{ name: "out", type: "Any" }] } });
      if (this.isNew && !this.fields.id.value && inferred.id) this.fields.id.value = inferred.id;
      if (!this.fields.title.value && inferred.title) this.fields.title.value = inferred.title;
      status.toast(`Inferred ${inferred.input?.length || 0} input and ${inferred.output?.length || 1} output port(s) from the signature`, "success");
    } catch (error) {
      this.#showErrors(error, { "/func": "/func", "/function": "/func", "": "/func" });
    }
  }

  // ------------------------------------------------------------------------------- document
  #document() {
    const doc = { ...this.extra, id: this.fields.id.value.trim(), title: this.fields.title.value.trim() };
    const description = this.fields.description.value.trim();
    if (description) doc.description = description;
    const tags = this.fields.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.length) doc.tags = tags;
    const requirements = this.requirements.value();
    if (requirements.length) doc.requirements = requirements;
    doc.port = this.#readPorts();
    doc.func = this.code.text();
    return doc;
  }

  async save({ overwrite = false } = {}) {
    this.#clearErrors();
    const doc = this.#document();
    const problem = idProblem(doc.id);
    if (problem) {
      this.#setError("/id", problem);
      return false;
    }
    try {
      const saved = this.isNew ? await api.createSpec(doc) : await api.saveSpec(doc.id, doc, overwrite ? null : this.etag);
      this.etag = saved.etag;
      this.original = JSON.stringify(this.#document());
      if (this.isNew) {
        this.isNew = false;
        this.fields.id.readOnly = true;
        this.root.querySelector(".dialog-title").textContent = `Nodespec ${doc.id}`;
      }
      status.toast(`Saved nodespec ${doc.id}`, "success");
      this.emit("saved", doc.id);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) return this.#conflict();
      if (error instanceof ApiError && error.status === 409) {
        this.#setError("/id", `A nodespec with id “${doc.id}” exists already; choose another id or open that one.`);
        return false;
      }
      this.#showErrors(error);
      return false;
    }
  }

  async #conflict() {
    const answer = await choose({
      title: "The nodespec changed elsewhere",
      message: "Someone saved this nodespec since you opened it. Reload theirs (losing your edits) or overwrite it?",
      buttons: [{ label: "Cancel", value: null }, { label: "Reload theirs", value: "reload" }, { label: "Overwrite", value: "overwrite", primary: true, danger: true }],
    });
    if (answer === "overwrite") return this.save({ overwrite: true });
    if (answer === "reload") {
      const id = this.fields.id.value.trim();
      this.original = JSON.stringify(this.#document()); // let close() pass without asking again
      await this.close();
      await this.open(id);
    }
    return false;
  }

  async #delete() {
    const id = this.fields.id.value.trim();
    if (!(await confirmAction("Delete nodespec", `Delete nodespec “${id}”?`, "Delete", true))) return;
    try {
      await api.deleteSpec(id, { etag: this.etag });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 409)) {
        status.error(error, "Could not delete");
        return;
      }
      const flows = error.body.flows || [];
      const force = await confirmAction("Nodespec in use",
        `“${id}” is used by ${flows.length} flow(s): ${flows.join(", ")}. Those flows will not run until they stop using it. Delete anyway?`,
        "Delete anyway", true);
      if (!force) return;
      try {
        await api.deleteSpec(id, { force: true });
      } catch (again) {
        status.error(again, "Could not delete");
        return;
      }
    }
    status.toast(`Deleted nodespec ${id}`, "success");
    this.original = JSON.stringify(this.#document());
    await this.close();
    this.emit("deleted", id);
  }

  // ----------------------------------------------------------------------------------- testing
  // Fields are kept (not rebuilt) for ports that stay, so typed values and focus survive port edits.
  #renderTestInputs() {
    const existing = new Map([...this.testInputs.querySelectorAll(".test-field")].map((el) => [el.querySelector("input").name, el]));
    const { input } = this.#readPorts();
    const fields = input.filter((p) => p.name).map((port) => {
      const placeholder = "default" in port ? `default: ${valueToText(port.default)}` : port.required ? "required" : "";
      const field = existing.get(port.name) || h("label.field.test-field", { dataset: { for: `/inputs/${port.name}` } },
        h("span.field-label", `${port.name} `, h("span.muted.test-type")),
        h("input.input", { type: "text", name: port.name, spellcheck: "false" }),
        h("div.field-error"));
      field.querySelector(".test-type").textContent = port.type;
      field.querySelector("input").placeholder = placeholder;
      return field;
    });
    this.testInputs.replaceChildren(...(fields.length ? fields : [h("p.muted", "No inputs: the test calls func().")]));
  }

  async #runTest() {
    this.#clearErrors();
    const inputs = {};
    for (const el of this.testInputs.querySelectorAll("input")) if (el.value !== "") inputs[el.name] = el.value;
    const doc = this.#document();
    if (!doc.id) doc.id = "draft";
    if (!doc.title) doc.title = doc.id;
    clear(this.testResult).append(h("p.muted", "Running…"));
    try {
      this.#showTestResult(await api.testDraftSpec(doc, inputs));
    } catch (error) {
      clear(this.testResult);
      this.#showErrors(error);
    }
  }

  #showTestResult(result) {
    clear(this.testResult);
    const state = result.status;
    this.testResult.dataset.status = state;
    this.testResult.append(h("div.test-summary", {},
      h(`span.status-pill.status-${state}`, state), h("span.muted", ` ${formatDuration(result.duration_ms)}`)));
    if (result.error) {
      const lines = (result.error.traceback || []).map((line) => (line.endsWith("\n") ? line : `${line}\n`)).join("");
      this.testResult.append(h("div.error-box", {},
        h("div.error-title", `${result.error.type || "Error"}: ${result.error.message || ""}`), lines ? h("pre.traceback", lines) : null));
    }
    if (result.outputs && state === "success") this.testResult.append(h("h5", "Outputs"), jsonTree(result.outputs));
    if (result.stdout) this.testResult.append(h("h5", "Stdout"), h("pre.stdout", result.stdout));
  }

  // ------------------------------------------------------------------------------------ errors
  /** Put each server detail next to its field: the deepest element whose pointer prefixes the path. */
  #showErrors(error, aliases = {}) {
    const details = error.details?.length ? error.details : [{ path: "", message: error.message }];
    const unplaced = [];
    for (const detail of details) {
      let path = detail.path || "";
      if (path.startsWith("/nodespec")) path = path.slice("/nodespec".length);
      path = aliases[path] ?? path;
      if (!this.#setError(path, detail.message)) unplaced.push(detail);
    }
    if (unplaced.length || !error.details?.length) {
      this.generalErrors.append(h("div.error-box", {},
        h("div.error-title", error.message),
        detailLines(unplaced.map((d) => ({ ...d, path: (d.path || "").replace(/^\/nodespec(?=\/|$)/, "") })), this.#document())));
    }
    status.say(error.message, "error");
  }

  /** Show `message` at the field for JSON pointer `path` (or its nearest ancestor); false if none. */
  #setError(path, message) {
    for (let at = path; at; at = at.slice(0, at.lastIndexOf("/"))) {
      const holder = this.root.querySelector(`[data-path="${CSS.escape(at)}"], [data-for="${CSS.escape(at)}"]`);
      if (!holder) continue;
      const box = holder.querySelector(":scope > .cell-error, :scope > .field-error") ||
        holder.parentElement?.querySelector(`:scope > .field-error[data-for="${CSS.escape(at)}"]`) ||
        holder.querySelector(".field-error, .cell-error");
      const target = box || this.root.querySelector(`.field-error[data-for="${CSS.escape(at)}"]`);
      if (!target) continue;
      target.textContent = target.textContent ? `${target.textContent} ${message}` : message;
      holder.classList.add("has-error");
      holder.scrollIntoView?.({ block: "nearest" });
      return true;
    }
    return false;
  }

  #clearError(path) {
    const box = this.root?.querySelector(`.field-error[data-for="${CSS.escape(path)}"]`);
    if (box) box.textContent = "";
    this.root?.querySelector(`[data-path="${CSS.escape(path)}"]`)?.classList.remove("has-error");
  }

  #clearErrors() {
    for (const box of this.root.querySelectorAll(".field-error, .cell-error")) box.textContent = "";
    for (const el of this.root.querySelectorAll(".has-error")) el.classList.remove("has-error");
    clear(this.generalErrors);
  }
}

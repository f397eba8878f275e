// The inspector: edits the selected node (name, values of unlinked inputs, end-node mark), shows a
// selected link, and after a run shows the node's inputs, outputs, stdout and error.

import { outputsView, withSummaries } from "./artifacts.js";
import { removeItems, renameNode, setEndNode, setPortValue } from "./commands.js";
import { clear, formatDuration, h, valueToText } from "./dom.js";
import { Emitter } from "./events.js";
import { itemsSection } from "./items.js";
import { jsonTree } from "./jsontree.js";
import { splitEndpoint } from "./model.js";
import { typeColor } from "./theme.js";
import { truthy } from "./vocabulary.js";

export class Inspector extends Emitter {
  constructor({ root, model, catalog, history, canvas, runs }) {
    super();
    this.root = root;
    this.model = model;
    this.catalog = catalog;
    this.history = history;
    this.canvas = canvas;
    this.runs = runs;
    // Where the panel is scrolled, as of its last scroll event: asking the element when rendering would
    // lay out the whole page first (a large flow just drawn included).
    this.scrolled = 0;
    root.addEventListener("scroll", () => { this.scrolled = root.scrollTop; }, { passive: true });
    canvas.on("selection", () => this.render());
    model.on("node:update", (node) => { if (this.#shows(node.id)) this.render(); });
    model.on("link:add", () => this.#renderIfNode());
    model.on("link:remove", () => this.#renderIfNode());
    model.on("flow:update", () => this.render());
    model.on("load", () => this.render());
    runs.on("result", (nodeId) => { if (this.#shows(nodeId)) this.render(); });
    runs.on("painted", () => this.render());
  }

  #shows(nodeId) {
    const { nodes } = this.canvas.selectionInfo();
    return nodes.length === 1 && nodes[0] === nodeId;
  }

  #renderIfNode() {
    if (this.canvas.selection.size === 1) this.render();
  }

  /** Render on the next frame: several changes in one task (a load, a paste) render once. */
  render() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.#render();
    });
  }

  #render() {
    const focusedField = this.root.contains(document.activeElement) ? document.activeElement.dataset?.field : undefined;
    const { nodes, link } = this.canvas.selectionInfo();
    const subject = link ? `link:${link}` : nodes.join(",");
    // Keep the scroll position when the same thing is shown again (after an edit).
    const scroll = subject === this.subject ? this.scrolled : 0;
    this.subject = subject;
    clear(this.root);
    if (!this.model.id) this.root.append(this.#emptyPanel());
    else if (link) this.root.append(this.#linkPanel(link));
    else if (nodes.length === 1 && this.model.node(nodes[0])) this.root.append(...this.#nodePanel(this.model.node(nodes[0])));
    else if (nodes.length > 1) this.root.append(this.#multiPanel(nodes));
    else this.root.append(this.#flowPanel());
    if (focusedField) this.root.querySelector(`[data-field="${CSS.escape(focusedField)}"]`)?.focus();
    if (scroll) this.root.scrollTop = scroll;
  }

  #emptyPanel() {
    return h("div.panel-hint", {}, h("p", "Open a flow from the list, or create a new one."));
  }

  #flowPanel() {
    const counts = `${this.model.nodes.size} nodes · ${this.model.links.size} links`;
    return h("section.inspector-section", {},
      h("h3.section-title", "Flow"),
      h("div.kv", {}, h("span", "Name"), h("strong", this.model.name)),
      h("div.kv", {}, h("span", "Id"), h("code", this.model.id)),
      h("div.kv", {}, h("span", "Size"), h("span", counts)),
      h("button.btn.btn-small", { type: "button", onclick: () => this.emit("rename-flow") }, "Rename…"),
      h("div.shortcuts", {},
        h("h4", "Shortcuts"),
        shortcut("Select several", "Shift+click, Shift+drag"), shortcut("Pan", "drag the background"),
        shortcut("Zoom", "wheel, + / −"), shortcut("Fit to view", "F"), shortcut("Auto-layout", "L"),
        shortcut("Delete", "Del"), shortcut("Copy / paste", "Ctrl+C / Ctrl+V"), shortcut("Undo / redo", "Ctrl+Z / Ctrl+Shift+Z"),
        shortcut("Save", "Ctrl+S"), shortcut("Run", "Ctrl+Enter"), shortcut("Search nodespecs", "/")));
  }

  #multiPanel(ids) {
    return h("section.inspector-section", {},
      h("h3.section-title", `${ids.length} nodes selected`),
      h("div.button-row", {},
        h("button.btn.btn-small", { type: "button", onclick: () => this.emit("layout-selection") }, "Auto-layout selection"),
        h("button.btn.btn-small.btn-danger", { type: "button", onclick: () => this.history.execute(removeItems(this.model, ids)) }, "Delete")));
  }

  #linkPanel(key) {
    const link = this.model.links.get(key);
    if (!link) return h("div");
    const describe = (endpoint) => {
      const { node, port } = splitEndpoint(endpoint);
      return `${this.model.node(node)?.name || node} · ${port}`;
    };
    return h("section.inspector-section", {},
      h("h3.section-title", "Link"),
      h("div.kv", {}, h("span", "From"), h("strong", describe(link.source))),
      h("div.kv", {}, h("span", "To"), h("strong", describe(link.target))),
      h("button.btn.btn-small.btn-danger", { type: "button", onclick: () => this.canvas.deleteSelection() }, "Delete link"));
  }

  #nodePanel(node) {
    const spec = this.catalog.spec(node.spec_id);
    const nameInput = h("input.input", {
      type: "text", value: node.name, dataset: { field: "name" }, "aria-label": "Node name",
      onchange: (event) => {
        const name = event.target.value.trim();
        if (name && name !== node.name) this.history.execute(renameNode(this.model, node.id, name));
      },
      onkeydown: (event) => { if (event.key === "Enter") event.target.blur(); },
    });
    const endBox = h("input", {
      type: "checkbox", checked: this.model.isEnd(node.id), dataset: { field: "is_end" },
      onchange: (event) => this.history.execute(setEndNode(this.model, node.id, event.target.checked)),
    });
    const head = h("section.inspector-section", {},
      h("div.node-heading", {},
        h("div", {}, h("h3.section-title", node.name), h("code.muted", node.spec_id)),
        spec ? h("button.btn.btn-small", { type: "button", onclick: () => this.emit("edit-spec", node.spec_id) }, "Edit nodespec") : null),
      spec?.description ? h("p.muted.description", spec.description) : null,
      spec ? null : h("p.field-error", `Nodespec “${node.spec_id}” does not exist.`),
      h("label.field", {}, h("span.field-label", "Name"), nameInput),
      h("label.checkbox", { title: "A run's result comes from its end nodes" }, endBox, h("span", "End node")));
    return [head, this.#inputsSection(node), this.#outputsSection(node), this.#resultSection(node)].filter(Boolean);
  }

  #inputsSection(node) {
    const inputs = this.catalog.inputs(node.spec_id);
    if (!inputs.length) return h("section.inspector-section", {}, h("h4.subsection", "Inputs"), h("p.muted", "This nodespec takes no inputs."));
    return h("section.inspector-section", {}, h("h4.subsection", "Inputs"),
      inputs.map((port) => this.#inputField(node, port)));
  }

  #inputField(node, port) {
    const required = truthy(port.required);
    const label = h("span.field-label", {},
      port.name, required ? h("span.required", { title: "required" }, " *") : null, " ",
      h("span.type-chip", { style: { "--chip": typeColor(port.type) } }, port.type));
    const link = this.model.linkInto(node.id, port.name);
    if (link) {
      const source = splitEndpoint(link.source);
      return h("div.field.port-field", { dataset: { port: port.name } }, label,
        h("div.linked-from", {}, "← ", h("strong", this.model.node(source.node)?.name || source.node), ` · ${source.port}`));
    }
    const hasDefault = "default" in port;
    const current = node.values[port.name];
    const hint = hasDefault ? `default: ${valueToText(port.default)}` : required ? "required" : "optional";
    const commit = (text) => {
      const value = text === "" ? undefined : text;
      if (value !== node.values[port.name]) this.history.execute(setPortValue(this.model, node.id, port.name, value));
    };
    const field = port.type === "Boolean"
      ? h("select.input", { dataset: { field: `port:${port.name}` }, onchange: (e) => commit(e.target.value) },
        h("option", { value: "", selected: current === undefined }, hasDefault ? `(default: ${valueToText(port.default)})` : "(not set)"),
        ["true", "false"].map((word) => h("option", { value: word, selected: valueToText(current).toLowerCase() === word }, word)))
      : h("input.input", {
        type: "text", value: valueToText(current), placeholder: hint, dataset: { field: `port:${port.name}` },
        "aria-label": `Value of ${port.name}`, spellcheck: "false",
        onchange: (e) => commit(e.target.value),
        onkeydown: (e) => { if (e.key === "Enter") e.target.blur(); },
      });
    const missing = required && current === undefined && !hasDefault;
    return h("label.field.port-field", { dataset: { port: port.name }, class: missing ? "missing" : undefined },
      label, field, h("span.field-hint", missing ? "required: set a value or link an output" : hint));
  }

  #outputsSection(node) {
    const outputs = this.catalog.outputs(node.spec_id);
    return h("section.inspector-section", {}, h("h4.subsection", "Outputs"),
      h("ul.port-list", {}, outputs.map((port) => h("li", {}, port.name, " ",
        h("span.type-chip", { style: { "--chip": typeColor(port.type) } }, port.type)))));
  }

  #resultSection(node) {
    const entry = this.runs.resultFor(node.id);
    if (!entry) return null;
    const { result, state } = entry;
    const section = h("section.inspector-section.run-result", { dataset: { status: state } },
      h("h4.subsection", {}, "Last run ", h(`span.status-pill.status-${state}`, state),
        result?.duration_ms !== undefined ? h("span.muted", ` ${formatDuration(result.duration_ms)}`) : null));
    if (!result) {
      section.append(h("p.muted", state === "running" || state === "queued" ? "Waiting for the node to finish…" : "No details."));
      return section;
    }
    if (result.error) {
      section.append(h("div.error-box", {},
        h("div.error-title", `${result.error.type || "Error"}: ${result.error.message || ""}`),
        result.error.traceback?.length ? h("pre.traceback", result.error.traceback.map((line) => (line.endsWith("\n") ? line : `${line}\n`)).join("")) : null));
    }
    if (result.reason) section.append(h("p.muted.run-reason", `Skipped: ${result.reason}.`));
    if (result.items) section.append(itemsSection(result.items));
    if (result.inputs && Object.keys(result.inputs).length) section.append(h("h5", "Inputs"), jsonTree(withSummaries(result.inputs)));
    if (result.outputs) section.append(h("h5", "Outputs"), outputsView(this.runs.run?.id, node.id, result.outputs));
    if (result.stdout) section.append(h("h5", "Stdout"), h("pre.stdout", result.stdout));
    if (result.partial) section.append(h("p.muted", "Preview from the live stream; details follow when the run ends."));
    return section;
  }
}

function shortcut(what, keys) {
  return h("div.shortcut", {}, h("span", what), h("kbd", keys));
}

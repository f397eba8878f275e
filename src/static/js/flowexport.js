// Export and paste of flows as JSON. The open flow (or the selected nodes and the links between them)
// is exported as a bundle with the nodespecs it uses, which Import reads back; to a file or to the
// clipboard. Pasting a flow document or a bundle (Ctrl+V with JSON on the clipboard) adds its nodes to
// the open flow, placed clear of the nodes already there, after creating the nodespecs it brings that
// the repository does not have.

import { api } from "./api.js";
import { addNodes, copiesOf } from "./commands.js";
import { h } from "./dom.js";
import { FlowModel, splitEndpoint } from "./model.js";
import { freeSpot } from "./placement.js";
import { status } from "./status.js";

/** A bundle of the open flow (or of nodes `ids` only) and the nodespecs its nodes use. */
export function flowBundle(model, catalog, ids = null) {
  let flow = model.toDocument();
  if (ids) {
    const keep = new Set(ids);
    flow = {
      ...flow, id: `${flow.id}.selection`, name: `${flow.name} (selection)`,
      nodes: flow.nodes.filter((n) => keep.has(n.id)),
      links: flow.links.filter((l) => keep.has(splitEndpoint(l.source).node) && keep.has(splitEndpoint(l.target).node)),
    };
  }
  const nodespec = {};
  for (const node of flow.nodes) {
    const spec = catalog.spec(node.spec_id);
    if (spec) nodespec[spec.id] = spec;
  }
  return { format_version: 2, nodespec, flow: { [flow.id]: flow } };
}

export function downloadJson(filename, value) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(value, null, 2)], { type: "application/json" }));
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The flow document in pasted text (a flow, or a bundle's first flow) and the bundle's nodespecs. */
export function parseFlowText(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!value || typeof value !== "object") return null;
  if (Array.isArray(value.nodes)) return { flow: value, specs: {} };
  const flows = value.flow && typeof value.flow === "object" ? Object.values(value.flow) : [];
  const flow = flows.find((f) => Array.isArray(f?.nodes));
  return flow ? { flow, specs: value.nodespec || {} } : null;
}

export class FlowExport {
  constructor({ model, catalog, canvas, history }) {
    Object.assign(this, { model, catalog, canvas, history });
    document.addEventListener("paste", (event) => this.#onPaste(event));
  }

  toFile(selectionOnly = false) {
    const bundle = this.#bundle(selectionOnly);
    if (!bundle) return;
    const [flow] = Object.values(bundle.flow);
    downloadJson(`${flow.id}.json`, bundle);
    status.toast(`Exported ${flow.nodes.length} nodes and ${Object.keys(bundle.nodespec).length} nodespecs to ${flow.id}.json`, "success");
  }

  /** Copy the flow (or selection) as JSON; `quiet` (Ctrl+C, which said so already) shows no toast. */
  async toClipboard(selectionOnly = false, { quiet = false } = {}) {
    const bundle = this.#bundle(selectionOnly);
    if (!bundle) return;
    try {
      await navigator.clipboard.writeText(JSON.stringify(bundle, null, 2));
      if (!quiet) status.toast(`Copied ${selectionOnly ? "the selection" : "the flow"} as JSON`, "success");
    } catch (error) {
      if (!quiet) status.toast(`Could not copy: ${error.message}`, "error");
    }
  }

  #bundle(selectionOnly) {
    if (!this.model.id) return null;
    const ids = selectionOnly ? [...this.canvas.selection] : null;
    if (selectionOnly && !ids.length) {
      status.toast("Select the nodes to export first.", "warning");
      return null;
    }
    return flowBundle(this.model, this.catalog, ids);
  }

  // A paste with a flow's JSON on the clipboard adds it; anything else pastes copied nodes as before.
  #onPaste(event) {
    if (!this.model.id || event.target.closest?.("input, textarea, [contenteditable], .cm-editor, .dialog")) return;
    const parsed = parseFlowText(event.clipboardData?.getData("text/plain") || "");
    event.preventDefault();
    if (parsed) this.pasteFlow(parsed);
    else this.canvas.paste();
  }

  async pasteFlow({ flow, specs }) {
    const missing = Object.values(specs).filter((spec) => spec?.id && !this.catalog.spec(spec.id));
    let current = null;
    try {
      for (current of missing) await api.createSpec(current);
      if (missing.length) await this.catalog.loadSpecs();
    } catch (error) {
      status.error(error, `Could not create the pasted flow's nodespec ${current?.id || ""}`.trim(), current);
      return;
    }
    const source = new FlowModel();
    source.load({ ...flow, id: flow.id || "pasted" });
    const nodes = [...source.nodes.values()];
    if (!nodes.length) return;
    const links = [...source.links.values()].map(({ source: s, target: t }) => ({ source: s, target: t }));
    const minX = Math.min(...nodes.map((n) => n.x));
    const minY = Math.min(...nodes.map((n) => n.y));
    const width = Math.max(...nodes.map((n) => n.x)) - minX + 240;
    const height = Math.max(...nodes.map((n) => n.y)) - minY + 120;
    const centre = this.canvas.viewer.viewCentre();
    const spot = freeSpot(this.canvas, { x: centre.x - width / 2, y: centre.y - height / 2, w: width, h: height });
    const copies = copiesOf(this.model, nodes, links, spot.x - minX, spot.y - minY);
    this.history.execute(addNodes(copies.nodes, copies.links, `Paste ${copies.nodes.length} node${copies.nodes.length === 1 ? "" : "s"}`));
    this.canvas.select(copies.nodes.map((n) => n.id));
    status.say(`Pasted ${copies.nodes.length} nodes from ${flow.name || flow.id || "the clipboard"}`);
  }
}

// What is selected on the canvas (nodes, or one link) and what is done to it: select, toggle, marquee,
// delete, copy, paste, duplicate and nudge. The selection itself stays on the canvas (canvas.selection,
// canvas.selectedLink), which other parts of the editor read; edits go through the history as commands.

import { ARRANGE_ACTIONS } from "./arrange.js";
import { addNodes, copiesOf, moveNodes, removeItems } from "./commands.js";
import { mapMenuItems } from "./items.js";
import { showMenu } from "./menu.js";
import { splitEndpoint } from "./model.js";
import { freeSpot } from "./placement.js";
import { status } from "./status.js";
import { NODE } from "./theme.js";
import { HANDLE_MIN_ZOOM } from "./viewport.js";

export class Selector {
  constructor(canvas) {
    this.canvas = canvas;
    this.clipboard = null;
    this.pasteCount = 0;
  }

  info() {
    return { nodes: [...this.canvas.selection], link: this.canvas.selectedLink };
  }

  select(ids, { add = false } = {}) {
    const c = this.canvas;
    if (!add) c.selection.clear();
    for (const id of ids) c.selection.add(id);
    c.selectedLink = null;
    this.changed();
  }

  toggle(id) {
    const c = this.canvas;
    if (!c.selection.delete(id)) c.selection.add(id);
    c.selectedLink = null;
    this.changed();
  }

  selectLink(key) {
    const c = this.canvas;
    c.selection.clear();
    c.selectedLink = key;
    this.changed();
  }

  clear() {
    const c = this.canvas;
    if (!c.selection.size && !c.selectedLink) return;
    c.selection.clear();
    c.selectedLink = null;
    this.changed();
  }

  selectAll() {
    this.select([...this.canvas.model.nodes.keys()]);
  }

  /** Show the selection on the nodes and links, and tell the editor. */
  changed() {
    const c = this.canvas;
    if (c.sketched?.has(c.selectedLink)) {
      c.dragger.endSketch();
      if (c.drag?.active && c.view.k < HANDLE_MIN_ZOOM) c.dragger.startSketch(c.drag.items.map((item) => item.id));
    }
    for (const [id, view] of c.views) view.el.classList.toggle("selected", c.selection.has(id));
    for (const [key, connection] of c.connections) {
      if (key === c.selectedLink) connection.addClass("selected");
      else connection.removeClass("selected");
    }
    c.updateCounts();
    c.emit("selection", this.info());
  }

  deleteSelection() {
    const c = this.canvas;
    const nodes = [...c.selection];
    const links = c.selectedLink ? [c.selectedLink] : [];
    if (!nodes.length && !links.length) return;
    c.history.execute(removeItems(c.model, nodes, links));
  }

  copySelection() {
    const c = this.canvas;
    if (!c.selection.size) return false;
    const ids = new Set(c.selection);
    const nodes = [...ids].map((id) => structuredClone(c.model.node(id)));
    const links = [...c.model.links.values()]
      .filter((link) => ids.has(splitEndpoint(link.source).node) && ids.has(splitEndpoint(link.target).node))
      .map(({ source, target }) => ({ source, target }));
    this.clipboard = { nodes, links };
    try {
      localStorage.setItem("pyflow.clipboard", JSON.stringify(this.clipboard));
    } catch { /* storage may be full or disabled; the in-memory copy still works */ }
    status.say(`Copied ${nodes.length} node${nodes.length > 1 ? "s" : ""}`);
    return true;
  }

  /** Paste copied nodes (from this or another flow) beside the originals and select the copies. */
  paste() {
    const c = this.canvas;
    let clipboard = this.clipboard;
    try {
      clipboard = JSON.parse(localStorage.getItem("pyflow.clipboard")) || clipboard;
    } catch { /* fall back to the in-memory copy */ }
    if (!clipboard?.nodes?.length || !c.model.id) return;
    this.pasteCount += 1;
    const offset = 30 * this.pasteCount;
    const xs = clipboard.nodes.map((n) => n.x);
    const ys = clipboard.nodes.map((n) => n.y);
    const box = { x: Math.min(...xs) + offset, y: Math.min(...ys) + offset, w: Math.max(...xs) - Math.min(...xs) + NODE.width, h: Math.max(...ys) - Math.min(...ys) + NODE.head * 2 };
    const spot = freeSpot(c, box); // clear of the nodes already there
    const { nodes, links } = copiesOf(c.model, clipboard.nodes, clipboard.links, spot.x - Math.min(...xs), spot.y - Math.min(...ys));
    c.history.execute(addNodes(nodes, links, `Paste ${nodes.length} node${nodes.length > 1 ? "s" : ""}`));
    this.select(nodes.map((node) => node.id));
  }

  duplicateSelection() {
    if (this.copySelection()) {
      this.pasteCount = 0;
      this.paste();
    }
  }

  /** Move the selected nodes by (dx, dy): arrow keys. */
  nudge(dx, dy) {
    const c = this.canvas;
    if (!c.selection.size) return;
    const moves = [...c.selection].map((id) => {
      const node = c.model.node(id);
      return { id, from: { x: node.x, y: node.y }, to: { x: node.x + dx, y: node.y + dy } };
    });
    c.history.execute(moveNodes(moves));
  }

  /** The context menu of node `id`: selects it unless it is selected, then acts on the selection. */
  showNodeMenu(event, id) {
    const c = this.canvas;
    if (!c.selection.has(id)) this.select([id]);
    const many = c.selection.size > 1;
    const isEnd = c.model.isEnd(id);
    showMenu(event.clientX, event.clientY, [
      { label: "Edit nodespec…", disabled: many || !c.catalog.spec(c.model.node(id).spec_id), action: () => c.emit("edit-spec", c.model.node(id).spec_id) },
      { label: isEnd ? "Unmark end node" : "Mark as end node", disabled: many, action: () => c.emit("toggle-end", id) },
      "-",
      ...(many || !c.catalog.spec(c.model.node(id).spec_id) ? [] : [...mapMenuItems(c, id), "-"]),
      { label: "Make subflow", disabled: !c.model.id, action: () => c.emit("make-subflow", [...c.selection]) },
      { label: "Copy", shortcut: "Ctrl+C", action: () => this.copySelection() },
      { label: "Duplicate", shortcut: "Ctrl+D", action: () => this.duplicateSelection() },
      ...(many ? ["-", ...ARRANGE_ACTIONS.map(({ name, label }) => ({ label, action: () => c.emit("arrange", name) })), "-"] : []),
      { label: "Export selection to a file", action: () => c.emit("export", { file: true, selection: true }) },
      { label: "Copy selection as JSON", action: () => c.emit("export", { file: false, selection: true }) },
      { label: many ? `Delete ${c.selection.size} nodes` : "Delete node", shortcut: "Del", danger: true, action: () => this.deleteSelection() },
    ]);
  }

  /** Shift-drag on the background: add the nodes in the drawn box to the selection. */
  startMarquee(event) {
    const c = this.canvas;
    const rect = c.root.getBoundingClientRect();
    const start = { x: event.clientX - rect.left, y: event.clientY - rect.top };
    const box = { ...start, w: 0, h: 0 };
    c.root.setPointerCapture(event.pointerId);
    c.marquee.hidden = false;
    const noText = (e) => e.preventDefault(); // the box may pass over the sidebars' text
    document.addEventListener("selectstart", noText);
    const draw = () => Object.assign(c.marquee.style, {
      left: `${box.x}px`, top: `${box.y}px`, width: `${box.w}px`, height: `${box.h}px`,
    });
    draw();
    const move = (e) => {
      const x = e.clientX - rect.left;
      const y = e.clientY - rect.top;
      Object.assign(box, { x: Math.min(x, start.x), y: Math.min(y, start.y), w: Math.abs(x - start.x), h: Math.abs(y - start.y) });
      draw();
    };
    const up = () => {
      c.marquee.hidden = true;
      document.removeEventListener("selectstart", noText);
      c.root.removeEventListener("pointermove", move);
      c.root.removeEventListener("pointerup", up);
      c.root.removeEventListener("pointercancel", up);
      this.select(this.#nodesInScreenBox(box), { add: true });
    };
    c.root.addEventListener("pointermove", move);
    c.root.addEventListener("pointerup", up);
    c.root.addEventListener("pointercancel", up);
  }

  #nodesInScreenBox(box) {
    const c = this.canvas;
    const { x, y, k } = c.view;
    const left = (box.x - x) / k;
    const top = (box.y - y) / k;
    const right = left + box.w / k;
    const bottom = top + box.h / k;
    return [...c.model.nodes.keys()].filter((id) => {
      const b = c.nodeBox(id);
      return b.x < right && b.x + b.w > left && b.y < bottom && b.y + b.h > top;
    });
  }
}

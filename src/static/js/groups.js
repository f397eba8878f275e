// Groups: a named, coloured frame around some nodes (Ctrl+G groups the selection). The frame is drawn
// from its nodes' boxes, so it follows them; dragging its label drags its nodes; double-clicking the
// label renames it, its menu ungroups. Groups are stored in the flow document as
// "groups": [{id, name, color, nodes: [node ids]}] (the flow format keeps keys it does not know), and
// every change is an undoable command.

import { askFields } from "./dialogs.js";
import { h } from "./dom.js";
import { showMenu } from "./menu.js";

const COLORS = ["#2563eb", "#16a34a", "#d97706", "#db2777", "#7c3aed", "#0891b2"];
const PAD = 24;
const LABEL = 26;

function setGroups(label, before, after) {
  const apply = (groups) => (model) => {
    model.extra.groups = structuredClone(groups);
    if (!groups.length) delete model.extra.groups;
    model.emit("groups");
  };
  return { label, apply: apply(after), revert: apply(before) };
}

export class Groups {
  constructor({ model, canvas, history }) {
    Object.assign(this, { model, canvas, history });
    this.layer = h("div.bucket.bucket-groups");
    const render = () => this.render();
    for (const event of ["load", "groups", "nodes:move", "node:remove", "node:add"]) model.on(event, render);
  }

  get list() {
    return Array.isArray(this.model.extra.groups) ? this.model.extra.groups : [];
  }

  /** Ctrl+G: a new group of the selected nodes (taken out of any group they were in). */
  groupSelection() {
    const ids = [...this.canvas.selection];
    if (!ids.length) return;
    const before = this.list;
    const taken = new Set(ids);
    const kept = before.map((g) => ({ ...g, nodes: g.nodes.filter((id) => !taken.has(id)) })).filter((g) => g.nodes.length);
    const n = before.length + 1;
    const group = { id: `group${Date.now().toString(36)}`, name: `Group ${n}`, color: COLORS[(n - 1) % COLORS.length], nodes: ids };
    this.history.execute(setGroups(`Group ${ids.length} nodes`, before, [...kept, group]));
  }

  ungroup(id) {
    const before = this.list;
    this.history.execute(setGroups("Ungroup", before, before.filter((g) => g.id !== id)));
  }

  async rename(id) {
    const group = this.list.find((g) => g.id === id);
    if (!group) return;
    const values = await askFields({ title: "Rename group", fields: [{ name: "name", label: "Name", value: group.name }], confirmLabel: "Rename",
      validate: (v) => (v.name ? null : { name: "The name cannot be empty." }) });
    if (!values || values.name === group.name) return;
    const before = this.list;
    this.history.execute(setGroups("Rename group", before, before.map((g) => (g.id === id ? { ...g, name: values.name } : g))));
  }

  render() {
    const viewport = this.canvas.viewport;
    if (this.layer.parentNode !== viewport) viewport.prepend(this.layer); // the canvas redraws its viewport on load
    const frames = [];
    for (const group of this.list) {
      const ids = group.nodes.filter((id) => this.model.nodes.has(id));
      if (!ids.length) continue;
      const boxes = ids.map((id) => this.canvas.nodeBox(id));
      const left = Math.min(...boxes.map((b) => b.x)) - PAD;
      const top = Math.min(...boxes.map((b) => b.y)) - PAD - LABEL;
      const right = Math.max(...boxes.map((b) => b.x + b.w)) + PAD;
      const bottom = Math.max(...boxes.map((b) => b.y + b.h)) + PAD;
      const label = h("div.group-label", { title: "Drag to move the group; double-click to rename" }, group.name);
      const frame = h("div.group-frame", {
        dataset: { group: group.id }, style: { left: `${left}px`, top: `${top}px`, width: `${right - left}px`, height: `${bottom - top}px` },
      }, label);
      frame.style.setProperty("--group-color", group.color);
      label.addEventListener("pointerdown", (event) => this.#drag(event, ids));
      label.addEventListener("dblclick", () => this.rename(group.id));
      label.addEventListener("contextmenu", (event) => {
        event.preventDefault();
        event.stopPropagation();
        showMenu(event.clientX, event.clientY, [
          { label: "Rename group…", action: () => this.rename(group.id) },
          { label: "Select its nodes", action: () => this.canvas.select(ids) },
          { label: "Ungroup", danger: true, action: () => this.ungroup(group.id) },
        ]);
      });
      frames.push(frame);
    }
    this.layer.replaceChildren(...frames);
  }

  /** Dragging a group's label: select its nodes and drag them as the canvas drags a selection. */
  #drag(event, ids) {
    if (event.button !== 0) return;
    event.stopPropagation();
    event.preventDefault();
    this.canvas.select(ids);
    this.canvas.dragger.startNodeDrag(event, ids[0]);
  }
}

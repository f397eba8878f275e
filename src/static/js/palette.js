// The palette: nodespecs as a collapsible tree by dotted id, with a search box. Drag an entry onto the
// canvas (or press Enter on it) to add a node; the pencil opens the nodespec editor.

import { clear, h } from "./dom.js";
import { Emitter } from "./events.js";

const DRAG_THRESHOLD = 4;

export class Palette extends Emitter {
  constructor({ root, catalog, canvas }) {
    super();
    this.root = root;
    this.catalog = catalog;
    this.canvas = canvas;
    this.collapsed = new Set(JSON.parse(localStorage.getItem("pyflow.palette.collapsed") || "[]"));
    this.search = root.querySelector(".palette-search");
    this.list = root.querySelector(".palette-tree");
    this.search.addEventListener("input", () => this.render());
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        this.list.querySelector(".palette-item")?.focus();
      } else if (event.key === "Escape") {
        this.search.value = "";
        this.render();
      }
    });
    this.list.addEventListener("keydown", (event) => this.#onKey(event));
    catalog.on("change", () => this.render());
  }

  render() {
    const query = this.search.value.trim().toLowerCase();
    clear(this.list);
    const items = this.#renderLevel(this.catalog.tree, query, 0);
    if (items.length) this.list.append(...items);
    else this.list.append(h("div.palette-empty", query ? `No nodespec matches “${this.search.value}”.` : "No nodespecs yet."));
  }

  #matches(item, query) {
    if (!query) return true;
    const spec = item.value;
    const text = [item.path, item.title, spec?.title, spec?.description, ...(spec?.tags || [])].join(" ").toLowerCase();
    return text.includes(query) || (item.children || []).some((child) => this.#matches(child, query));
  }

  #renderLevel(items, query, depth) {
    const out = [];
    for (const item of items) {
      if (!this.#matches(item, query)) continue;
      const children = item.children || [];
      if (item.value) out.push(this.#leaf(item, depth));
      if (children.length) out.push(this.#group(item, query, depth));
    }
    return out;
  }

  #group(item, query, depth) {
    const open = Boolean(query) || !this.collapsed.has(item.path);
    const toggle = h("button.palette-group-toggle", {
      type: "button", "aria-expanded": String(open), style: { paddingLeft: `${8 + depth * 14}px` },
      onclick: () => {
        if (this.collapsed.has(item.path)) this.collapsed.delete(item.path);
        else this.collapsed.add(item.path);
        localStorage.setItem("pyflow.palette.collapsed", JSON.stringify([...this.collapsed]));
        this.render();
      },
    }, h("span.chevron", open ? "▾" : "▸"), h("span.palette-group-name", item.id));
    const group = h("div.palette-group", { dataset: { path: item.path } }, toggle);
    if (open) group.append(...this.#renderLevel(item.children, query, depth + 1));
    return group;
  }

  #leaf(item, depth) {
    const spec = item.value;
    const inputs = this.catalog.inputs(spec.id);
    const outputs = this.catalog.outputs(spec.id);
    const signature = `(${inputs.map((p) => p.name).join(", ")}) → ${outputs.map((p) => p.name).join(", ")}`;
    const edit = h("button.palette-edit", {
      type: "button", title: `Edit nodespec ${spec.id}`, "aria-label": `Edit ${spec.id}`, tabindex: "-1",
      onclick: (event) => {
        event.stopPropagation();
        this.emit("edit", spec.id);
      },
    }, "✎");
    const el = h("div.palette-item", {
      tabindex: "0", role: "button", dataset: { spec: spec.id },
      title: `${spec.id}\n${spec.description || ""}\nDrag onto the canvas, or press Enter.`,
      style: { paddingLeft: `${10 + depth * 14}px` },
    },
    h("div.palette-item-text", {}, h("span.palette-item-title", spec.title || item.id), h("span.palette-item-sig", signature)),
    edit);
    el.addEventListener("pointerdown", (event) => this.#startDrag(event, spec));
    el.addEventListener("dblclick", () => this.#add(spec.id));
    return el;
  }

  #onKey(event) {
    const item = event.target.closest?.(".palette-item");
    if (!item) return;
    const all = [...this.list.querySelectorAll(".palette-item")];
    const at = all.indexOf(item);
    if (event.key === "Enter") this.#add(item.dataset.spec);
    else if (event.key === "ArrowDown") all[at + 1]?.focus();
    else if (event.key === "ArrowUp") (all[at - 1] || this.search).focus();
    else if (event.key === "e") this.emit("edit", item.dataset.spec);
    else return;
    event.preventDefault();
  }

  // A pointer-driven drag with a ghost: works the same for mouse, pen and touch.
  #startDrag(event, spec) {
    if (event.button !== 0 || event.target.closest(".palette-edit")) return;
    const start = { x: event.clientX, y: event.clientY };
    let ghost = null;
    const source = event.currentTarget;
    source.setPointerCapture(event.pointerId);
    const move = (e) => {
      if (!ghost && Math.hypot(e.clientX - start.x, e.clientY - start.y) < DRAG_THRESHOLD) return;
      if (!ghost) {
        ghost = h("div.drag-ghost", {}, spec.title || spec.id);
        document.body.append(ghost);
        document.body.classList.add("dragging-spec");
      }
      ghost.style.transform = `translate(${e.clientX + 8}px, ${e.clientY + 8}px)`;
      this.canvas.root.classList.toggle("drop-target", this.#overCanvas(e));
    };
    const up = (e) => {
      source.removeEventListener("pointermove", move);
      source.removeEventListener("pointerup", up);
      source.removeEventListener("pointercancel", up);
      this.canvas.root.classList.remove("drop-target");
      document.body.classList.remove("dragging-spec");
      if (!ghost) return;
      ghost.remove();
      if (e.type === "pointerup" && this.#overCanvas(e)) this.#add(spec.id, e.clientX, e.clientY);
    };
    source.addEventListener("pointermove", move);
    source.addEventListener("pointerup", up);
    source.addEventListener("pointercancel", up);
  }

  /** Add a node of `specId`; with no flow open, the editor first opens a new one ("add-without-flow"). */
  #add(specId, clientX, clientY) {
    if (this.canvas.model.id) this.canvas.addSpecAt(specId, clientX, clientY);
    else this.emit("add-without-flow", specId, clientX, clientY);
  }

  #overCanvas(event) {
    const rect = this.canvas.root.getBoundingClientRect();
    return event.clientX >= rect.left && event.clientX <= rect.right && event.clientY >= rect.top && event.clientY <= rect.bottom;
  }

  focusSearch() {
    this.search.focus();
    this.search.select();
  }
}

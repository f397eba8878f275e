// Quick-add: a search box at the pointer that adds the chosen nodespec there. Opened by a double-click or
// Ctrl+click on the canvas background, or Tab; a link dropped on empty canvas opens it with only the
// nodespecs that have a port able to take that link, and the new node comes wired. While a link is
// dragged, each port handle is marked link-ok (it could take the link) or link-dim.

import { addNodes } from "./commands.js";
import { h } from "./dom.js";
import { NODE } from "./theme.js";

const MAX_ITEMS = 200; // a scrolled list: every nodespec that can take the link, in a repository of a few hundred

function parseUuid(uuid) {
  const last = uuid.lastIndexOf(":");
  const [node, port] = [uuid.slice(0, uuid.lastIndexOf(":", last - 1)), uuid.slice(uuid.lastIndexOf(":", last - 1) + 1, last)];
  return { node, port, side: uuid.slice(last + 1) };
}

export class QuickAdd {
  constructor({ canvas, catalog, history }) {
    Object.assign(this, { canvas, catalog, history, popup: null, pointer: null });
    const root = canvas.root;
    root.addEventListener("dblclick", (e) => { if (this.#isBackground(e.target)) this.open(e.clientX, e.clientY); });
    root.addEventListener("click", (e) => {
      if ((e.ctrlKey || e.metaKey) && this.#isBackground(e.target)) this.open(e.clientX, e.clientY);
    });
    root.addEventListener("pointermove", (e) => { this.pointer = { x: e.clientX, y: e.clientY }; });
    canvas.jsp.bind("connection:drag", (connection) => this.#highlight(connection));
    canvas.jsp.bind("connection:abort", (connection, event) => this.#dropped(connection, event));
    document.addEventListener("pointerup", () => queueMicrotask(() => this.#clearHighlight()), true);
  }

  #isBackground(target) {
    const c = this.canvas;
    return Boolean(c.model.id) && (target === c.root || target === c.viewport || c.empty.contains(target));
  }

  /** Tab: at the pointer when it is over the canvas, else at the view's centre. */
  openAtPointer() {
    const rect = this.canvas.root.getBoundingClientRect();
    const p = this.pointer;
    const inside = p && p.x >= rect.left && p.x <= rect.right && p.y >= rect.top && p.y <= rect.bottom;
    this.open(inside ? p.x : rect.left + rect.width / 2, inside ? p.y : rect.top + rect.height / 2);
  }

  // ------------------------------------------------------------------------------ the search
  /** Open the search at client point (x, y); `from` ({node, port, side}) limits it to what can link. */
  open(x, y, from = null) {
    if (!this.canvas.model.id) return;
    this.close();
    const input = h("input.input", { type: "search", placeholder: from ? "Add a node to link to…" : "Add a node…", spellcheck: "false", "aria-label": "Search nodespecs" });
    const list = h("div.quick-add-list", { role: "listbox" });
    this.popup = h("div.quick-add", { style: { left: `${x}px`, top: `${y}px` } }, input, list);
    this.at = { x, y, from };
    const render = () => this.#render(list, input.value);
    input.addEventListener("input", render);
    input.addEventListener("keydown", (e) => this.#onKey(e, list));
    input.addEventListener("blur", () => setTimeout(() => { if (!this.popup?.contains(document.activeElement)) this.close(); }, 150));
    document.body.append(this.popup);
    const box = this.popup.getBoundingClientRect();
    if (box.right > innerWidth) this.popup.style.left = `${Math.max(0, innerWidth - box.width - 8)}px`;
    if (box.bottom > innerHeight) this.popup.style.top = `${Math.max(0, innerHeight - box.height - 8)}px`;
    render();
    input.focus();
  }

  close() {
    this.popup?.remove();
    this.popup = null;
  }

  /** Nodespecs matching `text` (and, when a link is waiting, with a port that can take it). */
  #matches(text) {
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    const from = this.at.from;
    const out = [];
    for (const spec of this.catalog.specs?.values() || []) {
      const hay = `${spec.title || ""} ${spec.id} ${(spec.tags || []).join(" ")}`.toLowerCase();
      if (!words.every((w) => hay.includes(w))) continue;
      const port = from ? this.#linkPort(spec, from) : null;
      if (from && !port) continue;
      out.push({ spec, port });
      if (out.length >= MAX_ITEMS) break;
    }
    const rank = ({ spec }) => { // a title that is a word typed, then one that starts with one, first
      const title = (spec.title || spec.id).toLowerCase();
      return words.includes(title) ? 0 : words.some((w) => title.startsWith(w)) ? 1 : 2;
    };
    return out.sort((a, b) => rank(a) - rank(b) || (a.spec.title || a.spec.id).localeCompare(b.spec.title || b.spec.id));
  }

  /** The first port of `spec` that can take a link from (or to) `from`. */
  #linkPort(spec, from) {
    const c = this.canvas;
    const node = c.model.node(from.node);
    if (!node) return null;
    const type = this.catalog.portType(node.spec_id, from.side, from.port) || "Any";
    if (from.side === "output") return this.catalog.inputs(spec.id).find((p) => this.catalog.compatible(type, p.type)) || null;
    return this.catalog.outputs(spec.id).find((p) => this.catalog.compatible(p.type, type)) || null;
  }

  #render(list, text) {
    const matches = this.#matches(text);
    list.replaceChildren(...matches.map(({ spec, port }, i) => h("button.quick-add-item", {
      type: "button", role: "option", class: i === 0 ? "active" : undefined, dataset: { spec: spec.id },
      onmousedown: (e) => e.preventDefault(), // keep the input's focus
      onclick: () => this.#choose(spec, port),
    }, h("span", spec.title || spec.id), h("span.muted", port ? ` ${port.name}` : ` ${spec.id}`))));
    if (!matches.length) list.append(h("div.muted.quick-add-empty", "No nodespec matches"));
    this.matches = matches;
  }

  #onKey(event, list) {
    const items = [...list.querySelectorAll(".quick-add-item")];
    const at = items.findIndex((el) => el.classList.contains("active"));
    if (event.key === "Escape") this.close();
    else if (event.key === "Enter" && items[Math.max(at, 0)]) items[Math.max(at, 0)].click();
    else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const next = (at + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      items.forEach((el, i) => el.classList.toggle("active", i === next));
      items[next]?.scrollIntoView({ block: "nearest" });
    } else return;
    event.preventDefault();
  }

  /** Add the chosen nodespec at the point, wired to the waiting link if there is one. */
  #choose(spec, port) {
    const c = this.canvas;
    const { x, y, from } = this.at;
    this.close();
    const point = c.worldAt(x, y);
    const node = {
      id: c.model.freshNodeId(), spec_id: spec.id, name: spec.title || spec.id, values: {}, is_end: undefined,
      x: Math.round(from?.side === "input" ? point.x - NODE.width : point.x - (from ? 0 : NODE.width / 2)),
      y: Math.round(point.y - NODE.head / 2), extra: {},
    };
    const links = [];
    if (from && port) {
      links.push(from.side === "output"
        ? { source: `${from.node}:${from.port}`, target: `${node.id}:${port.name}` }
        : { source: `${node.id}:${port.name}`, target: `${from.node}:${from.port}` });
    }
    this.history.execute(addNodes([node], links, `Add ${node.name}`));
    c.select([node.id]);
  }

  // -------------------------------------------------------------------------- link dragging
  #dropped(connection, event) {
    this.#clearHighlight();
    const source = connection?.endpoints?.[0];
    if (!source || !event || this.canvas.lastLinkDrop > performance.now() - 300) return;
    // Under the pointer are the dragged link's own handle and path: look beneath them.
    const target = document.elementsFromPoint(event.clientX, event.clientY)
      .find((el) => !(el instanceof SVGElement) && !/\bjtk-/.test(el.className));
    if (!this.#isBackground(target)) return;
    const from = parseUuid(source.getUuid());
    setTimeout(() => this.open(event.clientX, event.clientY, from), 0);
  }

  #highlight(connection) {
    const source = connection?.endpoints?.[0];
    if (!source?.getUuid) return;
    const from = parseUuid(source.getUuid());
    const c = this.canvas;
    const node = c.model.node(from.node);
    if (!node) return;
    const type = this.catalog.portType(node.spec_id, from.side, from.port) || "Any";
    c.root.classList.add("linking");
    for (const [id, view] of c.views) {
      for (const endpoint of view.endpoints) {
        const el = endpoint.endpoint?.canvas;
        if (!el || !view.shown) continue;
        const to = parseUuid(endpoint.getUuid());
        const ok = to.side !== from.side && id !== from.node && (from.side === "output"
          ? this.catalog.compatible(type, this.catalog.portType(c.model.node(id).spec_id, "input", to.port) || "Any")
          : this.catalog.compatible(this.catalog.portType(c.model.node(id).spec_id, "output", to.port) || "Any", type));
        el.classList.toggle("link-ok", ok);
        el.classList.toggle("link-dim", !ok);
      }
    }
  }

  #clearHighlight() {
    const root = this.canvas.root;
    if (!root.classList.contains("linking")) return;
    root.classList.remove("linking");
    for (const el of root.querySelectorAll(".link-ok, .link-dim")) el.classList.remove("link-ok", "link-dim");
  }
}

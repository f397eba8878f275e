// The canvas: draws the flow model with jsPlumb (nodes, typed port endpoints, links) and turns what people
// do with the pointer into commands. The model is the source of truth: the canvas never edits it
// directly, it executes commands through the history and repaints when the model says what changed.

import { newInstance } from "@jsplumb/browser-ui";
import { checkLink } from "./catalog.js";
import { addNodes, connect, copiesOf, moveNodes, removeItems } from "./commands.js";
import { formatDuration, h } from "./dom.js";
import { Emitter } from "./events.js";
import { Layer } from "./layers.js";
import { LinkSketch } from "./linksketch.js";
import { closeMenu, showMenu } from "./menu.js";
import { splitEndpoint } from "./model.js";
import { status } from "./status.js";
import { NODE, nodeHeight, typeColor } from "./theme.js";

const MIN_ZOOM = 0.1;
const MAX_ZOOM = 2.5;
// Only what is in (or near) the view is rendered: nodes out of it are hidden, links out of it and port
// handles of hidden nodes are not displayed at all, so a frame's style, layout and paint cost follows
// what can be seen rather than the size of the flow. Handles are also hidden at zooms too small to aim
// at them. Culling is computed from positions the canvas already knows (the model's, and jsPlumb's
// bounds of each link), never by reading the layout, and it runs in the same frame as whatever moved.
const CULL_MARGIN = 160; // screen pixels around the view that are rendered too
const HANDLE_MIN_ZOOM = 0.4; // port handles (and the body of nodes) below this zoom: too small to aim at or read
const TEXT_MIN_ZOOM = 0.25; // node titles below this zoom (a few pixels high): a bar stands for them
const DRAG_THRESHOLD = 3;
const SKETCH_LINGER_MS = 300; // after a drop far out, links get their own elements back once idle this long
const STATUS_LABELS = {
  queued: "queued", running: "running", success: "success", fail: "failed", skipped: "skipped",
  cached: "cached", cancelled: "cancelled",
};

const endpointUuid = (node, port, side) => `${node}:${port}:${side}`;

function parseUuid(uuid) {
  const last = uuid.lastIndexOf(":");
  const { node, port } = splitEndpoint(uuid.slice(0, last));
  return { node, port, side: uuid.slice(last + 1) };
}

export class Canvas extends Emitter {
  constructor({ root, model, catalog, history }) {
    super();
    this.root = root;
    this.model = model;
    this.catalog = catalog;
    this.history = history;
    this.views = new Map(); // node id → {el, ports, height, endpoints, x, y (where it is drawn), shown, handles}
    this.connections = new Map(); // link key → jsPlumb connection
    this.linkOf = new WeakMap(); // jsPlumb connection → link key
    this.linkShown = new WeakMap(); // jsPlumb connection → whether it is displayed (see #cullLink)
    this.selection = new Set();
    this.selectedLink = null;
    this.statuses = new Map();
    this.view = { x: 40, y: 40, k: 1 };
    this.batchDepth = 0;
    this.pending = null; // what a batch touched: repainted once when it ends
    this.drag = null;
    this.clipboard = null;
    this.size = { width: root.clientWidth || 800, height: root.clientHeight || 600 };
    new ResizeObserver(([entry]) => {
      this.size = { width: entry.contentRect.width, height: entry.contentRect.height };
      this.#cull(true); // before this frame paints: a larger canvas must not show missing nodes
    }).observe(root);
    this.#buildDom();
    this.#createJsPlumb();
    this.#listenToModel();
    this.#listenToPointer();
  }

  // ------------------------------------------------------------------------------------- setup
  #buildDom() {
    this.viewport = h("div.viewport");
    this.nodeLayer = new Layer(this.viewport, "nodes");
    this.linkLayer = new Layer(this.viewport, "links");
    this.handleLayer = new Layer(this.viewport, "handles");
    this.dragLayer = h("div.bucket.bucket-drag");
    // Far out, while nodes are dragged, the links that do not move are drawn by the sketch and the
    // dragged nodes' links sit in a bucket of their own (see #startSketch).
    this.sketch = new LinkSketch();
    this.sketched = null; // while the sketch is shown: keys of the links it draws
    this.liveLinks = []; // while it is shown: [{el, parent}] of link elements moved to the live bucket
    this.sketchTimer = 0;
    this.liveLinkLayer = h("div.bucket.bucket-live-links");
    this.viewport.append(this.dragLayer, this.sketch.el, this.liveLinkLayer);
    this.marquee = h("div.marquee", { hidden: true });
    this.empty = h("div.canvas-empty", {},
      h("div.canvas-empty-title", "Drag a nodespec here"),
      h("div", "…from the palette on the left, or press Enter on one. Link ports by dragging from an output (right) to an input (left)."));
    this.root.append(this.viewport, this.marquee, this.empty);
    this.#applyTransform();
  }

  #createJsPlumb() {
    this.jsp = newInstance({
      container: this.viewport,
      elementsDraggable: false, // nodes are moved by the canvas itself: see #startNodeDrag
      resizeObserver: false, // node sizes only change when the canvas itself re-renders them
      connectionsDetachable: false,
      connector: { type: "Bezier", options: { curviness: 50 } },
      paintStyle: { stroke: "#94a3b8", strokeWidth: 2.2 },
      hoverPaintStyle: { stroke: "#2563eb", strokeWidth: 3 },
      endpoint: { type: "Dot", options: { radius: 6 } },
    });
    // jsPlumb appends each link's and each handle's SVG element to its container; put them in layers
    // instead (see layers.js). Handles are the SVG elements it creates with pointer-events "all", links
    // the ones with "none" (jsPlumb 6.2's getConnectorElement and SvgEndpoint.getEndpointElement).
    const append = this.jsp._appendElement.bind(this.jsp);
    this.jsp._appendElement = (el, parent) => {
      if (parent !== this.viewport || !(el instanceof SVGElement)) return append(el, parent);
      const layer = el.getAttribute("pointer-events") === "all" ? this.handleLayer : this.linkLayer;
      layer.add(el);
    };
    // jsPlumb measures an element (offsetLeft, offsetWidth: a forced layout) whenever it refreshes it. A
    // node's size and position are known here, and culled nodes are not displayed (they would measure as
    // 0 × 0 at the origin), so it gets them from the canvas; other elements are still measured.
    const nodeView = (el) => {
      const view = el?.dataset?.node !== undefined ? this.views.get(el.dataset.node) : undefined;
      return view?.el === el ? view : undefined;
    };
    const getSize = this.jsp.getSize.bind(this.jsp);
    const getOffset = this.jsp.getOffset.bind(this.jsp);
    this.jsp.getSize = (el) => {
      const view = nodeView(el);
      return view ? { w: NODE.width, h: view.height } : getSize(el);
    };
    this.jsp.getOffset = (el) => {
      const view = nodeView(el);
      return view ? { x: view.x, y: view.y } : getOffset(el);
    };
    this.jsp.bind("beforeDrop", (params) => this.#onLinkDrop(params));
    this.jsp.bind("connection:click", (connection, event) => this.#onConnectionClick(connection, event));
    this.jsp.bind("connection:contextmenu", (connection, event) => this.#onConnectionMenu(connection, event));
  }

  #listenToModel() {
    const model = this.model;
    model.on("batch:start", () => this.#beginBatch());
    model.on("batch:end", () => this.#endBatch());
    model.on("load", () => this.renderAll());
    model.on("node:add", (node) => this.#addNodeView(node));
    model.on("node:remove", (node) => this.#removeNodeView(node.id));
    model.on("node:update", (node, fields) => this.#updateNodeView(node, fields));
    model.on("nodes:move", (ids) => this.#placeNodeViews(ids));
    model.on("link:add", (link) => this.#addLinkView(link));
    model.on("link:remove", (link) => this.#removeLinkView(link));
    model.on("change", () => this.#updateCounts());
  }

  // Edits arrive in batches (one per command). While one runs jsPlumb does not draw; at its end only the
  // nodes it touched are repainted (with their links), from geometry the canvas knows: no layout reads.
  #beginBatch() {
    if (this.batchDepth++ === 0) {
      this.jsp.setSuspendDrawing(true);
      this.pending = { nodes: new Set(), links: new Set(), moved: new Set() }; // moved: nodes placed anew
    }
  }

  #endBatch() {
    if (--this.batchDepth > 0) return;
    const { nodes, links, moved } = this.pending;
    this.jsp.setSuspendDrawing(false);
    this.rect = this.#cullRect();
    const timestamp = `batch-${performance.now()}`;
    for (const id of nodes) {
      const view = this.views.get(id);
      if (view) this.jsp.repaint(view.el, timestamp, true);
    }
    this.pending = null;
    this.#tagPendingEndpoints();
    for (const id of nodes) {
      const view = this.views.get(id);
      if (view) this.#cullNode(view);
    }
    for (const key of links) this.#cullLink(this.connections.get(key));
    if (this.sketched) this.#sketchAfterEdit(moved, links);
  }

  /** Run `fn` as a batch unless one is already running. */
  #batched(fn) {
    this.#beginBatch();
    try {
      fn();
    } finally {
      this.#endBatch();
    }
  }

  // ---------------------------------------------------------------------------------- rendering
  /** Draw the whole model: the node elements, then jsPlumb's wiring in one batch, then cull. */
  renderAll() {
    const started = performance.now();
    this.#cancelNodeDrag();
    this.#endSketch();
    this.jsp.reset();
    this.viewport.replaceChildren(this.dragLayer, this.sketch.el, this.liveLinkLayer);
    this.dragLayer.replaceChildren();
    this.liveLinkLayer.replaceChildren();
    for (const layer of [this.nodeLayer, this.linkLayer, this.handleLayer]) layer.reset();
    this.views.clear();
    this.connections.clear();
    this.untagged = [];
    this.selection.clear();
    this.selectedLink = null;
    this.statuses.clear();
    const nodes = [...this.model.nodes.values()];
    for (const node of nodes) this.nodeLayer.add(this.#createNodeElement(node));
    this.#batched(() => {
      for (const node of nodes) {
        this.#wireNode(node);
        this.pending.nodes.add(node.id);
      }
      for (const link of this.model.links.values()) this.#addLinkView(link);
    });
    this.#cull(true);
    this.#updateCounts();
    this.emit("selection", this.selectionInfo());
    this.lastRenderMs = performance.now() - started;
  }

  /** Ports of a node: from its nodespec, or (for an unknown nodespec) from its values and links. */
  #portsOf(node) {
    const spec = this.catalog.spec(node.spec_id);
    if (spec) return { inputs: this.catalog.inputs(node.spec_id), outputs: this.catalog.outputs(node.spec_id), known: true };
    const inputs = new Set(Object.keys(node.values));
    const outputs = new Set();
    for (const link of this.model.linksOf(node.id)) {
      const source = splitEndpoint(link.source);
      const target = splitEndpoint(link.target);
      if (source.node === node.id) outputs.add(source.port);
      if (target.node === node.id) inputs.add(target.port);
    }
    const asPorts = (names) => [...names].map((name) => ({ name, type: "Any" }));
    return { inputs: asPorts(inputs), outputs: asPorts(outputs.size ? outputs : ["out"]), known: false };
  }

  #createNodeElement(node) {
    const ports = this.#portsOf(node);
    const spec = this.catalog.spec(node.spec_id);
    const rows = Math.max(ports.inputs.length, ports.outputs.length);
    const height = nodeHeight(rows);
    const el = h("div.node", {
      dataset: { node: node.id },
      style: { left: `${node.x}px`, top: `${node.y}px`, height: `${height}px`, width: `${NODE.width}px` },
    },
    h("div.node-head", {}, h("span.node-title", { title: node.name }, node.name)),
    h("div.node-spec", {},
      h("span.node-spec-name", { title: node.spec_id }, spec ? spec.title || spec.id : `missing: ${node.spec_id}`),
      h("span.node-badge")),
    h("div.node-ports", {},
      h("div.ports-in", {}, ports.inputs.map((port) => this.#portLabel(node, port, "input"))),
      h("div.ports-out", {}, ports.outputs.map((port) => this.#portLabel(node, port, "output")))));
    el.classList.toggle("is-end", this.model.isEnd(node.id));
    el.classList.toggle("missing-spec", !ports.known);
    this.views.set(node.id, { el, ports, height, endpoints: [], x: node.x, y: node.y, shown: true, handles: undefined });
    return el;
  }

  #portLabel(node, port, side) {
    const linked = side === "input" && Boolean(this.model.linkInto(node.id, port.name));
    const hasValue = side === "input" && port.name in node.values;
    return h(`div.port.port-${side === "input" ? "in" : "out"}`, {
      dataset: { port: port.name, type: port.type },
      title: `${port.name}: ${port.type}${port.required && side === "input" ? " (required)" : ""}`,
      class: [port.required && side === "input" ? "required" : "", linked ? "linked" : "", hasValue ? "has-value" : ""].join(" ").trim() || undefined,
    },
    h("span.port-name", port.name), h("span.port-type", { style: { color: typeColor(port.type) } }, port.type));
  }

  /**
   * Register a node element with jsPlumb and give each port an endpoint at a computed offset. Drawing is
   * suspended (renderAll, or a batch), so jsPlumb measures nothing here; the node's geometry is known.
   */
  #wireNode(node) {
    const view = this.views.get(node.id);
    this.jsp.manage(view.el, `n-${node.id}`);
    this.jsp.viewport.updateElement(this.jsp.getId(view.el), node.x, node.y, NODE.width, view.height, 0, true);
    const addEndpoint = (port, index, side) => {
      const y = NODE.head + index * NODE.row + NODE.row / 2;
      const anchor = side === "input" ? [0, 0, -1, 0, 0, y] : [1, 0, 1, 0, 0, y];
      const endpoint = this.jsp.addEndpoint(view.el, {
        uuid: endpointUuid(node.id, port.name, side),
        anchor,
        source: true,
        target: true,
        maxConnections: -1,
        endpoint: { type: "Dot", options: { radius: 6 } },
        paintStyle: { fill: typeColor(port.type), stroke: "#ffffff", strokeWidth: 2 },
        hoverPaintStyle: { fill: typeColor(port.type), stroke: "#1e293b", strokeWidth: 2 },
        connectorStyle: { stroke: typeColor(port.type), strokeWidth: 2.2 },
        cssClass: `endpoint endpoint-${side === "input" ? "in" : "out"}`,
      });
      view.endpoints.push(endpoint);
      (this.untagged ||= []).push(endpoint);
    };
    view.ports.inputs.forEach((port, index) => addEndpoint(port, index, "input"));
    view.ports.outputs.forEach((port, index) => addEndpoint(port, index, "output"));
  }

  // Endpoint elements exist once painted; label them so people (and tests) can find a port's handle.
  #tagPendingEndpoints() {
    for (const endpoint of this.untagged || []) {
      const element = endpoint.endpoint?.canvas;
      if (!element) continue;
      const { node, port, side } = parseUuid(endpoint.getUuid());
      element.dataset.node = node;
      element.dataset.port = port;
      element.dataset.side = side;
      element.setAttribute("aria-label", `${side} ${port} of ${this.model.node(node)?.name || node}`);
    }
    this.untagged = [];
  }

  #addNodeView(node) {
    this.#batched(() => {
      this.nodeLayer.add(this.#createNodeElement(node));
      this.#wireNode(node);
      this.pending.nodes.add(node.id);
    });
    this.#updateEmptyHint();
  }

  // ---------------------------------------------------------------------------------- culling
  /** The part of the world (viewport coordinates) that is rendered: the view and a margin. */
  #cullRect() {
    const { x, y, k } = this.view;
    const margin = CULL_MARGIN / k;
    return {
      left: -x / k - margin, top: -y / k - margin,
      right: (this.size.width - x) / k + margin, bottom: (this.size.height - y) / k + margin,
    };
  }

  /** Cull everything: after the view moved (pan, zoom, resize) or the flow was drawn. `now` or next frame. */
  #cull(now = false) {
    if (!now) {
      if (!this.cullPending) this.cullPending = requestAnimationFrame(() => this.#cull(true));
      return;
    }
    if (this.cullPending) cancelAnimationFrame(this.cullPending);
    this.cullPending = null;
    this.rect = this.#cullRect();
    for (const view of this.views.values()) this.#cullNode(view);
    for (const connection of this.connections.values()) this.#cullLink(connection);
  }

  /** Show or hide one node (where it is drawn now) and its port handles. */
  #cullNode(view) {
    const r = this.rect ||= this.#cullRect();
    const shown = view.x < r.right && view.x + NODE.width > r.left && view.y < r.bottom && view.y + view.height > r.top;
    if (shown !== view.shown) {
      view.shown = shown;
      view.el.classList.toggle("culled", !shown);
    }
    const handles = shown && this.view.k >= HANDLE_MIN_ZOOM;
    if (handles === view.handles) return;
    let complete = true;
    for (const endpoint of view.endpoints) {
      const element = endpoint.endpoint?.canvas;
      if (element) element.classList.toggle("culled", !handles);
      else complete = false;
    }
    view.handles = complete ? handles : undefined; // handles not painted yet are culled once they are
  }

  /** Show or hide one link from the bounds jsPlumb painted it at. */
  #cullLink(connection) {
    const connector = connection?.connector;
    const element = connector?.canvas;
    if (!element) return;
    const r = this.rect ||= this.#cullRect();
    const shown = !(connector.w >= 0) // not painted yet: keep it displayed
      || (connector.x < r.right && connector.x + connector.w > r.left && connector.y < r.bottom && connector.y + connector.h > r.top);
    if (this.linkShown.get(connection) === shown) return;
    this.linkShown.set(connection, shown);
    element.classList.toggle("culled", !shown);
  }

  /** Cull the given nodes and every link touching them (after they moved). */
  #cullAround(ids) {
    for (const id of ids) {
      const view = this.views.get(id);
      if (view) this.#cullNode(view);
      for (const link of this.model.linksOf(id)) this.#cullLink(this.connections.get(link.key));
    }
  }

  #removeNodeView(id) {
    const view = this.views.get(id);
    if (!view) return;
    if (this.drag?.items.some((item) => item.id === id)) this.#cancelNodeDrag();
    this.#batched(() => {
      this.jsp.removeAllEndpoints(view.el);
      this.jsp.unmanage(view.el, true);
    });
    view.el.remove();
    this.views.delete(id);
    this.statuses.delete(id);
    if (this.selection.delete(id)) this.#selectionChanged();
    this.#updateEmptyHint();
  }

  #updateNodeView(node, fields) {
    const view = this.views.get(node.id);
    if (!view) return;
    if (fields.includes("name")) {
      const title = view.el.querySelector(".node-title");
      title.textContent = node.name;
      title.title = node.name;
    }
    if (fields.includes("is_end")) view.el.classList.toggle("is-end", this.model.isEnd(node.id));
    if (fields.includes("values")) {
      for (const label of view.el.querySelectorAll(".port-in")) {
        label.classList.toggle("has-value", label.dataset.port in node.values);
      }
    }
    if (fields.some((f) => f !== "x" && f !== "y")) this.emit("selection", this.selectionInfo());
  }

  #placeNodeViews(ids) {
    this.#batched(() => {
      for (const id of ids) {
        const view = this.views.get(id);
        const node = this.model.node(id);
        if (!view) continue;
        this.#drawNodeAt(view, node.x, node.y);
        this.pending.nodes.add(id);
        this.pending.moved.add(id);
        for (const link of this.model.linksOf(id)) this.pending.links.add(link.key);
      }
    });
  }

  /** Put a node's element at (x, y) and tell jsPlumb, which repaints its links unless drawing is suspended. */
  #drawNodeAt(view, x, y) {
    view.x = x;
    view.y = y;
    view.el.style.left = `${x}px`;
    view.el.style.top = `${y}px`;
    this.jsp.setElementPosition(view.el, x, y);
  }

  #addLinkView(link) {
    const source = splitEndpoint(link.source);
    const target = splitEndpoint(link.target);
    this.#batched(() => {
      const connection = this.jsp.connect({
        uuids: [endpointUuid(source.node, source.port, "output"), endpointUuid(target.node, target.port, "input")],
      });
      if (!connection) return;
      connection.setPaintStyle?.({ stroke: this.#linkColor(link.key), strokeWidth: 2.2 });
      this.connections.set(link.key, connection);
      this.linkOf.set(connection, link.key);
      this.pending.nodes.add(source.node);
      this.pending.nodes.add(target.node);
      this.pending.links.add(link.key);
    });
    this.views.get(target.node)?.el.querySelector(`.port-in[data-port="${CSS.escape(target.port)}"]`)?.classList.add("linked");
  }

  #removeLinkView(link) {
    const connection = this.connections.get(link.key);
    this.connections.delete(link.key);
    if (connection) {
      this.#batched(() => {
        this.pending.links.add(link.key);
        this.jsp.deleteConnection(connection, { force: true, fireEvent: false });
      });
    }
    if (this.selectedLink === link.key) {
      this.selectedLink = null;
      this.#selectionChanged();
    }
    const target = splitEndpoint(link.target);
    this.views.get(target.node)?.el.querySelector(`.port-in[data-port="${CSS.escape(target.port)}"]`)?.classList.remove("linked");
  }

  /** Re-render nodes using the given nodespecs after those specs changed (ports may differ). */
  refreshSpecs(specIds) {
    const affected = [...this.model.nodes.values()].some((node) => specIds.includes(node.spec_id));
    if (!affected) return;
    const view = { ...this.view };
    const selection = [...this.selection];
    const statuses = new Map(this.statuses);
    this.renderAll();
    this.view = view;
    this.#applyTransform();
    for (const [id, entry] of statuses) this.setStatus(id, entry.status, entry.duration);
    this.select(selection.filter((id) => this.model.nodes.has(id)));
  }

  #updateCounts() {
    status.setCounts(this.model.nodes.size, this.model.links.size, this.selection.size);
    this.#updateEmptyHint();
  }

  #updateEmptyHint() {
    this.empty.hidden = this.model.nodes.size > 0 || !this.model.id;
  }

  // ------------------------------------------------------------------------------------- linking
  #onLinkDrop({ connection, dropEndpoint }) {
    const sourceEndpoint = connection.endpoints?.[0];
    const from = parseUuid(sourceEndpoint.getUuid());
    const to = parseUuid(dropEndpoint.getUuid());
    const verdict = checkLink(this.model, this.catalog, from, to);
    if (verdict.reason) {
      status.toast(verdict.reason, "error");
      this.emit("link-refused", verdict.reason);
    } else {
      // Let jsPlumb finish its drop first; the command's link:add event then draws the connection.
      queueMicrotask(() => this.history.execute(connect(verdict.link)));
    }
    return false;
  }

  #onConnectionClick(connection, event) {
    const key = this.linkOf.get(connection);
    if (!key) return;
    event?.stopPropagation?.();
    this.selectLink(key);
  }

  #onConnectionMenu(connection, event) {
    const key = this.linkOf.get(connection);
    if (!key) return;
    event.preventDefault();
    this.selectLink(key);
    showMenu(event.clientX, event.clientY, [
      { label: "Delete link", shortcut: "Del", danger: true, action: () => this.deleteSelection() },
    ]);
  }

  // ------------------------------------------------------------------------------------- moving
  // Nodes are dragged by the canvas rather than by jsPlumb's element drag: pointer moves are applied once
  // per frame (the latest position wins), only the dragged nodes' links are re-routed (jsPlumb's
  // setElementPosition repaints just those), and nothing reads the layout. While dragging, the nodes sit
  // in a layer above everything and the pointer is captured by the canvas, so jsPlumb's delegated mouse
  // handlers on the viewport are not run for every move.

  #startNodeDrag(event, id) {
    this.#cancelNodeDrag();
    const ids = this.selection.has(id) ? [...this.selection] : [id];
    const items = ids.map((nodeId) => ({ id: nodeId, view: this.views.get(nodeId) })).filter((item) => item.view)
      .map((item) => ({ ...item, from: { x: item.view.x, y: item.view.y } }));
    if (!items.length) return;
    const drag = {
      pointerId: event.pointerId, start: { x: event.clientX, y: event.clientY }, at: null, items,
      active: false, frame: 0, listeners: null,
    };
    const move = (e) => {
      if (e.pointerId !== drag.pointerId) return;
      if (!drag.active) {
        if (Math.abs(e.clientX - drag.start.x) + Math.abs(e.clientY - drag.start.y) < DRAG_THRESHOLD) return;
        this.#activateNodeDrag(drag);
      }
      drag.at = { x: e.clientX, y: e.clientY };
      if (!drag.frame) drag.frame = requestAnimationFrame(() => this.#applyNodeDrag(drag));
    };
    const up = (e) => {
      if (e.pointerId === drag.pointerId) this.#endNodeDrag(drag, e.type === "pointerup");
    };
    drag.listeners = { pointermove: move, pointerup: up, pointercancel: up, lostpointercapture: up };
    for (const [type, listener] of Object.entries(drag.listeners)) this.root.addEventListener(type, listener);
    this.drag = drag;
  }

  #activateNodeDrag(drag) {
    drag.active = true;
    this.dragging = true;
    try {
      this.root.setPointerCapture(drag.pointerId);
    } catch { /* the pointer is already gone; pointerup ends the drag */ }
    for (const { view } of drag.items) {
      view.el.classList.add("dragging");
      this.dragLayer.append(view.el);
    }
    if (this.view.k < HANDLE_MIN_ZOOM) this.#startSketch(drag.items.map((item) => item.id));
  }

  // Level of detail for dragging far out, where most of a large flow is on screen: the links that do not
  // move are drawn once by the sketch (a few paths), their own elements are left undrawn (content-
  // visibility: hidden on their buckets, app.css, which keeps their layout for when they come back), and
  // only the links of the dragged nodes stay live, in a bucket of their own, re-routed by jsPlumb on
  // every step. Each frame then re-composites a handful of elements instead of one per link.
  //
  // After the drop the sketch stays until the editor has been idle a moment (#lingerSketch): giving
  // every link its element back costs a frame as long as the sketch saved on each step, better spent
  // when nothing moves than on the drop. Dragging again meanwhile reuses it. It ends at once when the
  // view zooms in past HANDLE_MIN_ZOOM or the flow is drawn again; an edit that touches a sketched link
  // draws it again (#sketchAfterEdit). Whatever is on screen is always either the sketch or a live link.
  #startSketch(ids) {
    const moving = new Set();
    for (const id of ids) {
      for (const link of this.model.linksOf(id)) moving.add(link.key);
    }
    if (this.selectedLink) moving.add(this.selectedLink); // drawn highlighted by its own element
    this.#cancelSketchEnd();
    if (this.sketched && ![...moving].some((key) => this.sketched.has(key))) return; // still right: reuse it
    this.#endSketch();
    const still = [];
    for (const [key, connection] of this.connections) {
      if (!moving.has(key)) still.push({ key, color: this.#linkColor(key), connector: connection.connector });
    }
    this.sketched = this.sketch.draw(still);
    this.liveLinks = [];
    for (const key of this.connections.keys()) {
      if (!this.sketched.has(key)) this.#makeLive(key);
    }
    this.root.classList.add("sketching");
  }

  /** Move a link's element to the live bucket (drawn while the sketch is shown); put back at the end. */
  #makeLive(key) {
    const el = this.connections.get(key)?.connector?.canvas;
    if (!el?.parentNode || el.parentNode === this.liveLinkLayer) return;
    this.liveLinks.push({ el, parent: el.parentNode });
    this.liveLinkLayer.append(el);
  }

  #endSketch() {
    this.#cancelSketchEnd();
    if (!this.sketched) return;
    for (const { el, parent } of this.liveLinks) {
      if (el.parentNode === this.liveLinkLayer) parent.append(el); // unless jsPlumb removed it meanwhile
    }
    this.liveLinks = [];
    this.sketched = null;
    this.sketch.clear();
    this.root.classList.remove("sketching");
  }

  /** End the sketch once the editor is idle: no drag, no pan, nothing else to do for a moment. */
  #lingerSketch() {
    this.#cancelSketchEnd();
    const token = this.sketchTimer = setTimeout(() => {
      const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 0));
      idle(() => {
        if (this.sketchTimer !== token) return; // cancelled or rescheduled meanwhile
        if (this.drag?.active || this.root.classList.contains("panning")) this.#lingerSketch();
        else this.#endSketch();
      }, { timeout: 1000 });
    }, SKETCH_LINGER_MS);
  }

  #cancelSketchEnd() {
    clearTimeout(this.sketchTimer);
    this.sketchTimer = 0;
  }

  /** After a batch of edits while the sketch is shown: the links it added, removed or repainted, and the
   * nodes it moved. */
  #sketchAfterEdit(moved, links) {
    const touched = new Set(links);
    for (const id of moved) {
      for (const link of this.model.linksOf(id)) touched.add(link.key);
    }
    if ([...touched].some((key) => this.sketched.has(key))) {
      // A sketched link moved, went or changed: draw the sketch again (while dragging) or end it.
      if (this.drag?.active && this.view.k < HANDLE_MIN_ZOOM) {
        const ids = this.drag.items.map((item) => item.id);
        this.#endSketch();
        this.#startSketch(ids);
      } else {
        this.#endSketch();
      }
      return;
    }
    for (const key of touched) this.#makeLive(key); // new links: drawn by their own element
  }

  #linkColor(key) {
    const link = this.model.links.get(key);
    if (!link) return typeColor("Any");
    const source = splitEndpoint(link.source);
    return typeColor(this.views.get(source.node)?.ports.outputs.find((p) => p.name === source.port)?.type);
  }

  /** Move the dragged nodes to where the pointer is now, and their links with them (once per frame). */
  #applyNodeDrag(drag) {
    drag.frame = 0;
    if (!drag.at) return;
    const dx = (drag.at.x - drag.start.x) / this.view.k;
    const dy = (drag.at.y - drag.start.y) / this.view.k;
    for (const { view, from } of drag.items) this.#drawNodeAt(view, from.x + dx, from.y + dy);
    this.rect = this.#cullRect();
    this.#cullAround(drag.items.map((item) => item.id));
  }

  /** Finish a drag: `commit` records the move as a command; otherwise the nodes go back. */
  #endNodeDrag(drag, commit) {
    if (this.drag === drag) this.drag = null;
    for (const [type, listener] of Object.entries(drag.listeners)) this.root.removeEventListener(type, listener);
    if (drag.frame) cancelAnimationFrame(drag.frame);
    if (!drag.active) return;
    if (this.root.hasPointerCapture?.(drag.pointerId)) this.root.releasePointerCapture(drag.pointerId);
    if (commit) this.#applyNodeDrag(drag);
    if (this.sketched) this.#lingerSketch();
    setTimeout(() => { this.dragging = false; }, 0);
    const moves = [];
    for (const { id, view, from } of drag.items) {
      view.el.classList.remove("dragging");
      if (view.el.parentNode === this.dragLayer) this.nodeLayer.add(view.el);
      const to = { x: Math.round(view.x), y: Math.round(view.y) };
      if (commit && this.model.nodes.has(id) && (to.x !== from.x || to.y !== from.y)) moves.push({ id, from, to });
    }
    if (moves.length) {
      this.history.execute(moveNodes(moves)); // the model's nodes:move event draws them at the rounded positions
    } else {
      this.#placeNodeViews(drag.items.map((item) => item.id).filter((id) => this.model.nodes.has(id)));
    }
  }

  #cancelNodeDrag() {
    if (this.drag) this.#endNodeDrag(this.drag, false);
  }

  // ------------------------------------------------------------------------------------ selection
  selectionInfo() {
    return { nodes: [...this.selection], link: this.selectedLink };
  }

  select(ids, { add = false } = {}) {
    if (!add) this.selection.clear();
    for (const id of ids) this.selection.add(id);
    this.selectedLink = null;
    this.#selectionChanged();
  }

  toggle(id) {
    if (!this.selection.delete(id)) this.selection.add(id);
    this.selectedLink = null;
    this.#selectionChanged();
  }

  selectLink(key) {
    this.selection.clear();
    this.selectedLink = key;
    this.#selectionChanged();
  }

  clearSelection() {
    if (!this.selection.size && !this.selectedLink) return;
    this.selection.clear();
    this.selectedLink = null;
    this.#selectionChanged();
  }

  selectAll() {
    this.select([...this.model.nodes.keys()]);
  }

  #selectionChanged() {
    if (this.sketched?.has(this.selectedLink)) {
      this.#endSketch();
      if (this.drag?.active && this.view.k < HANDLE_MIN_ZOOM) this.#startSketch(this.drag.items.map((item) => item.id));
    }
    for (const [id, view] of this.views) view.el.classList.toggle("selected", this.selection.has(id));
    for (const [key, connection] of this.connections) {
      if (key === this.selectedLink) connection.addClass("selected");
      else connection.removeClass("selected");
    }
    this.#updateCounts();
    this.emit("selection", this.selectionInfo());
  }

  deleteSelection() {
    const nodes = [...this.selection];
    const links = this.selectedLink ? [this.selectedLink] : [];
    if (!nodes.length && !links.length) return;
    this.history.execute(removeItems(this.model, nodes, links));
  }

  copySelection() {
    if (!this.selection.size) return false;
    const ids = new Set(this.selection);
    const nodes = [...ids].map((id) => structuredClone(this.model.node(id)));
    const links = [...this.model.links.values()]
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
    let clipboard = this.clipboard;
    try {
      clipboard = JSON.parse(localStorage.getItem("pyflow.clipboard")) || clipboard;
    } catch { /* fall back to the in-memory copy */ }
    if (!clipboard?.nodes?.length || !this.model.id) return;
    this.pasteCount = (this.pasteCount || 0) + 1;
    const offset = 30 * this.pasteCount;
    const { nodes, links } = copiesOf(this.model, clipboard.nodes, clipboard.links, offset, offset);
    this.history.execute(addNodes(nodes, links, `Paste ${nodes.length} node${nodes.length > 1 ? "s" : ""}`));
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
    if (!this.selection.size) return;
    const moves = [...this.selection].map((id) => {
      const node = this.model.node(id);
      return { id, from: { x: node.x, y: node.y }, to: { x: node.x + dx, y: node.y + dy } };
    });
    this.history.execute(moveNodes(moves));
  }

  // --------------------------------------------------------------------------- adding from palette
  /** Create a node of nodespec `specId` at client point (x, y), or at the view's centre. */
  addSpecAt(specId, clientX, clientY) {
    const spec = this.catalog.spec(specId);
    if (!spec || !this.model.id) return null;
    const point = clientX === undefined ? this.#viewCentre() : this.worldAt(clientX, clientY);
    const node = {
      id: this.model.freshNodeId(), spec_id: spec.id, name: spec.title || spec.id, values: {},
      is_end: undefined, x: Math.round(point.x - NODE.width / 2), y: Math.round(point.y - NODE.head / 2), extra: {},
    };
    this.history.execute(addNodes([node], [], `Add ${node.name}`));
    this.select([node.id]);
    return node.id;
  }

  #viewCentre() {
    const rect = this.root.getBoundingClientRect();
    return this.worldAt(rect.left + rect.width / 2, rect.top + rect.height / 2);
  }

  // ------------------------------------------------------------------------------ zoom and pan
  worldAt(clientX, clientY) {
    const rect = this.root.getBoundingClientRect();
    return { x: (clientX - rect.left - this.view.x) / this.view.k, y: (clientY - rect.top - this.view.y) / this.view.k };
  }

  #applyTransform() {
    const { x, y, k } = this.view;
    this.viewport.style.transform = `translate(${x}px, ${y}px) scale(${k})`;
    this.root.style.backgroundPosition = `${x}px ${y}px`;
    this.root.style.backgroundSize = `${24 * k}px ${24 * k}px`;
    this.jsp?.setZoom(k, false);
    // Levels of detail (app.css). Far out, where handles are hidden and a node's ports could not be read
    // anyway, nodes show their head only, flat: far fewer boxes for the browser to paint and composite on
    // every frame, and a drag draws the still links as a sketch (#startSketch). Tiny, a bar stands for
    // each title.
    this.root.classList.toggle("far", k < HANDLE_MIN_ZOOM);
    this.root.classList.toggle("tiny", k < TEXT_MIN_ZOOM);
    if (k >= HANDLE_MIN_ZOOM) this.#endSketch();
    if (this.views) this.#cull();
    status.setZoom(k);
    this.emit("zoom", k);
  }

  zoomAt(clientX, clientY, scale) {
    const k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, scale));
    const rect = this.root.getBoundingClientRect();
    const px = clientX - rect.left;
    const py = clientY - rect.top;
    this.view.x = px - ((px - this.view.x) * k) / this.view.k;
    this.view.y = py - ((py - this.view.y) * k) / this.view.k;
    this.view.k = k;
    this.#applyTransform();
  }

  zoomBy(factor) {
    const rect = this.root.getBoundingClientRect();
    this.zoomAt(rect.left + rect.width / 2, rect.top + rect.height / 2, this.view.k * factor);
  }

  /** Size of a node from its port count: known without reading the layout. */
  nodeBox(id) {
    const node = this.model.node(id);
    const height = this.views.get(id)?.height ?? nodeHeight(1);
    return { x: node.x, y: node.y, w: NODE.width, h: height };
  }

  /** Zoom and pan so every node (or the given ones) is in view. */
  fitView(ids = [...this.model.nodes.keys()]) {
    if (!ids.length) {
      this.view = { x: 40, y: 40, k: 1 };
      this.#applyTransform();
      return;
    }
    let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const id of ids) {
      const box = this.nodeBox(id);
      minX = Math.min(minX, box.x);
      minY = Math.min(minY, box.y);
      maxX = Math.max(maxX, box.x + box.w);
      maxY = Math.max(maxY, box.y + box.h);
    }
    const width = this.root.clientWidth || 800;
    const height = this.root.clientHeight || 600;
    const margin = 48;
    const k = Math.min(1.2, Math.max(MIN_ZOOM, Math.min((width - 2 * margin) / (maxX - minX), (height - 2 * margin) / (maxY - minY))));
    this.view = { k, x: (width - (maxX - minX) * k) / 2 - minX * k, y: (height - (maxY - minY) * k) / 2 - minY * k };
    this.#applyTransform();
  }

  // ------------------------------------------------------------------------------- run statuses
  setStatus(id, state, durationMs) {
    const view = this.views.get(id);
    this.statuses.set(id, { status: state, duration: durationMs });
    if (!view) return;
    view.el.dataset.status = state;
    const badge = view.el.querySelector(".node-badge");
    const duration = durationMs !== undefined && durationMs !== null && state !== "queued" && state !== "running"
      ? ` · ${formatDuration(durationMs)}` : "";
    badge.textContent = `${STATUS_LABELS[state] || state}${duration}`;
  }

  clearStatuses() {
    for (const id of this.statuses.keys()) {
      const view = this.views.get(id);
      if (!view) continue;
      delete view.el.dataset.status;
      view.el.querySelector(".node-badge").textContent = "";
    }
    this.statuses.clear();
  }

  /** Outline nodes the server found problems with (from a save's error details). */
  markProblems(problems) {
    for (const view of this.views.values()) {
      view.el.classList.remove("has-problem");
      view.el.removeAttribute("data-problem");
    }
    for (const [id, message] of problems) {
      const view = this.views.get(id);
      if (!view) continue;
      view.el.classList.add("has-problem");
      view.el.dataset.problem = message;
      view.el.title = message;
    }
  }

  // ------------------------------------------------------------------------------ pointer input
  #listenToPointer() {
    this.root.addEventListener("wheel", (event) => {
      event.preventDefault();
      const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
      this.zoomAt(event.clientX, event.clientY, this.view.k * factor);
    }, { passive: false });
    this.root.addEventListener("pointerdown", (event) => this.#onPointerDown(event));
    this.root.addEventListener("contextmenu", (event) => this.#onContextMenu(event));
    this.root.addEventListener("dblclick", (event) => {
      const nodeEl = event.target.closest?.(".node");
      if (nodeEl) this.emit("open-node", nodeEl.dataset.node);
    });
  }

  #isBackground(target) {
    return target === this.root || target === this.viewport || target === this.empty || this.empty.contains(target);
  }

  #onPointerDown(event) {
    closeMenu();
    if (event.button !== 0 && event.button !== 1) return;
    this.root.focus({ preventScroll: true });
    const nodeEl = event.target.closest?.(".node");
    if (nodeEl && event.button === 0) {
      const id = nodeEl.dataset.node;
      if (event.shiftKey || event.ctrlKey || event.metaKey) this.toggle(id);
      else if (!this.selection.has(id)) this.select([id]);
      else this.emit("selection", this.selectionInfo()); // re-show the node when clicked again
      if (this.model.nodes.has(id)) this.#startNodeDrag(event, id);
      return;
    }
    if (!this.#isBackground(event.target)) return;
    if (event.shiftKey && event.button === 0) this.#startMarquee(event);
    else this.#startPan(event);
  }

  #startPan(event) {
    const start = { x: event.clientX, y: event.clientY, vx: this.view.x, vy: this.view.y };
    let moved = false;
    this.root.setPointerCapture(event.pointerId);
    this.root.classList.add("panning");
    const move = (e) => {
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
      this.view.x = start.vx + dx;
      this.view.y = start.vy + dy;
      this.#applyTransform();
    };
    const up = () => {
      this.root.classList.remove("panning");
      this.root.removeEventListener("pointermove", move);
      this.root.removeEventListener("pointerup", up);
      this.root.removeEventListener("pointercancel", up);
      if (!moved) this.clearSelection();
    };
    this.root.addEventListener("pointermove", move);
    this.root.addEventListener("pointerup", up);
    this.root.addEventListener("pointercancel", up);
  }

  #startMarquee(event) {
    const rect = this.root.getBoundingClientRect();
    const start = { x: event.clientX - rect.left, y: event.clientY - rect.top };
    const box = { ...start, w: 0, h: 0 };
    this.root.setPointerCapture(event.pointerId);
    this.marquee.hidden = false;
    const draw = () => Object.assign(this.marquee.style, {
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
      this.marquee.hidden = true;
      this.root.removeEventListener("pointermove", move);
      this.root.removeEventListener("pointerup", up);
      this.root.removeEventListener("pointercancel", up);
      this.select(this.#nodesInScreenBox(box), { add: true });
    };
    this.root.addEventListener("pointermove", move);
    this.root.addEventListener("pointerup", up);
    this.root.addEventListener("pointercancel", up);
  }

  #nodesInScreenBox(box) {
    const { x, y, k } = this.view;
    const left = (box.x - x) / k;
    const top = (box.y - y) / k;
    const right = left + box.w / k;
    const bottom = top + box.h / k;
    return [...this.model.nodes.keys()].filter((id) => {
      const b = this.nodeBox(id);
      return b.x < right && b.x + b.w > left && b.y < bottom && b.y + b.h > top;
    });
  }

  #onContextMenu(event) {
    event.preventDefault();
    if (!this.model.id) return;
    const nodeEl = event.target.closest?.(".node");
    if (nodeEl) {
      const id = nodeEl.dataset.node;
      if (!this.selection.has(id)) this.select([id]);
      const many = this.selection.size > 1;
      const isEnd = this.model.isEnd(id);
      showMenu(event.clientX, event.clientY, [
        { label: "Edit nodespec…", disabled: many || !this.catalog.spec(this.model.node(id).spec_id), action: () => this.emit("edit-spec", this.model.node(id).spec_id) },
        { label: isEnd ? "Unmark end node" : "Mark as end node", disabled: many, action: () => this.emit("toggle-end", id) },
        "-",
        { label: "Copy", shortcut: "Ctrl+C", action: () => this.copySelection() },
        { label: "Duplicate", shortcut: "Ctrl+D", action: () => this.duplicateSelection() },
        { label: many ? `Delete ${this.selection.size} nodes` : "Delete node", shortcut: "Del", danger: true, action: () => this.deleteSelection() },
      ]);
      return;
    }
    if (!this.#isBackground(event.target)) return;
    const point = { x: event.clientX, y: event.clientY };
    showMenu(point.x, point.y, [
      { label: "Paste", shortcut: "Ctrl+V", action: () => this.paste() },
      { label: "Select all", shortcut: "Ctrl+A", action: () => this.selectAll() },
      "-",
      { label: "Fit to view", shortcut: "F", action: () => this.fitView() },
      { label: "Auto-layout", shortcut: "L", action: () => this.emit("auto-layout") },
    ]);
  }
}

// The canvas: draws the flow model with jsPlumb (nodes, typed port endpoints, links) and turns what people
// do with the pointer into commands. The model is the source of truth: the canvas never edits it
// directly, it executes commands through the history and repaints when the model says what changed.
// The view (zoom, pan, culling) is viewport.js's, the selection and what is done to it selection.js's,
// moving nodes (and the link sketch meanwhile) drag.js's, a node's element nodeview.js's, its ports'
// labels and endpoints wiring.js's; the canvas's public methods for those delegate there.

import { newInstance } from "@jsplumb/browser-ui";
import { checkLink } from "./catalog.js";
import { addNodes, connect } from "./commands.js";
import { h } from "./dom.js";
import { Dragger } from "./drag.js";
import { Emitter } from "./events.js";
import { Layer } from "./layers.js";
import { LinkSketch } from "./linksketch.js";
import { closeMenu, showMenu } from "./menu.js";
import { splitEndpoint } from "./model.js";
import { nodeElement, showMapped, showNote, showPortValues, showProgress, showStatus } from "./nodeview.js";
import { Selector } from "./selection.js";
import { status } from "./status.js";
import { freeSpot } from "./placement.js";
import { NODE, nodeHeight, typeColor } from "./theme.js";
import { Viewport } from "./viewport.js";
import { endpointUuid, parseUuid, Wiring } from "./wiring.js";

export class Canvas extends Emitter {
  constructor({ root, model, catalog, history }) {
    super();
    this.root = root;
    this.model = model;
    this.catalog = catalog;
    this.history = history;
    this.views = new Map(); // node id → {id, el, ports, height, endpoints, x, y (where it is drawn), shown, handles}
    this.viewOf = new WeakMap(); // node element → its view (jsPlumb asks by element, many times over)
    this.connections = new Map(); // link key → jsPlumb connection
    this.linkOf = new WeakMap(); // jsPlumb connection → link key
    this.linkShown = new WeakMap(); // jsPlumb connection → whether it is displayed (see Viewport.cullLink)
    this.selection = new Set();
    this.selectedLink = null;
    this.statuses = new Map();
    this.view = { x: 40, y: 40, k: 1 };
    this.batchDepth = 0;
    this.pending = null; // what a batch touched: repainted once when it ends
    this.drag = null;
    this.size = { width: root.clientWidth || 800, height: root.clientHeight || 600 };
    this.viewer = new Viewport(this); // zoom, pan and culling (viewport.js)
    this.selector = new Selector(this); // what is selected and what is done to it (selection.js)
    this.dragger = new Dragger(this); // moving nodes, and the link sketch while doing so (drag.js)
    this.wiring = new Wiring(this); // ports' labels and jsPlumb endpoints, made when first needed (wiring.js)
    new ResizeObserver(([entry]) => {
      this.size = { width: entry.contentRect.width, height: entry.contentRect.height };
      this.viewer.cull(true); // before this frame paints: a larger canvas must not show missing nodes
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
    // dragged nodes' links sit in a bucket of their own (see drag.js).
    this.sketch = new LinkSketch();
    this.sketched = null; // while the sketch is shown: keys of the links it draws
    this.liveLinkLayer = h("div.bucket.bucket-live-links");
    this.viewport.append(this.dragLayer, this.sketch.el, this.liveLinkLayer);
    this.marquee = h("div.marquee", { hidden: true });
    this.empty = h("div.canvas-empty", {},
      h("div.canvas-empty-title", "Drag a nodespec here"),
      h("div", "…from the palette on the left, or press Enter on one. Link ports by dragging from an output (right) to an input (left)."));
    this.root.append(this.viewport, this.marquee, this.empty);
    this.viewer.applyTransform();
  }

  #createJsPlumb() {
    this.jsp = newInstance({
      container: this.viewport,
      elementsDraggable: false, // nodes are moved by the canvas itself: see drag.js
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
      const view = el ? this.viewOf.get(el) : undefined;
      return view && this.views.get(view.id) === view ? view : undefined;
    };
    const getSize = this.jsp.getSize.bind(this.jsp);
    const getOffset = this.jsp.getOffset.bind(this.jsp);
    this.jsp.getSize = (el) => {
      const view = nodeView(el);
      return view ? { w: view.width, h: view.height } : getSize(el);
    };
    this.jsp.getOffset = (el) => {
      const view = nodeView(el);
      return view ? { x: view.x, y: view.y } : getOffset(el);
    };
    // A port handle (an SVG element) is first painted when its node shows handles (Viewport.cullNode): far
    // out or out of view, a large flow has thousands that could be neither seen nor aimed at. Links do
    // not need them painted (jsPlumb computes their anchors itself).
    const paintEndpoint = this.jsp._paintEndpoint.bind(this.jsp);
    this.jsp._paintEndpoint = (endpoint, params) => {
      const view = endpoint.endpoint?.canvas ? undefined : nodeView(endpoint.element);
      if (view && !this.viewer.wantsHandles(view)) return;
      paintEndpoint(endpoint, params);
    };
    /** Paint a handle deferred until now, and label it. */
    this.paintHandle = (endpoint) => {
      paintEndpoint(endpoint, {});
      this.jsp._refreshEndpoint(endpoint);
      this.wiring.tag(endpoint);
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
    model.on("nodes:move", (ids) => this.placeNodeViews(ids));
    model.on("link:add", (link) => this.#addLinkView(link));
    model.on("link:remove", (link) => this.#removeLinkView(link));
    model.on("change", () => this.updateCounts());
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
    const { nodes, links, moved, all } = this.pending;
    this.jsp.setSuspendDrawing(false);
    this.viewer.updateRect();
    const timestamp = `batch-${performance.now()}`;
    if (all) {
      // The whole flow (renderAll): each link painted once, straight away. Repainting node by node would
      // visit every link twice and every port's endpoint, whose handles culling paints where shown.
      for (const connection of this.connections.values()) this.jsp._paintConnection(connection, { timestamp });
    } else {
      for (const id of nodes) {
        const view = this.views.get(id);
        if (view) this.jsp.repaint(view.el, timestamp, true);
      }
    }
    this.pending = null;
    this.wiring.tagPending();
    if (all) return; // renderAll culls everything next
    for (const id of nodes) {
      const view = this.views.get(id);
      if (view) this.viewer.cullNode(view);
    }
    for (const key of links) this.viewer.cullLink(this.connections.get(key));
    if (this.sketched) this.dragger.sketchAfterEdit(moved, links);
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
    this.dragger.cancelNodeDrag();
    this.dragger.endSketch();
    this.jsp.reset();
    this.viewport.replaceChildren(this.dragLayer, this.sketch.el, this.liveLinkLayer);
    this.dragLayer.replaceChildren();
    this.liveLinkLayer.replaceChildren();
    for (const layer of [this.nodeLayer, this.linkLayer, this.handleLayer]) layer.reset();
    // Measured now, while the canvas is empty (cheap), for fitting the flow in view once it is drawn.
    this.size = { width: this.root.clientWidth || 800, height: this.root.clientHeight || 600 };
    // Drawn out of the document, and put back once, whole: thousands of elements are then added to a
    // tree the browser does not render (each addition to the page has its cost).
    const { nextSibling } = this.viewport;
    this.viewport.remove();
    try {
      this.#drawModel();
    } finally {
      this.root.insertBefore(this.viewport, nextSibling);
    }
    this.updateCounts();
    this.emit("selection", this.selectionInfo());
    this.lastRenderMs = performance.now() - started;
  }

  /** The node elements, jsPlumb's endpoints and links for the model, culled for the view (see renderAll). */
  #drawModel() {
    this.views.clear();
    this.connections.clear();
    this.wiring.untagged = [];
    this.selection.clear();
    this.selectedLink = null;
    this.statuses.clear();
    const nodes = [...this.model.nodes.values()];
    for (const node of nodes) this.nodeLayer.add(this.#createNodeElement(node));
    if (this.fitOnRender) { // before anything is culled or painted for the view before (see loadFitted)
      this.fitOnRender = false;
      this.viewer.fitView();
    }
    // Only linked ports get their endpoints now (#addLinkView); a node's other ports get theirs when its
    // handles are first shown (Viewport.cullNode), which on a large flow is for the few nodes in view.
    this.#batched(() => {
      this.pending.all = true;
      for (const node of nodes) this.#manageNode(node);
      for (const link of this.model.links.values()) this.#addLinkView(link, false); // labelPorts marks linked ports
    });
    this.viewer.cull(true);
  }

  /**
   * Run `load`, which loads the model (and so draws it: renderAll), with the flow fitted in view as soon as
   * its nodes are known: culling and port handles then start from the view it is shown at. (Fitted after
   * drawing, a large flow would first be culled, and its handles near the origin painted, for the view
   * before.)
   */
  loadFitted(load) {
    this.fitOnRender = true;
    try {
      load();
    } finally {
      if (this.fitOnRender) { // nothing was drawn
        this.fitOnRender = false;
        this.fitView();
      }
    }
  }

  #createNodeElement(node) {
    const { el, ports, height, width, labels } = nodeElement(this.model, this.catalog, node);
    const view = {
      id: node.id, el, ports, labels, height, width, endpoints: [], endpointOf: new Map(), portsShown: false,
      x: node.x, y: node.y, shown: true, handles: undefined,
    };
    this.views.set(node.id, view);
    this.viewOf.set(el, view);
    return el;
  }

  /** Register a node element with jsPlumb, with its geometry (known here: jsPlumb measures nothing). */
  #manageNode(node) {
    const view = this.views.get(node.id);
    this.jsp.manage(view.el, `n-${node.id}`);
    this.jsp.viewport.updateElement(this.jsp.getId(view.el), node.x, node.y, view.width, view.height, 0, true);
  }

  /** Register a node element with jsPlumb and give every port its label and endpoint. */
  #wireNode(node) {
    this.#manageNode(node);
    this.showPorts(this.views.get(node.id));
  }

  /** Give a node its port labels and handles, before they are shown (see Wiring.show). */
  showPorts(view) { this.wiring.show(view); }

  #addNodeView(node) {
    this.#batched(() => {
      this.nodeLayer.add(this.#createNodeElement(node));
      this.#wireNode(node);
      this.pending.nodes.add(node.id);
    });
    this.#updateEmptyHint();
  }

  #removeNodeView(id) {
    const view = this.views.get(id);
    if (!view) return;
    if (this.drag?.items.some((item) => item.id === id)) this.dragger.cancelNodeDrag();
    this.#batched(() => {
      this.jsp.removeAllEndpoints(view.el);
      this.jsp.unmanage(view.el, true);
    });
    view.el.remove();
    this.views.delete(id);
    this.statuses.delete(id);
    if (this.selection.delete(id)) this.selector.changed();
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
    if (fields.includes("extra")) showMapped(view.el, node);
    if (fields.includes("values")) {
      showPortValues(view.el, node);
    }
    if (fields.some((f) => f !== "x" && f !== "y")) this.emit("selection", this.selectionInfo());
  }

  placeNodeViews(ids) {
    this.#batched(() => {
      for (const id of ids) {
        const view = this.views.get(id);
        const node = this.model.node(id);
        if (!view) continue;
        this.drawNodeAt(view, node.x, node.y);
        this.pending.nodes.add(id);
        this.pending.moved.add(id);
        for (const link of this.model.linksOf(id)) this.pending.links.add(link.key);
      }
    });
  }

  /** Put a node's element at (x, y) and tell jsPlumb, which repaints its links unless drawing is suspended. */
  drawNodeAt(view, x, y) {
    view.x = x;
    view.y = y;
    view.el.style.left = `${x}px`;
    view.el.style.top = `${y}px`;
    this.jsp.setElementPosition(view.el, x, y);
  }

  #addLinkView(link, markPort = true) {
    const source = splitEndpoint(link.source);
    const target = splitEndpoint(link.target);
    this.#batched(() => {
      const sourceView = this.views.get(source.node);
      const targetView = this.views.get(target.node);
      if (sourceView) this.wiring.endpointFor(sourceView, source.port, "output");
      if (targetView) this.wiring.endpointFor(targetView, target.port, "input");
      const connection = this.jsp.connect({
        uuids: [endpointUuid(source.node, source.port, "output"), endpointUuid(target.node, target.port, "input")],
      });
      if (!connection) return;
      connection.setPaintStyle?.({ stroke: this.linkColor(link.key), strokeWidth: 2.2 });
      this.connections.set(link.key, connection);
      this.linkOf.set(connection, link.key);
      this.pending.nodes.add(source.node);
      this.pending.nodes.add(target.node);
      this.pending.links.add(link.key);
    });
    if (markPort) this.views.get(target.node)?.el.querySelector(`.port-in[data-port="${CSS.escape(target.port)}"]`)?.classList.add("linked");
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
      this.selector.changed();
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
    this.viewer.applyTransform();
    for (const [id, entry] of statuses) this.setStatus(id, entry.status, entry.duration);
    this.select(selection.filter((id) => this.model.nodes.has(id)));
  }

  updateCounts() {
    status.setCounts(this.model.nodes.size, this.model.links.size, this.selection.size);
    this.#updateEmptyHint();
  }

  #updateEmptyHint() {
    this.empty.hidden = this.model.nodes.size > 0 || !this.model.id;
  }

  // ------------------------------------------------------------------------------------- linking
  #onLinkDrop({ connection, dropEndpoint }) {
    this.lastLinkDrop = performance.now(); // a drop on a port, refused or not, is no drop on empty canvas
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

  linkColor(key) {
    const link = this.model.links.get(key);
    if (!link) return typeColor("Any");
    const source = splitEndpoint(link.source);
    return typeColor(this.views.get(source.node)?.ports.outputs.find((p) => p.name === source.port)?.type);
  }

  // ------------------------------------------------------------------------------------ selection
  // (selection.js)
  selectionInfo() { return this.selector.info(); }
  select(ids, options) { this.selector.select(ids, options); }
  toggle(id) { this.selector.toggle(id); }
  selectLink(key) { this.selector.selectLink(key); }
  clearSelection() { this.selector.clear(); }
  selectAll() { this.selector.selectAll(); }
  deleteSelection() { this.selector.deleteSelection(); }
  copySelection() { return this.selector.copySelection(); }
  /** Paste copied nodes (from this or another flow) beside the originals and select the copies. */
  paste() { this.selector.paste(); }
  duplicateSelection() { this.selector.duplicateSelection(); }
  /** Move the selected nodes by (dx, dy): arrow keys. */
  nudge(dx, dy) { this.selector.nudge(dx, dy); }

  // --------------------------------------------------------------------------- adding from palette
  /** Create a node of nodespec `specId` at client point (x, y), or at the view's centre. */
  addSpecAt(specId, clientX, clientY) {
    const spec = this.catalog.spec(specId);
    if (!spec || !this.model.id) return null;
    const point = clientX === undefined ? this.viewer.viewCentre() : this.worldAt(clientX, clientY);
    const rows = Math.max(spec.port?.input?.length || 0, spec.port?.output?.length || 1);
    const spot = freeSpot(this, { x: point.x - NODE.width / 2, y: point.y - NODE.head / 2, w: NODE.width, h: nodeHeight(rows) });
    const node = {
      id: this.model.freshNodeId(), spec_id: spec.id, name: spec.title || spec.id, values: {},
      is_end: undefined, x: spot.x, y: spot.y, extra: {},
    };
    this.history.execute(addNodes([node], [], `Add ${node.name}`));
    this.select([node.id]);
    return node.id;
  }

  // ------------------------------------------------------------------------------ zoom and pan
  // (viewport.js)
  worldAt(clientX, clientY) { return this.viewer.worldAt(clientX, clientY); }
  zoomAt(clientX, clientY, scale) { this.viewer.zoomAt(clientX, clientY, scale); }
  zoomBy(factor) { this.viewer.zoomBy(factor); }
  /** Size of a node from its port count: known without reading the layout. */
  nodeBox(id) { return this.viewer.nodeBox(id); }
  /** Zoom and pan so every node (or the given ones) is in view. */
  fitView(ids) { this.viewer.fitView(ids); }

  // ------------------------------------------------------------------------------- run statuses
  setStatus(id, state, durationMs) {
    const view = this.views.get(id);
    this.statuses.set(id, { status: state, duration: durationMs });
    if (view) showStatus(view.el, state, durationMs);
  }

  /** A mapped node's items done so far (node_progress events). */
  setProgress(id, done, total, failed) {
    const view = this.views.get(id);
    if (view && this.statuses.get(id)?.status === "running") showProgress(view.el, done, total, failed);
  }

  /** A line on a node while it waits (installing its packages, say); null removes it. */
  setNote(id, text) {
    const view = this.views.get(id);
    if (view) showNote(view.el, text);
  }

  clearStatuses() {
    for (const id of this.statuses.keys()) {
      const view = this.views.get(id);
      if (!view) continue;
      showNote(view.el, null);
      delete view.el.dataset.status;
      view.el.querySelector(".node-badge").textContent = "";
    }
    this.statuses.clear();
  }

  /** Outline nodes the server found problems with: [[node id, message in plain words, JSON pointer]]. */
  markProblems(problems) {
    for (const view of this.views.values()) {
      view.el.classList.remove("has-problem");
      view.el.removeAttribute("data-problem");
      view.el.removeAttribute("data-problem-path");
    }
    for (const [id, message, path = ""] of problems) {
      const view = this.views.get(id);
      if (!view) continue;
      view.el.classList.add("has-problem");
      view.el.dataset.problem = message;
      view.el.dataset.problemPath = path;
      view.el.title = message;
    }
  }

  // ------------------------------------------------------------------------------ pointer input
  #listenToPointer() {
    this.root.addEventListener("wheel", (event) => this.viewer.onWheel(event), { passive: false });
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
    // A shift-press extends the page's text selection from its caret, and selected text dragged starts a
    // native drag that steals the pointer from a node drag: the canvas selects nodes, never text.
    // (Port handles are left to jsPlumb, which listens for the mouse events a prevented press would drop.)
    window.getSelection()?.removeAllRanges();
    this.root.focus({ preventScroll: true });
    const nodeEl = event.target.closest?.(".node");
    if (nodeEl || this.#isBackground(event.target)) event.preventDefault();
    if (nodeEl && event.button === 0) {
      const id = nodeEl.dataset.node;
      if (event.shiftKey || event.ctrlKey || event.metaKey) this.toggle(id);
      else if (!this.selection.has(id)) this.select([id]);
      else this.emit("selection", this.selectionInfo()); // re-show the node when clicked again
      if (this.model.nodes.has(id)) this.dragger.startNodeDrag(event, id);
      return;
    }
    if (!this.#isBackground(event.target)) return;
    if (event.shiftKey && event.button === 0) this.selector.startMarquee(event);
    else this.viewer.startPan(event);
  }

  #onContextMenu(event) {
    event.preventDefault();
    if (!this.model.id) return;
    const nodeEl = event.target.closest?.(".node");
    if (nodeEl) {
      this.selector.showNodeMenu(event, nodeEl.dataset.node);
      return;
    }
    if (!this.#isBackground(event.target)) return;
    const point = { x: event.clientX, y: event.clientY };
    showMenu(point.x, point.y, [
      { label: "Paste", shortcut: "Ctrl+V", action: () => this.paste() },
      { label: "Export flow to a file", action: () => this.emit("export", { file: true }) },
      { label: "Copy flow as JSON", action: () => this.emit("export", { file: false }) },
      { label: "Select all", shortcut: "Ctrl+A", action: () => this.selectAll() },
      "-",
      { label: "Fit to view", shortcut: "F", action: () => this.fitView() },
      { label: "Auto-layout", shortcut: "L", action: () => this.emit("auto-layout") },
    ]);
  }
}

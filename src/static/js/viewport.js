// The canvas's view onto the world: zoom, pan, world coordinates under the pointer, fitting nodes in
// view, and culling. The view ({x, y, k}) stays on the canvas (canvas.view), which reads and sets it;
// this module is what moves it and what follows from it moving.

import { status } from "./status.js";
import { NODE, nodeHeight } from "./theme.js";

const MIN_ZOOM = 0.1;
const MAX_ZOOM = 2.5;
// Only what is in (or near) the view is rendered: nodes out of it are hidden, links out of it and port
// handles of hidden nodes are not displayed at all, so a frame's style, layout and paint cost follows
// what can be seen rather than the size of the flow. Handles are also hidden at zooms too small to aim
// at them. Culling is computed from positions the canvas already knows (the model's, and jsPlumb's
// bounds of each link), never by reading the layout, and it runs in the same frame as whatever moved.
const CULL_MARGIN = 160; // screen pixels around the view that are rendered too
export const HANDLE_MIN_ZOOM = 0.4; // port handles (and the body of nodes) below this zoom: too small to aim at or read
const TEXT_MIN_ZOOM = 0.25; // node titles below this zoom (a few pixels high): a bar stands for them

export class Viewport {
  constructor(canvas) {
    this.canvas = canvas;
    this.rect = null; // the rendered part of the world, as of the last cull (see cullRect)
    this.cullPending = null;
  }

  // ------------------------------------------------------------------------------ zoom and pan
  worldAt(clientX, clientY) {
    const { root, view } = this.canvas;
    const rect = root.getBoundingClientRect();
    return { x: (clientX - rect.left - view.x) / view.k, y: (clientY - rect.top - view.y) / view.k };
  }

  viewCentre() {
    const rect = this.canvas.root.getBoundingClientRect();
    return this.worldAt(rect.left + rect.width / 2, rect.top + rect.height / 2);
  }

  applyTransform() {
    const c = this.canvas;
    const { x, y, k } = c.view;
    c.viewport.style.transform = `translate(${x}px, ${y}px) scale(${k})`;
    c.root.style.backgroundPosition = `${x}px ${y}px`;
    c.root.style.backgroundSize = `${24 * k}px ${24 * k}px`;
    c.jsp?.setZoom(k, false);
    // Levels of detail (app.css). Far out, where handles are hidden and a node's ports could not be read
    // anyway, nodes show their head only, flat: far fewer boxes for the browser to paint and composite on
    // every frame, and a drag draws the still links as a sketch (drag.js). Tiny, a bar stands for
    // each title.
    c.root.classList.toggle("far", k < HANDLE_MIN_ZOOM);
    c.root.classList.toggle("tiny", k < TEXT_MIN_ZOOM);
    if (k >= HANDLE_MIN_ZOOM) c.dragger.endSketch();
    if (c.views) this.cull();
    status.setZoom(k);
    c.emit("zoom", k);
  }

  zoomAt(clientX, clientY, scale) {
    const c = this.canvas;
    const k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, scale));
    const rect = c.root.getBoundingClientRect();
    const px = clientX - rect.left;
    const py = clientY - rect.top;
    c.view.x = px - ((px - c.view.x) * k) / c.view.k;
    c.view.y = py - ((py - c.view.y) * k) / c.view.k;
    c.view.k = k;
    this.applyTransform();
  }

  zoomBy(factor) {
    const rect = this.canvas.root.getBoundingClientRect();
    this.zoomAt(rect.left + rect.width / 2, rect.top + rect.height / 2, this.canvas.view.k * factor);
  }

  /** Zoom around the pointer on the mouse wheel. */
  onWheel(event) {
    event.preventDefault();
    const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
    this.zoomAt(event.clientX, event.clientY, this.canvas.view.k * factor);
  }

  /** Size of a node from its port count: known without reading the layout. */
  nodeBox(id) {
    const c = this.canvas;
    const node = c.model.node(id);
    const view = c.views.get(id);
    return { x: node.x, y: node.y, w: view?.width ?? NODE.width, h: view?.height ?? nodeHeight(1) };
  }

  /** Zoom and pan so every node (or the given ones) is in view. */
  fitView(ids = [...this.canvas.model.nodes.keys()]) {
    const c = this.canvas;
    if (!ids.length) {
      c.view = { x: 40, y: 40, k: 1 };
      this.applyTransform();
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
    // The canvas's size as last measured (renderAll, the resize observer): reading it from the layout here,
    // right after a large flow was drawn, would lay out every node before culling could hide most of them.
    const { width, height } = c.size;
    const margin = 48;
    const k = Math.min(1.2, Math.max(MIN_ZOOM, Math.min((width - 2 * margin) / (maxX - minX), (height - 2 * margin) / (maxY - minY))));
    c.view = { k, x: (width - (maxX - minX) * k) / 2 - minX * k, y: (height - (maxY - minY) * k) / 2 - minY * k };
    this.applyTransform();
  }

  /** Pan by dragging the background; a click that does not move clears the selection. */
  startPan(event) {
    const c = this.canvas;
    const start = { x: event.clientX, y: event.clientY, vx: c.view.x, vy: c.view.y };
    let moved = false;
    c.root.setPointerCapture(event.pointerId);
    c.root.classList.add("panning");
    const move = (e) => {
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
      c.view.x = start.vx + dx;
      c.view.y = start.vy + dy;
      this.applyTransform();
    };
    const up = () => {
      c.root.classList.remove("panning");
      c.root.removeEventListener("pointermove", move);
      c.root.removeEventListener("pointerup", up);
      c.root.removeEventListener("pointercancel", up);
      if (!moved) c.clearSelection();
    };
    c.root.addEventListener("pointermove", move);
    c.root.addEventListener("pointerup", up);
    c.root.addEventListener("pointercancel", up);
  }

  // ---------------------------------------------------------------------------------- culling
  /** The part of the world (viewport coordinates) that is rendered: the view and a margin. */
  cullRect() {
    const { view: { x, y, k }, size } = this.canvas;
    const margin = CULL_MARGIN / k;
    return {
      left: -x / k - margin, top: -y / k - margin,
      right: (size.width - x) / k + margin, bottom: (size.height - y) / k + margin,
    };
  }

  /** Take the rendered part of the world anew (before culling what moved). */
  updateRect() {
    this.rect = this.cullRect();
  }

  /** Cull everything: after the view moved (pan, zoom, resize) or the flow was drawn. `now` or next frame. */
  cull(now = false) {
    if (!now) {
      if (!this.cullPending) this.cullPending = requestAnimationFrame(() => this.cull(true));
      return;
    }
    if (this.cullPending) cancelAnimationFrame(this.cullPending);
    this.cullPending = null;
    this.rect = this.cullRect();
    for (const view of this.canvas.views.values()) this.cullNode(view);
    for (const connection of this.canvas.connections.values()) this.cullLink(connection);
  }

  /** Whether a node (where it is drawn now) is in the rendered part of the world. */
  inView(view) {
    const r = this.rect ||= this.cullRect();
    return view.x < r.right && view.x + view.width > r.left && view.y < r.bottom && view.y + view.height > r.top;
  }

  /** Whether a node's port handles are to be shown: in view, at a zoom where they can be aimed at. */
  wantsHandles(view) {
    return this.canvas.view.k >= HANDLE_MIN_ZOOM && this.inView(view);
  }

  /** Show or hide one node (where it is drawn now) and its port handles, painting those not painted yet. */
  cullNode(view) {
    const shown = this.inView(view);
    if (shown !== view.shown) {
      view.shown = shown;
      view.el.classList.toggle("culled", !shown);
    }
    const handles = shown && this.canvas.view.k >= HANDLE_MIN_ZOOM;
    if (handles === view.handles) return;
    if (handles) this.canvas.showPorts(view); // labels, and handles of ports with no link yet, before they show
    let complete = true;
    for (const endpoint of view.endpoints) {
      if (handles && !endpoint.endpoint?.canvas && !this.canvas.jsp._suspendDrawing) this.canvas.paintHandle(endpoint);
      const element = endpoint.endpoint?.canvas;
      if (element) element.classList.toggle("culled", !handles);
      else complete = false;
    }
    view.handles = complete ? handles : undefined; // handles not painted yet are culled once they are
  }

  /** Show or hide one link from the bounds jsPlumb painted it at. */
  cullLink(connection) {
    const connector = connection?.connector;
    const element = connector?.canvas;
    if (!element) return;
    const r = this.rect ||= this.cullRect();
    const shown = !(connector.w >= 0) // not painted yet: keep it displayed
      || (connector.x < r.right && connector.x + connector.w > r.left && connector.y < r.bottom && connector.y + connector.h > r.top);
    if (this.canvas.linkShown.get(connection) === shown) return;
    this.canvas.linkShown.set(connection, shown);
    element.classList.toggle("culled", !shown);
  }

  /** Cull the given nodes and every link touching them (after they moved). */
  cullAround(ids) {
    const c = this.canvas;
    for (const id of ids) {
      const view = c.views.get(id);
      if (view) this.cullNode(view);
      for (const link of c.model.linksOf(id)) this.cullLink(c.connections.get(link.key));
    }
  }
}

// Moving nodes on the canvas by dragging them, and the link sketch that stands for the still links while
// dragging far out. The drag in progress (canvas.drag) and the sketched links (canvas.sketched) stay on
// the canvas, which reads them when the model changes; a finished drag is recorded as a command.
//
// Nodes are dragged by the canvas rather than by jsPlumb's element drag: pointer moves are applied once
// per frame (the latest position wins), only the dragged nodes' links are re-routed (jsPlumb's
// setElementPosition repaints just those), and nothing reads the layout. While dragging, the nodes sit
// in a layer above everything and the pointer is captured by the canvas, so jsPlumb's delegated mouse
// handlers on the viewport are not run for every move.

import { moveNodes } from "./commands.js";
import { HANDLE_MIN_ZOOM } from "./viewport.js";

const DRAG_THRESHOLD = 3;
const SKETCH_LINGER_MS = 300; // after a drop far out, links get their own elements back once idle this long

export class Dragger {
  constructor(canvas) {
    this.canvas = canvas;
    this.liveLinks = []; // while the sketch is shown: [{el, parent}] of link elements moved to the live bucket
    this.sketchTimer = 0;
  }

  startNodeDrag(event, id) {
    const c = this.canvas;
    this.cancelNodeDrag();
    if (c.history.readOnly) return; // a past run's flow: nothing moves
    const ids = c.selection.has(id) ? [...c.selection] : [id];
    const items = ids.map((nodeId) => ({ id: nodeId, view: c.views.get(nodeId) })).filter((item) => item.view)
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
    for (const [type, listener] of Object.entries(drag.listeners)) c.root.addEventListener(type, listener);
    c.drag = drag;
  }

  cancelNodeDrag() {
    if (this.canvas.drag) this.#endNodeDrag(this.canvas.drag, false);
  }

  #activateNodeDrag(drag) {
    const c = this.canvas;
    drag.active = true;
    c.dragging = true;
    try {
      c.root.setPointerCapture(drag.pointerId);
    } catch { /* the pointer is already gone; pointerup ends the drag */ }
    for (const { view } of drag.items) {
      view.el.classList.add("dragging");
      c.dragLayer.append(view.el);
    }
    if (c.view.k < HANDLE_MIN_ZOOM) this.startSketch(drag.items.map((item) => item.id));
  }

  /** Move the dragged nodes to where the pointer is now, and their links with them (once per frame). */
  #applyNodeDrag(drag) {
    const c = this.canvas;
    drag.frame = 0;
    if (!drag.at) return;
    const dx = (drag.at.x - drag.start.x) / c.view.k;
    const dy = (drag.at.y - drag.start.y) / c.view.k;
    for (const { view, from } of drag.items) c.drawNodeAt(view, from.x + dx, from.y + dy);
    c.viewer.updateRect();
    c.viewer.cullAround(drag.items.map((item) => item.id));
  }

  /** Finish a drag: `commit` records the move as a command; otherwise the nodes go back. */
  #endNodeDrag(drag, commit) {
    const c = this.canvas;
    if (c.drag === drag) c.drag = null;
    for (const [type, listener] of Object.entries(drag.listeners)) c.root.removeEventListener(type, listener);
    if (drag.frame) cancelAnimationFrame(drag.frame);
    if (!drag.active) return;
    if (c.root.hasPointerCapture?.(drag.pointerId)) c.root.releasePointerCapture(drag.pointerId);
    if (commit) this.#applyNodeDrag(drag);
    if (c.sketched) this.#lingerSketch();
    setTimeout(() => { c.dragging = false; }, 0);
    const moves = [];
    for (const { id, view, from } of drag.items) {
      view.el.classList.remove("dragging");
      if (view.el.parentNode === c.dragLayer) c.nodeLayer.add(view.el);
      const to = { x: Math.round(view.x), y: Math.round(view.y) };
      if (commit && c.model.nodes.has(id) && (to.x !== from.x || to.y !== from.y)) moves.push({ id, from, to });
    }
    if (moves.length) {
      c.history.execute(moveNodes(moves)); // the model's nodes:move event draws them at the rounded positions
    } else {
      c.placeNodeViews(drag.items.map((item) => item.id).filter((id) => c.model.nodes.has(id)));
    }
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
  // draws it again (sketchAfterEdit). Whatever is on screen is always either the sketch or a live link.
  startSketch(ids) {
    const c = this.canvas;
    const moving = new Set();
    for (const id of ids) {
      for (const link of c.model.linksOf(id)) moving.add(link.key);
    }
    if (c.selectedLink) moving.add(c.selectedLink); // drawn highlighted by its own element
    this.#cancelSketchEnd();
    if (c.sketched && ![...moving].some((key) => c.sketched.has(key))) return; // still right: reuse it
    this.endSketch();
    const still = [];
    for (const [key, connection] of c.connections) {
      if (!moving.has(key)) still.push({ key, color: c.linkColor(key), connector: connection.connector });
    }
    c.sketched = c.sketch.draw(still);
    this.liveLinks = [];
    for (const key of c.connections.keys()) {
      if (!c.sketched.has(key)) this.#makeLive(key);
    }
    c.root.classList.add("sketching");
  }

  /** Move a link's element to the live bucket (drawn while the sketch is shown); put back at the end. */
  #makeLive(key) {
    const c = this.canvas;
    const el = c.connections.get(key)?.connector?.canvas;
    if (!el?.parentNode || el.parentNode === c.liveLinkLayer) return;
    this.liveLinks.push({ el, parent: el.parentNode });
    c.liveLinkLayer.append(el);
  }

  endSketch() {
    const c = this.canvas;
    this.#cancelSketchEnd();
    if (!c.sketched) return;
    for (const { el, parent } of this.liveLinks) {
      if (el.parentNode === c.liveLinkLayer) parent.append(el); // unless jsPlumb removed it meanwhile
    }
    this.liveLinks = [];
    c.sketched = null;
    c.sketch.clear();
    c.root.classList.remove("sketching");
  }

  /** End the sketch once the editor is idle: no drag, no pan, nothing else to do for a moment. */
  #lingerSketch() {
    const c = this.canvas;
    this.#cancelSketchEnd();
    const token = this.sketchTimer = setTimeout(() => {
      const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 0));
      idle(() => {
        if (this.sketchTimer !== token) return; // cancelled or rescheduled meanwhile
        if (c.drag?.active || c.root.classList.contains("panning")) this.#lingerSketch();
        else this.endSketch();
      }, { timeout: 1000 });
    }, SKETCH_LINGER_MS);
  }

  #cancelSketchEnd() {
    clearTimeout(this.sketchTimer);
    this.sketchTimer = 0;
  }

  /** After a batch of edits while the sketch is shown: the links it added, removed or repainted, and the
   * nodes it moved. */
  sketchAfterEdit(moved, links) {
    const c = this.canvas;
    const touched = new Set(links);
    for (const id of moved) {
      for (const link of c.model.linksOf(id)) touched.add(link.key);
    }
    if ([...touched].some((key) => c.sketched.has(key))) {
      // A sketched link moved, went or changed: draw the sketch again (while dragging) or end it.
      if (c.drag?.active && c.view.k < HANDLE_MIN_ZOOM) {
        const ids = c.drag.items.map((item) => item.id);
        this.endSketch();
        this.startSketch(ids);
      } else {
        this.endSketch();
      }
      return;
    }
    for (const key of touched) this.#makeLive(key); // new links: drawn by their own element
  }
}

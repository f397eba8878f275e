// The minimap: when the flow is larger than the view, a small overview in the canvas's corner with every
// node as a box and the view as a frame; a press or drag on it moves the view there. Drawn on a 2D canvas
// from the model's positions (no layout reads), at most once per frame.

import { h } from "./dom.js";

const WIDTH = 200;
const HEIGHT = 130;
const MARGIN = 40;

export class Minimap {
  constructor({ model, canvas }) {
    Object.assign(this, { model, canvas });
    this.el = h("canvas.minimap", { width: WIDTH, height: HEIGHT, title: "Overview: click or drag to move the view", hidden: true });
    canvas.root.append(this.el);
    this.frame = 0;
    const schedule = () => { this.frame ||= requestAnimationFrame(() => this.draw()); };
    for (const event of ["load", "change", "nodes:move"]) model.on(event, schedule);
    canvas.on("zoom", schedule);
    this.el.addEventListener("pointerdown", (event) => this.#press(event));
  }

  /** The world box of every node, with a margin. */
  #world() {
    let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const id of this.model.nodes.keys()) {
      const b = this.canvas.nodeBox(id);
      minX = Math.min(minX, b.x);
      minY = Math.min(minY, b.y);
      maxX = Math.max(maxX, b.x + b.w);
      maxY = Math.max(maxY, b.y + b.h);
    }
    return { x: minX - MARGIN, y: minY - MARGIN, w: maxX - minX + 2 * MARGIN, h: maxY - minY + 2 * MARGIN };
  }

  draw() {
    this.frame = 0;
    const c = this.canvas;
    if (!this.el.isConnected) c.root.append(this.el);
    const { x, y, k } = c.view;
    const view = { x: -x / k, y: -y / k, w: c.size.width / k, h: c.size.height / k };
    if (!this.model.nodes.size) {
      this.el.hidden = true;
      return;
    }
    const world = this.#world();
    const nodes = { x: world.x + MARGIN, y: world.y + MARGIN, w: world.w - 2 * MARGIN, h: world.h - 2 * MARGIN };
    const larger = nodes.x < view.x || nodes.y < view.y || nodes.x + nodes.w > view.x + view.w || nodes.y + nodes.h > view.y + view.h;
    this.el.hidden = !larger;
    if (!larger) return;
    const left = Math.min(world.x, view.x);
    const top = Math.min(world.y, view.y);
    const span = { w: Math.max(world.x + world.w, view.x + view.w) - left, h: Math.max(world.y + world.h, view.y + view.h) - top };
    const scale = Math.min(WIDTH / span.w, HEIGHT / span.h);
    this.map = { left, top, scale };
    const g = this.el.getContext("2d");
    const dark = document.documentElement.dataset.theme === "dark";
    g.clearRect(0, 0, WIDTH, HEIGHT);
    g.fillStyle = dark ? "#64748b" : "#94a3b8";
    for (const id of this.model.nodes.keys()) {
      const b = c.nodeBox(id);
      g.fillRect((b.x - left) * scale, (b.y - top) * scale, Math.max(1.5, b.w * scale), Math.max(1.5, b.h * scale));
    }
    g.strokeStyle = dark ? "#60a5fa" : "#2563eb";
    g.lineWidth = 1.5;
    g.strokeRect((view.x - left) * scale, (view.y - top) * scale, view.w * scale, view.h * scale);
  }

  /** Centre the view on the pressed point, and follow the pointer while it is held. */
  #press(event) {
    event.preventDefault();
    event.stopPropagation();
    const rect = this.el.getBoundingClientRect();
    const move = (e) => {
      if (!this.map) return;
      const { left, top, scale } = this.map;
      const wx = left + (e.clientX - rect.left) / scale;
      const wy = top + (e.clientY - rect.top) / scale;
      const c = this.canvas;
      c.view.x = c.size.width / 2 - wx * c.view.k;
      c.view.y = c.size.height / 2 - wy * c.view.k;
      c.viewer.applyTransform();
    };
    move(event);
    this.el.setPointerCapture(event.pointerId);
    const up = () => {
      this.el.removeEventListener("pointermove", move);
      this.el.removeEventListener("pointerup", up);
    };
    this.el.addEventListener("pointermove", move);
    this.el.addEventListener("pointerup", up);
  }
}

// The link sketch: while nodes are dragged with the view zoomed far out, the links that do not move are
// drawn as one SVG path per colour instead of one SVG element each (canvas.js hides theirs meanwhile).
//
// Far out, most of a large flow is on screen at once: some 1,500 link elements, each a box of its own
// that the browser sorts into layers again on every frame, although only the few links of the dragged
// nodes change. In the sketch the unchanging ones cost a handful of elements that are painted once. The
// curves are jsPlumb's own (the segments it computed when it last painted each link), so a link looks
// the same in the sketch as out of it. Nothing here reads the layout.

const SVG_NS = "http://www.w3.org/2000/svg";
const STROKE_WIDTH = 2.2; // canvas.js: links' paint style
// Links are grouped into paths by colour and by the cell of this size (viewport pixels) their start lies
// in: when the browser repaints a tile (under a dragged node, say), it then draws only the few paths
// crossing that tile, not every link in the flow.
const CELL = 1200;

const round = (v) => Math.round(v * 10) / 10;

/**
 * The path data of a painted jsPlumb Bezier connector, in viewport coordinates, and the point it starts
 * at; null when it has none.
 */
function pathOf(connector) {
  const segments = connector?.segments;
  if (!segments?.length || !(connector.w >= 0)) return null; // not painted yet
  const ox = connector.x;
  const oy = connector.y;
  let d = "";
  for (const [i, s] of segments.entries()) {
    if (s.type !== "Bezier") return null; // only Bezier connectors are used (canvas.js)
    if (i === 0) d += `M${round(ox + s.x2)} ${round(oy + s.y2)}`;
    d += `C${round(ox + s.cp2x)} ${round(oy + s.cp2y)} ${round(ox + s.cp1x)} ${round(oy + s.cp1y)} ${round(ox + s.x1)} ${round(oy + s.y1)}`;
  }
  return { d, x: ox + segments[0].x2, y: oy + segments[0].y2 };
}

export class LinkSketch {
  constructor() {
    this.el = document.createElementNS(SVG_NS, "svg");
    this.el.setAttribute("class", "link-sketch");
    this.el.setAttribute("aria-hidden", "true");
    this.el.style.display = "none";
    this.paths = []; // the <path> elements drawn
    this.order = new WeakMap(); // <path> → keys of the links it draws, in the order of its subpaths
    this.active = false;
  }

  /**
   * Draw `links` ([{key, color, connector}]); answers the keys of those drawn. A link whose connector has
   * not been painted is not drawn: the caller keeps its own element on screen.
   */
  draw(links) {
    const groups = new Map(); // colour and cell → {color, ds, keys}
    const drawn = new Set();
    for (const { key, color, connector } of links) {
      const path = pathOf(connector);
      if (path === null) continue;
      const group = `${color} ${Math.floor(path.x / CELL)} ${Math.floor(path.y / CELL)}`;
      if (!groups.has(group)) groups.set(group, { color, ds: [], keys: [] });
      groups.get(group).ds.push(path.d);
      groups.get(group).keys.push(key);
      drawn.add(key);
    }
    this.order = new WeakMap();
    this.paths = [...groups.values()].map(({ color, ds, keys }) => {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", ds.join(""));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", color);
      path.setAttribute("stroke-width", String(STROKE_WIDTH));
      this.order.set(path, keys);
      return path;
    });
    this.el.replaceChildren(...this.paths);
    this.el.style.display = "";
    this.active = true;
    return drawn;
  }

  /** The links drawn, as [key, path element, index of its subpath]: for checks of what is on screen. */
  entries() {
    return this.paths.flatMap((path) => this.order.get(path).map((key, index) => [key, path, index]));
  }

  clear() {
    this.el.replaceChildren();
    this.el.style.display = "none";
    this.paths = [];
    this.order = new WeakMap();
    this.active = false;
  }
}

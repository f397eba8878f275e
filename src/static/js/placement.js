// Where a new node (or a pasted group of nodes) goes: at the point asked for when that is clear of the
// nodes already on the canvas, else at the nearest clear place on a widening spiral around it.
// Computed from positions and sizes the canvas knows, never from the layout.

const GAP = 16;
const STEP = 40;
const TRIES = 200;

function overlaps(a, b) {
  return a.x < b.x + b.w + GAP && a.x + a.w + GAP > b.x && a.y < b.y + b.h + GAP && a.y + a.h + GAP > b.y;
}

/** The top-left corner nearest `box` ({x, y, w, h}, world coordinates) where it overlaps no node. */
export function freeSpot(canvas, box) {
  const boxes = [...canvas.model.nodes.keys()].map((id) => canvas.nodeBox(id))
    .filter((b) => b.x < box.x + box.w + STEP * 20 && b.x + b.w > box.x - STEP * 20);
  for (let i = 0; i < TRIES; i += 1) {
    const ring = Math.ceil(Math.sqrt(i));
    const angle = (i * 2.399963) % (2 * Math.PI); // golden angle: spread evenly
    const at = i === 0 ? box : { ...box, x: box.x + Math.cos(angle) * ring * STEP, y: box.y + Math.sin(angle) * ring * STEP };
    if (!boxes.some((b) => overlaps(at, b))) return { x: Math.round(at.x), y: Math.round(at.y) };
  }
  return { x: Math.round(box.x), y: Math.round(box.y) };
}

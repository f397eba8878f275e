// Align and distribute the selected nodes: the moves, as one command each (no DOM; sizes from nodeBox).

import { moveNodes } from "./commands.js";

const ACTIONS = {
  "align-left": { label: "Align left edges", axis: "x", align: (boxes) => Math.min(...boxes.map((b) => b.x)) },
  "align-top": { label: "Align top edges", axis: "y", align: (boxes) => Math.min(...boxes.map((b) => b.y)) },
  "distribute-x": { label: "Distribute horizontally", axis: "x", spread: true },
  "distribute-y": { label: "Distribute vertically", axis: "y", spread: true },
};

export const ARRANGE_ACTIONS = Object.entries(ACTIONS).map(([name, { label }]) => ({ name, label }));

/** The command arranging nodes `ids` by `name`, or null when nothing would move. */
export function arrange(name, ids, nodeBox) {
  const action = ACTIONS[name];
  if (!action || ids.length < 2) return null;
  const boxes = ids.map((id) => ({ id, ...nodeBox(id) }));
  const axis = action.axis;
  const size = axis === "x" ? "w" : "h";
  const target = new Map();
  if (action.spread) {
    // Equal gaps between neighbours, the outermost two staying where they are.
    const sorted = [...boxes].sort((a, b) => a[axis] - b[axis]);
    const span = sorted.at(-1)[axis] + sorted.at(-1)[size] - sorted[0][axis];
    const gap = (span - sorted.reduce((sum, b) => sum + b[size], 0)) / (sorted.length - 1);
    let at = sorted[0][axis];
    for (const box of sorted) {
      target.set(box.id, Math.round(at));
      at += box[size] + gap;
    }
  } else {
    const edge = action.align(boxes);
    for (const box of boxes) target.set(box.id, Math.round(edge));
  }
  const moves = boxes.filter((b) => target.get(b.id) !== b[axis]).map((b) => ({
    id: b.id, from: { x: b.x, y: b.y }, to: { x: axis === "x" ? target.get(b.id) : b.x, y: axis === "y" ? target.get(b.id) : b.y },
  }));
  return moves.length ? moveNodes(moves, action.label) : null;
}

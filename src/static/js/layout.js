// Auto-layout with dagre: left-to-right layers following the links. Answers a move command.

import dagre from "@dagrejs/dagre";
import { moveNodes } from "./commands.js";
import { splitEndpoint } from "./model.js";

/** A command moving every node (or the given ones) to dagre's layout, keeping the layout's top-left. */
export function autoLayout(model, canvas, ids = [...model.nodes.keys()]) {
  if (!ids.length) return null;
  const wanted = new Set(ids);
  const graph = new dagre.graphlib.Graph({ multigraph: false });
  graph.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 90, edgesep: 12, marginx: 0, marginy: 0 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const id of wanted) {
    const box = canvas.nodeBox(id);
    graph.setNode(id, { width: box.w, height: box.h });
  }
  for (const link of model.links.values()) {
    const source = splitEndpoint(link.source).node;
    const target = splitEndpoint(link.target).node;
    if (wanted.has(source) && wanted.has(target)) graph.setEdge(source, target);
  }
  dagre.layout(graph);
  const origin = topLeft(ids.map((id) => canvas.nodeBox(id)));
  const moves = ids.map((id) => {
    const node = model.node(id);
    const placed = graph.node(id);
    const to = { x: Math.round(origin.x + placed.x - placed.width / 2), y: Math.round(origin.y + placed.y - placed.height / 2) };
    return { id, from: { x: node.x, y: node.y }, to };
  });
  return moveNodes(moves, "Auto-layout");
}

function topLeft(boxes) {
  return { x: Math.min(...boxes.map((b) => b.x)), y: Math.min(...boxes.map((b) => b.y)) };
}

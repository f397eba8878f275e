// A node's ports on the canvas: their labels and their jsPlumb endpoints (the handles links are dragged
// from and dropped on), made when first needed. Endpoints cost the most of drawing a large flow, and
// most nodes of one are never seen close enough to show ports: so a port gets its endpoint when a link
// is drawn to it, and a node its labels and the rest of its endpoints when it is first shown close
// enough (Viewport.cullNode, through Canvas.showPorts) or added by an edit.

import { splitEndpoint } from "./model.js";
import { labelPorts } from "./nodeview.js";
import { NODE, typeColor } from "./theme.js";

export const endpointUuid = (node, port, side) => `${node}:${port}:${side}`;

export function parseUuid(uuid) {
  const last = uuid.lastIndexOf(":");
  const { node, port } = splitEndpoint(uuid.slice(0, last));
  return { node, port, side: uuid.slice(last + 1) };
}

export class Wiring {
  constructor(canvas) {
    this.canvas = canvas;
    this.untagged = []; // endpoints made while drawing was suspended: labelled at the batch's end
  }

  /** Give a node its port labels, and each of its ports that has none its endpoint. */
  show(view) {
    if (view.portsShown) return;
    view.portsShown = true;
    labelPorts(view.el, this.canvas.model, this.canvas.model.node(view.id), view.labels);
    for (const port of view.ports.inputs) this.endpointFor(view, port.name, "input");
    for (const port of view.ports.outputs) this.endpointFor(view, port.name, "output");
  }

  /**
   * The endpoint of a node's port (at a computed offset on the node), made on first use; null for a port
   * the node does not have. Made while drawing is suspended (a batch), it is labelled at the batch's end;
   * otherwise jsPlumb paints it now (if its node shows handles) and it is labelled at once.
   */
  endpointFor(view, portName, side) {
    const key = `${side}:${portName}`;
    const known = view.endpointOf.get(key);
    if (known) return known;
    const ports = side === "input" ? view.ports.inputs : view.ports.outputs;
    const index = ports.findIndex((p) => p.name === portName);
    if (index < 0) return null;
    const { type } = ports[index];
    const y = NODE.head + index * NODE.row + NODE.row / 2;
    const jsp = this.canvas.jsp;
    const endpoint = jsp.addEndpoint(view.el, {
      uuid: endpointUuid(view.id, portName, side),
      anchor: side === "input" ? [0, 0, -1, 0, 0, y] : [1, 0, 1, 0, 0, y],
      source: true,
      target: true,
      maxConnections: -1,
      endpoint: { type: "Dot", options: { radius: 6 } },
      paintStyle: { fill: typeColor(type), stroke: "#ffffff", strokeWidth: 2 },
      hoverPaintStyle: { fill: typeColor(type), stroke: "#1e293b", strokeWidth: 2 },
      connectorStyle: { stroke: typeColor(type), strokeWidth: 2.2 },
      cssClass: `endpoint endpoint-${side === "input" ? "in" : "out"}`,
    });
    view.endpoints.push(endpoint);
    view.endpointOf.set(key, endpoint);
    if (jsp._suspendDrawing) this.untagged.push(endpoint);
    else this.tag(endpoint);
    return endpoint;
  }

  // Endpoint elements exist once painted; label them so people (and tests) can find a port's handle.
  // (Those not painted yet are labelled when they are: see Canvas.paintHandle.)
  tagPending() {
    for (const endpoint of this.untagged) this.tag(endpoint);
    this.untagged = [];
  }

  tag(endpoint) {
    const element = endpoint.endpoint?.canvas;
    if (!element) return;
    const { node, port, side } = parseUuid(endpoint.getUuid());
    element.dataset.node = node;
    element.dataset.port = port;
    element.dataset.side = side;
    element.setAttribute("aria-label", `${side} ${port} of ${this.canvas.model.node(node)?.name || node}`);
  }
}

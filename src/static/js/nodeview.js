// The element that draws one node on the canvas: its head, nodespec, run status badge and port labels.
// Built from the model and the catalog alone; the canvas places it and wires its ports to jsPlumb.

import { formatDuration, h } from "./dom.js";
import { splitEndpoint } from "./model.js";
import { NODE, nodeHeight, typeColor } from "./theme.js";

const STATUS_LABELS = {
  queued: "queued", running: "running", success: "success", fail: "failed", skipped: "skipped",
  cached: "cached", cancelled: "cancelled", untaken: "not taken", "not-run": "not run: missing input",
};

/** Ports of a node: from its nodespec, or (for an unknown nodespec) from its values and links. */
function portsOf(model, catalog, node) {
  const spec = catalog.spec(node.spec_id);
  if (spec) return { inputs: catalog.inputs(node.spec_id), outputs: catalog.outputs(node.spec_id), known: true };
  const inputs = new Set(Object.keys(node.values));
  const outputs = new Set();
  for (const link of model.linksOf(node.id)) {
    const source = splitEndpoint(link.source);
    const target = splitEndpoint(link.target);
    if (source.node === node.id) outputs.add(source.port);
    if (target.node === node.id) inputs.add(target.port);
  }
  const asPorts = (names) => [...names].map((name) => ({ name, type: "Any" }));
  return { inputs: asPorts(inputs), outputs: asPorts(outputs.size ? outputs : ["out"]), known: false };
}

// Port labels are measured by their length (an estimate of the widest characters at 12px), never by
// reading the layout: a node is as wide as its longest input label and longest output label side by side.
const CHAR_PX = 7.2;
const LABEL_PAD_PX = 34; // handle inset, the gap between name and type, and the required mark
const VALUE_CHARS = 10; // a literal value beside its port shows this much, then an ellipsis
const MAX_WIDTH = 440;

function labelChars(port) {
  return port.name.length + (port.type || "Any").length * 0.8;
}

/** A node's width from its port names and types (at least NODE.width); a literal value beside its port
 * shows as much of itself as fits (all of it in its tooltip), so setting one never moves the ports. */
export function nodeWidth(ports) {
  const widest = (list) => Math.max(0, ...list.map(labelChars));
  const needed = 2 * (LABEL_PAD_PX + CHAR_PX * Math.max(widest(ports.inputs), widest(ports.outputs)));
  return Math.round(Math.min(MAX_WIDTH, Math.max(NODE.width, needed)));
}

/** Text of a literal value beside its port: short, with an ellipsis. */
function valueText(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > VALUE_CHARS ? `${text.slice(0, VALUE_CHARS - 1)}…` : text;
}

/** Show each input's literal value beside it (after an edit of the node's values). */
export function showPortValues(el, node) {
  for (const label of el.querySelectorAll(".port-in")) {
    const has = label.dataset.port in node.values;
    label.classList.toggle("has-value", has);
    label.querySelector(".port-value")?.remove();
    if (has) label.append(h("span.port-value", { title: String(node.values[label.dataset.port]) }, valueText(node.values[label.dataset.port])));
  }
}

/** A node's element, with its ports, height and width (known from the ports, not read from the layout).
 * Nodes of one nodespec share everything but their name, place, values and links: the first is built
 * from its parts and kept as a shape, the others are copies of it (a large flow opens much faster). The
 * port labels are left out: `labels` puts them in (see labelPorts), once the node is seen close enough
 * to read them; most nodes of a large flow are not. */
export function nodeElement(model, catalog, node) {
  const spec = catalog.spec(node.spec_id);
  let shape = spec && shapes.get(spec);
  if (!shape) {
    shape = nodeShape(model, catalog, node, spec);
    if (spec) shapes.set(spec, shape);
  }
  const el = shape.el.cloneNode(true);
  el.dataset.node = node.id;
  el.style.left = `${node.x}px`;
  el.style.top = `${node.y}px`;
  const title = el.querySelector(".node-title");
  title.textContent = node.name;
  title.title = node.name;
  el.classList.toggle("is-end", model.isEnd(node.id));
  return { el, ports: shape.ports, height: shape.height, width: shape.width, labels: shape.labels };
}

/** Put a node's port labels into its element (`labels`: nodeElement's), as the model has the node now:
 * linked, mapped and literal inputs marked. Later changes to those are shown by the functions below. */
export function labelPorts(el, model, node, labels) {
  const inputs = labels.inputs.map((label) => label.cloneNode(true));
  el.querySelector(".ports-in").append(...inputs);
  el.querySelector(".ports-out").append(...labels.outputs.map((label) => label.cloneNode(true)));
  for (const label of inputs) {
    if (model.linkInto(node.id, label.dataset.port)) label.classList.add("linked");
  }
  if (node.extra?.map?.length) showMapped(el, node);
  if (Object.keys(node.values).length) showPortValues(el, node);
}

const shapes = new WeakMap(); // nodespec (as the catalog holds it) → {el, ports, labels, height, width} of its nodes

/** What every node of a nodespec looks like (its name, place, values and links left out). */
function nodeShape(model, catalog, node, spec) {
  const ports = portsOf(model, catalog, node);
  const rows = Math.max(ports.inputs.length, ports.outputs.length);
  const subflow = node.spec_id.startsWith("flow:");
  const height = nodeHeight(rows);
  const width = nodeWidth(ports);
  const el = h("div.node", { style: { height: `${height}px`, width: `${width}px` } },
    h("div.node-head", {}, h("span.node-title")),
    h("div.node-spec", {},
      subflow ? h("span.subflow-badge", { title: "A subflow: double-click to open it" }, "⧉") : null,
      h("span.node-spec-name", { title: node.spec_id }, spec ? spec.title || spec.id : `missing: ${node.spec_id}`),
      h("span.node-badge")),
    h("div.node-ports", {}, h("div.ports-in"), h("div.ports-out")));
  el.classList.toggle("missing-spec", !ports.known);
  el.classList.toggle("subflow", subflow);
  const labels = {
    inputs: ports.inputs.map((port) => portLabel(port, "input")),
    outputs: ports.outputs.map((port) => portLabel(port, "output")),
  };
  return { el, ports, labels, height, width };
}

function portLabel(port, side) {
  const required = port.required && side === "input";
  return h(`div.port.port-${side === "input" ? "in" : "out"}`, {
    dataset: { port: port.name, type: port.type },
    title: `${port.name}: ${port.type}${required ? " (required)" : ""}`,
    class: required ? "required" : undefined,
  },
  h("span.port-name", port.name),
  h("span.port-type", { style: { color: typeColor(port.type) } }, port.type));
}

/** Mark the mapped inputs of `node` ("[ ]"), after its map changed. */
export function showMapped(el, node) {
  const mapped = node.extra?.map || [];
  for (const label of el.querySelectorAll(".port-in")) {
    const on = mapped.includes(label.dataset.port);
    label.classList.toggle("mapped", on);
    const marker = label.querySelector(".map-marker");
    if (on && !marker) label.querySelector(".port-name").after(mapMarker());
    if (!on && marker) marker.remove();
  }
}

const mapMarker = () => h("span.map-marker", { title: "Mapped: the node runs once per item" }, "[ ]");

/** Show how many items of a mapped node are done, while it runs: "37/100". */
export function showProgress(el, done, total, failed) {
  el.dataset.items = `${done}/${total}`;
  el.querySelector(".node-badge").textContent = `${done}/${total}${failed ? ` · ${failed} failed` : ""}`;
}

/** Show a node's run status (and, once it is over, how long it took) on its element. */
export function showStatus(el, state, durationMs) {
  el.dataset.status = state;
  const badge = el.querySelector(".node-badge");
  const duration = durationMs !== undefined && durationMs !== null && !["queued", "running", "untaken"].includes(state)
    ? ` · ${formatDuration(durationMs)}` : "";
  badge.textContent = `${STATUS_LABELS[state] || state}${duration}`;
}

/** A note under the node's head (text), or none (null). */
export function showNote(el, text) {
  let note = el.querySelector(".node-note");
  el.classList.toggle("has-note", Boolean(text)); // the note hangs below the node: no paint containment then
  if (!text) {
    note?.remove();
    return;
  }
  if (!note) {
    note = h("div.node-note", { role: "status" });
    el.querySelector(".node-head").after(note);
  }
  note.textContent = text;
}

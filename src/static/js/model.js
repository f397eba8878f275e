// The flow document being edited and the events its changes raise. No DOM here: the canvas, the
// inspector and the history listen to these events; edits arrive as commands (commands.js).

import { Emitter } from "./events.js";
import { truthy } from "./vocabulary.js";

/** "77px", " 12.5 " or 77 → 77; anything else → 0. */
export function coordinate(value) {
  const number = typeof value === "number" ? value : parseFloat(String(value ?? "").replace("px", ""));
  return Number.isFinite(number) ? number : 0;
}

/** "node1:out" → {node: "node1", port: "out"}; node ids never contain ':'. */
export function splitEndpoint(endpoint) {
  const at = endpoint.indexOf(":");
  return { node: endpoint.slice(0, at), port: endpoint.slice(at + 1) };
}

export const endpointKey = (node, port) => `${node}:${port}`;
export const linkKey = (link) => `${link.source}->${link.target}`;

function nodeFromDocument(doc) {
  const { id, spec_id: specId, name, ports, is_end: isEnd, ui, ...extra } = doc;
  const values = {};
  for (const port of ports || []) if ("value" in port) values[port.name] = port.value;
  return { id, spec_id: specId, name: name ?? id, values, is_end: isEnd, x: coordinate(ui?.x), y: coordinate(ui?.y), extra };
}

function nodeToDocument(node) {
  const doc = { id: node.id, spec_id: node.spec_id, name: node.name, ...node.extra };
  doc.ports = Object.entries(node.values).map(([name, value]) => ({ name, value }));
  if (node.is_end !== undefined) doc.is_end = node.is_end;
  doc.ui = { x: Math.round(node.x), y: Math.round(node.y) };
  return doc;
}

export function cloneNode(node) {
  return { ...node, values: { ...node.values }, extra: structuredClone(node.extra) };
}

export class FlowModel extends Emitter {
  constructor() {
    super();
    this.reset();
  }

  reset() {
    this.id = null;
    this.name = "";
    this.extra = {};
    this.nodes = new Map();
    this.links = new Map();
    this.linksByNode = new Map();
    this.inbound = new Map();
  }

  // ------------------------------------------------------------------------------ whole document
  load(doc) {
    this.reset();
    const { id, name, nodes, links, ...extra } = doc;
    this.id = id;
    this.name = name ?? id;
    this.extra = extra;
    for (const nodeDoc of nodes || []) this.#storeNode(nodeFromDocument(nodeDoc));
    for (const link of links || []) this.#storeLink({ source: link.source, target: link.target });
    this.emit("load");
    this.emit("change");
  }

  toDocument() {
    return {
      id: this.id,
      name: this.name,
      ...this.extra,
      nodes: [...this.nodes.values()].map(nodeToDocument),
      links: [...this.links.values()].map((link) => ({ source: link.source, target: link.target })),
    };
  }

  // ------------------------------------------------------------------------------------- queries
  node(id) {
    return this.nodes.get(id);
  }

  isEnd(id) {
    return truthy(this.nodes.get(id)?.is_end);
  }

  linksOf(nodeId) {
    return [...(this.linksByNode.get(nodeId) || [])].map((key) => this.links.get(key));
  }

  /** The link feeding input `port` of `nodeId`, if any. */
  linkInto(nodeId, port) {
    const key = this.inbound.get(endpointKey(nodeId, port));
    return key ? this.links.get(key) : undefined;
  }

  /** A path of node ids from `from` to `to` following links downstream, or null. */
  pathBetween(from, to) {
    const previous = new Map([[from, null]]);
    const queue = [from];
    while (queue.length) {
      const current = queue.shift();
      if (current === to) {
        const path = [];
        for (let step = to; step !== null; step = previous.get(step)) path.unshift(step);
        return path;
      }
      for (const link of this.linksOf(current)) {
        const next = splitEndpoint(link.target).node;
        if (splitEndpoint(link.source).node === current && !previous.has(next)) {
          previous.set(next, current);
          queue.push(next);
        }
      }
    }
    return null;
  }

  freshNodeId() {
    let id;
    do id = `node${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    while (this.nodes.has(id));
    return id;
  }

  /** Run several edits as one: listeners may defer expensive work (repaints) until the end. */
  batch(fn) {
    this.emit("batch:start");
    try {
      fn();
    } finally {
      this.emit("batch:end");
    }
  }

  // ------------------------------------------------------------ primitive edits (used by commands)
  insertNode(node) {
    this.#storeNode(node);
    this.emit("node:add", node);
    this.emit("change");
  }

  deleteNode(id) {
    const node = this.nodes.get(id);
    for (const link of this.linksOf(id)) this.deleteLink(linkKey(link));
    this.nodes.delete(id);
    this.linksByNode.delete(id);
    this.emit("node:remove", node);
    this.emit("change");
  }

  /** Set fields of a node: name, is_end, or values (a whole new {port: value} object). */
  updateNode(id, patch) {
    const node = this.nodes.get(id);
    Object.assign(node, patch);
    this.emit("node:update", node, Object.keys(patch));
    this.emit("change");
  }

  /** Move nodes: [{id, x, y}]. One event for the whole group so the canvas repaints once. */
  placeNodes(moves) {
    for (const { id, x, y } of moves) Object.assign(this.nodes.get(id), { x, y });
    this.emit("nodes:move", moves.map((move) => move.id));
    this.emit("change");
  }

  insertLink(link) {
    const stored = this.#storeLink(link);
    this.emit("link:add", stored);
    this.emit("change");
  }

  deleteLink(key) {
    const link = this.links.get(key);
    if (!link) return;
    this.links.delete(key);
    this.inbound.delete(link.target);
    for (const end of [link.source, link.target]) this.linksByNode.get(splitEndpoint(end).node)?.delete(key);
    this.emit("link:remove", link);
    this.emit("change");
  }

  rename(name) {
    this.name = name;
    this.emit("flow:update", ["name"]);
    this.emit("change");
  }

  // ------------------------------------------------------------------------------------ indices
  #storeNode(node) {
    this.nodes.set(node.id, node);
    if (!this.linksByNode.has(node.id)) this.linksByNode.set(node.id, new Set());
  }

  #storeLink({ source, target }) {
    const link = { source, target, key: `${source}->${target}` };
    this.links.set(link.key, link);
    this.inbound.set(target, link.key);
    for (const end of [source, target]) {
      const node = splitEndpoint(end).node;
      if (!this.linksByNode.has(node)) this.linksByNode.set(node, new Set());
      this.linksByNode.get(node).add(link.key);
    }
    return link;
  }
}

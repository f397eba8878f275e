// What the editor knows about nodespecs and port types, and the rules for linking ports.

import { api } from "./api.js";
import { Emitter } from "./events.js";
import { splitEndpoint } from "./model.js";
import { subflowGroup } from "./subflows.js";
import { setVocabulary, typeNames } from "./vocabulary.js";

function byOrder(ports) {
  return ports
    .map((port, index) => ({ port, index, order: Number.parseInt(port.order ?? index, 10) }))
    .sort((a, b) => (a.order - b.order) || (a.index - b.index))
    .map(({ port }) => port);
}

export class Catalog extends Emitter {
  constructor() {
    super();
    this.specs = new Map();
    this.tree = [];
    this.accepts = new Map();
    this.typeInfo = new Map();
  }

  async loadTypes() {
    const [types, schema] = await Promise.all([api.portTypes(), api.schema("nodespec")]);
    setVocabulary(types, schema);
    this.accepts = new Map(types.map((t) => [t.name, new Set(t.accepts)]));
    this.typeInfo = new Map(types.map((t) => [t.name, t]));
  }

  async loadSpecs() {
    const [tree, subflows] = await Promise.all([api.specTree(), api.subflows().catch(() => [])]);
    this.tree = [...tree, ...subflowGroup(subflows)]; // flows usable as nodes, in a group of their own
    this.specs = new Map();
    const visit = (items) => {
      for (const item of items) {
        if (item.value) this.specs.set(item.value.id, item.value);
        visit(item.children || []);
      }
    };
    visit(this.tree);
    this.emit("change");
  }

  get typeNames() {
    return typeNames();
  }

  spec(id) {
    return this.specs.get(id);
  }

  /** Input ports in call order, each with its type (Any when the spec leaves it out). */
  inputs(specId) {
    const spec = this.specs.get(specId);
    return byOrder(spec?.port?.input || []).map((port) => ({ ...port, type: port.type || "Any" }));
  }

  outputs(specId) {
    const spec = this.specs.get(specId);
    const ports = spec?.port?.output?.length ? spec.port.output : [{ name: "out" }];
    return ports.map((port) => ({ ...port, type: port.type || "Any" }));
  }

  portType(specId, side, name) {
    const ports = side === "input" ? this.inputs(specId) : this.outputs(specId);
    return ports.find((port) => port.name === name)?.type;
  }

  compatible(sourceType, targetType) {
    return this.accepts.get(targetType)?.has(sourceType) ?? targetType === "Any";
  }
}

const label = (model, nodeId) => `“${model.node(nodeId)?.name || nodeId}”`;

/** " (what the type holds)" from the server's description of port types, or nothing. */
function describe(catalog, type) {
  const text = catalog.typeInfo?.get(type)?.description;
  return text ? ` (${text})` : "";
}

/**
 * Check a link drawn between two ports: {node, port, side} each. Answers {link} when it may be made
 * (turned round when drawn from an input to an output) or {reason} saying why not.
 */
export function checkLink(model, catalog, first, second) {
  if (first.side === second.side) {
    const side = first.side === "input" ? "inputs" : "outputs";
    return { reason: `Both ends are ${side}: a link goes from an output (right side) to an input (left side).` };
  }
  const [from, to] = first.side === "output" ? [first, second] : [second, first];
  const toName = label(model, to.node);
  if (from.node === to.node) return { reason: `A node cannot feed itself: that would close a cycle at ${toName}.` };
  const existing = model.linkInto(to.node, to.port);
  if (existing) {
    const source = splitEndpoint(existing.source);
    return {
      reason: `Input “${to.port}” of ${toName} already has a link (from ${label(model, source.node)}); ` +
        "an input takes one link. Delete that link first.",
    };
  }
  const cycle = model.pathBetween(to.node, from.node);
  if (cycle) {
    const names = [...cycle, to.node].map((id) => model.node(id)?.name || id).join(" → ");
    return { reason: `This link would close a cycle: ${names}.` };
  }
  const fromType = catalog.portType(model.node(from.node).spec_id, "output", from.port) || "Any";
  const toType = catalog.portType(model.node(to.node).spec_id, "input", to.port) || "Any";
  if (!catalog.compatible(fromType, toType)) {
    const accepted = [...(catalog.accepts.get(toType) || [])].join(", ");
    return {
      reason: `Incompatible types: output “${from.port}” is ${fromType}, but input “${to.port}” of ${toName} ` +
        `is ${toType}${describe(catalog, toType)}, which accepts ${accepted}.`,
    };
  }
  return { link: { source: `${from.node}:${from.port}`, target: `${to.node}:${to.port}` } };
}

// Every edit of a flow is a command: {label, apply(model), revert(model)}. The history runs them, so
// each one can be undone and redone. Commands capture what they need when they are created.

import { cloneNode, linkKey, splitEndpoint } from "./model.js";

/** Add nodes (and links among them or to existing nodes), e.g. a drop from the palette or a paste. */
export function addNodes(nodes, links = [], label = nodes.length === 1 ? "Add node" : `Add ${nodes.length} nodes`) {
  const frozen = nodes.map(cloneNode);
  return {
    label,
    apply(model) {
      for (const node of frozen) model.insertNode(cloneNode(node));
      for (const link of links) model.insertLink(link);
    },
    revert(model) {
      for (const link of links) model.deleteLink(linkKey(link));
      for (const node of frozen) model.deleteNode(node.id);
    },
  };
}

/** Delete nodes and links; the links touching deleted nodes go too and come back on undo. */
export function removeItems(model, nodeIds, linkKeys = []) {
  const nodes = nodeIds.map((id) => cloneNode(model.node(id)));
  const links = new Map();
  for (const key of linkKeys) if (model.links.has(key)) links.set(key, model.links.get(key));
  for (const id of nodeIds) for (const link of model.linksOf(id)) links.set(link.key, link);
  const linkList = [...links.values()].map(({ source, target }) => ({ source, target }));
  const what = [nodes.length && `${nodes.length} node${nodes.length > 1 ? "s" : ""}`,
    !nodes.length && linkList.length && `${linkList.length} link${linkList.length > 1 ? "s" : ""}`].filter(Boolean);
  return {
    label: `Delete ${what.join(", ")}`,
    apply(m) {
      for (const link of linkList) m.deleteLink(linkKey(link));
      for (const node of nodes) m.deleteNode(node.id);
    },
    revert(m) {
      for (const node of nodes) m.insertNode(cloneNode(node));
      for (const link of linkList) m.insertLink(link);
    },
  };
}

/** Move nodes: moves = [{id, from: {x, y}, to: {x, y}}]. */
export function moveNodes(moves, label = moves.length === 1 ? "Move node" : `Move ${moves.length} nodes`) {
  return {
    label,
    apply: (model) => model.placeNodes(moves.map(({ id, to }) => ({ id, ...to }))),
    revert: (model) => model.placeNodes(moves.map(({ id, from }) => ({ id, ...from }))),
  };
}

function updateNode(model, id, patch, label) {
  const node = model.node(id);
  const before = Object.fromEntries(Object.keys(patch).map((key) => [key, structuredClone(node[key])]));
  return {
    label,
    apply: (m) => m.updateNode(id, structuredClone(patch)),
    revert: (m) => m.updateNode(id, structuredClone(before)),
  };
}

export function renameNode(model, id, name) {
  return updateNode(model, id, { name }, `Rename node to “${name}”`);
}

export function setEndNode(model, id, isEnd) {
  return updateNode(model, id, { is_end: isEnd }, isEnd ? "Mark end node" : "Unmark end node");
}

/** Set the literal value of an input port; `undefined` removes it so the default applies. */
export function setPortValue(model, id, port, value) {
  const values = { ...model.node(id).values };
  if (value === undefined) delete values[port];
  else values[port] = value;
  return updateNode(model, id, { values }, `Set ${port}`);
}

export function connect(link) {
  return {
    label: "Link ports",
    apply: (model) => model.insertLink(link),
    revert: (model) => model.deleteLink(linkKey(link)),
  };
}

export function renameFlow(model, name) {
  const before = model.name;
  return {
    label: `Rename flow to “${name}”`,
    apply: (m) => m.rename(name),
    revert: (m) => m.rename(before),
  };
}

/**
 * Copies of nodes with fresh ids, shifted by (dx, dy), and the links among them re-pointed at the copies.
 * Used by paste and duplicate.
 */
export function copiesOf(model, nodes, links, dx, dy) {
  const ids = new Map();
  const copies = nodes.map((node) => {
    const id = model.freshNodeId();
    ids.set(node.id, id);
    return { ...cloneNode(node), id, x: node.x + dx, y: node.y + dy };
  });
  const rewired = [];
  for (const link of links) {
    const source = splitEndpoint(link.source);
    const target = splitEndpoint(link.target);
    if (ids.has(source.node) && ids.has(target.node)) {
      rewired.push({ source: `${ids.get(source.node)}:${source.port}`, target: `${ids.get(target.node)}:${target.port}` });
    }
  }
  return { nodes: copies, links: rewired };
}

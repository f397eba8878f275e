// A collapsible JSON tree built from <details> elements: keyboard-accessible without extra code.

import { h } from "./dom.js";

const OPEN_DEPTH = 2;
const MAX_CHILDREN = 200;

/** Render `value` as a tree; objects and arrays deeper than OPEN_DEPTH start collapsed. */
export function jsonTree(value, { label } = {}) {
  return h("div.json-tree", {}, renderValue(value, label, 0));
}

function renderValue(value, key, depth) {
  if (value !== null && typeof value === "object") return renderContainer(value, key, depth);
  return h("div.json-leaf", {}, keyLabel(key), scalar(value));
}

function keyLabel(key) {
  return key === undefined ? null : h("span.json-key", `${key}: `);
}

function scalar(value) {
  if (value === null) return h("span.json-null", "null");
  switch (typeof value) {
    case "string": return h("span.json-string", JSON.stringify(value));
    case "number": return h("span.json-number", String(value));
    case "boolean": return h("span.json-boolean", String(value));
    default: return h("span.json-other", String(value));
  }
}

function renderContainer(value, key, depth) {
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  const summary = isArray ? `[${entries.length} item${entries.length === 1 ? "" : "s"}]` : `{${entries.length} key${entries.length === 1 ? "" : "s"}}`;
  if (!entries.length) return h("div.json-leaf", {}, keyLabel(key), h("span.json-empty", isArray ? "[]" : "{}"));
  const details = h("details.json-node", { open: depth < OPEN_DEPTH },
    h("summary", {}, keyLabel(key), h("span.json-summary", summary)));
  const body = h("div.json-children");
  for (const [childKey, childValue] of entries.slice(0, MAX_CHILDREN)) body.append(renderValue(childValue, childKey, depth + 1));
  if (entries.length > MAX_CHILDREN) body.append(h("div.json-more", `… ${entries.length - MAX_CHILDREN} more`));
  details.append(body);
  return details;
}

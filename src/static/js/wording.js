// The server's validation details in plain words. A detail is {path: JSON pointer, message}; people see
// where it points said with the names they gave (node “Add numbers”, input “a”, the link from “Add” out
// to “Double” x), never the pointer (/nodes/5/ports/0), which stays as data (data-path) for tools.
// Messages that already name what they concern are shown as the server wrote them.

import { splitEndpoint } from "./model.js";

// A field of a node, link, flow or nodespec, in words.
const FIELDS = {
  ui: "position", x: "position", y: "position", spec_id: "nodespec", name: "name", id: "id", ports: "inputs",
  value: "value", is_end: "end mark", extra: "settings", map: "mapped inputs", source: "start", target: "end",
  func: "code", title: "title", description: "description", requirements: "packages", type: "type",
  required: "required mark", default: "default", order: "order", port: "ports", cache: "caching",
  links: "links", nodes: "nodes", group: "group", groups: "groups",
};
// jsonschema's words for a value the schema refuses, reworded.
const TYPE_WORDS = { number: "a number", integer: "a whole number", string: "text", object: "an object",
  array: "a list", boolean: "true or false", null: "empty" };

const quoted = (text) => `“${String(text).length > 40 ? `${String(text).slice(0, 39)}…` : text}”`;
const nodeName = (node, index) => node?.name || node?.id || `number ${index + 1}`;

function unescape(segment) {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

/** "from “Add” out to “Double” x", from a link's endpoints and the flow's node names. */
function linkWords(link, flow) {
  const end = (text) => {
    const { node: id, port } = splitEndpoint(String(text || ""));
    const node = (flow?.nodes || []).find((n) => n.id === id);
    return `${quoted(node?.name || id)} ${port || ""}`.trim();
  };
  return link ? `the link from ${end(link.source)} to ${end(link.target)}` : "a link";
}

/**
 * Where `path` points in `doc` (a flow, a run request {flow}, a nodespec or a repository bundle), in
 * words: [{words, name}] from the outside in; `name` is the name a message may already use.
 */
function placeParts(path, doc) {
  const segments = String(path || "").split("/").slice(1).map(unescape);
  const parts = [];
  let at = doc;
  let flow = doc?.nodes ? doc : null;
  for (let i = 0; i < segments.length; i += 1) {
    const seg = segments[i];
    const next = segments[i + 1];
    const index = Number(next);
    if (seg === "flow" && (next === "nodes" || next === "links" || at?.flow?.nodes)) { // a run request's flow
      if (at?.flow) at = at.flow;
      flow = at;
    } else if ((seg === "flow" || seg === "nodespec") && next !== undefined) { // a bundle's flow or nodespec
      at = at?.[seg]?.[next];
      if (seg === "flow") flow = at;
      parts.push({ words: `${seg === "flow" ? "flow" : "nodespec"} ${quoted(next)}`, name: next });
      i += 1;
    } else if (seg === "nodes" && Number.isInteger(index)) {
      at = at?.nodes?.[index];
      parts.push({ words: `node ${quoted(nodeName(at, index))}`, name: nodeName(at, index) });
      i += 1;
    } else if (seg === "links" && Number.isInteger(index)) {
      at = at?.links?.[index];
      parts.push({ words: linkWords(at, flow) });
      i += 1;
    } else if (seg === "ports" && Number.isInteger(index)) {
      at = at?.ports?.[index];
      parts.push({ words: `input ${quoted(at?.name ?? index + 1)}`, name: at?.name });
      i += 1;
    } else if (seg === "port" && (next === "input" || next === "output") && Number.isInteger(Number(segments[i + 2]))) {
      at = at?.port?.[next]?.[Number(segments[i + 2])];
      parts.push({ words: `${next} port ${quoted(at?.name ?? Number(segments[i + 2]) + 1)}`, name: at?.name });
      i += 2;
    } else {
      at = at?.[seg];
      const words = Number.isInteger(Number(seg)) ? `item ${Number(seg) + 1}` : FIELDS[seg] || seg.replace(/_/g, " ");
      if (parts.at(-1)?.words !== words) parts.push({ words });
    }
  }
  return parts;
}

/** Where a detail points, in words ("node “Add”, input “a”"), or "" for the document as a whole. */
export function placeOf(path, doc) {
  return placeParts(path, doc).map((part) => part.words).join(", ");
}

/** A schema's refusal in plainer words: "'s' is not of type 'number'" → "'s' is not a number". */
function reword(message) {
  return String(message || "")
    .replace(/^None\b/, "An empty value")
    .replace(/ is not of type '(\w+)'/g, (_, type) => ` is not ${TYPE_WORDS[type] || type}`)
    .replace(/ is not valid under any of the given schemas/g, " is not an accepted value")
    .replace(/ is a required property/g, " is missing");
}

/** One detail as a line for people: the place in words, then the message (unless it names the place). */
export function plainDetail(detail, doc) {
  const parts = placeParts(detail?.path, doc);
  const message = reword(detail?.message);
  const named = parts.filter((part) => part.name).map((part) => String(part.name));
  if (!parts.length || (named.length && named.every((name) => message.includes(name)))) return message;
  const place = parts.map((part) => part.words).join(", ");
  return `${place[0].toUpperCase()}${place.slice(1)}: ${message}`;
}

/** Elements for a list of details: one line each, its pointer kept as data-path; at most `limit`. */
export function detailLines(details, doc, { tag = "div", limit = 6 } = {}) {
  const seen = new Set();
  const lines = [];
  for (const detail of details || []) {
    const text = plainDetail(detail, doc);
    if (seen.has(text)) continue;
    seen.add(text);
    const line = document.createElement(tag);
    line.textContent = text;
    line.dataset.path = detail.path || "";
    lines.push(line);
  }
  return lines.slice(0, limit);
}

/** The nodes details point at: [[node id, plain message, pointer]], for outlining them on the canvas. */
export function problemsByNode(details, doc) {
  const flow = doc?.flow?.nodes ? doc.flow : doc;
  return (details || []).flatMap((detail) => {
    const path = String(detail.path || "").replace(/^\/flow(?=\/)/, "");
    const node = /^\/nodes\/(\d+)/.exec(path);
    const link = /^\/links\/(\d+)/.exec(path);
    let id = node && flow?.nodes?.[+node[1]]?.id;
    if (!id && link && flow?.links?.[+link[1]]) id = splitEndpoint(String(flow.links[+link[1]].target)).node;
    return id ? [[id, plainDetail(detail, doc), detail.path || ""]] : [];
  });
}

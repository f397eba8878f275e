// Rich values in the editor: an output that is an artifact ({"$artifact": metadata}) is shown on its node
// as a thumbnail (images) or a one-line summary ("DataFrame 1,000 x 5"), and in the inspector with its
// preview: a real table, the image, an array's shape, dtype, range and sample, the value's repr, and a
// link that downloads the raw artifact. Preview text comes from node code: it is only ever set as text
// (textContent through h()), never as HTML; images come from the server's own checked PNG routes.

import "../css/artifacts.css";
import { h } from "./dom.js";
import { jsonTree } from "./jsontree.js";

const KEY = "$artifact";

/** The artifact metadata of an output value, or null for a JSON value. */
export function artifactOf(value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  const meta = keys.length === 1 && keys[0] === KEY ? value[KEY] : null;
  return meta && typeof meta === "object" && typeof meta.digest === "string" ? meta : null;
}

export function outputUrl(runId, nodeId, port, query = "") {
  const path = [runId, "nodes", nodeId, "outputs", port].map(encodeURIComponent).join("/");
  return `/api/runs/${path}${query}`;
}

/** Remove every artifact strip from the canvas (a new run starts). */
export function clearNodeArtifacts(root) {
  for (const el of root.querySelectorAll(".node-artifact")) el.remove();
}

/**
 * Show a node's artifact outputs on its element: the first image's thumbnail (once the run is stored:
 * `live` false), else the summaries. Nothing when the node returned only JSON.
 */
export function showNodeArtifacts(canvas, runId, nodeId, outputs, { live = false } = {}) {
  const el = canvas.views?.get(nodeId)?.el;
  if (!el) return;
  el.querySelector(".node-artifact")?.remove();
  const found = Object.entries(outputs || {}).map(([port, value]) => [port, artifactOf(value)]).filter(([, meta]) => meta);
  if (!found.length) return;
  const image = live ? null : found.find(([, meta]) => meta.thumbnail);
  const strip = h("div.node-artifact", { title: found.map(([port, meta]) => `${port}: ${meta.summary}`).join("\n") });
  if (image) {
    strip.append(h("img.node-thumbnail", { src: outputUrl(runId, nodeId, image[0], "?thumbnail=1"), alt: image[1].summary || "image" }));
  }
  strip.append(h("span.node-artifact-summary", found.map(([, meta]) => meta.summary || meta.type).join(" · ")));
  el.append(strip);
}

/** An image output's thumbnail (from the stored run), for the Results tab. */
export function thumbnail(runId, nodeId, port, meta, className = "result-thumbnail") {
  return h(`img.${className}`, { src: outputUrl(runId, nodeId, port, "?thumbnail=1"), alt: meta.summary || "image" });
}

/** Values (a node's inputs) with each artifact shown by its summary, for a JSON tree. */
export function withSummaries(values) {
  return Object.fromEntries(Object.entries(values || {}).map(([name, value]) => {
    const meta = artifactOf(value);
    return [name, meta ? `<${meta.summary || meta.type}>` : value];
  }));
}

/** The inspector's view of a node's outputs: JSON values as a tree, artifacts with their previews. */
export function outputsView(runId, nodeId, outputs) {
  const entries = Object.entries(outputs || {});
  if (!entries.some(([, value]) => artifactOf(value))) return jsonTree(outputs);
  return h("div.outputs", {}, entries.map(([port, value]) => {
    const meta = artifactOf(value);
    return h("div.output", {}, h("div.output-port", port),
      meta ? artifactView(runId, nodeId, port, meta) : jsonTree(value));
  }));
}

function artifactView(runId, nodeId, port, meta) {
  const body = h("div.artifact-preview", {}, h("p.muted", "Loading the preview…"));
  const view = h("div.artifact", { dataset: { format: meta.format } },
    h("div.artifact-head", {},
      h("span.artifact-summary", meta.summary || meta.type),
      h("span.muted", ` ${meta.type} · ${meta.format} · ${formatBytes(meta.size)}`),
      runId ? h("a.artifact-download", { href: outputUrl(runId, nodeId, port, "?raw=1"), download: "" }, "Download") : null),
    body);
  if (!runId) {
    body.replaceChildren(h("p.muted", "No stored run to read the preview from."));
    return view;
  }
  fetch(outputUrl(runId, nodeId, port), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
    .then((answer) => body.replaceChildren(...previewParts(runId, nodeId, port, answer)))
    .catch((error) => body.replaceChildren(h("p.muted", `The preview could not be read: ${error.message}`)));
  return view;
}

function previewParts(runId, nodeId, port, answer) {
  const preview = answer.preview || {};
  const meta = answer.artifact || {};
  const parts = [];
  if (meta.available === false) parts.push(h("p.muted", "The artifact is no longer stored."));
  if (preview.table) parts.push(tableView(preview.table));
  if (preview.array) parts.push(arrayView(preview.array));
  if (preview.image && meta.available !== false) {
    parts.push(h("img.artifact-image", { src: outputUrl(runId, nodeId, port, "?raw=1"), alt: meta.summary || "image" }));
  }
  if (preview.repr && !preview.table && !preview.image) parts.push(h("pre.artifact-repr", preview.repr));
  if (meta.preview_error || preview.preview_error) parts.push(h("p.muted", meta.preview_error || preview.preview_error));
  return parts.length ? parts : [h("p.muted", "No preview.")];
}

function tableView(table) {
  const columns = table.columns || [];
  const head = h("tr", {}, columns.map((name, i) => h("th", { title: (table.dtypes || [])[i] || "" }, String(name))));
  const rows = (table.head || []).map((row) => h("tr", {}, row.map((cell) => h("td", cell === null ? "" : String(cell)))));
  return h("div.artifact-table-wrap", {},
    h("table.artifact-table", {}, h("thead", {}, head), h("tbody", {}, rows)),
    h("p.muted", `${Number(table.rows || 0).toLocaleString("en")} rows × ${columns.length} columns` +
      (table.rows > rows.length ? ` (first ${rows.length} shown)` : "")));
}

function arrayView(array) {
  const line = (label, value) => h("div.artifact-fact", {}, h("span.muted", `${label} `), String(value));
  return h("div.artifact-array", {},
    line("shape", `(${(array.shape || []).join(", ")})`), line("dtype", array.dtype),
    "min" in array ? line("min", array.min) : null, "max" in array ? line("max", array.max) : null,
    line("sample", `[${(array.sample || []).join(", ")}${array.size > (array.sample || []).length ? ", …" : ""}]`));
}

function formatBytes(size) {
  const units = ["bytes", "KB", "MB", "GB"];
  let value = Number(size) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} bytes`;
}

// Mapped nodes: marking an input as mapped (the node runs once per item of the list arriving there;
// `"map": [ports]` on the node document), and the inspector's list of a mapped node's items: each
// item's status, duration and error as the run stored them. Long maps show failed items first.

import { formatDuration, h } from "./dom.js";

/** The ports node `id` maps over. */
export const mappedPorts = (model, id) => model.node(id)?.extra?.map || [];

/** The command that maps node `id` over input `port`, or stops mapping it (one undoable edit). */
export function toggleMap(model, id, port) {
  const before = structuredClone(model.node(id).extra || {});
  const ports = mappedPorts(model, id);
  const map = ports.includes(port) ? ports.filter((p) => p !== port) : [...ports, port];
  const after = { ...structuredClone(before), map };
  if (!map.length) delete after.map;
  return {
    label: ports.includes(port) ? `Stop mapping ${port}` : `Map over ${port}`,
    apply: (m) => m.updateNode(id, { extra: structuredClone(after) }),
    revert: (m) => m.updateNode(id, { extra: structuredClone(before) }),
  };
}

/** Context menu entries of one node: map over (or stop mapping) each of its inputs. */
export function mapMenuItems(canvas, id) {
  const node = canvas.model.node(id);
  const mapped = mappedPorts(canvas.model, id);
  return canvas.catalog.inputs(node.spec_id).map((port) => ({
    label: mapped.includes(port.name) ? `Stop mapping “${port.name}”` : `Map over “${port.name}” [ ]`,
    action: () => canvas.emit("toggle-map", id, port.name),
  }));
}

const SHOWN = 100;

export function itemsSection(items) {
  const failed = items.filter((item) => item.status !== "success");
  const shown = [...failed, ...items.filter((item) => item.status === "success")].slice(0, SHOWN);
  const caption = `${items.length - failed.length} of ${items.length} items succeeded` +
    (failed.length ? `, ${failed.length} did not` : "");
  const rows = shown.map((item) => h("li.item-row", { dataset: { status: item.status, index: String(item.index) } },
    h("span.item-index", `[${item.index}]`),
    h(`span.status-pill.status-${item.status}`, item.cached && item.status === "success" ? "cached" : item.status),
    h("span.muted", formatDuration(item.duration_ms || 0)),
    item.error ? h("span.item-error", `${item.error.type || "Error"}: ${item.error.message || ""}`) : null));
  const more = items.length > shown.length ? h("li.muted", `… ${items.length - shown.length} more`) : null;
  return h("div.map-items", {}, h("h5", "Items"), h("p.muted", caption), h("ul.item-list", {}, rows, more));
}

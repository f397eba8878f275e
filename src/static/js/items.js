// A mapped node's items in the inspector: each item's status, duration and error, as the run stored
// them (the node result's `items`). Long maps show their failed items first, then the first of the rest.

import { formatDuration, h } from "./dom.js";

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

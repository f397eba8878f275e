// Nodes a run left out because an input they need has neither a link nor a value: the server plans only
// end nodes and their ancestors, and (with no end node marked) leaves out incomplete sinks instead of
// refusing the whole run. Once a run is over, such nodes are drawn "not run: missing input", and the
// reasons a refused run gave are cleared as soon as the flow is edited.

import { truthy } from "./vocabulary.js";

/** Names of the required inputs of node `id` with neither a link nor a value (as the server reads them). */
export function missingInputs(model, catalog, id) {
  const node = model.node(id);
  if (!node || !catalog.spec(node.spec_id)) return [];
  return catalog.inputs(node.spec_id).filter((port) => truthy(port.required ?? false)
    && !model.linkInto(id, port.name)
    && (node.values[port.name] === undefined || node.values[port.name] === null)
    && (port.default === undefined || port.default === null)).map((port) => port.name);
}

/** After a run: draw the nodes it did not run for want of an input of their own. */
export function markNotRun(model, canvas, ran) {
  for (const id of model.nodes.keys()) {
    if (ran.has(id)) continue;
    const missing = missingInputs(model, canvas.catalog, id);
    if (missing.length) canvas.setStatus(id, "not-run");
  }
}

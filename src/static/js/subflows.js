// Subflows in the editor: the palette's Flows group (every stored flow as a node, spec id flow:<id>),
// drilling into a subflow node (double-click) with a breadcrumb back and the viewed run's inner statuses,
// and "Make subflow": the selection becomes a new flow, with flow input and output nodes where links
// crossed its edge, and one node using it takes its place, as one undoable command.

import "../css/compose.css";
import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { cloneNode, linkKey, splitEndpoint } from "./model.js";
import { status } from "./status.js";

export const FLOW_PREFIX = "flow:";
export const BRANCH_NOT_TAKEN = "branch not taken";
const INPUT_SPEC = "pyflow.flow.input";
const OUTPUT_SPEC = "pyflow.flow.output";

export const isSubflow = (specId) => typeof specId === "string" && specId.startsWith(FLOW_PREFIX);

/** The palette group of the flows usable as nodes (what GET /api/subflows answers). */
export function subflowGroup(subflows) {
  if (!subflows?.length) return [];
  const children = subflows.map((spec) => ({ id: spec.flow, title: spec.title, path: spec.id, children: [], value: spec }));
  return [{ id: "Flows", title: "Flows", path: FLOW_PREFIX, children }];
}

/** The state a node result is painted with: a branch not taken is drawn dimmed ("untaken"). */
export function branchState(result, state) {
  return state === "skipped" && result?.reason === BRANCH_NOT_TAKEN ? "untaken" : state;
}

/** The status of a subflow node from the statuses of the nodes inside it: the worst of them. */
function summary(states) {
  for (const state of ["fail", "cancelled", "running", "queued"]) if (states.includes(state)) return state;
  if (states.length && states.every((s) => s === "untaken")) return "untaken";
  if (states.length && states.every((s) => s === "skipped" || s === "untaken")) return "skipped";
  return states.every((s) => s === "cached") ? "cached" : "success";
}

/** Paint each subflow node of the open flow with the summary of its inner nodes' results. */
export function paintSubflows(canvas, results) {
  const inner = new Map();
  for (const [id, result] of results) {
    const at = id.indexOf("/");
    if (at < 0) continue;
    const top = id.slice(0, at);
    if (!inner.has(top)) inner.set(top, []);
    inner.get(top).push(branchState(result, result.cached && result.status === "success" ? "cached" : result.status));
  }
  for (const [id, states] of inner) canvas.setStatus(id, summary(states));
}

// ------------------------------------------------------------------------------------ drill-down
export class Drilldown {
  constructor({ model, canvas, flows, runs }) {
    this.model = model;
    this.canvas = canvas;
    this.flows = flows;
    this.runs = runs;
    this.trail = []; // [{flowId, name, nodeId, prefix, run}] from the outermost flow down
    this.moving = false;
    this.bar = h("nav.breadcrumb", { "aria-label": "Subflow path", hidden: true });
    canvas.root.append(this.bar); // over the canvas, top left: the page grid stays as it is
    flows.on("opened", () => { if (!this.moving) this.#reset(); });
  }

  /** Open the flow of subflow node `nodeId`, showing the viewed run's statuses of its inner nodes. */
  async enter(nodeId) {
    const node = this.model.node(nodeId);
    if (!node || !isSubflow(node.spec_id)) return false;
    const parent = this.trail.at(-1);
    const run = parent ? parent.run : this.#viewedRun();
    if (!parent) this.trail.push({ flowId: this.model.id, name: this.model.name, prefix: "", run });
    const prefix = parent?.prefix ? `${parent.prefix}/${nodeId}` : nodeId;
    const entry = { flowId: node.spec_id.slice(FLOW_PREFIX.length), name: node.name || nodeId, nodeId, prefix, run };
    if (!(await this.#open(entry.flowId))) {
      if (!parent) this.trail = [];
      return false;
    }
    this.trail.push(entry);
    this.#paint(entry);
    this.#render();
    return true;
  }

  /** Go back to level `index` of the breadcrumb (0: the flow the drill-down started from). */
  async leave(index) {
    const entry = this.trail[index];
    if (!entry || index === this.trail.length - 1) return;
    if (!(await this.#open(entry.flowId))) return;
    this.trail = this.trail.slice(0, index + 1);
    if (index === 0) {
      const run = entry.run;
      this.trail = [];
      this.#render();
      if (run) await this.runs.show(await this.runs.fetch(run.id));
      return;
    }
    this.#paint(entry);
    this.#render();
  }

  #viewedRun() {
    const run = this.runs.run;
    return run ? { id: run.id, results: new Map(run.results) } : null;
  }

  async #open(flowId) {
    this.moving = true;
    try {
      return await this.flows.open(flowId);
    } finally {
      this.moving = false;
    }
  }

  /** Paint the inner nodes' statuses from the run the drill-down started on (its flat results). */
  #paint(entry) {
    if (!entry.run) return;
    const inner = new Map();
    const prefix = `${entry.prefix}/`;
    for (const [id, result] of entry.run.results) {
      if (!id.startsWith(prefix)) continue;
      const [first, ...rest] = id.slice(prefix.length).split("/");
      const state = branchState(result, result.cached && result.status === "success" ? "cached" : result.status);
      if (!inner.has(first)) inner.set(first, { states: [], result: rest.length ? null : result });
      inner.get(first).states.push(state);
    }
    for (const [id, { states, result }] of inner) {
      this.canvas.setStatus(id, result ? states[0] : summary(states), result?.duration_ms);
    }
  }

  #reset() {
    if (!this.trail.length) return;
    this.trail = [];
    this.#render();
  }

  #render() {
    clear(this.bar);
    this.bar.hidden = this.trail.length < 2;
    this.trail.forEach((entry, index) => {
      const last = index === this.trail.length - 1;
      if (index) this.bar.append(h("span.breadcrumb-sep", { "aria-hidden": "true" }, "›"));
      this.bar.append(last
        ? h("span.breadcrumb-here", { "aria-current": "page", title: entry.flowId }, entry.name)
        : h("button.breadcrumb-link", { type: "button", title: `Back to ${entry.flowId}`, onclick: () => this.leave(index) },
          entry.name));
    });
  }
}

// ---------------------------------------------------------------------------------- make subflow
function uniqueName(taken, wanted) {
  let name = wanted;
  for (let n = 2; taken.has(name); n += 1) name = `${wanted}_${n}`;
  taken.add(name);
  return name;
}

/**
 * The new flow made of the nodes `ids` of `model`, and how the links that crossed its edge go:
 * {doc, inputs: [{name, source}], outputs: [{name, targets}]}, where source/targets are the outer
 * endpoints. One flow input per inner input port fed from outside, one flow output per inner output
 * port read from outside.
 */
export function cutSubflow(model, catalog, ids, flowId, name) {
  const inside = new Set(ids);
  const nodes = ids.map((id) => cloneNode(model.node(id)));
  const links = [];
  const inputs = new Map(); // inner target endpoint -> {name, source, node}
  const outputs = new Map(); // inner source endpoint -> {name, targets, node}
  const names = { in: new Set(), out: new Set() };
  const xs = nodes.map((n) => n.x);
  const ys = nodes.map((n) => n.y);
  const left = Math.min(...xs) - 240;
  const right = Math.max(...xs) + 240;
  for (const link of model.links.values()) {
    const source = splitEndpoint(link.source);
    const target = splitEndpoint(link.target);
    const from = inside.has(source.node);
    const to = inside.has(target.node);
    if (from && to) links.push({ source: link.source, target: link.target });
    else if (to) {
      const port = uniqueName(names.in, target.port);
      const boundary = `in_${port}`;
      inputs.set(link.target, { name: port, source: link.source, node: boundary });
      const type = catalog.portType(model.node(target.node).spec_id, "input", target.port) || "Any";
      nodes.push(boundaryNode(boundary, INPUT_SPEC, port, type, left, Math.min(...ys) + 90 * (inputs.size - 1)));
      links.push({ source: `${boundary}:out`, target: link.target });
    } else if (from) {
      let out = outputs.get(link.source);
      if (!out) {
        const port = uniqueName(names.out, source.port);
        out = { name: port, targets: [], node: `out_${port}` };
        outputs.set(link.source, out);
        const type = catalog.portType(model.node(source.node).spec_id, "output", source.port) || "Any";
        nodes.push(boundaryNode(out.node, OUTPUT_SPEC, port, type, right, Math.min(...ys) + 90 * (outputs.size - 1)));
        links.push({ source: link.source, target: `${out.node}:value` });
      }
      out.targets.push(link.target);
    }
  }
  const doc = {
    id: flowId, name,
    nodes: nodes.map((n) => ({ id: n.id, spec_id: n.spec_id, name: n.name, ...n.extra, is_end: n.is_end,
      ports: Object.entries(n.values).map(([port, value]) => ({ name: port, value })), ui: { x: Math.round(n.x), y: Math.round(n.y) } })),
    links,
  };
  for (const node of doc.nodes) if (node.is_end === undefined) delete node.is_end;
  return { doc, inputs: [...inputs.values()], outputs: [...outputs.values()], at: { x: Math.min(...xs), y: Math.min(...ys) } };
}

function boundaryNode(id, specId, port, type, x, y) {
  return { id, spec_id: specId, name: port, values: { name: port, type }, x, y, extra: {} };
}

/** The one undoable command: remove the cut nodes (and their links), add the subflow node and rewire. */
export function replaceWithSubflow(model, ids, cut, nodeId, specId, label) {
  const removed = ids.map((id) => cloneNode(model.node(id)));
  const removedLinks = new Map();
  for (const id of ids) for (const link of model.linksOf(id)) removedLinks.set(link.key, { source: link.source, target: link.target });
  const node = { id: nodeId, spec_id: specId, name: label, values: {}, x: cut.at.x, y: cut.at.y, extra: {} };
  if (ids.some((id) => model.isEnd(id))) node.is_end = true; // the end stays an end
  const added = [
    ...cut.inputs.map((input) => ({ source: input.source, target: `${nodeId}:${input.name}` })),
    ...cut.outputs.flatMap((output) => output.targets.map((target) => ({ source: `${nodeId}:${output.name}`, target }))),
  ];
  return {
    label: `Make subflow of ${ids.length} node${ids.length === 1 ? "" : "s"}`,
    apply(m) {
      for (const link of removedLinks.values()) m.deleteLink(linkKey(link));
      for (const each of removed) m.deleteNode(each.id);
      m.insertNode(cloneNode(node));
      for (const link of added) m.insertLink(link);
    },
    revert(m) {
      for (const link of added) m.deleteLink(linkKey(link));
      m.deleteNode(nodeId);
      for (const each of removed) m.insertNode(cloneNode(each));
      for (const link of removedLinks.values()) m.insertLink(link);
    },
  };
}

/** Store the selection as a new flow, then replace it with one node using that flow (undoable). */
export async function makeSubflow({ model, catalog, history, canvas, flows }, ids) {
  if (!ids.length || !model.id) return null;
  if (ids.some((id) => [INPUT_SPEC, OUTPUT_SPEC].includes(model.node(id)?.spec_id))) {
    status.toast("Flow input and output nodes cannot go into a subflow.", "warning");
    return null;
  }
  const taken = new Set(flows.summaries.map((f) => f.id));
  let flowId = `${model.id}.sub`;
  for (let n = 2; taken.has(flowId); n += 1) flowId = `${model.id}.sub${n}`;
  const name = `${model.name} (part)`;
  const cut = cutSubflow(model, catalog, ids, flowId, name);
  try {
    await api.createFlow(cut.doc);
  } catch (error) {
    status.error(error, "Could not store the subflow", cut.doc);
    return null;
  }
  await catalog.loadSpecs();
  history.execute(replaceWithSubflow(model, ids, cut, model.freshNodeId(), `${FLOW_PREFIX}${flowId}`, name));
  canvas.refreshSpecs([`${FLOW_PREFIX}${flowId}`]);
  await flows.refreshList();
  status.say(`Made subflow ${flowId} of ${ids.length} node${ids.length === 1 ? "" : "s"}; double-click it to open it.`, "success");
  return flowId;
}

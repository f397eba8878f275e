// Opening a past run (#/run/ID): the run is shown on the flow it ran. When the stored flow still has the
// same nodes, values and links, that is the open flow, painted with the run's statuses and editable. When
// it has changed since (or is gone), the run's own snapshot is shown instead, read-only, under a banner
// that says so and offers the current flow: statuses are never painted onto nodes that did not run.

import { formatDateTime, h } from "./dom.js";
import { FlowModel } from "./model.js";
import { status } from "./status.js";

/** What a run depends on in a flow document: nodes (nodespec, values, end flag) and links, not layout. */
function runShape(doc) {
  const model = new FlowModel();
  model.load(doc);
  const nodes = model.toDocument().nodes.map(({ id, spec_id: spec, ports, is_end: end }) => ({
    id, spec, end: Boolean(end), ports: [...ports].sort((a, b) => a.name.localeCompare(b.name)),
  })).sort((a, b) => a.id.localeCompare(b.id));
  const links = [...model.links.values()].map((l) => `${l.source}>${l.target}`).sort();
  return JSON.stringify({ nodes, links });
}

export class RunView {
  constructor({ flows, runs, canvas, router }) {
    Object.assign(this, { flows, runs, canvas, router });
    this.banner = null;
    flows.on("read-only", (on) => { if (!on) this.#hideBanner(); });
  }

  /** Open run `runId`; false when it could not be shown. */
  async open(runId) {
    let stored;
    try {
      stored = await this.runs.fetch(runId);
    } catch (error) {
      status.error(error, `Could not open run ${runId}`);
      return false;
    }
    const snapshot = stored.snapshot?.flow;
    const flowId = stored.flow_id || snapshot?.id;
    const stillStored = this.flows.summaries.some((f) => f.id === flowId);
    if (stillStored && flowId !== this.flows.model.id && !(await this.flows.open(flowId))) return false;
    const same = stillStored && snapshot && !this.flows.history.readOnly
      && runShape(this.flows.model.toDocument()) === runShape(snapshot);
    if (!same && snapshot) {
      if (!this.flows.history.readOnly && !(await this.flows.confirmDiscard("show this run"))) return false;
      this.flows.openSnapshot(snapshot, "This is the flow as the run saw it: read-only. Open the current flow to edit.");
      this.#showBanner(stored, flowId, stillStored);
    }
    await this.runs.show(stored);
    return true;
  }

  #showBanner(stored, flowId, stillStored) {
    this.#hideBanner();
    const when = formatDateTime(stored.created_at);
    const text = stillStored
      ? `Run ${stored.id.slice(0, 8)} of ${when}, as it ran: the flow has changed since. Read-only.`
      : `Run ${stored.id.slice(0, 8)} of ${when}, as it ran: its flow is no longer stored. Read-only.`;
    this.banner = h("div.run-snapshot-banner", { role: "status" }, h("span", text),
      stillStored ? h("button.btn.btn-small", { type: "button", onclick: () => this.#openCurrent(flowId) }, "Open the current flow") : null);
    this.canvas.root.append(this.banner);
  }

  #hideBanner() {
    this.banner?.remove();
    this.banner = null;
  }

  async #openCurrent(flowId) {
    if (await this.flows.open(flowId, { force: true })) this.router.show("flow", flowId);
  }
}

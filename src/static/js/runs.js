// Runs: start an asynchronous run of the open flow, follow its live events (Server-Sent Events) onto the
// canvas, cancel it, list the flow's past runs and paint one of them back onto the canvas.

import { api } from "./api.js";
import { clearNodeArtifacts, showNodeArtifacts } from "./artifacts.js";
import { InstallNotes } from "./requirements.js";
import { clear, formatDateTime, formatDuration, formatTime, h } from "./dom.js";
import { Emitter } from "./events.js";
import { markNotRun } from "./incomplete.js";
import { detailLines, problemsByNode } from "./wording.js";
import { endSummary } from "./results.js";
import { status } from "./status.js";
import { branchState, paintSubflows } from "./subflows.js";

const LIVE = new Set(["queued", "running"]);
export const READ_ONLY_RUN = "A past run's flow is shown, read-only: open the current flow to run it.";
const NODE_STATE = { node_finished: null, node_cached: "cached", node_skipped: "skipped" };

/** The state a node result is painted with: cached successes show as cached. */
function stateOf(result) {
  return branchState(result, result.cached && result.status === "success" ? "cached" : result.status);
}

export class Runs extends Emitter {
  constructor({ model, canvas, history, historyRoot }) {
    super();
    this.model = model;
    this.canvas = canvas;
    this.history = history; // while it is read-only, a past run's snapshot is shown: nothing to run
    this.historyRoot = historyRoot;
    this.run = null; // {id, status, flowId, live, results: Map, states: Map}
    this.stopFollowing = null;
    model.on("load", () => this.#forget());
    model.on("change", () => this.#dropRefusal());
  }

  get live() {
    return Boolean(this.run?.live);
  }

  #forget() {
    this.stopFollowing?.();
    this.stopFollowing = null;
    this.run = null;
    this.emit("state");
  }

  // --------------------------------------------------------------------------------- starting
  async start() {
    if (!this.model.id || this.live) return null;
    if (this.history?.readOnly) {
      status.toast(READ_ONLY_RUN, "warning");
      return null;
    }
    if (!this.model.nodes.size) {
      status.toast("The flow has no nodes to run yet.", "warning");
      return null;
    }
    try {
      const accepted = await api.startRun(this.model.toDocument());
      this.#begin(accepted.id, this.model.id, accepted.status);
      this.#follow(accepted.id);
      status.say(`Run ${accepted.id.slice(0, 8)} queued`);
      this.emit("started", accepted.id);
      return accepted.id;
    } catch (error) {
      if (error.status !== 400) {
        status.error(error, "Could not start the run");
        return null;
      }
      const doc = this.model.toDocument();
      this.canvas.markProblems(problemsByNode(error.details, doc));
      const lines = detailLines(error.details, doc);
      this.refusal = status.toast("Could not start the run", "error", { detail: lines.length ? lines : error.message });
      return null;
    }
  }

  /** The flow was edited: a refused run's reasons may no longer hold. */
  #dropRefusal() {
    if (!this.refusal) return;
    this.refusal.remove();
    this.refusal = null;
    this.canvas.markProblems([]);
  }

  #begin(id, flowId, runStatus) {
    this.stopFollowing?.();
    this.run = { id, flowId, status: runStatus, live: LIVE.has(runStatus), results: new Map(), states: new Map(), startedAt: performance.now() };
    this.canvas.clearStatuses();
    clearNodeArtifacts(this.canvas.root);
    this.canvas.root.classList.toggle("run-live", this.run.live);
    this.emit("state");
  }

  async cancel() {
    if (!this.live) return;
    try {
      await api.cancelRun(this.run.id);
      status.say("Cancelling the run…");
    } catch (error) {
      status.error(error, "Could not cancel");
    }
  }

  // -------------------------------------------------------------------------------- live events
  #follow(id) {
    const run = this.run;
    const paint = (nodeId, state, duration) => {
      run.states.set(nodeId, state);
      this.canvas.setStatus(nodeId, state, duration);
    };
    const installs = new InstallNotes(this.canvas);
    const queueAll = (nodes) => { for (const nodeId of nodes || []) if (!run.states.has(nodeId)) paint(nodeId, "queued"); };
    const handlers = {
      run_queued: (data) => queueAll(data.nodes),
      run_started: (data) => {
        run.status = "running";
        queueAll(data.nodes);
        this.#announce();
      },
      node_started: (data) => {
        paint(data.node, "running");
        if (data.path?.length > 1) this.canvas.setStatus(data.path[0], "running"); // inside a subflow node
        this.emit("result", data.node);
      },
      node_progress: (data) => this.canvas.setProgress(data.node, data.done, data.total, data.failed),
      environment: (data) => installs.hear(data),
      run_finished: (data) => {
        installs.stop();
        this.#finished(run, data);
      },
    };
    for (const [event, fixed] of Object.entries(NODE_STATE)) {
      handlers[event] = (data) => {
        const state = branchState(data, fixed || (data.cached && data.status === "success" ? "cached" : data.status));
        paint(data.node, state, data.duration_ms);
        installs.done(data.node);
        run.results.set(data.node, { ...data, id: data.node, partial: true });
        showNodeArtifacts(this.canvas, run.id, data.node, data.outputs, { live: true });
        this.#announce();
        this.emit("result", data.node);
      };
    }
    this.stopFollowing = api.followRun(id, handlers, () => status.say("Lost the run's event stream; reopen the run to see where it is.", "warning"));
  }

  async #finished(run, data) {
    run.status = data.status;
    run.live = false;
    run.reason = data.reason;
    this.canvas.root.classList.remove("run-live");
    const kind = data.status === "succeeded" ? "success" : data.status === "cancelled" ? "warning" : "error";
    const counts = Object.entries(data.counts || {}).map(([k, v]) => `${v} ${k}`).join(", ");
    this.emit("state");
    await this.#loadResults(run); // first, so the toast can name the end results
    const results = this.run === run ? endSummary(this.model, run) : "";
    status.toast(`Run ${data.status}${data.duration_ms !== undefined ? ` in ${formatDuration(data.duration_ms)}` : ""}` +
      `${results ? `: ${results}` : ""}${counts ? ` (${counts})` : ""}${data.reason ? ` — ${data.reason}` : ""}`, kind);
    this.emit("finished", run.id, data.status);
    this.renderHistory();
  }

  #announce() {
    if (!this.run) return;
    const done = [...this.run.states.values()].filter((s) => !LIVE.has(s)).length;
    status.say(`Run ${this.run.id.slice(0, 8)} ${this.run.status}: ${done} of ${this.run.states.size} nodes done`);
    this.emit("state");
  }

  // Full node results (inputs, outputs, stdout, traceback) come from the stored run.
  async #loadResults(run) {
    try {
      const stored = await api.getRun(run.id);
      if (this.run !== run) return;
      for (const result of stored.nodes || []) {
        run.results.set(result.id, result);
        showNodeArtifacts(this.canvas, run.id, result.id, result.outputs);
        if (!run.states.has(result.id) || !LIVE.has(stateOf(result))) {
          run.states.set(result.id, stateOf(result));
          this.canvas.setStatus(result.id, stateOf(result), result.duration_ms);
        }
      }
      paintSubflows(this.canvas, run.results);
      // Planned nodes that never got a result were stopped by the cancel.
      for (const [nodeId, state] of run.states) {
        if (LIVE.has(state) && !run.live) {
          run.states.set(nodeId, "cancelled");
          this.canvas.setStatus(nodeId, "cancelled");
        }
      }
      if (!run.live && this.run.flowId === this.model.id) markNotRun(this.model, this.canvas, run.states);
      this.emit("painted");
    } catch (error) {
      status.error(error, "Could not load the run's results");
    }
  }

  // ------------------------------------------------------------------------------ opening runs
  /** Fetch a run; answers it so the caller can open its flow first. */
  fetch(id) {
    return api.getRun(id);
  }

  /** Paint a run (already fetched) onto the open flow; follow it when it is still going. */
  async show(stored) {
    this.#begin(stored.id, stored.flow_id, stored.status);
    if (this.run.live) {
      this.#follow(stored.id);
    } else {
      await this.#loadResults(this.run);
      const started = stored.started_at ? Date.parse(stored.started_at) : null;
      const finished = stored.finished_at ? Date.parse(stored.finished_at) : null;
      const took = started && finished ? ` in ${formatDuration(finished - started)}` : "";
      status.say(`Showing run ${stored.id.slice(0, 8)} from ${formatTime(stored.created_at)}: ${stored.status}${took}`);
    }
    this.renderHistory();
    this.emit("state");
  }

  resultFor(nodeId) {
    const state = this.run?.states.get(nodeId);
    if (!state) return null;
    return { state, result: this.run.results.get(nodeId) };
  }

  // ---------------------------------------------------------------------------------- history
  async renderHistory() {
    const flowId = this.model.id;
    if (!flowId) {
      clear(this.historyRoot).append(h("div.list-empty", "Open a flow to see its runs."));
      return;
    }
    let answer;
    try {
      answer = await api.listRuns({ flow: flowId, limit: 50 });
    } catch (error) {
      clear(this.historyRoot).append(h("div.list-empty", `Could not list runs: ${error.message}`));
      return;
    }
    if (flowId !== this.model.id) return;
    clear(this.historyRoot);
    if (!answer.runs.length) {
      this.historyRoot.append(h("div.list-empty", "No runs yet. Press Run (Ctrl+Enter)."));
      return;
    }
    this.historyRoot.append(h("div.list-caption", `${answer.total} run${answer.total === 1 ? "" : "s"}`));
    for (const run of answer.runs) this.historyRoot.append(this.#historyItem(run));
  }

  #historyItem(run) {
    const started = run.started_at ? Date.parse(run.started_at) : null;
    const finished = run.finished_at ? Date.parse(run.finished_at) : null;
    const current = this.run?.id === run.id;
    return h("div.run-item", {
      tabindex: "0", role: "button", dataset: { run: run.id, status: run.status }, class: current ? "current" : undefined,
      onclick: () => this.emit("navigate", run.id),
      onkeydown: (event) => { if (event.key === "Enter") this.emit("navigate", run.id); },
      title: run.reason || run.id,
    },
    h(`span.status-pill.status-${run.status}`, run.status),
    h("span.run-item-time", formatDateTime(run.created_at)),
    h("span.run-item-duration", started && finished ? formatDuration(finished - started) : ""));
  }
}

// Results at a glance: after a run, each end node (the nodes marked end, else every sink) shows its
// output under it on the canvas, the run's toast names them, and the Results tab lists every end node's
// output in full with a button that copies it.

import { artifactOf, thumbnail } from "./artifacts.js";
import { clear, h } from "./dom.js";
import { status } from "./status.js";

const SHORT_CHARS = 40;

/** The nodes a run's results are read from: marked end nodes, else the nodes nothing is linked from. */
export function endNodes(model) {
  const ids = [...model.nodes.keys()];
  const marked = ids.filter((id) => model.isEnd(id));
  if (marked.length) return marked;
  return ids.filter((id) => !model.linksOf(id).some((link) => link.source.startsWith(`${id}:`)));
}

/** A node's outputs as text: the one output's value alone, several as "name: value" lines. */
function outputText(outputs, pretty = false) {
  const entries = Object.entries(outputs || {});
  const show = (value) => {
    const meta = artifactOf(value); // a rich value: its summary ("Image 120 x 80"), never its metadata
    if (meta) return meta.summary || meta.type;
    return typeof value === "string" ? value : JSON.stringify(value, null, pretty ? 2 : undefined);
  };
  if (entries.length === 1) return show(entries[0][1]);
  return entries.map(([name, value]) => `${name}: ${show(value)}`).join(pretty ? "\n" : ", ");
}

const short = (text) => (text.length > SHORT_CHARS ? `${text.slice(0, SHORT_CHARS - 1)}…` : text);

/** The end nodes' results of `run` that succeeded: [{id, name, text}]. */
export function endResults(model, run) {
  return endNodes(model).flatMap((id) => {
    const result = run?.results.get(id);
    if (!result || result.partial || !result.outputs || !["success"].includes(result.status)) return [];
    const artifacts = Object.entries(result.outputs).map(([port, value]) => [port, artifactOf(value)]);
    return [{
      id, name: model.node(id)?.name || id, text: outputText(result.outputs), full: outputText(result.outputs, true),
      images: artifacts.filter(([, meta]) => meta?.thumbnail), // [port, metadata] of image outputs
      onlyArtifacts: artifacts.every(([, meta]) => meta), // the node's artifact strip shows them already
    }];
  });
}

/** "Double = 46, Format = …" for the run's toast. */
export function endSummary(model, run) {
  return endResults(model, run).slice(0, 4).map((r) => `${r.name} = ${short(r.text)}`).join(", ");
}

export class Results {
  constructor({ model, canvas, runs, root }) {
    Object.assign(this, { model, canvas, runs, root });
    runs.on("painted", () => this.render());
    runs.on("started", () => this.render());
    model.on("load", () => this.render());
    this.render();
  }

  render() {
    for (const el of this.canvas.root.querySelectorAll(".node-output")) {
      el.parentElement.classList.remove("has-output");
      el.remove();
    }
    const results = this.runs.run && this.runs.run.flowId === this.model.id ? endResults(this.model, this.runs.run) : [];
    for (const result of results.filter((r) => !r.onlyArtifacts)) {
      const view = this.canvas.views.get(result.id);
      view?.el.classList.add("has-output");
      view?.el.append(h("div.node-output", { title: result.full }, short(result.text)));
    }
    clear(this.root);
    if (!results.length) {
      this.root.append(h("div.list-empty", this.runs.run ? "No end node has a result in this run." : "Run the flow to see its end nodes' results here."));
      return;
    }
    for (const result of results) {
      this.root.append(h("div.result-row", { dataset: { node: result.id } },
        h("div.result-head", {}, h("strong", result.name),
          h("button.btn.btn-small", { type: "button", onclick: () => this.#copy(result) }, "Copy")),
        result.images.map(([port, meta]) => thumbnail(this.runs.run.id, result.id, port, meta)),
        h("pre.result-value", result.full)));
    }
  }

  async #copy(result) {
    try {
      await navigator.clipboard.writeText(result.full);
      status.toast(`Copied the result of ${result.name}`, "success");
    } catch (error) {
      status.toast(`Could not copy: ${error.message}`, "error");
    }
  }
}

// Third-party packages in the editor: the nodespec editor's Requirements field (validated by the server,
// with Prepare to build the environment ahead and show the resolved versions), install progress on the
// nodes waiting for an environment during a run, and the Packages dialog listing environments.

import { api, ApiError } from "./api.js";
import { choose } from "./dialogs.js";
import { clear, formatDuration, formatTime, h } from "./dom.js";
import { status } from "./status.js";

const parse = (text) => text.split(/[\n,]/).map((line) => line.trim()).filter(Boolean);

/** The Requirements field: one requirement per line (`numpy>=1.26`, `pandas`, `scikit-learn[all]`). */
export class RequirementsField {
  constructor(requirements, source) {
    this.source = source; // () => the function's text, for suggestions
    this.input = h("textarea.input.requirements-input", {
      rows: 2, spellcheck: "false", dataset: { path: "/requirements" }, "aria-label": "Requirements",
      placeholder: "third-party packages, one per line (e.g. numpy>=1.26)",
    }, (requirements || []).join("\n"));
    this.result = h("div.requirements-result", { "aria-live": "polite" });
    this.el = h("div.requirements-field", {},
      this.input,
      h("div.requirements-actions", {},
        h("button.btn.btn-small", { type: "button", onclick: () => this.suggest(), dataset: { action: "suggest-requirements" } }, "Suggest from imports"),
        h("button.btn.btn-small", { type: "button", onclick: () => this.prepare(), dataset: { action: "prepare" } }, "Prepare")),
      this.result);
    this.input.addEventListener("input", () => clear(this.result));
  }

  value() {
    return parse(this.input.value);
  }

  async suggest() {
    try {
      const inferred = await api.inferPorts(this.source());
      const have = new Set(this.value().map((r) => r.split(/[<>=!~;[ ]/)[0].toLowerCase()));
      const added = (inferred.requirements || []).filter((name) => !have.has(name.toLowerCase()));
      if (added.length) this.input.value = [...this.value(), ...added].join("\n");
      this.#say(added.length ? `Added ${added.join(", ")}` : "No other third-party imports found");
    } catch (error) {
      this.#say(error.message, true);
    }
  }

  /** Build (or find) the environment now; shows the resolved versions, or the installer's words. */
  async prepare() {
    const requirements = this.value();
    if (!requirements.length) {
      this.#say("No requirements to prepare", true);
      return;
    }
    const started = performance.now();
    this.#say(`Installing ${requirements.join(", ")}…`);
    try {
      const env = await api.prepareEnvironment(requirements);
      clear(this.result);
      this.result.append(h("div.requirements-ok", `Ready in ${formatDuration(performance.now() - started)}: `),
        h("ul.requirements-packages", {}, (env.packages || []).map((pin) => h("li", pin))));
    } catch (error) {
      const where = error instanceof ApiError ? (error.body?.details || []).map((d) => d.message) : [];
      this.#say(where.length ? where.join("\n") : error.message, true);
    }
  }

  #say(text, bad = false) {
    clear(this.result);
    this.result.append(h(bad ? "pre.requirements-error" : "div.requirements-note", text));
  }
}

/** A note for a node waiting on its environment, from an `environment` run event (null: none). */
export function environmentNote(data, startedAt) {
  const packages = (data.requirements || []).map((r) => r.split(/[<>=!~;[ ]/)[0]).join(", ");
  const elapsed = performance.now() - startedAt;
  const seconds = elapsed >= 1000 ? ` ${Math.round(elapsed / 1000)} s` : "";
  switch (data.phase) {
    case "started":
    case "progress": return `installing ${packages} …${seconds}`;
    case "waiting": return `waiting for ${packages} to be installed …${seconds}`;
    case "failed": return `installing ${packages} failed`;
    default: return null; // finished, ready: the node runs now
  }
}

/** The install notes of one run's nodes, their elapsed time ticking once a second while any is on. */
export class InstallNotes {
  constructor(canvas) {
    this.canvas = canvas;
    this.started = new Map(); // environment key -> when its install was first heard of
    this.waiting = new Map(); // node id -> the latest environment event about it
    this.timer = null;
  }

  hear(data) {
    if (!this.started.has(data.key)) this.started.set(data.key, performance.now());
    const text = environmentNote(data, this.started.get(data.key));
    this.canvas.setNote(data.node, text);
    if (text && data.phase !== "failed") this.waiting.set(data.node, data);
    else this.waiting.delete(data.node);
    this.#tick();
  }

  done(nodeId) {
    this.waiting.delete(nodeId);
    this.canvas.setNote(nodeId, null);
    this.#tick();
  }

  stop() {
    this.waiting.clear();
    this.#tick();
  }

  #tick() {
    if (this.waiting.size && !this.timer) {
      this.timer = setInterval(() => {
        for (const [node, data] of this.waiting) this.canvas.setNote(node, environmentNote(data, this.started.get(data.key)));
      }, 1000);
    } else if (!this.waiting.size && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

/** The Packages dialog: every environment, what it holds, who uses it; prune the unused ones. */
export async function showEnvironments() {
  let records;
  try {
    records = await api.listEnvironments();
  } catch (error) {
    status.error(error, "Could not list the environments");
    return;
  }
  const rows = records.map((env) => h("tr", { dataset: { key: env.key } },
    h("td", {}, env.requirements.join(", ")),
    h("td", {}, (env.packages || []).join(", ")),
    h("td", {}, `${((env.size_bytes || 0) / 1048576).toFixed(1)} MB`),
    h("td", {}, env.last_used ? formatTime(env.last_used) : "—"),
    h("td", {}, (env.nodespecs || []).join(", ") || "—")));
  const body = records.length
    ? h("table.environments-table", {}, h("thead", {}, h("tr", {}, ["Requirements", "Packages", "Size", "Last used", "Nodespecs"].map((t) => h("th", t)))), h("tbody", {}, rows))
    : h("p.dialog-message", "No environment yet: a nodespec's requirements make one on first use.");
  const answer = await choose({
    title: "Third-party packages", body, className: "environments-dialog",
    buttons: [{ label: "Remove unused for 30 days", value: "prune" }, { label: "Close", value: null, primary: true }],
  });
  if (answer !== "prune") return;
  try {
    const { removed } = await api.pruneEnvironments({ days: 30 });
    status.toast(`Removed ${removed.length} environment(s)`, "success");
  } catch (error) {
    status.error(error, "Could not prune the environments");
  }
}

// Flows: the list in the sidebar, and new / open / rename / save / delete of the open flow, with
// If-Match on save, a choice to reload or overwrite when the flow changed elsewhere, and an unsaved-
// changes indicator with a warning before leaving.

import { api, ApiError } from "./api.js";
import { renameFlow } from "./commands.js";
import { askFields, choose, confirmAction } from "./dialogs.js";
import { clear, h } from "./dom.js";
import { Emitter } from "./events.js";
import { validId } from "./vocabulary.js";
import { status } from "./status.js";
import { problemsByNode } from "./wording.js";

export function idProblem(id) {
  if (!id) return "An id is required.";
  if (!validId(id)) {
    return "Use letters, digits, '_', '.' and '-' (no '..'), starting with a letter, digit or '_'.";
  }
  return null;
}

function slug(name) {
  return name.trim().toLowerCase().replace(/[^a-z0-9_.-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "").replace(/\.{2,}/g, ".").slice(0, 80);
}

let trash = null; // the icon, made once (its markup parsed once): each flow in the list gets a copy

function trashIcon() {
  if (!trash) {
    trash = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    trash.setAttribute("viewBox", "0 0 16 16");
    trash.setAttribute("width", "14");
    trash.setAttribute("height", "14");
    trash.setAttribute("aria-hidden", "true");
    trash.innerHTML = '<path d="M3 4h10M6.5 4V2.5h3V4M4.5 4l.7 9.5h5.6l.7-9.5M7 6.5v5M9 6.5v5" fill="none" stroke="currentColor" stroke-width="1.3" stroke-linecap="round"/>';
  }
  return trash.cloneNode(true);
}

export class Flows extends Emitter {
  constructor({ listRoot, model, history, canvas }) {
    super();
    this.listRoot = listRoot;
    this.model = model;
    this.history = history;
    this.canvas = canvas;
    this.etag = null;
    this.isNew = false;
    this.summaries = [];
    window.addEventListener("beforeunload", (event) => {
      if (this.history.dirty && this.model.id) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  get dirty() {
    return Boolean(this.model.id) && (this.history.dirty || this.isNew);
  }

  // ---------------------------------------------------------------------------------- the list
  async refreshList() {
    try {
      const flows = await api.listFlows();
      this.summaries = flows.map((f) => ({ id: f.id, name: f.name || f.id, nodes: f.node_count || 0 }))
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
      this.renderList();
    } catch (error) {
      status.error(error, "Could not list flows");
    }
  }

  renderList() {
    clear(this.listRoot);
    if (!this.summaries.length) {
      this.listRoot.append(h("div.list-empty", "No flows yet. Create one with “New flow”."));
      return;
    }
    for (const flow of this.summaries) {
      const current = flow.id === this.model.id;
      const item = h("div.flow-item", {
        tabindex: "0", role: "button", dataset: { flow: flow.id }, class: current ? "current" : undefined,
        "aria-current": current ? "true" : undefined, title: flow.id,
        onclick: () => this.emit("navigate", flow.id),
        onkeydown: (event) => {
          if (event.key === "Enter") this.emit("navigate", flow.id);
          if (event.key === "Delete") this.remove(flow.id);
        },
      },
      h("div.flow-item-text", {}, h("span.flow-item-name", flow.name), h("span.flow-item-id", `${flow.id} · ${flow.nodes} nodes`)),
      h("button.icon-button.flow-item-delete", {
        type: "button", title: `Delete flow ${flow.id}`, "aria-label": `Delete flow ${flow.id}`, tabindex: "-1",
        onclick: (event) => {
          event.stopPropagation();
          this.remove(flow.id);
        },
      }, trashIcon()));
      this.listRoot.append(item);
    }
  }

  // ------------------------------------------------------------------------------- open / close
  /** Ask before throwing away unsaved changes; true when it is fine to go on. */
  async confirmDiscard(action = "continue") {
    if (!this.dirty) return true;
    const answer = await choose({
      title: "Unsaved changes",
      message: `“${this.model.name}” has changes that are not saved. Save them before you ${action}?`,
      buttons: [
        { label: "Cancel", value: "cancel" },
        { label: "Discard changes", value: "discard", danger: true },
        { label: "Save", value: "save", primary: true },
      ],
    });
    if (answer === "save") return this.save();
    return answer === "discard";
  }

  /** Start fetching flow `id` now (a deep link, while the editor loads the rest); open() takes it. */
  prefetch(id) {
    this.prefetched = { id, answer: api.getFlow(id) };
    this.prefetched.answer.catch(() => {}); // open() reports a failure
  }

  #fetchFlow(id) {
    const prefetched = this.prefetched;
    this.prefetched = null;
    return prefetched?.id === id ? prefetched.answer : api.getFlow(id);
  }

  async open(id, { force = false } = {}) {
    if (id === this.model.id && !force) return true;
    if (!force && !(await this.confirmDiscard("open another flow"))) return false;
    try {
      const started = performance.now();
      const { doc, etag } = await this.#fetchFlow(id);
      this.#load(doc, etag, false, true);
      const ms = performance.now() - started;
      status.say(`Opened “${this.model.name}” (${this.model.nodes.size} nodes in ${Math.round(ms)} ms)`);
      this.lastOpenMs = ms;
      return true;
    } catch (error) {
      status.error(error, `Could not open flow ${id}`);
      return false;
    }
  }

  /** Show a flow document that is not (or not yet) stored, e.g. a run's snapshot. */
  openUnsaved(doc) {
    this.#load(doc, null, true, true);
  }

  /** Show a past run's own flow, read-only (`reason` says why edits are refused). */
  openSnapshot(doc, reason) {
    this.#load(doc, null, false, true);
    this.history.readOnly = reason;
    this.emit("read-only", true);
  }

  /** Show `doc`; `fit`: drawn fitted in view (fitted before it is drawn: see Canvas.loadFitted). */
  #load(doc, etag, isNew, fit = false) {
    if (this.history.readOnly) {
      this.history.readOnly = null;
      this.emit("read-only", false);
    }
    if (fit) this.canvas.loadFitted(() => this.model.load(doc));
    else this.model.load(doc);
    this.etag = etag;
    this.isNew = isNew;
    this.history.clear(!isNew);
    this.canvas.markProblems([]);
    this.renderList();
    this.emit("opened", this.model.id);
  }

  close() {
    this.history.readOnly = null;
    this.model.load({ id: null, name: "", nodes: [], links: [] });
    this.model.id = null;
    this.etag = null;
    this.isNew = false;
    this.history.clear();
    this.renderList();
    this.emit("opened", null);
  }

  // --------------------------------------------------------------------------------- commands
  async create() {
    if (!(await this.confirmDiscard("create a new flow"))) return;
    const taken = new Set(this.summaries.map((f) => f.id));
    const values = await askFields({
      title: "New flow",
      fields: [
        { name: "name", label: "Name", placeholder: "My flow" },
        { name: "id", label: "Id", placeholder: "derived from the name", hint: "Letters, digits, '_', '.', '-'; dots group flows." },
      ],
      confirmLabel: "Create",
      validate: (v) => {
        const id = v.id || slug(v.name);
        if (!v.name) return { name: "Give the flow a name." };
        const problem = idProblem(id);
        if (problem) return { id: problem };
        if (taken.has(id)) return { id: `A flow with id “${id}” exists already.` };
        return null;
      },
    });
    if (!values) return;
    const id = values.id || slug(values.name);
    this.#load({ id, name: values.name, nodes: [], links: [] }, null, true, true);
    this.emit("navigate-silently", id);
    status.say(`New flow “${values.name}”: drag nodespecs from the palette, then save.`);
  }

  /** Open a new, unsaved "Untitled flow" (a nodespec dropped with no flow open lands in it). */
  async createUntitled() {
    if (!(await this.confirmDiscard("create a new flow"))) return false;
    const taken = new Set(this.summaries.map((f) => f.id));
    let n = 1;
    while (taken.has(`untitled-${n}`)) n += 1;
    this.#load({ id: `untitled-${n}`, name: n === 1 ? "Untitled flow" : `Untitled flow ${n}`, nodes: [], links: [] }, null, true);
    this.emit("navigate-silently", this.model.id);
    status.say(`New flow “${this.model.name}”: rename it with a click on its name, then save.`);
    return true;
  }

  async rename() {
    if (!this.model.id) return;
    const values = await askFields({
      title: "Rename flow",
      fields: [{ name: "name", label: "Name", value: this.model.name }],
      confirmLabel: "Rename",
      validate: (v) => (v.name ? null : { name: "The name cannot be empty." }),
    });
    if (values && values.name !== this.model.name) this.history.execute(renameFlow(this.model, values.name));
  }

  /** Save the open flow; true when it was stored. */
  async save({ overwrite = false } = {}) {
    if (!this.model.id) return false;
    if (this.history.readOnly) {
      status.toast(this.history.readOnly, "warning");
      return false;
    }
    const doc = this.model.toDocument();
    try {
      const saved = this.isNew ? await api.createFlow(doc) : await api.saveFlow(doc.id, doc, overwrite ? null : this.etag);
      this.etag = saved.etag;
      this.isNew = false;
      this.history.markSaved();
      this.canvas.markProblems([]);
      status.toast(`Saved “${this.model.name}”`, "success");
      this.emit("saved", doc.id);
      this.refreshList();
      return true;
    } catch (error) {
      return this.#saveFailed(error, doc);
    }
  }

  async #saveFailed(error, doc) {
    if (error instanceof ApiError && error.status === 412) return this.#resolveConflict();
    if (error instanceof ApiError && error.status === 409 && this.isNew) {
      const overwrite = await confirmAction("Flow exists",
        `A flow with id “${doc.id}” is already stored. Replace it with this one?`, "Replace", true);
      if (!overwrite) return false;
      this.isNew = false;
      return this.save({ overwrite: true });
    }
    if (error instanceof ApiError && error.status === 400) this.canvas.markProblems(problemsByNode(error.details, doc));
    status.error(error, "Could not save", doc);
    return false;
  }

  async #resolveConflict() {
    const answer = await choose({
      title: "The flow changed elsewhere",
      message: `“${this.model.name}” was changed by someone else (or in another tab) since you opened it. ` +
        "Reload it and lose your changes, or overwrite it with yours?",
      buttons: [
        { label: "Cancel", value: "cancel" },
        { label: "Reload theirs", value: "reload" },
        { label: "Overwrite with mine", value: "overwrite", primary: true, danger: true },
      ],
    });
    if (answer === "reload") {
      await this.open(this.model.id, { force: true });
      status.say("Reloaded the stored version");
      return false;
    }
    if (answer === "overwrite") return this.save({ overwrite: true });
    return false;
  }

  async remove(id) {
    const isCurrent = id === this.model.id;
    const ok = await confirmAction("Delete flow", `Delete flow “${id}”? Its run history stays until it is pruned.`, "Delete", true);
    if (!ok) return;
    try {
      if (!(isCurrent && this.isNew)) await api.deleteFlow(id, isCurrent ? this.etag : null);
      status.toast(`Deleted flow “${id}”`, "success");
      if (isCurrent) {
        this.history.clear();
        this.close();
        this.emit("navigate-silently", null);
      }
      this.refreshList();
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        status.toast("The flow changed elsewhere since you opened it; reload it before deleting.", "error");
      } else status.error(error, "Could not delete");
    }
  }
}

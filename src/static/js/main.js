// Start-up: build the modules, connect them, and handle the toolbar, keyboard shortcuts and routes.

import "../css/app.css";
import { api } from "./api.js";
import { Canvas } from "./canvas.js";
import { Catalog } from "./catalog.js";
import { setEndNode } from "./commands.js";
import { dialogOpen } from "./dialogs.js";
import { isTyping } from "./dom.js";
import { Flows } from "./flows.js";
import { History } from "./history.js";
import { toggleMap } from "./items.js";
import { Inspector } from "./inspector.js";
import { FlowModel } from "./model.js";
import { NodespecEditor } from "./nodespec-editor.js";
import { Palette } from "./palette.js";
import { Repository } from "./repository.js";
import { showEnvironments } from "./requirements.js";
import { parseHash, Router } from "./router.js";
import { READ_ONLY_RUN, Runs } from "./runs.js";
import { Appearance } from "./appearance.js";
import { arrange } from "./arrange.js";
import { FlowExport } from "./flowexport.js";
import { Groups } from "./groups.js";
import { Help } from "./help.js";
import { Minimap } from "./minimap.js";
import { QuickAdd } from "./quickadd.js";
import { Results } from "./results.js";
import { RunView } from "./runview.js";
import { status } from "./status.js";
import { Drilldown, isSubflow, makeSubflow } from "./subflows.js";
import { installTypeColors } from "./theme.js";
import { showToolbarOverflow } from "./toolbar-overflow.js";

const byId = (id) => document.getElementById(id);

function createApp() {
  installTypeColors();
  status.init(byId("statusbar"));
  const model = new FlowModel();
  const history = new History(model);
  const catalog = new Catalog();
  const canvas = new Canvas({ root: byId("canvas"), model, catalog, history });
  const palette = new Palette({ root: byId("palette"), catalog, canvas });
  const flows = new Flows({ listRoot: byId("flow-list"), model, history, canvas });
  const runs = new Runs({ model, canvas, history, historyRoot: byId("run-history") });
  const inspector = new Inspector({ root: byId("inspector"), model, catalog, history, canvas, runs });
  const specEditor = new NodespecEditor({ catalog });
  const repository = new Repository({ fileInput: byId("import-file"), dropZone: document.body });
  const router = new Router();
  const drilldown = new Drilldown({ model, canvas, flows, runs });
  const runView = new RunView({ flows, runs, canvas, router });
  const results = new Results({ model, canvas, runs, root: byId("results") });
  const quickAdd = new QuickAdd({ canvas, catalog, history });
  const flowExport = new FlowExport({ model, catalog, canvas, history });
  canvas.on("export", ({ file, selection }) => (file ? flowExport.toFile(selection) : flowExport.toClipboard(selection)));
  canvas.on("arrange", (name) => {
    const command = arrange(name, [...canvas.selection], (id) => canvas.nodeBox(id));
    if (command) history.execute(command);
  });
  const appearance = new Appearance();
  const help = new Help({ root: byId("help"), canvas, catalog, model });
  const groups = new Groups({ model, canvas, history });
  const minimap = new Minimap({ model, canvas });
  history.on("refused", (reason) => status.toast(reason, "warning"));
  return { model, history, catalog, canvas, palette, flows, runs, inspector, specEditor, repository, router, drilldown, runView, results, quickAdd, flowExport, appearance, help, groups, minimap };
}

// Auto-layout (dagre) is loaded on first use, in a chunk of its own: most sessions never need it.
let layoutModule = null;

async function layoutCommand(app, ids) {
  let autoLayout;
  try {
    layoutModule ||= import("./layout.js");
    ({ autoLayout } = await layoutModule);
  } catch (error) {
    layoutModule = null;
    status.error(error, "Could not load auto-layout");
    return;
  }
  const command = autoLayout(app.model, app.canvas, ids);
  if (!command) return;
  app.history.execute(command);
  app.canvas.fitView(ids);
}

// ------------------------------------------------------------------------------------ toolbar
const ACTIONS = {
  "new-flow": (app) => app.flows.create(),
  "rename-flow": (app) => app.flows.rename(),
  save: (app) => app.flows.save(),
  undo: (app) => undo(app),
  redo: (app) => redo(app),
  run: (app) => app.runs.start(),
  cancel: (app) => app.runs.cancel(),
  layout: (app) => layoutCommand(app),
  fit: (app) => app.canvas.fitView(),
  "zoom-in": (app) => app.canvas.zoomBy(1.2),
  "zoom-out": (app) => app.canvas.zoomBy(1 / 1.2),
  "new-spec": (app) => app.specEditor.open(),
  packages: () => showEnvironments(),
  export: (app) => app.repository.exportBundle(),
  import: (app) => app.repository.pickFile(),
  theme: (app) => app.appearance.cycleTheme(),
  shortcuts: (app) => app.appearance.showShortcuts(),
  "toggle-left": (app) => app.appearance.toggleSidebar("left"),
  "toggle-right": (app) => app.appearance.toggleSidebar("right"),
  more: () => showToolbarOverflow(document.querySelector('.toolbar [data-action="more"]')),
};

function undo(app) {
  const command = app.history.undo();
  if (command) status.say(`Undid: ${command.label}`);
}

function redo(app) {
  const command = app.history.redo();
  if (command) status.say(`Redid: ${command.label}`);
}

function bindToolbar(app) {
  document.addEventListener("click", (event) => {
    const button = event.target.closest?.("[data-action]");
    if (button && ACTIONS[button.dataset.action] && !button.closest(".dialog")) ACTIONS[button.dataset.action](app);
  });
  const update = () => updateToolbar(app);
  app.history.on("change", update);
  app.model.on("change", update);
  app.model.on("flow:update", update);
  app.runs.on("state", update);
  app.flows.on("opened", update);
  app.flows.on("saved", update);
  app.flows.on("read-only", update);
  update();
}

function updateToolbar(app) {
  const { model, history, runs, flows } = app;
  const open = Boolean(model.id);
  const dirty = flows.dirty;
  const toolbar = document.querySelector(".toolbar"); // not the whole page: a large flow is tens of thousands of elements
  const set = (action, enabled, title) => {
    for (const button of toolbar.querySelectorAll(`[data-action="${action}"]`)) {
      button.disabled = !enabled;
      if (title !== undefined) button.title = title;
    }
  };
  set("save", open, dirty ? "Save (Ctrl+S)" : "Saved");
  set("undo", history.canUndo, history.canUndo ? `Undo ${history.undoLabel} (Ctrl+Z)` : "Nothing to undo");
  set("redo", history.canRedo, history.canRedo ? `Redo ${history.redoLabel} (Ctrl+Shift+Z)` : "Nothing to redo");
  set("run", open && !runs.live && model.nodes.size > 0 && !history.readOnly,
    history.readOnly ? READ_ONLY_RUN : "Run (Ctrl+Enter)");
  set("cancel", runs.live);
  for (const action of ["layout", "fit", "zoom-in", "zoom-out", "rename-flow"]) set(action, open);
  const name = byId("flow-name");
  name.textContent = open ? model.name : "No flow open";
  name.title = open ? `${model.id} — click to rename` : "";
  byId("dirty-indicator").hidden = !dirty;
  document.body.classList.toggle("has-flow", open);
  document.body.classList.toggle("run-live", runs.live);
  document.title = open ? `${dirty ? "• " : ""}${model.name} — PyFlow` : "PyFlow";
}

// ----------------------------------------------------------------------------------- keyboard
function bindKeyboard(app) {
  document.addEventListener("keydown", (event) => {
    if (dialogOpen()) return; // dialogs handle their own keys
    const ctrl = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (ctrl && key === "s") return handled(event, () => app.flows.save());
    if (ctrl && event.key === "Enter") return handled(event, () => app.runs.start());
    if (isTyping(event)) return;
    if (event.key === "?") return handled(event, () => app.appearance.showShortcuts());
    if (ctrl && key === "z" && event.shiftKey) return handled(event, () => redo(app));
    if (ctrl && key === "z") return handled(event, () => undo(app));
    if (ctrl && key === "y") return handled(event, () => redo(app));
    if (!app.model.id) return;
    const canvas = app.canvas;
    if (ctrl && key === "c") return handled(event, () => canvas.copySelection() && app.flowExport.toClipboard(true, { quiet: true }));
    if (ctrl && key === "v") return; // the paste event follows (flowexport.js): flow JSON, else copied nodes
    if (ctrl && key === "d") return handled(event, () => canvas.duplicateSelection());
    if (ctrl && key === "a") return handled(event, () => canvas.selectAll());
    if (ctrl && key === "g") return handled(event, () => app.groups.groupSelection());
    if (ctrl || event.altKey) return;
    const step = event.shiftKey ? 40 : 8;
    const keys = {
      delete: () => canvas.deleteSelection(),
      backspace: () => canvas.deleteSelection(),
      escape: () => canvas.clearSelection(),
      f: () => canvas.fitView(),
      l: () => layoutCommand(app, app.canvas.selection.size > 1 ? [...app.canvas.selection] : undefined),
      "+": () => canvas.zoomBy(1.2),
      "=": () => canvas.zoomBy(1.2),
      "-": () => canvas.zoomBy(1 / 1.2),
      "/": () => app.palette.focusSearch(),
      tab: () => app.quickAdd.openAtPointer(),
      arrowleft: () => canvas.nudge(-step, 0),
      arrowright: () => canvas.nudge(step, 0),
      arrowup: () => canvas.nudge(0, -step),
      arrowdown: () => canvas.nudge(0, step),
    };
    if (key.startsWith("arrow") && !canvas.selection.size) return;
    if (keys[key]) handled(event, keys[key]);
  });
}

function handled(event, action) {
  event.preventDefault();
  action();
}

// ------------------------------------------------------------------------------------- routes
async function openRun(app, runId) {
  if (!(await app.runView.open(runId))) return false;
  showTab("runs");
  return true;
}

function bindRoutes(app) {
  const { router, flows, runs } = app;
  router.on("route", async (route, previous) => {
    let ok = true;
    if (route.kind === "flow") ok = await flows.open(route.id);
    else if (route.kind === "run") ok = await openRun(app, route.id);
    if (!ok && previous !== null) router.restore(previous);
  });
  flows.on("navigate", (id) => { location.hash = `#/flow/${encodeURIComponent(id)}`; });
  flows.on("navigate-silently", (id) => router.show("flow", id));
  runs.on("navigate", (id) => {
    const hash = `#/run/${encodeURIComponent(id)}`;
    if (location.hash === hash) openRun(app, id); // the run just started is in the address already
    else location.hash = hash;
  });
  runs.on("started", (id) => router.show("run", id));
  flows.on("opened", (id) => {
    if (id && !location.hash.startsWith("#/run/")) router.show("flow", id);
    runs.renderHistory();
  });
}

// ---------------------------------------------------------------------------- module wiring
function bindModules(app) {
  const { canvas, palette, specEditor, catalog, flows, history, model, repository, inspector, runs } = app;
  // A subflow's "nodespec" is its flow: editing it opens the flow.
  const editSpec = (id) => (isSubflow(id) ? flows.emit("navigate", id.slice("flow:".length)) : specEditor.open(id));
  palette.on("edit", editSpec);
  palette.on("add-without-flow", async (specId, x, y) => {
    if (await flows.createUntitled()) canvas.addSpecAt(specId, x, y);
  });
  canvas.on("edit-spec", editSpec);
  inspector.on("edit-spec", editSpec);
  inspector.on("rename-flow", () => flows.rename());
  inspector.on("layout-selection", () => layoutCommand(app, [...canvas.selection]));
  canvas.on("open-node", (id) => {
    if (isSubflow(model.node(id)?.spec_id)) return app.drilldown.enter(id);
    canvas.select([id]);
    byId("inspector").querySelector("input")?.focus();
  });
  canvas.on("make-subflow", (ids) => makeSubflow(app, ids));
  canvas.on("toggle-map", (id, port) => history.execute(toggleMap(model, id, port)));
  canvas.on("toggle-end", (id) => history.execute(setEndNode(model, id, !model.isEnd(id))));
  canvas.on("auto-layout", () => layoutCommand(app));
  const specsChanged = async (id) => {
    await catalog.loadSpecs();
    canvas.refreshSpecs([id]);
    inspector.render();
  };
  specEditor.on("saved", specsChanged);
  specEditor.on("deleted", specsChanged);
  repository.on("imported", async () => {
    await catalog.loadSpecs();
    await flows.refreshList();
    if (model.id && !flows.dirty && flows.summaries.some((f) => f.id === model.id)) await flows.open(model.id, { force: true });
    else if (model.id && !flows.isNew && !flows.summaries.some((f) => f.id === model.id)) flows.close();
  });
  runs.on("finished", () => flows.refreshList());
  // A saved flow is a node for other flows: the palette's Flows group and its ports follow it.
  flows.on("saved", async (id) => {
    await catalog.loadSpecs();
    canvas.refreshSpecs([`flow:${id}`]);
  });
  byId("flow-name").addEventListener("click", () => flows.rename());
  for (const tab of document.querySelectorAll("[data-tab]")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
}

function showTab(name) {
  for (const tab of document.querySelectorAll("[data-tab]")) {
    const active = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(active));
    byId(tab.getAttribute("aria-controls")).hidden = !active;
  }
}

// What an executor's warnings mean for people at the editor, said first, before the server's own words.
const EXECUTOR_HEADLINES = {
  "unsafe-process": { headline: "Node code runs without isolation", severity: "danger" },
  inprocess: { headline: "Node code runs without isolation", severity: "danger" },
  none: { headline: "Node execution is disabled: every node run fails", severity: "warning" },
};

async function loadServerInfo() {
  try {
    const health = await api.health();
    const executor = health.executor || {};
    status.setServer(`PyFlow ${health.version} · executor ${executor.name || "?"}`);
    status.setWarnings(executor.warnings || [],
      EXECUTOR_HEADLINES[executor.name] || { headline: `Executor ${executor.name || "?"}`, severity: "warning" });
  } catch (error) {
    status.setServer("server unreachable", false);
    status.error(error);
  }
}

async function start() {
  const app = createApp();
  const route = parseHash();
  if (route.kind === "flow") app.flows.prefetch(route.id); // fetched while the editor loads the rest
  bindToolbar(app);
  bindKeyboard(app);
  bindModules(app);
  bindRoutes(app);
  showTab("inspector");
  app.inspector.render();
  app.runs.renderHistory();
  await Promise.all([
    loadServerInfo(),
    app.catalog.loadTypes().catch((error) => status.error(error, "Could not load port types")),
    app.catalog.loadSpecs().catch((error) => status.error(error, "Could not load nodespecs")),
    app.flows.refreshList(),
  ]);
  app.router.start();
  if (document.querySelector(".status-message").textContent === "Loading…") status.say("Ready");
  document.body.classList.add("ready");
  window.pyflow = app; // for the browser console
}

start();

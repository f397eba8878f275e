// How the editor looks and what it shows: the colour theme (following the system's prefers-color-scheme
// unless a choice is stored), the sidebars (each can be collapsed, remembered across visits), and the
// keyboard shortcut sheet (?).

import { choose } from "./dialogs.js";
import { h } from "./dom.js";

const THEME_KEY = "pyflow.theme"; // "auto" (the default), "dark" or "light"
const SIDEBARS_KEY = "pyflow.collapsed-sidebars";
const THEME_NEXT = { auto: "dark", dark: "light", light: "auto" };
const THEME_LABEL = { auto: "◐ Auto", dark: "☾ Dark", light: "☀ Light" };

function stored(key, fallback) {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback;
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch { /* storage disabled: the choice lasts until the page is reloaded */ }
}

export class Appearance {
  constructor() {
    this.system = window.matchMedia("(prefers-color-scheme: dark)");
    this.system.addEventListener("change", () => this.#applyTheme());
    this.theme = stored(THEME_KEY, "auto");
    this.#applyTheme();
    for (const side of stored(SIDEBARS_KEY, "").split(",").filter(Boolean)) document.body.classList.add(`${side}-collapsed`);
  }

  /** auto → dark → light → auto. */
  cycleTheme() {
    this.theme = THEME_NEXT[this.theme] || "auto";
    store(THEME_KEY, this.theme);
    this.#applyTheme();
  }

  #applyTheme() {
    const dark = this.theme === "dark" || (this.theme === "auto" && this.system.matches);
    document.documentElement.dataset.theme = dark ? "dark" : "light";
    for (const button of document.querySelectorAll('[data-action="theme"]')) {
      button.textContent = THEME_LABEL[this.theme];
      button.title = this.theme === "auto" ? "Theme: follows the system (click for dark)" : `Theme: ${this.theme} (click to change)`;
    }
  }

  /** Collapse or expand the "left" or "right" sidebar. */
  toggleSidebar(side) {
    document.body.classList.toggle(`${side}-collapsed`);
    const collapsed = ["left", "right"].filter((s) => document.body.classList.contains(`${s}-collapsed`));
    store(SIDEBARS_KEY, collapsed.join(","));
    window.dispatchEvent(new Event("resize")); // the canvas measures its new size
  }

  showShortcuts() {
    const rows = SHORTCUTS.map(([keys, what]) => h("tr", {}, h("td", {}, keys.split(" / ").map((k) => h("kbd", k))), h("td", what)));
    return choose({
      title: "Keyboard shortcuts",
      body: h("table.shortcut-table", {}, h("tbody", {}, rows)),
      buttons: [{ label: "Close", value: null, primary: true }],
      className: "shortcut-dialog",
    });
  }
}

export const SHORTCUTS = [
  ["Ctrl+S", "Save the flow"],
  ["Ctrl+Enter", "Run the flow"],
  ["Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"],
  ["Ctrl+C / Ctrl+V", "Copy the selection / paste nodes or a flow's JSON"],
  ["Ctrl+D", "Duplicate the selection"],
  ["Ctrl+A", "Select every node"],
  ["Ctrl+G", "Group the selected nodes"],
  ["Shift+drag", "Select the nodes in a box"],
  ["Double-click / Ctrl+click / Tab", "Add a node at the pointer"],
  ["Del", "Delete the selection"],
  ["Arrows / Shift+arrows", "Move the selection"],
  ["F", "Fit the flow in view"],
  ["L", "Auto-layout (the selection, or everything)"],
  ["+ / −", "Zoom in / out"],
  ["/", "Search nodespecs"],
  ["Esc", "Clear the selection"],
  ["?", "This sheet"],
];

// Context menus: a list of actions at the pointer, usable with the keyboard (arrows, Enter, Escape).

import { h } from "./dom.js";

let open = null;

export function closeMenu() {
  open?.remove();
  open = null;
}

/** items: [{label, shortcut?, action, danger?, disabled?} | "-"] */
export function showMenu(x, y, items) {
  closeMenu();
  const buttons = [];
  const menu = h("div.context-menu", { role: "menu" },
    items.map((item) => {
      if (item === "-") return h("div.menu-separator", { role: "separator" });
      const button = h("button.menu-item", {
        type: "button", role: "menuitem", disabled: item.disabled, class: item.danger ? "danger" : undefined,
        onclick: () => { closeMenu(); item.action(); },
      }, h("span", item.label), item.shortcut ? h("kbd", item.shortcut) : null);
      buttons.push(button);
      return button;
    }));
  menu.addEventListener("keydown", (event) => moveFocus(event, buttons));
  document.body.append(menu);
  const { innerWidth, innerHeight } = window;
  menu.style.left = `${Math.min(x, innerWidth - menu.offsetWidth - 8)}px`;
  menu.style.top = `${Math.min(y, innerHeight - menu.offsetHeight - 8)}px`;
  open = menu;
  buttons.find((b) => !b.disabled)?.focus();
}

function moveFocus(event, buttons) {
  const enabled = buttons.filter((b) => !b.disabled);
  const at = enabled.indexOf(document.activeElement);
  if (event.key === "ArrowDown") enabled[(at + 1) % enabled.length]?.focus();
  else if (event.key === "ArrowUp") enabled[(at - 1 + enabled.length) % enabled.length]?.focus();
  else if (event.key === "Escape") closeMenu();
  else return;
  event.preventDefault();
}

document.addEventListener("pointerdown", (event) => {
  if (open && !open.contains(event.target)) closeMenu();
}, true);
window.addEventListener("blur", closeMenu);

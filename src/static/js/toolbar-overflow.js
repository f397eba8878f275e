// The toolbar on small screens: below a width (app.css) the groups marked .toolbar-overflow are hidden and
// "More ▾" lists their buttons and links in a menu, so every action stays one click away.

import { showMenu } from "./menu.js";

/** Open the menu of the hidden toolbar actions under the "More" button. */
export function showToolbarOverflow(button) {
  const box = button.getBoundingClientRect();
  const items = [...document.querySelectorAll(".toolbar .toolbar-overflow :is(button, a)")].map((el) => ({
    label: el.textContent.trim(),
    disabled: el.disabled,
    action: () => el.click(),
  }));
  showMenu(box.right - 180, box.bottom + 4, items);
}

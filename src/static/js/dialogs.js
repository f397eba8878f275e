// Modal dialogs that answer promises: choose between actions, confirm, or fill in a few fields.
// Escape cancels, Enter takes the primary action, focus stays inside the dialog.

import { h } from "./dom.js";

/**
 * Show a dialog; resolves with the chosen button's value (null when cancelled).
 * buttons: [{label, value, primary?, danger?}]; body: extra content (Node or string).
 */
export function choose({ title, message, body, buttons, className }) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const close = (value) => {
      backdrop.remove();
      previous?.focus?.({ preventScroll: true });
      resolve(value);
    };
    const footer = h("div.dialog-buttons", {},
      buttons.map((button) => h("button", {
        type: "button",
        class: `btn ${button.primary ? "btn-primary" : ""} ${button.danger ? "btn-danger" : ""}`.trim(),
        dataset: { value: String(button.value) },
        onclick: () => close(button.value),
      }, button.label)));
    const dialog = h("div.dialog", { role: "dialog", "aria-modal": "true", "aria-label": title, class: className },
      h("h2.dialog-title", title),
      message ? h("p.dialog-message", message) : null,
      body || null,
      footer);
    const backdrop = h("div.dialog-backdrop", {}, dialog);
    backdrop.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close(null);
      } else if (event.key === "Enter" && !(event.target instanceof HTMLTextAreaElement) && !(event.target instanceof HTMLButtonElement)) {
        const primary = buttons.find((b) => b.primary);
        if (primary) {
          event.preventDefault();
          close(primary.value);
        }
      } else if (event.key === "Tab") {
        trapFocus(event, dialog);
      }
    });
    backdrop.addEventListener("pointerdown", (event) => {
      if (event.target === backdrop) close(null);
    });
    document.body.append(backdrop);
    (dialog.querySelector("input, select, textarea") || footer.querySelector(".btn-primary") || footer.lastElementChild)?.focus();
  });
}

/** Whether a dialog is open. Dialogs are children of the body: looking only there keeps a key press from
 * scanning the tens of thousands of elements a large flow puts in the page. */
export function dialogOpen() {
  return Array.prototype.some.call(document.body.children, (el) => el.classList.contains("dialog-backdrop"));
}

function trapFocus(event, dialog) {
  const focusable = [...dialog.querySelectorAll("button, input, select, textarea, [tabindex]")].filter((el) => !el.disabled);
  if (!focusable.length) return;
  const first = focusable[0];
  const last = focusable.at(-1);
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

export async function confirmAction(title, message, confirmLabel = "OK", danger = false) {
  const answer = await choose({
    title, message,
    buttons: [{ label: "Cancel", value: false }, { label: confirmLabel, value: true, primary: true, danger }],
  });
  return answer === true;
}

/**
 * Ask for a few text fields: fields = [{name, label, value?, placeholder?, pattern?, hint?}].
 * `validate(values)` may answer {field: message} to keep the dialog open. Resolves with the values or null.
 */
export function askFields({ title, message, fields, confirmLabel = "OK", validate }) {
  return new Promise((resolve) => {
    const inputs = {};
    const errors = {};
    const body = h("div.form", {}, fields.map((field) => {
      inputs[field.name] = h("input.input", {
        type: "text", name: field.name, value: field.value ?? "", placeholder: field.placeholder || "",
        autocomplete: "off", spellcheck: "false",
      });
      errors[field.name] = h("div.field-error", { role: "alert" });
      return h("label.field", {}, h("span.field-label", field.label), inputs[field.name],
        field.hint ? h("span.field-hint", field.hint) : null, errors[field.name]);
    }));
    const values = () => Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value.trim()]));
    const attempt = () => {
      const problems = validate ? validate(values()) || {} : {};
      for (const [name, el] of Object.entries(errors)) el.textContent = problems[name] || "";
      if (Object.keys(problems).length) return false;
      return true;
    };
    choose({ title, message, body, buttons: [{ label: "Cancel", value: null }, { label: confirmLabel, value: "ok", primary: true }] })
      .then((answer) => resolve(answer === "ok" ? values() : null));
    // Keep the dialog open while the values are invalid: intercept the primary action.
    const dialog = body.closest(".dialog");
    dialog.addEventListener("click", (event) => {
      if (event.target.closest(".btn-primary") && !attempt()) event.stopImmediatePropagation();
    }, true);
    dialog.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !attempt()) event.stopImmediatePropagation();
    }, true);
  });
}

// The status line at the bottom and short-lived toasts: how the editor tells people what happened.

import { clear, h } from "./dom.js";

const TOAST_MS = { info: 3500, success: 3000, error: 7000, warning: 6000 };

class Status {
  init(root) {
    this.message = root.querySelector(".status-message");
    this.warnings = root.querySelector(".status-warnings");
    this.counts = root.querySelector(".status-counts");
    this.zoom = root.querySelector(".status-zoom");
    this.server = root.querySelector(".status-server");
    this.toasts = document.getElementById("toasts");
  }

  /** A message in the status line; `kind` is info, success, warning or error. */
  say(text, kind = "info") {
    if (!this.message) return;
    this.message.textContent = text;
    this.message.dataset.kind = kind;
    this.message.title = text;
  }

  /** A toast above the canvas as well as the status line: for things the person must notice. */
  toast(text, kind = "info", { detail } = {}) {
    this.say(text, kind);
    const close = h("button.toast-close", { type: "button", "aria-label": "Dismiss", onclick: () => remove() }, "×");
    const toast = h(`div.toast.toast-${kind}`, { role: kind === "error" ? "alert" : "status" },
      h("div.toast-text", text), detail ? h("div.toast-detail", detail) : null, close);
    const remove = () => toast.remove();
    this.toasts.append(toast);
    while (this.toasts.children.length > 4) this.toasts.firstElementChild.remove();
    setTimeout(remove, TOAST_MS[kind] || 4000);
    return toast;
  }

  error(error, prefix = "") {
    const text = prefix ? `${prefix}: ${error.message}` : error.message;
    const details = (error.details || []).slice(0, 5).map((d) => `${d.path || "/"}: ${d.message}`).join("\n");
    return this.toast(text, "error", { detail: details || undefined });
  }

  setWarnings(warnings) {
    clear(this.warnings);
    this.warnings.hidden = !warnings.length;
    for (const warning of warnings) {
      this.warnings.append(h("span.status-warning", { title: warning }, "⚠ ", warning));
    }
  }

  setCounts(nodes, links, selected) {
    const parts = [`${nodes} node${nodes === 1 ? "" : "s"}`, `${links} link${links === 1 ? "" : "s"}`];
    if (selected) parts.push(`${selected} selected`);
    this.counts.textContent = parts.join(" · ");
  }

  setZoom(scale) {
    this.zoom.textContent = `${Math.round(scale * 100)}%`;
  }

  setServer(text, ok = true) {
    this.server.textContent = text;
    this.server.dataset.ok = ok ? "yes" : "no";
  }
}

export const status = new Status();

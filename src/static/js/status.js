// The status line at the bottom, short-lived toasts, and the banner of the server's warnings: how the
// editor tells people what happened, and what they must know about the server.

import { clear, h } from "./dom.js";
import { detailLines } from "./wording.js";

const TOAST_MS = { info: 3500, success: 3000, error: 7000, warning: 6000 };
const DISMISSED_KEY = "pyflow.dismissed-server-warning";

class Status {
  init(root) {
    this.message = root.querySelector(".status-message");
    this.warnings = root.querySelector(".status-warnings");
    this.counts = root.querySelector(".status-counts");
    this.zoom = root.querySelector(".status-zoom");
    this.server = root.querySelector(".status-server");
    this.toasts = document.getElementById("toasts");
    this.banner = document.getElementById("server-banner");
    this.warnings.addEventListener("click", () => this.#showBanner(true));
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

  /** An error toast; the server's details in plain words, naming what `doc` (the document sent) names. */
  error(error, prefix = "", doc = undefined) {
    const text = prefix ? `${prefix}: ${error.message}` : error.message;
    const lines = detailLines(error.details, doc, { limit: 5 });
    return this.toast(text, "error", { detail: lines.length ? lines : undefined });
  }

  /**
   * The server's warnings: a banner across the top with `headline` and every warning in full, which the
   * person may dismiss (for this browser session), and a chip in the status line that carries the same
   * text in its tooltip and brings the banner back. `severity` is "warning" or "danger".
   */
  setWarnings(warnings, { headline = "Server warning", severity = "warning" } = {}) {
    const text = warnings.join(" · ");
    this.warningText = warnings.length ? `${headline}: ${text}` : "";
    this.warnings.hidden = !warnings.length;
    this.banner.hidden = true;
    if (!warnings.length) return;
    this.warnings.dataset.severity = severity;
    this.warnings.textContent = `⚠ ${headline}`;
    this.warnings.title = `${this.warningText}\n(click to show)`;
    this.warnings.setAttribute("aria-label", this.warningText);
    this.banner.dataset.severity = severity;
    clear(this.banner).append(
      h("span.server-banner-icon", { "aria-hidden": "true" }, "⚠"),
      h("div.server-banner-body", {},
        h("strong.server-banner-headline", headline), h("span.server-banner-text", text)),
      h("button.server-banner-close", {
        type: "button", "aria-label": "Dismiss this warning", title: "Dismiss (the status line keeps it)",
        onclick: () => this.#showBanner(false),
      }, "×"));
    let dismissed = null;
    try {
      dismissed = sessionStorage.getItem(DISMISSED_KEY);
    } catch { /* storage disabled: show it */ }
    this.#showBanner(dismissed !== this.warningText);
  }

  #showBanner(show) {
    if (!this.warningText) return;
    this.banner.hidden = !show;
    try {
      if (show) sessionStorage.removeItem(DISMISSED_KEY);
      else sessionStorage.setItem(DISMISSED_KEY, this.warningText);
    } catch { /* storage disabled: dismissed until the page is reloaded */ }
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

// The Help tab: the selected node's nodespec, its description rendered from Markdown (marked) and
// sanitized (DOMPurify: no scripts, handlers or foreign URLs survive), and its ports. Both libraries
// are loaded on first use, in a chunk of their own.

import { clear, h, valueToText } from "./dom.js";

let markdownModule = null;

async function renderMarkdown(text) {
  markdownModule ||= Promise.all([import("marked"), import("dompurify")]);
  const [{ marked }, { default: DOMPurify }] = await markdownModule;
  return DOMPurify.sanitize(marked.parse(text, { async: false }), { USE_PROFILES: { html: true } });
}

export class Help {
  constructor({ root, canvas, catalog, model }) {
    Object.assign(this, { root, canvas, catalog, model });
    canvas.on("selection", ({ nodes }) => this.show(nodes.length === 1 ? model.node(nodes[0])?.spec_id : null));
    this.show(null);
  }

  async show(specId) {
    const spec = specId ? this.catalog.spec(specId) : null;
    this.shown = specId;
    if (!spec) {
      clear(this.root).append(h("div.list-empty", "Select a node to see its nodespec's help."));
      return;
    }
    const body = h("div.help-body.markdown");
    const ports = (kind, list) => h("div.help-ports", {}, h("h4.subsection", kind),
      list.length ? h("ul", {}, list.map((p) => h("li", {}, h("code", p.name), ` ${p.type || "Any"}`,
        p.required ? h("span.muted", " required") : "default" in p ? h("span.muted", ` default ${valueToText(p.default)}`) : null)))
        : h("p.muted", "none"));
    clear(this.root).append(h("h3.help-title", spec.title || spec.id), h("code.muted", spec.id), body,
      ports("Inputs", this.catalog.inputs(spec.id)), ports("Outputs", this.catalog.outputs(spec.id)));
    if (!spec.description) {
      body.append(h("p.muted", "No description."));
      return;
    }
    try {
      const html = await renderMarkdown(spec.description);
      if (this.shown === specId) body.innerHTML = html; // sanitized above
    } catch {
      body.textContent = spec.description;
    }
  }
}

// Before a merge import: every stored object the file would overwrite, with what changes and which flows
// use it, and a choice per clash: keep mine, take theirs, or import theirs as a copy under a new id (the
// file's flows then use the copy). resolveBundle is the choice applied to the bundle (no DOM).

import { choose } from "./dialogs.js";
import { h } from "./dom.js";

const CHOICES = [
  { value: "keep", label: "Keep mine" },
  { value: "theirs", label: "Take theirs" },
  { value: "copy", label: "Import as a copy (new id)" },
];

/** An id not in `taken`: `id.copy`, then `id.copy2`, ... */
function freshId(id, taken) {
  let candidate = `${id}.copy`;
  for (let n = 2; taken.has(candidate); n += 1) candidate = `${id}.copy${n}`;
  taken.add(candidate);
  return candidate;
}

/** The bundle with each clash resolved: choices is {"kind/id": "keep" | "theirs" | "copy"}. */
export function resolveBundle(bundle, choices, storedIds = new Set()) {
  const out = { ...bundle, nodespec: { ...(bundle.nodespec || {}) }, flow: { ...(bundle.flow || {}) } };
  const taken = new Set([...storedIds, ...Object.keys(out.nodespec), ...Object.keys(out.flow)]);
  const renamedSpecs = new Map();
  for (const [key, choice] of Object.entries(choices)) {
    const [kind, id] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
    const doc = out[kind][id];
    if (!doc || choice === "theirs") continue;
    delete out[kind][id];
    if (choice !== "copy") continue;
    const copy = freshId(id, taken);
    out[kind][copy] = { ...doc, id: copy };
    if (kind === "nodespec") renamedSpecs.set(id, copy);
  }
  for (const [id, flow] of Object.entries(out.flow)) {
    if (!flow.nodes?.some((node) => renamedSpecs.has(node.spec_id))) continue;
    out.flow[id] = { ...flow, nodes: flow.nodes.map((node) => (renamedSpecs.has(node.spec_id) ? { ...node, spec_id: renamedSpecs.get(node.spec_id) } : node)) };
  }
  return out;
}

function clashRow(clash) {
  const select = h("select.input", { "aria-label": `What to do with ${clash.id}` },
    CHOICES.map((c) => h("option", { value: c.value, selected: c.value === "keep" }, c.label)));
  const row = h("li.clash", { dataset: { id: clash.id, kind: clash.kind } },
    h("div.clash-head", {}, h("code", clash.id), h("span.muted", ` ${clash.kind}`), select),
    h("ul.clash-changes", {}, clash.changes.map((change) => h("li", change))),
    clash.used_by?.length ? h("div.muted", `Used by: ${clash.used_by.join(", ")}`) : null);
  return { row, select, key: `${clash.kind}/${clash.id}` };
}

/** Ask what to do with each clash; answers {"kind/id": choice}, or null when cancelled. */
export async function askClashes(fileName, preview) {
  const rows = preview.clashes.map(clashRow);
  const created = preview.created.length;
  const body = h("div.import-clashes", {}, h("ul.clash-list", {}, rows.map((r) => r.row)));
  const answer = await choose({
    title: `Import ${fileName}: ${rows.length} clash${rows.length === 1 ? "" : "es"}`,
    message: `These ids exist already and differ from the file's; ${created} new object${created === 1 ? "" : "s"} will be created. ` +
      "Replacing a nodespec changes what every flow using it computes.",
    body,
    buttons: [{ label: "Cancel", value: null }, { label: "Import", value: "import", primary: true }],
    className: "import-clash-dialog",
  });
  if (!answer) return null;
  return Object.fromEntries(rows.map((r) => [r.key, r.select.value]));
}

// Colours and sizes shared by the canvas (which paints jsPlumb endpoints) and the style sheet.

export const TYPE_COLORS = {
  String: "#0d9488",
  Int: "#2563eb",
  Float: "#7c3aed",
  Boolean: "#d97706",
  List: "#db2777",
  Json: "#ea580c",
  Dict: "#b45309",
  Any: "#64748b",
  Object: "#475569",
  Array: "#0891b2",
  DataFrame: "#16a34a",
  Image: "#c026d3",
};

export const typeColor = (type) => TYPE_COLORS[type] || TYPE_COLORS.Any;

/** Node geometry: fixed so port anchors and node sizes are known without reading the layout. */
export const NODE = { width: 220, head: 50, row: 24, pad: 10 };

export function nodeHeight(rows) {
  return NODE.head + Math.max(rows, 1) * NODE.row + NODE.pad;
}

/** Make the type colours available to CSS as --type-<Name>. */
export function installTypeColors(root = document.documentElement) {
  for (const [name, color] of Object.entries(TYPE_COLORS)) root.style.setProperty(`--type-${name}`, color);
}

// The Python code editor of the nodespec editor: CodeMirror 6. It is most of the editor's JavaScript and
// only needed once a nodespec is opened, so nodespec-editor.js loads this module (and CodeMirror with it)
// with a dynamic import: the bundler puts it in a chunk of its own, fetched on first use.

import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { keymap } from "@codemirror/view";
import { tags } from "@lezer/highlight";
import { EditorView, basicSetup } from "codemirror";

// Colours from the page's theme variables (app.css), so the editor follows a switch to or from the
// dark theme while it is open; CodeMirror's own defaults are for a light page only.
const THEME = EditorView.theme({
  "&": { backgroundColor: "var(--panel)", color: "var(--text)" },
  ".cm-content": { caretColor: "var(--text)" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--text)" },
  ".cm-gutters": { backgroundColor: "var(--panel-2)", color: "var(--muted)", borderRight: "1px solid var(--line)" },
  ".cm-activeLine": { backgroundColor: "var(--code-active-line)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--code-active-line)", color: "var(--text)" },
  "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground":
    { backgroundColor: "var(--code-selection)" },
  ".cm-matchingBracket, &.cm-focused .cm-matchingBracket": { backgroundColor: "var(--code-selection)", color: "inherit" },
});

const HIGHLIGHT = HighlightStyle.define([
  { tag: [tags.keyword, tags.controlKeyword, tags.definitionKeyword, tags.moduleKeyword, tags.operatorKeyword],
    color: "var(--code-keyword)" },
  { tag: [tags.string, tags.special(tags.string)], color: "var(--code-string)" },
  { tag: [tags.number, tags.bool, tags.null], color: "var(--code-number)" },
  { tag: [tags.comment, tags.lineComment], color: "var(--code-comment)", fontStyle: "italic" },
  { tag: [tags.function(tags.definition(tags.variableName)), tags.definition(tags.className)], color: "var(--code-definition)" },
  { tag: [tags.self, tags.atom, tags.standard(tags.variableName)], color: "var(--code-builtin)" },
  { tag: tags.invalid, color: "var(--danger)" },
]);

/** A Python editor showing `doc` inside `parent`; `onChange` is called after each edit. */
export function createCodeEditor({ doc, parent, onChange }) {
  const view = new EditorView({
    doc,
    extensions: [basicSetup, python(), THEME, syntaxHighlighting(HIGHLIGHT), keymap.of([indentWithTab]),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) onChange?.();
      })],
    parent,
  });
  return {
    text: () => view.state.doc.toString(),
    destroy: () => view.destroy(),
  };
}

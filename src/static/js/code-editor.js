// The Python code editor of the nodespec editor: CodeMirror 6. It is most of the editor's JavaScript and
// only needed once a nodespec is opened, so nodespec-editor.js loads this module (and CodeMirror with it)
// with a dynamic import: the bundler puts it in a chunk of its own, fetched on first use.

import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { keymap } from "@codemirror/view";
import { EditorView, basicSetup } from "codemirror";

/** A Python editor showing `doc` inside `parent`; `onChange` is called after each edit. */
export function createCodeEditor({ doc, parent, onChange }) {
  const view = new EditorView({
    doc,
    extensions: [basicSetup, python(), keymap.of([indentWithTab]), EditorView.updateListener.of((update) => {
      if (update.docChanged) onChange?.();
    })],
    parent,
  });
  return {
    text: () => view.state.doc.toString(),
    destroy: () => view.destroy(),
  };
}

// Undo and redo over model commands. The history also knows whether the document differs from the
// last saved version: it remembers which command was on top when the flow was saved.

import { Emitter } from "./events.js";

const LIMIT = 500;

export class History extends Emitter {
  #done = [];
  #undone = [];
  #savedAt = null;

  constructor(model) {
    super();
    this.model = model;
  }

  /** Apply a command and record it; refused (and said why) while the flow shown is read-only. */
  execute(command) {
    if (this.readOnly) {
      this.emit("refused", this.readOnly);
      return;
    }
    this.model.batch(() => command.apply(this.model));
    this.#done.push(command);
    if (this.#done.length > LIMIT) {
      const dropped = this.#done.shift();
      if (dropped === this.#savedAt) this.#savedAt = undefined; // the saved state can no longer be reached
    }
    this.#undone = [];
    this.emit("change");
  }

  undo() {
    const command = this.#done.pop();
    if (!command) return null;
    this.model.batch(() => command.revert(this.model));
    this.#undone.push(command);
    this.emit("change");
    return command;
  }

  redo() {
    const command = this.#undone.pop();
    if (!command) return null;
    this.model.batch(() => command.apply(this.model));
    this.#done.push(command);
    this.emit("change");
    return command;
  }

  get canUndo() {
    return this.#done.length > 0;
  }

  get canRedo() {
    return this.#undone.length > 0;
  }

  get undoLabel() {
    return this.#done.at(-1)?.label;
  }

  get redoLabel() {
    return this.#undone.at(-1)?.label;
  }

  /** Forget everything: a new document was loaded. `saved` says whether it matches the server. */
  clear(saved = true) {
    this.#done = [];
    this.#undone = [];
    this.#savedAt = saved ? null : undefined;
    this.emit("change");
  }

  markSaved() {
    this.#savedAt = this.#done.at(-1) ?? null;
    this.emit("change");
  }

  get dirty() {
    return (this.#done.at(-1) ?? null) !== this.#savedAt;
  }
}

// A minimal event emitter: the model and the app-wide bus use it, views subscribe.

export class Emitter {
  #handlers = new Map();

  on(name, handler) {
    if (!this.#handlers.has(name)) this.#handlers.set(name, new Set());
    this.#handlers.get(name).add(handler);
    return () => this.off(name, handler);
  }

  off(name, handler) {
    this.#handlers.get(name)?.delete(handler);
  }

  emit(name, ...args) {
    for (const handler of [...(this.#handlers.get(name) || [])]) handler(...args);
  }
}

/** Application-wide notifications between modules that do not know each other. */
export const bus = new Emitter();

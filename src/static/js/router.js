// Hash routing: #/flow/<id> opens a flow and #/run/<run id> opens a run's statuses, so addresses can
// be shared. The address follows what is open; `show` changes it without reopening anything.

import { Emitter } from "./events.js";

export function parseHash(hash = location.hash) {
  const match = /^#\/(flow|run)\/(.+)$/.exec(hash);
  if (!match) return { kind: "home" };
  return { kind: match[1], id: decodeURIComponent(match[2]) };
}

export function hashFor(kind, id) {
  return id ? `#/${kind}/${encodeURIComponent(id)}` : "#/";
}

export class Router extends Emitter {
  constructor() {
    super();
    this.current = location.hash;
    window.addEventListener("hashchange", () => {
      if (location.hash === this.current) return;
      const previous = this.current;
      this.current = location.hash;
      this.emit("route", parseHash(), previous);
    });
  }

  start() {
    this.emit("route", parseHash(), null);
  }

  /** Put `kind`/`id` in the address bar without triggering a route. */
  show(kind, id) {
    const hash = hashFor(kind, id);
    if (hash === location.hash) return;
    this.current = hash;
    history.pushState(null, "", hash);
  }

  /** Go back to `hash` after a refused navigation, without a route event. */
  restore(hash) {
    this.current = hash || "#/";
    history.replaceState(null, "", this.current);
  }
}

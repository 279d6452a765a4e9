// A small typed-by-convention event emitter: on/once/off, and on() returns its own unsubscribe.
// A listener that throws does not stop the others nor the client's frame handling: the error
// is rethrown on its own task, where the browser console or Node's uncaught handler sees it.

export class Emitter {
  #listeners = new Map();

  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError(`listener for '${name}' must be a function`);
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    // Wrapped so that the same function added twice is two listeners, as with DOM events once.
    const entry = { fn };
    set.add(entry);
    return () => set.delete(entry);
  }

  once(name, fn) {
    const off = this.on(name, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  off(name, fn) {
    const set = this.#listeners.get(name);
    if (!set) return;
    if (fn === undefined) {
      set.clear();
      return;
    }
    for (const entry of set) {
      if (entry.fn === fn) {
        set.delete(entry);
        return;
      }
    }
  }

  /** @internal */
  _fire(name, ...args) {
    const set = this.#listeners.get(name);
    if (!set || set.size === 0) return false;
    for (const entry of [...set]) {
      try {
        entry.fn(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
    return true;
  }
}

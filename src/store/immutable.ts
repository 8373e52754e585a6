/**
 * Copies an in-process store keeps, so it can hand out what it holds without copying it again.
 * Plain data (primitives, arrays, objects with Object.prototype: what JSON holds, and the
 * undefined, NaN and bigint structuredClone keeps) is copied once into a deep-frozen tree, which
 * every reader may share: nobody can change it. Anything else (a Date, a Map, a cycle, a function)
 * goes through structuredClone, which keeps or refuses it exactly as before, and stays unfrozen,
 * so it is cloned again on every read. One difference from structuredClone: named properties an
 * array carries beyond its items are not kept (JSON, hence any real store, drops them too).
 * structuredClone costs microseconds per record; the frozen copy a tenth of that, and a read
 * copies nothing.
 */

/** What {@link frozenCopy} returns for a value that is not plain data. */
const NOT_PLAIN: unique symbol = Symbol('not plain');

/** A copy of `value` that no caller can change; share it with {@link handOut}. */
export function immutableCopy<T>(value: T): T {
  const copy = frozenCopy(value, undefined);
  return copy === NOT_PLAIN ? structuredClone(value) : (copy as T);
}

/** Whether a value made by this module may be shared: a primitive or a frozen (so deep-frozen) tree. */
export function isImmutable(value: unknown): boolean {
  return typeof value !== 'object' || value === null || Object.isFrozen(value);
}

/** `value` itself when {@link isImmutable}, else a structuredClone of it (what a store hands out). */
export function handOut<T>(value: T): T {
  return isImmutable(value) ? value : structuredClone(value);
}

/**
 * A deep-frozen copy of plain data, or NOT_PLAIN. `ancestors` holds the objects being copied
 * above this one, so a cycle is found (and left to structuredClone) instead of recursing forever.
 */
function frozenCopy(value: unknown, ancestors: object[] | undefined): unknown {
  if (typeof value !== 'object' || value === null) {
    // structuredClone refuses these: NOT_PLAIN lets it throw its own error.
    return typeof value === 'function' || typeof value === 'symbol' ? NOT_PLAIN : value;
  }
  if (ancestors?.includes(value) === true) return NOT_PLAIN;
  const proto: unknown = Object.getPrototypeOf(value);
  let copy: Record<string, unknown> | unknown[];
  // Made when the first object below this one is copied: flat values (a run's metadata, a text
  // part) need no list of ancestors.
  let stack: object[] | undefined;
  if (proto === Array.prototype) {
    const array = value as unknown[];
    const out: unknown[] = new Array(array.length);
    for (let i = 0; i < array.length; i++) {
      const item = array[i];
      if (item === undefined && !(i in array)) return NOT_PLAIN; // a hole, which structuredClone keeps
      if (stack === undefined && typeof item === 'object' && item !== null) stack = lineage(ancestors, value);
      const c = frozenCopy(item, stack);
      if (c === NOT_PLAIN) return NOT_PLAIN;
      out[i] = c;
    }
    copy = out;
  } else if (proto === Object.prototype) {
    const object = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    // for…in without an array of keys; own keys only, whatever Object.prototype was given.
    for (const key in object) {
      if (!Object.hasOwn(object, key)) continue;
      // Assigning "__proto__" would set the copy's prototype instead of a property.
      if (key === '__proto__') return NOT_PLAIN;
      const item = object[key];
      if (stack === undefined && typeof item === 'object' && item !== null) stack = lineage(ancestors, value);
      const c = frozenCopy(item, stack);
      if (c === NOT_PLAIN) return NOT_PLAIN;
      out[key] = c;
    }
    copy = out;
  } else {
    return NOT_PLAIN;
  }
  if (stack !== undefined && stack === ancestors) stack.pop();
  return Object.freeze(copy);
}

/** The ancestors of `value`'s items: `ancestors` (shared down the whole descent) with `value` on top. */
function lineage(ancestors: object[] | undefined, value: object): object[] {
  if (ancestors === undefined) return [value];
  ancestors.push(value);
  return ancestors;
}

/**
 * A map for entries that mostly come and go one at a time (the runs in flight, the threads they
 * hold): a lone entry lives in a slot beside the Map, so one that is set and deleted with nothing
 * else in it allocates nothing. V8 shrinks a Map whose last entry is deleted, a new hash table
 * (~150 bytes) each time, which a pool running one run after another paid per run for each such
 * map. Bounded as the entries it holds are; iteration order is not insertion order.
 */
export class SoloMap<K, V> {
  #soloKey: K | undefined;
  #soloValue: V | undefined;
  #hasSolo = false;
  /** Every entry but the slot's. */
  readonly #rest = new Map<K, V>();

  get size(): number {
    return (this.#hasSolo ? 1 : 0) + this.#rest.size;
  }

  get(key: K): V | undefined {
    if (this.#hasSolo && this.#soloKey === key) return this.#soloValue;
    return this.#rest.size === 0 ? undefined : this.#rest.get(key);
  }

  has(key: K): boolean {
    return (this.#hasSolo && this.#soloKey === key) || (this.#rest.size > 0 && this.#rest.has(key));
  }

  set(key: K, value: V): this {
    if (this.#hasSolo && this.#soloKey === key) this.#soloValue = value;
    else if (!this.#hasSolo && !this.#rest.has(key)) {
      this.#soloKey = key;
      this.#soloValue = value;
      this.#hasSolo = true;
    } else this.#rest.set(key, value);
    return this;
  }

  /** Deletes the key's entry; true when there was one. */
  delete(key: K): boolean {
    if (!this.#hasSolo || this.#soloKey !== key) return this.#rest.size > 0 && this.#rest.delete(key);
    this.#hasSolo = false;
    this.#soloKey = undefined; // held by nothing once deleted
    this.#soloValue = undefined;
    return true;
  }

  /** The values; an entry deleted while iterating and not yet reached is skipped. */
  *values(): IterableIterator<V> {
    if (this.#hasSolo) yield this.#soloValue as V;
    yield* this.#rest.values();
  }
}

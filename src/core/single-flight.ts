/**
 * Per-key coordination of concurrent async work. Both maps hold only keys with work in flight,
 * so they are bounded by concurrency and empty when idle.
 */

/** Concurrent calls with one key share a single execution and its result. */
export class SingleFlight<K, V> {
  readonly #inflight = new Map<K, Promise<V>>();

  /** Runs `fn` unless a call with `key` is in flight, in which case it joins that call. */
  run(key: K, fn: () => Promise<V>): Promise<V> {
    const running = this.#inflight.get(key);
    if (running !== undefined) return running;
    const p = fn().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  /** Keys with work in flight. */
  get size(): number {
    return this.#inflight.size;
  }
}

/** Calls with one key run one after another, in arrival order. */
export class KeyedMutex<K> {
  readonly #tails = new Map<K, Promise<unknown>>();

  /** Runs `fn` after every earlier call with `key` has settled. */
  run<V>(key: K, fn: () => Promise<V>): Promise<V> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.#tails.size;
  }
}

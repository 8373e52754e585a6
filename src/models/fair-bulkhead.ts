/**
 * The bulkhead of one model, fair across projects. At most `maxConcurrent` calls hold a slot;
 * callers beyond it wait in one FIFO queue per key (the project), and each freed slot goes to the
 * keys with waiting callers in turn (round-robin), so a project flooding a shared model delays
 * another project's call by at most one call of each other waiting project, not by the whole
 * flood. The wait is bounded in total (`maxQueue`) and per key (`maxQueuePerKey`). When the total
 * is full, a caller whose key waits at least two fewer than the longest queue takes the place of
 * that queue's newest caller, which is refused instead: a flood cannot keep a quiet project out
 * of the queue either. A waiting caller that aborts leaves at once.
 *
 * Cheap on the happy path: a free slot with nobody waiting is one counter and one closure.
 */

/** Gives a slot back; calling it more than once gives it back once. */
export type Release = () => void;

/** Why a caller was refused a place; the guard maps it to `MODEL_BUSY`. */
export type BulkheadRefusal =
  /** Every slot is taken and the queue is full. */
  | 'full'
  /** Its key already has `maxQueuePerKey` callers waiting. */
  | 'key-full'
  /** It was waiting, and gave its place to a caller of a key that waited less. */
  | 'displaced';

/** Thrown (as a rejection) when a caller gets no slot and no place in the queue. */
export class BulkheadRejectedError extends Error {
  override readonly name = 'BulkheadRejectedError';
  readonly reason: BulkheadRefusal;
  readonly key: string;

  constructor(reason: BulkheadRefusal, key: string) {
    super(`bulkhead refused a caller of ${key}: ${reason}`);
    this.reason = reason;
    this.key = key;
  }
}

/** Bounds of a {@link FairBulkhead}; validated by the caller (resilience-options.ts). */
export interface FairBulkheadOptions {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly maxQueuePerKey: number;
}

interface Waiter {
  readonly key: string;
  readonly resolve: (release: Release) => void;
  readonly reject: (err: unknown) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** A concurrency limit with a queue that is fair across keys. */
export class FairBulkhead {
  readonly options: FairBulkheadOptions;
  #inFlight = 0;
  #queued = 0;
  /**
   * Waiting callers per key, oldest first; only keys with waiters. The map's order is the
   * round-robin order: the first key is served next, then moves to the end if it still waits.
   */
  readonly #queues = new Map<string, Waiter[]>();

  constructor(options: FairBulkheadOptions) {
    this.options = options;
  }

  /** Callers holding a slot. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Callers waiting for a slot. */
  get queued(): number {
    return this.#queued;
  }

  /** Callers of `key` waiting for a slot. */
  queuedOf(key: string): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  /**
   * The release of a slot taken at once, when one is free (then nobody waits: a freed slot is
   * handed to the next waiter directly); undefined otherwise. The happy path, without a promise.
   */
  tryAcquire(): Release | undefined {
    if (this.#inFlight >= this.options.maxConcurrent) return undefined;
    this.#inFlight++;
    return this.#release();
  }

  /**
   * Resolves with the release of a slot once the caller holds one: at once when a slot is free
   * and nobody waits, else in its key's turn. Rejects with {@link BulkheadRejectedError} when the
   * caller finds (or later loses) no place in the queue, or with the signal's reason when it aborts.
   */
  acquire(key: string, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    const now = this.tryAcquire();
    if (now !== undefined) return Promise.resolve(now);
    const { maxQueue, maxQueuePerKey } = this.options;
    const waiting = this.#queues.get(key)?.length ?? 0;
    if (waiting >= maxQueuePerKey) {
      // A per-key bound as large as the whole queue is no bound of its own: the queue is full.
      return Promise.reject(new BulkheadRejectedError(maxQueuePerKey < maxQueue ? 'key-full' : 'full', key));
    }
    if (this.#queued >= maxQueue && !this.#displaceFor(waiting)) {
      return Promise.reject(new BulkheadRejectedError('full', key));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { key, resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        waiter.onAbort = () => this.#abandon(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      const queue = this.#queues.get(key);
      if (queue === undefined) this.#queues.set(key, [waiter]);
      else queue.push(waiter);
      this.#queued++;
    });
  }

  #release(): Release {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#handOver();
    };
  }

  /** Gives a freed slot to the next key's oldest waiter, or frees it. */
  #handOver(): void {
    const next = this.#queues.entries().next();
    if (next.done === true) {
      this.#inFlight--;
      return;
    }
    const [key, queue] = next.value;
    const waiter = queue.shift() as Waiter;
    if (queue.length === 0) this.#queues.delete(key);
    else if (this.#queues.size > 1) {
      this.#queues.delete(key); // its turn is over: to the back
      this.#queues.set(key, queue);
    }
    this.#queued--;
    this.#unlisten(waiter);
    waiter.resolve(this.#release());
  }

  /**
   * Makes room in a full queue for a caller whose key has `waiting` callers: refuses the newest
   * caller of the longest queue when that queue is at least two longer. False when none is.
   */
  #displaceFor(waiting: number): boolean {
    let longest: Waiter[] | undefined;
    for (const queue of this.#queues.values()) if (queue.length > (longest?.length ?? 0)) longest = queue;
    if (longest === undefined || longest.length < waiting + 2) return false;
    const displaced = longest.pop() as Waiter;
    this.#queued--;
    this.#unlisten(displaced);
    displaced.reject(new BulkheadRejectedError('displaced', displaced.key));
    return true;
  }

  /** A waiter whose signal aborted leaves its queue. */
  #abandon(waiter: Waiter): void {
    const queue = this.#queues.get(waiter.key);
    const i = queue?.indexOf(waiter) ?? -1;
    if (queue === undefined || i < 0) return;
    queue.splice(i, 1);
    if (queue.length === 0) this.#queues.delete(waiter.key);
    this.#queued--;
    waiter.reject(waiter.signal?.reason);
  }

  #unlisten(waiter: Waiter): void {
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }
}

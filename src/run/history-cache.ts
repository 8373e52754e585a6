/**
 * Recent messages of recently used threads, so that a run on a thread does not re-read and
 * re-parse its history from the store. Bounded in threads (least recently used leave first) and
 * in messages per thread (the history limit). It stays true without locks or invalidation
 * messages because the store numbers messages: an append is cached only when its first `seq`
 * follows the cached last one exactly; any gap (another process wrote to the thread) drops the
 * entry, and the next run reads the store again.
 */
import type { MessageRecord } from '../store/ports.ts';

/** Bounds of the cache. */
export interface ThreadHistoryCacheOptions {
  /** Threads kept at most. */
  maxThreads: number;
  /** Newest messages kept per thread (the runs' history limit). */
  maxMessages: number;
}

/** The recent history of threads, in `seq` order. */
export class ThreadHistoryCache {
  readonly #threads = new Map<string, MessageRecord[]>();
  readonly #options: ThreadHistoryCacheOptions;

  constructor(options: ThreadHistoryCacheOptions) {
    this.#options = options;
  }

  /** Threads cached. */
  get size(): number {
    return this.#threads.size;
  }

  /** The cached history, when its last message is `lastSeq` (so nothing is missing). */
  get(threadId: string, lastSeq: number): MessageRecord[] | undefined {
    const cached = this.#threads.get(threadId);
    if (cached === undefined || (cached.at(-1)?.seq ?? 0) !== lastSeq) return undefined;
    this.#touch(threadId, cached);
    return cached.slice();
  }

  /** Caches a history just read from the store (its newest messages, in order). */
  set(threadId: string, messages: readonly MessageRecord[]): void {
    this.#touch(threadId, messages.slice(-this.#options.maxMessages));
  }

  /** Records messages just committed to a thread; keeps the entry only if they continue it exactly. */
  appended(threadId: string, messages: readonly MessageRecord[]): void {
    const first = messages[0];
    const cached = this.#threads.get(threadId);
    if (first === undefined || cached === undefined) return;
    if (first.seq !== (cached.at(-1)?.seq ?? 0) + 1) {
      this.#threads.delete(threadId);
      return;
    }
    cached.push(...messages);
    if (cached.length > this.#options.maxMessages)
      cached.splice(0, cached.length - this.#options.maxMessages);
  }

  /** Forgets a thread (deleted, expired). */
  delete(threadId: string): void {
    this.#threads.delete(threadId);
  }

  #touch(threadId: string, messages: MessageRecord[]): void {
    this.#threads.delete(threadId); // re-insert: Map order is the LRU order
    this.#threads.set(threadId, messages);
    if (this.#threads.size > this.#options.maxThreads) {
      const oldest = this.#threads.keys().next().value;
      if (oldest !== undefined) this.#threads.delete(oldest);
    }
  }
}

/**
 * Recent messages of recently used threads, so that a run on a thread does not re-read and
 * re-parse its history from the store. Bounded in threads (least recently used leave first) and
 * in messages per thread (the history limit). It stays true without locks or invalidation
 * messages because the store numbers messages: an append is cached only when its first `seq`
 * follows the cached last one exactly; any gap (another process wrote to the thread) drops the
 * entry, and the next run reads the store again.
 */
import { OldestKey } from '../core/oldest-key.ts';
import type { MessageRecord } from '../store/ports.ts';

/** Bounds of the cache. */
export interface ThreadHistoryCacheOptions {
  /** Threads kept at most. */
  maxThreads: number;
  /** Newest messages kept per thread (the runs' history limit). */
  maxMessages: number;
}

/** A cached thread: its project, and its newest messages in `seq` order. */
interface Entry {
  project: string;
  messages: MessageRecord[];
  /**
   * The store's write epoch (RunStore.writeEpoch) taken before the entry was last checked against
   * the store: while the store's epoch still equals it, nobody else wrote, and the entry is current.
   */
  epoch: number | undefined;
}

/** The recent history of threads, in `seq` order. */
export class ThreadHistoryCache {
  readonly #threads = new Map<string, Entry>();
  readonly #oldest = new OldestKey(this.#threads);
  /**
   * The thread used last: the newest key of #threads, or gone from it, so that setting it again
   * puts it last anyway. Using it again moves nothing.
   */
  #newest: string | undefined;
  readonly #options: ThreadHistoryCacheOptions;
  /** See {@link epoch}. */
  #epoch: number | undefined;

  constructor(options: ThreadHistoryCacheOptions) {
    this.#options = options;
  }

  /** Threads cached. */
  get size(): number {
    return this.#threads.size;
  }

  /**
   * The cached history, when its last message is `lastSeq` (so nothing is missing). `epoch`: the
   * store's write epoch taken before `lastSeq` was read from the store, which this check renews.
   */
  get(threadId: string, lastSeq: number, epoch?: number): MessageRecord[] | undefined {
    const cached = this.#threads.get(threadId);
    if (epoch !== undefined) this.#epoch = epoch;
    if (cached === undefined || (cached.messages.at(-1)?.seq ?? 0) !== lastSeq) return undefined;
    if (epoch !== undefined) cached.epoch = epoch;
    this.#touch(threadId, cached);
    return cached.messages.slice();
  }

  /**
   * The cached history of a thread of `project`, without asking the store, when the store's write
   * epoch is still the one the entry was checked at: nobody else wrote since, and this process's
   * own writes were added to it. The thread then exists, as far as the store knows. Not a copy:
   * the cache's own array, which its next write to the thread changes; copy what is kept longer.
   */
  known(project: string, threadId: string, epoch: number | undefined): readonly MessageRecord[] | undefined {
    if (epoch !== undefined) this.#epoch = epoch;
    const cached = this.#threads.get(threadId);
    if (cached === undefined || cached.project !== project) return undefined;
    if (epoch === undefined || cached.epoch !== epoch) return undefined;
    this.#touch(threadId, cached);
    return cached.messages;
  }

  /**
   * Caches a history just read from the store (its newest messages, in order), or a new thread's;
   * `epoch`, the store's write epoch taken before the read or the creation.
   */
  set(project: string, threadId: string, messages: readonly MessageRecord[], epoch?: number): void {
    if (epoch !== undefined) this.#epoch = epoch;
    this.#touch(threadId, { project, messages: messages.slice(-this.#options.maxMessages), epoch });
  }

  /**
   * The newest store write epoch handed to the cache (undefined before the first): a reading
   * taken before anything that happens now, so never newer than the store's epoch.
   */
  get epoch(): number | undefined {
    return this.#epoch;
  }

  /**
   * Caches a thread this process just created, empty; `epoch`, a store write epoch read before
   * the creation ({@link epoch} will do: an older one costs its first run a read, it never passes
   * off another process's write as none).
   */
  created(project: string, threadId: string, epoch: number | undefined): void {
    this.#touch(threadId, { project, messages: [], epoch });
  }

  /** Records messages just committed to a thread; keeps the entry only if they continue it exactly. */
  appended(threadId: string, messages: readonly MessageRecord[]): void {
    const first = messages[0];
    const entry = this.#threads.get(threadId);
    if (first === undefined || entry === undefined) return;
    const cached = entry.messages;
    if (first.seq !== (cached.at(-1)?.seq ?? 0) + 1) {
      this.#threads.delete(threadId);
      return;
    }
    // A new thread's first messages: an array of their size, where a push would grow the empty one
    // to 16 places.
    if (cached.length === 0) {
      entry.messages = messages.slice(-this.#options.maxMessages);
      return;
    }
    cached.push(...messages);
    if (cached.length > this.#options.maxMessages)
      cached.splice(0, cached.length - this.#options.maxMessages);
  }

  /** Forgets the threads of a deleted project. */
  forgetProject(project: string): void {
    for (const [threadId, entry] of this.#threads)
      if (entry.project === project) this.#threads.delete(threadId);
  }

  /** Forgets a thread (deleted, expired). */
  delete(threadId: string): void {
    this.#threads.delete(threadId);
  }

  #touch(threadId: string, entry: Entry): void {
    if (threadId !== this.#newest) {
      this.#threads.delete(threadId); // re-insert: Map order is the LRU order
      this.#newest = threadId;
    }
    this.#threads.set(threadId, entry);
    if (this.#threads.size > this.#options.maxThreads) {
      this.#oldest.evict();
    }
  }
}

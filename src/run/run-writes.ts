/**
 * A run's writes to the store, in order. The first creates the run's record: at once for a run its
 * caller was told was accepted (background, a cluster's runs), or, for a wait or stream run on one
 * node, with its first finished step or its terminal record, together with its input messages. So
 * a wait run on a new thread costs the store one transaction, and a crash before that write
 * leaves nothing of the run, as if it never happened (docs/runs.md, "What a crash may cost").
 * A run that keeps nothing (`store: false`) is written without its input, output and metadata.
 */
import type { MessageRecord, NewMessage, NewThread, RunRecord, RunStore } from '../store/ports.ts';
import type { ThreadHistoryCache } from './history-cache.ts';

export class RunWrites {
  readonly #store: RunStore;
  readonly #history: ThreadHistoryCache;
  readonly #keep: boolean;
  #created: boolean;
  /** The new thread the run's first write creates, until it is written. */
  #thread: NewThread | undefined;
  /** The run's input messages, once it started, until they are written. */
  #inputs: readonly NewMessage[] = [];
  /** The thread lease's fencing token (cluster), carried by every write once the run holds its thread. */
  fence: number | undefined;

  constructor(
    deps: { store: RunStore; history: ThreadHistoryCache },
    options: {
      /** Whether the store holds the run's record already. */
      created: boolean;
      /** False for a run that keeps nothing. */
      keep: boolean;
      /** A new thread, created with the run's record (the run's `thread` option). */
      thread?: NewThread | undefined;
    },
  ) {
    this.#store = deps.store;
    this.#history = deps.history;
    this.#created = options.created;
    this.#keep = options.keep;
    this.#thread = options.thread;
  }

  /** Whether the run's thread is new and not yet written: its history is only what the run brings. */
  get newThread(): boolean {
    return this.#thread !== undefined;
  }

  /** Whether the store holds the run's record. */
  get created(): boolean {
    return this.#created;
  }

  /** The run started with these input messages: they are written with its next write. */
  started(inputs: readonly NewMessage[]): void {
    this.#inputs = inputs;
  }

  /**
   * Writes the run's record, and appends `messages` (preceded by its input, when not written yet)
   * to its thread, in one transaction; keeps the thread's cached history current. A failed write
   * leaves the record to be created by the next one, and forgets the cached history (a write
   * whose outcome is unknown may have landed).
   */
  commit(run: RunRecord, messages: readonly NewMessage[]): Promise<MessageRecord[]> {
    // Not async: one `then` where an async frame and its await cost more per write.
    const record = this.#keep ? run : { ...run, input: '', output: null, metadata: {} };
    const all = this.#inputs.length === 0 ? messages : [...this.#inputs, ...messages];
    let writing: Promise<MessageRecord[] | { messages: MessageRecord[] }>;
    try {
      writing = this.#created
        ? this.#store.commitStep(record, all, this.fence)
        : this.#store.createRun(record, all, this.fence, this.#thread);
    } catch (err) {
      writing = Promise.reject(err);
    }
    const threadId = run.threadId;
    return writing.then(
      (written) => this.#written(threadId, Array.isArray(written) ? written : written.messages),
      (err: unknown) => {
        if (threadId !== null) this.#history.delete(threadId);
        throw err;
      },
    );
  }

  #written(threadId: string | null, committed: MessageRecord[]): MessageRecord[] {
    this.#created = true;
    this.#thread = undefined;
    this.#inputs = [];
    if (threadId !== null && committed.length > 0) this.#history.appended(threadId, committed);
    return committed;
  }
}

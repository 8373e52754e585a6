/**
 * Group commit: writes issued in one turn of the event loop run together in one transaction,
 * each isolated (the caller's `transaction` gives each its savepoint or statement rollback), and
 * every write's promise settles only after the shared commit. With a synchronous driver such as
 * better-sqlite3, a commit's fixed cost (lock, WAL append, checkpoint share) then is paid once per
 * batch instead of once per write, while "resolved" still means "committed".
 */

interface PendingWrite {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Batches writes into shared transactions. */
export class GroupCommit {
  /** Writes waiting for the next flush; bounded by the writers in flight. */
  readonly #queue: PendingWrite[] = [];
  readonly #transaction: (body: () => void) => void;
  readonly #wrapError: (err: unknown) => unknown;
  #scheduled = false;

  /**
   * @param transaction runs `body` in one transaction and commits it (throws when the commit fails)
   * @param wrapError turns a driver error into the error callers see
   */
  constructor(transaction: (body: () => void) => void, wrapError: (err: unknown) => unknown) {
    this.#transaction = transaction;
    this.#wrapError = wrapError;
  }

  /** Queues `fn` for the next shared transaction; resolves with its result after the commit. */
  write<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits the queued writes now (also called before closing the database). */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#queue.splice(0);
    if (batch.length === 0) return;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.#transaction(() => {
        for (const write of batch) {
          try {
            outcomes.push({ ok: true, value: write.fn() });
          } catch (err) {
            outcomes.push({ ok: false, value: err });
          }
        }
      });
    } catch (err) {
      const error = this.#wrapError(err); // the shared commit failed: nothing was written
      for (const write of batch) write.reject(error);
      return;
    }
    batch.forEach((write, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(this.#wrapError(outcome.value));
    });
  }
}

/**
 * Group commit: writes issued in one turn of the event loop run together in one transaction,
 * each isolated, and every write's promise settles only after the shared commit. With a
 * synchronous driver such as better-sqlite3, a commit's fixed cost (lock, WAL append) then is
 * paid once per batch instead of once per write, while "resolved" still means "committed".
 */

/** How the group commit drives the database's transactions. */
export interface GroupTransactions {
  /**
   * Runs `body` in one transaction, commits it and returns what `body` returned; throws, having
   * rolled back, when either fails.
   */
  readonly transaction: (body: () => unknown) => unknown;
  /** Inside `transaction`: runs `body` so that a throw undoes its changes alone (a savepoint). */
  readonly isolate: (body: () => unknown) => unknown;
}

interface PendingWrite {
  fn: () => unknown;
  /** Whether `fn` may leave changes behind when it throws (more than one statement). */
  partial: boolean;
  /** Its caller's promise, settled after the commit. */
  settle: PromiseWithResolvers<unknown>;
}

/** Batches writes into shared transactions. */
export class GroupCommit {
  /** Writes waiting for the next flush; bounded by the writers in flight. */
  readonly #queue: PendingWrite[] = [];
  readonly #tx: GroupTransactions;
  readonly #wrapError: (err: unknown) => unknown;
  #scheduled = false;
  /** flush(), bound once for setImmediate. */
  readonly #flush = (): void => this.flush();

  /** @param wrapError turns a driver error into the error callers see */
  constructor(transactions: GroupTransactions, wrapError: (err: unknown) => unknown) {
    this.#tx = transactions;
    this.#wrapError = wrapError;
  }

  /**
   * Queues `fn` for the next shared transaction; resolves with its result after the commit.
   * `partial` says that `fn` runs several statements, so a throw may leave some of them done:
   * when a write of its batch fails, it then runs in a savepoint. A single statement needs none,
   * as SQLite undoes a failed statement alone. `fn` may run twice (see #flushMany): it must
   * change nothing outside the database that a second run would not repeat alike.
   */
  write<T>(fn: () => T, partial: boolean): Promise<T> {
    const settle = Promise.withResolvers<unknown>(); // no executor closure, unlike new Promise
    this.#queue.push({ fn, partial, settle });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return settle.promise as Promise<T>;
  }

  /** Commits the queued writes now (also called before closing the database). */
  flush(): void {
    this.#scheduled = false;
    // A write alone is popped: splice(0) would make an array and leave the queue's storage to be
    // grown again by the next write (~200 bytes a run at a time).
    if (this.#queue.length === 1) this.#flushOne(this.#queue.pop() as PendingWrite);
    else if (this.#queue.length > 1) this.#flushMany(this.#queue.splice(0));
  }

  /**
   * A write alone needs no savepoint: its failure rolls back the whole transaction, which holds
   * nothing else. This is the common case of a run at a time, and a savepoint costs two statements.
   */
  #flushOne(write: PendingWrite): void {
    let value: unknown;
    try {
      value = this.#tx.transaction(write.fn); // no closure per write
    } catch (err) {
      write.settle.reject(this.#wrapError(err));
      return;
    }
    write.settle.resolve(value);
  }

  /**
   * Runs the batch in one transaction without savepoints (SQLite's cost ~14 µs a write here), for
   * writes seldom fail. When one does, its changes may be half done, so the transaction is rolled
   * back and the batch run again, each write that may fail half-way in a savepoint: the others
   * commit, the failing one is refused alone. The writes are made to be run again: each builds its
   * rows from what its caller passed and returns what it wrote.
   */
  #flushMany(batch: PendingWrite[]): void {
    const values: unknown[] = [];
    let failed = false;
    try {
      this.#tx.transaction(() => {
        for (const write of batch) {
          try {
            values.push(write.fn());
          } catch (err) {
            failed = true;
            throw err;
          }
        }
      });
    } catch (err) {
      if (failed) this.#flushIsolated(batch);
      else this.#rejectAll(batch, err); // the shared commit failed: nothing was written
      return;
    }
    batch.forEach((write, i) => write.settle.resolve(values[i]));
  }

  /** The batch again, with a write that may fail half-way in a savepoint of its own. */
  #flushIsolated(batch: PendingWrite[]): void {
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.#tx.transaction(() => {
        for (const write of batch) {
          try {
            outcomes.push({ ok: true, value: write.partial ? this.#tx.isolate(write.fn) : write.fn() });
          } catch (err) {
            outcomes.push({ ok: false, value: err });
          }
        }
      });
    } catch (err) {
      this.#rejectAll(batch, err);
      return;
    }
    batch.forEach((write, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      if (outcome.ok) write.settle.resolve(outcome.value);
      else write.settle.reject(this.#wrapError(outcome.value));
    });
  }

  #rejectAll(batch: readonly PendingWrite[], err: unknown): void {
    const error = this.#wrapError(err);
    for (const write of batch) write.settle.reject(error);
  }
}

/**
 * One store's use of the shared database (as sqlite-connection.ts is for SQLite): calls refused
 * once the store is closed, and driver failures turned into the codes callers act on
 * (`STORE_UNAVAILABLE`, else `STORE_FAILED` naming the store).
 */
import { AgentPoolError } from '../../core/errors.ts';
import type { PostgresDatabase, QueryResult, Transaction } from './database.ts';
import { toStoreError } from './errors.ts';

/** A store's handle on the shared PostgreSQL database. */
export class StoreConnection {
  readonly db: PostgresDatabase;
  /** What the store is called in errors, e.g. "run store". */
  readonly #what: string;
  #closed = false;

  constructor(db: PostgresDatabase, what: string) {
    this.db = db;
    this.#what = what;
    db.retain();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** One statement's rows. */
  async rows<R>(text: string, values: readonly unknown[] = [], name?: string): Promise<R[]> {
    return (await this.result<R>(text, values, name)).rows;
  }

  /** One statement's result. */
  async result<R = Record<string, unknown>>(
    text: string,
    values: readonly unknown[] = [],
    name?: string,
  ): Promise<QueryResult<R>> {
    return this.guard(() => this.db.query<R>(text, values, name));
  }

  /** A transaction (see PostgresDatabase.transaction). */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.guard(() => this.db.transaction(fn));
  }

  /** Runs `fn` while the store is open; `STORE_FAILED` once closed, driver errors mapped. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', `PostgreSQL ${this.#what} is closed`);
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(err, `PostgreSQL ${this.#what}`);
    }
  }

  /** Gives the store's share of the database back; closing twice is harmless. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.db.release();
  }
}

/**
 * One open store database and what every SQLite store does with it: refuse calls once closed,
 * and turn driver failures into `STORE_FAILED` naming the store and the file.
 */
import type Database from 'better-sqlite3';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { openStoreDatabase } from './sqlite-schema.ts';

/** A store's connection to its SQLite file. */
export class SqliteConnection {
  readonly path: string;
  readonly db: Database.Database;
  /** What the store is called in errors, e.g. "run store". */
  readonly #what: string;
  #closed = false;

  constructor(path: string, busyTimeoutMs: number, what: string) {
    this.path = path;
    this.#what = what;
    this.db = openStoreDatabase(path, busyTimeoutMs, what);
  }

  /** Prepares what the store needs on the new connection; the file is closed again if that throws. */
  prepare<T>(fn: (db: Database.Database) => T): T {
    try {
      return fn(this.db);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `fn` on the open database; `STORE_FAILED` when closed or when the driver fails. */
  guard<T>(fn: () => T): T {
    if (this.#closed) {
      throw new AgentPoolError('STORE_FAILED', `${this.#what} "${this.path}" is closed`, { path: this.path });
    }
    try {
      return fn();
    } catch (err) {
      throw this.storeError(err);
    }
  }

  /** A coded error passes through; anything else becomes `STORE_FAILED`. */
  storeError(err: unknown): unknown {
    if (isAgentPoolError(err)) return err;
    const message = `${this.#what} "${this.path}" failed: ${String(err)}`;
    return new AgentPoolError('STORE_FAILED', message, { path: this.path }, { cause: err });
  }

  /** Closes the file; further calls fail. Closing twice is harmless. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }
}

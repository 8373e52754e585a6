/**
 * The SQLite file as the stores use it: {@link SqliteDatabase}, one connection that several stores
 * may share, and {@link SqliteConnection}, a store's handle on it that refuses calls once the store
 * is closed and turns driver failures into `STORE_FAILED` naming the store and the file.
 */
import type Database from 'better-sqlite3';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { enumOption, intOption } from '../core/options.ts';
import { openStoreDatabase } from './sqlite-schema.ts';

/** How a connection locks its file: see {@link SqliteDatabaseOptions.lockingMode}. */
export type SqliteLockingMode = 'normal' | 'exclusive';

/** Options of {@link SqliteDatabase.open}. */
export interface SqliteDatabaseOptions {
  /**
   * How long a write waits for another connection's lock before failing, ms.
   * @default 5000
   */
  readonly busyTimeoutMs?: number | undefined;
  /**
   * `'exclusive'` holds the file's lock from the first statement until the database closes, so
   * a transaction takes no lock and reads no shared WAL index: a run cost ~11 % less here (median,
   * one at a time). It forbids every other connection to the file: another process (`agentpool
   * apply`, a second server, the sqlite3 shell), and the run store's checkpointer thread, so SQLite
   * checkpoints inside COMMIT again (p99.9 ×4). For a server that owns its file.
   * @default 'normal'
   */
  readonly lockingMode?: SqliteLockingMode | undefined;
}

/** Where a SQLite store keeps its data: a file it opens itself, or a database stores share. */
export type SqliteStoreSource =
  | {
      /** A database file (parent directories are created), or `':memory:'`. */
      readonly path: string;
      readonly database?: undefined;
    }
  | {
      /** An open database, shared with other stores; it closes with the last of them. */
      readonly database: SqliteDatabase;
      readonly path?: undefined;
    };

/**
 * One connection to a store file (opened, configured and migrated), shared by the stores handed
 * it and closed with the last of them. Stores opened on a path each open their own.
 */
export class SqliteDatabase {
  readonly path: string;
  /** @internal (better-sqlite3's types are not the package's: they stay out of its declarations) */
  readonly db: Database.Database;
  readonly lockingMode: SqliteLockingMode;
  /**
   * Definition revisions taken through this connection (each agent store write that stamps one):
   * with {@link dataVersion}, it tells a change feed whether the revision counter can have moved.
   */
  revisionsTaken = 0;
  /** The opener and each store using it; the connection closes when this reaches 0. */
  #users = 1;
  readonly #dataVersion: Database.Statement<[], number>;
  /** {@link dataVersion}'s reading, until the current run of JavaScript ends. */
  #version: number | undefined;
  readonly #forgetVersion = (): void => {
    this.#version = undefined;
  };

  private constructor(path: string, db: Database.Database, lockingMode: SqliteLockingMode) {
    this.path = path;
    this.db = db;
    this.lockingMode = lockingMode;
    this.#dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  }

  /**
   * SQLite's `data_version`: it changes when another connection (another process, another
   * database object on the file) commits, and never for this connection's own writes. Read once
   * per run of JavaScript (until the microtasks queued meanwhile have run): nothing of this
   * process can change it within one, and every request handled within one arrived before the
   * reading, so it is as current for all of them as a reading of their own. A file opened
   * exclusively has no other connection: 0, without a statement.
   */
  dataVersion(): number {
    if (this.lockingMode === 'exclusive') return 0;
    if (this.#version === undefined) {
      this.#version = this.#dataVersion.get() as number;
      queueMicrotask(this.#forgetVersion);
    }
    return this.#version;
  }

  /**
   * Opens (creating if needed) and migrates a store file. The caller is its first user: it hands
   * the database to the stores, then calls {@link release}; the stores release it as they close.
   */
  static open(path: string, options: SqliteDatabaseOptions = {}, what = 'database'): SqliteDatabase {
    const busyTimeoutMs = intOption('busyTimeoutMs', options.busyTimeoutMs, 5000, 0, 0x7fffffff);
    const lockingMode = enumOption('lockingMode', options.lockingMode, ['normal', 'exclusive'], 'normal');
    return new SqliteDatabase(path, openStoreDatabase(path, busyTimeoutMs, what, lockingMode), lockingMode);
  }

  /** One more user, who will call {@link release}. */
  use(): this {
    if (this.#users === 0) {
      throw new AgentPoolError('STORE_FAILED', `database "${this.path}" is closed`, { path: this.path });
    }
    this.#users++;
    return this;
  }

  /** A user is done; the last one closes the connection. */
  release(): void {
    if (this.#users > 0 && --this.#users === 0) this.db.close();
  }
}

/** A store's handle on its database. @internal */
export class SqliteConnection {
  readonly path: string;
  readonly db: Database.Database;
  readonly database: SqliteDatabase;
  /** What the store is called in errors, e.g. "run store". */
  readonly #what: string;
  #closed = false;

  /** Opens the file of `source.path` for this store alone, or shares `source.database`. */
  constructor(source: SqliteStoreSource, busyTimeoutMs: number, what: string) {
    this.#what = what;
    this.database =
      source.database === undefined
        ? SqliteDatabase.open(source.path, { busyTimeoutMs }, what)
        : source.database.use();
    this.path = this.database.path;
    this.db = this.database.db;
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
    this.assertOpen();
    try {
      return fn();
    } catch (err) {
      throw this.storeError(err);
    }
  }

  /** `STORE_FAILED` once closed. */
  assertOpen(): void {
    if (this.#closed) {
      throw new AgentPoolError('STORE_FAILED', `${this.#what} "${this.path}" is closed`, { path: this.path });
    }
  }

  /** A coded error passes through; anything else becomes `STORE_FAILED`. */
  storeError(err: unknown): unknown {
    if (isAgentPoolError(err)) return err;
    const message = `${this.#what} "${this.path}" failed: ${String(err)}`;
    return new AgentPoolError('STORE_FAILED', message, { path: this.path }, { cause: err });
  }

  /** Closes this store's use of the file; further calls fail. Closing twice is harmless. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.database.release();
  }
}

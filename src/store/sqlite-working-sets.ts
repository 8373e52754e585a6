/**
 * The SQLite WorkingSetStore: each node's working-set checkpoint as one row of `working_sets`, in
 * the file (WAL) the other stores use. A save is one upsert, so a crash mid-save leaves the
 * previous checkpoint whole.
 */
import type Database from 'better-sqlite3';
import { intOption } from '../core/options.ts';
import { SqliteConnection, type SqliteStoreSource } from './sqlite-connection.ts';
import {
  checkWorkingSetNode,
  decodeWorkingSet,
  encodeWorkingSet,
  type WorkingSetCheckpoint,
  type WorkingSetStore,
} from './working-set-ports.ts';

/** Options of {@link SqliteWorkingSetStore}: its file (`path`) or a database shared with the other stores. */
export type SqliteWorkingSetStoreOptions = SqliteStoreSource & {
  /** How long a write waits for another connection's lock, ms (with `path`). @default 5000 */
  readonly busyTimeoutMs?: number | undefined;
};

interface WorkingSetRow {
  node: string;
  saved_at: number;
  data: string;
}

/** Working-set checkpoints in one SQLite file, through better-sqlite3. */
export class SqliteWorkingSetStore implements WorkingSetStore {
  readonly #conn: SqliteConnection;
  readonly #save: Database.Statement<[string, number, string]>;
  readonly #load: Database.Statement<[string], WorkingSetRow>;
  readonly #delete: Database.Statement<[string]>;

  constructor(options: SqliteWorkingSetStoreOptions) {
    const busyTimeoutMs = intOption('busyTimeoutMs', options.busyTimeoutMs, 5000, 0, 0x7fffffff);
    this.#conn = new SqliteConnection(options, busyTimeoutMs, 'working-set store');
    [this.#save, this.#load, this.#delete] = this.#conn.prepare(
      (db) =>
        [
          db.prepare<[string, number, string]>(
            `INSERT INTO working_sets (node, saved_at, data) VALUES (?, ?, ?)
             ON CONFLICT (node) DO UPDATE SET saved_at = excluded.saved_at, data = excluded.data`,
          ),
          db.prepare<[string], WorkingSetRow>('SELECT node, saved_at, data FROM working_sets WHERE node = ?'),
          db.prepare<[string]>('DELETE FROM working_sets WHERE node = ?'),
        ] as const,
    );
  }

  async saveWorkingSet(checkpoint: WorkingSetCheckpoint): Promise<void> {
    const data = encodeWorkingSet(checkpoint);
    this.#conn.guard(() => this.#save.run(checkpoint.node, checkpoint.savedAt, data));
  }

  async loadWorkingSet(node: string): Promise<WorkingSetCheckpoint | undefined> {
    checkWorkingSetNode(node);
    const row = this.#conn.guard(() => this.#load.get(node));
    return row === undefined ? undefined : decodeWorkingSet(row.node, row.saved_at, row.data);
  }

  async deleteWorkingSet(node: string): Promise<boolean> {
    checkWorkingSetNode(node);
    return this.#conn.guard(() => this.#delete.run(node).changes > 0);
  }

  async close(): Promise<void> {
    this.#conn.close();
  }
}

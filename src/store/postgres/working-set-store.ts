/**
 * The PostgreSQL WorkingSetStore: each node's working-set checkpoint as one row of
 * `working_sets`, on the database the other stores share; a save is one upsert, so a node that
 * dies mid-save leaves its previous checkpoint whole. Nodes write only their own row.
 */
import { StoreConnection } from './connection.ts';
import type { PostgresDatabase } from './database.ts';
import {
  checkWorkingSetNode,
  decodeWorkingSet,
  encodeWorkingSet,
  type WorkingSetCheckpoint,
  type WorkingSetStore,
} from '../working-set-ports.ts';

/** Working-set checkpoints on a PostgreSQL database shared with the other stores. */
export class PostgresWorkingSetStore implements WorkingSetStore {
  readonly #conn: StoreConnection;

  constructor(db: PostgresDatabase) {
    this.#conn = new StoreConnection(db, 'working-set store');
  }

  async saveWorkingSet(checkpoint: WorkingSetCheckpoint): Promise<void> {
    const data = encodeWorkingSet(checkpoint);
    await this.#conn.result(
      `INSERT INTO working_sets (node, saved_at, data) VALUES ($1, $2, $3)
       ON CONFLICT (node) DO UPDATE SET saved_at = excluded.saved_at, data = excluded.data`,
      [checkpoint.node, checkpoint.savedAt, data],
    );
  }

  async loadWorkingSet(node: string): Promise<WorkingSetCheckpoint | undefined> {
    checkWorkingSetNode(node);
    const rows = await this.#conn.rows<{ saved_at: string | number; data: string }>(
      'SELECT saved_at, data FROM working_sets WHERE node = $1',
      [node],
    );
    const row = rows[0];
    return row === undefined ? undefined : decodeWorkingSet(node, Number(row.saved_at), row.data);
  }

  async deleteWorkingSet(node: string): Promise<boolean> {
    checkWorkingSetNode(node);
    const result = await this.#conn.result('DELETE FROM working_sets WHERE node = $1', [node]);
    return (result.rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }
}

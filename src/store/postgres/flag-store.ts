/**
 * The PostgreSQL FlagStore: feature flags in `flags` and their audit trail in `flag_history`, on
 * the database the other stores share. Writes are rare (an operator's), so each takes a
 * transaction-scoped advisory lock: writes of every node are serialised, a change's id is the
 * previous one plus one, and ids commit in order, which is what lets a node poll
 * {@link PostgresFlagStore.lastFlagChange} instead of reading every flag each time.
 */
import type { NamedFlag } from '../../governance/flags.ts';
import {
  checkFlagRevision,
  decodeFlagHistoryCursor,
  encodeFlag,
  encodeFlagHistoryCursor,
  flagChangeFromRow,
  flagFromRow,
  type FlagChangeRow,
  type FlagRow,
  type FlagChange,
  type FlagStore,
  type FlagWrite,
  type StoredFlag,
} from '../flag-ports.ts';
import { keysetPage, pageLimit } from '../paging.ts';
import type { Page } from '../ports.ts';
import { StoreConnection } from './connection.ts';
import type { PostgresDatabase, Transaction } from './database.ts';

/** Locks flag writes of this schema until the transaction ends; answers the flag's row, if any. */
async function lockedRow(tx: Transaction, name: string): Promise<FlagRow | undefined> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('agentpool:flags:' || current_schema()))");
  const { rows } = await tx.query<FlagRow>('SELECT * FROM flags WHERE name = $1', [name]);
  return rows[0];
}

async function append(
  tx: Transaction,
  name: string,
  action: FlagChange['action'],
  before: string | null,
  after: string | null,
  write: FlagWrite,
): Promise<FlagChange> {
  const { rows } = await tx.query<FlagChangeRow>(
    `INSERT INTO flag_history (id, name, action, before, after, actor, at)
     SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6 FROM flag_history RETURNING *`,
    [name, action, before, after, write.actor, write.at],
  );
  return flagChangeFromRow(rows[0] as FlagChangeRow);
}

/** Feature flags on a PostgreSQL database shared with the other stores. */
export class PostgresFlagStore implements FlagStore {
  readonly #conn: StoreConnection;

  constructor(db: PostgresDatabase) {
    this.#conn = new StoreConnection(db, 'flag store');
  }

  async listFlags(): Promise<StoredFlag[]> {
    return (await this.#conn.rows<FlagRow>('SELECT * FROM flags ORDER BY name')).map(flagFromRow);
  }

  async getFlag(name: string): Promise<StoredFlag | undefined> {
    const rows = await this.#conn.rows<FlagRow>('SELECT * FROM flags WHERE name = $1', [name]);
    return rows[0] === undefined ? undefined : flagFromRow(rows[0]);
  }

  async putFlag(
    name: string,
    definition: NamedFlag,
    write: FlagWrite,
  ): Promise<{ flag: StoredFlag; change: FlagChange }> {
    return this.#conn.transaction(async (tx) => {
      const before = await lockedRow(tx, name);
      checkFlagRevision(name, write, before === undefined ? 0 : Number(before.revision));
      const data = encodeFlag(definition);
      const change = await append(tx, name, 'put', before?.data ?? null, data, write);
      await tx.query(
        `INSERT INTO flags (name, data, revision, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET data = excluded.data, revision = excluded.revision,
           updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
        [name, data, change.id, write.at, write.actor],
      );
      const flag = flagFromRow({
        name,
        data,
        revision: change.id,
        updated_at: write.at,
        updated_by: write.actor,
      });
      return { flag, change };
    });
  }

  async deleteFlag(name: string, write: FlagWrite): Promise<FlagChange | undefined> {
    return this.#conn.transaction(async (tx) => {
      const before = await lockedRow(tx, name);
      checkFlagRevision(name, write, before === undefined ? 0 : Number(before.revision));
      if (before === undefined) return undefined;
      await tx.query('DELETE FROM flags WHERE name = $1', [name]);
      return append(tx, name, 'delete', before.data, null, write);
    });
  }

  async flagHistory(
    name: string,
    options: { limit: number; cursor?: string | undefined },
  ): Promise<Page<FlagChange>> {
    const limit = pageLimit(options.limit);
    const below = decodeFlagHistoryCursor(options.cursor);
    const rows = await this.#conn.rows<FlagChangeRow>(
      'SELECT * FROM flag_history WHERE name = $1 AND id < $2 ORDER BY id DESC LIMIT $3',
      [name, Number.isFinite(below) ? below : Number.MAX_SAFE_INTEGER, limit + 1],
    );
    return keysetPage(rows.map(flagChangeFromRow), limit, (last) => encodeFlagHistoryCursor(last.id));
  }

  async lastFlagChange(): Promise<number> {
    const rows = await this.#conn.rows<{ id: string | null }>('SELECT max(id) AS id FROM flag_history');
    return Number(rows[0]?.id ?? 0);
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }
}

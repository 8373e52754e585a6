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
  decodeFlag,
  decodeFlagHistoryCursor,
  decodeOptionalFlag,
  encodeFlag,
  encodeFlagHistoryCursor,
  type FlagChange,
  type FlagStore,
  type FlagWrite,
  type StoredFlag,
} from '../flag-ports.ts';
import { keysetPage, pageLimit } from '../paging.ts';
import type { Page } from '../ports.ts';
import { StoreConnection } from './connection.ts';
import type { PostgresDatabase, Transaction } from './database.ts';

interface FlagRow {
  name: string;
  data: string;
  revision: string | number;
  updated_at: string | number;
  updated_by: string;
}

interface ChangeRow {
  id: string | number;
  name: string;
  action: 'put' | 'delete';
  before: string | null;
  after: string | null;
  actor: string;
  at: string | number;
}

function toFlag(row: FlagRow): StoredFlag {
  return {
    name: row.name,
    ...decodeFlag(row.data),
    revision: Number(row.revision),
    updatedAt: Number(row.updated_at),
    updatedBy: row.updated_by,
  };
}

function toChange(row: ChangeRow): FlagChange {
  return {
    id: Number(row.id),
    name: row.name,
    action: row.action,
    before: decodeOptionalFlag(row.before),
    after: decodeOptionalFlag(row.after),
    actor: row.actor,
    at: Number(row.at),
  };
}

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
  const { rows } = await tx.query<ChangeRow>(
    `INSERT INTO flag_history (id, name, action, before, after, actor, at)
     SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6 FROM flag_history RETURNING *`,
    [name, action, before, after, write.actor, write.at],
  );
  return toChange(rows[0] as ChangeRow);
}

/** Feature flags on a PostgreSQL database shared with the other stores. */
export class PostgresFlagStore implements FlagStore {
  readonly #conn: StoreConnection;

  constructor(db: PostgresDatabase) {
    this.#conn = new StoreConnection(db, 'flag store');
  }

  async listFlags(): Promise<StoredFlag[]> {
    return (await this.#conn.rows<FlagRow>('SELECT * FROM flags ORDER BY name')).map(toFlag);
  }

  async getFlag(name: string): Promise<StoredFlag | undefined> {
    const rows = await this.#conn.rows<FlagRow>('SELECT * FROM flags WHERE name = $1', [name]);
    return rows[0] === undefined ? undefined : toFlag(rows[0]);
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
      const flag = toFlag({ name, data, revision: change.id, updated_at: write.at, updated_by: write.actor });
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
    const rows = await this.#conn.rows<ChangeRow>(
      'SELECT * FROM flag_history WHERE name = $1 AND id < $2 ORDER BY id DESC LIMIT $3',
      [name, Number.isFinite(below) ? below : Number.MAX_SAFE_INTEGER, limit + 1],
    );
    return keysetPage(rows.map(toChange), limit, (last) => encodeFlagHistoryCursor(last.id));
  }

  async lastFlagChange(): Promise<number> {
    const rows = await this.#conn.rows<{ id: string | null }>('SELECT max(id) AS id FROM flag_history');
    return Number(rows[0]?.id ?? 0);
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }
}

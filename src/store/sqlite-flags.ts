/**
 * The SQLite FlagStore: feature flags in `flags` and their audit trail in `flag_history`, in the
 * file (WAL) the other stores use. A write reads the flag, checks its revision and appends the
 * change in one IMMEDIATE transaction, so two processes on one file cannot interleave them.
 */
import type Database from 'better-sqlite3';
import { intOption } from '../core/options.ts';
import type { NamedFlag } from '../governance/flags.ts';
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
} from './flag-ports.ts';
import { keysetPage, pageLimit } from './paging.ts';
import type { Page } from './ports.ts';
import { SqliteConnection, type SqliteStoreSource } from './sqlite-connection.ts';

/** Options of {@link SqliteFlagStore}: its file (`path`) or a database shared with the other stores. */
export type SqliteFlagStoreOptions = SqliteStoreSource & {
  /** How long a write waits for another connection's lock, ms (with `path`). @default 5000 */
  readonly busyTimeoutMs?: number | undefined;
};

function preparedStatements(db: Database.Database) {
  return {
    list: db.prepare<[], FlagRow>('SELECT * FROM flags ORDER BY name'),
    get: db.prepare<[string], FlagRow>('SELECT * FROM flags WHERE name = ?'),
    upsert: db.prepare<[string, string, number, number, string]>(
      `INSERT INTO flags (name, data, revision, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET data = excluded.data, revision = excluded.revision,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
    ),
    delete: db.prepare<[string]>('DELETE FROM flags WHERE name = ?'),
    append: db.prepare<[string, string, string | null, string | null, string, number], FlagChangeRow>(
      'INSERT INTO flag_history (name, action, before, after, actor, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *',
    ),
    history: db.prepare<[string, number, number], FlagChangeRow>(
      'SELECT * FROM flag_history WHERE name = ? AND id < ? ORDER BY id DESC LIMIT ?',
    ),
    last: db.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM flag_history'),
  };
}

/** Feature flags in one SQLite file, through better-sqlite3. */
export class SqliteFlagStore implements FlagStore {
  readonly #conn: SqliteConnection;
  readonly #sql: ReturnType<typeof preparedStatements>;
  readonly #put: (
    name: string,
    definition: NamedFlag,
    write: FlagWrite,
  ) => { flag: StoredFlag; change: FlagChange };
  readonly #delete: (name: string, write: FlagWrite) => FlagChange | undefined;

  constructor(options: SqliteFlagStoreOptions) {
    const busyTimeoutMs = intOption('busyTimeoutMs', options.busyTimeoutMs, 5000, 0, 0x7fffffff);
    this.#conn = new SqliteConnection(options, busyTimeoutMs, 'flag store');
    this.#sql = this.#conn.prepare(preparedStatements);
    const sql = this.#sql;
    const put = this.#conn.db.transaction((name: string, definition: NamedFlag, write: FlagWrite) => {
      const before = sql.get.get(name);
      checkFlagRevision(name, write, Number(before?.revision ?? 0));
      const data = encodeFlag(definition);
      const change = sql.append.get(
        name,
        'put',
        before?.data ?? null,
        data,
        write.actor,
        write.at,
      ) as FlagChangeRow;
      sql.upsert.run(name, data, Number(change.id), write.at, write.actor);
      return {
        flag: flagFromRow({ name, data, revision: change.id, updated_at: write.at, updated_by: write.actor }),
        change: flagChangeFromRow(change),
      };
    });
    const remove = this.#conn.db.transaction((name: string, write: FlagWrite) => {
      const before = sql.get.get(name);
      checkFlagRevision(name, write, Number(before?.revision ?? 0));
      if (before === undefined) return undefined;
      sql.delete.run(name);
      return flagChangeFromRow(
        sql.append.get(name, 'delete', before.data, null, write.actor, write.at) as FlagChangeRow,
      );
    });
    this.#put = (name, definition, write) => put.immediate(name, definition, write);
    this.#delete = (name, write) => remove.immediate(name, write);
  }

  async listFlags(): Promise<StoredFlag[]> {
    return this.#conn.guard(() => this.#sql.list.all().map(flagFromRow));
  }

  async getFlag(name: string): Promise<StoredFlag | undefined> {
    const row = this.#conn.guard(() => this.#sql.get.get(name));
    return row === undefined ? undefined : flagFromRow(row);
  }

  async putFlag(
    name: string,
    definition: NamedFlag,
    write: FlagWrite,
  ): Promise<{ flag: StoredFlag; change: FlagChange }> {
    return this.#conn.guard(() => this.#put(name, definition, write));
  }

  async deleteFlag(name: string, write: FlagWrite): Promise<FlagChange | undefined> {
    return this.#conn.guard(() => this.#delete(name, write));
  }

  async flagHistory(
    name: string,
    options: { limit: number; cursor?: string | undefined },
  ): Promise<Page<FlagChange>> {
    const limit = pageLimit(options.limit);
    const below = decodeFlagHistoryCursor(options.cursor);
    const rows = this.#conn.guard(() =>
      this.#sql.history.all(name, Number.isFinite(below) ? below : Number.MAX_SAFE_INTEGER, limit + 1),
    );
    return keysetPage(rows.map(flagChangeFromRow), limit, (last) => encodeFlagHistoryCursor(last.id));
  }

  async lastFlagChange(): Promise<number> {
    return this.#conn.guard(() => this.#sql.last.get()?.id ?? 0);
  }

  async close(): Promise<void> {
    this.#conn.close();
  }
}

/**
 * The SQLite agent store's change feed: the definition writes other connections (another process,
 * another store instance) made to the file, read from the revision every write stamps on its agent
 * row or tombstone. The hot-path test is one read of the revision counter (one row, ~1 µs); the
 * changes query (an index range scan past the cursor) runs only when the counter passed it.
 *
 * Most of the time not even that: the connection's `data_version` (read once per run of JavaScript,
 * and shared with the run store's check of its thread cache) says whether another connection
 * committed, and the connection counts the revisions its own stores took. While neither moved
 * since the counter was last found at the cursor, the counter is still there: no statement.
 */
import { validationError } from '../core/errors.ts';
import { pageLimit } from './paging.ts';
import type { AgentChange, AgentChangeFeed, AgentChangePage, AgentRollout, StoredFlag } from './ports.ts';
import type { SqliteConnection } from './sqlite-connection.ts';
import type { ChangeRow, prepareStatements } from './sqlite-schema.ts';

/** Definition changes made to the file through other store instances. */
export class SqliteChangeFeed implements AgentChangeFeed {
  readonly #conn: SqliteConnection;
  readonly #s: ReturnType<typeof prepareStatements>;
  readonly #writer: number;
  /** The cursor last found equal to the counter, and the connection's readings then. */
  #confirmed: { cursor: string; version: number; revisions: number } | undefined;

  constructor(conn: SqliteConnection, statements: ReturnType<typeof prepareStatements>, writer: number) {
    this.#conn = conn;
    this.#s = statements;
    this.#writer = writer;
  }

  async head(): Promise<string> {
    return this.#conn.guard(() => String(this.#s.head.get()));
  }

  maybeChangedSince(cursor: string): boolean {
    // Writes through this store move the counter too; the query after them finds nothing to report
    // and moves the watcher's cursor past them.
    return this.#conn.guard(() => {
      const { database } = this.#conn;
      const version = database.dataVersion(); // before the counter: never newer than what it saw
      const revisions = database.revisionsTaken;
      const confirmed = this.#confirmed;
      if (
        confirmed !== undefined &&
        confirmed.cursor === cursor &&
        confirmed.version === version &&
        confirmed.revisions === revisions
      )
        return false;
      const changed = String(this.#s.head.get()) !== cursor;
      this.#confirmed = changed ? undefined : { cursor, version, revisions };
      return changed;
    });
  }

  async changesSince<F extends StoredFlag = StoredFlag>(
    cursor: string,
    limit: number,
  ): Promise<AgentChangePage<F>> {
    const after = parseCursor(cursor);
    const max = pageLimit(limit);
    return this.#conn.guard(() => this.#read<F>(after, max));
  }

  /** One page, read in one transaction so the head and pruning mark agree with the rows. */
  #read<F extends StoredFlag>(after: number, limit: number): AgentChangePage<F> {
    const s = this.#s;
    const read = this.#conn.db.transaction(() => {
      const rows = s.changesSince.all({ after, writer: this.#writer, limit });
      const more = rows.length === limit;
      const last = rows.at(-1);
      const cursor = more && last !== undefined ? last.revision : (s.head.get() as number);
      return {
        changes: rows.map((row) => toChange<F>(row)),
        cursor: String(cursor),
        more,
        complete: after >= (s.prunedThrough.get() as number),
      };
    });
    return read.deferred();
  }
}

function parseCursor(cursor: string): number {
  const n = Number(cursor);
  if (typeof cursor !== 'string' || cursor === '' || !Number.isSafeInteger(n) || n < 0) {
    throw validationError(
      'cursor',
      `is not a change-feed cursor of this store, got ${JSON.stringify(cursor)}`,
    );
  }
  return n;
}

function toChange<F extends StoredFlag>(row: ChangeRow): AgentChange<F> {
  const about = { id: row.id, project: row.project, name: row.name };
  if (row.deleted === 1) return { type: 'deleted', ...about };
  return {
    type: 'written',
    ...about,
    activeVersion: row.active_version as number,
    latestVersion: row.latest_version as number,
    rollout: row.rollout === null ? null : (JSON.parse(row.rollout) as AgentRollout<F>),
  };
}

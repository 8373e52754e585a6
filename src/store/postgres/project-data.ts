/**
 * Deleting one project's runs and threads from the PostgreSQL run store in bounded steps (its
 * agents go through the agent store's own delete, which leaves tombstones for the change feed):
 * each step is one short statement or transaction, so no other tenant waits on a whole deletion.
 * Runs and threads are found through their `(project, …)` indexes; thread steps walk the project's
 * threads in id order, at most `limit` each, carrying the position in an opaque cursor.
 */
import { validationError } from '../../core/errors.ts';
import { decodeCursor, encodeCursor, pageLimit } from '../paging.ts';
import type { ProjectThreadsDeleted, ProjectWalk } from '../ports.ts';
import type { StoreConnection } from './connection.ts';

/** The run store's steps over one project's runs and threads. */
export class ProjectRunData {
  readonly #conn: StoreConnection;

  constructor(conn: StoreConnection) {
    this.#conn = conn;
  }

  async countRuns(project: string): Promise<number> {
    const [row] = await this.#conn.rows<{ n: number }>('SELECT count(*) AS n FROM runs WHERE project = $1', [
      project,
    ]);
    return row?.n ?? 0;
  }

  async deleteRuns(project: string, limit: number): Promise<number> {
    const max = pageLimit(limit);
    const result = await this.#conn.result(
      'DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE project = $1 LIMIT $2)',
      [project, max],
    );
    return result.rowCount ?? 0;
  }

  async countThreads(
    project: string,
    query: ProjectWalk,
  ): Promise<{ count: number; nextCursor: string | null }> {
    const limit = pageLimit(query.limit);
    const after = threadCursor(query.cursor);
    const rows = await this.#conn.rows<{ id: string }>(
      'SELECT id FROM threads WHERE project = $1 AND id > $2 ORDER BY id LIMIT $3',
      [project, after, limit],
    );
    return { count: rows.length, nextCursor: next(rows, limit) };
  }

  /** One step: up to `limit` of the project's threads, with their messages and runs, in one transaction. */
  async deleteThreads(project: string, query: ProjectWalk): Promise<ProjectThreadsDeleted> {
    const limit = pageLimit(query.limit);
    const after = threadCursor(query.cursor);
    return this.#conn.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string; message_count: number; runs: number }>(
        `SELECT t.id, t.message_count, (SELECT count(*) FROM runs r WHERE r.thread_id = t.id) AS runs
         FROM threads t WHERE t.project = $1 AND t.id > $2 ORDER BY t.id LIMIT $3`,
        [project, after, limit],
      );
      // Messages and runs go with the threads through ON DELETE CASCADE.
      const deleted = await tx.query('DELETE FROM threads WHERE id = ANY($1::text[])', [
        rows.map((r) => r.id),
      ]);
      return {
        threads: deleted.rowCount ?? 0,
        messages: rows.reduce((n, r) => n + r.message_count, 0), // the highest seq: seqs have no gaps
        runs: rows.reduce((n, r) => n + r.runs, 0),
        nextCursor: next(rows, limit),
      };
    });
  }
}

function next(rows: readonly { id: string }[], limit: number): string | null {
  const last = rows[rows.length - 1];
  return rows.length < limit || last === undefined ? null : encodeCursor('walk', last.id);
}

/** The thread id a walk goes on after ('' at the start: every id sorts after it). */
function threadCursor(cursor: string | undefined): string {
  if (cursor === undefined) return '';
  const after = decodeCursor('walk', cursor);
  if (after === '') throw validationError('cursor', 'is not a cursor of this listing');
  return after;
}

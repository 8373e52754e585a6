/**
 * Retention's steps on the PostgreSQL run store (run/retention.ts), as sqlite-retention.ts does
 * them: a walk over one project's threads in id order through its `(project, id)` index (no index
 * on `updated_at`, which every appended message would have to update), deleting threads that are
 * still past the cutoff and idle with their messages and runs, and stateless runs finished before
 * it; each step one short statement or transaction.
 */
import { encodeCursor, pageLimit } from '../paging.ts';
import type { ProjectWalk, RetainedThreads, RetentionDeleted } from '../ports.ts';
import { checkIds, walkCursor } from '../run-store-shared.ts';
import type { StoreConnection } from './connection.ts';

/** The run store's retention steps. */
export class RunRetention {
  readonly #conn: StoreConnection;

  constructor(conn: StoreConnection) {
    this.#conn = conn;
  }

  async listThreads(project: string, before: number, query: ProjectWalk): Promise<RetainedThreads> {
    const limit = pageLimit(query.limit);
    const rows = await this.#conn.rows<{ id: string; updated_at: string | number }>(
      'SELECT id, updated_at FROM threads WHERE project = $1 AND id > $2 ORDER BY id LIMIT $3',
      [project, walkCursor(query.cursor), limit],
    );
    const last = rows[rows.length - 1];
    return {
      ids: rows.filter((r) => Number(r.updated_at) < before).map((r) => r.id),
      nextCursor: rows.length < limit || last === undefined ? null : encodeCursor('retain', last.id),
    };
  }

  async deleteThreads(ids: readonly string[], before: number): Promise<RetentionDeleted> {
    checkIds(ids);
    if (ids.length === 0) return { threads: 0, messages: 0, runs: 0 };
    return this.#conn.transaction(async (tx) => {
      // Locks the threads it deletes, so a message appended meanwhile waits and then finds none
      // (THREAD_NOT_FOUND), or commits first and keeps the thread (updated_at moved).
      const { rows } = await tx.query<{ id: string; message_count: number; runs: string | number }>(
        `SELECT t.id, t.message_count, (SELECT count(*) FROM runs r WHERE r.thread_id = t.id) AS runs
         FROM threads t
         WHERE t.id = ANY($1::text[]) AND t.updated_at < $2
           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.id AND r.status IN ('queued', 'running'))
         FOR UPDATE OF t`,
        [ids, before],
      );
      // Messages and runs go with the threads through ON DELETE CASCADE.
      const deleted = await tx.query('DELETE FROM threads WHERE id = ANY($1::text[])', [
        rows.map((r) => r.id),
      ]);
      return {
        threads: deleted.rowCount ?? 0,
        messages: rows.reduce((n, r) => n + Number(r.message_count), 0),
        runs: rows.reduce((n, r) => n + Number(r.runs), 0),
      };
    });
  }

  async deleteRuns(project: string, before: number, limit: number): Promise<number> {
    const result = await this.#conn.result(
      `DELETE FROM runs WHERE id IN (
         SELECT id FROM runs WHERE project = $1 AND created_at < $2 AND thread_id IS NULL
           AND finished_at < $2 AND status NOT IN ('queued', 'running') LIMIT $3
         FOR UPDATE SKIP LOCKED)`,
      [project, before, pageLimit(limit)],
    );
    return result.rowCount ?? 0;
  }
}

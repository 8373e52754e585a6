/**
 * Retention's steps on the SQLite run store (run/retention.ts): a walk over one project's threads
 * in id order through its `(project, id)` index, examining at most `limit` rows per step (no index
 * on `updated_at`, which every appended message would have to update on the run path); deleting
 * threads that are still past the cutoff and idle, and stateless runs finished before it through
 * the `(project, created_at)` index; each step one short IMMEDIATE transaction.
 */
import type Database from 'better-sqlite3';
import { encodeCursor, pageLimit } from './paging.ts';
import type { ProjectWalk, RetainedThreads, RetentionDeleted } from './ports.ts';
import { checkIds, walkCursor } from './run-store-shared.ts';

/** The run store's retention statements and steps. */
export function prepareRetention(db: Database.Database) {
  const walk = db.prepare<[string, string, number], { id: string; updated_at: number }>(
    'SELECT id, updated_at FROM threads WHERE project = ? AND id > ? ORDER BY id LIMIT ?',
  );
  const idle = db.prepare<[string, number], { message_count: number; runs: number }>(
    `SELECT t.message_count, (SELECT count(*) FROM runs r WHERE r.thread_id = t.id) AS runs FROM threads t
     WHERE t.id = ? AND t.updated_at < ?
       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.id AND r.status IN ('queued', 'running'))`,
  );
  // Messages and runs go with the thread through ON DELETE CASCADE.
  const deleteThread = db.prepare<[string]>('DELETE FROM threads WHERE id = ?');
  const deleteRuns = db.prepare<[string, number, number, number]>(
    `DELETE FROM runs WHERE rowid IN (
       SELECT rowid FROM runs WHERE project = ? AND created_at < ? AND thread_id IS NULL
         AND finished_at < ? AND status NOT IN ('queued', 'running') LIMIT ?)`,
  );
  const deleteThreads = db.transaction((ids: readonly string[], before: number): RetentionDeleted => {
    let threads = 0;
    let messages = 0;
    let runs = 0;
    for (const id of ids) {
      const row = idle.get(id, before);
      if (row === undefined) continue;
      threads += deleteThread.run(id).changes;
      messages += row.message_count; // the highest seq, and seqs have no gaps
      runs += row.runs;
    }
    return { threads, messages, runs };
  });
  return {
    listThreads(project: string, before: number, query: ProjectWalk): RetainedThreads {
      const limit = pageLimit(query.limit);
      const rows = walk.all(project, walkCursor(query.cursor), limit);
      const last = rows[rows.length - 1];
      return {
        ids: rows.filter((r) => r.updated_at < before).map((r) => r.id),
        nextCursor: rows.length < limit || last === undefined ? null : encodeCursor('retain', last.id),
      };
    },
    deleteThreads(ids: readonly string[], before: number): RetentionDeleted {
      checkIds(ids);
      return deleteThreads.immediate(ids, before);
    },
    deleteRuns(project: string, before: number, limit: number): number {
      return deleteRuns.run(project, before, before, pageLimit(limit)).changes;
    },
  };
}

/**
 * Deleting one project's runs and threads from the SQLite run store in bounded steps (its agents
 * go through the agent store's own delete, which leaves tombstones for the change feed): each call is one short
 * IMMEDIATE transaction, so other tenants' writes wait at most one step, never the whole
 * deletion. Runs are found through their `(project, …)` index. Threads have no
 * project index (schema v6), so their steps walk the primary key in id order, at most `limit`
 * rows each, carrying the position in an opaque cursor: a walk over the whole table costs one
 * read of each thread, however the project's threads are spread.
 */
import type Database from 'better-sqlite3';
import { validationError } from '../core/errors.ts';
import { decodeCursor, encodeCursor, pageLimit } from './paging.ts';
import type { ProjectThreadsDeleted, ProjectWalk } from './ports.ts';

interface WalkRow {
  id: string;
  project: string;
  message_count: number;
}

/** The run store's statements and steps over one project's runs and threads. */
export function prepareProjectRunDeletion(db: Database.Database) {
  const countRuns = db.prepare<[string], number>('SELECT count(*) FROM runs WHERE project = ?').pluck();
  const deleteRuns = db.prepare<[string, number]>(
    'DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE project = ? LIMIT ?)',
  );
  const walk = db.prepare<[string, number], WalkRow>(
    'SELECT id, project, message_count FROM threads WHERE id > ? ORDER BY id LIMIT ?',
  );
  const runsOnThread = db.prepare<[string], number>('SELECT count(*) FROM runs WHERE thread_id = ?').pluck();
  // Messages and runs go with the thread through ON DELETE CASCADE.
  const deleteThread = db.prepare<[string]>('DELETE FROM threads WHERE id = ?');

  const step = (query: ProjectWalk): { rows: WalkRow[]; nextCursor: string | null } => {
    const limit = pageLimit(query.limit);
    const rows = walk.all(threadCursor(query.cursor), limit);
    const last = rows[rows.length - 1];
    return {
      rows,
      nextCursor: rows.length < limit || last === undefined ? null : encodeCursor('walk', last.id),
    };
  };
  const deleteThreads = db.transaction((project: string, query: ProjectWalk): ProjectThreadsDeleted => {
    const { rows, nextCursor } = step(query);
    let threads = 0;
    let messages = 0;
    let runs = 0;
    for (const row of rows) {
      if (row.project !== project) continue;
      runs += runsOnThread.get(row.id) ?? 0;
      messages += row.message_count; // the highest seq, and seqs have no gaps
      threads += deleteThread.run(row.id).changes;
    }
    return { threads, messages, runs, nextCursor };
  });

  return {
    countRuns: (project: string): number => countRuns.get(project) ?? 0,
    deleteRuns: (project: string, limit: number): number => deleteRuns.run(project, pageLimit(limit)).changes,
    countThreads: (project: string, query: ProjectWalk): { count: number; nextCursor: string | null } => {
      const { rows, nextCursor } = step(query);
      return { count: rows.filter((r) => r.project === project).length, nextCursor };
    },
    deleteThreads: (project: string, query: ProjectWalk): ProjectThreadsDeleted =>
      deleteThreads.immediate(project, query),
  };
}

/** The thread id a walk goes on after ('' at the start: every id sorts after it). */
function threadCursor(cursor: string | undefined): string {
  if (cursor === undefined) return '';
  const after = decodeCursor('walk', cursor);
  if (after === '') throw validationError('cursor', 'is not a cursor of this listing');
  return after;
}

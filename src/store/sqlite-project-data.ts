/**
 * Deleting one project's runs and threads from the SQLite run store in bounded steps (its agents
 * go through the agent store's own delete, which leaves tombstones for the change feed): each call is one short
 * IMMEDIATE transaction, so other tenants' writes wait at most one step, never the whole
 * deletion. Runs and threads are found through their `(project, …)` indexes; thread steps walk
 * the project's threads in id order, at most `limit` each, carrying the position in an opaque
 * cursor.
 */
import type Database from 'better-sqlite3';
import { validationError } from '../core/errors.ts';
import { decodeCursor, encodeCursor, pageLimit } from './paging.ts';
import type { ProjectThreadsDeleted, ProjectWalk } from './ports.ts';

interface WalkRow {
  id: string;
  message_count: number;
}

/** The run store's statements and steps over one project's runs and threads. */
export function prepareProjectRunDeletion(db: Database.Database) {
  const countRuns = db.prepare<[string], number>('SELECT count(*) FROM runs WHERE project = ?').pluck();
  const deleteRuns = db.prepare<[string, number]>(
    'DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE project = ? LIMIT ?)',
  );
  const walk = db.prepare<[string, string, number], WalkRow>(
    'SELECT id, message_count FROM threads WHERE project = ? AND id > ? ORDER BY id LIMIT ?',
  );
  const runsOnThread = db.prepare<[string], number>('SELECT count(*) FROM runs WHERE thread_id = ?').pluck();
  // Messages and runs go with the thread through ON DELETE CASCADE.
  const deleteThread = db.prepare<[string]>('DELETE FROM threads WHERE id = ?');

  const step = (project: string, query: ProjectWalk): { rows: WalkRow[]; nextCursor: string | null } => {
    const limit = pageLimit(query.limit);
    const rows = walk.all(project, threadCursor(query.cursor), limit);
    const last = rows[rows.length - 1];
    return {
      rows,
      nextCursor: rows.length < limit || last === undefined ? null : encodeCursor('walk', last.id),
    };
  };
  const deleteThreads = db.transaction((project: string, query: ProjectWalk): ProjectThreadsDeleted => {
    const { rows, nextCursor } = step(project, query);
    let threads = 0;
    let messages = 0;
    let runs = 0;
    for (const row of rows) {
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
      const { rows, nextCursor } = step(project, query);
      return { count: rows.length, nextCursor };
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

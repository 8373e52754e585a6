/**
 * The SQLite checkpointer on real files: its defaults, that it copies the WAL while the writer
 * goes on and gives the WAL's space back once idle, that a store closes it (a last checkpoint,
 * then the thread ends), that a failure is reported without harming the store, and that a
 * process killed with SIGKILL while it checkpoints loses no commit.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isAgentPoolError } from '../../src/core/errors.ts';
import {
  resolveSqliteCheckpointOptions,
  SQLITE_CHECKPOINT_CHANNEL,
  type SqliteCheckpointMessage,
  SqliteCheckpointer,
} from '../../src/store/sqlite-checkpointer.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { killWriter } from '../support/sqlite-store.ts';
import { tempDir } from '../support/temp-dir.ts';

/** Collects what the checkpointers of `path` publish, until `stop()`. */
function reportsOf(path: string) {
  const seen: SqliteCheckpointMessage[] = [];
  const listener = (message: unknown) => {
    const report = message as SqliteCheckpointMessage;
    if (report.path === path) seen.push(report);
  };
  diagnostics.subscribe(SQLITE_CHECKPOINT_CHANNEL, listener);
  return { seen, stop: () => diagnostics.unsubscribe(SQLITE_CHECKPOINT_CHANNEL, listener) };
}

/** Waits until `done()` holds, polling every 5 ms, for at most 10 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The WAL's frames and how many of them are in the database, read on a connection of the test's own. */
function walState(path: string): { log: number; checkpointed: number } {
  const db = new Database(path);
  try {
    return db.prepare<[], { log: number; checkpointed: number }>('PRAGMA wal_checkpoint(NOOP)').get()!;
  } finally {
    db.close();
  }
}

const thread = (i: number) => ({ id: `thr_${i}`, project: 'p', metadata: {}, ttlSeconds: null, now: i });

/** Creates threads thr_0 … thr_{n-1}, one write each. */
async function createThreads(store: SqliteRunStore, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await store.createThread(thread(i));
}

describe('SQLite checkpointer', () => {
  let tmp: ReturnType<typeof tempDir>;
  let path: string;
  beforeEach(() => {
    tmp = tempDir('agentpool-checkpoint-');
    path = join(tmp.dir, 'agentpool.db');
  });
  afterEach(() => tmp.cleanup());

  it('defaults to a checkpoint every 1000 pages, truncation after 1 s idle, a look every 10 ms', () => {
    assert.deepEqual(resolveSqliteCheckpointOptions(undefined), { pages: 1000, idleMs: 1000, pollMs: 10 });
    for (const [options, field] of [
      [{ pages: 0 }, 'checkpoint.pages'],
      [{ idleMs: 1.5 }, 'checkpoint.idleMs'],
      [{ pollMs: -1 }, 'checkpoint.pollMs'],
      [{ every: 1 }, 'checkpoint.every'],
    ] as const) {
      assert.throws(
        () => resolveSqliteCheckpointOptions(options as never),
        (err) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details?.['field'] === field,
      );
    }
  });

  it('copies the WAL into the database on its own thread once it holds `pages` pages', async () => {
    const reports = reportsOf(path);
    const store = new SqliteRunStore({ path, checkpoint: { pages: 20, pollMs: 1, idleMs: 3_600_000 } });
    try {
      await createThreads(store, 100); // the thread starts with the 100th write
      await until(() => reports.seen.some((r) => r.type === 'checkpoint'), 'a checkpoint');
      const [first] = reports.seen;
      assert.ok(first?.type === 'checkpoint' && first.mode === 'passive' && first.checkpointed >= 20);
      const wal = walState(path);
      assert.ok(wal.checkpointed > 0 && wal.log - wal.checkpointed < 20, JSON.stringify(wal));
      assert.equal((await store.getThread('thr_99'))?.id, 'thr_99');
    } finally {
      reports.stop();
      await store.close();
    }
  });

  it('copies the rest and truncates the WAL to zero bytes once no commit came for idleMs', async () => {
    const reports = reportsOf(path);
    const store = new SqliteRunStore({ path, checkpoint: { pages: 1_000_000, pollMs: 1, idleMs: 50 } });
    try {
      await createThreads(store, 100);
      await until(() => reports.seen.some((r) => r.type === 'checkpoint' && r.mode === 'truncate'), 'idle');
      assert.equal(statSync(`${path}-wal`).size, 0);
      // Writes go on after it, into a WAL started over.
      await store.createThread(thread(100));
      assert.equal((await store.getThread('thr_100'))?.id, 'thr_100');
    } finally {
      reports.stop();
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.prepare('SELECT count(*) FROM threads').pluck().get(), 101);
    } finally {
      db.close();
    }
  });

  it('runs a last checkpoint when the store closes, and its thread ends', async () => {
    const reports = reportsOf(path);
    const store = new SqliteRunStore({ path, checkpoint: { pages: 1_000_000, idleMs: 3_600_000 } });
    try {
      await createThreads(store, 100);
    } finally {
      await store.close();
      reports.stop();
    }
    const last = reports.seen.at(-1);
    assert.ok(last?.type === 'checkpoint' && last.mode === 'truncate' && !last.busy, JSON.stringify(last));
    // The last connection closed: SQLite removed the WAL, everything is in the database file.
    assert.equal(existsSync(`${path}-wal`), false);
  });

  it('starts no thread before the 100th write, nor with checkpoint false, nor for a database in memory', async () => {
    const other = join(tmp.dir, 'other.db');
    const reports = [reportsOf(path), reportsOf(other), reportsOf(':memory:')];
    const brief = new SqliteRunStore({ path, checkpoint: { pages: 1, pollMs: 1 } });
    const off = new SqliteRunStore({ path: other, checkpoint: false });
    const memory = new SqliteRunStore({ path: ':memory:', checkpoint: { pages: 1, pollMs: 1 } });
    try {
      await createThreads(brief, 99);
      await createThreads(off, 200);
      await createThreads(memory, 200);
    } finally {
      await Promise.all([brief.close(), off.close(), memory.close()]);
      reports.forEach((r) => r.stop());
    }
    assert.deepEqual(
      reports.map((r) => r.seen),
      [[], [], []],
    );
  });

  it('reports a failure on the channel and still closes', async () => {
    const missing = join(tmp.dir, 'missing.db');
    const reports = reportsOf(missing);
    const checkpointer = new SqliteCheckpointer(missing, resolveSqliteCheckpointOptions({}));
    try {
      await until(() => reports.seen.length > 0, 'the failure');
      assert.equal(reports.seen[0]?.type, 'failed');
    } finally {
      await checkpointer.close();
      reports.stop();
    }
  });

  it('loses no commit when the process is killed with SIGKILL while it checkpoints', async () => {
    const committed = await killWriter(path, [], (_, checkpoints) => checkpoints >= 20);
    const store = new SqliteRunStore({ path, checkpoint: false });
    try {
      assert.ok(committed.length > 0);
      for (const id of committed) {
        const messages = await store.listMessages(id, { limit: 10 });
        assert.equal(messages.data.length, 2, `thread ${id} was committed before the kill`);
      }
    } finally {
      await store.close();
    }
  });
});

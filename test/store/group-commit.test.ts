import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { GroupCommit } from '../../src/store/group-commit.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { tempDir } from '../support/temp-dir.ts';
import { runRecord } from '../support/run-record.ts';

/**
 * A transaction over an array: writes land in `committed` only if the body and commit succeed; a
 * savepoint (`isolate`) drops what its body pushed when it throws.
 */
function fakeDb(failCommit = false) {
  const committed: string[] = [];
  let pending: string[] = [];
  let transactions = 0;
  let savepoints = 0;
  const group = new GroupCommit(
    {
      transaction: (body) => {
        transactions++;
        pending = [];
        const value = body();
        if (failCommit) throw new Error('disk full');
        committed.push(...pending);
        return value;
      },
      isolate: (body) => {
        savepoints++;
        const mark = pending.length;
        try {
          return body();
        } catch (err) {
          pending.length = mark;
          throw err;
        }
      },
    },
    (err) => new Error(`wrapped: ${(err as Error).message}`),
  );
  /** A write of two statements: the first lands before the second may fail. */
  const write = (value: string, fail = false) =>
    group.write(() => {
      pending.push(value);
      if (fail) throw new Error(`bad ${value}`);
      pending.push(value.toUpperCase());
      return value.toUpperCase();
    }, true);
  return { group, write, committed, transactions: () => transactions, savepoints: () => savepoints };
}

describe('group commit', () => {
  it('runs the writes of one event-loop turn in one transaction and resolves each after it', async () => {
    const db = fakeDb();
    const results = await Promise.all(['a', 'b', 'c'].map((v) => db.write(v)));
    assert.deepEqual(results, ['A', 'B', 'C']);
    assert.deepEqual(db.committed, ['a', 'A', 'b', 'B', 'c', 'C']);
    assert.equal(db.transactions(), 1);
    await db.write('d');
    assert.equal(db.transactions(), 2, 'a later write gets its own transaction');
  });

  it('rejects a failing write alone, wrapped, and commits the others', async () => {
    const db = fakeDb();
    const [a, bad, c] = await Promise.allSettled([db.write('a'), db.write('x', true), db.write('c')]);
    assert.equal(a.status === 'fulfilled' && a.value, 'A');
    assert.equal(c.status === 'fulfilled' && c.value, 'C');
    assert.equal(bad.status === 'rejected' && (bad.reason as Error).message, 'wrapped: bad x');
    assert.deepEqual(db.committed, ['a', 'A', 'c', 'C'], 'the failed write left nothing');
  });

  it('runs a batch without savepoints while its writes succeed', async () => {
    const db = fakeDb();
    await db.write('a');
    assert.equal(db.savepoints(), 0, 'alone, its transaction is its isolation');
    await Promise.all([db.write('b'), db.write('c')]);
    assert.equal(db.savepoints(), 0);
    assert.equal(db.transactions(), 2);
  });

  it('runs the batch again, each write of several statements in a savepoint, when one of them failed', async () => {
    const db = fakeDb();
    const one = (value: string) => db.group.write(() => value, false);
    const settled = await Promise.allSettled([db.write('a'), one('b'), db.write('x', true), db.write('c')]);
    assert.deepEqual(
      settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
      ['A', 'b', 'wrapped: bad x', 'C'],
    );
    assert.equal(db.transactions(), 2, 'the first rolled back, the second committed');
    assert.equal(db.savepoints(), 3, 'the three writes of several statements, not the single one');
    assert.deepEqual(db.committed, ['a', 'A', 'c', 'C']);
  });

  it('runs a single-statement write without a savepoint among others', async () => {
    const db = fakeDb();
    const one = (value: string) => db.group.write(() => value, false);
    assert.deepEqual(await Promise.all([one('a'), one('b')]), ['a', 'b']);
    assert.equal(db.savepoints(), 0);
  });

  it('rolls back a failing write alone in its transaction and rejects it, wrapped', async () => {
    const db = fakeDb();
    await assert.rejects(db.write('x', true), { message: 'wrapped: bad x' });
    assert.deepEqual(db.committed, [], 'its first statement was rolled back with the transaction');
    assert.equal(await db.write('y'), 'Y');
    assert.deepEqual(db.committed, ['y', 'Y']);
  });

  it('rejects every write of the batch when the commit fails', async () => {
    const db = fakeDb(true);
    for (const writes of [[db.write('a'), db.write('b')], [db.write('c')]]) {
      const settled = await Promise.allSettled(writes);
      assert.ok(
        settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'wrapped: disk full'),
      );
    }
    assert.deepEqual(db.committed, []);
  });

  it('flush() commits queued writes at once', async () => {
    const db = fakeDb();
    const p = db.write('a');
    db.group.flush();
    assert.deepEqual(db.committed, ['a', 'A']);
    assert.equal(await p, 'A');
  });
});

describe('group commit in the SQLite run store', () => {
  const cleanups: (() => void)[] = [];
  after(() => cleanups.forEach((c) => c()));

  it('isolates a failing commit among concurrent ones on a real file', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const store = new SqliteRunStore({ path: join(dir, 'runs.db') });
    try {
      const thread = await store.createThread({
        id: 'thr_1',
        project: 'p',
        metadata: {},
        ttlSeconds: null,
        now: 1,
      });
      const run = runRecord({ project: 'p', threadId: thread.id, createdAt: 1, startedAt: 1 });
      await store.createRun(run, []);
      const msg = (id: string) => ({
        id,
        role: 'user' as const,
        content: [{ type: 'text', text: id }],
        runId: 'run_1',
        createdAt: 2,
      });
      const [ok, ghost, ok2] = await Promise.allSettled([
        store.commitStep({ ...run, steps: 1 }, [msg('m1')]),
        store.commitStep({ ...run, id: 'run_ghost' }, [msg('m2')]),
        store.commitStep({ ...run, steps: 2 }, [msg('m3')]),
      ]);
      assert.equal(ok.status, 'fulfilled');
      assert.equal(ok2.status, 'fulfilled');
      assert.ok(ghost.status === 'rejected' && isAgentPoolError(ghost.reason, 'RUN_NOT_FOUND'));
      const messages = await store.listMessages(thread.id, { limit: 10 });
      assert.deepEqual(
        messages.data.map((m) => [m.seq, m.id]),
        [
          [1, 'm1'],
          [2, 'm3'],
        ],
      );
      assert.equal((await store.getRun('run_1'))?.steps, 2);
    } finally {
      await store.close();
    }
  });
});

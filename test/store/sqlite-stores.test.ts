/**
 * The three SQLite stores on one connection (openSqliteStores, SqliteDatabase), in either locking
 * mode: the RunStore specification on an exclusive database, what each store writes read by the
 * others, the file closed with the last store, and what exclusive mode forbids and keeps: other
 * connections are refused while it is open, and a kill -9 loses no commit.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { SqliteDatabase } from '../../src/store/sqlite-connection.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { openSqliteStores } from '../../src/store/sqlite-stores.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { runStoreConformance } from './run-store.conformance.ts';
import { killWriter, storeOnTempFile } from '../support/sqlite-store.ts';
import { runRecord } from '../support/run-record.ts';
import { tempDir } from '../support/temp-dir.ts';

runStoreConformance('SqliteRunStore on an exclusive database', (options) =>
  storeOnTempFile((path) => {
    const database = SqliteDatabase.open(path, { lockingMode: 'exclusive' });
    try {
      return new SqliteRunStore({ database, ...options });
    } finally {
      database.release();
    }
  }),
);

const spec = { instructions: 'hi', labels: {}, tier: 'warm' };

describe('SQLite stores on one connection', () => {
  let tmp: ReturnType<typeof tempDir>;
  let path: string;
  beforeEach(() => {
    tmp = tempDir('agentpool-stores-');
    path = join(tmp.dir, 'data', 'agentpool.db');
  });
  afterEach(() => tmp.cleanup());

  for (const lockingMode of ['normal', 'exclusive'] as const) {
    it(`${lockingMode}: each store reads what the others wrote; the file closes with the last store`, async () => {
      const { agents, runs, projects } = openSqliteStores(path, { lockingMode, nodeId: 'node_a' });
      try {
        const agent = await agents.create({ id: 'agt_1', project: 'p1', name: 'a', spec, now: 1 });
        await projects.createProject({ id: 'p1', name: 'P', metadata: {}, now: 1 });
        await runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: 1 });
        await runs.createRun(runRecord({ agentId: agent.id, threadId: 'thr_1' }), []);
        await agents.close();
        await runs.close();
        await assert.rejects(runs.getRun('run_1'), (err) => isAgentPoolError(err, 'STORE_FAILED'));
        // The others closed; the project store still uses the connection.
        assert.equal((await projects.getProject('p1'))?.name, 'P');
      } finally {
        await Promise.all([agents.close(), runs.close(), projects.close()]);
      }
      // The last connection closed: SQLite checkpointed and removed the WAL.
      assert.equal(existsSync(`${path}-wal`), false);
      const reopened = new SqliteRunStore({ path });
      try {
        assert.equal((await reopened.getRun('run_1'))?.threadId, 'thr_1');
        assert.equal(await reopened.interruptUnfinished(2, { node: 'node_a' }), 1);
      } finally {
        await reopened.close();
      }
    });
  }

  it('exclusive: another connection to the file is refused while the stores are open', async () => {
    const { agents, runs, projects } = openSqliteStores(path, { lockingMode: 'exclusive' });
    try {
      await agents.create({ id: 'agt_1', project: 'p1', name: 'a', spec, now: 1 });
      // `agentpool apply` on the same file, say: it cannot even open it.
      assert.throws(
        () => new SqliteAgentStore({ path, busyTimeoutMs: 20 }),
        (err) => isAgentPoolError(err, 'STORE_FAILED') && /locked/.test(err.message),
      );
    } finally {
      await Promise.all([agents.close(), runs.close(), projects.close()]);
    }
    const other = new SqliteAgentStore({ path, busyTimeoutMs: 20 });
    try {
      assert.equal((await other.getById('agt_1'))?.name, 'a');
    } finally {
      await other.close();
    }
  });

  it('exclusive: a kill -9 loses no commit', async () => {
    const committed = await killWriter(path, ['exclusive'], (commits) => commits >= 300);
    const store = new SqliteRunStore({ path });
    try {
      for (const id of committed) {
        const messages = await store.listMessages(id, { limit: 10 });
        assert.equal(messages.data.length, 2, `thread ${id} was committed before the kill`);
      }
    } finally {
      await store.close();
    }
  });

  it('rejects a lockingMode other than normal or exclusive with VALIDATION_FAILED naming it', () => {
    assert.throws(
      () => openSqliteStores(path, { lockingMode: 'shared' as never }),
      (err) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details['field'] === 'lockingMode',
    );
  });
});

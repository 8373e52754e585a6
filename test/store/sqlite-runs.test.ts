/**
 * Runs the RunStore conformance suite against the SQLite adapter on a real file, plus what only a
 * file can show: sharing one file with the agent store, upgrading an older file, durability across
 * reopen, and seqs handed out correctly across two connections.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite-schema.ts';
import { runStoreConformance } from './run-store.conformance.ts';
import { retentionConformance } from './retention.conformance.ts';
import { storeOnTempFile, rollBackSchema, userVersion } from '../support/sqlite-store.ts';
import { runRecord } from '../support/run-record.ts';

const T0 = Date.UTC(2026, 0, 1);

runStoreConformance('SqliteRunStore', (options) =>
  storeOnTempFile((path) => new SqliteRunStore({ path, ...options })),
);

retentionConformance('SqliteRunStore', () => storeOnTempFile((path) => new SqliteRunStore({ path })));

function run(overrides: Partial<RunRecord> = {}): RunRecord {
  return runRecord({
    agentId: 'agt_a',
    threadId: 'thr_1',
    model: 'demo/echo',
    createdAt: T0,
    startedAt: T0,
    ...overrides,
  });
}

/** The CREATE TABLE statement of a file's threads table. */
function threadsTable(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare<[], string>("SELECT sql FROM sqlite_master WHERE name = 'threads'").pluck().get() ?? '';
  } finally {
    db.close();
  }
}

const userMessage = (id: string) => ({ id, role: 'user' as const, content: id, runId: null, createdAt: T0 });

describe('SqliteRunStore on a file', () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentpool-runs-'));
    path = join(dir, 'nested', 'agentpool.db');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const order of ['agents first', 'runs first'] as const) {
    it(`shares one file with SqliteAgentStore when the ${order.replace(' first', '')} store opens first`, async () => {
      // Whichever opens first runs every migration; the second finds the file current.
      const early = order === 'runs first' ? new SqliteRunStore({ path }) : undefined;
      const agents = new SqliteAgentStore({ path });
      const runs = early ?? new SqliteRunStore({ path });
      try {
        assert.ok(SQLITE_SCHEMA_VERSION >= 2);
        assert.equal(userVersion(path), SQLITE_SCHEMA_VERSION);
        const agent = await agents.create({
          id: 'agt_a',
          project: 'p1',
          name: 'a',
          spec: { labels: {}, tier: 'warm' },
          now: T0,
        });
        await runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
        await runs.createRun(run({ agentId: agent.id }), [userMessage('m1')]);
        await runs.commitStep(run({ agentId: agent.id, steps: 1 }), [userMessage('m2')]);
        assert.equal((await agents.getByName('p1', 'a'))?.id, 'agt_a');
        assert.equal((await runs.getThread('thr_1'))?.messageCount, 2);
        assert.equal((await runs.getRun('run_1'))?.steps, 1);
      } finally {
        await agents.close();
        await runs.close();
      }
    });
  }

  it('upgrades a file at schema version 1 by adding the run tables, keeping its agents', async () => {
    const agents = new SqliteAgentStore({ path });
    await agents.create({
      id: 'agt_a',
      project: 'p1',
      name: 'a',
      spec: { labels: {}, tier: 'warm' },
      now: T0,
    });
    await agents.close();
    rollBackSchema(path, 1); // what a version-1 agentpool wrote: agent tables only

    const runs = new SqliteRunStore({ path });
    try {
      assert.equal(userVersion(path), SQLITE_SCHEMA_VERSION);
      await runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: 60, now: T0 });
      assert.equal((await runs.getThread('thr_1'))?.expiresAt, T0 + 60_000);
    } finally {
      await runs.close();
    }
    const reopened = new SqliteAgentStore({ path });
    try {
      assert.equal((await reopened.getById('agt_a'))?.name, 'a');
    } finally {
      await reopened.close();
    }
  });

  it('keeps threads, messages and runs across close and reopen, then interrupts what was in flight', async () => {
    const first = new SqliteRunStore({ path });
    const thread = await first.createThread({
      id: 'thr_1',
      project: 'p1',
      metadata: { k: ['v'] },
      ttlSeconds: 30,
      now: T0,
    });
    await first.createRun(run(), [userMessage('m1')]);
    const appended = await first.commitStep(run({ steps: 1, cost: 0.5 }), [userMessage('m2')]);
    await first.createRun(run({ id: 'run_done', status: 'succeeded', output: 'ok', finishedAt: T0 }), [
      userMessage('m3'),
    ]);
    await first.close();

    const second = new SqliteRunStore({ path });
    try {
      assert.deepEqual(await second.getThread('thr_1'), { ...thread, messageCount: 3 });
      assert.deepEqual(await second.recentMessages('thr_1', 2), [
        appended[0],
        { ...appended[0], id: 'm3', content: 'm3', seq: 3 },
      ]);
      assert.deepEqual(await second.getRun('run_1'), run({ steps: 1, cost: 0.5 }));
      assert.equal(await second.interruptUnfinished(T0 + 1000), 1);
      assert.equal((await second.getRun('run_1'))?.status, 'interrupted');
      assert.equal((await second.getRun('run_done'))?.status, 'succeeded');
    } finally {
      await second.close();
    }
  });

  it('hands out each seq once when two connections commit to one thread in turn', async () => {
    const a = new SqliteRunStore({ path });
    const b = new SqliteRunStore({ path, busyTimeoutMs: 1000 });
    try {
      await a.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
      await a.createRun(run(), []);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? a : b).commitStep(run({ steps: i }), [userMessage(`x${i}`), userMessage(`y${i}`)]),
        ),
      );
      const all = results.flat().map((m) => m.seq);
      all.sort((x, y) => x - y);
      assert.deepEqual(
        all,
        Array.from({ length: 80 }, (_, i) => i + 1),
      );
      assert.equal((await b.getThread('thr_1'))?.messageCount, 80);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('stamps runs with the node that last wrote them: a node sweep ends only its own', async () => {
    const a = new SqliteRunStore({ path, nodeId: 'node_a' });
    const b = new SqliteRunStore({ path, nodeId: 'node_b' });
    try {
      await a.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
      await a.createRun(run({ id: 'run_a' }), []);
      await a.createRun(run({ id: 'run_moved' }), []);
      await b.createRun(run({ id: 'run_b' }), []);
      // A run taken over by another node (a resumed background run) becomes that node's.
      await b.commitStep(run({ id: 'run_moved', steps: 1 }), [userMessage('m1')]);
      assert.equal(await b.interruptUnfinished(T0 + 1, { node: 'node_a' }), 1);
      assert.equal((await b.getRun('run_a'))?.status, 'interrupted');
      assert.equal((await b.getRun('run_moved'))?.status, 'running');
      assert.equal(await a.interruptUnfinished(T0 + 2, { node: 'node_b' }), 2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('upgrades a file at schema version 8: its threads get fence 0 and its runs no node', async () => {
    const first = new SqliteRunStore({ path });
    await first.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
    await first.createRun(run(), [userMessage('m1')]);
    await first.close();
    rollBackSchema(path, 8); // what a version-8 agentpool wrote: no fence, no node

    const second = new SqliteRunStore({ path, nodeId: 'node_a' });
    try {
      assert.equal(userVersion(path), SQLITE_SCHEMA_VERSION);
      assert.equal(await second.interruptUnfinished(T0 + 1, { node: 'node_a' }), 0);
      await second.commitStep(run({ steps: 1 }), [userMessage('m2')], 1);
      await assert.rejects(second.commitStep(run({ steps: 2 }), [userMessage('m3')], 0), (err: unknown) =>
        isAgentPoolError(err, 'LEASE_LOST'),
      );
      assert.equal(await second.interruptUnfinished(T0 + 2, { node: 'node_a' }), 1);
    } finally {
      await second.close();
    }
  });

  it('upgrades a file at schema version 9: threads keyed by id alone, their messages and runs kept', async () => {
    const first = new SqliteRunStore({ path });
    await first.createThread({ id: 'thr_1', project: 'p1', metadata: { a: 1 }, ttlSeconds: 60, now: T0 });
    await first.createThread({ id: 'thr_2', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
    await first.createRun(run(), [userMessage('m1'), userMessage('m2')], 3);
    const before = await first.getThread('thr_1');
    await first.close();
    rollBackSchema(path, 9); // what a version-9 agentpool wrote: threads with a rowid
    assert.doesNotMatch(threadsTable(path), /WITHOUT ROWID/);

    const second = new SqliteRunStore({ path });
    try {
      assert.equal(userVersion(path), SQLITE_SCHEMA_VERSION);
      assert.match(threadsTable(path), /WITHOUT ROWID/);
      assert.deepEqual(await second.getThread('thr_1'), before);
      assert.deepEqual(
        (await second.listMessages('thr_1', { limit: 10 })).data.map((m) => [m.seq, m.id]),
        [
          [1, 'm1'],
          [2, 'm2'],
        ],
      );
      assert.equal((await second.getRun('run_1'))?.threadId, 'thr_1');
      // The fence came along, and references point at the new table: deleting cascades again.
      await assert.rejects(second.commitStep(run({ steps: 1 }), [userMessage('m3')], 2), (err: unknown) =>
        isAgentPoolError(err, 'LEASE_LOST'),
      );
      assert.deepEqual(await second.listExpiredThreads(T0 + 61_000, 10), [before]);
      assert.equal(await second.deleteThread('thr_1'), true);
      assert.equal(await second.getRun('run_1'), undefined);
      assert.deepEqual((await second.listMessages('thr_1', { limit: 10 })).data, []);
      assert.equal((await second.getThread('thr_2'))?.id, 'thr_2');
    } finally {
      await second.close();
    }
  });

  it('rejects a busyTimeoutMs that is not a non-negative integer with VALIDATION_FAILED', () => {
    assert.throws(
      () => new SqliteRunStore({ path, busyTimeoutMs: -1 }),
      (err: unknown) => (err as { code?: unknown }).code === 'VALIDATION_FAILED',
    );
  });
});

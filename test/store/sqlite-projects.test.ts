/**
 * Runs the ProjectStore conformance suite against the SQLite adapter on a real file, plus what
 * only a file can show: sharing one file with the agent and run stores, upgrading an older file,
 * and durability across reopen.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Projects } from '../../src/auth/projects.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SqliteProjectStore } from '../../src/store/sqlite-projects.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite-schema.ts';
import { projectStoreConformance } from './project-store.conformance.ts';
import { storeOnTempFile, rollBackSchema, userVersion } from '../support/sqlite-store.ts';

const T0 = Date.UTC(2026, 0, 1);

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

projectStoreConformance('SqliteProjectStore', () =>
  storeOnTempFile((path) => new SqliteProjectStore({ path })),
);

describe('SqliteProjectStore on a file', () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentpool-projects-'));
    path = join(dir, 'nested', 'agentpool.db');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const order of ['projects first', 'agents first'] as const) {
    it(`shares one file with SqliteAgentStore and SqliteRunStore (${order})`, async () => {
      // Whichever opens first runs every migration; the others find the file current.
      const early = order === 'projects first' ? new SqliteProjectStore({ path }) : undefined;
      const agents = new SqliteAgentStore({ path });
      const projects = early ?? new SqliteProjectStore({ path });
      const runs = new SqliteRunStore({ path });
      try {
        assert.ok(SQLITE_SCHEMA_VERSION >= 3);
        assert.equal(userVersion(path), SQLITE_SCHEMA_VERSION);
        await projects.createProject({ id: 'p1', name: 'P1', metadata: {}, now: T0 });
        await projects.createKey({
          id: 'key_1',
          project: 'p1',
          prefix: 'ap_12345',
          keyHash: sha256('ap_12345678'),
          name: 'ci',
          now: T0,
        });
        await agents.create({
          id: 'agt_a',
          project: 'p1',
          name: 'a',
          spec: { labels: {}, tier: 'warm' },
          now: T0,
        });
        await runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
        assert.equal((await projects.findKeyByHash(sha256('ap_12345678')))?.project, 'p1');
        assert.equal(await agents.count('p1'), 1);
        assert.equal((await runs.getThread('thr_1'))?.project, 'p1');
      } finally {
        await agents.close();
        await projects.close();
        await runs.close();
      }
    });
  }

  it('upgrades a file at schema version 2 by adding the project tables, keeping its agents', async () => {
    const agents = new SqliteAgentStore({ path });
    await agents.create({
      id: 'agt_a',
      project: 'p1',
      name: 'a',
      spec: { labels: {}, tier: 'warm' },
      now: T0,
    });
    await agents.close();
    rollBackSchema(path, 2); // what a version-2 agentpool wrote: no project tables

    const projects = new SqliteProjectStore({ path });
    try {
      assert.equal(userVersion(path), SQLITE_SCHEMA_VERSION);
      await projects.createProject({ id: 'p1', name: 'P1', metadata: {}, now: T0 });
      assert.equal((await projects.getProject('p1'))?.name, 'P1');
    } finally {
      await projects.close();
    }
    const reopened = new SqliteAgentStore({ path });
    try {
      assert.equal((await reopened.getById('agt_a'))?.name, 'a');
    } finally {
      await reopened.close();
    }
  });

  it('keeps projects and keys, their use and revocation, across close and reopen', async () => {
    const first = new SqliteProjectStore({ path });
    await first.createProject({ id: 'p1', name: 'P1', metadata: { plan: ['pro'] }, now: T0 });
    for (const id of ['key_1', 'key_2']) {
      await first.createKey({ id, project: 'p1', prefix: id, keyHash: sha256(id), name: id, now: T0 });
    }
    await first.touchKey('key_1', T0 + 1);
    await first.revokeKey('p1', 'key_2', T0 + 2);
    await first.setLimits('p1', { budgets: { monthlyUsd: 20 } });
    await first.close();

    const second = new SqliteProjectStore({ path });
    try {
      assert.deepEqual(await second.getProject('p1'), {
        id: 'p1',
        name: 'P1',
        createdAt: T0,
        limits: { budgets: { monthlyUsd: 20 } },
        metadata: { plan: ['pro'] },
      });
      assert.equal((await second.findKeyByHash(sha256('key_1')))?.lastUsedAt, T0 + 1);
      assert.equal(await second.findKeyByHash(sha256('key_2')), undefined);
      assert.equal(await second.countKeys(), 1);
    } finally {
      await second.close();
    }
  });

  it('holds only the hash of an issued key: the secret never reaches the file', async () => {
    const store = new SqliteProjectStore({ path });
    let secret: string;
    try {
      const data = { agents: new MemoryAgentStore(), runs: new MemoryRunStore() };
      const projects = new Projects({ store, clock: new ManualClock(T0), data });
      await projects.create({ id: 'p1' });
      secret = (await projects.createKey('p1', 'ci')).key;
      assert.equal(await projects.authenticate(secret), 'p1');
    } finally {
      await store.close();
    }
    // Everything written, checkpointed or not.
    const file = Buffer.concat(
      [path, `${path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)),
    );
    assert.ok(file.includes(sha256(secret)), 'the hash is stored');
    assert.ok(!file.includes(secret), 'the secret is not');
  });
});

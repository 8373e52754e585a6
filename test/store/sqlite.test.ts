/**
 * Runs the AgentStore conformance suite against the SQLite adapter on a real file, plus what only
 * a file can show: durability across reopen, WAL, and schema versioning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite-schema.ts';
import { agentStoreConformance } from './agent-store.conformance.ts';
import { storeOnTempFile, rollBackSchema, userVersion } from '../support/sqlite-store.ts';

const T0 = Date.UTC(2026, 0, 1);

agentStoreConformance('SqliteAgentStore', () => storeOnTempFile((path) => new SqliteAgentStore({ path })));

describe('SqliteAgentStore on a file', () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentpool-store-'));
    // A nested path: the store creates missing parent directories.
    path = join(dir, 'nested', 'deeper', 'agents.db');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps agents, versions and labels across close and reopen', async () => {
    const first = new SqliteAgentStore({ path });
    const a = await first.create({
      id: 'agt_a',
      project: 'p1',
      name: 'a',
      spec: { labels: { env: 'prod' }, tier: 'hot', ttlSeconds: 5 },
      now: T0,
    });
    const v2 = await first.addVersion(a.id, 1, { labels: { env: 'dev' }, tier: 'hot' }, T0 + 1);
    await first.close();

    const second = new SqliteAgentStore({ path });
    try {
      assert.deepEqual(await second.getByName('p1', 'a'), v2);
      assert.equal((await second.getVersion(a.id, 1))?.spec.ttlSeconds, 5);
      assert.deepEqual(
        (await second.list('p1', { limit: 10, labels: { env: 'dev' } })).data.map((r) => r.id),
        ['agt_a'],
      );
    } finally {
      await second.close();
    }
  });

  it('opens the file in WAL mode', async () => {
    const store = new SqliteAgentStore({ path });
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
  });

  it('sets user_version to the number of migrations', async () => {
    assert.ok(SQLITE_SCHEMA_VERSION >= 1);
    const store = new SqliteAgentStore({ path });
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('refuses a file written by a newer schema with STORE_FAILED and a clear message', async () => {
    await new SqliteAgentStore({ path }).close();
    const db = new Database(path);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(
      () => new SqliteAgentStore({ path }),
      (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'STORE_FAILED'));
        assert.match(err.message, new RegExp(`schema version ${SQLITE_SCHEMA_VERSION + 1}, newer than`));
        assert.match(err.message, /upgrade agentpool/);
        assert.equal(err.details.schemaVersion, SQLITE_SCHEMA_VERSION + 1);
        return true;
      },
    );
  });

  it('upgrades a file at schema version 4 by adding agents.rollout: its agents have no rollout', async () => {
    const first = new SqliteAgentStore({ path });
    await first.create({
      id: 'agt_a',
      project: 'p1',
      name: 'a',
      spec: { labels: {}, tier: 'warm' },
      now: T0,
    });
    await first.close();
    rollBackSchema(path, 4); // what a version-4 agentpool wrote: no rollout column

    const second = new SqliteAgentStore({ path });
    try {
      assert.equal(userVersion(path), SQLITE_SCHEMA_VERSION);
      assert.equal((await second.getById('agt_a'))?.rollout, null);
      const flag = { strategy: 'all' };
      const started = await second.addVersion('agt_a', 1, { labels: {}, tier: 'warm' }, T0 + 1, {
        rollout: flag,
      });
      assert.deepEqual(started.rollout, {
        candidateVersion: 2,
        flag,
        startedAt: T0 + 1,
        flagStartedAt: T0 + 1,
      });
    } finally {
      await second.close();
    }
  });

  it('reopens a file at the current schema without re-running its migrations', async () => {
    const first = new SqliteAgentStore({ path });
    await first.create({
      id: 'agt_a',
      project: 'p1',
      name: 'a',
      spec: { labels: {}, tier: 'warm' },
      now: T0,
    });
    await first.close();
    const second = new SqliteAgentStore({ path });
    try {
      assert.equal(await second.count('p1'), 1);
    } finally {
      await second.close();
    }
  });
});

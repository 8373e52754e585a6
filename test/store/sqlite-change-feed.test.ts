/**
 * The SQLite agent store's change feed: the change-feed conformance suite with two stores on one
 * file, as two processes have them (`agentpool serve` and `agentpool apply -f`), plus what only a
 * file shows: upgrading a file written before the feed existed. The suite runs twice: with a
 * connection per store, and with every store on one connection (as a pool opens its file), where
 * `data_version` does not see the other stores' writes and the connection's count of revisions does.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { AgentChange, IndexedSpec } from '../../src/store/ports.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SqliteDatabase } from '../../src/store/sqlite-connection.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { rollBackSchema } from '../support/sqlite-store.ts';
import { tempDir } from '../support/temp-dir.ts';
import { changeFeedConformance } from './change-feed.conformance.ts';

const T0 = Date.UTC(2026, 0, 1);
const spec = (instructions = 'help'): IndexedSpec & { instructions: string } => ({
  instructions,
  labels: {},
  tier: 'warm',
});

changeFeedConformance('SqliteAgentStore change feed', async () => {
  const tmp = tempDir();
  const path = join(tmp.dir, 'agentpool.db');
  const here = new SqliteAgentStore({ path });
  const there = new SqliteAgentStore({ path });
  return {
    here,
    there,
    openAgents: async (changeHistory) => new SqliteAgentStore({ path, changeHistory }),
    openRuns: async () => new SqliteRunStore({ path }),
    countTombstones: async () => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare('SELECT count(*) FROM agent_tombstones').pluck().get() as number;
      } finally {
        db.close();
      }
    },
    settle: async () => undefined,
    cleanup: async () => {
      await here.close();
      await there.close();
      tmp.cleanup();
    },
  };
});

changeFeedConformance('SqliteAgentStore change feed, every store on one connection', async () => {
  const tmp = tempDir();
  const path = join(tmp.dir, 'agentpool.db');
  const database = SqliteDatabase.open(path);
  const here = new SqliteAgentStore({ database });
  const there = new SqliteAgentStore({ database });
  database.release(); // the stores hold it now
  return {
    here,
    there,
    openAgents: async (changeHistory) => new SqliteAgentStore({ database, changeHistory }),
    openRuns: async () => new SqliteRunStore({ database }),
    countTombstones: async () =>
      database.db.prepare('SELECT count(*) FROM agent_tombstones').pluck().get() as number,
    settle: async () => undefined,
    cleanup: async () => {
      await here.close();
      await there.close();
      tmp.cleanup();
    },
  };
});

describe('SqliteAgentStore change feed on a file', () => {
  let tmp: ReturnType<typeof tempDir>;
  let path: string;
  let here: SqliteAgentStore;
  let there: SqliteAgentStore;

  beforeEach(() => {
    tmp = tempDir();
    path = join(tmp.dir, 'agentpool.db');
    here = new SqliteAgentStore({ path });
    there = new SqliteAgentStore({ path });
  });
  afterEach(async () => {
    await here.close();
    await there.close();
    tmp.cleanup();
  });

  const make = (store: SqliteAgentStore, name: string) =>
    store.create({ id: `agt_${name}`, project: 'p1', name, spec: spec(), now: T0 });
  const all = async (cursor: string): Promise<AgentChange[]> =>
    (await here.changeFeed.changesSince(cursor, 1000)).changes;

  it('upgrades a file at schema version 6: old agents are not reported, writes after the upgrade are', async () => {
    const a = await make(there, 'a');
    await here.close();
    await there.close();
    rollBackSchema(path, 6);
    here = new SqliteAgentStore({ path });
    there = new SqliteAgentStore({ path });
    const start = await here.changeFeed.head();
    assert.equal(start, '0');
    assert.deepEqual(await all(start), []);
    await there.addVersion(a.id, 1, spec('v2'), T0 + 1);
    assert.deepEqual(
      (await all(start)).map((c) => c.type === 'written' && c.activeVersion),
      [2],
    );
  });
});

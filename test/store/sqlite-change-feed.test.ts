/**
 * The SQLite agent store's change feed, with two stores on one file as two processes have them
 * (`agentpool serve` and `agentpool apply -f`): what one writes, the other's feed reports.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { AgentChange, IndexedSpec } from '../../src/store/ports.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { rollBackSchema } from '../support/sqlite-store.ts';
import { tempDir } from '../support/temp-dir.ts';

const T0 = Date.UTC(2026, 0, 1);
const spec = (instructions = 'help'): IndexedSpec & { instructions: string } => ({
  instructions,
  labels: {},
  tier: 'warm',
});

describe('SqliteAgentStore change feed', () => {
  let tmp: ReturnType<typeof tempDir>;
  let path: string;
  let here: SqliteAgentStore;
  let there: SqliteAgentStore;
  let seq = 0;

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
    store.create({ id: `agt_${String(++seq).padStart(8, '0')}`, project: 'p1', name, spec: spec(), now: T0 });
  const all = async (cursor: string): Promise<AgentChange[]> =>
    (await here.changeFeed.changesSince(cursor, 1000)).changes;

  it("reports another store's writes, oldest first, each as the agent's state after it", async () => {
    const start = await here.changeFeed.head();
    const a = await make(there, 'a');
    await there.addVersion(a.id, 1, spec('v2'), T0 + 1);
    const b = await make(there, 'b');
    await there.delete(b.id);
    assert.deepEqual(await all(start), [
      {
        type: 'written',
        id: a.id,
        project: 'p1',
        name: 'a',
        activeVersion: 2,
        latestVersion: 2,
        rollout: null,
      },
      { type: 'deleted', id: b.id, project: 'p1', name: 'b' },
    ]);
  });

  it('reports rollouts and rollbacks with the rollout as it is now', async () => {
    const a = await make(there, 'a');
    await there.addVersion(a.id, 1, spec('v2'), T0 + 1);
    const start = await here.changeFeed.head();
    await there.addVersion(a.id, 2, spec('v3'), T0 + 2, {
      rollout: { strategy: 'percentage', percent: 10 },
    });
    const [started] = await all(start);
    assert.equal(started?.type === 'written' && started.rollout?.candidateVersion, 3);
    assert.equal(started?.type === 'written' && started.activeVersion, 2);

    const afterRollout = await here.changeFeed.head();
    await there.setRollout(a.id, 3, null, T0 + 3);
    await there.activateVersion(a.id, 1, T0 + 4);
    assert.deepEqual(await all(afterRollout), [
      {
        type: 'written',
        id: a.id,
        project: 'p1',
        name: 'a',
        activeVersion: 1,
        latestVersion: 3,
        rollout: null,
      },
    ]);
  });

  it("does not report the store's own writes", async () => {
    const start = await here.changeFeed.head();
    const mine = await make(here, 'mine');
    await here.addVersion(mine.id, 1, spec('v2'), T0 + 1);
    await here.delete(mine.id);
    const page = await here.changeFeed.changesSince(start, 100);
    assert.deepEqual(page.changes, []);
    assert.equal(page.cursor, await here.changeFeed.head(), 'the cursor still moves past them');
    assert.notEqual(page.cursor, start);
  });

  it('does not report uses: touch and recordUse change no definition', async () => {
    const a = await make(there, 'a');
    const start = await here.changeFeed.head();
    await there.touch(a.id, T0 + 5);
    await there.recordUse([{ id: a.id, at: T0 + 6 }]);
    assert.equal(await here.changeFeed.head(), start);
    assert.equal(here.changeFeed.maybeChangedSince(start), false);
    assert.deepEqual(await all(start), []);
  });

  it('pages: a full page says more follow, and the next one continues at its cursor', async () => {
    const start = await here.changeFeed.head();
    for (const name of ['a', 'b', 'c', 'd', 'e']) await make(there, name);
    const names: string[] = [];
    let cursor = start;
    let pages = 0;
    for (let more = true; more; pages++) {
      const page = await here.changeFeed.changesSince(cursor, 2);
      names.push(...page.changes.map((c) => c.name));
      ({ cursor, more } = page);
    }
    assert.deepEqual(names, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(pages, 3);
    assert.equal(cursor, await here.changeFeed.head());
  });

  it('maybeChangedSince: false while no definition was written after the cursor, true once one was', async () => {
    const feed = here.changeFeed;
    const start = await feed.head();
    assert.equal(feed.maybeChangedSince(start), false);
    await make(there, 'theirs');
    assert.equal(feed.maybeChangedSince(start), true);
    assert.equal(feed.maybeChangedSince(start), true, 'it stays true until the cursor moves');
    const { cursor } = await feed.changesSince(start, 100);
    assert.equal(feed.maybeChangedSince(cursor), false);
    // Its own writes move the counter too: the read after them is empty and moves the cursor on.
    await make(here, 'mine');
    assert.equal(feed.maybeChangedSince(cursor), true);
    const next = await feed.changesSince(cursor, 100);
    assert.deepEqual(next.changes, []);
    assert.equal(feed.maybeChangedSince(next.cursor), false);
  });

  it('maybeChangedSince stays false when only runs were committed (through another connection)', async () => {
    const runs = new SqliteRunStore({ path });
    try {
      const feed = here.changeFeed;
      const cursor = await feed.head();
      assert.equal(feed.maybeChangedSince(cursor), false);
      await runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
      assert.equal(feed.maybeChangedSince(cursor), false);
    } finally {
      await runs.close();
    }
  });

  it('keeps deletions for changeHistory revisions: an older cursor gets an incomplete page', async () => {
    const short = new SqliteAgentStore({ path, changeHistory: 3 });
    try {
      const start = await here.changeFeed.head();
      const agents = [];
      for (const name of ['a', 'b', 'c'])
        agents.push(await short.create({ id: `agt_${name}`, project: 'p1', name, spec: spec(), now: T0 }));
      const middle = await here.changeFeed.head();
      for (const agent of agents) await short.delete(agent.id);
      const old = await here.changeFeed.changesSince(start, 100);
      assert.equal(old.complete, false, 'deletions after the start may have been pruned');
      const recent = await here.changeFeed.changesSince(middle, 100);
      assert.equal(recent.complete, true);
      assert.deepEqual(
        recent.changes.map((c) => `${c.type} ${c.name}`),
        ['deleted a', 'deleted b', 'deleted c'],
      );
      await short.close();
      const db = new Database(path, { readonly: true });
      try {
        assert.ok((db.prepare('SELECT count(*) FROM agent_tombstones').pluck().get() as number) <= 3);
      } finally {
        db.close();
      }
    } finally {
      await short.close();
    }
  });

  it('rejects a cursor it did not make with VALIDATION_FAILED', async () => {
    for (const cursor of ['', 'abc', '-1', '1.5']) {
      await assert.rejects(here.changeFeed.changesSince(cursor, 10), (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
        assert.equal(err.details.field, 'cursor');
        return true;
      });
    }
  });

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

/**
 * The AgentChangeFeed conformance suite: two agent stores on one database, as two processes or
 * nodes have them (`agentpool serve` and `agentpool apply -f`, or two nodes): what one writes, the
 * other's feed reports. Each adapter with a feed (SQLite, PostgreSQL) calls it with a factory.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type {
  AgentChange,
  AgentChangeFeed,
  AgentStore,
  IndexedSpec,
  RunStore,
} from '../../src/store/ports.ts';

const T0 = Date.UTC(2026, 0, 1);
const spec = (instructions = 'help'): IndexedSpec & { instructions: string } => ({
  instructions,
  labels: {},
  tier: 'warm',
});

/** Two stores with feeds on one database, and what the suite needs of the adapter. */
export interface ChangeFeedFixture {
  readonly here: AgentStore & { readonly changeFeed: AgentChangeFeed };
  readonly there: AgentStore;
  /** Another agent store on the same database, with its own `changeHistory`. */
  openAgents(changeHistory: number): Promise<AgentStore>;
  /** A run store on the same database, through its own connection. */
  openRuns(): Promise<RunStore>;
  /** Tombstones the database holds now. */
  countTombstones(): Promise<number>;
  /**
   * Resolves once `here`'s feed has learnt of every write committed before the call: at once where
   * the cheap check reads the database (SQLite), after the notification where it is pushed
   * (PostgreSQL's LISTEN).
   */
  settle(): Promise<void>;
  cleanup(): Promise<void>;
}

/** Registers the change-feed specification against the fixture `factory` builds. */
export function changeFeedConformance(name: string, factory: () => Promise<ChangeFeedFixture>): void {
  describe(name, () => {
    let f: ChangeFeedFixture;
    let seq = 0;

    beforeEach(async () => {
      f = await factory();
    });
    afterEach(async () => {
      await f.cleanup();
    });

    const make = (store: AgentStore, name: string) =>
      store.create({
        id: `agt_${String(++seq).padStart(8, '0')}`,
        project: 'p1',
        name,
        spec: spec(),
        now: T0,
      });
    const all = async (cursor: string): Promise<AgentChange[]> =>
      (await f.here.changeFeed.changesSince(cursor, 1000)).changes;

    it("reports another store's writes, oldest first, each as the agent's state after it", async () => {
      const start = await f.here.changeFeed.head();
      const a = await make(f.there, 'a');
      await f.there.addVersion(a.id, 1, spec('v2'), T0 + 1);
      const b = await make(f.there, 'b');
      await f.there.delete(b.id);
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
      const a = await make(f.there, 'a');
      await f.there.addVersion(a.id, 1, spec('v2'), T0 + 1);
      const start = await f.here.changeFeed.head();
      await f.there.addVersion(a.id, 2, spec('v3'), T0 + 2, {
        rollout: { strategy: 'percentage', percent: 10 },
      });
      const [started] = await all(start);
      assert.equal(started?.type === 'written' && started.rollout?.candidateVersion, 3);
      assert.equal(started?.type === 'written' && started.activeVersion, 2);

      const afterRollout = await f.here.changeFeed.head();
      await f.there.setRollout(a.id, 3, null, T0 + 3);
      await f.there.activateVersion(a.id, 1, T0 + 4);
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
      const start = await f.here.changeFeed.head();
      const mine = await make(f.here, 'mine');
      await f.here.addVersion(mine.id, 1, spec('v2'), T0 + 1);
      await f.here.delete(mine.id);
      const page = await f.here.changeFeed.changesSince(start, 100);
      assert.deepEqual(page.changes, []);
      assert.equal(page.cursor, await f.here.changeFeed.head(), 'the cursor still moves past them');
      assert.notEqual(page.cursor, start);
    });

    it('does not report uses: touch and recordUse change no definition', async () => {
      const a = await make(f.there, 'a');
      const start = await f.here.changeFeed.head();
      await f.there.touch(a.id, T0 + 5);
      await f.there.recordUse([{ id: a.id, at: T0 + 6 }]);
      await f.settle();
      assert.equal(await f.here.changeFeed.head(), start);
      assert.equal(f.here.changeFeed.maybeChangedSince(start), false);
      assert.deepEqual(await all(start), []);
    });

    it('pages: a full page says more follow, and the next one continues at its cursor', async () => {
      const start = await f.here.changeFeed.head();
      for (const name of ['a', 'b', 'c', 'd', 'e']) await make(f.there, name);
      const names: string[] = [];
      let cursor = start;
      let pages = 0;
      for (let more = true; more; pages++) {
        const page = await f.here.changeFeed.changesSince(cursor, 2);
        names.push(...page.changes.map((c) => c.name));
        ({ cursor, more } = page);
      }
      assert.deepEqual(names, ['a', 'b', 'c', 'd', 'e']);
      assert.equal(pages, 3);
      assert.equal(cursor, await f.here.changeFeed.head());
    });

    it('maybeChangedSince: false while no definition was written after the cursor, true once one was', async () => {
      const feed = f.here.changeFeed;
      const start = await feed.head();
      await f.settle();
      assert.equal(feed.maybeChangedSince(start), false);
      await make(f.there, 'theirs');
      await f.settle();
      assert.equal(feed.maybeChangedSince(start), true);
      assert.equal(feed.maybeChangedSince(start), true, 'it stays true until the cursor moves');
      const { cursor } = await feed.changesSince(start, 100);
      assert.equal(feed.maybeChangedSince(cursor), false);
      // Its own writes move the head too: the read after them is empty and moves the cursor on.
      await make(f.here, 'mine');
      await f.settle();
      assert.equal(feed.maybeChangedSince(cursor), true);
      const next = await feed.changesSince(cursor, 100);
      assert.deepEqual(next.changes, []);
      assert.equal(feed.maybeChangedSince(next.cursor), false);
    });

    it('maybeChangedSince stays false when only runs were committed (through another connection)', async () => {
      const runs = await f.openRuns();
      try {
        const feed = f.here.changeFeed;
        const cursor = await feed.head();
        await f.settle();
        assert.equal(feed.maybeChangedSince(cursor), false);
        await runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
        await f.settle();
        assert.equal(feed.maybeChangedSince(cursor), false);
      } finally {
        await runs.close();
      }
    });

    it('keeps deletions for changeHistory revisions: an older cursor gets an incomplete page', async () => {
      const short = await f.openAgents(3);
      try {
        const start = await f.here.changeFeed.head();
        const agents = [];
        for (const name of ['a', 'b', 'c'])
          agents.push(await short.create({ id: `agt_${name}`, project: 'p1', name, spec: spec(), now: T0 }));
        const middle = await f.here.changeFeed.head();
        for (const agent of agents) await short.delete(agent.id);
        const old = await f.here.changeFeed.changesSince(start, 100);
        assert.equal(old.complete, false, 'deletions after the start may have been pruned');
        const recent = await f.here.changeFeed.changesSince(middle, 100);
        assert.equal(recent.complete, true);
        assert.deepEqual(
          recent.changes.map((c) => `${c.type} ${c.name}`),
          ['deleted a', 'deleted b', 'deleted c'],
        );
        assert.ok((await f.countTombstones()) <= 3);
      } finally {
        await short.close();
      }
    });

    it('rejects a cursor it did not make with VALIDATION_FAILED', async () => {
      for (const cursor of ['', 'abc', '-1', '1.5']) {
        await assert.rejects(f.here.changeFeed.changesSince(cursor, 10), (err: unknown) => {
          assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
          assert.equal(err.details.field, 'cursor');
          return true;
        });
      }
    });
  });
}

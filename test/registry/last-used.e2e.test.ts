/**
 * An agent's lastUsedAt moves with its runs: held in memory, written once per interval on the
 * pool's clock (never a store write per run), and written at close.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../support/temp-dir.ts';

const P = 'default';
const T0 = Date.UTC(2026, 0, 1);

/** A memory agent store counting the writes a use can cause. */
function countingStore() {
  const store = new MemoryAgentStore();
  const writes = { recordUse: 0, touch: 0 };
  const recordUse = store.recordUse.bind(store);
  const touch = store.touch.bind(store);
  store.recordUse = (uses) => {
    writes.recordUse++;
    return recordUse(uses);
  };
  store.touch = (id, at) => {
    writes.touch++;
    return touch(id, at);
  };
  return { store, writes };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("an agent's lastUsedAt", () => {
  it('moves with runs, written once per interval however many runs there were', async () => {
    const clock = new ManualClock(T0);
    const { store, writes } = countingStore();
    const pool = await createAgentPool({
      store: { agents: store, runs: new MemoryRunStore() },
      clock,
      ttlSweepIntervalMs: 0,
      agents: { lastUsedFlushIntervalMs: 60_000 },
    });
    try {
      const agent = await pool.agents.create(P, { name: 'busy' });
      assert.equal(agent.lastUsedAt, T0);
      let lastRunAt = 0;
      for (let i = 0; i < 20; i++) {
        clock.advance(1000);
        const run = await (await pool.runs.start(P, 'busy', { input: 'hi' })).result;
        assert.equal(run.status, 'succeeded');
        lastRunAt = clock.now();
      }
      assert.deepEqual(writes, { recordUse: 0, touch: 0 }, 'no store write per run');
      assert.equal((await pool.agents.get(P, 'busy')).lastUsedAt, T0, 'not yet written');

      clock.advance(60_000 - 20_000); // the interval since the pool started ends
      await settle();
      assert.equal(writes.recordUse, 1);
      assert.equal((await pool.agents.get(P, 'busy')).lastUsedAt, lastRunAt);

      clock.advance(60_000); // nothing used since: nothing to write
      await settle();
      assert.equal(writes.recordUse, 1);
    } finally {
      await pool.close();
    }
  });

  it('is written when the pool closes, before the store is', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const clock = new ManualClock(T0);
      const pool = await createAgentPool({ dataDir: dir, clock, ttlSweepIntervalMs: 0 });
      await pool.agents.create(P, { name: 'once' });
      clock.advance(5000);
      assert.equal((await (await pool.runs.start(P, 'once', { input: 'hi' })).result).status, 'succeeded');
      await pool.close();
      const store = new SqliteAgentStore({ path: join(dir, 'agentpool.db') });
      try {
        assert.equal((await store.getByName(P, 'once'))?.lastUsedAt, T0 + 5000);
      } finally {
        await store.close();
      }
    } finally {
      cleanup();
    }
  });

  it('keeps an ephemeral agent alive while it is used: its expiry follows its last use', async () => {
    const clock = new ManualClock(T0);
    const pool = await createAgentPool({
      store: 'memory',
      clock,
      ttlSweepIntervalMs: 0,
      agents: { lastUsedFlushIntervalMs: 1000 },
    });
    try {
      await pool.agents.create(P, { name: 'short', ttlSeconds: 60 });
      const run = async () => (await pool.runs.start(P, 'short', { input: 'hi' })).result;
      clock.advance(30_000);
      await run(); // activates it: touched now
      clock.advance(20_000);
      await run(); // warm: no write of its own
      clock.advance(1000);
      await settle();
      const agent = await pool.agents.get(P, 'short');
      assert.equal(agent.lastUsedAt, T0 + 50_000);
      assert.equal(agent.expiresAt, T0 + 110_000);
    } finally {
      await pool.close();
    }
  });
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type AgentPool, type AgentPoolEvent, createAgentPool, ManualClock } from '../../src/index.ts';
import { resolveCheckpointOptions } from '../../src/pool/checkpoint-options.ts';
import { buildServer } from '../../src/server/app.ts';
import type { AgentStore } from '../../src/store/ports.ts';
import { openSqliteStores } from '../../src/store/sqlite-stores.ts';
import { testSchema } from '../support/postgres.ts';
import { tempDir } from '../support/temp-dir.ts';

const P = 'default';

describe('working-set checkpoint', () => {
  const cleanups: (() => void)[] = [];
  after(() => {
    for (const c of cleanups) c();
  });
  const dataDir = () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };

  /** A pool on `dir`'s SQLite file with a manual clock; `events` records the scaling events. */
  async function open(dir: string, extra: Parameters<typeof createAgentPool>[0] = {}) {
    const clock = new ManualClock();
    const pool = await createAgentPool({
      dataDir: dir,
      clock,
      ...extra,
      pool: { maxActive: 8, ...extra.pool },
    });
    const events: AgentPoolEvent[] = [];
    pool.events.on('*', (e) => {
      if (e.type.startsWith('pool.')) events.push(e);
    });
    return { pool, clock, events };
  }

  /** Uses agents r0…r3 (the regulars) often and o0…o11 (the others) once each. */
  async function serveTraffic(pool: AgentPool): Promise<void> {
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 4; i++) (await pool.instances.acquire(P, `r${i}`)).release();
      (await pool.instances.acquire(P, `o${round}`)).release();
    }
  }

  async function createAgents(pool: AgentPool): Promise<void> {
    for (let i = 0; i < 4; i++) await pool.agents.create(P, { name: `r${i}` });
    for (let i = 0; i < 12; i++) await pool.agents.create(P, { name: `o${i}` });
  }

  const resident = (pool: AgentPool) =>
    pool.instances
      .instances(P)
      .map((i) => i.name)
      .sort();

  it('has documented defaults and names the field of a bad value', () => {
    assert.deepEqual(resolveCheckpointOptions(), {
      enabled: true,
      intervalMs: 60_000,
      warmupCount: 1000,
      warmupTimeoutMs: 60_000,
      warmupConcurrency: 4,
    });
    assert.throws(() => resolveCheckpointOptions({ intervalMs: 10 }), /pool\.checkpoint\.intervalMs must be/);
    assert.throws(
      () => resolveCheckpointOptions({ warmupCount: -1 }),
      /pool\.checkpoint\.warmupCount must be/,
    );
    assert.throws(
      () => resolveCheckpointOptions({ every: 1 }),
      /pool\.checkpoint\.every is not a known field/,
    );
  });

  it('a pool reopened on the same SQLite file prewarms its top agents before it says ready', async () => {
    const dir = dataDir();
    const first = await open(dir);
    await first.pool.checkpoint.start();
    await createAgents(first.pool);
    await serveTraffic(first.pool);
    const before = resident(first.pool);
    assert.ok(before.includes('r0') && before.includes('r3'), `regulars resident: ${before.join()}`);
    await first.pool.close(); // saves at shutdown
    // (the start's pool.warmed went out before the test subscribed)
    assert.deepEqual(
      first.events.map((e) => e.type),
      ['pool.checkpointed'],
    );
    const saved = first.events[0] as Extract<AgentPoolEvent, { type: 'pool.checkpointed' }>;
    assert.equal(saved.reason, 'shutdown');
    assert.equal(saved.node, 'local');
    assert.equal(saved.agents, before.length);

    // Only the three most valuable are prewarmed: the regulars come first.
    const second = await open(dir, { pool: { checkpoint: { warmupCount: 3 } } });
    try {
      const report = await second.pool.checkpoint.start();
      assert.equal(second.pool.checkpoint.status, 'ready');
      assert.equal(report?.warmed, 3);
      assert.equal(report?.failed, 0);
      assert.equal(report?.sketchRestored, true);
      const warmed = resident(second.pool);
      assert.equal(warmed.length, 3);
      for (const name of warmed) assert.match(name, /^r[0-3]$/, `prewarmed ${warmed.join()}`);
      const event = second.events.find((e) => e.type === 'pool.warmed');
      assert.equal(event?.type === 'pool.warmed' && event.warmed, 3);
      // The lease that follows is a warm hit.
      const hits = second.pool.instances.stats().hits;
      (await second.pool.instances.acquire(P, warmed[0]!)).release();
      assert.equal(second.pool.instances.stats().hits, hits + 1);
    } finally {
      await second.pool.close();
    }
  });

  it('restores the frequency sketch: the regulars keep their counts across the restart', async () => {
    const dir = dataDir();
    const first = await open(dir);
    await first.pool.checkpoint.start();
    await createAgents(first.pool);
    await serveTraffic(first.pool);
    const frequencyBefore = first.pool.instances.workingSet().find((e) => e.name === 'r0')?.frequency ?? 0;
    assert.ok(frequencyBefore >= 10, `r0 seen often: ${frequencyBefore}`);
    await first.pool.close();

    const withSketch = await open(dir);
    try {
      await withSketch.pool.checkpoint.start();
      const after = withSketch.pool.instances.workingSet().find((e) => e.name === 'r0');
      assert.ok(after !== undefined && after.frequency >= frequencyBefore, `r0 after: ${after?.frequency}`);
      // The use counts carry over too: the next checkpoint adds the new uses to the old ones.
      const next = await withSketch.pool.checkpoint.save();
      const r0 = next?.entries.find((e) => e.name === 'r0');
      assert.ok(r0 !== undefined && r0.uses > 12, `r0 uses: ${r0?.uses}`);
    } finally {
      await withSketch.pool.close();
    }

    // The same file without the checkpoint starts from scratch: one use (the activation) each.
    const cold = await open(dir, { pool: { checkpoint: { enabled: false } } });
    try {
      assert.equal(cold.pool.checkpoint.status, 'disabled');
      assert.equal(await cold.pool.checkpoint.start(), null);
      assert.deepEqual(resident(cold.pool), []);
      (await cold.pool.instances.acquire(P, 'r0')).release();
      assert.equal(cold.pool.instances.workingSet().find((e) => e.name === 'r0')?.frequency, 1);
    } finally {
      await cold.pool.close();
    }
  });

  it('saves every intervalMs on the injected clock, and skips agents deleted since', async () => {
    const dir = dataDir();
    const first = await open(dir, { pool: { checkpoint: { intervalMs: 5000 } } });
    await first.pool.checkpoint.start();
    await createAgents(first.pool);
    await serveTraffic(first.pool);
    assert.equal(first.pool.checkpoint.stats().saves, 0);
    first.clock.advance(5000);
    await first.pool.checkpoint.save(); // queued behind the interval's save: both are done after it
    const stats = first.pool.checkpoint.stats();
    assert.equal(stats.saves, 2);
    assert.equal(stats.lastSavedAt, first.clock.now());
    const reasons = first.events.filter((e) => e.type === 'pool.checkpointed').map((e) => e.reason);
    assert.deepEqual(reasons, ['interval', 'manual']);
    await first.pool.agents.delete(P, 'r1');
    await first.pool.close();

    const second = await open(dir);
    try {
      const report = await second.pool.checkpoint.start();
      assert.equal(report?.skipped, 0); // r1 was retired at deletion, so the shutdown save left it out
      assert.equal(resident(second.pool).includes('r1'), false);
      assert.equal(report?.warmed, resident(second.pool).length);
    } finally {
      await second.pool.close();
    }
  });

  it('restores the classes of auto agents: one classified hot is pinned again from the start', async () => {
    const dir = dataDir();
    const tiers = { maxHot: 1, hotMinScore: 5, intervalMs: 1000 };
    const first = await open(dir, { pool: { tiers } });
    await first.pool.checkpoint.start();
    await createAgents(first.pool);
    await serveTraffic(first.pool);
    first.clock.advance(1000); // r0…r3 used 12 times each: the first is made hot
    const hot = first.pool.instances.instances(P).filter((i) => i.tier === 'hot');
    assert.equal(hot.length, 1);
    await first.pool.close();

    const second = await open(dir, { pool: { tiers } });
    try {
      await second.pool.checkpoint.start();
      const again = second.pool.instances.instance(P, hot[0]!.name);
      assert.deepEqual([again?.tier, again?.pinned], ['hot', true]);
      assert.equal(second.pool.instances.stats().pinned, 1);
    } finally {
      await second.pool.close();
    }
  });

  it('keys the checkpoint by node id: another node finds none of it', async () => {
    const dir = dataDir();
    const first = await open(dir, { cluster: { nodeId: 'node-a' } });
    await first.pool.checkpoint.start();
    await createAgents(first.pool);
    await serveTraffic(first.pool);
    await first.pool.close();

    const other = await open(dir, { cluster: { nodeId: 'node-b' } });
    try {
      const report = await other.pool.checkpoint.start();
      assert.deepEqual([report?.savedAt, report?.warmed], [null, 0]);
      assert.deepEqual(resident(other.pool), []);
    } finally {
      await other.pool.close();
    }
    const same = await open(dir, { cluster: { nodeId: 'node-a' } });
    try {
      assert.ok(((await same.pool.checkpoint.start())?.warmed ?? 0) > 0);
    } finally {
      await same.pool.close();
    }
  });

  it('answers /readyz 503 warming until the prewarm is done, or warmupTimeoutMs passed', async () => {
    const dir = dataDir();
    const first = await open(dir);
    await first.pool.checkpoint.start();
    await createAgents(first.pool);
    await serveTraffic(first.pool);
    await first.pool.close();

    // The agent store holds every read of an agent until the gate opens: the prewarm cannot finish before.
    let open_: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open_ = resolve));
    const opened = openSqliteStores(join(dir, 'agentpool.db'), { workingSets: true });
    const agents = new Proxy(opened.agents, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'getById' && prop !== 'getByName')
          return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          if (args[0] !== 'agt_ping') await gate; // readiness's own probe passes
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as AgentStore;
    const clock = new ManualClock();
    const pool = await createAgentPool({
      store: { ...opened, agents, workingSets: opened.workingSets! },
      clock,
      pool: { maxActive: 8, checkpoint: { warmupTimeoutMs: 30_000 } },
    });
    const app = await buildServer(pool);
    try {
      const warming = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(warming.statusCode, 503);
      assert.equal(warming.json().status, 'warming');
      clock.advance(29_999);
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
      // Past warmupTimeoutMs the node says ready while the prewarm goes on.
      clock.advance(1);
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
      assert.deepEqual(pool.instances.instances(P), []);
      open_();
      const report = await pool.checkpoint.start();
      assert.ok((report?.warmed ?? 0) > 0);
      assert.equal(pool.instances.instances(P).length, report?.warmed);
    } finally {
      open_();
      await app.close();
      await pool.close();
    }
  });

  it('on one PostgreSQL database, each node saves and prewarms its own working set', async () => {
    const schema = await testSchema('checkpoint');
    const node = (nodeId: string) =>
      createAgentPool({
        store: 'postgres',
        databaseUrl: schema.url,
        postgres: { schema: schema.schema },
        cluster: { nodeId },
        clock: new ManualClock(),
        ttlSweepIntervalMs: 0,
        pool: { maxActive: 8 },
      });
    try {
      const a = await node('node-a');
      const b = await node('node-b');
      await a.checkpoint.start();
      await b.checkpoint.start();
      for (let i = 0; i < 4; i++) await a.agents.create(P, { name: `x${i}` });
      // Each node serves its own agents: their working sets differ.
      for (let round = 0; round < 5; round++) {
        for (const name of ['x0', 'x1']) (await a.instances.acquire(P, name)).release();
        for (const name of ['x2', 'x3']) (await b.instances.acquire(P, name)).release();
      }
      await Promise.all([a.close(), b.close()]);
      const again = await Promise.all([node('node-a'), node('node-b')]);
      try {
        await Promise.all(again.map((n) => n.checkpoint.start()));
        assert.deepEqual(resident(again[0]!), ['x0', 'x1']);
        assert.deepEqual(resident(again[1]!), ['x2', 'x3']);
      } finally {
        await Promise.all(again.map((n) => n.close()));
      }
    } finally {
      await schema.cleanup();
    }
  });
});

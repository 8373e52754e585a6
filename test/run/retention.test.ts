/**
 * Retention over a whole pool on the injected clock: threads idle past `retention.days` go with
 * their messages and runs, stateless runs finished before it go, recent ones stay, on each store;
 * a project's own `limits.retention.days` wins; a thread with a run in flight stays; the sweep
 * works in bounded batches and lets other work run between them; deleted counts are metrics, an
 * event and stats; in a cluster a node does not sweep while another holds the duty.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type AgentPool, type AgentPoolOptions, createAgentPool } from '../../src/agent-pool.ts';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import { RedisDutyLock } from '../../src/coordination/redis/duty-lock.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { RetentionSweptEvent } from '../../src/run/retention.ts';
import { resolveRetentionOptions } from '../../src/run/retention-options.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import type { ProjectWalk, RetainedThreads, RetentionDeleted } from '../../src/store/ports.ts';
import { slowModel } from '../server/support.ts';
import { testSchema } from '../support/postgres.ts';
import { redisPrefix } from '../support/redis.ts';
import { tempDir } from '../support/temp-dir.ts';

const DAY = 86_400_000;
const P = 'default';

/** A thread in `project` with one finished run of `agent` on it; answers the thread and run ids. */
async function threadWithRun(pool: AgentPool, project = P, agent = 'bot') {
  const thread = await pool.threads.create(project);
  const run = await (await pool.runs.start(project, agent, { input: 'hi', threadId: thread.id })).result;
  return { thread: thread.id, run: run.id };
}

async function statelessRun(pool: AgentPool, project = P, agent = 'bot'): Promise<string> {
  return (await (await pool.runs.start(project, agent, { input: 'hi' })).result).id;
}

const gone = (pool: AgentPool, project: string, thread: string) =>
  assert.rejects(pool.threads.get(project, thread), (e) => isAgentPoolError(e, 'THREAD_NOT_FOUND'));

describe('retention', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('resolves its options with defaults, naming a bad field', () => {
    assert.deepEqual(resolveRetentionOptions(), { days: 30, batchSize: 100, intervalMs: 600_000 });
    assert.throws(
      () => resolveRetentionOptions({ batchSize: 5000 }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details.field === 'retention.batchSize',
    );
    assert.throws(
      () => resolveRetentionOptions({ days: -1 }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details.field === 'retention.days',
    );
  });

  for (const store of ['memory', 'sqlite', 'postgres'] as const) {
    it(`deletes what is idle past retention.days and keeps the rest (${store})`, async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const options: AgentPoolOptions = { clock, ttlSweepIntervalMs: 0, retention: { intervalMs: 0 } };
      if (store === 'sqlite') {
        const dir = tempDir();
        cleanups.push(dir.cleanup);
        options.dataDir = dir.dir;
      } else if (store === 'postgres') {
        const db = await testSchema('retention');
        cleanups.push(db.cleanup);
        Object.assign(options, { store, databaseUrl: db.url, postgres: { schema: db.schema } });
      } else {
        options.store = 'memory';
      }
      const pool = await createAgentPool(options);
      try {
        const events: RetentionSweptEvent[] = [];
        pool.events.on('retention.swept', (e) => events.push(e as RetentionSweptEvent));
        await pool.agents.create(P, { name: 'bot' });
        const old = await threadWithRun(pool);
        const oldRun = await statelessRun(pool);
        clock.advance(10 * DAY);
        const recent = await threadWithRun(pool);
        const recentRun = await statelessRun(pool);
        clock.advance(21 * DAY); // 31 days after the old ones, 21 after the recent ones

        const sweep = await pool.retention.sweep();
        assert.deepEqual(
          sweep && [sweep.threads, sweep.messages, sweep.runs, sweep.statelessRuns],
          [1, 2, 2, 1],
          'the old thread, its two messages and its run; the old stateless run',
        );
        await gone(pool, P, old.thread);
        await assert.rejects(pool.runs.get(P, old.run), (e) => isAgentPoolError(e, 'RUN_NOT_FOUND'));
        await assert.rejects(pool.runs.get(P, oldRun), (e) => isAgentPoolError(e, 'RUN_NOT_FOUND'));
        // Its events were replayable from memory: they go with it.
        await assert.rejects(pool.runs.events(P, oldRun), (e) => isAgentPoolError(e, 'RUN_NOT_FOUND'));
        await assert.rejects(pool.runs.events(P, old.run), (e) => isAgentPoolError(e, 'RUN_NOT_FOUND'));
        await pool.runs.events(P, recentRun); // still there
        assert.equal((await pool.threads.get(P, recent.thread)).messageCount, 2);
        assert.equal((await pool.runs.get(P, recentRun)).status, 'succeeded');

        assert.deepEqual(pool.retention.stats().deleted, { threads: 1, messages: 2, runs: 2 });
        assert.equal(pool.retention.stats().sweeps, 1);
        assert.deepEqual(
          events.map((e) => [e.threads, e.runs]),
          [[1, 2]],
        );
        const scrape = (await pool.metrics.scrape()).body;
        assert.match(scrape, /agentpool_retention_deleted_total\{kind="threads"\} 1\n/);
        assert.match(scrape, /agentpool_retention_deleted_total\{kind="messages"\} 2\n/);
        assert.match(scrape, /agentpool_retention_deleted_total\{kind="runs"\} 2\n/);

        assert.deepEqual((await pool.retention.sweep())?.threads, 0, 'nothing more to delete');
      } finally {
        await pool.close();
      }
    });
  }

  it("keeps a project's own retention.days instead of the pool's (0: for good)", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const pool = await createAgentPool({ store: 'memory', clock, retention: { intervalMs: 0, days: 30 } });
    try {
      await pool.projects.create({ id: 'long', limits: { retention: { days: 90 } } });
      await pool.projects.create({ id: 'short', limits: { retention: { days: 7 } } });
      await pool.projects.create({ id: 'forever', limits: { retention: { days: 0 } } });
      const threads: Record<string, string> = {};
      for (const project of [P, 'long', 'short', 'forever']) {
        await pool.agents.create(project, { name: 'bot' });
        threads[project] = (await threadWithRun(pool, project)).thread;
      }
      clock.advance(8 * DAY);
      await pool.retention.sweep();
      await gone(pool, 'short', threads['short']!);
      assert.ok(await pool.threads.get(P, threads[P]!), '8 days < the pool’s 30');
      clock.advance(30 * DAY);
      await pool.retention.sweep();
      await gone(pool, P, threads[P]!);
      assert.ok(await pool.threads.get('long', threads['long']!));
      await pool.projects.updateLimits('long', { retention: { days: 20 } });
      await pool.retention.sweep();
      await gone(pool, 'long', threads['long']!);
      assert.ok(await pool.threads.get('forever', threads['forever']!));
      await assert.rejects(
        pool.projects.updateLimits('long', { retention: { days: -3 } }),
        (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details.field === 'limits.retention.days',
      );
    } finally {
      await pool.close();
    }
  });

  it('keeps a thread whose run is in flight', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const slow = slowModel();
    const pool = await createAgentPool({
      store: 'memory',
      clock,
      retention: { intervalMs: 0 },
      models: { custom: { slow: () => slow.model } },
    });
    try {
      await pool.agents.create(P, { name: 'bot' });
      await pool.agents.create(P, { name: 'slowpoke', model: 'slow/x' });
      const idle = await threadWithRun(pool);
      const busy = await pool.threads.create(P);
      await pool.runs.start(P, 'bot', { input: 'hi', threadId: busy.id }).then((h) => h.result);
      const handle = await pool.runs.start(P, 'slowpoke', { input: 'wait', threadId: busy.id });
      await slow.started;
      clock.advance(40 * DAY);
      const sweep = await pool.retention.sweep();
      assert.equal(sweep?.threads, 1);
      await gone(pool, P, idle.thread);
      assert.ok(await pool.threads.get(P, busy.id), 'its run is in flight');
      slow.release();
      assert.equal((await handle.result).status, 'succeeded');
    } finally {
      await pool.close();
    }
  });

  it('sweeps in batches of batchSize, letting other work run between them', async () => {
    const calls: { list: number[]; delete: number[]; runs: number[] } = { list: [], delete: [], runs: [] };
    class SpyRunStore extends MemoryRunStore {
      override async listRetainedThreads(
        project: string,
        before: number,
        walk: ProjectWalk,
      ): Promise<RetainedThreads> {
        calls.list.push(walk.limit);
        return super.listRetainedThreads(project, before, walk);
      }
      override async deleteRetainedThreads(
        ids: readonly string[],
        before: number,
      ): Promise<RetentionDeleted> {
        calls.delete.push(ids.length);
        return super.deleteRetainedThreads(ids, before);
      }
      override async deleteRetainedRuns(project: string, before: number, limit: number): Promise<number> {
        const n = await super.deleteRetainedRuns(project, before, limit);
        calls.runs.push(n);
        return n;
      }
    }
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const pool = await createAgentPool({
      store: { agents: new MemoryAgentStore(), runs: new SpyRunStore() },
      clock,
      retention: { intervalMs: 0, batchSize: 3 },
    });
    try {
      await pool.agents.create(P, { name: 'bot' });
      for (let i = 0; i < 10; i++) await threadWithRun(pool);
      for (let i = 0; i < 7; i++) await statelessRun(pool);
      clock.advance(31 * DAY);
      let ranDuringSweep = false;
      const sweeping = pool.retention.sweep();
      setImmediate(() => (ranDuringSweep = pool.retention.stats().sweeping));
      const sweep = await sweeping;
      assert.deepEqual(sweep && [sweep.threads, sweep.statelessRuns], [10, 7]);
      assert.ok(ranDuringSweep, 'a callback queued after the sweep began ran before it ended');
      assert.ok(calls.list.every((limit) => limit === 3));
      assert.ok(calls.list.length >= 4, `${calls.list.length} walking steps of 3 for 10 threads`);
      assert.ok(calls.delete.every((n) => n <= 3));
      assert.deepEqual(calls.runs, [3, 3, 1]);
    } finally {
      await pool.close();
    }
  });

  it('sweeps every intervalMs on the injected clock', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const pool = await createAgentPool({ store: 'memory', clock, retention: { intervalMs: 60_000 } });
    try {
      await pool.agents.create(P, { name: 'bot' });
      const { thread } = await threadWithRun(pool);
      clock.advance(31 * DAY - 60_000);
      assert.equal(pool.retention.stats().sweeps, 0);
      clock.advance(60_000);
      const deadline = Date.now() + 5000;
      while (pool.retention.stats().sweeps === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(pool.retention.stats().sweeps, 1);
      await gone(pool, P, thread);
    } finally {
      await pool.close();
    }
  });

  it('does not sweep on a cluster node while another node holds the duty', async () => {
    const db = await testSchema('retention');
    const redis = await redisPrefix('retention');
    cleanups.push(redis.cleanup, db.cleanup);
    const pool = await createAgentPool({
      store: 'postgres',
      databaseUrl: db.url,
      postgres: { schema: db.schema },
      redisUrl: redis.url,
      redisPrefix: redis.prefix,
      cluster: { nodeId: 'node-a' },
      ttlSweepIntervalMs: 0,
      retention: { intervalMs: 0 },
    });
    const conn = await connectRedis(resolveRedisConnection({ url: redis.url, prefix: redis.prefix }), 'test');
    try {
      const other = new RedisDutyLock({ redis: conn, prefix: redis.prefix, nodeId: 'node-b' });
      assert.equal(await other.hold('retention', 60_000), true);
      assert.equal(await pool.retention.sweep(), null);
      await other.release('retention');
      assert.ok(await pool.retention.sweep());
      assert.equal(await other.hold('retention', 60_000), true, 'node-a gave the duty back after its sweep');
    } finally {
      conn.disconnect();
      await pool.close();
    }
  });
});

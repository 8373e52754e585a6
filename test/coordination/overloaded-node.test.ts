/**
 * Each node of a cluster heals itself: two pools on one PostgreSQL schema and one Redis prefix,
 * each with its own health readings. An overloaded node refuses new runs (background ones too)
 * and stops taking background runs from the shared queue (a fetch already waiting on Redis may
 * bring one more), so the other node runs them; once it recovers it takes them again, and the
 * other, overloaded in turn, leaves them to it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { HealthReadings, ProcessReading } from '../../src/pool/process-readings.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { testSchema } from '../support/postgres.ts';
import { redisPrefix } from '../support/redis.ts';

const P = 'default';
const GiB = 2 ** 30;
const CALM: ProcessReading = {
  eventLoopDelayMs: 5,
  eventLoopUtilization: 0.1,
  heapUsedBytes: 0.1 * GiB,
  heapLimitBytes: 4 * GiB,
  rssBytes: 0.2 * GiB,
  cpuRatio: 0.1,
};
const OVERLOADED: ProcessReading = { ...CALM, eventLoopDelayMs: 5000 };

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The queue is held from the status change's event: BullMQ's worker stops fetching, but a fetch
 * already blocked on Redis may still bring one job (at most one per node), as the test allows.
 */
const settle = () => new Promise((r) => setTimeout(r, 200));

describe('an overloaded node of a cluster', () => {
  let fake: FakeOpenAI;
  const nodes: { pool: AgentPool; reading: { current: ProcessReading } }[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    fake = await startFakeOpenAI();
    const db = await testSchema('overload');
    const redis = await redisPrefix('overload');
    cleanups.push(redis.cleanup, db.cleanup, () => fake.close());
    for (const nodeId of ['node-a', 'node-b']) {
      const reading = { current: CALM };
      const readings: HealthReadings = { read: () => reading.current, close() {} };
      const pool = await createAgentPool({
        store: 'postgres',
        databaseUrl: db.url,
        postgres: { schema: db.schema },
        redisUrl: redis.url,
        redisPrefix: redis.prefix,
        cluster: { nodeId },
        models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'k' } }, env: {} },
        ttlSweepIntervalMs: 0,
        pool: { health: { intervalMs: 100, readings } },
      });
      nodes.push({ pool, reading });
    }
    await nodes[0]?.pool.agents.create(P, { name: 'bot', model: 'openai-compatible/fake-model' });
  });

  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.pool.close()));
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  });

  /** Runs of `bot` this node executed since it started (its own figures). */
  const executed = (pool: AgentPool) => pool.metrics.agents.agent(P, 'bot')?.runs.succeeded ?? 0;

  /** Waits until the nodes' own figures hold `total` runs: a node counts a run just after committing it. */
  const counted = (total: number) =>
    waitFor(
      `the nodes counted ${total} runs`,
      () => nodes.reduce((n, node) => n + executed(node.pool), 0) === total,
    );

  async function backgroundRuns(via: AgentPool, count: number): Promise<void> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++)
      ids.push((await via.runs.startBackground(P, 'bot', { input: `job ${i}` })).id);
    await waitFor('every background run ended', async () => {
      const runs = await Promise.all(ids.map((id) => via.runs.get(P, id)));
      return runs.every((r) => r.status === 'succeeded');
    });
  }

  it('refuses new runs and leaves the queue to the other node; recovered, it takes jobs again', async () => {
    const [a, b] = nodes as [(typeof nodes)[number], (typeof nodes)[number]];
    a.reading.current = OVERLOADED;
    await waitFor('node-a is overloaded', () => a.pool.health.overloaded);
    await settle();
    await assert.rejects(a.pool.runs.startBackground(P, 'bot', { input: 'x' }), (e) =>
      isAgentPoolError(e, 'OVERLOADED'),
    );
    await assert.rejects(a.pool.runs.start(P, 'bot', { input: 'x' }), (e) =>
      isAgentPoolError(e, 'OVERLOADED'),
    );

    await backgroundRuns(b.pool, 8);
    await counted(8);
    const tookWhileOverloaded = executed(a.pool);
    assert.ok(
      tookWhileOverloaded <= 1,
      `the overloaded node took at most the one fetch in flight: ${tookWhileOverloaded}`,
    );
    assert.equal(executed(b.pool), 8 - tookWhileOverloaded);

    a.reading.current = CALM;
    b.reading.current = OVERLOADED;
    await waitFor(
      'node-a recovered and node-b is overloaded',
      () => !a.pool.health.overloaded && b.pool.health.overloaded,
    );
    const before = { a: executed(a.pool), b: executed(b.pool) };
    await backgroundRuns(a.pool, 8);
    await counted(16);
    const tookByB = executed(b.pool) - before.b;
    assert.ok(tookByB <= 1, `node-b, overloaded now, took at most one: ${tookByB}`);
    assert.equal(executed(a.pool) - before.a, 8 - tookByB, 'recovered, node-a takes jobs again');
  });
});

/**
 * Quotas, budgets and provider rate limits counted once for a cluster: three pools in this
 * process, each with its own SQLite connections to one file (as three processes would have) and
 * its own Redis connection, sharing one key prefix through the Redis ledger and rate limiter. The
 * model is the fake OpenAI-compatible server over HTTP. A node dies by losing Redis for good (its
 * connection is cut): its holds are freed by expiry, not by anything it does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { type AgentPool, type AgentPoolOptions, createAgentPool } from '../../src/agent-pool.ts';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import { RedisGovernanceLedger } from '../../src/coordination/redis/governance-ledger.ts';
import { RedisRateLimiter } from '../../src/coordination/redis/rate-limiter.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { type AgentPoolError, isAgentPoolError } from '../../src/core/errors.ts';
import type { RunHandle } from '../../src/run/runs.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { type FakeHandler, startFakeOpenAI } from '../support/fake-openai.ts';
import { redisPrefix } from '../support/redis.ts';
import { tempDir } from '../support/temp-dir.ts';

const P = 'acme';
const MODEL = 'openai-compatible/fake-model';
/** Noon UTC, mid-month: no window edge during a test. */
const T0 = Date.UTC(2026, 0, 15, 12);
/** $1/512 per token: every cost and sum is an exact binary fraction on the nano-dollar grid. */
const PER_MILLION = 1_000_000 / 512;
const HOLD_TTL_MS = 3000;

interface Node {
  readonly pool: AgentPool;
  readonly redis: Redis;
}

/** Three pools on one SQLite file and one Redis prefix, sharing a clock and a fake provider. */
async function cluster(options: Partial<AgentPoolOptions> = {}) {
  const fake = await startFakeOpenAI();
  const tmp = tempDir();
  const { url, prefix, cleanup } = await redisPrefix('cluster');
  const clock = new ManualClock(T0);
  const nodes: Node[] = [];
  const close = async () => {
    try {
      for (const n of nodes) await n.pool.close();
    } finally {
      for (const n of nodes) n.redis.disconnect();
      await cleanup();
      await fake.close();
      tmp.cleanup();
    }
  };
  try {
    for (let i = 0; i < 3; i++) {
      const redis = await connectRedis(resolveRedisConnection({ url, prefix }), `node-${i}`);
      const coordination = {
        ledger: new RedisGovernanceLedger({ redis, prefix, clock }, { holdTtlMs: HOLD_TTL_MS }),
        rateLimiter: new RedisRateLimiter({ redis, prefix }),
      };
      const pool = await createAgentPool({
        dataDir: tmp.dir,
        clock,
        ttlSweepIntervalMs: 0,
        models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'k' } }, env: {} },
        prices: { prices: { [MODEL]: { inputPerMillion: PER_MILLION, outputPerMillion: PER_MILLION } } },
        coordination,
        ...options,
      }).catch((err: unknown) => {
        redis.disconnect();
        throw err;
      });
      nodes.push({ pool, redis });
    }
  } catch (err) {
    await close();
    throw err;
  }
  const [a, b, c] = nodes as [Node, Node, Node];
  return { fake, clock, nodes, a, b, c, close };
}

/** Starts `n` runs of `agent` at once, the i-th on node i mod 3; admitted handles and refusals. */
async function startSpread(nodes: readonly Node[], agent: string, n: number) {
  const settled = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      nodes[i % nodes.length]!.pool.runs.start(P, agent, { input: `q${i}` }),
    ),
  );
  const admitted: RunHandle[] = [];
  const refusals: AgentPoolError[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') admitted.push(s.value);
    else {
      assert.ok(isAgentPoolError(s.reason), String(s.reason));
      refusals.push(s.reason);
    }
  }
  return { admitted, refusals };
}

/** Bills a token per character of the messages sent and the whole output cap: near the worst case. */
const billed: FakeHandler = (req) => ({
  text: 'Noted.',
  usage: { prompt_tokens: JSON.stringify(req.messages).length, completion_tokens: 16 },
});

/** A handler that holds every answer until `open()`. */
function gate() {
  const opened = Promise.withResolvers<void>();
  let waiting = 0;
  const handler: FakeHandler = async () => {
    waiting++;
    await opened.promise;
    return { text: 'done' };
  };
  return { handler, open: () => opened.resolve(), waiting: () => waiting };
}

const BRIEF = { name: 'brief', model: MODEL, instructions: 'Be brief.', maxTokens: 16 };
const sum = (runs: readonly RunRecord[]) => runs.reduce((total, r) => total + r.cost, 0);

/** Waits until `ready()` holds, checking after each turn of the event loop (HTTP is real). */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !ready(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(ready(), `timed out waiting for ${what}`);
}

describe('governance across a cluster of three pools', () => {
  it('200 runs spread over three nodes racing for a nearly spent daily budget overspend by exactly $0', async () => {
    const c = await cluster();
    try {
      const budget = 2; // 1024 tokens
      await c.a.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: budget } } });
      await c.a.pool.agents.create(P, BRIEF);
      c.fake.script(...Array.from({ length: 210 }, () => billed));
      // Spend most of the budget for real first, on every node.
      for (let i = 0; i < 6; i++) {
        const warmUp = await (
          await c.nodes[i % 3]!.pool.runs.start(P, 'brief', { input: `warm-up ${i}` })
        ).result;
        assert.equal(warmUp.status, 'succeeded');
      }
      const seeded = await c.a.pool.stores.runs.costSince(P, 0);
      assert.ok(seeded > budget / 2 && seeded < budget, `$${seeded} of $${budget} spent beforehand`);
      const requestsBefore = c.fake.requests.length;

      const { admitted, refusals } = await startSpread(c.nodes, 'brief', 200);
      const results = await Promise.all(admitted.map((h) => h.result));

      assert.ok(admitted.length > 0, 'some runs were admitted');
      assert.ok(refusals.length > 150, `most were refused (${refusals.length})`);
      assert.deepEqual(new Set(refusals.map((e) => e.code)), new Set(['BUDGET_EXHAUSTED']));
      const succeeded = results.filter((r) => r.status === 'succeeded');
      for (const r of results) assert.ok(r.status === 'succeeded' || r.error?.code === 'BUDGET_EXHAUSTED');
      assert.equal(
        c.fake.requests.length - requestsBefore,
        succeeded.length,
        'no call without a reservation',
      );

      const spent = seeded + sum(results);
      const stored = await c.c.pool.stores.runs.costSince(P, 0);
      assert.equal(stored, spent, 'the store holds every cost');
      assert.ok(budget - spent >= 0, `overspent by $${spent - budget}`);
      for (const node of c.nodes) {
        const daily = (await node.pool.governance.usage(P)).budgets.daily;
        assert.equal(daily.reservedUsd, 0, 'every reservation was settled or released');
        assert.equal(daily.spentUsd, stored, 'the shared window spent what the store says');
        assert.equal((await node.pool.governance.usage(P)).quotas.maxConcurrentRuns.used, 0);
      }
    } finally {
      await c.close();
    }
  });

  it('maxConcurrentRuns holds across the three nodes, and places free as runs end', async () => {
    const c = await cluster();
    try {
      await c.a.pool.projects.create({ id: P, limits: { quotas: { maxConcurrentRuns: 4 } } });
      await c.a.pool.agents.create(P, BRIEF);
      const g = gate();
      c.fake.script(...Array.from({ length: 4 }, () => g.handler));
      const { admitted, refusals } = await startSpread(c.nodes, 'brief', 30);
      assert.equal(admitted.length, 4);
      assert.equal(refusals.length, 26);
      for (const e of refusals) assert.deepEqual([e.code, e.details['limit']], ['QUOTA_EXCEEDED', 4]);
      assert.equal((await c.b.pool.governance.usage(P)).quotas.maxConcurrentRuns.used, 4);
      await until(() => g.waiting() === 4, 'the four model calls');
      g.open();
      for (const r of await Promise.all(admitted.map((h) => h.result))) assert.equal(r.status, 'succeeded');
      const again = await startSpread(c.nodes, 'brief', 3);
      assert.equal(again.admitted.length, 3, 'the places are free again on every node');
      await Promise.all(again.admitted.map((h) => h.result));
    } finally {
      await c.close();
    }
  });

  it('runsPerMinute holds across the three nodes, with the same Retry-After from each', async () => {
    const c = await cluster();
    try {
      await c.a.pool.projects.create({ id: P, limits: { quotas: { runsPerMinute: 5 } } });
      await c.a.pool.agents.create(P, BRIEF);
      const { admitted, refusals } = await startSpread(c.nodes, 'brief', 15);
      assert.equal(admitted.length, 5);
      for (const e of refusals) {
        assert.equal(e.code, 'RATE_LIMITED');
        assert.equal(e.details['retryAfterSeconds'], 60);
      }
      await Promise.all(admitted.map((h) => h.result));
      c.clock.advance(60_000);
      const later = await startSpread(c.nodes, 'brief', 6);
      assert.equal(later.admitted.length, 5, 'a new minute, five more');
      await Promise.all(later.admitted.map((h) => h.result));
    } finally {
      await c.close();
    }
  });

  it("a dead node's places and reservations are freed after the ttl; the live nodes' are not", async () => {
    const c = await cluster();
    try {
      await c.a.pool.projects.create({
        id: P,
        limits: { quotas: { maxConcurrentRuns: 3 }, budgets: { dailyUsd: 100 } },
      });
      await c.a.pool.agents.create(P, BRIEF);
      const g = gate();
      c.fake.script(...Array.from({ length: 4 }, () => g.handler));
      const onA = await c.a.pool.runs.start(P, 'brief', { input: 'a1' });
      const onA2 = await c.a.pool.runs.start(P, 'brief', { input: 'a2' });
      const onB = await c.b.pool.runs.start(P, 'brief', { input: 'b1' });
      await until(() => g.waiting() === 3, 'three model calls');
      const held = (await c.c.pool.governance.usage(P)).budgets.daily.reservedUsd;
      assert.ok(held > 0);

      c.a.redis.disconnect(); // node A is cut off for good: it can neither renew nor release
      await assert.rejects(c.c.pool.runs.start(P, 'brief', { input: 'c1' }), { code: 'QUOTA_EXCEEDED' });
      c.clock.advance(HOLD_TTL_MS - 1000); // B and C renew on their timers; A cannot
      await Promise.all([c.b.pool.governance.flush(), c.c.pool.governance.flush()]);
      await assert.rejects(c.c.pool.runs.start(P, 'brief', { input: 'c2' }), { code: 'QUOTA_EXCEEDED' });

      c.clock.advance(1000); // A's last renewal was HOLD_TTL_MS ago
      await Promise.all([c.b.pool.governance.flush(), c.c.pool.governance.flush()]);
      const usage = await c.c.pool.governance.usage(P);
      assert.equal(usage.quotas.maxConcurrentRuns.used, 1, "only B's run holds a place");
      assert.equal(usage.budgets.daily.reservedUsd, held / 3, "only B's run holds a reservation");
      const onC = await c.c.pool.runs.start(P, 'brief', { input: 'c3' });
      await until(() => g.waiting() === 4, 'the new model call');
      g.open();
      for (const h of [onB, onC]) assert.equal((await h.result).status, 'succeeded');
      await Promise.all([onA.result, onA2.result]);
    } finally {
      await c.close();
    }
  });

  it('a node that closes gives its runs’ places and reservations back at once, and stops renewing', async () => {
    const c = await cluster();
    try {
      await c.a.pool.projects.create({
        id: P,
        limits: { quotas: { maxConcurrentRuns: 2 }, budgets: { dailyUsd: 100 } },
      });
      await c.a.pool.agents.create(P, BRIEF);
      const g = gate();
      c.fake.script(g.handler, g.handler);
      const onB = await c.b.pool.runs.start(P, 'brief', { input: 'b1' });
      await c.c.pool.runs.start(P, 'brief', { input: 'c1' });
      await until(() => g.waiting() === 2, 'two model calls');
      const held = (await c.a.pool.governance.usage(P)).budgets.daily.reservedUsd;
      assert.ok(held > 0);
      const timers = c.clock.pendingTimers;
      await c.b.pool.close(); // interrupts its run, which gives everything back before the ledger stops
      assert.equal((await onB.result).error?.code, 'RUN_INTERRUPTED');
      assert.ok(c.clock.pendingTimers < timers, 'its timers, the renewal among them, were cancelled');
      const usage = await c.a.pool.governance.usage(P);
      assert.equal(usage.quotas.maxConcurrentRuns.used, 1, 'no ttl to wait for');
      assert.equal(usage.budgets.daily.reservedUsd, held / 2);
      const onA = await c.a.pool.runs.start(P, 'brief', { input: 'a1' });
      g.open();
      assert.equal((await onA.result).status, 'succeeded');
    } finally {
      await c.close();
    }
  });

  it("a provider's requests per minute hold across the three nodes", async () => {
    const c = await cluster({
      resilience: { models: { [MODEL]: { rateLimit: { requestsPerMinute: 3 }, retry: { maxAttempts: 1 } } } },
    });
    try {
      await c.a.pool.agents.create(P, BRIEF);
      const before = c.fake.requests.length;
      const { admitted } = await startSpread(c.nodes, 'brief', 9);
      const results = await Promise.all(admitted.map((h) => h.result));
      assert.equal(c.fake.requests.length - before, 3, 'three requests reached the provider');
      assert.equal(results.filter((r) => r.status === 'succeeded').length, 3);
      const limited = results.filter((r) => r.error?.code === 'RATE_LIMITED');
      assert.equal(limited.length, 6);
      for (const r of limited)
        assert.match(r.error?.message ?? '', /provider limit of 3 requests per minute/);
    } finally {
      await c.close();
    }
  });
});

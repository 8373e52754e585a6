/**
 * The governance ledger conformance suite against the local and Redis adapters; then what only a
 * shared ledger promises, with several ledgers on separate connections standing for several nodes:
 * each check-and-take is atomic across them, a budget window is initialised once for all, a dead
 * node's holds free themselves after the ttl while a live node's are renewed.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import {
  RedisGovernanceLedger,
  resolveRedisGovernanceLedgerOptions,
} from '../../src/coordination/redis/governance-ledger.ts';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import type { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalGovernanceLedger } from '../../src/governance/local-ledger.ts';
import { redisPrefix } from '../support/redis.ts';
import {
  clockAt,
  governanceLedgerConformance,
  refusal,
  SpendLog,
  T0,
} from './governance-ledger.conformance.ts';

governanceLedgerConformance('local', async () => {
  const ledger = new LocalGovernanceLedger();
  return { ledger, close: () => ledger.close() };
});

governanceLedgerConformance('redis', async (clock) => {
  const cluster = await openCluster(clock, 1);
  const [ledger] = cluster.ledgers;
  assert.ok(ledger !== undefined);
  return { ledger, close: cluster.close };
});

/** `n` ledgers, each on its own connection, sharing one fresh prefix: `n` nodes of a cluster. */
async function openCluster(clock: ManualClock, n: number, holdTtlMs = 15_000) {
  const { url, prefix, cleanup } = await redisPrefix('ledger');
  const conn = resolveRedisConnection({ url, prefix });
  const connections: Redis[] = [];
  const ledgers: RedisGovernanceLedger[] = [];
  for (let i = 0; i < n; i++) {
    const redis = await connectRedis(conn, `ledger-test-${i}`);
    connections.push(redis);
    ledgers.push(new RedisGovernanceLedger({ redis, prefix, clock }, { holdTtlMs }));
  }
  return {
    ledgers,
    connections,
    prefix,
    async close() {
      try {
        await Promise.all(ledgers.map((l) => l.close()));
      } finally {
        for (const c of connections) c.disconnect();
        await cleanup();
      }
    },
  };
}

const P = 'acme';
const q = (project = {}, agent = {}) => ({ project, agent });

describe('Redis governance ledger options', () => {
  it('pins the defaults: holds live 15 s without renewal, renewed every 5 s', () => {
    assert.deepEqual(resolveRedisGovernanceLedgerOptions(), { holdTtlMs: 15_000, renewIntervalMs: 5000 });
    assert.deepEqual(resolveRedisGovernanceLedgerOptions({ holdTtlMs: 3000 }), {
      holdTtlMs: 3000,
      renewIntervalMs: 1000,
    });
  });

  it('rejects bad values naming the field', async () => {
    const bad = [
      [{ holdTtlMs: 0 }, /ledger\.holdTtlMs/],
      [{ holdTtlMs: 1.5 }, /ledger\.holdTtlMs/],
      [{ holdTtlMs: 3000, renewIntervalMs: 3000 }, /ledger\.renewIntervalMs/],
      [{ renewalMs: 10 }, /ledger\.renewalMs/],
    ] as const;
    for (const [options, field] of bad) {
      await refusal(() => resolveRedisGovernanceLedgerOptions(options as never), 'VALIDATION_FAILED');
      assert.throws(() => resolveRedisGovernanceLedgerOptions(options as never), field);
    }
  });
});

describe('Redis governance ledger shared by several nodes', () => {
  const opened: { close(): Promise<void> }[] = [];
  after(async () => {
    await Promise.all(opened.map((c) => c.close()));
  });
  async function cluster(n: number, holdTtlMs?: number) {
    const clock = clockAt();
    const c = await openCluster(clock, n, holdTtlMs);
    opened.push(c);
    return { ...c, clock };
  }

  it('90 takes racing over three nodes for 7 places of a project take exactly 7', async () => {
    const c = await cluster(3);
    const settled = await Promise.allSettled(
      Array.from({ length: 90 }, (_, i) =>
        c.ledgers[i % 3]!.take(P, `agt_${i % 5}`, q({ maxConcurrentRuns: 7 }), T0),
      ),
    );
    const taken = settled.filter((s) => s.status === 'fulfilled');
    assert.equal(taken.length, 7);
    for (const s of settled) {
      if (s.status === 'rejected') assert.ok(isAgentPoolError(s.reason, 'QUOTA_EXCEEDED'), String(s.reason));
    }
    assert.equal((await c.ledgers[1]!.usage(P, T0)).running, 7);
  });

  it("a project's exclusive sections never overlap across nodes; other projects' run beside them", async () => {
    const c = await cluster(3);
    let inside = 0;
    let most = 0;
    let other = 0;
    const section = async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((r) => setTimeout(r, 2));
      inside--;
      return 'done';
    };
    const results = await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => c.ledgers[i % 3]!.exclusive(P, section)),
      c.ledgers[0]!.exclusive('other', async () => {
        other = inside; // runs while P's sections may be running
        return 'done';
      }),
    ]);
    assert.ok(results.every((r) => r === 'done'));
    assert.equal(most, 1, 'one section of a project at a time, cluster-wide');
    assert.ok(other <= 1);
    await assert.rejects(
      c.ledgers[1]!.exclusive(P, () => Promise.reject(new Error('the create failed'))),
      /the create failed/,
    );
    assert.equal(
      await c.ledgers[2]!.exclusive(P, () => Promise.resolve(1)),
      1,
      'a failed section frees the lock',
    );
  });

  it('runs per minute of an agent hold across nodes, and Retry-After is the same whichever node answers', async () => {
    const c = await cluster(3);
    const settled = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        c.ledgers[i % 3]!.take(P, 'agt_a', q({}, { runsPerMinute: 4 }), T0 + 2000),
      ),
    );
    assert.equal(settled.filter((s) => s.status === 'fulfilled').length, 4);
    for (const ledger of c.ledgers) {
      await refusal(() => ledger.take(P, 'agt_a', q({}, { runsPerMinute: 4 }), T0 + 30_000), 'RATE_LIMITED', {
        scope: 'agent',
        retryAfterSeconds: 32,
      });
    }
  });

  it('200 reservations racing over three nodes for the last cents of a budget reserve exactly what is left', async () => {
    const c = await cluster(3);
    const usd = 3 / 512;
    const spend = new SpendLog();
    spend.add(P, T0 - 1000, 10 - 100 * usd - 1 / 1024); // room for 100 reservations, and a crumb
    const limits = { dailyUsd: 10 };
    const settled = await Promise.allSettled(
      Array.from({ length: 200 }, async (_, i) => {
        const ledger = c.ledgers[i % 3]!;
        const preparing = ledger.prepare(P, T0, spend);
        if (preparing !== undefined) await preparing;
        const hold = await ledger.take(P, `agt_${i}`, q(), T0);
        return ledger.reserve(hold, limits, usd, T0, spend);
      }),
    );
    assert.equal(settled.filter((s) => s.status === 'fulfilled').length, 100);
    for (const s of settled) {
      if (s.status === 'rejected')
        assert.ok(isAgentPoolError(s.reason, 'BUDGET_EXHAUSTED'), String(s.reason));
    }
    const w = await c.ledgers[2]!.windows(P, T0, spend);
    assert.equal(w.daily?.reserved, 100 * usd);
    assert.equal((w.daily?.spent ?? 0) + (w.daily?.reserved ?? 0), 10 - 1 / 1024, 'not a crumb over');
  });

  it('initialises a budget window once for the cluster, even when every node starts using it at once', async () => {
    const c = await cluster(4);
    const [late, ...first] = c.ledgers as [RedisGovernanceLedger, ...RedisGovernanceLedger[]];
    // Each node's store read answers differently (as reads at different moments would), slowly.
    const reads: number[] = [];
    const source = (spent: number) => ({
      async costSince() {
        reads.push(spent);
        await new Promise((resolve) => setTimeout(resolve, 20));
        return spent;
      },
    });
    await Promise.all(first.map(async (l, i) => l.prepare(P, T0, source(i + 1))));
    const seen = await Promise.all(first.map((l, i) => l.windows(P, T0, source(i + 1))));
    const spent = seen.map((w) => [w.daily?.spent, w.monthly?.spent]);
    assert.equal(
      new Set(spent.map((s) => JSON.stringify(s))).size,
      1,
      `one account for all: ${JSON.stringify(spent)}`,
    );
    // A node that comes later reads nothing from its store: the window is there.
    const lateReads = new SpendLog();
    await late.prepare(P, T0, lateReads);
    assert.equal(lateReads.reads, 0);
    assert.equal((await late.windows(P, T0, lateReads)).daily?.spent, seen[0]?.daily?.spent);
    assert.ok(reads.length <= 6, 'at most one read per window and node');
  });

  it("frees a dead node's places and reservations after the ttl, while a live node's are renewed", async () => {
    const c = await cluster(2, 3000);
    const [live, dead] = c.ledgers as [RedisGovernanceLedger, RedisGovernanceLedger];
    const spend = new SpendLog();
    const limits = { dailyUsd: 10 };
    await live.prepare(P, T0, spend);
    await dead.prepare(P, T0, spend);
    const mine = await live.take(P, 'agt_a', q({ maxConcurrentRuns: 3 }), T0);
    await live.reserve(mine, limits, 4, T0, spend);
    const theirs = await dead.take(P, 'agt_b', q({ maxConcurrentRuns: 3 }), T0);
    await dead.reserve(theirs, limits, 4, T0, spend);
    await dead.take(P, 'agt_b', q({ maxConcurrentRuns: 3 }), T0);
    await dead.close(); // stops renewing without releasing: the node is gone
    await refusal(() => live.take(P, 'agt_c', q({ maxConcurrentRuns: 3 }), T0), 'QUOTA_EXCEEDED');

    // Time passes in steps shorter than the ttl: the live node renews (its timer), the dead one cannot.
    for (let t = 0; t < 3000; t += 1000) {
      c.clock.advance(1000);
      await live.flush();
    }
    const now = c.clock.now();
    assert.equal((await live.usage(P, now)).running, 1, 'only the live run holds a place');
    const w = await live.windows(P, now, spend);
    assert.equal(w.daily?.reserved, 4, 'only the live run holds its reservation');
    await live.take(P, 'agt_c', q({ maxConcurrentRuns: 3 }), now);
  });

  it('a project forgotten on one node is read again from the store by the others', async () => {
    const c = await cluster(2);
    const [a, b] = c.ledgers as [RedisGovernanceLedger, RedisGovernanceLedger];
    const old = new SpendLog();
    old.add(P, T0 - 1000, 9);
    await b.prepare(P, T0, old);
    a.forget(P);
    await a.flush();
    const fresh = new SpendLog(); // the project was deleted: its runs are gone from the store
    const hold = await b.take(P, 'agt_a', q(), T0);
    await b.reserve(hold, { dailyUsd: 10 }, 5, T0, fresh);
    assert.equal(fresh.reads, 2);
    assert.equal((await b.windows(P, T0, fresh)).daily?.spent, 0);
  });
});

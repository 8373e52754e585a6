/**
 * Preloading from usage: the priority score, the threshold, filling idle capacity, co-occurrence
 * prefetch, and the promise that a preload never takes a busy, hot or more valuable instance's
 * place; preloads counted issued, used and wasted. Time is the manual clock's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import type { InstancePoolOptions } from '../../src/pool/pool-options.ts';
import { type PreloadEvent, Preloader } from '../../src/pool/preload.ts';
import { type PreloadOptions, resolvePreloadOptions } from '../../src/pool/preload-options.ts';
import { priorityScore } from '../../src/pool/priority-score.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { createAgents, flush, P, poolFixture } from '../support/pool-fixture.ts';

const HOUR = 3_600_000;

/** A pool fixture with a preloader on it (not started unless asked), and its events. */
function preloadFixture(pool: InstancePoolOptions = {}, preload: PreloadOptions = {}) {
  const f = poolFixture(pool);
  const bus = new LocalEventBus<PreloadEvent>();
  const preloads: PreloadEvent[] = [];
  bus.on('agent.preloaded', (e) => preloads.push(e));
  const preloader = new Preloader(
    { pool: f.pool, store: f.store, usage: f.registry.usage, bus, clock: f.clock, log: silentLogger() },
    resolvePreloadOptions(preload),
  );
  /** Persists `uses` succeeded runs of the agent named `name`, last at `at`. */
  const used = async (name: string, uses: number, at: number, failures = 0) => {
    const agent = await f.registry.get(P, name);
    await f.store.recordUse([
      {
        id: agent.id,
        at,
        runs: {
          uses: uses + failures,
          successes: uses,
          failures,
          latencyMsTotal: 0,
          latencyCount: 0,
          costUsd: 0,
        },
      },
    ]);
  };
  /** A finished run of `name` on `thread`, accepted at `at`, as the run layer reports it. */
  const ran = async (name: string, thread: string, at: number) => {
    const agent = await f.registry.get(P, name);
    preloader.runFinished({
      project: P,
      agentId: agent.id,
      agentName: name,
      threadId: thread,
      status: 'succeeded',
      createdAt: at,
      finishedAt: at + 10,
    } as unknown as RunRecord);
  };
  return { ...f, preloader, preloads, used, ran };
}

describe('priority score', () => {
  it('is 0.4·frequency + 0.3·recency + 0.3·success, each normalised to [0, 1]', () => {
    const now = 10 * HOUR;
    const top = priorityScore({ uses: 100, successes: 98, failures: 0, lastUsedAt: now }, 100, now, HOUR);
    assert.equal(top.frequency, 1);
    assert.equal(top.recency, 1);
    assert.equal(top.success, 99 / 100);
    assert.equal(top.score, 0.4 + 0.3 + 0.3 * (99 / 100));
    // half the uses, one half-life ago, never succeeded or failed: ½ everywhere
    const half = priorityScore(
      { uses: 50, successes: 0, failures: 0, lastUsedAt: now - HOUR },
      100,
      now,
      HOUR,
    );
    assert.deepEqual(
      { f: half.frequency, r: half.recency, s: half.success, score: half.score },
      { f: 0.5, r: 0.5, s: 0.5, score: 0.5 },
    );
    // no candidate was ever used: frequency 0, not NaN
    assert.equal(
      priorityScore({ uses: 0, successes: 0, failures: 0, lastUsedAt: now }, 0, now, HOUR).frequency,
      0,
    );
  });

  it('lets failures pull an agent down (with a prior: one failure is not a zero)', () => {
    const now = 2 * HOUR;
    const failing = priorityScore(
      { uses: 12, successes: 0, failures: 12, lastUsedAt: now - HOUR },
      12,
      now,
      HOUR,
    );
    const fine = priorityScore(
      { uses: 12, successes: 12, failures: 0, lastUsedAt: now - HOUR },
      12,
      now,
      HOUR,
    );
    assert.equal(failing.success, 1 / 14);
    assert.ok(failing.score < 0.7 && fine.score >= 0.7, 'the same use, only the outcomes differ');
    const once = priorityScore({ uses: 1, successes: 0, failures: 1, lastUsedAt: now }, 1, now, HOUR);
    assert.equal(once.success, 1 / 3);
  });
});

describe('preload options', () => {
  it('pins the defaults and names the field of a bad value', () => {
    const o = resolvePreloadOptions();
    assert.equal(o.enabled, true);
    assert.equal(o.threshold, 0.7);
    assert.equal(o.intervalMs, 30_000);
    assert.equal(o.recencyHalfLifeMs, HOUR);
    assert.equal(o.minFollows, 3);
    assert.equal(o.minConfidence, 0.5);
    assert.equal(o.followWindowMs, 60_000);
    for (const [input, field] of [
      [{ threshold: 1.5 }, 'pool.preload.threshold'],
      [{ intervalMs: -1 }, 'pool.preload.intervalMs'],
      [{ maxFollowers: 0 }, 'pool.preload.maxFollowers'],
      [{ nope: 1 }, 'pool.preload.nope'],
    ] as const) {
      assert.throws(
        () => resolvePreloadOptions(input as PreloadOptions),
        (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details.field === field,
      );
    }
  });
});

describe('preloading idle capacity', () => {
  it('preloads inactive agents at or above the threshold, best first, and counts their first use', async () => {
    const { pool, registry, clock, preloader, preloads, used } = preloadFixture();
    await createAgents(registry, 3);
    const now = clock.now();
    await used('a0', 100, now); // 0.4 + 0.3 + 0.3·101/102 ≈ 0.997
    await used('a1', 80, now - HOUR); // 0.32 + 0.15 + ~0.3 ≈ 0.77
    await used('a2', 10, now); // 0.04 + 0.3 + ~0.28 ≈ 0.62: below 0.7
    assert.equal(await preloader.fill(), 2);
    assert.deepEqual(
      preloads.map((e) => [e.name, e.source]),
      [
        ['a0', 'preload'],
        ['a1', 'preload'],
      ],
    );
    assert.ok(pool.isActive((await registry.get(P, 'a0')).id));
    assert.equal(pool.isActive((await registry.get(P, 'a2')).id), false);
    let stats = pool.stats();
    assert.equal(stats.activations, 2);
    assert.equal(stats.hits + stats.misses, 0, 'a preload is neither a hit nor a miss');
    const lease = await pool.acquire(P, 'a0');
    lease.release();
    stats = pool.stats();
    assert.equal(stats.hits, 1, 'the request finds it warm');
    assert.deepEqual(pool.preloadStats().preload, { issued: 2, used: 1, wasted: 0 });
    assert.equal(await preloader.fill(), 0, 'active agents are not preloaded again');
  });

  it('fills only free places, leaving `reserve` free, and never evicts for a fill under lru', async () => {
    const { pool, registry, clock, preloader, used } = preloadFixture(
      { maxActive: 3, policy: 'lru' },
      { reserve: 1 },
    );
    await createAgents(registry, 5);
    for (let i = 0; i < 5; i++) await used(`a${i}`, 100, clock.now());
    assert.equal(await preloader.fill(), 2, 'maxActive 3 − reserve 1');
    assert.equal(pool.stats().active, 2);
    const lease = await pool.acquire(P, 'a4'); // the request takes the reserved place
    lease.release();
    assert.equal(await preloader.fill(), 0);
    assert.equal(pool.stats().evictions, 0);
  });

  it('keeps a preloaded instance past maxIdleMs until it serves (then it idles out like any other)', async () => {
    const { pool, registry, clock, preloader, used } = preloadFixture({ maxIdleMs: 60_000 });
    await createAgents(registry, 1);
    await used('a0', 10, clock.now());
    assert.equal(await preloader.fill(), 1);
    const id = (await registry.get(P, 'a0')).id;
    clock.advance(120_000); // the pool's idle sweeps run meanwhile
    assert.equal(pool.isActive(id), true, 'waiting to serve, not idle');
    (await pool.acquire(P, 'a0')).release();
    clock.advance(60_000);
    assert.equal(pool.isActive(id), false);
    assert.equal(pool.stats().idleDeactivations, 1);
    assert.deepEqual(pool.preloadStats().preload, { issued: 1, used: 1, wasted: 0 });
  });

  it('runs on the clock every intervalMs once started, and stops at close', async () => {
    const { pool, registry, clock, preloader, used } = preloadFixture({}, { intervalMs: 1000 });
    await createAgents(registry, 1);
    await used('a0', 10, clock.now());
    const timersBefore = clock.pendingTimers; // the pool's own (idle sweep, usage writes)
    preloader.start();
    clock.advance(999);
    await flush();
    assert.equal(pool.stats().active, 0);
    clock.advance(1);
    for (let i = 0; i < 5; i++) await flush();
    assert.equal(pool.stats().active, 1);
    preloader.close();
    assert.equal(clock.pendingTimers, timersBefore);
  });
});

describe('co-occurrence prefetch', () => {
  it('prefetches B when A is acquired once B followed A on threads often enough', async () => {
    const { pool, registry, clock, ran, preloader, preloads } = preloadFixture({}, { intervalMs: 0 });
    await createAgents(registry, 2);
    const b = await registry.get(P, 'a1');
    preloader.start();
    for (let i = 0; i < 2; i++) {
      await ran('a0', `thr_${i}`, clock.now());
      await ran('a1', `thr_${i}`, clock.now() + 1000);
    }
    (await pool.acquire(P, 'a0')).release();
    await flush();
    assert.equal(pool.isActive(b.id), false, 'two follows are below minFollows (3)');
    await ran('a0', 'thr_2', clock.now());
    await ran('a1', 'thr_2', clock.now() + 1000);
    (await pool.acquire(P, 'a0')).release();
    for (let i = 0; i < 3; i++) await flush();
    assert.equal(pool.isActive(b.id), true);
    assert.deepEqual(
      preloads.map((e) => [e.name, e.source, e.after]),
      [['a1', 'prefetch', 'a0']],
    );
    const lease = await pool.acquire(P, 'a1');
    lease.release();
    assert.deepEqual(pool.preloadStats().prefetch, { issued: 1, used: 1, wasted: 0 });
    assert.equal(pool.stats().misses, 1, 'only the first acquire of a0 missed');
    preloader.close();
  });

  it('does not link runs further apart than followWindowMs, nor across a decay that forgets them', async () => {
    const { registry, clock, ran, preloader } = preloadFixture(
      {},
      { followWindowMs: 5000, decayIntervalMs: 60_000, intervalMs: 0 },
    );
    await createAgents(registry, 3);
    const a = await registry.get(P, 'a0');
    preloader.start();
    for (let i = 0; i < 3; i++) {
      await ran('a0', `thr_${i}`, clock.now());
      await ran('a2', `thr_${i}`, clock.now() + 60_000); // too late: not a follow
    }
    assert.deepEqual(preloader.followers(a.id), []);
    for (let i = 0; i < 3; i++) {
      await ran('a0', `thr_x${i}`, clock.now());
      await ran('a1', `thr_x${i}`, clock.now() + 1000);
    }
    assert.deepEqual(
      preloader.followers(a.id).map((f) => [f.agent.name, f.count]),
      [['a1', 3]],
    );
    clock.advance(60_000); // halved: 1.5, below minFollows
    assert.deepEqual(
      preloader.followers(a.id).map((f) => [f.agent.name, f.count]),
      [['a1', 1.5]],
    );
    clock.advance(120_000); // 0.375: forgotten
    assert.deepEqual(preloader.followers(a.id), []);
    preloader.close();
  });

  it('counts a prefetch evicted before any use as wasted', async () => {
    const { pool, registry, clock, ran, preloader } = preloadFixture(
      { maxActive: 2, policy: 'lru' },
      { intervalMs: 0 },
    );
    await createAgents(registry, 3);
    preloader.start();
    for (let i = 0; i < 3; i++) {
      await ran('a0', `thr_${i}`, clock.now());
      await ran('a1', `thr_${i}`, clock.now() + 1000);
    }
    (await pool.acquire(P, 'a0')).release();
    for (let i = 0; i < 3; i++) await flush();
    assert.deepEqual(pool.preloadStats().prefetch, { issued: 1, used: 0, wasted: 0 });
    (await pool.acquire(P, 'a0')).release();
    // a request for a2 needs a place: lru evicts the least recently used, the prefetched a1
    (await pool.acquire(P, 'a2')).release();
    assert.equal(pool.stats().evictions, 1);
    assert.deepEqual(pool.preloadStats().prefetch, { issued: 1, used: 0, wasted: 1 });
    preloader.close();
  });

  it('never evicts a busy or hot instance for a prefetch, nor one the policy values more', async () => {
    const { pool, registry, clock, ran, preloader } = preloadFixture({ maxActive: 3 }, { intervalMs: 0 });
    await registry.create(P, { name: 'hot', tier: 'hot' });
    await createAgents(registry, 3);
    const b = await registry.get(P, 'a1');
    preloader.start();
    for (let i = 0; i < 3; i++) {
      await ran('a0', `thr_${i}`, clock.now());
      await ran('a1', `thr_${i}`, clock.now() + 1000);
    }
    const hot = await pool.acquire(P, 'hot');
    hot.release();
    // a2 is idle and often used: tinylfu values it more than a1, which was never asked for
    for (let i = 0; i < 20; i++) (await pool.acquire(P, 'a2')).release();
    const busy = await pool.acquire(P, 'a0'); // full now: hot (pinned), a2 (ready), a0 (busy)
    for (let i = 0; i < 3; i++) await flush();
    assert.equal(pool.isActive(b.id), false);
    assert.equal(pool.stats().evictions, 0);
    assert.equal(preloader.stats().skipped.prefetch['no-room'], 1);
    busy.release();
    preloader.close();
  });

  it('takes the place of an idle resident the policy values less', async () => {
    const { pool, registry, clock, ran, preloader } = preloadFixture(
      { maxActive: 2 },
      { intervalMs: 0, retryAfterMs: 0 },
    );
    await createAgents(registry, 3);
    const b = await registry.get(P, 'a1');
    preloader.start();
    for (let i = 0; i < 3; i++) {
      await ran('a0', `thr_${i}`, clock.now());
      await ran('a1', `thr_${i}`, clock.now() + 1000);
    }
    // a1 asked for often before (the sketch remembers), a2 once
    for (let i = 0; i < 10; i++) (await pool.acquire(P, 'a1')).release();
    pool.deactivate(P, 'a1');
    (await pool.acquire(P, 'a2')).release();
    const lease = await pool.acquire(P, 'a0'); // full: a2 idle, a0 busy
    for (let i = 0; i < 3; i++) await flush();
    assert.equal(pool.isActive(b.id), true, 'a1 took the idle a2’s place');
    assert.equal(pool.isActive((await registry.get(P, 'a2')).id), false);
    lease.release();
    preloader.close();
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import type { InstancePoolOptions } from '../../src/pool/pool-options.ts';
import type { TierChangedEvent } from '../../src/pool/scaling-events.ts';
import { resolveTierOptions, type ServingTier } from '../../src/pool/tier-options.ts';
import { TierClassifier } from '../../src/pool/tiers.ts';
import { buildServer } from '../../src/server/app.ts';
import { createAgents, flush, P, poolFixture } from '../support/pool-fixture.ts';

const MINUTE = 60_000;

/** A pool with a tier classifier every minute; `use(name, n)` serves n leases of an agent. */
async function classified(
  options: InstancePoolOptions = {},
  projectTier?: (p: string) => ServingTier | undefined,
) {
  const f = poolFixture({
    maxActive: 20,
    maxIdleMs: 0,
    ...options,
    tiers: { maxHot: 2, hotMinScore: 10, coldMaxScore: 0.5, ...options.tiers },
  });
  await createAgents(f.registry, 6);
  const bus = new LocalEventBus<TierChangedEvent>();
  const moves: string[] = [];
  bus.on('instance.tier_changed', (e) => moves.push(`${e.name}:${e.from}>${e.to}`));
  const tiers = new TierClassifier({
    pool: f.pool,
    bus,
    clock: f.clock,
    log: silentLogger(),
    ...(projectTier !== undefined && { projectTier }),
  });
  f.pool.setTierAssigner(tiers);
  tiers.start();
  const use = async (name: string, n: number) => {
    for (let i = 0; i < n; i++) (await f.pool.acquire(P, name)).release();
  };
  const tierOf = (name: string) => f.pool.instance(P, name)?.tier;
  return { ...f, tiers, moves, use, tierOf };
}

describe('tiers', () => {
  it('has documented defaults and names the field of a bad value', () => {
    const none = { maxInstances: 0, maxConcurrentRuns: 0 };
    assert.deepEqual(resolveTierOptions(), {
      classify: true,
      intervalMs: 60_000,
      maxHot: 10,
      hotMinScore: 20,
      coldMaxScore: 0.1,
      decay: 0.5,
      maxTracked: 10_000,
      limits: { hot: none, warm: none, cold: none },
    });
    assert.throws(() => resolveTierOptions({ maxHot: -1 }), /pool\.tiers\.maxHot must be/);
    assert.throws(
      () => resolveTierOptions({ limits: { warm: { maxInstances: 1.5 } } }),
      /pool\.tiers\.limits\.warm\.maxInstances must be/,
    );
    assert.throws(
      () => resolveTierOptions({ limits: { auto: {} } }),
      /pool\.tiers\.limits\.auto is not a known field/,
    );
    assert.throws(
      () => resolveTierOptions({ hotMinScore: 1, coldMaxScore: 0.5 }),
      /pool\.tiers\.coldMaxScore must leave room/,
    );
  });

  it('makes the most used auto agents hot (pinned) up to maxHot, the rest warm', async () => {
    const t = await classified();
    await t.use('a0', 30);
    await t.use('a1', 20);
    await t.use('a2', 12); // above hotMinScore, but maxHot is 2
    await t.use('a3', 3);
    t.clock.advance(MINUTE);
    assert.deepEqual(t.moves.sort(), ['a0:warm>hot', 'a1:warm>hot']);
    assert.equal(t.tierOf('a0'), 'hot');
    assert.equal(t.pool.instance(P, 'a0')?.pinned, true);
    assert.equal(t.pool.instance(P, 'a1')?.pinned, true);
    assert.equal(t.tierOf('a2'), 'warm');
    assert.equal(t.pool.instance(P, 'a2')?.pinned, false);
    assert.deepEqual(t.pool.stats().byTier, { hot: 2, warm: 2, cold: 0, auto: 0 });
    assert.deepEqual(t.tiers.stats().classified, { hot: 2, warm: 2, cold: 0 });
  });

  it('keeps a hot agent hot while its score stays above half of hotMinScore (hysteresis)', async () => {
    const t = await classified({ tiers: { maxHot: 1 } });
    await t.use('a0', 20);
    t.clock.advance(MINUTE); // a0: 20 → hot
    assert.equal(t.tierOf('a0'), 'hot');
    await t.use('a0', 0);
    t.clock.advance(MINUTE); // 10: below hotMinScore but ≥ 5, stays hot
    assert.equal(t.tierOf('a0'), 'hot');
    await t.use('a1', 12);
    t.clock.advance(MINUTE); // a0 5: still hot; a1 12 would qualify but maxHot is 1
    assert.deepEqual([t.tierOf('a0'), t.tierOf('a1')], ['hot', 'warm']);
    t.clock.advance(MINUTE); // a0 2.5 < 5: warm again; a1 6 < 10: not hot
    assert.deepEqual([t.tierOf('a0'), t.tierOf('a1')], ['warm', 'warm']);
    assert.equal(t.pool.instance(P, 'a0')?.pinned, false);
    assert.deepEqual(t.moves, ['a0:warm>hot', 'a0:hot>warm']);
  });

  it('makes rarely used agents cold (one-shot) and brings them back to warm with use', async () => {
    const t = await classified();
    await t.use('a4', 1);
    t.clock.advance(MINUTE); // 1
    assert.equal(t.tierOf('a4'), 'warm');
    t.clock.advance(MINUTE); // 0.5: not < 0.5
    assert.equal(t.tierOf('a4'), 'warm');
    t.clock.advance(MINUTE); // 0.25 < 0.5: cold, its instance leaves
    assert.deepEqual(t.moves, ['a4:warm>cold']);
    assert.equal(t.pool.instance(P, 'a4'), undefined);
    // Cold: each lease gets a one-shot instance, counted towards its score.
    await t.use('a4', 1);
    assert.equal(t.pool.instance(P, 'a4'), undefined);
    t.clock.advance(MINUTE); // 0.125 + 1 = 1.125 ≥ 2 × 0.5: warm again
    assert.deepEqual(t.moves, ['a4:warm>cold', 'a4:cold>warm']);
    await t.use('a4', 1);
    assert.equal(t.tierOf('a4'), 'warm');
  });

  it('leaves agents with an explicit tier alone', async () => {
    const t = await classified();
    await t.registry.create(P, { name: 'pinned-by-spec', tier: 'warm' });
    await t.use('pinned-by-spec', 50);
    t.clock.advance(MINUTE);
    assert.deepEqual(t.moves, []);
    assert.equal(t.pool.instance(P, 'pinned-by-spec')?.pinned, false);
  });

  it('refuses beyond a tier’s concurrent runs with TIER_SATURATED, and serves again once released', async () => {
    const t = await classified({ tiers: { limits: { warm: { maxConcurrentRuns: 2 } } } });
    const a = await t.pool.acquire(P, 'a0');
    const b = await t.pool.acquire(P, 'a1');
    for (const attempt of [() => t.pool.acquire(P, 'a0'), () => t.pool.acquire(P, 'a2')]) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(isAgentPoolError(err));
        assert.equal(err.code, 'TIER_SATURATED');
        assert.equal(err.status, 503);
        assert.deepEqual(
          [err.details['tier'], err.details['limit'], err.details['value']],
          ['warm', 'maxConcurrentRuns', 2],
        );
        return true;
      });
    }
    a.release();
    (await t.pool.acquire(P, 'a2')).release();
    b.release();
    assert.deepEqual(t.pool.tierCounts().warm, {
      instances: 3,
      leases: 0,
      maxInstances: 0,
      maxConcurrentRuns: 2,
    });
  });

  it('refuses an activation beyond a tier’s instances with TIER_SATURATED', async () => {
    const t = await classified({ tiers: { limits: { warm: { maxInstances: 2 } } } });
    await t.use('a0', 1);
    await t.use('a1', 1);
    await assert.rejects(t.pool.acquire(P, 'a2'), { code: 'TIER_SATURATED' });
    t.pool.deactivate(P, 'a0');
    await t.use('a2', 1);
    assert.equal(t.pool.tierCounts().warm.instances, 2);
  });

  it('moves a busy agent’s leases to its new tier', async () => {
    const t = await classified({ tiers: { maxHot: 1 } });
    await t.use('a0', 20);
    const lease = await t.pool.acquire(P, 'a0');
    t.clock.advance(MINUTE);
    assert.equal(t.tierOf('a0'), 'hot');
    assert.equal(t.pool.tierCounts().hot.leases, 1);
    assert.equal(t.pool.tierCounts().warm.leases, 0);
    lease.release();
    assert.equal(t.pool.tierCounts().hot.leases, 0);
  });

  it('gives a project’s auto agents its default tier instead of classifying them', async () => {
    const t = await classified({}, (project) => (project === P ? 'cold' : undefined));
    await t.use('a0', 30);
    assert.equal(t.pool.instance(P, 'a0'), undefined, 'cold: one-shot instances');
    await flush();
  });

  it('takes a project’s default tier from its limits (tiers.default), for its auto agents only', async () => {
    const clock = new ManualClock();
    const pool = await createAgentPool({ store: 'memory', clock });
    try {
      await pool.projects.create({ id: 'vip' });
      await pool.projects.create({ id: 'batch' });
      await pool.projects.updateLimits('vip', { tiers: { default: 'hot' } });
      await pool.projects.updateLimits('batch', { tiers: { default: 'cold' } });
      await assert.rejects(
        pool.projects.updateLimits('vip', { tiers: { default: 'auto' } }),
        /limits\.tiers\.default must be one of/,
      );
      assert.deepEqual((await pool.projects.get('vip')).limits.tiers, { default: 'hot' });
      for (const project of ['vip', 'batch']) {
        await pool.agents.create(project, { name: 'a' });
        await pool.agents.create(project, { name: 'explicit', tier: 'warm' });
        for (const name of ['a', 'explicit']) (await pool.instances.acquire(project, name)).release();
      }
      assert.deepEqual(
        [pool.instances.instance('vip', 'a')?.tier, pool.instances.instance('vip', 'a')?.pinned],
        ['hot', true],
      );
      assert.equal(pool.instances.instance('batch', 'a'), undefined, 'cold: one-shot');
      assert.equal(pool.instances.instance('vip', 'explicit')?.tier, 'warm');
      assert.equal(pool.instances.instance('batch', 'explicit')?.tier, 'warm');
      // Classification leaves them where their project put them.
      for (let i = 0; i < 50; i++) (await pool.instances.acquire('batch', 'a')).release();
      clock.advance(MINUTE);
      assert.equal(pool.instances.instance('batch', 'a'), undefined);
      assert.equal(pool.tiers.classified(pool.instances.instance('vip', 'a')!.agentId), 'hot');
    } finally {
      await pool.close();
    }
  });

  it('sets and clears a project’s default tier over HTTP', async () => {
    const pool = await createAgentPool({ store: 'memory', clock: new ManualClock() });
    const app = await buildServer(pool);
    try {
      await pool.projects.create({ id: 'batch' });
      const patch = (tiers: unknown) =>
        app.inject({ method: 'PATCH', url: '/v1/projects/batch', payload: { limits: { tiers } } });
      const set = await patch({ default: 'cold' });
      assert.equal(set.statusCode, 200);
      assert.deepEqual(set.json().limits.tiers, { default: 'cold' });
      const bad = await patch({ default: 'lukewarm' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.details.field, 'limits.tiers.default');
      const cleared = await patch(null);
      assert.equal(cleared.json().limits.tiers, undefined);
    } finally {
      await app.close();
      await pool.close();
    }
  });

  it('does not classify when classify is off', async () => {
    const t = await classified({ tiers: { classify: false } });
    await t.use('a0', 50);
    t.clock.advance(10 * MINUTE);
    assert.deepEqual(t.moves, []);
    assert.equal(t.tierOf('a0'), 'auto');
  });
});

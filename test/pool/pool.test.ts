import { resolveHealthOptions } from '../../src/pool/health-options.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { resolveInstancePoolOptions } from '../../src/pool/pool-options.ts';
import { resolvePreloadOptions } from '../../src/pool/preload-options.ts';
import { resolveTierOptions } from '../../src/pool/tier-options.ts';
import { createAgents, flush, P, poolFixture } from '../support/pool-fixture.ts';

const code = (c: string) => (err: unknown) => isAgentPoolError(err) && err.code === c;

describe('instance pool', () => {
  it('activates on first acquire and serves later acquires warm', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support' });
    const first = await pool.acquire(P, 'support');
    first.release();
    const second = await pool.acquire(P, 'support');
    assert.equal(second.instance, first.instance);
    second.release();
    const stats = pool.stats();
    assert.equal(stats.activations, 1);
    assert.equal(stats.hits, 1);
    assert.equal(stats.misses, 1);
    assert.equal(stats.byState.ready, 1);
    assert.equal(stats.activationLatencyMs.count, 1);
  });

  it('acquires by id and by name onto one instance, and never across projects', async () => {
    const { pool, registry } = poolFixture();
    const agent = await registry.create(P, { name: 'support' });
    await registry.create('other', { name: 'support' });
    const byName = await pool.acquire(P, 'support');
    const byId = await pool.acquire(P, agent.id);
    assert.equal(byId.instance, byName.instance);
    await assert.rejects(pool.acquire('other', agent.id), code('AGENT_NOT_FOUND'));
    const theirs = await pool.acquire('other', 'support');
    assert.notEqual(theirs.instance, byName.instance);
    for (const l of [byName, byId, theirs]) l.release();
  });

  it('activates once for 100 concurrent first acquires', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support' });
    const leases = await Promise.all(Array.from({ length: 100 }, () => pool.acquire(P, 'support')));
    assert.equal(new Set(leases.map((l) => l.instance)).size, 1);
    assert.equal(pool.stats().activations, 1);
    assert.equal(leases[0]?.instance.leases, 100);
    for (const l of leases) l.release();
    assert.equal(leases[0]?.instance.state, 'ready');
  });

  it('fails with AGENT_NOT_FOUND for an unknown agent', async () => {
    const { pool } = poolFixture();
    await assert.rejects(pool.acquire(P, 'ghost'), code('AGENT_NOT_FOUND'));
    assert.equal(pool.stats().active, 0);
  });

  it('stays within maxActive and evicts idle instances', async () => {
    const { pool, registry } = poolFixture({ maxActive: 10, policy: 'lru' });
    await createAgents(registry, 50);
    for (let i = 0; i < 50; i++) {
      const lease = await pool.acquire(P, `a${i}`);
      lease.release();
      assert.ok(pool.stats().active <= 10);
    }
    const stats = pool.stats();
    assert.equal(stats.resident, 10);
    assert.equal(stats.evictions, 40);
  });

  it('stays within maxBytes', async () => {
    const { pool, registry } = poolFixture({ maxBytes: 20_000, policy: 'lru' });
    await createAgents(registry, 30, 'a', { instructions: 'x'.repeat(2000) });
    for (let i = 0; i < 30; i++) (await pool.acquire(P, `a${i}`)).release();
    const stats = pool.stats();
    assert.ok(stats.bytes <= 20_000, `bytes ${stats.bytes}`);
    assert.ok(stats.resident >= 1 && stats.resident < 30);
  });

  it('never evicts a busy instance: a new activation waits for a release', async () => {
    const { pool, registry, clock } = poolFixture({ maxActive: 2, acquireTimeoutMs: 5000 });
    await createAgents(registry, 3);
    const a = await pool.acquire(P, 'a0');
    const b = await pool.acquire(P, 'a1');
    let got = false;
    const c = pool.acquire(P, 'a2').then((l) => {
      got = true;
      return l;
    });
    await flush();
    assert.equal(got, false);
    assert.equal(pool.stats().waiting, 1);
    clock.advance(1000);
    a.release();
    const lease = await c;
    assert.equal(a.instance.state, 'terminated', 'the idle one was evicted');
    assert.equal(b.instance.state, 'busy', 'the busy one was kept');
    assert.equal(pool.stats().active, 2);
    assert.equal(pool.stats().acquireWaitMs.count, 1, 'the wait was measured');
    b.release();
    lease.release();
  });

  it('never evicts a fresh instance before its acquirer holds it', async () => {
    const { pool, registry } = poolFixture({ maxActive: 1 });
    await createAgents(registry, 2);
    const a = pool.acquire(P, 'a0');
    const b = pool.acquire(P, 'a1');
    (await a).release();
    (await b).release();
    // Evicting a0's instance for a1 before a0's acquirer leased it would cost a third activation,
    // and two acquirers doing so to each other could go on forever.
    assert.equal(pool.stats().activations, 2);
  });

  it('fails with ACQUIRE_TIMEOUT when nothing is released in time', async () => {
    const { pool, registry, clock } = poolFixture({ maxActive: 1, acquireTimeoutMs: 5000 });
    await createAgents(registry, 2);
    const held = await pool.acquire(P, 'a0');
    const waiting = pool.acquire(P, 'a1');
    const settled = assert.rejects(waiting, code('ACQUIRE_TIMEOUT'));
    await flush();
    clock.advance(4999);
    await flush();
    assert.equal(pool.stats().waiting, 1);
    clock.advance(1);
    await settled;
    assert.equal(pool.stats().acquireTimeouts, 1);
    assert.equal(pool.stats().waiting, 0);
    held.release();
  });

  it('fails with POOL_SATURATED past maxWaiting, and stops waiting on abort', async () => {
    const { pool, registry } = poolFixture({ maxActive: 1, maxWaiting: 1 });
    await createAgents(registry, 3);
    const held = await pool.acquire(P, 'a0');
    const controller = new AbortController();
    const first = pool.acquire(P, 'a1', { signal: controller.signal });
    await flush();
    await assert.rejects(pool.acquire(P, 'a2'), code('POOL_SATURATED'));
    controller.abort(new Error('client went away'));
    await assert.rejects(first, /client went away/);
    assert.equal(pool.stats().waiting, 0);
    held.release();
  });

  it('retires the instance when its definition changes; leases in flight finish on their version', async () => {
    const { pool, registry, transitions } = poolFixture();
    await registry.create(P, { name: 'support', instructions: 'v1' });
    const old = await pool.acquire(P, 'support');
    await registry.update(P, 'support', { instructions: 'v2' });
    assert.equal(old.instance.state, 'busy');
    assert.equal(old.agent.spec.instructions, 'v1');
    const fresh = await pool.acquire(P, 'support');
    assert.notEqual(fresh.instance, old.instance);
    assert.equal(fresh.agent.activeVersion, 2);
    old.release();
    assert.equal(old.instance.state, 'terminated');
    assert.ok(transitions().includes('support:busy>ready:release'));
    assert.ok(transitions().includes('support:ready>terminated:retired'));
    fresh.release();
    assert.equal(pool.stats().retirements, 1);
  });

  it('retires on rollback and delete', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support', instructions: 'v1' });
    await registry.update(P, 'support', { instructions: 'v2' });
    const v2 = await pool.acquire(P, 'support');
    v2.release();
    await registry.rollback(P, 'support', 1);
    assert.equal(v2.instance.state, 'terminated');
    const v1 = await pool.acquire(P, 'support');
    assert.equal(v1.agent.activeVersion, 1);
    v1.release();
    await registry.delete(P, 'support');
    assert.equal(v1.instance.state, 'terminated');
    await assert.rejects(pool.acquire(P, 'support'), code('AGENT_NOT_FOUND'));
  });

  it('deactivates instances idle for maxIdleMs on the clock', async () => {
    const { pool, registry, clock, transitions } = poolFixture({
      maxIdleMs: 60_000,
      idleSweepIntervalMs: 10_000,
    });
    await createAgents(registry, 2);
    (await pool.acquire(P, 'a0')).release();
    clock.advance(30_000);
    (await pool.acquire(P, 'a1')).release();
    clock.advance(40_000); // a0 idle 70 s, a1 idle 40 s
    assert.equal(pool.instance(P, 'a0'), undefined);
    assert.equal(pool.instance(P, 'a1')?.state, 'ready');
    assert.ok(transitions().includes('a0:ready>terminated:idle'));
    assert.equal(pool.stats().idleDeactivations, 1);
  });

  it('pauses and resumes; a busy instance pauses at its last release', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support' });
    const lease = await pool.acquire(P, 'support');
    assert.equal(pool.pause(P, 'support').state, 'busy');
    await assert.rejects(pool.acquire(P, 'support'), code('AGENT_PAUSED'));
    lease.release();
    assert.equal(pool.instance(P, 'support')?.state, 'paused');
    assert.equal(pool.resume(P, 'support').state, 'ready');
    (await pool.acquire(P, 'support')).release();
    assert.throws(() => pool.pause(P, 'nobody'), code('INSTANCE_NOT_FOUND'));
  });

  it('retires a busy instance that was about to pause: it terminates at release instead of lingering', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support' });
    const lease = await pool.acquire(P, 'support');
    pool.pause(P, 'support');
    await registry.update(P, 'support', { instructions: 'v2' });
    lease.release();
    assert.equal(lease.instance.state, 'terminated');
    assert.equal(pool.stats().active, 0);
  });

  it('deactivates explicitly and prewarms', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support' });
    const info = await pool.prewarm(P, 'support');
    assert.equal(info.state, 'ready');
    assert.equal(pool.stats().activations, 1);
    assert.equal(pool.deactivate(P, 'support'), true);
    assert.equal(pool.instance(P, 'support'), undefined);
    assert.equal(pool.deactivate(P, 'support'), false);
  });

  it('pins hot agents: they are never evicted', async () => {
    const { pool, registry } = poolFixture({ maxActive: 3 });
    await registry.create(P, { name: 'vip', tier: 'hot' });
    await createAgents(registry, 20);
    assert.equal((await pool.prewarm(P, 'vip')).pinned, true);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) (await pool.acquire(P, `a${i}`)).release();
    }
    assert.equal(pool.instance(P, 'vip')?.state, 'ready');
    assert.equal(pool.stats().activations - pool.stats().evictions, 3);
    assert.equal(pool.stats().pinned, 1);
  });

  it('serves cold agents with one-shot instances', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'batch', tier: 'cold' });
    const lease = await pool.acquire(P, 'batch');
    assert.equal(pool.instance(P, 'batch'), undefined, 'not resident');
    assert.equal(pool.stats().oneShot, 1);
    lease.release();
    assert.equal(lease.instance.state, 'terminated');
    assert.equal(pool.stats().active, 0);
  });

  it('releases once: a second release is a no-op, and `using` releases at scope exit', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support' });
    const lease = await pool.acquire(P, 'support');
    assert.equal(lease.release(), true);
    assert.equal(lease.release(), false);
    {
      using scoped = await pool.acquire(P, 'support');
      assert.equal(scoped.instance.state, 'busy');
    }
    assert.equal(pool.instance(P, 'support')?.state, 'ready');
  });

  it('emits one event per transition and keeps the state gauges in step', async () => {
    const { pool, registry, transitions } = poolFixture({ maxActive: 2 });
    await createAgents(registry, 3);
    for (let i = 0; i < 3; i++) (await pool.acquire(P, `a${i}`)).release();
    const t = transitions();
    assert.deepEqual(t.slice(0, 4), [
      'a0:created>initializing:activate',
      'a0:initializing>ready:activated',
      'a0:ready>busy:acquire',
      'a0:busy>ready:release',
    ]);
    assert.equal(t.filter((x) => x.endsWith('>terminated:evicted')).length, 1);
    const stats = pool.stats();
    assert.equal(stats.byState.ready, stats.resident);
    assert.equal(
      stats.byState.busy + stats.byState.created + stats.byState.initializing + stats.byState.paused,
      0,
    );
  });

  it('closes: waiters fail with POOL_CLOSED, idle instances terminate, busy ones at release', async () => {
    const { pool, registry } = poolFixture({ maxActive: 1 });
    await createAgents(registry, 2);
    const held = await pool.acquire(P, 'a0');
    const waiting = pool.acquire(P, 'a1');
    await flush();
    pool.close();
    await assert.rejects(waiting, code('POOL_CLOSED'));
    await assert.rejects(pool.acquire(P, 'a0'), code('POOL_CLOSED'));
    assert.equal(held.instance.state, 'busy');
    held.release();
    assert.equal(held.instance.state, 'terminated');
  });
});

describe('instance pool options', () => {
  it('has documented defaults', () => {
    assert.deepEqual(resolveInstancePoolOptions(), {
      maxActive: 1000,
      maxBytes: 256 * 2 ** 20,
      policy: 'tinylfu',
      acquireTimeoutMs: 30_000,
      maxWaiting: 10_000,
      maxIdleMs: 600_000,
      idleSweepIntervalMs: 60_000,
      recovery: {
        enabled: true,
        maxFailuresPerHour: 5,
        windowMs: 3_600_000,
        cooldownMs: 900_000,
        historySize: 20,
        maxTrackedAgents: 10_000,
        sweepIntervalMs: 60_000,
      },
      preload: resolvePreloadOptions(), // pinned in preload.test.ts
      health: resolveHealthOptions(), // pinned in test/pool/health-options.test.ts
      checkpoint: {
        enabled: true,
        intervalMs: 60_000,
        warmupCount: 1000,
        warmupTimeoutMs: 60_000,
        warmupConcurrency: 4,
      },
      autoscaling: {
        enabled: false,
        minActive: 250,
        maxActive: 4000,
        scaleUpThreshold: 0.8,
        scaleDownThreshold: 0.3,
        cooldownMs: 300_000,
        intervalMs: 10_000,
        stepRatio: 0.25,
        memoryLimitBytes: 0,
        slowActivationMs: 50,
      },
      tiers: resolveTierOptions(),
    });
  });

  it('names the field of a bad value', () => {
    assert.throws(
      () => resolveInstancePoolOptions({ maxActive: -3 }),
      (e) =>
        isAgentPoolError(e, 'VALIDATION_FAILED') &&
        e.message === 'pool.maxActive must be a positive integer, got -3',
    );
    assert.throws(
      () => resolveInstancePoolOptions({ policy: 'fifo' as 'lru' }),
      /pool.policy must be one of "lru", "tinylfu"/,
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import type { InstanceResources } from '../../src/pool/instance.ts';
import { type InstanceEvent, InstancePool } from '../../src/pool/pool.ts';
import { type Agent, type AgentEvent, AgentRegistry } from '../../src/registry/registry.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { flush, P, poolFixture } from '../support/pool-fixture.ts';

const code = (c: string) => (err: unknown) => isAgentPoolError(err) && err.code === c;
const TENTH = { strategy: 'percentage', percent: 10 } as const;

/** The fixture with `support` at v1 active and v2 its rollout candidate. */
async function rollingOut(options: Parameters<typeof poolFixture>[0] = {}) {
  const fixture = poolFixture(options);
  await fixture.registry.create(P, { name: 'support', instructions: 'v1' });
  await fixture.registry.update(P, 'support', { instructions: 'v2', rollout: TENTH });
  return fixture;
}

describe('instance pool: leases on a given version', () => {
  it('serves a version other than the active one from a one-shot instance of that version', async () => {
    const { pool } = await rollingOut();
    const stable = await pool.acquire(P, 'support');
    const canary = await pool.acquire(P, 'support', { version: 2 });
    assert.notEqual(canary.instance, stable.instance);
    assert.equal(canary.agent.activeVersion, 2);
    assert.equal(canary.agent.latestVersion, 2);
    assert.equal(canary.agent.spec.instructions, 'v2');
    assert.equal(canary.instance.prompt, 'v2');
    assert.deepEqual(canary.agent.rollout?.candidateVersion, 2);
    assert.equal(
      pool.instance(P, 'support')?.version,
      1,
      'the resident instance stays on the active version',
    );
    assert.equal(pool.stats().oneShot, 1);
    assert.equal(pool.stats().active, 2);
    canary.release();
    assert.equal(canary.instance.state, 'terminated');
    assert.equal(pool.stats().active, 1);
    stable.release();
    const again = await pool.acquire(P, 'support', { version: 2 });
    assert.notEqual(again.instance, canary.instance, 'not cached');
    again.release();
  });

  it('serves the active version as a normal acquire does: from the warm instance', async () => {
    const { pool, registry } = await rollingOut();
    const first = await pool.acquire(P, 'support', { version: 1 });
    first.release();
    const agent = await registry.get(P, 'support');
    const byId = await pool.acquire(P, agent.id, { version: 1 });
    assert.equal(byId.instance, first.instance);
    assert.equal(pool.instance(P, 'support')?.state, 'busy');
    byId.release();
    assert.equal(pool.stats().activations, 1);
    assert.equal(pool.stats().oneShot, 0);
  });

  it('fails with VERSION_NOT_FOUND, AGENT_NOT_FOUND or VALIDATION_FAILED, taking no place', async () => {
    const { pool } = await rollingOut();
    await assert.rejects(pool.acquire(P, 'support', { version: 3 }), code('VERSION_NOT_FOUND'));
    await assert.rejects(pool.acquire(P, 'ghost', { version: 2 }), code('AGENT_NOT_FOUND'));
    await assert.rejects(pool.acquire('other', 'support', { version: 2 }), code('AGENT_NOT_FOUND'));
    await assert.rejects(pool.acquire(P, 'support', { version: 0 }), code('VALIDATION_FAILED'));
    await assert.rejects(pool.acquire(P, 'support', { version: 1.5 }), code('VALIDATION_FAILED'));
    assert.equal(pool.stats().active, 0);
  });

  it('counts against maxActive while leased: it waits for room and times out like any acquire', async () => {
    const { pool, registry, clock } = await rollingOut({ maxActive: 1, acquireTimeoutMs: 5000 });
    await registry.create(P, { name: 'other' });
    const held = await pool.acquire(P, 'other');
    const timedOut = assert.rejects(pool.acquire(P, 'support', { version: 2 }), code('ACQUIRE_TIMEOUT'));
    await flush();
    clock.advance(5000);
    await timedOut;
    let got = false;
    const waiting = pool.acquire(P, 'support', { version: 2 }).then((lease) => {
      got = true;
      return lease;
    });
    await flush();
    assert.equal(got, false);
    held.release();
    const canary = await waiting;
    assert.equal(canary.agent.activeVersion, 2);
    assert.equal(pool.stats().active, 1);
    assert.equal(pool.stats().evictions, 1, 'the idle instance of other made room');
    canary.release();
    assert.equal(pool.stats().active, 0);
  });

  it('refuses a paused agent', async () => {
    const { pool } = await rollingOut();
    (await pool.acquire(P, 'support')).release();
    pool.pause(P, 'support');
    await assert.rejects(pool.acquire(P, 'support', { version: 2 }), code('AGENT_PAUSED'));
    pool.resume(P, 'support');
    (await pool.acquire(P, 'support', { version: 2 })).release();
  });

  it("resolves resources for the version's spec, and fails the activation with the resolver's error", async () => {
    const clock = new ManualClock();
    const bus = new LocalEventBus<AgentEvent | InstanceEvent>();
    const registry = new AgentRegistry({ store: new MemoryAgentStore(), bus, clock });
    const resolved: string[] = [];
    const resolveResources = async (agent: Agent): Promise<InstanceResources> => {
      if (agent.spec.instructions === 'broken') throw new Error('no such tool');
      resolved.push(`${agent.activeVersion}:${agent.spec.instructions}`);
      return { tools: [] } as unknown as InstanceResources;
    };
    const pool = new InstancePool({ registry, bus, clock, resolveResources });
    await registry.create(P, { name: 'support', instructions: 'v1' });
    await registry.update(P, 'support', { instructions: 'v2', rollout: TENTH });
    (await pool.acquire(P, 'support', { version: 2 })).release();
    (await pool.acquire(P, 'support')).release();
    assert.deepEqual(resolved, ['2:v2', '1:v1']);
    await registry.abortRollout(P, 'support');
    await registry.update(P, 'support', { instructions: 'broken', rollout: TENTH });
    await assert.rejects(pool.acquire(P, 'support', { version: 3 }), code('ACTIVATION_FAILED'));
    assert.equal(pool.stats().activationFailures, 1);
    assert.equal(pool.stats().active, 0);
    pool.close();
  });
});

describe('instance pool: rollouts', () => {
  it('refreshes the resident instance when a rollout starts, changes or ends, so leases carry it', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'support', instructions: 'v1' });
    const before = await pool.acquire(P, 'support');
    assert.equal(before.agent.rollout, null);
    await registry.update(P, 'support', { instructions: 'v2', rollout: TENTH });
    assert.equal(before.instance.state, 'busy', 'a lease in flight finishes on its instance');
    before.release();
    assert.equal(before.instance.state, 'terminated');
    const during = await pool.acquire(P, 'support');
    assert.deepEqual(during.agent.rollout?.flag, TENTH);
    assert.equal(during.agent.activeVersion, 1);
    during.release();
    await registry.update(P, 'support', { rollout: { strategy: 'percentage', percent: 50 } });
    const changed = await pool.acquire(P, 'support');
    assert.deepEqual(changed.agent.rollout?.flag, { strategy: 'percentage', percent: 50 });
    changed.release();
    await registry.abortRollout(P, 'support');
    const after = await pool.acquire(P, 'support');
    assert.equal(after.agent.rollout, null);
    assert.equal(after.agent.activeVersion, 1);
    after.release();
    assert.equal(pool.stats().retirements, 3);
  });

  it('retires the stable instance on promotion, as on an update', async () => {
    const { pool, registry, transitions } = await rollingOut();
    const stable = await pool.acquire(P, 'support');
    await registry.promote(P, 'support');
    assert.equal(stable.instance.state, 'busy');
    const promoted = await pool.acquire(P, 'support');
    assert.notEqual(promoted.instance, stable.instance);
    assert.equal(promoted.agent.activeVersion, 2);
    assert.equal(promoted.agent.spec.instructions, 'v2');
    assert.equal(promoted.agent.rollout, null);
    stable.release();
    assert.equal(stable.instance.state, 'terminated');
    assert.ok(transitions().includes('support:ready>terminated:retired'));
    promoted.release();
  });

  it('keeps a hot agent warm across a promotion, on the new version', async () => {
    const { pool, registry } = poolFixture();
    await registry.create(P, { name: 'vip', tier: 'hot', instructions: 'v1' });
    await registry.update(P, 'vip', { instructions: 'v2', rollout: TENTH });
    await pool.prewarm(P, 'vip');
    assert.equal(pool.instance(P, 'vip')?.pinned, true);
    await registry.promote(P, 'vip');
    await flush();
    const info = pool.instance(P, 'vip');
    assert.equal(info?.version, 2);
    assert.equal(info?.pinned, true);
  });
});

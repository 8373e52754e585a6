import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { Autoscaler } from '../../src/pool/autoscaler.ts';
import { resolveAutoscalingOptions } from '../../src/pool/autoscaler-options.ts';
import type { Lease } from '../../src/pool/lease.ts';
import type { AutoscalingOptions } from '../../src/pool/autoscaler-options.ts';
import type { ScaledEvent } from '../../src/pool/scaling-events.ts';
import { createAgents, flush, P, poolFixture } from '../support/pool-fixture.ts';

const LIMIT = 1000 * 2 ** 20;

/** A pool of capacity 8 with an autoscaler reading every second; `heap` sets the heap it reads. */
async function scaled(options: AutoscalingOptions = {}, agents = 40) {
  const f = poolFixture({ maxActive: 8, maxIdleMs: 0 });
  await createAgents(f.registry, agents);
  const bus = new LocalEventBus<ScaledEvent>();
  const scaledEvents: ScaledEvent[] = [];
  bus.on('pool.scaled', (e) => scaledEvents.push(e));
  const memory = { heap: 100 * 2 ** 20 };
  const autoscaler = new Autoscaler(
    { pool: f.pool, bus, clock: f.clock, log: silentLogger(), heapUsed: () => memory.heap },
    { enabled: true, minActive: 4, maxActive: 32, intervalMs: 1000, memoryLimitBytes: LIMIT, ...options },
  );
  autoscaler.start();
  const hold = async (from: number, to: number): Promise<Lease[]> => {
    const leases: Lease[] = [];
    for (let i = from; i < to; i++) leases.push(await f.pool.acquire(P, `a${i}`));
    return leases;
  };
  return { ...f, autoscaler, scaledEvents, memory, hold };
}

describe('autoscaler', () => {
  it('has documented defaults and names the field of a bad value', () => {
    assert.deepEqual(resolveAutoscalingOptions(undefined, 1000), {
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
    });
    assert.throws(
      () => resolveAutoscalingOptions({ minActive: 10, maxActive: 5 }, 100),
      /pool\.autoscaling\.maxActive must be ≥ minActive \(10\), got 5/,
    );
    assert.throws(
      () => resolveAutoscalingOptions({ scaleDownThreshold: 0.9 }, 100),
      /pool\.autoscaling\.scaleDownThreshold must be below scaleUpThreshold/,
    );
    assert.throws(() => resolveAutoscalingOptions({ scaleUpThreshold: 2 }, 100), /scaleUpThreshold must be/);
    assert.throws(
      () => resolveAutoscalingOptions({ cooldown: 1 }, 100),
      /autoscaling\.cooldown is not a known/,
    );
  });

  it('does nothing when not enabled', async () => {
    const s = await scaled({ enabled: false });
    await s.hold(0, 8);
    s.clock.advance(60_000);
    assert.equal(s.pool.capacity, 8);
    assert.deepEqual(s.scaledEvents, []);
  });

  it('grows when utilisation reaches scaleUpThreshold, and again at the next reading', async () => {
    const s = await scaled();
    const leases = await s.hold(0, 7); // 7 / 8 busy
    s.clock.advance(1000);
    assert.equal(s.pool.capacity, 10);
    assert.equal(s.pool.stats().maxActive, 10);
    assert.equal(s.scaledEvents.length, 1);
    const e = s.scaledEvents[0]!;
    assert.deepEqual([e.direction, e.from, e.to, e.evicted], ['up', 8, 10, 0]);
    assert.match(e.reasons.join(), /utilisation 0\.88 ≥ 0\.8/);
    leases.push(...(await s.hold(7, 9))); // 9 / 10
    s.clock.advance(1000);
    assert.equal(s.pool.capacity, 13); // + 25%, rounded
    assert.deepEqual(s.autoscaler.stats().decisions, { up: 2, down: 0 });
    for (const l of leases) l.release();
  });

  it('grows when acquirers wait for room, and lets them in', async () => {
    const s = await scaled({ scaleUpThreshold: 1 }); // utilisation alone never decides here
    const leases = await s.hold(0, 8);
    let waited: Lease | undefined;
    const waiting = s.pool.acquire(P, 'a8').then((l) => (waited = l));
    await flush();
    assert.equal(s.pool.stats().waiting, 1);
    s.clock.advance(1000);
    await waiting;
    assert.ok(waited !== undefined);
    assert.equal(s.pool.capacity, 10);
    assert.ok(s.scaledEvents[0]!.reasons.some((r) => r === '1 acquirer(s) waiting for room'));
    for (const l of [...leases, waited]) l.release();
  });

  it('shrinks when idle, once cooldownMs passed, evicting idle unpinned instances only', async () => {
    const s = await scaled({ cooldownMs: 60_000 });
    for (const l of await s.hold(0, 8)) l.release(); // 8 resident, all idle
    await s.registry.create(P, { name: 'vip', tier: 'hot' });
    await s.pool.prewarm(P, 'vip'); // pinned
    const busy = await s.hold(0, 1); // a0 busy
    s.clock.advance(59_000);
    assert.equal(s.pool.capacity, 8, 'no shrink within the cooldown after start');
    s.clock.advance(1000);
    assert.equal(s.pool.capacity, 6);
    const e = s.scaledEvents[0]!;
    assert.equal(e.direction, 'down');
    assert.match(e.reasons[0]!, /utilisation 0\.13 ≤ 0\.3, nobody waiting, no evictions/);
    assert.equal(e.evicted, 2);
    assert.equal(s.pool.instance(P, 'vip')?.pinned, true);
    assert.equal(s.pool.instance(P, 'a0')?.state, 'busy');
    assert.equal(s.pool.stats().active, 6);
    s.clock.advance(59_000);
    assert.equal(s.pool.capacity, 6, 'the next shrink waits for the cooldown');
    s.clock.advance(1000);
    assert.equal(s.pool.capacity, 4);
    s.clock.advance(600_000);
    assert.equal(s.pool.capacity, 4, 'never below minActive');
    busy[0]!.release();
  });

  it('does not grow again within cooldownMs of a shrink', async () => {
    const s = await scaled({ cooldownMs: 10_000 });
    s.clock.advance(10_000);
    assert.equal(s.pool.capacity, 6); // idle: shrank
    const leases = await s.hold(0, 5); // 5 / 6 busy
    s.clock.advance(1000);
    assert.equal(s.pool.capacity, 6, 'the shrink was less than cooldownMs ago');
    s.clock.advance(9000);
    assert.equal(s.pool.capacity, 8);
    for (const l of leases) l.release();
  });

  it('stops growing near memoryLimitBytes and shrinks at once above it', async () => {
    const s = await scaled({ cooldownMs: 3_600_000 });
    const leases = await s.hold(0, 8);
    s.memory.heap = 0.95 * LIMIT;
    s.clock.advance(1000);
    assert.equal(s.pool.capacity, 8);
    assert.equal(s.autoscaler.stats().blockedByMemory, 1);
    for (const l of leases.splice(0, 4)) l.release();
    s.memory.heap = 1.1 * LIMIT;
    s.clock.advance(1000);
    assert.equal(s.pool.capacity, 6, 'memory pressure ignores the cooldown');
    assert.match(s.scaledEvents[0]!.reasons[0]!, /heap 1100 MiB > memoryLimitBytes 1000 MiB/);
    assert.equal(s.scaledEvents[0]!.evicted, 2);
    for (const l of leases) l.release();
  });

  it('brings a capacity outside minActive … maxActive within them at start', async () => {
    const s = await scaled({ minActive: 12, maxActive: 20 });
    assert.equal(s.pool.capacity, 12);
    assert.deepEqual([s.scaledEvents[0]!.from, s.scaledEvents[0]!.to], [8, 12]);
  });

  it('stops reading when closed', async () => {
    const s = await scaled();
    s.autoscaler.close();
    await s.hold(0, 8);
    s.clock.advance(10_000);
    assert.equal(s.pool.capacity, 8);
  });
});

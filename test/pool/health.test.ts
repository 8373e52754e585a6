/**
 * The health monitor on the injected clock: activation timeouts free their place, busy instances
 * are reported stuck once per busy period, runs past their agent's runTimeoutMs end with
 * RUN_TIMEOUT, an overloaded node refuses new runs over HTTP (and the OpenAI-compatible endpoints)
 * with 503 OVERLOADED and Retry-After while runs in flight finish, memory pressure shrinks the
 * cache without touching busy or hot instances, and the status recovers. Process readings are
 * injected, so every figure is the test's; one test reads the real process.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, type AgentPoolEvent, createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import type { HealthEvent } from '../../src/pool/health-events.ts';
import { resolveHealthOptions, type HealthOptions } from '../../src/pool/health-options.ts';
import { HealthMonitor } from '../../src/pool/health.ts';
import type { InstanceResources } from '../../src/pool/instance.ts';
import { type InstanceEvent, InstancePool } from '../../src/pool/pool.ts';
import {
  type HealthReadings,
  type ProcessReading,
  processReadings,
} from '../../src/pool/process-readings.ts';
import { type AgentEvent, AgentRegistry } from '../../src/registry/registry.ts';
import { buildServer } from '../../src/server/app.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { slowModel } from '../server/support.ts';
import { flush, P } from '../support/pool-fixture.ts';

const GiB = 2 ** 30;

/** A calm process: nothing near a threshold. */
const CALM: ProcessReading = {
  eventLoopDelayMs: 12,
  eventLoopUtilization: 0.2,
  heapUsedBytes: 0.1 * GiB,
  heapLimitBytes: 4 * GiB,
  rssBytes: 0.5 * GiB,
  cpuRatio: 0.1,
};

/** Readings the test sets; `reads` counts how often the monitor asked. */
function fakeReadings(initial: ProcessReading = CALM) {
  const state = { current: initial, reads: 0, closed: false };
  const readings: HealthReadings = {
    read: () => {
      state.reads++;
      return state.current;
    },
    close: () => {
      state.closed = true;
    },
  };
  return { readings, state };
}

/** A promise with its resolve, for resolvers the test finishes when it wants. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const NO_RESOURCES: InstanceResources = { models: [], tools: [] };

/** A registry, a pool whose activations the test controls, and a monitor with fake readings. */
function monitorFixture(health: HealthOptions = {}, pool: { maxActive?: number } = {}) {
  const clock = new ManualClock();
  const bus = new LocalEventBus<AgentEvent | InstanceEvent | HealthEvent>();
  const events: HealthEvent[] = [];
  for (const type of [
    'pool.health.changed',
    'instance.stuck',
    'instance.activation_timed_out',
    'pool.cache_shrunk',
  ] as const) {
    bus.on(type, (e) => events.push(e));
  }
  const registry = new AgentRegistry({ store: new MemoryAgentStore(), bus, clock });
  /** Agents whose activation hangs until the test resolves it. */
  const hanging = new Map<string, ReturnType<typeof deferred<InstanceResources>>>();
  const instances = new InstancePool(
    {
      registry,
      bus,
      clock,
      resolveResources: (agent) => hanging.get(agent.name)?.promise ?? Promise.resolve(NO_RESOURCES),
    },
    { maxIdleMs: 0, ...pool },
  );
  const { readings, state } = fakeReadings();
  const monitor = new HealthMonitor(
    { pool: instances, bus, clock, readings },
    resolveHealthOptions({ memoryLimitBytes: 8 * GiB, ...health }),
  );
  return {
    clock,
    bus,
    events,
    registry,
    instances,
    monitor,
    readings: state,
    hanging,
    close() {
      monitor.close();
      instances.close();
    },
  };
}

type MonitorFixture = ReturnType<typeof monitorFixture>;

describe('health monitor', () => {
  let f: MonitorFixture | undefined;
  afterEach(() => {
    f?.close();
    f = undefined;
  });

  it('fails an activation running past activationTimeoutMs with ACTIVATION_TIMEOUT and frees its place', async () => {
    f = monitorFixture({ activationTimeoutMs: 30_000 }, { maxActive: 1 });
    await f.registry.create(P, { name: 'stuck' });
    await f.registry.create(P, { name: 'fine' });
    const late = deferred<InstanceResources>();
    f.hanging.set('stuck', late);

    const first = f.instances.acquire(P, 'stuck');
    const second = f.instances.acquire(P, 'stuck'); // joins the same activation
    const outcome = Promise.allSettled([first, second]);
    await flush();
    assert.equal(f.instances.stats().active, 1, 'the activation holds the one place');

    f.clock.advance(20_000);
    await flush();
    assert.equal(f.events.length, 0, 'not yet: 20 s of 30');

    f.clock.advance(10_000);
    const [a, b] = await outcome;
    for (const r of [a, b]) {
      assert.equal(r?.status, 'rejected');
      assert.ok(isAgentPoolError((r as PromiseRejectedResult).reason, 'ACTIVATION_TIMEOUT'));
    }
    assert.equal((a as PromiseRejectedResult).reason.status, 504);
    const timedOut = f.events.find((e) => e.type === 'instance.activation_timed_out');
    assert.deepEqual(timedOut && { ...timedOut, agentId: typeof timedOut.agentId }, {
      type: 'instance.activation_timed_out',
      at: f.clock.now(),
      project: P,
      agent: 'stuck',
      agentId: 'string',
      elapsedMs: 30_000,
      timeoutMs: 30_000,
    });
    assert.equal(f.instances.stats().active, 0, 'the place is free');
    assert.equal(f.monitor.report().totals.activationTimeouts, 1);

    // Another agent gets the place at once (maxActive 1, nothing to evict).
    const lease = await f.instances.acquire(P, 'fine', { timeoutMs: 0 });
    lease.release();

    // The late completion is dropped: no instance of `stuck` appears, nothing leaks.
    late.resolve(NO_RESOURCES);
    await flush();
    assert.equal(f.instances.instance(P, 'stuck'), undefined);
    const stats = f.instances.stats();
    assert.equal(stats.active, 1, 'only fine');
    assert.equal(stats.byState.initializing, 0);
    assert.equal(stats.byState.ready, 1);
  });

  it('does not count the wait for room against the activation timeout', async () => {
    f = monitorFixture({ activationTimeoutMs: 30_000 }, { maxActive: 1 });
    await f.registry.create(P, { name: 'holder' });
    await f.registry.create(P, { name: 'waiter' });
    const held = await f.instances.acquire(P, 'holder');
    const waiting = f.instances.acquire(P, 'waiter', { timeoutMs: 60_000 });
    await flush();
    f.clock.advance(40_000); // 40 s waiting for room: acquireTimeoutMs bounds that, not the monitor
    await flush();
    assert.equal(f.monitor.report().totals.activationTimeouts, 0);
    held.release(); // holder is evicted for waiter, which activates at once
    const lease = await waiting;
    assert.equal(lease.agent.name, 'waiter');
    lease.release();
  });

  it('does not take an instance whose overlapping leases keep moving for stuck', async () => {
    f = monitorFixture({ stuckAfterMs: 60_000, intervalMs: 10_000 });
    await f.registry.create(P, { name: 'popular' });
    let held = await f.instances.acquire(P, 'popular');
    for (let i = 0; i < 20; i++) {
      const next = await f.instances.acquire(P, 'popular'); // overlaps: the instance never goes ready
      held.release();
      held = next;
      f.clock.advance(10_000);
    }
    assert.equal(held.instance.status.since, f.clock.now() - 200_000, 'busy without a break for 200 s');
    assert.equal(f.events.filter((e) => e.type === 'instance.stuck').length, 0);
    assert.equal(f.monitor.report().status, 'ok');
    held.release();
  });

  it('reports a busy instance whose leases have not moved for stuckAfterMs once per stall, as a degraded check', async () => {
    f = monitorFixture({ stuckAfterMs: 60_000, intervalMs: 10_000 });
    await f.registry.create(P, { name: 'worker' });
    const lease = await f.instances.acquire(P, 'worker');
    const busySince = f.clock.now();

    f.clock.advance(50_000);
    assert.equal(f.events.filter((e) => e.type === 'instance.stuck').length, 0);
    f.clock.advance(10_000);
    const stuck = f.events.filter((e) => e.type === 'instance.stuck');
    assert.equal(stuck.length, 1);
    assert.deepEqual(stuck[0], {
      type: 'instance.stuck',
      at: busySince + 60_000,
      project: P,
      agentId: lease.agent.id,
      name: 'worker',
      instanceId: lease.instance.id,
      busyMs: 60_000,
      leases: 1,
    });
    const check = f.monitor.report().checks.find((c) => c.name === 'stuck_instances');
    assert.equal(check?.value, 1);
    assert.equal(check?.status, 'degraded');
    assert.equal(f.monitor.report().status, 'degraded');
    assert.deepEqual(
      f.events.filter((e) => e.type === 'pool.health.changed').map((e) => `${e.from}>${e.to}`),
      ['ok>degraded'],
    );

    f.clock.advance(30_000);
    assert.equal(f.events.filter((e) => e.type === 'instance.stuck').length, 1, 'reported once');

    lease.release();
    f.clock.advance(10_000);
    assert.equal(f.monitor.report().status, 'ok', 'recovers once it is free');
    const again = await f.instances.acquire(P, 'worker'); // a new busy period
    f.clock.advance(70_000);
    assert.equal(f.events.filter((e) => e.type === 'instance.stuck').length, 2, 'reported again');
    assert.equal(f.monitor.report().totals.stuckInstances, 2);
    again.release();
  });

  it('under memory pressure evicts idle instances, never busy or hot ones, and says so', async () => {
    f = monitorFixture({ shrinkFraction: 0.5, rssRatio: { degraded: 0.8, overloaded: 0.95 } });
    for (let i = 0; i < 4; i++) await f.registry.create(P, { name: `idle${i}` });
    await f.registry.create(P, { name: 'busy' });
    await f.registry.create(P, { name: 'hot', tier: 'hot' });
    for (let i = 0; i < 4; i++) (await f.instances.acquire(P, `idle${i}`)).release();
    (await f.instances.acquire(P, 'hot')).release();
    const busy = await f.instances.acquire(P, 'busy');
    assert.equal(f.instances.stats().active, 6);

    f.readings.current = { ...CALM, rssBytes: 0.85 * 8 * GiB };
    f.clock.advance(10_000);
    const report = f.monitor.report();
    assert.equal(report.status, 'degraded');
    const rss = report.checks.find((c) => c.name === 'rss');
    assert.deepEqual(
      rss && { status: rss.status, value: rss.value, bytes: rss.bytes, limitBytes: rss.limitBytes },
      { status: 'degraded', value: 0.85, bytes: 0.85 * 8 * GiB, limitBytes: 8 * GiB },
    );
    assert.equal(f.instances.stats().active, 4, 'half of the four idle ones left');

    f.clock.advance(10_000); // one of two left (half, rounded up)
    f.clock.advance(10_000); // the last one
    f.clock.advance(10_000); // nothing left to evict
    const left = f.instances
      .instances(P)
      .map((i) => i.name)
      .sort();
    assert.deepEqual(left, ['busy', 'hot']);
    assert.deepEqual(
      f.events
        .filter((e) => e.type === 'pool.cache_shrunk')
        .map((e) => e.type === 'pool.cache_shrunk' && e.evicted),
      [2, 1, 1],
    );
    assert.equal(f.monitor.report().totals.pressureEvictions, 4);
    assert.equal(busy.instance.state, 'busy');

    f.readings.current = CALM;
    (await f.instances.acquire(P, 'idle0')).release();
    f.clock.advance(10_000);
    assert.equal(f.monitor.report().status, 'ok');
    assert.ok(f.instances.instance(P, 'idle0') !== undefined, 'no pressure, no eviction');
    busy.release();
  });

  it('keeps a hot instance the pool could not pin out of the shrinking', async () => {
    f = monitorFixture({ shrinkFraction: 1 }, { maxActive: 2 });
    await f.registry.create(P, { name: 'hot1', tier: 'hot' });
    await f.registry.create(P, { name: 'hot2', tier: 'hot' });
    (await f.instances.acquire(P, 'hot1')).release();
    (await f.instances.acquire(P, 'hot2')).release();
    assert.deepEqual(
      f.instances.instances(P).map((i) => `${i.name}:${i.pinned}`),
      ['hot1:true', 'hot2:false'],
      'one place is kept for everything else, so the second hot one is not pinned',
    );
    f.readings.current = { ...CALM, heapUsedBytes: 3.5 * GiB };
    f.clock.advance(10_000);
    assert.equal(f.monitor.report().checks.find((c) => c.name === 'heap')?.status, 'degraded');
    assert.equal(f.instances.stats().active, 2, 'neither hot instance was evicted');
    assert.equal(f.events.filter((e) => e.type === 'pool.cache_shrunk').length, 0);
  });

  it('derives each check and the status from the thresholds; a threshold of 0 is off', () => {
    f = monitorFixture({
      eventLoopDelayMs: { degraded: 100, overloaded: 500 },
      eventLoopUtilization: { degraded: 0, overloaded: 0 },
    });
    f.readings.current = { ...CALM, eventLoopDelayMs: 150, eventLoopUtilization: 1 };
    let report = f.monitor.check();
    assert.equal(report.status, 'degraded');
    assert.deepEqual(
      report.checks.map((c) => `${c.name}:${c.status}`),
      [
        'event_loop_delay:degraded',
        'event_loop_utilization:ok',
        'heap:ok',
        'rss:ok',
        'cpu:ok',
        'stuck_instances:ok',
      ],
    );
    f.readings.current = { ...CALM, eventLoopDelayMs: 500 };
    report = f.monitor.check();
    assert.equal(report.status, 'overloaded');
    assert.equal(f.monitor.overloaded, true);
    const refusal = f.monitor.refusal();
    assert.equal(refusal.code, 'OVERLOADED');
    assert.equal(refusal.status, 503);
    assert.deepEqual(refusal.details, { checks: ['event_loop_delay'], retryAfterSeconds: 10 });
    // the heap is measured against the lower of V8's limit and memoryLimitBytes
    f.readings.current = { ...CALM, heapUsedBytes: 3.9 * GiB, heapLimitBytes: 16 * GiB };
    const heap = f.monitor.check().checks.find((c) => c.name === 'heap');
    assert.equal(heap?.limitBytes, 8 * GiB);
    assert.equal(heap?.status, 'ok');
  });

  it('runs no check and reads nothing when disabled, and stops reading when closed', () => {
    f = monitorFixture({ enabled: false });
    f.clock.advance(60_000);
    assert.equal(f.readings.reads, 0);
    assert.equal(f.monitor.report().checkedAt, null);
    f.close();

    f = monitorFixture({ intervalMs: 1000 });
    f.clock.advance(3000);
    assert.equal(f.readings.reads, 3);
    f.close();
    assert.equal(f.readings.closed, true);
    f.clock.advance(3000);
    assert.equal(f.readings.reads, 3);
  });

  it('survives a check that throws: reported, and the next check runs on time', () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    let reads = 0;
    const monitor = new HealthMonitor(
      {
        pool: {
          expireActivations: () => [],
          liveInstances: () => [][Symbol.iterator](),
          shrink: () => 0,
          shrinkable: 0,
        },
        bus: new LocalEventBus<HealthEvent>(),
        clock,
        readings: {
          read: () => {
            if (++reads === 1) throw new Error('no figures');
            return CALM;
          },
          close() {},
        },
        onError: (err) => errors.push(err),
      },
      resolveHealthOptions({ memoryLimitBytes: 8 * GiB }),
    );
    try {
      clock.advance(10_000);
      assert.equal(errors.length, 1);
      assert.match(String(errors[0]), /no figures/);
      clock.advance(10_000);
      assert.equal(monitor.report().checkedAt, clock.now());
      assert.equal(monitor.report().status, 'ok');
    } finally {
      monitor.close();
    }
  });

  it('reads real numbers from this process with perf_hooks', async () => {
    const readings = processReadings();
    try {
      await new Promise((resolve) => setTimeout(resolve, 50)); // a few samples of an idle loop
      const until = performance.now() + 80;
      while (performance.now() < until); // a busy loop the readings must see, as CPU and as delay
      await new Promise((resolve) => setTimeout(resolve, 50));
      const r = readings.read();
      for (const [key, value] of Object.entries(r)) assert.ok(Number.isFinite(value), `${key}: ${value}`);
      assert.ok(r.eventLoopUtilization > 0 && r.eventLoopUtilization <= 1, `elu ${r.eventLoopUtilization}`);
      assert.ok(r.heapUsedBytes > 0 && r.heapUsedBytes < r.heapLimitBytes);
      assert.ok(r.rssBytes >= r.heapUsedBytes);
      assert.ok(r.cpuRatio > 0 && r.cpuRatio <= 1, `cpu ${r.cpuRatio}`);
      assert.ok(r.eventLoopDelayMs >= 30, `the 80 ms block shows as delay, got ${r.eventLoopDelayMs} ms`);
    } finally {
      readings.close();
    }
  });
});

describe('health monitor in an agent pool', () => {
  let pool: AgentPool | undefined;
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    await pool?.close();
    app = undefined;
    pool = undefined;
  });

  async function start(health: HealthOptions = {}) {
    const clock = new ManualClock();
    const slow = slowModel();
    const { readings, state } = fakeReadings();
    pool = await createAgentPool({
      store: 'memory',
      clock,
      ttlSweepIntervalMs: 0,
      models: { custom: { slow: () => slow.model } },
      pool: { health: { readings, memoryLimitBytes: 8 * GiB, ...health } },
    });
    const events: AgentPoolEvent[] = [];
    pool.events.on('*', (e) => {
      if (e.type !== 'instance.state_changed') events.push(e);
    });
    return { pool, clock, slow, readings: state, events };
  }

  it("cancels a run running past its agent's runTimeoutMs with RUN_TIMEOUT", async () => {
    const { pool: p, clock, slow, events } = await start({ intervalMs: 1000 });
    await p.agents.create('default', { name: 'slowpoke', model: 'slow/x', runTimeoutMs: 5000 });
    await p.agents.create('default', { name: 'patient', model: 'slow/x' });
    const timed = await p.runs.start('default', 'slowpoke', { input: 'wait' });
    const untimed = await p.runs.start('default', 'patient', { input: 'wait' });
    await slow.started;
    await flush();

    clock.advance(4000);
    await flush();
    assert.equal((await p.runs.get('default', timed.id)).status, 'running');
    clock.advance(1000);
    const ended = await timed.result;
    assert.equal(ended.status, 'failed');
    assert.equal(ended.error?.code, 'RUN_TIMEOUT');
    assert.match(ended.error?.message ?? '', /runTimeoutMs \(5000 ms\)/);
    assert.deepEqual(
      events.find((e) => e.type === 'run.timed_out'),
      {
        type: 'run.timed_out',
        at: clock.now(),
        runId: timed.id,
        project: 'default',
        agentId: ended.agentId,
        agent: 'slowpoke',
        elapsedMs: 5000,
        timeoutMs: 5000,
      },
    );
    assert.equal(p.health.report().totals.runTimeouts, 1);

    clock.advance(60_000);
    await flush();
    assert.equal((await p.runs.get('default', untimed.id)).status, 'running', 'no runTimeoutMs, no limit');
    slow.release();
    assert.equal((await untimed.result).status, 'succeeded');
  });

  it('refuses new runs with 503 OVERLOADED and Retry-After while overloaded; runs in flight finish; it recovers', async () => {
    const { pool: p, clock, slow, readings, events } = await start();
    await p.agents.create('default', { name: 'calc' });
    await p.agents.create('default', { name: 'slowpoke', model: 'slow/x' });
    app = await buildServer(p);
    const inFlight = await p.runs.start('default', 'slowpoke', { input: 'wait' });
    await slow.started;

    readings.current = { ...CALM, eventLoopDelayMs: 1500 };
    clock.advance(10_000);
    assert.equal(p.health.report().status, 'overloaded');

    const refused = await app.inject({
      method: 'POST',
      url: '/v1/agents/calc/runs',
      payload: { input: '2+2' },
    });
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.headers['retry-after'], '10');
    const body = JSON.parse(refused.body) as { error: { code: string; details: Record<string, unknown> } };
    assert.equal(body.error.code, 'OVERLOADED');
    assert.deepEqual(body.error.details, { checks: ['event_loop_delay'], retryAfterSeconds: 10 });

    const chat = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: { model: 'calc', messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal(chat.statusCode, 503);
    assert.equal(chat.headers['retry-after'], '10');
    assert.equal((JSON.parse(chat.body) as { error: { code: string } }).error.code, 'OVERLOADED');
    const responses = await app.inject({
      method: 'POST',
      url: '/v1/responses',
      payload: { model: 'calc', input: 'hi' },
    });
    assert.equal(responses.statusCode, 503);
    await assert.rejects(p.runs.start('default', 'calc', { input: 'x' }), (e) =>
      isAgentPoolError(e, 'OVERLOADED'),
    );
    assert.equal(p.health.report().totals.shedRuns, 4);

    // Reads are still served, and the run in flight finishes.
    assert.equal((await app.inject({ url: '/v1/agents' })).statusCode, 200);
    slow.release();
    assert.equal((await inFlight.result).status, 'succeeded');

    readings.current = CALM;
    clock.advance(10_000);
    assert.equal(p.health.report().status, 'ok');
    assert.deepEqual(
      events.filter((e) => e.type === 'pool.health.changed').map((e) => `${e.from}>${e.to}`),
      ['ok>overloaded', 'overloaded>ok'],
    );
    const accepted = await app.inject({
      method: 'POST',
      url: '/v1/agents/calc/runs',
      payload: { input: '2+2' },
    });
    assert.equal(accepted.statusCode, 200, accepted.body);
  });

  it('puts its readings, status and totals, and prom-client process and GC metrics, in /metrics', async () => {
    const { pool: p, clock, readings } = await start();
    readings.current = { ...CALM, eventLoopDelayMs: 250 };
    clock.advance(10_000);
    const { body } = await p.metrics.scrape();
    assert.match(body, /^agentpool_health_status 1$/m);
    assert.match(body, /^agentpool_health_check_value\{check="event_loop_delay"\} 250$/m);
    assert.match(body, /^agentpool_health_check_status\{check="event_loop_delay"\} 1$/m);
    assert.match(body, /^agentpool_health_check_value\{check="rss"\} 0\.0625$/m);
    assert.match(body, /^agentpool_run_timeouts_total 0$/m);
    assert.match(body, /^agentpool_runs_shed_total 0$/m);
    assert.match(body, /^process_cpu_user_seconds_total /m);
    assert.match(body, /^process_resident_memory_bytes /m);
    assert.match(body, /^nodejs_heap_size_used_bytes /m);
    assert.match(body, /^# TYPE nodejs_gc_duration_seconds histogram$/m);

    // A second pool in the process has its own registry: no clash, its own figures.
    const other = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
    try {
      const second = await other.metrics.scrape();
      assert.match(second.body, /^process_cpu_user_seconds_total /m);
      assert.match(second.body, /^agentpool_health_status 0$/m);
      assert.match((await p.metrics.scrape()).body, /^agentpool_health_status 1$/m);
    } finally {
      await other.close();
    }
  });
});

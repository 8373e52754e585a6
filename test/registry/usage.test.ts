/**
 * Agents' lastUsedAt, coalesced: uses are kept in memory per agent and written in one store call
 * per interval (on the injected clock), early when too many are pending, and at close.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { AgentUsage, resolveAgentUsageOptions } from '../../src/registry/usage.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import type { AgentUse, RunRecord } from '../../src/store/ports.ts';

const T0 = Date.UTC(2026, 0, 1);
const spec = { labels: {}, tier: 'warm' };

/** A memory store that records every recordUse call, and fails them while `failing` is set. */
async function countingStore(...names: string[]) {
  const store = new MemoryAgentStore();
  const calls: AgentUse[][] = [];
  let failing = false;
  const recordUse = store.recordUse.bind(store);
  store.recordUse = (uses) => {
    calls.push([...uses]);
    return failing ? Promise.reject(new Error('disk full')) : recordUse(uses);
  };
  for (const name of names) await store.create({ id: `agt_${name}`, project: 'p', name, spec, now: T0 });
  return {
    store,
    calls,
    fail(on: boolean) {
      failing = on;
    },
  };
}

/** Lets the promise chains started by a timer settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('agent usage (lastUsedAt)', () => {
  it('pins its defaults and names the field of a bad value', () => {
    assert.deepEqual(resolveAgentUsageOptions(), { lastUsedFlushIntervalMs: 60_000, maxPendingUses: 10_000 });
    for (const [options, field] of [
      [{ lastUsedFlushIntervalMs: 0 }, 'agents.lastUsedFlushIntervalMs'],
      [{ maxPendingUses: 1.5 }, 'agents.maxPendingUses'],
    ] as const) {
      assert.throws(
        () => resolveAgentUsageOptions(options),
        (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details.field === field,
      );
    }
  });

  it('writes the latest use of each agent once per interval, in one store call', async () => {
    const clock = new ManualClock(T0);
    const { store, calls } = await countingStore('a', 'b');
    const usage = new AgentUsage(store, clock, { lastUsedFlushIntervalMs: 1000 });
    for (let i = 1; i <= 50; i++) usage.note(i % 2 === 0 ? 'agt_a' : 'agt_b', T0 + i);
    usage.note('agt_a', T0 + 3); // late and older: ignored
    clock.advance(999);
    await settle();
    assert.equal(calls.length, 0, 'nothing is written before the interval ends');
    clock.advance(1);
    await settle();
    assert.deepEqual(calls, [
      [
        { id: 'agt_b', at: T0 + 49 },
        { id: 'agt_a', at: T0 + 50 },
      ],
    ]);
    assert.equal((await store.getById('agt_a'))?.lastUsedAt, T0 + 50);
    clock.advance(5000);
    await settle();
    assert.equal(calls.length, 1, 'no uses, no write');
    assert.equal(clock.pendingTimers, 0, 'and no timer left running without a collector');
  });

  it('asks its collectors at every flush and keeps its timer while they are registered', async () => {
    const clock = new ManualClock(T0);
    const { store, calls } = await countingStore('a');
    const usage = new AgentUsage(store, clock, { lastUsedFlushIntervalMs: 1000 });
    let lastUse = T0;
    const stop = usage.addCollector((note) => note('agt_a', lastUse));
    lastUse = T0 + 500;
    clock.advance(1000);
    await settle();
    lastUse = T0 + 1500;
    clock.advance(1000);
    await settle();
    assert.deepEqual(
      calls.map((c) => c.map((u) => u.at)),
      [[T0 + 500], [T0 + 1500]],
    );
    stop();
    assert.equal(clock.pendingTimers, 0, 'the last collector gone with nothing pending, the timer stops');
  });

  it('writes early when maxPendingUses agents are pending, so memory stays bounded', async () => {
    const clock = new ManualClock(T0);
    const { store, calls } = await countingStore('a', 'b', 'c');
    const usage = new AgentUsage(store, clock, { maxPendingUses: 3 });
    usage.note('agt_a', T0 + 1);
    usage.note('agt_b', T0 + 1);
    assert.equal(calls.length, 0);
    usage.note('agt_c', T0 + 1);
    await settle();
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.length, 3);
    assert.equal(usage.pending, 0);
  });

  it('keeps the uses of a failed write for the next one', async () => {
    const clock = new ManualClock(T0);
    const { store, calls, fail } = await countingStore('a');
    const usage = new AgentUsage(store, clock, { lastUsedFlushIntervalMs: 1000 });
    fail(true);
    usage.note('agt_a', T0 + 7);
    await assert.rejects(usage.flush(), /disk full/);
    assert.equal(usage.pending, 1);
    fail(false);
    await usage.flush();
    assert.equal(calls.length, 2);
    assert.equal((await store.getById('agt_a'))?.lastUsedAt, T0 + 7);
  });

  it('writes what is pending at close, and ignores uses after it', async () => {
    const clock = new ManualClock(T0);
    const { store, calls } = await countingStore('a');
    const usage = new AgentUsage(store, clock);
    usage.addCollector((note) => note('agt_a', T0 + 42));
    await usage.close();
    assert.equal((await store.getById('agt_a'))?.lastUsedAt, T0 + 42);
    usage.note('agt_a', T0 + 99);
    await usage.flush();
    assert.equal(calls.length, 1);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('agent usage (run figures)', () => {
  const run = (agentId: string, status: string, at: number, extra: { cost?: number; ms?: number } = {}) =>
    ({
      agentId,
      status,
      cost: extra.cost ?? 0,
      createdAt: at - 10,
      startedAt: extra.ms === undefined ? null : at - extra.ms,
      finishedAt: at,
    }) as unknown as RunRecord;

  it('adds finished runs up per agent and writes them with the next flush, not per run', async () => {
    const clock = new ManualClock(T0);
    const { store, calls } = await countingStore('a');
    const usage = new AgentUsage(store, clock, { lastUsedFlushIntervalMs: 1000 });
    usage.record(run('agt_a', 'succeeded', T0 + 5, { cost: 0.5, ms: 100 }));
    usage.record(run('agt_a', 'failed', T0 + 7, { cost: 0.25, ms: 300 }));
    usage.record(run('agt_a', 'cancelled', T0 + 6));
    usage.record(run('agt_a', 'running', T0 + 9)); // not finished: no use
    assert.equal(calls.length, 0);
    assert.deepEqual(usage.peek('agt_a')?.runs, {
      uses: 3,
      successes: 1,
      failures: 1,
      latencyMsTotal: 400,
      latencyCount: 2,
      costUsd: 0.75,
    });
    clock.advance(1000);
    await settle();
    assert.equal(calls.length, 1);
    const stored = await store.getUsage('agt_a');
    assert.equal(stored?.uses, 3);
    assert.equal(stored?.successes, 1);
    assert.equal(stored?.failures, 1);
    assert.equal(stored?.latencyMsTotal, 400);
    assert.equal(stored?.lastUsedAt, T0 + 7);
    assert.equal(usage.peek('agt_a'), undefined, 'nothing pending once written');
  });

  it('keeps the figures of a failed write and adds them to those noted meanwhile', async () => {
    const clock = new ManualClock(T0);
    const { store, fail } = await countingStore('a');
    const usage = new AgentUsage(store, clock, { lastUsedFlushIntervalMs: 1000 });
    usage.record(run('agt_a', 'succeeded', T0 + 1, { cost: 1 }));
    fail(true);
    await assert.rejects(usage.flush());
    usage.record(run('agt_a', 'succeeded', T0 + 2, { cost: 2 }));
    fail(false);
    await usage.flush();
    const stored = await store.getUsage('agt_a');
    assert.equal(stored?.uses, 2);
    assert.equal(stored?.costUsd, 3);
    await usage.close();
  });
});

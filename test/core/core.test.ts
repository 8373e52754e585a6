import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { isId, newId } from '../../src/core/ids.ts';
import { Histogram } from '../../src/core/metrics.ts';
import { KeyedMutex, SingleFlight } from '../../src/core/single-flight.ts';

describe('manual clock', () => {
  it('fires due timers in time order, including timers scheduled by timers, and skips cancelled ones', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => {
      fired.push('a@10');
      clock.setTimeout(() => fired.push('c@15'), 5);
    }, 10);
    clock.setTimeout(() => fired.push('never'), 12).cancel();
    clock.advance(19);
    assert.deepEqual(fired, ['a@10', 'c@15']);
    assert.equal(clock.now(), 19);
    clock.advance(1);
    assert.deepEqual(fired, ['a@10', 'c@15', 'b@20']);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('ids', () => {
  it('are prefixed, fixed-length, unique and ordered by time', () => {
    const a = newId('agt', 1_000);
    const b = newId('agt', 2_000);
    assert.ok(isId('agt', a));
    assert.ok(!isId('ins', a));
    assert.ok(!isId('agt', 'agt_short'));
    assert.ok(a < b);
    const many = new Set(Array.from({ length: 10_000 }, () => newId('ins', 5)));
    assert.equal(many.size, 10_000);
  });
});

describe('histogram', () => {
  it('counts into buckets and estimates quantiles by bucket bound', () => {
    const h = new Histogram([1, 10, 100]);
    for (const v of [0.5, 0.7, 5, 50, 500]) h.observe(v);
    const s = h.snapshot();
    assert.deepEqual(s.counts, [2, 1, 1, 1]);
    assert.equal(s.count, 5);
    assert.equal(s.sum, 556.2);
    assert.equal(h.quantile(0.4), 1);
    assert.equal(h.quantile(0.6), 10);
    assert.equal(h.quantile(1), Number.POSITIVE_INFINITY);
    assert.ok(Number.isNaN(new Histogram().quantile(0.5)));
  });
});

describe('single flight and keyed mutex', () => {
  it('runs concurrent calls with one key once, and again after it settles', async () => {
    const flight = new SingleFlight<string, number>();
    let runs = 0;
    const work = () => new Promise<number>((r) => setImmediate(() => r(++runs)));
    const results = await Promise.all([flight.run('k', work), flight.run('k', work), flight.run('j', work)]);
    assert.deepEqual(results, [1, 1, 2]);
    assert.equal(flight.size, 0);
    assert.equal(await flight.run('k', work), 3);
  });

  it('serialises calls with one key in arrival order, even when one fails', async () => {
    const mutex = new KeyedMutex<string>();
    const order: string[] = [];
    const step = (name: string, fail = false) =>
      mutex.run('k', async () => {
        order.push(`start ${name}`);
        await new Promise((r) => setImmediate(r));
        order.push(`end ${name}`);
        if (fail) throw new Error(name);
      });
    const results = await Promise.allSettled([step('a'), step('b', true), step('c')]);
    assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    assert.equal(results[1]?.status, 'rejected');
    await new Promise((r) => setImmediate(r));
    assert.equal(mutex.size, 0);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CountMinSketch, hashInt, hashString } from '../../../src/pool/policies/count-min-sketch.ts';

describe('count-min sketch', () => {
  it('sizes its rows to a power of two at least the capacity, never below 16, and ages every 10 × width', () => {
    const cases: [number, number][] = [
      [1, 16],
      [16, 16],
      [17, 32],
      [100, 128],
      [1000, 1024],
      [1025, 2048],
    ];
    for (const [capacity, width] of cases) {
      const sketch = new CountMinSketch(capacity);
      assert.equal(sketch.width, width, `capacity ${capacity}`);
      assert.equal(sketch.sampleSize, 10 * width, `capacity ${capacity}`);
    }
  });

  it('never underestimates a count before the first halving', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(300), { maxLength: 500, size: 'max' }), (keys) => {
        const sketch = new CountMinSketch(64);
        const counts = new Map<number, number>();
        for (const key of keys) {
          sketch.increment(hashInt(key));
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        assert.ok(sketch.additions < sketch.sampleSize, 'the sample never fills in this test');
        for (const [key, count] of counts) {
          assert.ok(sketch.frequency(hashInt(key)) >= Math.min(count, 15), `key ${key} seen ${count} times`);
        }
      }),
    );
  });

  it('counts exactly when keys do not collide, and saturates at 15', () => {
    const sketch = new CountMinSketch(1 << 16);
    for (let i = 0; i < 7; i++) sketch.increment(hashString('seven'));
    for (let i = 0; i < 40; i++) sketch.increment(hashString('forty'));
    assert.equal(sketch.frequency(hashString('seven')), 7);
    assert.equal(sketch.frequency(hashString('forty')), 15);
    assert.equal(sketch.frequency(hashString('never seen')), 0);
  });

  it('does not count increments that only touch saturated counters towards the sample', () => {
    const sketch = new CountMinSketch(16);
    for (let i = 0; i < 100; i++) sketch.increment(hashInt(1));
    assert.equal(sketch.additions, 15);
  });

  it('halves every counter once sampleSize additions have been counted', () => {
    const sketch = new CountMinSketch(16);
    let key = 0;
    while (sketch.additions < sketch.sampleSize - 1) sketch.increment(hashInt(key++ % 50));
    const before = new Map<number, number>();
    for (let k = 0; k < 50; k++) before.set(k, sketch.frequency(hashInt(k)));
    // The last addition must bump a counter, so it goes to the least counted key.
    const [last, lastBefore] = [...before].reduce((a, b) => (b[1] < a[1] ? b : a));
    assert.ok(lastBefore < 15);
    assert.ok(Math.max(...before.values()) >= 4, 'counts are large enough for halving to show');

    sketch.increment(hashInt(last));

    assert.ok(sketch.additions <= sketch.sampleSize / 2, `additions after aging: ${sketch.additions}`);
    assert.equal(sketch.frequency(hashInt(last)), Math.floor((lastBefore + 1) / 2));
    for (const [k, f] of before) {
      const after = sketch.frequency(hashInt(k));
      // A key sharing a counter with `last` may have been bumped once before the halving.
      assert.ok(
        after === Math.floor(f / 2) || after === Math.floor((f + 1) / 2),
        `key ${k}: ${f} → ${after}`,
      );
    }
  });

  it('lets a new favourite overtake an old one after aging', () => {
    const sketch = new CountMinSketch(16);
    for (let i = 0; i < 15; i++) sketch.increment(hashString('old'));
    for (let round = 0; round < 4 * sketch.sampleSize; round++) {
      sketch.increment(hashString('new'));
      sketch.increment(hashInt(round));
    }
    assert.ok(sketch.frequency(hashString('new')) > sketch.frequency(hashString('old')));
  });
});

describe('key hashers', () => {
  it('hashString is 32-bit FNV-1a', () => {
    assert.equal(hashString(''), 0x811c9dc5);
    assert.equal(hashString('a'), 0xe40c292c);
    assert.equal(hashString('foobar'), 0xbf9cf968);
  });

  it('hashInt is collision-free on 32-bit integers and spreads consecutive ones over the low bits', () => {
    const seen = new Set<number>();
    const buckets = new Array<number>(16).fill(0);
    for (let n = 0; n < 100_000; n++) {
      const h = hashInt(n);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
      seen.add(h);
      buckets[h & 15]!++;
    }
    assert.equal(seen.size, 100_000);
    for (const count of buckets) assert.ok(Math.abs(count - 6250) < 400, `bucket count ${count}`);
  });

  it('hashInt folds in the high bits of large integers', () => {
    assert.notEqual(hashInt(5), hashInt(5 + 2 ** 32));
    assert.notEqual(hashInt(2 ** 40), hashInt(2 ** 41));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SlidingWindow } from '../../src/core/sliding-window.ts';

// A minute in one-second buckets, the shape every quota uses.
const T0 = Date.UTC(2026, 0, 15, 12); // a whole second, so bucket edges fall on whole seconds

describe('sliding window', () => {
  it('sums what was added within the window', () => {
    const w = new SlidingWindow(10);
    assert.equal(w.total(T0), 0);
    w.add(T0);
    w.add(T0, 4);
    w.add(T0 + 1_500, 2.5);
    w.add(T0 + 59_000, 3);
    assert.equal(w.total(T0 + 59_000), 10.5);
    assert.equal(w.limit, 10);
    assert.equal(w.windowMs, 60_000);
  });

  it('lets an amount expire a whole window after its bucket began, not before', () => {
    const w = new SlidingWindow(Infinity);
    w.add(T0 + 999, 5); // bucket [T0, T0 + 1000)
    w.add(T0 + 1_000, 7); // the next bucket
    assert.equal(w.total(T0 + 59_999), 12);
    assert.equal(w.total(T0 + 60_000), 7, 'the first bucket left at T0 + 60 s');
    assert.equal(w.total(T0 + 60_999), 7);
    assert.equal(w.total(T0 + 61_000), 0);
  });

  it('forgets a stale bucket when its slot is reused a window later', () => {
    const w = new SlidingWindow(Infinity);
    w.add(T0, 5);
    w.add(T0 + 60_000, 1); // the same slot, one window on
    assert.equal(w.total(T0 + 60_000), 1);
    w.add(T0 + 60_500, 1);
    assert.equal(w.total(T0 + 60_500), 2);
    // and after a long silence nothing old is left anywhere
    assert.equal(w.total(T0 + 10 * 60_000), 0);
  });

  it('is exhausted once the sum reaches the limit (reaching is enough)', () => {
    const w = new SlidingWindow(3);
    w.add(T0, 2);
    assert.equal(w.exhausted(T0), false);
    w.add(T0, 1);
    assert.equal(w.exhausted(T0), true, 'sum 3 of limit 3 is exhausted');
    assert.equal(w.exhausted(T0 + 60_000), false);
  });

  it('tryTake adds one while below the limit and nothing once exhausted', () => {
    const w = new SlidingWindow(2);
    assert.equal(w.tryTake(T0), true);
    assert.equal(w.tryTake(T0 + 10), true);
    assert.equal(w.tryTake(T0 + 20), false);
    assert.equal(w.tryTake(T0 + 30), false);
    assert.equal(w.total(T0 + 30), 2, 'refused takes add nothing');
    assert.equal(w.tryTake(T0 + 60_000), true);
    assert.equal(w.total(T0 + 60_000), 1);
  });

  it('takes the limit per call, so a changed limit applies to what was counted so far', () => {
    const w = new SlidingWindow(Infinity);
    assert.equal(w.tryTake(T0, 2), true);
    assert.equal(w.tryTake(T0, 2), true);
    assert.equal(w.tryTake(T0, 2), false);
    assert.equal(w.exhausted(T0, 2), true);
    assert.equal(w.exhausted(T0, 3), false, 'a raised limit admits at once');
    assert.equal(w.tryTake(T0, 3), true);
    assert.equal(w.exhausted(T0, 1), true, 'a lowered limit counts what is already in');
    assert.equal(w.exhausted(T0), false, 'the constructor limit (Infinity) is the default');
    assert.equal(w.waitMs(T0, 1), 60_000);
    assert.equal(w.waitMs(T0, 4), 0);
  });

  describe('waitMs', () => {
    it('is 0 while the sum is below the limit', () => {
      const w = new SlidingWindow(3);
      w.add(T0, 2);
      assert.equal(w.waitMs(T0), 0);
    });

    it('is exactly the time until the oldest bucket leaves, at and between bucket edges', () => {
      const w = new SlidingWindow(1);
      w.add(T0 + 250); // bucket [T0, T0 + 1000): leaves at T0 + 60 000
      assert.equal(w.waitMs(T0 + 250), 59_750);
      assert.equal(w.waitMs(T0 + 30_500), 29_500);
      assert.equal(w.waitMs(T0 + 59_999), 1);
      assert.equal(w.exhausted(T0 + 59_999), true);
      assert.equal(w.waitMs(T0 + 60_000), 0);
      assert.equal(w.exhausted(T0 + 60_000), false);
    });

    it('skips as many old buckets as it takes to fall below the limit', () => {
      const w = new SlidingWindow(4);
      w.add(T0, 1); // leaves at +60 s
      w.add(T0 + 5_000, 2); // leaves at +65 s
      w.add(T0 + 9_000, 3); // leaves at +69 s
      const now = T0 + 20_000;
      assert.equal(w.total(now), 6);
      // 6 - 1 = 5 is not below 4; 5 - 2 = 3 is: the second bucket must leave.
      assert.equal(w.waitMs(now), 45_000);
      assert.equal(w.exhausted(now + 45_000 - 1), true);
      assert.equal(w.exhausted(now + 45_000), false);
      assert.equal(w.waitMs(now, 6), 40_000, 'a sum equal to the limit waits for the oldest bucket');
      assert.equal(w.waitMs(now, 1), 49_000, 'every bucket must leave to fall below 1');
    });

    it('is a whole window when nothing could ever fall below the limit (limit 0)', () => {
      const w = new SlidingWindow(0);
      assert.equal(w.exhausted(T0), true);
      assert.equal(w.waitMs(T0), 60_000);
    });
  });

  describe('with a clock starting at 0', () => {
    it('counts, expires and waits like anywhere else (bucket numbers before 0 are never live)', () => {
      const w = new SlidingWindow(2);
      assert.equal(w.total(0), 0);
      assert.equal(w.tryTake(0), true);
      assert.equal(w.tryTake(500), true);
      assert.equal(w.tryTake(999), false);
      assert.equal(w.waitMs(999), 59_001);
      assert.equal(w.total(59_999), 2);
      assert.equal(w.total(60_000), 0);
      assert.equal(w.tryTake(60_000), true);
    });
  });

  it('works with other window sizes and bucket counts', () => {
    const w = new SlidingWindow(3, 10_000, 10); // ten one-second buckets
    w.add(0, 3);
    assert.equal(w.waitMs(4_200), 5_800);
    assert.equal(w.total(9_999), 3);
    assert.equal(w.total(10_000), 0);
  });

  it('agrees with a plain list of timestamped amounts, and waitMs is the least wait that frees it (property)', () => {
    const step = fc.record({
      gap: fc.oneof(fc.integer({ min: 0, max: 3_000 }), fc.integer({ min: 0, max: 90_000 })),
      amount: fc.integer({ min: 1, max: 5 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }).map((k) => k * 1_000_000 + 7),
        fc.array(step, { maxLength: 60 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 120_000 }),
        (start, steps, limit, probeGap) => {
          const w = new SlidingWindow(limit);
          const log: { at: number; amount: number }[] = [];
          let now = start;
          for (const s of steps) {
            now += s.gap;
            w.add(now, s.amount);
            log.push({ at: now, amount: s.amount });
          }
          const probe = now + probeGap;
          // The model: an amount counts while its one-second bucket is one of the last sixty.
          const model = (t: number) =>
            log
              .filter((e) => Math.floor(e.at / 1000) > Math.floor(t / 1000) - 60)
              .reduce((sum, e) => sum + e.amount, 0);
          assert.equal(w.total(probe), model(probe));
          assert.equal(w.exhausted(probe), model(probe) >= limit);
          const wait = w.waitMs(probe);
          if (model(probe) < limit) {
            assert.equal(wait, 0);
          } else {
            assert.ok(wait > 0 && wait <= 60_000, `wait ${wait}`);
            assert.ok(model(probe + wait) < limit, 'free after waiting');
            assert.ok(model(probe + wait - 1) >= limit, 'not free a millisecond earlier');
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

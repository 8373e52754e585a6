import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../../src/core/errors.ts';
import { hashInt, hashString } from '../../../src/pool/policies/count-min-sketch.ts';
import { LruPolicy } from '../../../src/pool/policies/lru.ts';
import type { EvictionPolicy } from '../../../src/pool/policies/policy.ts';
import { TinyLfuPolicy } from '../../../src/pool/policies/tinylfu.ts';
import { mulberry32 } from '../../support/seeded-random.ts';

const always = () => true;
/** Keeps the hill climber out of tests about admission and segments. */
const NO_CLIMBING = 1_000_000_000;

function tinylfu(capacity: number, climbPeriod = NO_CLIMBING): TinyLfuPolicy<number> {
  return new TinyLfuPolicy<number>({ capacity, hash: hashInt, climbPeriod });
}

/** Replays requests the way the activation cache does; returns the hit ratio. */
function replay(policy: EvictionPolicy<number>, keys: Iterable<number>): number {
  let hits = 0;
  let requests = 0;
  for (const key of keys) {
    requests++;
    if (policy.has(key)) {
      policy.hit(key);
      hits++;
    } else {
      policy.add(key, always);
    }
  }
  return hits / requests;
}

function* range(from: number, to: number): Generator<number> {
  for (let i = from; i < to; i++) yield i;
}

/** Recency-biased traffic: a fifth of requests are new keys, the rest revisit a recent key (mean distance `distance`). */
function* recencyTrace(requests: number, distance: number, seed: number): Generator<number> {
  const next = mulberry32(seed);
  let newest = 0;
  for (let i = 0; i < requests; i++) {
    if (newest === 0 || next() < 0.2) yield ++newest;
    else yield Math.max(1, newest - Math.floor(-Math.log(1 - next()) * distance));
  }
}

describe('tinylfu policy', () => {
  describe('admission', () => {
    it('never lets a one-hit wonder displace a frequently used key', () => {
      const policy = tinylfu(10);
      const frequent = [...range(0, 9)];
      replay(policy, frequent);
      for (let round = 0; round < 14; round++) replay(policy, frequent); // saturates their counters
      replay(policy, [100]);
      assert.equal(policy.size, 10);
      assert.ok(
        policy.segments().probation.some((k) => frequent.includes(k)),
        'frequent keys are the victims',
      );

      for (let wonder = 101; wonder < 111; wonder++) {
        assert.deepEqual(policy.add(wonder, always), [wonder - 1]);
      }
      for (const key of frequent) assert.ok(policy.has(key), `frequent key ${key} was displaced`);
    });

    it('admits a newcomer that has become more frequent than the victim', () => {
      const policy = tinylfu(100);
      replay(policy, range(0, 100));
      replay(policy, [1000]);
      const victim = policy.segments().probation[0]!;
      policy.add(500, always);
      for (let i = 0; i < 6; i++) policy.hit(500); // popular while still in the window
      assert.ok(policy.frequency(500) > policy.frequency(victim));

      assert.deepEqual(policy.add(501, always), [victim]);
      assert.ok(policy.has(500));
      assert.deepEqual(policy.segments().window, [501]);
    });

    it('lets the candidate stay only when strictly more frequent than the victim, and keeps a busy candidate', () => {
      const policy = tinylfu(20);
      const next = mulberry32(42);
      const outcomes = { candidateWon: 0, tieOrLoss: 0, busyCandidateKept: 0 };
      for (let step = 0; step < 3000; step++) {
        const key = Math.floor(next() * 60);
        if (policy.has(key)) {
          policy.hit(key);
          continue;
        }
        const full = policy.size === policy.capacity;
        const before = policy.segments();
        const candidate = before.window[0];
        const victim = before.probation[0];
        const busy = next() < 0.2 ? candidate : undefined;
        const evicted = policy.add(key, (k) => k !== busy);
        if (!full || candidate === undefined || victim === undefined) continue;
        const wins = policy.frequency(candidate) > policy.frequency(victim);
        if (busy !== undefined) {
          assert.deepEqual(evicted, [victim]);
          outcomes.busyCandidateKept++;
        } else if (wins) {
          assert.deepEqual(evicted, [victim]);
          outcomes.candidateWon++;
        } else {
          assert.deepEqual(evicted, [candidate]);
          outcomes.tieOrLoss++;
        }
      }
      for (const [outcome, count] of Object.entries(outcomes)) assert.ok(count > 20, `${outcome}: ${count}`);
    });

    it('resists a scan: a one-time pass over many keys does not flush the frequently used set', () => {
      const hot = [...range(0, 50)];
      const warm = (policy: EvictionPolicy<number>) => {
        for (let round = 0; round < 20; round++) replay(policy, hot);
      };
      const policy = tinylfu(100);
      const lru = new LruPolicy<number>({ capacity: 100, hash: hashInt });
      warm(policy);
      warm(lru);
      const protectedHot = policy.segments().protected;
      assert.ok(protectedHot.length >= 49, 'all but the hot key sitting in the window were promoted');

      // A hundred times the capacity in keys never seen before, each requested once.
      replay(policy, range(10_000, 20_000));
      replay(lru, range(10_000, 20_000));

      assert.deepEqual(
        protectedHot.filter((k) => !policy.has(k)),
        [],
      );
      assert.ok(replay(policy, hot) >= 0.98);
      assert.equal(
        hot.filter((k) => lru.has(k)).length,
        0,
        'the same scan flushes lru, so this trace does test scan resistance',
      );
    });
  });

  describe('segments', () => {
    it('starts with a window of 1% of capacity and a protected segment of at most 80% of main', () => {
      for (const [capacity, window, maxProtected] of [
        [1, 1, 0],
        [2, 1, 0],
        [10, 1, 7],
        [100, 1, 79],
        [1000, 10, 792],
        [10_000, 100, 7920],
      ] as const) {
        const d = tinylfu(capacity).describe();
        assert.equal(d.maxWindow, window, `capacity ${capacity}`);
        assert.equal(d.maxProtected, maxProtected, `capacity ${capacity}`);
      }
    });

    it('promotes a probation key on its second access and demotes the protected LRU when protected overflows', () => {
      const policy = tinylfu(10);
      replay(policy, range(0, 10));
      assert.deepEqual(policy.segments(), {
        window: [9],
        probation: [0, 1, 2, 3, 4, 5, 6, 7, 8],
        protected: [],
      });
      replay(policy, range(0, 7));
      assert.deepEqual(policy.segments().protected, [0, 1, 2, 3, 4, 5, 6]);
      policy.hit(7); // the eighth protected key overflows maxProtected = 7
      assert.deepEqual(policy.segments(), {
        window: [9],
        probation: [8, 0],
        protected: [1, 2, 3, 4, 5, 6, 7],
      });
      policy.hit(9);
      policy.hit(3);
      assert.deepEqual(policy.segments(), {
        window: [9],
        probation: [8, 0],
        protected: [1, 2, 4, 5, 6, 7, 3],
      });
    });

    it('describes window, probation and protected sizes, their bounds and the sketch width', () => {
      const policy = tinylfu(1000);
      replay(policy, range(0, 1000));
      replay(policy, range(0, 5));
      assert.deepEqual(policy.describe(), {
        policy: 'tinylfu',
        size: 1000,
        capacity: 1000,
        window: 10,
        probation: 985,
        protected: 5,
        maxWindow: 10,
        maxProtected: 792,
        sketchWidth: 1024,
      });
    });
  });

  describe('tiny capacities', () => {
    it('works with a capacity of 1: the newcomer replaces the resident key unless it is busy', () => {
      const policy = tinylfu(1);
      assert.deepEqual(policy.add(1, always), []);
      assert.deepEqual(policy.add(2, always), [1]);
      assert.deepEqual(
        policy.add(3, (k) => k !== 2),
        [3],
      );
      assert.ok(policy.has(2));
      assert.deepEqual(
        policy.add(4, () => false),
        [],
      );
      assert.equal(policy.size, 2);
      assert.equal(
        policy.evict(always),
        4,
        'window key 4 ties probation key 2 on frequency, and ties evict the candidate',
      );
      assert.equal(policy.size, 1);
    });

    it('works with a capacity of 2', () => {
      const policy = tinylfu(2);
      replay(policy, [1, 2, 1, 1, 3, 1, 4, 1]);
      assert.ok(policy.has(1), 'the frequent key stays');
      assert.equal(policy.size, 2);
    });
  });

  describe('evict, delete and resize', () => {
    it('evict() returns the loser of the window-vs-probation duel, skipping busy keys', () => {
      const policy = tinylfu(10);
      replay(policy, range(0, 10));
      replay(policy, [9, 9, 9]);
      assert.equal(policy.evict(always), 0, 'window key 9 is more frequent than probation LRU 0');
      assert.equal(
        policy.evict((k) => k !== 1),
        2,
      );
      assert.equal(
        policy.evict(() => false),
        undefined,
      );
    });

    it('delete() forgets a key in any segment; absent keys are ignored', () => {
      const policy = tinylfu(10);
      replay(policy, [...range(0, 10), 0]);
      policy.delete(0); // protected
      policy.delete(1); // probation
      policy.delete(9); // window
      policy.delete(99);
      assert.equal(policy.size, 7);
      assert.deepEqual(policy.segments(), { window: [], probation: [2, 3, 4, 5, 6, 7, 8], protected: [] });
    });

    it('resize() shrinks to the new capacity without touching busy keys, keeping the learned window share', () => {
      const policy = tinylfu(200);
      replay(policy, range(0, 200));
      const evicted = policy.resize(50, (k) => k % 10 !== 0);
      assert.equal(evicted.length, 150);
      assert.equal(policy.size, 50);
      assert.ok(evicted.every((k) => k % 10 !== 0));
      for (let k = 0; k < 200; k += 10) assert.ok(policy.has(k));
      const d = policy.describe();
      assert.equal(d.maxWindow, 1);
      assert.ok(Number(d.window) <= 1);
      assert.deepEqual(policy.resize(400, always), []);
      assert.equal(policy.describe().maxWindow, 4);
    });

    it('rejects a capacity or climb period that is not a positive integer', () => {
      assert.throws(
        () => new TinyLfuPolicy({ capacity: 0, hash: hashString }),
        (err) => isAgentPoolError(err, 'VALIDATION_FAILED') && /policy\.capacity/.test(err.message),
      );
      assert.throws(
        () => new TinyLfuPolicy({ capacity: 5, hash: hashString, climbPeriod: 0 }),
        /policy\.climbPeriod/,
      );
      assert.throws(() => tinylfu(5).resize(-2, always), /policy\.capacity/);
    });
  });

  describe('hill climbing', () => {
    it('grows the window on recency-biased traffic, approaching lru, and shrinks it again when frequency wins', () => {
      const policy = new TinyLfuPolicy<number>({ capacity: 100, hash: hashInt });
      const fixed = tinylfu(100);
      const lru = new LruPolicy<number>({ capacity: 100, hash: hashInt });
      const initial = Number(policy.describe().maxWindow);
      assert.equal(initial, 1);

      replay(policy, recencyTrace(100_000, 50, 1));
      replay(fixed, recencyTrace(100_000, 50, 1));
      const grown = Number(policy.describe().maxWindow);
      assert.ok(grown >= 50, `window after recency-biased traffic: ${grown}`);
      const tail = [...recencyTrace(10_000, 50, 2)].map((k) => k + 1_000_000);
      const tinylfuRatio = replay(policy, tail);
      const fixedRatio = replay(fixed, tail);
      const lruRatio = replay(lru, tail);
      assert.ok(tinylfuRatio >= lruRatio - 0.1, `tinylfu ${tinylfuRatio} vs lru ${lruRatio}`);
      assert.ok(
        fixedRatio < lruRatio / 2,
        `a 1% window alone gets ${fixedRatio}: climbing is what closes the gap`,
      );

      // A loop slightly larger than the cache: recency is worthless, frequency-gated admission wins.
      const loop = [...range(0, 110_000)].map((i) => 2_000_000 + (i % 110));
      replay(policy, loop);
      const shrunk = Number(policy.describe().maxWindow);
      assert.ok(shrunk <= 5, `window after the loop: ${shrunk}`);
    });

    it('does not climb before the cache is full, when the window size cannot matter', () => {
      const policy = tinylfu(1000, 100);
      for (let round = 0; round < 50; round++) replay(policy, range(0, 500));
      assert.equal(policy.describe().maxWindow, 10);
    });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAgentPoolError } from '../../../src/core/errors.ts';
import { hashInt } from '../../../src/pool/policies/count-min-sketch.ts';
import { createPolicy, POLICY_NAMES } from '../../../src/pool/policies/create-policy.ts';
import type { EvictionPolicy, PolicyName } from '../../../src/pool/policies/policy.ts';
import { TinyLfuPolicy } from '../../../src/pool/policies/tinylfu.ts';

const KEYS = 60;
const MAX_CAPACITY = 40;

type Op =
  | { type: 'add'; key: number }
  | { type: 'hit'; key: number }
  | { type: 'delete'; key: number }
  | { type: 'evict' }
  | { type: 'resize'; capacity: number }
  | { type: 'pin'; key: number }
  | { type: 'unpin'; key: number };

const key = fc.nat(KEYS - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ type: fc.constant('add' as const), key }) },
  { weight: 8, arbitrary: fc.record({ type: fc.constant('hit' as const), key }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('delete' as const), key }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('evict' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('resize' as const),
      capacity: fc.integer({ min: 1, max: MAX_CAPACITY }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('pin' as const), key }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('unpin' as const), key }) },
);

interface Subject {
  label: string;
  name: PolicyName;
  create: (capacity: number) => EvictionPolicy<number>;
}

const subjects: Subject[] = [
  ...POLICY_NAMES.map((name) => ({
    label: name,
    name,
    create: (capacity: number) => createPolicy<number>(name, { capacity, hash: hashInt }),
  })),
  {
    // The default climbing sample is thousands of accesses; this one makes the window move
    // within a short random run.
    label: 'tinylfu, climbing every 7 accesses',
    name: 'tinylfu',
    create: (capacity: number) => new TinyLfuPolicy<number>({ capacity, hash: hashInt, climbPeriod: 7 }),
  },
];

/** The structural invariants of tinylfu's segments, read through describe(). */
function checkTinyLfuShape(policy: EvictionPolicy<number>): void {
  const d = policy.describe();
  const [window, probation, prot, maxWindow, maxProtected] = [
    d.window,
    d.probation,
    d.protected,
    d.maxWindow,
    d.maxProtected,
  ].map(Number) as [number, number, number, number, number];
  assert.equal(window + probation + prot, policy.size, 'segments partition the resident keys');
  assert.ok(window <= maxWindow, `window ${window} ≤ maxWindow ${maxWindow}`);
  assert.ok(prot <= maxProtected, `protected ${prot} ≤ maxProtected ${maxProtected}`);
  assert.ok(maxWindow >= 1 && maxWindow <= Math.max(1, policy.capacity - 1), `maxWindow ${maxWindow}`);
  assert.ok(maxProtected <= 0.8 * (policy.capacity - maxWindow), `maxProtected ${maxProtected}`);
}

/**
 * Runs the operations against the policy and a model (a set of resident keys), checking after
 * every step what the interface promises.
 */
function run(subject: Subject, initialCapacity: number, ops: Op[]): void {
  const policy = subject.create(initialCapacity);
  const resident = new Set<number>();
  const pinned = new Set<number>();
  const canEvict = (k: number) => !pinned.has(k);
  const evictableResidents = () => [...resident].filter(canEvict).length;

  /** Evictions must be of distinct, previously resident, evictable keys that are now gone. */
  const checkEvicted = (evicted: readonly number[]) => {
    assert.equal(new Set(evicted).size, evicted.length, `duplicates in ${evicted}`);
    for (const k of evicted) {
      assert.ok(resident.has(k), `evicted ${k}, which was not resident`);
      assert.ok(!pinned.has(k), `evicted ${k}, which canEvict refused`);
      assert.ok(!policy.has(k), `evicted ${k} is still resident`);
      resident.delete(k);
    }
  };

  /**
   * The size after making room: unchanged when within capacity; otherwise down to the capacity
   * exactly (never below: a policy evicts only as needed) unless too few keys may leave, in
   * which case every evictable key is gone.
   */
  const expectedSizeAfterMakingRoom = (sizeBefore: number, capacity: number, evictable: number) =>
    sizeBefore <= capacity ? sizeBefore : Math.max(capacity, sizeBefore - evictable);

  for (const o of ops) {
    switch (o.type) {
      case 'add': {
        if (resident.has(o.key)) break; // add() is for keys that are not resident
        resident.add(o.key);
        const evictable = evictableResidents();
        const evicted = policy.add(o.key, canEvict);
        const sizeBefore = resident.size;
        checkEvicted(evicted);
        assert.equal(policy.size, expectedSizeAfterMakingRoom(sizeBefore, policy.capacity, evictable));
        break;
      }
      case 'hit':
        policy.hit(o.key); // on an absent key, a no-op
        break;
      case 'delete':
        policy.delete(o.key);
        resident.delete(o.key);
        break;
      case 'evict': {
        const evictable = evictableResidents();
        const victim = policy.evict(canEvict);
        if (victim === undefined) assert.equal(evictable, 0, 'evict() gave up while a key could leave');
        else checkEvicted([victim]);
        break;
      }
      case 'resize': {
        const evictable = evictableResidents();
        const sizeBefore = resident.size;
        const evicted = policy.resize(o.capacity, canEvict);
        assert.equal(policy.capacity, o.capacity);
        checkEvicted(evicted);
        assert.equal(policy.size, expectedSizeAfterMakingRoom(sizeBefore, o.capacity, evictable));
        break;
      }
      case 'pin':
        pinned.add(o.key);
        break;
      case 'unpin':
        pinned.delete(o.key);
        break;
    }
    assert.equal(policy.size, resident.size);
    for (let k = 0; k < KEYS; k++) assert.equal(policy.has(k), resident.has(k), `has(${k})`);
    if (subject.name === 'tinylfu') checkTinyLfuShape(policy);
  }
}

for (const subject of subjects) {
  describe(`eviction policy properties: ${subject.label}`, () => {
    it('keeps size within capacity whenever enough keys may leave, never evicts a refused key, and agrees with a model of resident keys', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: MAX_CAPACITY }),
          fc.array(op, { maxLength: 300, size: 'max' }),
          (capacity, ops) => run(subject, capacity, ops),
        ),
        { numRuns: 300 },
      );
    });

    it('holds the same properties when most keys are busy', () => {
      const pinHeavy = fc.array(
        fc.oneof(
          { weight: 3, arbitrary: op },
          { weight: 2, arbitrary: fc.record({ type: fc.constant('pin' as const), key }) },
        ),
        { maxLength: 300, size: 'max' },
      );
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 8 }), pinHeavy, (capacity, ops) => run(subject, capacity, ops)),
        { numRuns: 200 },
      );
    });
  });
}

describe('createPolicy', () => {
  it('creates every named policy with the given capacity', () => {
    assert.deepEqual([...POLICY_NAMES], ['lru', 'tinylfu']);
    for (const name of POLICY_NAMES) {
      const policy = createPolicy<number>(name, { capacity: 7, hash: hashInt });
      assert.equal(policy.name, name);
      assert.equal(policy.capacity, 7);
      assert.equal(policy.size, 0);
    }
  });

  it('rejects an unknown policy name and a bad capacity with validation errors naming the field', () => {
    assert.throws(
      () => createPolicy<number>('arc' as PolicyName, { capacity: 7, hash: hashInt }),
      (err) =>
        isAgentPoolError(err, 'VALIDATION_FAILED') &&
        /^policy must be one of "lru", "tinylfu"/.test(err.message),
    );
    for (const name of POLICY_NAMES) {
      assert.throws(() => createPolicy<number>(name, { capacity: 0, hash: hashInt }), /policy\.capacity/);
    }
  });
});

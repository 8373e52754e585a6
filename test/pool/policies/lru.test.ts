import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAgentPoolError } from '../../../src/core/errors.ts';
import { hashString } from '../../../src/pool/policies/count-min-sketch.ts';
import { LruPolicy } from '../../../src/pool/policies/lru.ts';

const always = () => true;
const except =
  (...busy: string[]) =>
  (key: string) =>
    !busy.includes(key);

function lru(capacity: number, ...keys: string[]): LruPolicy<string> {
  const policy = new LruPolicy<string>({ capacity, hash: hashString });
  for (const key of keys) assert.deepEqual(policy.add(key, always), []);
  return policy;
}

describe('lru policy', () => {
  it('evicts the least recently added key when a new key overflows the capacity', () => {
    const policy = lru(3, 'a', 'b', 'c');
    assert.deepEqual(policy.add('d', always), ['a']);
    assert.deepEqual(policy.keys(), ['b', 'c', 'd']);
    assert.equal(policy.has('a'), false);
    assert.equal(policy.size, 3);
  });

  it('evicts the least recently used key: a hit makes a key the most recent', () => {
    const policy = lru(3, 'a', 'b', 'c');
    policy.hit('a');
    assert.deepEqual(policy.add('d', always), ['b']);
    policy.hit('c');
    assert.deepEqual(policy.add('e', always), ['a']);
    assert.deepEqual(policy.keys(), ['d', 'c', 'e']);
  });

  it('skips keys that may not be evicted and leaves them where they were', () => {
    const policy = lru(3, 'a', 'b', 'c');
    assert.deepEqual(policy.add('d', except('a', 'b')), ['c']);
    assert.deepEqual(policy.keys(), ['a', 'b', 'd']);
  });

  it('stays over capacity while nothing may leave, and catches up on a later call', () => {
    const policy = lru(2, 'a', 'b');
    assert.deepEqual(policy.add('c', except('a', 'b', 'c')), []);
    assert.equal(policy.size, 3);
    assert.deepEqual(policy.add('d', except('b')), ['a', 'c']);
    assert.deepEqual(policy.keys(), ['b', 'd']);
  });

  it('may evict the key it was adding when every older key is busy', () => {
    const policy = lru(1, 'a');
    assert.deepEqual(policy.add('b', except('a')), ['b']);
    assert.deepEqual(policy.keys(), ['a']);
  });

  it('evict() removes the least recently used evictable key, or returns undefined when none may leave', () => {
    const policy = lru(3, 'a', 'b', 'c');
    assert.equal(policy.evict(except('a')), 'b');
    assert.equal(policy.evict(except('a', 'c')), undefined);
    assert.deepEqual(policy.keys(), ['a', 'c']);
    assert.equal(new LruPolicy<string>({ capacity: 1, hash: hashString }).evict(always), undefined);
  });

  it('resize() shrinks by evicting least recently used keys first, and growing evicts nothing', () => {
    const policy = lru(4, 'a', 'b', 'c', 'd');
    policy.hit('a');
    assert.deepEqual(policy.resize(2, except('b')), ['c', 'd']);
    assert.deepEqual(policy.keys(), ['b', 'a']);
    assert.equal(policy.capacity, 2);
    assert.deepEqual(policy.resize(10, always), []);
    assert.deepEqual(policy.add('e', always), []);
  });

  it('delete() forgets a key and ignores absent ones; hit() ignores absent keys', () => {
    const policy = lru(3, 'a', 'b');
    policy.delete('a');
    policy.delete('zzz');
    policy.hit('zzz');
    assert.deepEqual(policy.keys(), ['b']);
    assert.equal(policy.has('zzz'), false);
  });

  it('treats adding a resident key as an access instead of duplicating it', () => {
    const policy = lru(3, 'a', 'b');
    assert.deepEqual(policy.add('a', always), []);
    assert.deepEqual(policy.keys(), ['b', 'a']);
    assert.equal(policy.size, 2);
  });

  it('rejects a capacity that is not a positive integer', () => {
    for (const capacity of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => new LruPolicy({ capacity, hash: hashString }),
        (err) => isAgentPoolError(err, 'VALIDATION_FAILED') && /policy\.capacity/.test(err.message),
      );
    }
    assert.throws(() => lru(2).resize(0, always), /policy\.capacity/);
  });

  it('describes its size and capacity', () => {
    assert.deepEqual(lru(5, 'a').describe(), { policy: 'lru', size: 1, capacity: 5 });
  });

  it('orders keys exactly like a model list under random accesses, adds and evictions', () => {
    const op = fc.oneof(
      fc.record({ type: fc.constant('touch' as const), key: fc.nat(12) }),
      fc.record({ type: fc.constant('evict' as const), busy: fc.uniqueArray(fc.nat(12), { maxLength: 4 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(op, { maxLength: 150, size: 'max' }),
        (capacity, ops) => {
          const policy = new LruPolicy<number>({ capacity, hash: (k) => k });
          let model: number[] = []; // least recently used first
          for (const o of ops) {
            if (o.type === 'touch') {
              if (model.includes(o.key)) {
                policy.hit(o.key);
                model = [...model.filter((k) => k !== o.key), o.key];
              } else {
                const evicted = policy.add(o.key, always);
                model.push(o.key);
                const expected = model.slice(0, Math.max(0, model.length - capacity));
                model = model.slice(expected.length);
                assert.deepEqual(evicted, expected);
              }
            } else {
              const expected = model.find((k) => !o.busy.includes(k));
              assert.equal(
                policy.evict((k) => !o.busy.includes(k)),
                expected,
              );
              model = model.filter((k) => k !== expected);
            }
            assert.deepEqual(policy.keys(), model);
          }
        },
      ),
    );
  });
});

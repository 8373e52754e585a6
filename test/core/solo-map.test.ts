import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SoloMap } from '../../src/core/solo-map.ts';

describe('SoloMap', () => {
  it('answers as a Map would for any sequence of sets and deletes', () => {
    const op = fc.record({ set: fc.boolean(), key: fc.integer({ min: 0, max: 5 }), value: fc.integer() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const map = new Map<number, number>();
        const solo = new SoloMap<number, number>();
        for (const { set, key, value } of ops) {
          if (set) {
            map.set(key, value);
            assert.equal(solo.set(key, value), solo);
          } else assert.equal(solo.delete(key), map.delete(key));
          assert.equal(solo.size, map.size);
          for (let k = 0; k <= 5; k++) {
            assert.equal(solo.get(k), map.get(k));
            assert.equal(solo.has(k), map.has(k));
          }
          assert.deepEqual([...solo.values()].sort(), [...map.values()].sort());
        }
      }),
    );
  });

  it('gives its slot to the next entry once the slot entry is deleted, the others staying found', () => {
    const solo = new SoloMap<string, number>();
    solo.set('a', 1);
    solo.set('b', 2); // a second entry goes to the Map
    solo.delete('a'); // the slot empties; 'b' stays where it is
    solo.set('c', 3); // the slot takes the next one
    assert.deepEqual([...solo.values()], [3, 2]);
    assert.equal(solo.get('b'), 2);
    assert.equal(solo.delete('a'), false);
    solo.delete('b');
    solo.delete('c');
    assert.equal(solo.size, 0);
    assert.deepEqual([...solo.values()], []);
  });
});

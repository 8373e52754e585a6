import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OldestKey } from '../../src/core/oldest-key.ts';

describe('OldestKey', () => {
  it('takes keys least recently set first, across re-insertions, deletions and an emptied map', () => {
    const map = new Map<string, number>();
    const oldest = new OldestKey(map);
    assert.equal(oldest.take(), undefined);
    for (const k of ['a', 'b', 'c', 'd']) map.set(k, 0);
    map.delete('b'); // deleted elsewhere
    map.delete('a');
    map.set('a', 1); // used again: now the newest
    const taken: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const k = oldest.take();
      taken.push(k);
      if (k !== undefined) map.delete(k);
    }
    assert.deepEqual(taken, ['c', 'd', 'a']);
    assert.equal(oldest.take(), undefined);
    map.set('e', 0); // the map fills again after the iterator ran out
    assert.equal(oldest.take(), 'e');
  });

  it('keeps LRU order over many evictions (the map is rehashed under it)', () => {
    const map = new Map<number, number>();
    const oldest = new OldestKey(map);
    for (let i = 0; i < 10_000; i++) {
      map.set(i, i);
      if (i % 3 === 0 && map.has(i - 1)) {
        map.delete(i - 1); // touch the previous key
        map.set(i - 1, i - 1);
      }
      if (map.size > 100) {
        const reference = map.keys().next().value;
        const k = oldest.take();
        assert.equal(k, reference);
        map.delete(k as number);
      }
    }
  });

  it('takes the oldest member of a Set (a clock hand moving members to the back)', () => {
    const set = new Set<number>();
    const hand = new OldestKey(set);
    const referenced = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      set.add(i);
      if (i % 2 === 0) referenced.add(i);
      while (set.size > 50) {
        const reference = set.values().next().value;
        const k = hand.take() as number;
        assert.equal(k, reference);
        set.delete(k);
        if (referenced.delete(k)) set.add(k); // a second chance at the back
      }
    }
    assert.equal(set.size, 50);
  });
});

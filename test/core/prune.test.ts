import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pruneIdle } from '../../src/core/prune.ts';

describe('pruneIdle', () => {
  it('leaves a map below its bound alone', () => {
    const map = new Map([...Array(9).keys()].map((i) => [i, { busy: false }]));
    pruneIdle(map, 10, (v) => !v.busy);
    assert.equal(map.size, 9);
  });

  it('at the bound drops the oldest idle entries until a tenth is free, keeping busy ones', () => {
    const map = new Map([...Array(100).keys()].map((i) => [i, { busy: i % 3 === 0 }]));
    pruneIdle(map, 100, (v) => !v.busy);
    assert.equal(map.size, 90);
    for (let i = 0; i < 100; i += 3) assert.ok(map.has(i), `busy ${i} kept`);
    assert.ok(!map.has(1) && map.has(99), 'the oldest idle ones went first');
  });

  it('keeps everything when nothing is idle', () => {
    const map = new Map([...Array(10).keys()].map((i) => [i, { busy: true }]));
    pruneIdle(map, 10, (v) => !v.busy);
    assert.equal(map.size, 10);
  });
});

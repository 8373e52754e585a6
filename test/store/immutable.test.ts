import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { handOut, immutableCopy, isImmutable } from '../../src/store/immutable.ts';

/** Every object in a tree, depth first. */
function objectsOf(value: unknown, out: object[] = []): object[] {
  if (typeof value === 'object' && value !== null) {
    out.push(value);
    for (const v of Object.values(value)) objectsOf(v, out);
  }
  return out;
}

describe('immutable copies', () => {
  it('copies plain data into a deep-frozen tree that is handed out as it is', () => {
    const value = {
      text: 'é 𝄞',
      n: -0,
      nan: Number.NaN,
      big: 10n,
      none: null,
      gone: undefined,
      list: [1, 'two', [true, { deep: { er: [] } }]],
    };
    const copy = immutableCopy(value);
    assert.deepEqual(copy, structuredClone(value));
    assert.ok(Object.is(copy.n, -0));
    const copied = objectsOf(copy);
    assert.equal(copied.length, 6);
    for (const o of copied) {
      assert.ok(Object.isFrozen(o));
      assert.ok(!objectsOf(value).includes(o), 'no object of the caller is kept');
    }
    assert.ok(isImmutable(copy));
    assert.equal(handOut(copy), copy);
    value.list.push('later');
    assert.equal(copy.list.length, 3);
  });

  it('keeps what structuredClone keeps beyond plain data, and clones it on every hand-out', () => {
    const when = new Date(5);
    const cyclic: { self?: unknown; at: Date } = { at: when };
    cyclic.self = cyclic;
    const holes = [1, , 3]; // eslint-disable-line no-sparse-arrays
    class Point {
      readonly x = 1;
    }
    const nullProto = Object.assign(Object.create(null) as object, { a: 1 });
    const owned = JSON.parse('{"__proto__": {"polluted": true}}') as object;
    for (const value of [when, cyclic, holes, new Map([[1, 2]]), new Point(), nullProto, owned, { when }]) {
      const copy = immutableCopy(value);
      assert.deepEqual(copy, structuredClone(value));
      assert.notEqual(copy, value);
      assert.ok(!isImmutable(copy));
      const out = handOut(copy);
      assert.notEqual(out, copy);
      assert.deepEqual(out, copy);
    }
    assert.ok(Object.hasOwn(immutableCopy(owned), '__proto__'));
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  });

  it('refuses what structuredClone refuses, with its error', () => {
    for (const value of [() => 1, { f: () => 1 }, [Symbol('s')]]) {
      assert.throws(() => immutableCopy(value), { name: 'DataCloneError' });
    }
  });

  it('shares primitives as they are', () => {
    for (const value of ['s', 1, null, undefined, true, 1n]) {
      assert.equal(immutableCopy(value), value);
      assert.equal(handOut(value), value);
    }
  });
});

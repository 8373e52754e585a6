import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BusEvent, LocalEventBus } from '../../src/events/bus.ts';

type E = (BusEvent & { type: 'a.one'; n: number }) | (BusEvent & { type: 'a.two' });

describe('local event bus', () => {
  it('delivers to typed and wildcard listeners, and stops after unsubscribe', () => {
    const bus = new LocalEventBus<E>();
    const got: string[] = [];
    const off = bus.on('a.one', (e) => got.push(`one:${e.n}`));
    bus.on('*', (e) => got.push(`all:${e.type}`));
    bus.emit({ type: 'a.one', at: 0, n: 1 });
    bus.emit({ type: 'a.two', at: 0 });
    off();
    bus.emit({ type: 'a.one', at: 0, n: 2 });
    assert.deepEqual(got, ['one:1', 'all:a.one', 'all:a.two', 'all:a.one']);
  });

  it('says whether anyone listens', () => {
    const bus = new LocalEventBus<E>();
    assert.equal(bus.hasListeners('a.one'), false);
    const off = bus.on('a.one', () => undefined);
    assert.equal(bus.hasListeners('a.one'), true);
    assert.equal(bus.hasListeners('a.two'), false);
    off();
    assert.equal(bus.hasListeners('a.one'), false);
  });

  it('reports a throwing listener without disturbing the emitter or other listeners', () => {
    const errors: unknown[] = [];
    const bus = new LocalEventBus<E>({ onListenerError: (err) => errors.push(err) });
    let reached = false;
    bus.on('a.two', () => {
      throw new Error('bad listener');
    });
    bus.on('a.two', () => {
      reached = true;
    });
    bus.emit({ type: 'a.two', at: 0 });
    assert.equal(reached, true);
    assert.equal((errors[0] as Error).message, 'bad listener');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unwatchAbort, WatchedAbortController, watchAbort } from '../../src/core/abort-watch.ts';

describe('abort watch', () => {
  it('tells the watcher of a watched controller once, after the listeners, with the reason set', () => {
    const controller = new WatchedAbortController();
    const heard: string[] = [];
    controller.signal.addEventListener('abort', () => heard.push('listener'));
    watchAbort(controller.signal, () => heard.push(`watcher ${String(controller.signal.reason)}`));
    controller.abort('stop');
    controller.abort('again');
    assert.deepEqual(heard, ['listener', 'watcher stop']);
  });

  it('falls back to a listener when the slot is taken, and on a plain signal', () => {
    const controller = new WatchedAbortController();
    const plain = new AbortController();
    const heard: string[] = [];
    watchAbort(controller.signal, () => heard.push('first'));
    watchAbort(controller.signal, () => heard.push('second'));
    watchAbort(plain.signal, () => heard.push('plain'));
    controller.abort();
    plain.abort();
    assert.deepEqual(heard.sort(), ['first', 'plain', 'second']);
  });

  it('tells nothing to a watcher that stopped watching, and frees the slot for the next', () => {
    const controller = new WatchedAbortController();
    const plain = new AbortController();
    const heard: string[] = [];
    const first = (): number => heard.push('first');
    const onPlain = (): number => heard.push('plain');
    watchAbort(controller.signal, first);
    unwatchAbort(controller.signal, first);
    watchAbort(plain.signal, onPlain);
    unwatchAbort(plain.signal, onPlain);
    watchAbort(controller.signal, () => heard.push('next'));
    controller.abort();
    plain.abort();
    assert.deepEqual(heard, ['next']);
  });
});

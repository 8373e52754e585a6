import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { type GateEntrant, ThreadGate } from '../../src/coordination/thread-gate.ts';

const entrant = (runId: string): GateEntrant => ({ runId, controller: new AbortController() });
const flush = () => new Promise((r) => setImmediate(r));

describe('thread gate', () => {
  it('grants a free thread at once and frees it on release', async () => {
    const gate = new ThreadGate();
    const a = entrant('a');
    await gate.claim('t', a, 'reject');
    assert.equal(gate.activeRun('t'), 'a');
    gate.release('t', a);
    assert.equal(gate.isBusy('t'), false);
  });

  it('reject: a second run fails with THREAD_BUSY naming the active run', async () => {
    const gate = new ThreadGate();
    await gate.claim('t', entrant('a'), 'reject');
    await assert.rejects(
      gate.claim('t', entrant('b'), 'reject'),
      (e) => isAgentPoolError(e, 'THREAD_BUSY') && e.details.activeRunId === 'a',
    );
  });

  it('enqueue: runs take the thread in arrival order', async () => {
    const gate = new ThreadGate();
    const order: string[] = [];
    const a = entrant('a');
    await gate.claim('t', a, 'enqueue');
    const rest = ['b', 'c', 'd'].map((id) => {
      const e = entrant(id);
      return gate.claim('t', e, 'enqueue').then(() => {
        order.push(id);
        gate.release('t', e);
      });
    });
    await flush();
    assert.deepEqual(order, []);
    gate.release('t', a);
    await Promise.all(rest);
    assert.deepEqual(order, ['b', 'c', 'd']);
    assert.equal(gate.isBusy('t'), false);
  });

  it('interrupt: cancels the running run and the runs waiting ahead with RUN_INTERRUPTED, then goes next', async () => {
    const gate = new ThreadGate();
    const a = entrant('a');
    await gate.claim('t', a, 'reject');
    const q = gate.claim('t', entrant('q'), 'enqueue');
    const i = entrant('i');
    const got = gate.claim('t', i, 'interrupt');
    assert.ok(a.controller.signal.aborted);
    assert.ok(isAgentPoolError(a.controller.signal.reason, 'RUN_INTERRUPTED'));
    await assert.rejects(q, (e) => isAgentPoolError(e, 'RUN_INTERRUPTED'));
    const later = gate.claim('t', entrant('later'), 'enqueue');
    gate.release('t', a);
    await got;
    assert.equal(gate.activeRun('t'), 'i');
    gate.release('t', i);
    await later;
    assert.equal(gate.activeRun('t'), 'later');
  });

  it('a waiting run that is cancelled leaves the queue with its abort reason', async () => {
    const gate = new ThreadGate();
    await gate.claim('t', entrant('a'), 'reject');
    const b = entrant('b');
    const waiting = gate.claim('t', b, 'enqueue');
    b.controller.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
  });

  it('bounds each queue: past maxQueue, THREAD_BUSY', async () => {
    const gate = new ThreadGate(2);
    await gate.claim('t', entrant('a'), 'reject');
    void gate.claim('t', entrant('b'), 'enqueue');
    void gate.claim('t', entrant('c'), 'enqueue');
    await assert.rejects(gate.claim('t', entrant('d'), 'enqueue'), (e) => isAgentPoolError(e, 'THREAD_BUSY'));
  });
});

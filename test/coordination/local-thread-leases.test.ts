/**
 * The thread leases conformance suite against the one-process adapter: several nodes are several
 * references to one LocalThreadLeases (one process has one gate). Then what only it promises: a
 * free thread is held as soon as `claim` returns, and its tokens are undefined (no fence needed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalThreadLeases } from '../../src/coordination/thread-leases.ts';
import { ThreadGate } from '../../src/coordination/thread-gate.ts';
import { entrant, threadLeasesConformance } from './thread-leases.conformance.ts';

threadLeasesConformance('local', async ({ nodes, maxQueue }) => {
  const leases = new LocalThreadLeases(new ThreadGate(maxQueue));
  return {
    nodes: Array.from({ length: nodes }, () => leases),
    settle: () => new Promise((r) => setImmediate(r)),
    close: () => leases.close(),
  };
});

describe('local thread leases', () => {
  it('holds a free thread as soon as claim returns, with no token', async () => {
    const leases = new LocalThreadLeases();
    const a = entrant('a');
    const claimed = leases.claim('t', a, 'reject');
    assert.equal(leases.holds('t', 'a'), true, 'synchronously, as the warm path checks it');
    assert.equal(await claimed, undefined);
    assert.equal(leases.fenced, false, 'runs need not wait for a token');
    leases.release('t', a);
    assert.equal(leases.holds('t', 'a'), false);
    assert.equal(leases.held, 0);
    await leases.close();
  });

  it('claimNow grants a free thread at once, and nothing when it is busy, the run aborted or the leases closed', async () => {
    const leases = new LocalThreadLeases();
    const a = entrant('a');
    assert.equal(leases.claimNow('t', a), true);
    assert.equal(leases.holds('t', 'a'), true);
    assert.equal(leases.held, 1);
    assert.equal(leases.claimNow('t', entrant('b')), false, 'busy');
    await assert.rejects(leases.claim('t', entrant('c'), 'reject'), { code: 'THREAD_BUSY' });
    const aborted = entrant('d');
    aborted.controller.abort(new Error('gone'));
    assert.equal(leases.claimNow('u', aborted), false, 'aborted');
    leases.release('t', a);
    assert.equal(leases.held, 0);
    const e = entrant('e');
    assert.equal(leases.claimNow('t', e), true);
    await leases.close();
    assert.equal(e.controller.signal.aborted, true, 'close aborts a holder granted at once');
    assert.equal(leases.claimNow('v', entrant('f')), false, 'closed');
  });

  it('a waiter refused by close gives back the turn it gets later', async () => {
    const gate = new ThreadGate();
    const leases = new LocalThreadLeases(gate);
    const a = entrant('a');
    await leases.claim('t', a, 'reject');
    const waiting = leases.claim('t', entrant('b'), 'enqueue');
    await leases.close();
    await assert.rejects(waiting);
    leases.release('t', a);
    await new Promise((r) => setImmediate(r));
    assert.equal(gate.isBusy('t'), false);
    assert.equal(leases.held, 0);
  });
});

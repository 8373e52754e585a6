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

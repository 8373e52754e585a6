/**
 * The membership of a single node: it lists itself once joined, with the stats of the moment, and
 * never reports a dead node; leave() removes it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { LocalMembership } from '../../src/coordination/membership.ts';

describe('local membership', () => {
  it('lists itself once joined, with its current stats and a current heartbeat', async () => {
    const clock = new ManualClock(5000);
    const m = new LocalMembership('solo', clock);
    assert.deepEqual(await m.nodes(), [], 'not a member before join');
    let runs = 1;
    await m.join({ address: 'http://127.0.0.1:8080', startedAt: 4000 }, () => ({
      runsInFlight: runs,
      liveInstances: 2,
      threadsHeld: 1,
    }));
    runs = 4;
    clock.advance(60_000);
    assert.deepEqual(await m.nodes(), [
      {
        id: 'solo',
        address: 'http://127.0.0.1:8080',
        startedAt: 4000,
        heartbeatAt: 65_000,
        runsInFlight: 4,
        liveInstances: 2,
        threadsHeld: 1,
      },
    ]);
  });

  it('never sweeps, and leave() removes the node', async () => {
    const clock = new ManualClock();
    const m = new LocalMembership('solo', clock);
    await m.join({ address: null, startedAt: 0 }, () => ({
      runsInFlight: 0,
      liveInstances: 0,
      threadsHeld: 0,
    }));
    let swept = 0;
    const stop = m.watch(async () => void swept++);
    clock.advance(3_600_000);
    assert.equal(swept, 0);
    assert.equal(clock.pendingTimers, 0, 'no timer is left behind');
    stop();
    await m.leave();
    assert.deepEqual(await m.nodes(), []);
  });
});

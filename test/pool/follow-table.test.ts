/**
 * The follow table's bounds: the threads it remembers and the agents whose followers it tracks
 * leave least recently used first, also long after the bound was first reached (eviction takes
 * the oldest key from an iterator kept across calls, not from a fresh `keys()` each time).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AgentRef, FollowTable } from '../../src/pool/follow-table.ts';

const agent = (name: string): AgentRef => ({ project: 'p', id: `agt_${name}`, name });
const A = agent('a');
const B = agent('b');

/** A table, and `run(thread, agent)`: a run of `agent` on `thread`, finished 1 ms after the last. */
function table(bounds: { maxThreads?: number; maxTrackedAgents?: number }) {
  let t = 0;
  const follows = new FollowTable({
    followWindowMs: 60_000,
    minFollows: 1,
    minConfidence: 0,
    maxTrackedAgents: bounds.maxTrackedAgents ?? 1000,
    maxFollowers: 4,
    maxThreads: bounds.maxThreads ?? 1000,
  });
  const run = (threadId: string, who: AgentRef) => {
    follows.observe(threadId, who, t, t + 1);
    t++;
  };
  return { follows, run };
}

describe('FollowTable bounds', () => {
  it('forgets the least recently run thread first, over many evictions', () => {
    const { follows, run } = table({ maxThreads: 3 });
    // 20,000 threads pass through a table of 3, each run once by A.
    for (let i = 0; i < 20_000; i++) run(`thr_${i}`, A);
    assert.equal(follows.trackedThreads, 3);
    // thr_19997 is the oldest of the three; a run on it makes it the newest.
    run('thr_19997', A);
    run('thr_new', A); // evicts thr_19998, the oldest now
    // B on a remembered thread follows A; on the evicted one it does not.
    run('thr_19997', B);
    run('thr_19999', B);
    run('thr_19998', B); // not remembered: no follow
    assert.deepEqual(
      follows.followers(A.id).map((f) => [f.agent.name, f.count]),
      [['b', 2]],
    );
    assert.equal(follows.trackedThreads, 3);
  });

  it('forgets the agent least recently followed from first, over many evictions', () => {
    const { follows, run } = table({ maxTrackedAgents: 2 });
    // 5,000 agents each followed once by B, on a thread of their own.
    for (let i = 0; i < 5000; i++) {
      run(`thr_${i}`, agent(`x${i}`));
      run(`thr_${i}`, B);
    }
    assert.equal(follows.trackedAgents, 2);
    assert.equal(follows.next('agt_x4998')?.[0]?.name, 'b');
    assert.equal(follows.next('agt_x4997'), undefined);
    // x4998 followed from again: now x4999 is the least recent and leaves for a new one.
    run('thr_again', agent('x4998'));
    run('thr_again', B);
    run('thr_new', agent('y'));
    run('thr_new', B);
    assert.equal(follows.next('agt_x4999'), undefined);
    assert.equal(follows.next('agt_x4998')?.[0]?.name, 'b');
    assert.equal(follows.next('agt_y')?.[0]?.name, 'b');
  });
});

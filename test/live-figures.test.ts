import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../src/core/clock.ts';
import { isAgentPoolError } from '../src/core/errors.ts';
import { resolveLiveFiguresOptions } from '../src/live-figures-options.ts';
import { LiveFigures, type PoolReading } from '../src/live-figures.ts';
import { runRecord } from './support/run-record.ts';

const empty = { buckets: [], counts: [], p50: Number.NaN, p99: Number.NaN };

function reading(overrides: Partial<PoolReading> = {}): PoolReading {
  return {
    hits: 0,
    misses: 0,
    activations: 0,
    evictions: 0,
    active: 0,
    activationLatencyMs: { ...empty, count: 0, sum: 0 },
    acquireWaitMs: { ...empty, count: 0, sum: 0 },
    ...overrides,
  };
}

function setup(options = {}) {
  const clock = new ManualClock();
  let pool = reading();
  const live = new LiveFigures({ clock, readPool: () => pool }, options);
  let n = 0;
  const finish = (ms: number, overrides: Parameters<typeof runRecord>[0] = {}) =>
    live.runFinished(
      runRecord({
        id: `run_${++n}`,
        status: 'succeeded',
        createdAt: clock.now() - ms,
        finishedAt: clock.now(),
        ...overrides,
      }),
    );
  return { clock, live, finish, setPool: (r: PoolReading) => (pool = r) };
}

describe('live figures', () => {
  it('pins its defaults: 10-second buckets over 15 minutes, 200 projects, the 10 slowest runs', () => {
    assert.deepEqual(resolveLiveFiguresOptions(), {
      bucketMs: 10_000,
      buckets: 90,
      maxProjects: 200,
      slowestRuns: 10,
      recentRuns: 10,
      recentAgents: 1000,
    });
    assert.throws(
      () => resolveLiveFiguresOptions({ buckets: 1 }),
      (err) => isAgentPoolError(err, 'VALIDATION_FAILED') && /liveFigures\.buckets/.test(err.message),
    );
  });

  it('counts runs by outcome, cost and latency in the bucket they finished in', () => {
    const { clock, live, finish } = setup();
    finish(100, { cost: 0.5 });
    finish(200, { status: 'failed', cost: 0.25 });
    finish(50, { status: 'interrupted' });
    finish(10, { status: 'cancelled' });
    clock.advance(10_000);
    finish(1000);
    const w = live.window();
    assert.equal(w.buckets.length, 90);
    const [older, current] = w.buckets.slice(-2);
    assert.deepEqual(
      { ...older!.runs, p50Ms: null, p99Ms: null },
      { succeeded: 1, failed: 2, cancelled: 1, cost: 0.75, p50Ms: null, p99Ms: null },
    );
    assert.equal(current!.runs.succeeded, 1);
    assert.equal(current!.at, clock.now());
    assert.deepEqual(
      {
        succeeded: w.runs.succeeded,
        failed: w.runs.failed,
        cancelled: w.runs.cancelled,
        last: w.runs.lastMinute,
      },
      { succeeded: 2, failed: 2, cancelled: 1, last: 5 },
    );
    assert.equal(w.runs.cost, 0.75);
  });

  it('estimates p50 and p99 within one histogram step (×1.5) of the true value', () => {
    const { live, finish } = setup();
    for (let i = 1; i <= 100; i++) finish(i * 10); // 10 ms … 1000 ms
    const { p50Ms, p99Ms } = live.window().runs;
    assert.ok(p50Ms! >= 500 && p50Ms! <= 750, `p50 ${p50Ms}`);
    assert.ok(p99Ms! >= 990 && p99Ms! <= 1500, `p99 ${p99Ms}`);
  });

  it('lists the slowest runs of the window, slowest first, bounded', () => {
    const { clock, live, finish } = setup({ slowestRuns: 3 });
    finish(300, { agentName: 'slow' });
    finish(5);
    clock.advance(20_000);
    finish(900, { agentName: 'slowest' });
    finish(100);
    finish(50);
    const slowest = live.window().slowest;
    assert.deepEqual(
      slowest.map((s) => [s.agent, s.durationMs]),
      [
        ['slowest', 900],
        ['slow', 300],
        ['a', 100],
      ],
    );
    assert.match(slowest[0]!.runId, /^run_/);
  });

  it('scopes a project to its own runs, and forgets what left the window', () => {
    const { clock, live, finish } = setup({ buckets: 6 });
    finish(10, { project: 'p1' });
    finish(10, { project: 'p2' });
    finish(10, { project: 'p2' });
    assert.equal(live.window('p1').runs.succeeded, 1);
    assert.equal(live.window('p2').runs.succeeded, 2);
    assert.equal(live.window().runs.succeeded, 3);
    assert.equal(live.window('p2').buckets.at(-1)!.pool, undefined, 'a project sees no pool figures');
    clock.advance(60_000);
    assert.equal(live.window().runs.succeeded, 0);
    finish(10, { project: 'p1' });
    assert.equal(live.window('p1').runs.succeeded, 1);
  });

  it('beyond maxProjects a run counts for the pool only', () => {
    const { live, finish } = setup({ maxProjects: 1 });
    finish(10, { project: 'p1' });
    finish(10, { project: 'p2' });
    assert.equal(live.window().runs.succeeded, 2);
    assert.equal(live.window('p1').runs.succeeded, 1);
    assert.equal(live.window('p2').runs.succeeded, 0);
  });

  it("keeps each agent's last runs, newest first, for the agents that ran last", () => {
    const { live, finish } = setup({ recentRuns: 2, recentAgents: 2 });
    finish(10, { agentId: 'agt_a' });
    finish(20, { agentId: 'agt_a' });
    finish(30, { agentId: 'agt_a' });
    finish(10, { agentId: 'agt_b' });
    assert.deepEqual(
      live.recent.of('agt_a').map((r) => r.durationMs),
      [30, 20],
    );
    finish(10, { agentId: 'agt_c' }); // agt_a ran before agt_b: it goes
    assert.deepEqual(live.recent.of('agt_a'), []);
    assert.equal(live.recent.of('agt_b').length, 1);
  });

  it('samples the pool counters once per bucket: differences, and live instances at the end', () => {
    const { clock, live, setPool } = setup();
    live.start();
    setPool(
      reading({
        hits: 8,
        misses: 2,
        activations: 2,
        evictions: 1,
        active: 3,
        activationLatencyMs: { ...empty, count: 2, sum: 4 },
      }),
    );
    clock.advance(10_000);
    setPool(reading({ hits: 18, misses: 2, activations: 2, evictions: 1, active: 3 }));
    clock.advance(10_000);
    const [first, second, current] = live.window().buckets.slice(-3);
    assert.deepEqual(first!.pool, {
      hits: 8,
      misses: 2,
      activations: 2,
      evictions: 1,
      active: 3,
      activationMs: 2,
      acquireWaitMs: null,
    });
    assert.equal(second!.pool!.hits, 10);
    assert.equal(second!.pool!.activations, 0);
    assert.equal(current!.pool, null, 'the bucket under way is not sampled yet');
    live.close();
    assert.equal(clock.pendingTimers, 0);
  });
});

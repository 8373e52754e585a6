import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AgentActivity,
  COUNTED_STATUSES,
  type AgentSeriesSample,
  type FinishedRun,
  OTHER_AGENTS,
  type RunCounts,
} from '../src/agent-activity.ts';
import { resolveMetricsOptions } from '../src/metrics.ts';
import { isAgentPoolError } from '../src/core/errors.ts';

function run(project: string, agentName: string, overrides: Partial<FinishedRun> = {}): FinishedRun {
  return {
    project,
    agentName,
    status: 'succeeded',
    inputTokens: 3,
    outputTokens: 2,
    cost: 0.5,
    createdAt: 1,
    finishedAt: 2,
    ...overrides,
  };
}

/** Every figure of a count, flattened, so two scrapes can be subtracted field by field. */
function flat(c: RunCounts): number[] {
  return [...COUNTED_STATUSES.map((s) => c.runs[s]), c.inputTokens, c.outputTokens, c.costUsd];
}

/** A scrape as Prometheus keeps it: the values by label, copied. */
function remember(samples: AgentSeriesSample[]): Map<string, number[]> {
  return new Map(samples.map((s) => [s.agent, flat(s.counts)]));
}

/** Σ over the series of (now − before, 0 for a new series): what `increase()` adds up to. */
function increases(before: Map<string, number[]>, now: Map<string, number[]>): number[] {
  const out = [0, 0, 0, 0, 0, 0, 0];
  for (const [agent, values] of now) {
    const old = before.get(agent);
    values.forEach((v, i) => (out[i] = (out[i] as number) + v - (old?.[i] ?? 0)));
  }
  return out;
}

const close = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - (b[i] as number)) < 1e-6);

describe('agent activity (bounded per-agent figures)', () => {
  it('gives the first agents series until the bound, and sums the others in (other)', () => {
    const activity = new AgentActivity({ maxAgentSeries: 2, maxTrackedAgents: 10 });
    for (const name of ['a', 'b', 'c', 'd']) activity.record(run('p', name));
    const series = activity.scrape();
    assert.deepEqual(
      series.map((s) => [s.agent, s.counts.runs.succeeded]),
      [
        ['p/a', 1],
        ['p/b', 1],
        [OTHER_AGENTS, 2],
      ],
    );
    assert.equal(activity.seriesCount, 2);
    assert.equal(activity.totals().runs.succeeded, 4);
    assert.equal(activity.totals().costUsd, 2);
  });

  it('lets an agent that runs more lately take the place of the least active one, never a one-off', () => {
    const activity = new AgentActivity({ maxAgentSeries: 2, maxTrackedAgents: 10 });
    activity.record(run('p', 'a'));
    activity.record(run('p', 'a'));
    activity.record(run('p', 'b'));
    activity.record(run('p', 'once')); // as active as b: no churn
    assert.deepEqual(
      activity.scrape().map((s) => s.agent),
      ['p/a', 'p/b', OTHER_AGENTS],
    );
    activity.record(run('p', 'busy'));
    activity.record(run('p', 'busy')); // now more active than b
    assert.deepEqual(
      activity.scrape().map((s) => s.agent),
      ['p/a', 'p/busy', OTHER_AGENTS],
    );
  });

  it('never churns series for agents that each run now and then, across many halvings', () => {
    const activity = new AgentActivity({ maxAgentSeries: 10, maxTrackedAgents: 100_000 });
    const first = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      activity.record(run('p', `a${i}`));
      if (i === 9) for (const s of activity.scrape()) first.add(s.agent);
    }
    const last = activity.scrape().map((s) => s.agent);
    assert.deepEqual(new Set(last), first, 'the same ten agents (and (other)) after 5000 one-off runs');
  });

  it('gives an idle member’s place to an agent that turned busy', () => {
    const activity = new AgentActivity({ maxAgentSeries: 1, maxTrackedAgents: 100_000 });
    for (let i = 0; i < 5; i++) activity.record(run('p', 'old'));
    for (let i = 0; i < 3000; i++) activity.record(run('p', `x${i}`)); // old's activity halves away
    activity.record(run('p', 'new'));
    activity.record(run('p', 'new'));
    assert.deepEqual(
      activity.scrape().map((s) => s.agent),
      ['p/new', OTHER_AGENTS],
    );
  });

  it('ignores runs that did not end in a terminal status', () => {
    const activity = new AgentActivity({ maxAgentSeries: 2, maxTrackedAgents: 10 });
    activity.record(run('p', 'a', { status: 'running' }));
    assert.equal(activity.totals().runs.succeeded, 0);
    assert.deepEqual(activity.scrape(), []);
  });

  it("keeps every tracked agent's figures since start for the API, most runs first, per project", () => {
    const activity = new AgentActivity({ maxAgentSeries: 1, maxTrackedAgents: 10 });
    activity.record(run('p', 'a'));
    for (let i = 0; i < 3; i++) activity.record(run('p', 'b', { status: i === 0 ? 'failed' : 'succeeded' }));
    activity.record(run('q', 'a', { finishedAt: 99 }));
    const { agents, tracked } = activity.project('p', 10);
    assert.equal(tracked, 2);
    assert.deepEqual(
      agents.map((a) => [a.name, a.runs.succeeded, a.runs.failed, a.inputTokens]),
      [
        ['b', 2, 1, 9],
        ['a', 1, 0, 3],
      ],
    );
    assert.equal(activity.agent('q', 'a')?.lastRunAt, 99);
    assert.equal(activity.agent('q', 'nope'), undefined);
    assert.equal(activity.project('p', 1).agents.length, 1, 'limit');
  });

  it('forgets an agent that has not run lately beyond maxTrackedAgents', () => {
    const activity = new AgentActivity({ maxAgentSeries: 1, maxTrackedAgents: 3 });
    for (const name of ['a', 'b', 'c']) activity.record(run('p', name));
    activity.record(run('p', 'a')); // a is recent again
    activity.record(run('p', 'd'));
    assert.deepEqual(
      activity
        .project('p', 10)
        .agents.map((a) => a.name)
        .sort(),
      ['a', 'c', 'd'],
    );
    assert.equal(activity.totals().runs.succeeded, 5, 'the totals never forget');
  });

  it('forgets a deleted project: its figures and series go, what its series counted since the last scrape moves to (other)', () => {
    const activity = new AgentActivity({ maxAgentSeries: 5, maxTrackedAgents: 10 });
    activity.record(run('gone', 'a'));
    const before = remember(activity.scrape());
    activity.record(run('gone', 'a'));
    activity.record(run('kept', 'b'));
    activity.forgetProject('gone');
    assert.equal(activity.tracked('gone'), 0);
    assert.equal(activity.agent('gone', 'a'), undefined);
    const after = activity.scrape();
    assert.deepEqual(
      after.map((s) => s.agent),
      ['kept/b', OTHER_AGENTS],
    );
    assert.deepEqual(
      increases(before, remember(after)).slice(0, 1),
      [2],
      'the two runs since the last scrape are still counted once',
    );
  });

  it('a series that comes back (its project deleted and made again) goes on from what the last scrape exported', () => {
    const activity = new AgentActivity({ maxAgentSeries: 5, maxTrackedAgents: 10 });
    activity.record(run('p', 'a'));
    const before = remember(activity.scrape());
    const totalsBefore = flat(activity.totals());
    activity.forgetProject('p');
    activity.record(run('p', 'a', { inputTokens: 0 }));
    const after = remember(activity.scrape());
    assert.equal(after.get('p/a')?.[0], 2, 'the label never moves backwards');
    assert.deepEqual(
      increases(before, after),
      flat(activity.totals()).map((t, i) => t - (totalsBefore[i] as number)),
      'the new run is counted once',
    );
  });

  it('with maxAgentSeries 0 keeps only (other)', () => {
    const activity = new AgentActivity({ maxAgentSeries: 0, maxTrackedAgents: 10 });
    activity.record(run('p', 'a'));
    assert.deepEqual(
      activity.scrape().map((s) => s.agent),
      [OTHER_AGENTS],
    );
    assert.equal(activity.agent('p', 'a')?.runs.succeeded, 1);
  });

  it('property: series stay bounded, and between any two scrapes the series add up to the exact totals', () => {
    const event = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant('run' as const),
          project: fc.constantFrom('p', 'q'),
          agent: fc.integer({ min: 0, max: 40 }),
          status: fc.constantFrom('succeeded', 'failed', 'cancelled', 'interrupted'),
          tokens: fc.integer({ min: 0, max: 50 }),
        }),
        weight: 20,
      },
      { arbitrary: fc.record({ kind: fc.constant('scrape' as const) }), weight: 2 },
      {
        arbitrary: fc.record({ kind: fc.constant('forget' as const), project: fc.constantFrom('p', 'q') }),
        weight: 1,
      },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 6, max: 30 }),
        fc.array(event, { maxLength: 400 }),
        (maxAgentSeries, maxTrackedAgents, events) => {
          const activity = new AgentActivity({ maxAgentSeries, maxTrackedAgents });
          let last = new Map<string, number[]>();
          let lastTotals = flat(activity.totals());
          const check = () => {
            const now = remember(activity.scrape());
            assert.ok(now.size <= maxAgentSeries + 1, `${now.size} series`);
            const totals = flat(activity.totals());
            const grew = totals.map((t, i) => t - (lastTotals[i] as number));
            assert.ok(close(increases(last, now), grew), `${increases(last, now)} vs ${grew}`);
            last = now;
            lastTotals = totals;
          };
          for (const e of events) {
            if (e.kind === 'scrape') check();
            else if (e.kind === 'forget') activity.forgetProject(e.project);
            else {
              activity.record(
                run(e.project, `a${e.agent}`, {
                  status: e.status,
                  inputTokens: e.tokens,
                  cost: e.tokens / 8,
                }),
              );
            }
          }
          check();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('pins the metrics option defaults and rejects bad values naming the field', () => {
    assert.deepEqual(resolveMetricsOptions(), { maxAgentSeries: 100, maxTrackedAgents: 100_000 });
    assert.deepEqual(resolveMetricsOptions({ maxAgentSeries: 0 }), {
      maxAgentSeries: 0,
      maxTrackedAgents: 100_000,
    });
    const field = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
        return err.details['field'];
      }
      return undefined;
    };
    assert.equal(
      field(() => resolveMetricsOptions({ maxAgentSeries: -1 })),
      'metrics.maxAgentSeries',
    );
    assert.equal(
      field(() => resolveMetricsOptions({ maxAgentSeries: 10_001 })),
      'metrics.maxAgentSeries',
    );
    assert.equal(
      field(() => resolveMetricsOptions({ maxAgentSeries: 50, maxTrackedAgents: 10 })),
      'metrics.maxTrackedAgents',
    );
  });
});

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface RunBody {
  id: string;
  status: string;
  agentVersion: number;
  output: string | null;
}
interface VersionStatsBody {
  version: number;
  runs: number;
  succeeded: number;
  successRate: number | null;
  p50Ms: number | null;
}
interface RolloutBody {
  agent: string;
  activeVersion: number;
  candidateVersion: number;
  currentPercent: number | null;
  stable: VersionStatsBody;
  candidate: VersionStatsBody;
}

describe('canary rollouts over HTTP', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await serverFixture();
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/agents',
      payload: { name: 'support', instructions: 'v1' },
    });
    assert.equal(res.statusCode, 201);
  });
  afterEach(() => f.close());

  const patch = (payload: Record<string, unknown>) =>
    f.app.inject({ method: 'PATCH', url: '/v1/agents/support', payload });
  const run = async (payload: Record<string, unknown> = {}) => {
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/agents/support/runs',
      payload: { input: 'hello', ...payload },
    });
    assert.equal(res.statusCode, 200, res.body);
    return json<RunBody>(res);
  };
  const status = () => f.app.inject({ method: 'GET', url: '/v1/agents/support/rollout' });

  it('a PATCH with rollout makes the change a candidate: the share of runs the flag says goes to it', async () => {
    const started = await patch({ instructions: 'v2', rollout: { strategy: 'percentage', percent: 30 } });
    assert.equal(started.statusCode, 200, started.body);
    const { agent } = json<{ agent: { activeVersion: number; latestVersion: number } }>(started);
    assert.deepEqual([agent.activeVersion, agent.latestVersion], [1, 2]);

    const runs = [];
    for (let i = 0; i < 300; i++) runs.push(await run());
    const onCandidate = runs.filter((r) => r.agentVersion === 2).length;
    assert.ok(onCandidate > 300 * 0.2 && onCandidate < 300 * 0.4, `${onCandidate} of 300 on the candidate`);
    assert.ok(runs.every((r) => r.status === 'succeeded'));
    assert.ok(runs.every((r) => r.agentVersion === 1 || r.agentVersion === 2));

    const report = json<RolloutBody>(await status());
    assert.equal(report.agent, 'support');
    assert.deepEqual([report.activeVersion, report.candidateVersion, report.currentPercent], [1, 2, 30]);
    assert.equal(report.candidate.runs, onCandidate);
    assert.equal(report.stable.runs, 300 - onCandidate);
    assert.equal(report.candidate.successRate, 1);
    assert.equal(report.stable.successRate, 1);
    assert.equal(typeof report.candidate.p50Ms, 'number');
  });

  it('keeps a thread on one version, raises the share, and promotion makes the candidate active', async () => {
    await patch({ instructions: 'v2', rollout: { strategy: 'percentage', percent: 50 } });
    const thread = json<{ id: string }>(
      await f.app.inject({ method: 'POST', url: '/v1/threads', payload: {} }),
    );
    const versions = new Set<number>();
    for (let i = 0; i < 5; i++) versions.add((await run({ threadId: thread.id })).agentVersion);
    assert.equal(versions.size, 1, 'every run of a thread on the same version');

    const raised = await patch({ rollout: { strategy: 'percentage', percent: 100 } });
    assert.equal(raised.statusCode, 200, raised.body);
    for (let i = 0; i < 20; i++) assert.equal((await run()).agentVersion, 2);

    const promoted = await f.app.inject({ method: 'POST', url: '/v1/agents/support/rollout/promote' });
    assert.equal(promoted.statusCode, 200, promoted.body);
    const agent = json<{ activeVersion: number; rollout: unknown }>(promoted);
    assert.equal(agent.activeVersion, 2);
    assert.equal(agent.rollout, null);
    assert.equal((await run()).agentVersion, 2);
    const gone = await status();
    assert.equal(gone.statusCode, 404);
    assert.equal(json<{ error: { code: string } }>(gone).error.code, 'ROLLOUT_NOT_FOUND');
  });

  it('abort sends every run back to the active version; the candidate stays in the history', async () => {
    await patch({ instructions: 'v2', rollout: { strategy: 'all' } });
    assert.equal((await run()).agentVersion, 2);
    const aborted = await f.app.inject({ method: 'POST', url: '/v1/agents/support/rollout/abort' });
    assert.equal(aborted.statusCode, 200, aborted.body);
    for (let i = 0; i < 10; i++) assert.equal((await run()).agentVersion, 1);
    const versions = json<{ data: { version: number }[] }>(
      await f.app.inject({ method: 'GET', url: '/v1/agents/support/versions' }),
    );
    assert.deepEqual(
      versions.data.map((v) => v.version),
      [2, 1],
    );
  });

  it('refuses a plain change while a rollout runs, a rollout with nothing to roll out, and a bad strategy', async () => {
    const nothing = await patch({ rollout: { strategy: 'percentage', percent: 10 } });
    assert.equal(nothing.statusCode, 400);
    assert.equal(json<{ error: { details: { field: string } } }>(nothing).error.details.field, 'rollout');

    const bad = await patch({ instructions: 'v2', rollout: { strategy: 'percentage', percent: 250 } });
    assert.equal(bad.statusCode, 400);
    assert.equal(json<{ error: { details: { field: string } } }>(bad).error.details.field, 'rollout.percent');

    await patch({ instructions: 'v2', rollout: { strategy: 'percentage', percent: 10 } });
    const blocked = await patch({ instructions: 'v3' });
    assert.equal(blocked.statusCode, 409);
    assert.equal(json<{ error: { code: string } }>(blocked).error.code, 'ROLLOUT_IN_PROGRESS');
    const noAbort = await f.app.inject({ method: 'POST', url: '/v1/agents/nobody/rollout/abort' });
    assert.equal(noAbort.statusCode, 404);
  });
});

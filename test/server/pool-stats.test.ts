import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { json, serverFixture } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
type Stats = Record<string, unknown> & {
  scope: string;
  project?: string;
  active: number;
  byState: Record<string, number>;
  byTier: Record<string, number>;
  hits: number;
  misses: number;
  activations: number;
  runs: { queued: number; running: number };
  models: Record<string, unknown>[];
};

/** What a project's own view has, and nothing more. */
const PROJECT_FIELDS = [
  'scope',
  'project',
  'active',
  'resident',
  'oneShot',
  'activating',
  'pinned',
  'byState',
  'byTier',
  'hits',
  'misses',
  'activations',
  'activationFailures',
  'hitRatio',
  'runs',
  'models',
  'tools',
  'mcp',
].sort();

describe('GET /v1/pool/stats', () => {
  let f: Fixture;
  let alpha: Record<string, string>;
  let beta: Record<string, string>;
  beforeEach(async () => {
    f = await serverFixture({ adminKey: ADMIN });
    for (const id of ['alpha', 'beta']) await f.pool.projects.create({ id });
    alpha = { authorization: `Bearer ${(await f.pool.projects.createKey('alpha')).key}` };
    beta = { authorization: `Bearer ${(await f.pool.projects.createKey('beta')).key}` };
    await f.pool.agents.create('alpha', { name: 'support' });
    for (const name of ['b1', 'b2', 'b3']) await f.pool.agents.create('beta', { name, tier: 'hot' });
    await f.pool.agents.create('beta', { name: 'slowpoke', model: 'slow/x' });
  });
  afterEach(() => f.close());

  const stats = async (headers: Record<string, string>, query = '') => {
    const res = await f.app.inject({ url: `/v1/pool/stats${query}`, headers });
    assert.equal(res.statusCode, 200, res.body);
    return json<Stats>(res);
  };
  const run = (headers: Record<string, string>, agent: string) =>
    f.app.inject({ method: 'POST', url: `/v1/agents/${agent}/runs`, headers, payload: { input: 'hi' } });

  it('shows a project key its own figures only: instances, hits, misses, activations, runs in flight', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await run(alpha, 'support')).statusCode, 200);
    for (const name of ['b1', 'b2', 'b3']) await f.pool.instances.prewarm('beta', name);
    const busy = await f.pool.runs.start('beta', 'slowpoke', { input: 'wait' });
    await f.slow.started;

    const own = await stats(alpha);
    assert.deepEqual(
      Object.keys(own).sort(),
      PROJECT_FIELDS,
      'no pool capacity, bytes, waiting or evictions',
    );
    assert.equal(own.scope, 'project');
    assert.equal(own.project, 'alpha');
    assert.equal(own.active, 1);
    assert.deepEqual(own.byState, { created: 0, initializing: 0, ready: 1, busy: 0, paused: 0, error: 0 });
    assert.deepEqual(own.byTier, { hot: 0, warm: 0, cold: 0, auto: 1 });
    assert.deepEqual([own.activations, own.misses, own.hits], [1, 1, 2]);
    assert.deepEqual(own.runs, { queued: 0, running: 0 }, "beta's run in flight is not alpha's business");

    const theirs = await stats(beta);
    assert.equal(theirs.active, 4);
    assert.equal(theirs.byState['busy'], 1);
    assert.equal(theirs.byTier['hot'], 3);
    assert.deepEqual(theirs.runs, { queued: 0, running: 1 });
    assert.deepEqual(
      theirs.models.map((m) => Object.keys(m).sort()),
      [
        ['breaker', 'model'],
        ['breaker', 'model'],
      ],
      'breaker states only, no calls in flight per model',
    );
    f.slow.release();
    await busy.result;
  });

  it('shows the admin the whole pool, or one project with ?project=', async () => {
    await run(alpha, 'support');
    await f.pool.instances.prewarm('beta', 'b1');
    const pool = await stats(admin);
    assert.equal(pool.scope, 'pool');
    assert.equal(pool.active, 2);
    assert.equal(pool['maxActive'], f.pool.instances.options.maxActive);
    assert.ok(Array.isArray(pool.models) && 'inFlight' in (pool.models[0] ?? {}));
    await f.pool.retention.sweep();
    const retention = (await stats(admin))['retention'] as { days: number; sweeps: number; deleted: object };
    assert.deepEqual(
      [retention.days, retention.sweeps, retention.deleted],
      [30, 1, { threads: 0, messages: 0, runs: 0 }],
    );
    const one = await stats(admin, '?project=alpha');
    assert.equal(one.scope, 'project');
    assert.equal(one.active, 1);
    const unknown = await f.app.inject({ url: '/v1/pool/stats?project=nope', headers: admin });
    assert.equal(unknown.statusCode, 404);
    assert.equal(json<{ error: { code: string } }>(unknown).error.code, 'PROJECT_NOT_FOUND');
  });

  it("refuses a project key asking for another project's figures (403)", async () => {
    const res = await f.app.inject({ url: '/v1/pool/stats?project=beta', headers: alpha });
    assert.equal(res.statusCode, 403);
    assert.equal(json<{ error: { code: string } }>(res).error.code, 'FORBIDDEN');
    assert.equal((await stats(alpha, '?project=alpha')).project, 'alpha');
  });

  it('keeps the pool-wide figures in development mode', async () => {
    const dev = await serverFixture();
    try {
      const res = await dev.app.inject({ url: '/v1/pool/stats' });
      assert.equal(json<Stats>(res).scope, 'pool');
    } finally {
      await dev.close();
    }
  });
});

describe('GET /v1/pool/stats/agents', () => {
  let f: Fixture;
  let alpha: Record<string, string>;
  beforeEach(async () => {
    f = await serverFixture({ adminKey: ADMIN });
    for (const id of ['alpha', 'beta']) await f.pool.projects.create({ id });
    alpha = { authorization: `Bearer ${(await f.pool.projects.createKey('alpha')).key}` };
  });
  afterEach(() => f.close());

  it("answers a project's agents' run figures since start, most runs first, and one agent's by name", async () => {
    await f.pool.agents.create('alpha', { name: 'busy' });
    await f.pool.agents.create('alpha', { name: 'quiet' });
    await f.pool.agents.create('beta', { name: 'theirs' });
    const runOf = async (project: string, agent: string) =>
      (await f.pool.runs.start(project, agent, { input: 'hi' })).result;
    for (let i = 0; i < 3; i++) await runOf('alpha', 'busy');
    const quiet = await runOf('alpha', 'quiet');
    await runOf('beta', 'theirs');
    const res = await f.app.inject({ url: '/v1/pool/stats/agents', headers: alpha });
    assert.equal(res.statusCode, 200, res.body);
    const body = json<{
      project: string;
      tracked: number;
      data: {
        name: string;
        runs: Record<string, number>;
        inputTokens: number;
        costUsd: number;
        lastRunAt: number;
      }[];
    }>(res);
    assert.equal(body.project, 'alpha');
    assert.equal(body.tracked, 2);
    assert.deepEqual(
      body.data.map((a) => [a.name, a.runs['succeeded']]),
      [
        ['busy', 3],
        ['quiet', 1],
      ],
    );
    const one = json<typeof body>(
      await f.app.inject({ url: '/v1/pool/stats/agents?agent=quiet', headers: alpha }),
    );
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0]?.inputTokens, quiet.inputTokens);
    assert.equal(one.data[0]?.lastRunAt, quiet.finishedAt);
    const limited = json<typeof body>(
      await f.app.inject({ url: '/v1/pool/stats/agents?limit=1', headers: alpha }),
    );
    assert.deepEqual(
      limited.data.map((a) => a.name),
      ['busy'],
    );
    const forbidden = await f.app.inject({ url: '/v1/pool/stats/agents?project=beta', headers: alpha });
    assert.equal(forbidden.statusCode, 403);
    const asAdmin = json<typeof body>(
      await f.app.inject({ url: '/v1/pool/stats/agents?project=beta', headers: admin }),
    );
    assert.deepEqual(
      asAdmin.data.map((a) => a.name),
      ['theirs'],
    );
  });
});

/**
 * The usage routes: an agent's stats (persisted usage, live figures, priority, followers) and the
 * activity report, scoped like every project route, over real HTTP through fastify's inject().
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { json, serverFixture } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface Usage {
  name: string;
  project: string;
  uses: number;
  successes: number;
  failures: number;
  successRate: number | null;
  meanLatencyMs: number | null;
  costUsd: number;
  lastUsedAt: number;
}

describe('usage routes', () => {
  let f: Fixture;
  let alpha: Record<string, string>;
  let beta: Record<string, string>;
  beforeEach(async () => {
    f = await serverFixture({ adminKey: ADMIN });
    for (const id of ['alpha', 'beta']) await f.pool.projects.create({ id });
    alpha = { authorization: `Bearer ${(await f.pool.projects.createKey('alpha')).key}` };
    beta = { authorization: `Bearer ${(await f.pool.projects.createKey('beta')).key}` };
    for (const name of ['one', 'two', 'three']) await f.pool.agents.create('alpha', { name });
    await f.pool.agents.create('beta', { name: 'theirs' });
  });
  afterEach(() => f.close());

  const run = async (headers: Record<string, string>, agent: string, thread?: string) => {
    const res = await f.app.inject({
      method: 'POST',
      url: `/v1/agents/${agent}/runs`,
      headers,
      payload: { input: 'hi', ...(thread !== undefined && { thread }) },
    });
    assert.equal(res.statusCode, 200, res.body);
    return json<{ status: string }>(res);
  };

  it("GET /v1/agents/{idOrName}/stats: the agent's usage before and after the write, its live figures", async () => {
    for (let i = 0; i < 3; i++) await run(alpha, 'one');
    const one = await f.pool.agents.get('alpha', 'one');
    const before = await f.app.inject({ url: `/v1/agents/${one.id}/stats`, headers: alpha });
    assert.equal(before.statusCode, 200, before.body);
    const b = json<{ usage: Usage; live: { instance: { name: string } | null; runs: unknown } }>(before);
    assert.equal(b.usage.uses, 3, 'pending uses count before they are written');
    await f.pool.agents.usage.flush();
    const res = await f.app.inject({ url: '/v1/agents/one/stats', headers: alpha });
    const body = json<{
      name: string;
      usage: Usage;
      live: { instance: { name: string } | null; runs: { runs: { succeeded: number } } | null };
      priority: { score: number; frequency: number; threshold: number } | null;
      followers: unknown[];
    }>(res);
    assert.equal(body.name, 'one');
    assert.equal(body.usage.uses, 3);
    assert.equal(body.usage.successes, 3);
    assert.equal(body.usage.failures, 0);
    assert.equal(body.usage.successRate, 1);
    assert.equal(typeof body.usage.meanLatencyMs, 'number');
    assert.equal(body.live.instance?.name, 'one');
    assert.equal(body.live.runs?.runs.succeeded, 3);
    assert.equal(body.priority?.frequency, 1);
    assert.equal(body.priority?.threshold, 0.7);
    assert.deepEqual(body.followers, []);

    const never = json<{ usage: Usage; priority: unknown }>(
      await f.app.inject({ url: '/v1/agents/two/stats', headers: alpha }),
    );
    assert.equal(never.usage.uses, 0);
    assert.equal(never.priority, null);
    const other = await f.app.inject({ url: '/v1/agents/theirs/stats', headers: alpha });
    assert.equal(other.statusCode, 404);
    assert.equal(json<{ error: { code: string } }>(other).error.code, 'AGENT_NOT_FOUND');
  });

  it('GET /v1/pool/activity: sorted, paginated, and a project key sees its own project only', async () => {
    for (let i = 0; i < 3; i++) await run(alpha, 'two');
    await run(alpha, 'one');
    await run(beta, 'theirs');
    const page = async (headers: Record<string, string>, query: string) => {
      const res = await f.app.inject({ url: `/v1/pool/activity${query}`, headers });
      assert.equal(res.statusCode, 200, res.body);
      return json<{ sort: string; data: Usage[]; nextCursor: string | null }>(res);
    };
    const first = await page(alpha, '?limit=1');
    assert.equal(first.sort, 'uses');
    assert.deepEqual(
      first.data.map((u) => [u.name, u.uses]),
      [['two', 3]],
    );
    assert.ok(first.nextCursor !== null);
    const second = await page(alpha, `?limit=1&cursor=${first.nextCursor}`);
    assert.deepEqual(
      second.data.map((u) => u.name),
      ['one'],
    );
    assert.equal(second.nextCursor, null, 'three never ran: not in the report');
    const recent = await page(alpha, '?sort=recent');
    assert.deepEqual(
      recent.data.map((u) => u.name),
      ['one', 'two'],
    );
    const all = await page(admin, '?sort=uses');
    assert.deepEqual(all.data.map((u) => u.name).sort(), ['one', 'theirs', 'two']);
    const onlyBeta = await page(admin, '?project=beta');
    assert.deepEqual(
      onlyBeta.data.map((u) => u.name),
      ['theirs'],
    );
    const forbidden = await f.app.inject({ url: '/v1/pool/activity?project=beta', headers: alpha });
    assert.equal(forbidden.statusCode, 403);

    const bad = await f.app.inject({ url: '/v1/pool/activity?sort=popularity', headers: alpha });
    assert.equal(bad.statusCode, 400);
    const error = json<{ error: { code: string; details: { field: string } } }>(bad).error;
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.equal(error.details.field, 'sort');
  });

  it('learns from runs on threads and prefetches the follower, in the stats and /metrics', async () => {
    const start = async (agent: string, threadId: string) =>
      (await f.pool.runs.start('alpha', agent, { input: 'hi', threadId })).result;
    for (let i = 0; i < 3; i++) {
      const thread = await f.pool.threads.create('alpha');
      await start('one', thread.id);
      await start('two', thread.id);
    }
    const two = await f.pool.agents.get('alpha', 'two');
    f.pool.instances.deactivate('alpha', 'two');
    const thread = await f.pool.threads.create('alpha');
    await start('one', thread.id);
    for (let i = 0; i < 5 && !f.pool.instances.isActive(two.id); i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(f.pool.instances.isActive(two.id), true, 'two was prefetched when one was acquired');
    const stats = json<{ followers: { name: string; count: number }[] }>(
      await f.app.inject({ url: '/v1/agents/one/stats', headers: alpha }),
    );
    assert.deepEqual(
      stats.followers.map((x) => [x.name, x.count]),
      [['two', 3]],
    );
    const metrics = await f.app.inject({ url: '/metrics', headers: admin });
    assert.match(metrics.body, /agentpool_preloads_total\{source="prefetch"\} 1/);
    assert.match(metrics.body, /agentpool_preload_followed_agents 1/);
  });
});

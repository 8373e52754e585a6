/**
 * The live view (`GET /v1/pool/live`, `GET /v1/pool/live/agents`), `agentpool top --once` against
 * it, and the dashboard's page as served: scoping by key, figures equal to `/v1/pool/stats`, the
 * agents table searched and paged over 100,000 agents on a SQLite file.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createAgentPool } from '../../src/agent-pool.ts';
import { buildServer } from '../../src/server/app.ts';
import { runCli } from '../cli/in-process.ts';
import { tempDir } from '../support/temp-dir.ts';
import { json, serverFixture } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };
type Fixture = Awaited<ReturnType<typeof serverFixture>>;
type Live = {
  scope: string;
  project: string | null;
  stats: Record<string, unknown> & { active: number; hits: number; activations: number };
  health: { status: string; checks: Record<string, unknown>[] };
  runs: { succeeded: number; failed: number; lastMinute: number; p50Ms: number | null; cost: number };
  series: { runs: { succeeded: number }; pool?: unknown }[];
  slowest: { runId: string; project: string }[];
  money: { projects: { project: string; today: { spentUsd: number } }[]; topAgents: unknown[] };
  cluster: { nodes: unknown[] } | null;
};

describe('GET /v1/pool/live', () => {
  let f: Fixture;
  let alpha: Record<string, string>;
  beforeEach(async () => {
    f = await serverFixture({ adminKey: ADMIN });
    for (const id of ['alpha', 'beta']) await f.pool.projects.create({ id });
    alpha = { authorization: `Bearer ${(await f.pool.projects.createKey('alpha')).key}` };
    await f.pool.agents.create('alpha', { name: 'support' });
    await f.pool.agents.create('beta', { name: 'other' });
  });
  afterEach(() => f.close());

  const live = async (headers: Record<string, string>, query = '') => {
    const res = await f.app.inject({ url: `/v1/pool/live${query}`, headers });
    assert.equal(res.statusCode, 200, res.body);
    return json<Live>(res);
  };
  const run = async (project: string, agent: string) => {
    const headers = { ...admin, 'agentpool-project': project };
    const res = await f.app.inject({
      method: 'POST',
      url: `/v1/agents/${agent}/runs`,
      headers,
      payload: { input: 'hi' },
    });
    assert.equal(res.statusCode, 200, res.body);
  };

  it("shows the admin the whole pool: the stats' figures, runs over the window, money, nodes", async () => {
    for (let i = 0; i < 3; i++) await run('alpha', 'support');
    await run('beta', 'other');
    const view = await live(admin);
    const stats = json<Record<string, unknown>>(
      await f.app.inject({ url: '/v1/pool/stats', headers: admin }),
    );
    assert.equal(view.scope, 'pool');
    for (const key of [
      'active',
      'hits',
      'misses',
      'activations',
      'evictions',
      'maxActive',
      'byState',
      'byTier',
    ]) {
      assert.deepEqual(view.stats[key], stats[key], key);
    }
    // What the runs above make: two agents activated once each, the second and third runs of
    // `support` served warm.
    assert.deepEqual([view.stats['activations'], view.stats['hits'], view.stats['active']], [2, 2, 2]);
    assert.equal(view.runs.succeeded, 4);
    assert.equal(view.runs.lastMinute, 4);
    assert.equal(typeof view.runs.p50Ms, 'number');
    assert.equal(view.series.length, 90);
    assert.equal(view.series.at(-1)!.runs.succeeded, 4);
    assert.equal(view.slowest.length, 4);
    assert.deepEqual(view.money.projects.map((p) => p.project).sort(), ['alpha', 'beta', 'default']);
    const health = json<{ status: string }>(await f.app.inject({ url: '/v1/pool/health', headers: admin }));
    assert.equal(view.health.status, health.status);
    assert.ok(['ok', 'degraded', 'overloaded'].includes(view.health.status));
    assert.ok(Array.isArray(view.health.checks) && view.health.checks.length > 0, 'its checks');
    assert.equal(view.cluster!.nodes.length, 1);
  });

  it('shows a project key its own project only, and refuses another (403)', async () => {
    await run('alpha', 'support');
    await run('beta', 'other');
    const view = await live(alpha);
    assert.equal(view.scope, 'project');
    assert.equal(view.project, 'alpha');
    assert.equal(view.runs.succeeded, 1);
    assert.deepEqual(
      view.slowest.map((s) => s.project),
      ['alpha'],
    );
    assert.deepEqual(
      view.money.projects.map((p) => p.project),
      ['alpha'],
    );
    assert.equal(view.cluster, null);
    assert.equal(view.series.at(-1)!.pool, undefined, 'no pool-wide series');
    assert.equal(
      view.health.checks.some((c) => 'value' in c),
      false,
    );
    const other = await f.app.inject({ url: '/v1/pool/live?project=beta', headers: alpha });
    assert.equal(other.statusCode, 403);
    const none = await f.app.inject({ url: '/v1/pool/live' });
    assert.equal(none.statusCode, 401);
  });

  it('answers without a key on a server without keys (development mode), as the whole pool', async () => {
    const open = await serverFixture();
    try {
      const res = await open.app.inject({ url: '/v1/pool/live' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(json<Live>(res).scope, 'pool');
    } finally {
      await open.close();
    }
  });

  it("lists a page of the project's agents with usage, and an agent's recent runs", async () => {
    await run('alpha', 'support');
    const res = await f.app.inject({ url: '/v1/pool/live/agents?q=sup', headers: alpha });
    assert.equal(res.statusCode, 200, res.body);
    const page = json<{ data: { name: string; usage: { uses: number }; instance: unknown }[] }>(res);
    assert.deepEqual(
      page.data.map((a) => a.name),
      ['support'],
    );
    assert.equal(page.data[0]!.usage.uses, 1);
    assert.notEqual(page.data[0]!.instance, null);
    const stats = json<{ live: { recentRuns: { status: string }[] } }>(
      await f.app.inject({ url: '/v1/agents/support/stats', headers: alpha }),
    );
    assert.deepEqual(
      stats.live.recentRuns.map((r) => r.status),
      ['succeeded'],
    );
  });

  it('serves the page and its assets openly, with content types, revalidation and no outside sources', async () => {
    const page = await f.app.inject({ url: '/dashboard' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['cache-control'], 'no-cache');
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.doesNotMatch(page.body, /https?:\/\//, 'nothing loaded from elsewhere');
    const js = await f.app.inject({ url: '/dashboard/dashboard.js' });
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    const again = await f.app.inject({
      url: '/dashboard/dashboard.js',
      headers: { 'if-none-match': String(js.headers.etag) },
    });
    assert.equal(again.statusCode, 304);
    assert.match(
      String((await f.app.inject({ url: '/dashboard/dashboard.css' })).headers['content-type']),
      /^text\/css/,
    );
    assert.equal((await f.app.inject({ url: '/dashboard/nope.js' })).statusCode, 404);
  });
});

describe('agentpool top --once', () => {
  let f: Fixture;
  let url: string;
  before(async () => {
    f = await serverFixture({ adminKey: ADMIN });
    await f.pool.agents.create('default', { name: 'support' });
    await (
      await f.pool.runs.start('default', 'support', { input: 'hi' })
    ).result;
    await f.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`;
  });
  after(() => f.close());

  it('prints one frame of the live figures and exits', async () => {
    const out = await runCli(['top', '--once'], { AGENTPOOL_URL: url, AGENTPOOL_API_KEY: ADMIN });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^agentpool top — whole pool — /);
    assert.match(out.stdout, /\ninstances {2}1 \/ \d+ {3}by state: ready 1/);
    assert.match(out.stdout, /\nwindow {5}succeeded 1 {2}failed 0/);
    assert.match(out.stdout, /\nmoney /);
    const json = await runCli(['top', '--json'], { AGENTPOOL_URL: url, AGENTPOOL_API_KEY: ADMIN });
    assert.equal((JSON.parse(json.stdout) as Live).runs.succeeded, 1);
  });

  it('says what is wrong without a key', async () => {
    const out = await runCli(['top', '--once'], { AGENTPOOL_URL: url });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /UNAUTHENTICATED/);
  });
});

describe('the agents table over 100,000 agents on SQLite', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('answers a page, the next page and a search', async () => {
    let pool = await createAgentPool({ dataDir: tmp.dir, ttlSweepIntervalMs: 0 });
    await pool.agents.create('default', { name: 'template' });
    await pool.close();
    const db = new Database(join(tmp.dir, 'agentpool.db'));
    db.exec(`
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
      INSERT INTO agents (id, project, name, active_version, latest_version, spec, tier, ttl_seconds,
                          created_at, updated_at, last_used_at, expires_at)
      SELECT printf('agt_bulk%06d', i), project, printf('agent-%06d', i), active_version, latest_version,
             spec, tier, ttl_seconds, created_at, updated_at, last_used_at, expires_at
      FROM agents, n WHERE agents.name = 'template'`);
    db.close();
    pool = await createAgentPool({ dataDir: tmp.dir, ttlSweepIntervalMs: 0 });
    const app = await buildServer(pool);
    try {
      const get = async (query: string) => {
        const res = await app.inject({ url: `/v1/pool/live/agents?${query}` });
        assert.equal(res.statusCode, 200, res.body);
        return json<{ data: { name: string }[]; nextCursor: string | null }>(res);
      };
      const first = await get('limit=25');
      assert.equal(first.data.length, 25);
      assert.equal(first.data[0]!.name, 'agent-000001');
      const second = await get(`limit=25&cursor=${encodeURIComponent(first.nextCursor!)}`);
      assert.equal(second.data[0]!.name, 'agent-000026');
      const found = await get('limit=25&q=09999');
      assert.deepEqual(
        found.data.map((a) => a.name),
        [
          'agent-009999',
          'agent-099990',
          'agent-099991',
          'agent-099992',
          'agent-099993',
          'agent-099994',
          'agent-099995',
          'agent-099996',
          'agent-099997',
          'agent-099998',
          'agent-099999',
        ],
      );
      const none = await get('q=nothing-like-this');
      assert.deepEqual([none.data, none.nextCursor], [[], null]);
    } finally {
      await app.close();
      await pool.close();
    }
  });
});

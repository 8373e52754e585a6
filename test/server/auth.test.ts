import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { buildServer } from '../../src/server/app.ts';
import { json } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';

async function server(adminKey?: string) {
  const pool: AgentPool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
  const app: FastifyInstance = await buildServer(pool, adminKey === undefined ? {} : { adminKey });
  return { pool, app, close: async () => (await app.close(), await pool.close()) };
}

type Server = Awaited<ReturnType<typeof server>>;
const code = (res: { body: string }) => json<{ error: { code: string } }>(res).error.code;

describe('authentication', () => {
  let s: Server;
  afterEach(() => s.close());

  it('runs open in development mode while no admin key and no project key exist', async () => {
    s = await server();
    const res = await s.app.inject({ method: 'POST', url: '/v1/agents', payload: { name: 'open' } });
    assert.equal(res.statusCode, 201);
    assert.equal(json<{ project: string }>(res).project, 'default');
  });

  it('turns on once a project key is issued, even without an admin key', async () => {
    s = await server();
    await s.pool.projects.create({ id: 'alpha' });
    const { key } = await s.pool.projects.createKey('alpha');
    const anonymous = await s.app.inject({ url: '/v1/agents' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(code(anonymous), 'UNAUTHENTICATED');
    const keyed = await s.app.inject({ url: '/v1/agents', headers: { authorization: `Bearer ${key}` } });
    assert.equal(keyed.statusCode, 200);
  });

  it('with an admin key: 401 without a key or with a wrong one, health stays open, metrics do not', async () => {
    s = await server(ADMIN);
    assert.equal((await s.app.inject({ url: '/v1/agents' })).statusCode, 401);
    const wrong = await s.app.inject({ url: '/v1/agents', headers: { authorization: 'Bearer nope' } });
    assert.equal(code(wrong), 'UNAUTHENTICATED');
    assert.equal((await s.app.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal(
      (await s.app.inject({ url: '/metrics' })).statusCode,
      401,
      'every tenant’s figures are private',
    );
  });

  it('answers 403 FORBIDDEN to a project key on every project route (HEAD too) but its usage', async () => {
    s = await server(ADMIN);
    await s.pool.projects.create({ id: 'alpha' });
    const { key, info } = await s.pool.projects.createKey('alpha');
    const alpha = { authorization: `Bearer ${key}` };
    for (const [method, url] of [
      ['GET', '/v1/projects'],
      ['HEAD', '/v1/projects'],
      ['POST', '/v1/projects'],
      ['GET', '/v1/projects/alpha'],
      ['PATCH', '/v1/projects/alpha'],
      ['DELETE', '/v1/projects/alpha'],
      ['GET', '/v1/projects/alpha/keys'],
      ['POST', '/v1/projects/alpha/keys'],
      ['DELETE', `/v1/projects/alpha/keys/${info.id}`],
    ] as const) {
      const payload = method === 'POST' || method === 'PATCH' ? { payload: {} } : {};
      const res = await s.app.inject({ method, url, headers: alpha, ...payload });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      if (method !== 'HEAD') assert.equal(code(res), 'FORBIDDEN', `${method} ${url}`);
    }
    const usage = await s.app.inject({ url: '/v1/projects/alpha/usage', headers: alpha });
    assert.equal(usage.statusCode, 200, usage.body);
    assert.equal(await s.pool.projects.authenticate(key), 'alpha', 'the key was not revoked');
  });

  it('the admin key manages projects and keys; a project key may not; a revoked key stops working', async () => {
    s = await server(ADMIN);
    const admin = { authorization: `Bearer ${ADMIN}` };
    const created = await s.app.inject({
      method: 'POST',
      url: '/v1/projects',
      headers: admin,
      payload: { id: 'alpha' },
    });
    assert.equal(created.statusCode, 201);
    const dup = await s.app.inject({
      method: 'POST',
      url: '/v1/projects',
      headers: admin,
      payload: { id: 'alpha' },
    });
    assert.equal(code(dup), 'PROJECT_EXISTS');
    const issued = json<{ id: string; key: string; prefix: string }>(
      await s.app.inject({
        method: 'POST',
        url: '/v1/projects/alpha/keys',
        headers: admin,
        payload: { name: 'ci' },
      }),
    );
    assert.match(issued.key, /^ap_/);
    assert.equal(issued.prefix, issued.key.slice(0, 8));
    const listed = json<{ data: Record<string, unknown>[] }>(
      await s.app.inject({ url: '/v1/projects/alpha/keys', headers: admin }),
    );
    assert.equal(listed.data.length, 1);
    assert.ok(
      !('key' in (listed.data[0] ?? {})) && !('keyHash' in (listed.data[0] ?? {})),
      'secrets are never listed',
    );
    const alpha = { authorization: `Bearer ${issued.key}` };
    const forbidden = await s.app.inject({ url: '/v1/projects', headers: alpha });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(code(forbidden), 'FORBIDDEN');
    const agent = await s.app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: alpha,
      payload: { name: 'a1' },
    });
    assert.equal(json<{ project: string }>(agent).project, 'alpha');
    const viaAdmin = await s.app.inject({
      url: '/v1/agents/a1',
      headers: { ...admin, 'agentpool-project': 'alpha' },
    });
    assert.equal(viaAdmin.statusCode, 200, 'the admin acts in the project it names');
    const revoked = await s.app.inject({
      method: 'DELETE',
      url: `/v1/projects/alpha/keys/${issued.id}`,
      headers: admin,
    });
    assert.equal(revoked.statusCode, 204);
    assert.equal((await s.app.inject({ url: '/v1/agents', headers: alpha })).statusCode, 401);
  });
});

describe('project isolation: every route answers 404 for another project’s things', () => {
  let s: Server;
  let alpha: Record<string, string>;
  let beta: Record<string, string>;
  const ids = { agentId: '', threadId: '', runId: '' };

  beforeEach(async () => {
    s = await server(ADMIN);
    for (const id of ['alpha', 'beta']) await s.pool.projects.create({ id });
    alpha = { authorization: `Bearer ${(await s.pool.projects.createKey('alpha')).key}` };
    beta = { authorization: `Bearer ${(await s.pool.projects.createKey('beta')).key}` };
    const agent = json<{ id: string }>(
      await s.app.inject({ method: 'POST', url: '/v1/agents', headers: alpha, payload: { name: 'support' } }),
    );
    const thread = json<{ id: string }>(
      await s.app.inject({ method: 'POST', url: '/v1/threads', headers: alpha }),
    );
    const run = json<{ id: string; status: string }>(
      await s.app.inject({
        method: 'POST',
        url: '/v1/agents/support/runs',
        headers: alpha,
        payload: { input: 'hello', threadId: thread.id },
      }),
    );
    assert.equal(run.status, 'succeeded');
    Object.assign(ids, { agentId: agent.id, threadId: thread.id, runId: run.id });
  });
  afterEach(() => s.close());

  it('hides agents, threads, runs, instances and responses of project alpha from project beta', async () => {
    const { agentId, threadId, runId } = ids;
    const probes: [string, string, unknown?][] = [
      ['GET', '/v1/agents/support'],
      ['GET', `/v1/agents/${agentId}`],
      ['PATCH', '/v1/agents/support', { instructions: 'x' }],
      ['DELETE', `/v1/agents/${agentId}`],
      ['GET', '/v1/agents/support/versions'],
      ['POST', '/v1/agents/support/rollback', { version: 1 }],
      ['POST', '/v1/agents/support/runs', { input: 'hi' }],
      ['GET', `/v1/threads/${threadId}`],
      ['DELETE', `/v1/threads/${threadId}`],
      ['GET', `/v1/threads/${threadId}/messages`],
      ['GET', `/v1/threads/${threadId}/runs`],
      ['GET', `/v1/runs/${runId}`],
      ['GET', `/v1/runs/${runId}/events`],
      ['POST', `/v1/runs/${runId}/cancel`],
      ['GET', '/v1/pool/instances/support'],
      ['POST', '/v1/pool/instances/support/activate'],
      ['POST', '/v1/pool/instances/support/pause'],
      ['POST', '/v1/chat/completions', { model: 'support', messages: [{ role: 'user', content: 'hi' }] }],
      ['POST', '/v1/responses', { model: 'support', input: 'hi' }],
      ['POST', '/v1/responses', { model: 'support', input: 'hi', previous_response_id: `resp_${runId}` }],
    ];
    for (const [method, url, payload] of probes) {
      const res = await s.app.inject({
        method: method as 'GET',
        url,
        headers: beta,
        ...(payload !== undefined && { payload: payload as object }),
      });
      assert.equal(res.statusCode, 404, `${method} ${url} answered ${res.statusCode}: ${res.body}`);
    }
    const lists: [string, (body: unknown) => number][] = [
      ['/v1/agents', (b) => (b as { data: unknown[] }).data.length],
      ['/v1/pool/instances', (b) => (b as { data: unknown[] }).data.length],
    ];
    for (const [url, count] of lists) {
      assert.equal(count(json(await s.app.inject({ url, headers: beta }))), 0, `${url} leaks`);
    }
    // and alpha still sees everything
    assert.equal((await s.app.inject({ url: `/v1/runs/${runId}`, headers: alpha })).statusCode, 200);
    assert.equal((await s.app.inject({ url: '/v1/agents/support', headers: alpha })).statusCode, 200);
  });
});

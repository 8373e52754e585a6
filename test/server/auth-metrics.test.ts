import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { buildServer, type ServerOptions } from '../../src/server/app.ts';
import { json } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const METRICS = 'metrics-token-0123456789abcdef';

async function server(options: ServerOptions = {}) {
  const pool: AgentPool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
  const app: FastifyInstance = await buildServer(pool, options);
  return {
    pool,
    app,
    close: async () => {
      try {
        await app.close();
      } finally {
        await pool.close();
      }
    },
  };
}
type Server = Awaited<ReturnType<typeof server>>;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const code = (res: { body: string }) => json<{ error: { code: string } }>(res).error.code;

describe('/metrics access', () => {
  let s: Server;
  afterEach(() => s.close());

  it('stays open in development mode', async () => {
    s = await server();
    assert.equal((await s.app.inject({ url: '/metrics' })).statusCode, 200);
  });

  it('GET /v1/cluster answers the admin key only: a project key is 403, no key 401', async () => {
    s = await server({ adminKey: ADMIN });
    await s.pool.projects.create({ id: 'alpha' });
    const { key } = await s.pool.projects.createKey('alpha');
    assert.equal((await s.app.inject({ url: '/v1/cluster' })).statusCode, 401);
    const project = await s.app.inject({ url: '/v1/cluster', headers: bearer(key) });
    assert.equal(project.statusCode, 403);
    assert.equal(code(project), 'FORBIDDEN');
    assert.match(
      json<{ error: { message: string } }>(project).error.message,
      /the cluster view needs the admin key/,
    );
    const admin = await s.app.inject({ url: '/v1/cluster', headers: bearer(ADMIN) });
    assert.equal(admin.statusCode, 200);
    assert.equal(json<{ data: unknown[] }>(admin).data.length, 1);
  });

  it('with authentication on, answers only the admin key and the metrics token', async () => {
    s = await server({ adminKey: ADMIN, metricsToken: METRICS });
    await s.pool.projects.create({ id: 'alpha' });
    const { key } = await s.pool.projects.createKey('alpha');
    const anonymous = await s.app.inject({ url: '/metrics' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(code(anonymous), 'UNAUTHENTICATED');
    assert.match(json<{ error: { message: string } }>(anonymous).error.message, /metrics token/);
    assert.equal(
      (await s.app.inject({ url: '/metrics', headers: bearer(key) })).statusCode,
      401,
      'a project key',
    );
    assert.equal((await s.app.inject({ url: '/metrics', headers: bearer('x'.repeat(30)) })).statusCode, 401);
    for (const token of [ADMIN, METRICS]) {
      const res = await s.app.inject({ url: '/metrics?x=1', headers: bearer(token) });
      assert.equal(res.statusCode, 200);
      assert.match(res.body, /agentpool_runs_total/);
    }
    // Health and docs stay open.
    assert.equal((await s.app.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await s.app.inject({ url: '/openapi.json' })).statusCode, 200);
  });

  it('the metrics token opens nothing else', async () => {
    s = await server({ adminKey: ADMIN, metricsToken: METRICS });
    for (const url of ['/v1/agents', '/v1/projects', '/v1/pool/stats', '/v1/pool/stats/agents']) {
      const res = await s.app.inject({ url, headers: bearer(METRICS) });
      assert.equal(res.statusCode, 401, `${url}: ${res.body}`);
    }
  });

  it('turns private as soon as a project key exists, even without an admin key', async () => {
    s = await server({ metricsToken: METRICS });
    assert.equal((await s.app.inject({ url: '/metrics' })).statusCode, 200, 'development mode');
    await s.pool.projects.create({ id: 'alpha' });
    await s.pool.projects.createKey('alpha');
    assert.equal((await s.app.inject({ url: '/metrics' })).statusCode, 401);
    assert.equal((await s.app.inject({ url: '/metrics', headers: bearer(METRICS) })).statusCode, 200);
  });

  it('is read by a scraper over real HTTP with its bearer credentials, as Prometheus sends them', async () => {
    s = await server({ adminKey: ADMIN, metricsToken: METRICS });
    const address = await s.app.listen({ port: 0, host: '127.0.0.1' });
    const denied = await fetch(`${address}/metrics`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    // Prometheus' `authorization: { credentials: … }` sends "Authorization: Bearer <credentials>".
    const scraped = await fetch(`${address}/metrics`, { headers: bearer(METRICS) });
    assert.equal(scraped.status, 200);
    assert.match(scraped.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await scraped.text(), /# TYPE agentpool_runs_total counter/);
  });
});

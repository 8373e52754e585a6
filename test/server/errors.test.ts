import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { markDraining, resolveServerOptions } from '../../src/server/app.ts';
import { resolveHttpLimitsOptions } from '../../src/server/http-limits.ts';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

describe('server errors, options, health and OpenAPI', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('pins the option defaults and rejects bad values naming the field', () => {
    assert.deepEqual(resolveServerOptions(), {
      bodyLimit: 1024 * 1024,
      logger: null,
      project: 'default',
      adminKey: null,
      cors: null,
      http: resolveHttpLimitsOptions(), // pinned in http-limits.test.ts
      metricsToken: null,
    });
    assert.throws(
      () => resolveServerOptions({ adminKey: 'short' }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details['field'] === 'server.adminKey',
    );
    assert.throws(
      () => resolveServerOptions({ metricsToken: 'short' }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details['field'] === 'server.metricsToken',
    );
    assert.throws(
      () => resolveServerOptions({ bodyLimit: 0 }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details['field'] === 'server.bodyLimit',
    );
    assert.throws(
      () => resolveServerOptions({ project: 'Not A Slug' }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details['field'] === 'server.project',
    );
  });

  it('an unknown body field is 400 VALIDATION_FAILED naming it; a nested bad value names its path', async () => {
    f = await serverFixture();
    const unknown = await f.app.inject({
      method: 'POST',
      url: '/v1/agents',
      payload: { name: 'a', colour: 'red' },
    });
    assert.equal(unknown.statusCode, 400);
    const body = json<ErrorBody>(unknown);
    assert.equal(body.error.code, 'VALIDATION_FAILED');
    assert.equal(body.error.details['field'], 'colour');
    assert.match(body.error.message, /colour/);
    const nested = await f.app.inject({
      method: 'POST',
      url: '/v1/agents',
      payload: { name: 'a', labels: { team: 5 } },
    });
    assert.equal(json<ErrorBody>(nested).error.details['field'], 'labels.team');
    const missing = await f.app.inject({ method: 'POST', url: '/v1/agents', payload: { instructions: 'x' } });
    assert.equal(json<ErrorBody>(missing).error.details['field'], 'name');
    // The facade's own validation reaches the client the same way.
    const slug = await f.app.inject({ method: 'POST', url: '/v1/agents', payload: { name: 'Bad Name' } });
    assert.equal(slug.statusCode, 400);
    assert.equal(json<ErrorBody>(slug).error.details['field'], 'name');
  });

  it('malformed JSON is 400 naming the body; a non-JSON body is 415', async () => {
    f = await serverFixture();
    const broken = await f.app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: { 'content-type': 'application/json' },
      payload: '{"name":',
    });
    assert.equal(broken.statusCode, 400);
    assert.equal(json<ErrorBody>(broken).error.code, 'VALIDATION_FAILED');
    assert.equal(json<ErrorBody>(broken).error.details['field'], 'body');
    const text = await f.app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: { 'content-type': 'application/xml' },
      payload: '<agent name="a"/>',
    });
    assert.equal(text.statusCode, 415);
    assert.equal(json<ErrorBody>(text).error.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('a body over bodyLimit is 413 PAYLOAD_TOO_LARGE', async () => {
    f = await serverFixture({ bodyLimit: 1024 });
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/agents',
      payload: { name: 'big', instructions: 'x'.repeat(2048) },
    });
    assert.equal(res.statusCode, 413);
    assert.equal(json<ErrorBody>(res).error.code, 'PAYLOAD_TOO_LARGE');
    const small = await f.app.inject({ method: 'POST', url: '/v1/agents', payload: { name: 'small' } });
    assert.equal(small.statusCode, 201);
  });

  it('an unknown route is 404 NOT_FOUND in the error shape', async () => {
    f = await serverFixture();
    const res = await f.app.inject({ url: '/v1/nothing-here?x=1' });
    assert.equal(res.statusCode, 404);
    const body = json<ErrorBody>(res);
    assert.equal(body.error.code, 'NOT_FOUND');
    assert.deepEqual(body.error.details, { method: 'GET', path: '/v1/nothing-here' });
  });

  it('an unexpected error is 500 INTERNAL_ERROR without its message or stack', async () => {
    f = await serverFixture();
    f.app.get('/boom', () => {
      throw new Error('secret database password in /srv/app.ts:12');
    });
    const res = await f.app.inject({ url: '/boom' });
    assert.equal(res.statusCode, 500);
    assert.deepEqual(json(res), {
      error: { code: 'INTERNAL_ERROR', message: 'internal error', details: {} },
    });
    assert.doesNotMatch(res.body, /secret|srv|at /);
  });

  it('/healthz is ok; /readyz is ok until draining, and 503 when the store fails', async () => {
    f = await serverFixture();
    const health = await f.app.inject({ url: '/healthz' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(json(health), { status: 'ok' });
    assert.equal((await f.app.inject({ url: '/readyz' })).statusCode, 200);
    assert.equal(f.app.agentpool.draining, false);
    markDraining(f.app);
    assert.equal(f.app.agentpool.draining, true);
    const draining = await f.app.inject({ url: '/readyz' });
    assert.equal(draining.statusCode, 503);
    assert.deepEqual(json(draining), { status: 'draining' });
    assert.equal((await f.app.inject({ url: '/healthz' })).statusCode, 200, 'still alive while draining');

    await f.close();
    f = await serverFixture();
    await f.pool.stores.agents.close();
    const down = await f.app.inject({ url: '/readyz' });
    assert.equal(down.statusCode, 503);
    const body = json<{
      status: string;
      down: string[];
      error: string;
      dependencies: { name: string; ok: boolean }[];
    }>(down);
    assert.equal(body.status, 'unavailable');
    assert.deepEqual(body.down, ['memory'], 'names the dependency that does not answer');
    assert.equal(body.error, 'memory does not answer');
    assert.equal(body.dependencies[0]?.ok, false);
  });

  it('GET /v1/cluster lists a single node, itself, with its runs in flight and live instances', async () => {
    f = await serverFixture();
    const res = await f.app.inject({ url: '/v1/cluster' });
    assert.equal(res.statusCode, 200);
    const body = json<{ mode: string; node: string; data: Record<string, unknown>[] }>(res);
    assert.equal(body.mode, 'single');
    assert.equal(body.data.length, 1);
    assert.equal(body.data[0]?.['id'], body.node);
    assert.equal(body.data[0]?.['runsInFlight'], 0);
    assert.equal(body.data[0]?.['threadsHeld'], 0);
    assert.equal((body as { background?: unknown }).background, null, 'no queue on a single node');
    assert.equal(typeof body.data[0]?.['heartbeatAt'], 'number');
    assert.equal((await f.app.inject({ url: '/readyz' })).statusCode, 200);
  });

  it('serves an OpenAPI 3.1 document listing every route, and the docs UI', async () => {
    f = await serverFixture();
    const res = await f.app.inject({ url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = json<{
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
      components: { schemas: Record<string, unknown> };
    }>(res);
    assert.equal(doc.openapi, '3.1.0');
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const expected = [
      'GET /healthz',
      'GET /readyz',
      'POST /v1/agents',
      'GET /v1/agents',
      'PUT /v1/agents/{idOrName}',
      'GET /v1/agents/{idOrName}',
      'GET /v1/agents/{idOrName}/rollout',
      'PATCH /v1/agents/{idOrName}',
      'PATCH /v1/projects/{id}',
      'DELETE /v1/agents/{idOrName}',
      'GET /v1/flags',
      'GET /v1/flags/{name}',
      'PUT /v1/flags/{name}',
      'DELETE /v1/flags/{name}',
      'GET /v1/flags/{name}/history',
      'GET /v1/agents/{idOrName}/versions',
      'POST /v1/agents/{idOrName}/rollback',
      'POST /v1/agents/{idOrName}/rollout/abort',
      'POST /v1/agents/{idOrName}/rollout/promote',
      'POST /v1/agents/{idOrName}/runs',
      'POST /v1/threads',
      'GET /v1/threads/{id}',
      'DELETE /v1/threads/{id}',
      'GET /v1/threads/{id}/messages',
      'GET /v1/threads/{id}/runs',
      'PUT /v1/mcp-servers/{name}',
      'GET /v1/mcp-servers/{name}',
      'GET /v1/mcp-servers',
      'DELETE /v1/mcp-servers/{name}',
      'GET /v1/runs/{id}',
      'GET /v1/runs/{id}/events',
      'POST /v1/runs/{id}/cancel',
      'GET /v1/pool/stats',
      'GET /v1/pool/stats/agents',
      'GET /v1/pool/instances',
      'GET /v1/pool/instances/{agent}',
      'GET /v1/pool/instances/{agent}/recovery',
      'GET /v1/pool/live',
      'GET /v1/pool/live/agents',
      'GET /v1/pool/recovery',
      'GET /v1/tools',
      'POST /v1/tools/reload',
      'GET /v1/agents/{idOrName}/stats',
      'GET /v1/pool/activity',
      'POST /v1/pool/instances/{agent}/reset',
      'POST /v1/pool/instances/{agent}/{action}',
      'GET /v1/pool/health',
      'GET /metrics',
      'POST /v1/chat/completions',
      'POST /v1/responses',
      'GET /v1/responses/{id}',
      'GET /v1/models',
      'GET /v1/models/{id}',
      'POST /v1/projects',
      'GET /v1/projects',
      'GET /v1/projects/{id}',
      'DELETE /v1/projects/{id}',
      'POST /v1/projects/{id}/keys',
      'GET /v1/projects/{id}/keys',
      'GET /v1/projects/{id}/usage',
      'DELETE /v1/projects/{id}/keys/{keyId}',
      'GET /v1/cluster',
    ];
    assert.deepEqual([...routes].sort(), [...expected].sort());
    for (const name of ['Agent', 'AgentVersion', 'Thread', 'Message', 'Run', 'ErrorResponse', 'PoolHealth']) {
      assert.ok(name in doc.components.schemas, `component ${name}`);
    }
    assert.ok(doc.paths['/v1/agents']?.['post']?.requestBody, 'request bodies are documented');
    const ui = await f.app.inject({ url: '/docs' });
    assert.ok([200, 302].includes(ui.statusCode));
  });
});

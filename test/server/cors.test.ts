/**
 * CORS: off by default (no CORS header at all); with `cors.origins`, preflights are answered
 * before authentication, listed origins get the headers and others do not.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { resolveServerOptions, type ServerOptions } from '../../src/server/app.ts';
import { resolveCorsOptions } from '../../src/server/cors.ts';
import { serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

const APP = 'https://app.example.com';
const DEV = 'http://localhost:5173';
const EVIL = 'https://evil.example';
const ADMIN = 'admin-key-0123456789abcdef';

function preflight(origin: string, headers = 'authorization,content-type') {
  return {
    method: 'OPTIONS' as const,
    url: '/v1/agents/helper/runs',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': headers,
    },
  };
}

function corsHeaders(headers: Record<string, unknown>): string[] {
  return Object.keys(headers).filter((h) => h.startsWith('access-control-'));
}

describe('CORS', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  const server = async (options: ServerOptions) => (f = await serverFixture(options));

  it('is off by default: no CORS header on any answer, and no preflight route', async () => {
    const s = await server({});
    const get = await s.app.inject({ method: 'GET', url: '/v1/agents', headers: { origin: APP } });
    assert.equal(get.statusCode, 200);
    assert.deepEqual(corsHeaders(get.headers), []);
    const options = await s.app.inject(preflight(APP));
    assert.equal(options.statusCode, 404);
    assert.deepEqual(corsHeaders(options.headers), []);
  });

  it('answers the preflight of an allowed origin, before authentication', async () => {
    const s = await server({ cors: { origins: [APP, DEV] }, adminKey: ADMIN });
    const res = await s.app.inject(
      preflight(DEV, 'authorization,content-type,agentpool-project,last-event-id'),
    );
    assert.equal(res.statusCode, 204);
    assert.equal(res.headers['access-control-allow-origin'], DEV);
    const allowed = String(res.headers['access-control-allow-headers']).split(/,\s*/);
    for (const h of ['authorization', 'content-type', 'agentpool-project', 'last-event-id']) {
      assert.ok(allowed.includes(h), `${h} in ${allowed.join(',')}`);
    }
    assert.match(String(res.headers['access-control-allow-methods']), /POST/);
    assert.match(String(res.headers['access-control-allow-methods']), /DELETE/);
    assert.equal(res.headers['access-control-max-age'], '600');
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
  });

  it('adds the headers to a simple request of an allowed origin, exposing Retry-After', async () => {
    const s = await server({ cors: { origins: [APP] }, adminKey: ADMIN });
    const res = await s.app.inject({
      method: 'GET',
      url: '/v1/agents',
      headers: { origin: APP, authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['access-control-allow-origin'], APP);
    assert.match(String(res.headers['vary']), /Origin/i);
    assert.match(String(res.headers['access-control-expose-headers']), /retry-after/);
    // an error answer carries them too, so the page can read the error
    const unauthenticated = await s.app.inject({
      method: 'GET',
      url: '/v1/agents',
      headers: { origin: APP },
    });
    assert.equal(unauthenticated.statusCode, 401);
    assert.equal(unauthenticated.headers['access-control-allow-origin'], APP);
  });

  it('gives an origin that is not listed no CORS header, so the browser refuses', async () => {
    const s = await server({ cors: { origins: [APP] } });
    const pre = await s.app.inject(preflight(EVIL));
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    const get = await s.app.inject({ method: 'GET', url: '/v1/agents', headers: { origin: EVIL } });
    assert.equal(get.statusCode, 200);
    assert.equal(get.headers['access-control-allow-origin'], undefined);
  });

  it('allows any origin with ["*"]', async () => {
    const s = await server({ cors: { origins: ['*'] } });
    const res = await s.app.inject({ method: 'GET', url: '/v1/agents', headers: { origin: EVIL } });
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal((await s.app.inject(preflight(EVIL))).statusCode, 204);
  });
});

describe('cors options', () => {
  const fails = (cors: unknown, field: string, message: RegExp) =>
    assert.throws(
      () => resolveServerOptions({ cors } as ServerOptions),
      (e) =>
        isAgentPoolError(e, 'VALIDATION_FAILED') && e.details['field'] === field && message.test(e.message),
    );

  it('is off (null) by default and keeps valid origins once each', () => {
    assert.equal(resolveServerOptions().cors, null);
    assert.deepEqual(resolveCorsOptions({ origins: [APP, DEV, APP, 'http://127.0.0.1:8080'] }), {
      origins: [APP, DEV, 'http://127.0.0.1:8080'],
    });
    assert.deepEqual(resolveCorsOptions({ origins: ['*'] }), { origins: '*' });
  });

  it('rejects what a browser would never send as Origin, naming the entry', () => {
    fails({ origins: [APP, 'app.example.com'] }, 'server.cors.origins[1]', /must be an origin like/);
    fails({ origins: ['ftp://files.example.com'] }, 'server.cors.origins[0]', /must be an origin like/);
    fails({ origins: ['https://app.example.com/path'] }, 'server.cors.origins[0]', /no path/);
    fails(
      { origins: ['https://app.example.com/'] },
      'server.cors.origins[0]',
      /"https:\/\/app\.example\.com"/,
    );
    fails({ origins: ['https://App.Example.com:443'] }, 'server.cors.origins[0]', /as browsers send it/);
    fails({ origins: [5] }, 'server.cors.origins[0]', /got 5/);
  });

  it('rejects an empty list, "*" among others, a non-object and unknown keys', () => {
    fails({ origins: [] }, 'server.cors.origins', /non-empty list/);
    fails({}, 'server.cors.origins', /non-empty list/);
    fails({ origins: ['*', APP] }, 'server.cors.origins', /list it alone/);
    fails(['*'], 'server.cors', /must be an object/);
    fails({ origins: [APP], credentials: true }, 'server.cors.credentials', /not a known field/);
  });
});

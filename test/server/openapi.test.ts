/**
 * The OpenAPI document declares how to authenticate: an HTTP bearer scheme required by every
 * operation except the probes, so the docs UI's "Authorize" button takes a key and "Try it out"
 * sends it as `Authorization: Bearer <key>`.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface OpenApiDoc {
  security?: Record<string, string[]>[];
  components: { securitySchemes?: Record<string, { type: string; scheme?: string; description?: string }> };
  paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
}

const ADMIN = 'admin-key-0123456789abcdef';

describe('the OpenAPI document', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  async function document(): Promise<OpenApiDoc> {
    f = await serverFixture({ adminKey: ADMIN, cors: { origins: ['https://app.example.com'] } });
    const res = await f.app.inject({ url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    return json<OpenApiDoc>(res);
  }

  it('declares an HTTP bearer security scheme and requires it by default', async () => {
    const doc = await document();
    const scheme = doc.components.securitySchemes?.['bearerAuth'];
    assert.equal(scheme?.type, 'http');
    assert.equal(scheme?.scheme, 'bearer');
    assert.match(scheme?.description ?? '', /API key/);
    assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
  });

  it('opens /healthz and /readyz (security: []); every other operation, /metrics included, needs the key', async () => {
    const doc = await document();
    const open: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (operation.security === undefined) continue; // inherits the document's bearer requirement
        assert.deepEqual(operation.security, [], `${method} ${path} overrides security`);
        open.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(open.sort(), ['GET /healthz', 'GET /readyz']);
    assert.equal(doc.paths['/metrics']?.['get']?.security, undefined);
    // the docs, the document itself and the CORS preflight route are not operations
    for (const path of ['/docs', '/openapi.json', '*', '/*']) assert.equal(doc.paths[path], undefined, path);
  });

  it('matches what the server enforces: the open probes answer without a key, an API route needs one', async () => {
    await document();
    assert.ok(f !== undefined);
    assert.equal((await f.app.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await f.app.inject({ url: '/readyz' })).statusCode, 200);
    assert.equal((await f.app.inject({ url: '/v1/agents' })).statusCode, 401);
    const authorized = await f.app.inject({
      url: '/v1/agents',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(authorized.statusCode, 200);
  });
});

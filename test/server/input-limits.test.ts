/**
 * Bad input at the HTTP edge: bodies nested thousands of levels deep are refused before they are
 * parsed (400, never a 500 from a stack overflow), and the core's caps (metadata size and depth,
 * input length) reach the client as 400 VALIDATION_FAILED naming the field.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ServerOptions } from '../../src/server/app.ts';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

/** `{"a":{"a":…1…}}` as JSON text, `levels` objects deep. */
const nestedText = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

describe('bad input at the HTTP edge', () => {
  let f: Fixture;
  async function start(options: ServerOptions = {}) {
    f = await serverFixture(options);
    await f.pool.agents.create('default', { name: 'echo' });
  }
  beforeEach(() => start());
  afterEach(() => f.close());

  const send = (method: 'POST' | 'PUT', url: string, body: string) =>
    f.app.inject({ method, url, payload: body, headers: { 'content-type': 'application/json' } });

  it('metadata nested 5,000 deep (a 30 KB body) answers 400 naming body on every route, never 500', async () => {
    const deep = nestedText(5000);
    const cases: [method: 'POST' | 'PUT', url: string, body: string][] = [
      ['POST', '/v1/threads', `{"metadata":${deep}}`],
      ['POST', '/v1/agents/echo/runs', `{"input":"hi","metadata":${deep}}`],
      ['POST', '/v1/projects', `{"id":"deep","metadata":${deep}}`],
      ['PUT', '/v1/agents/deep', `{"metadata":${deep}}`],
      ['POST', '/v1/agents', `{"name":"deep","metadata":${deep}}`],
      ['POST', '/v1/chat/completions', `{"model":"echo","messages":[${deep}]}`],
    ];
    for (const [method, url, body] of cases) {
      const res = await send(method, url, body);
      assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
      const error = json<ErrorBody>(res).error;
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(error.details['field'], 'body');
      assert.match(error.message, /deeper than 64 levels/);
    }
    assert.equal((await f.pool.threads.create('default')).messageCount, 0, 'the server still serves');
  });

  it('the depth limit is an option; nesting within it passes the edge and meets the core cap on metadata', async () => {
    const within = await send('POST', '/v1/threads', `{"metadata":${nestedText(40)}}`);
    assert.equal(within.statusCode, 400);
    assert.equal(
      json<ErrorBody>(within).error.details['field'],
      'metadata',
      'refused by the core, not the edge',
    );
    assert.equal((await send('POST', '/v1/threads', `{"metadata":${nestedText(10)}}`)).statusCode, 201);
    await f.close();
    await start({ http: { maxJsonDepth: 3 } });
    const res = await send('POST', '/v1/threads', `{"metadata":${nestedText(3)}}`);
    assert.equal(res.statusCode, 400);
    assert.match(json<ErrorBody>(res).error.message, /deeper than 3 levels/);
  });

  it('run metadata over 16 KiB answers 400 naming metadata, like agents and threads', async () => {
    const metadata = { blob: 'x'.repeat(20_000) };
    for (const [url, body] of [
      ['/v1/agents/echo/runs', { input: 'hi', metadata }],
      ['/v1/threads', { metadata }],
      ['/v1/agents', { name: 'big', metadata }],
      ['/v1/projects', { id: 'big', metadata }],
    ] as const) {
      const res = await f.app.inject({ method: 'POST', url, payload: body });
      assert.equal(res.statusCode, 400, url);
      const error = json<ErrorBody>(res).error;
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(error.details['field'], 'metadata', url);
    }
  });

  it('a run input over 100,000 characters answers 400 naming input', async () => {
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/agents/echo/runs',
      payload: { input: 'x'.repeat(100_001) },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(json<ErrorBody>(res).error.details['field'], 'input');
  });

  it('keeps the prototype-poisoning protection of fastify’s JSON parser', async () => {
    const res = await send('POST', '/v1/threads', '{"metadata":{"__proto__":{"polluted":true}}}');
    assert.equal(res.statusCode, 400);
    assert.equal(json<ErrorBody>(res).error.code, 'VALIDATION_FAILED');
    assert.equal(json<ErrorBody>(res).error.details['field'], 'body', 'refused by the parser');
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    const broken = await send('POST', '/v1/threads', '{"metadata":');
    assert.equal(broken.statusCode, 400);
    assert.equal(json<ErrorBody>(broken).error.details['field'], 'body');
  });
});

/**
 * The server while it drains (shutting down): it keeps serving, says it is not ready, refuses new
 * runs with 503 SHUTTING_DOWN so clients retry elsewhere, and lets the runs it holds finish.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { RUN_STARTING_ROUTES } from '../../src/server/app.ts';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

describe('a draining server', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  async function withAgent(model = 'demo/echo'): Promise<Fixture> {
    f = await serverFixture();
    const put = await f.app.inject({
      method: 'PUT',
      url: '/v1/agents/helper',
      payload: { instructions: 'Help.', model },
    });
    assert.equal(put.statusCode, 201, put.body);
    return f;
  }

  it('answers /readyz with 503 draining while /healthz stays ok', async () => {
    const s = await withAgent();
    assert.equal((await s.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
    s.app.agentpool.drain();
    assert.equal(s.app.agentpool.draining, true);
    const ready = await s.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(json(ready), { status: 'draining' });
    assert.equal((await s.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });

  it('refuses a new run with 503 SHUTTING_DOWN, Retry-After and Connection: close, and records nothing', async () => {
    const s = await withAgent();
    s.app.agentpool.drain();
    const refused = await s.app.inject({
      method: 'POST',
      url: '/v1/agents/helper/runs',
      payload: { input: 'hello' },
    });
    assert.equal(refused.statusCode, 503);
    const body = json<ErrorBody>(refused);
    assert.equal(body.error.code, 'SHUTTING_DOWN');
    assert.match(body.error.message, /shutting down/);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.headers['connection'], 'close');
    assert.equal(s.pool.runs.activeCount, 0);
  });

  it('refuses every route that starts a run, the OpenAI-compatible ones included', async () => {
    const s = await withAgent();
    s.app.agentpool.drain();
    const bodies: Record<string, unknown> = {
      '/v1/agents/:idOrName/runs': { input: 'hello' },
      '/v1/chat/completions': { model: 'helper', messages: [{ role: 'user', content: 'hello' }] },
      '/v1/responses': { model: 'helper', input: 'hello' },
    };
    assert.deepEqual(
      [...RUN_STARTING_ROUTES].map((r) => r.split(' ')[1]),
      Object.keys(bodies),
      'every run-starting route has a case here',
    );
    for (const [route, payload] of Object.entries(bodies)) {
      const url = route.replace(':idOrName', 'helper');
      const res = await s.app.inject({ method: 'POST', url, payload: payload as object });
      assert.equal(res.statusCode, 503, `${url}: ${res.body}`);
      assert.match(res.body, /SHUTTING_DOWN/, url);
    }
  });

  it('still serves every other request: reads, writes, a run record', async () => {
    const s = await withAgent();
    const before = await s.app.inject({
      method: 'POST',
      url: '/v1/agents/helper/runs',
      payload: { input: 'hello' },
    });
    assert.equal(before.statusCode, 200);
    const runId = json<{ id: string }>(before).id;
    s.app.agentpool.drain();
    assert.equal((await s.app.inject({ method: 'GET', url: '/v1/agents' })).statusCode, 200);
    assert.equal((await s.app.inject({ method: 'GET', url: `/v1/runs/${runId}` })).statusCode, 200);
    const patch = await s.app.inject({
      method: 'PATCH',
      url: '/v1/agents/helper',
      payload: { instructions: 'Help more.' },
    });
    assert.equal(patch.statusCode, 200);
    assert.equal((await s.app.inject({ method: 'POST', url: '/v1/threads', payload: {} })).statusCode, 201);
  });

  it('lets a run started before the drain finish and answer its request', async () => {
    const s = await withAgent('slow/x');
    const pending = s.app.inject({ method: 'POST', url: '/v1/agents/helper/runs', payload: { input: 'hi' } });
    await s.slow.started;
    s.app.agentpool.drain();
    s.slow.release();
    const res = await pending;
    assert.equal(res.statusCode, 200);
    assert.equal(json<{ status: string }>(res).status, 'succeeded');
  });
});

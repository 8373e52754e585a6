import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface Instance {
  name: string;
  state: string;
  version: number;
  leases: number;
  pinned: boolean;
}

describe('pool routes', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await serverFixture();
    await f.pool.agents.create('default', { name: 'support' });
    await f.pool.agents.create('other', { name: 'hidden' });
  });
  afterEach(() => f.close());

  const post = (url: string) => f.app.inject({ method: 'POST', url });
  const get = (url: string) => f.app.inject({ method: 'GET', url });
  const code = (res: { body: string }) => json<{ error: { code: string } }>(res).error.code;

  it('activates, lists, shows, pauses, resumes and deactivates an agent instance', async () => {
    const activated = await post('/v1/pool/instances/support/activate');
    assert.equal(activated.statusCode, 200);
    assert.equal(json<Instance>(activated).state, 'ready');
    const list = json<{ data: Instance[] }>(await get('/v1/pool/instances'));
    assert.deepEqual(
      list.data.map((i) => i.name),
      ['support'],
    );
    assert.equal(json<Instance>(await get('/v1/pool/instances/support')).version, 1);
    assert.equal(json<Instance>(await post('/v1/pool/instances/support/pause')).state, 'paused');
    const run = await f.app.inject({
      method: 'POST',
      url: '/v1/agents/support/runs',
      payload: { input: 'hi' },
    });
    assert.equal(json<{ status: string; error: { code: string } }>(run).error.code, 'AGENT_PAUSED');
    assert.equal(json<Instance>(await post('/v1/pool/instances/support/resume')).state, 'ready');
    assert.equal((await post('/v1/pool/instances/support/deactivate')).statusCode, 204);
    const gone = await get('/v1/pool/instances/support');
    assert.equal(gone.statusCode, 404);
    assert.equal(code(gone), 'INSTANCE_NOT_FOUND');
    assert.equal(code(await post('/v1/pool/instances/support/deactivate')), 'INSTANCE_NOT_FOUND');
  });

  it("never shows or touches another project's agents", async () => {
    await f.pool.instances.prewarm('other', 'hidden');
    assert.deepEqual(json<{ data: Instance[] }>(await get('/v1/pool/instances')).data, []);
    assert.equal(code(await get('/v1/pool/instances/hidden')), 'INSTANCE_NOT_FOUND');
    assert.equal(code(await post('/v1/pool/instances/hidden/activate')), 'AGENT_NOT_FOUND');
  });

  it('reports pool statistics', async () => {
    await f.app.inject({ method: 'POST', url: '/v1/agents/support/runs', payload: { input: 'hi' } });
    const stats = json<{
      activations: number;
      active: number;
      byState: Record<string, number>;
      policy: { name: string };
    }>(await get('/v1/pool/stats'));
    assert.equal(stats.activations, 1);
    assert.equal(stats.active, 1);
    assert.equal(stats.byState.ready, 1);
    assert.equal(stats.policy.name, 'tinylfu');
  });

  it('rejects an unknown action with 400 naming the field', async () => {
    const res = await post('/v1/pool/instances/support/explode');
    assert.equal(res.statusCode, 400);
    assert.equal(code(res), 'VALIDATION_FAILED');
  });
});

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface AgentBody {
  id: string;
  name: string;
  project: string;
  activeVersion: number;
  latestVersion: number;
  spec: Record<string, unknown>;
}

describe('agent routes', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await serverFixture();
  });
  afterEach(() => f.close());

  const create = (payload: Record<string, unknown>, query = '') =>
    f.app.inject({ method: 'POST', url: `/v1/agents${query}`, payload });

  it('POST /v1/agents creates an agent (201) in the server project with defaults applied', async () => {
    const res = await create({ name: 'support', instructions: 'Be helpful.' });
    assert.equal(res.statusCode, 201);
    const agent = json<AgentBody>(res);
    assert.equal(agent.name, 'support');
    assert.equal(agent.project, 'default');
    assert.equal(agent.activeVersion, 1);
    assert.equal(agent.spec['model'], 'demo/assistant');
    assert.equal((await f.pool.agents.get('default', 'support')).id, agent.id);
  });

  it('POST /v1/agents answers 409 AGENT_EXISTS for a taken name, or the existing agent with ifExists=return', async () => {
    const first = json<AgentBody>(await create({ name: 'support' }));
    const again = await create({ name: 'support', instructions: 'other' });
    assert.equal(again.statusCode, 409);
    assert.equal(json<{ error: { code: string } }>(again).error.code, 'AGENT_EXISTS');
    const returned = await create({ name: 'support', instructions: 'other' }, '?ifExists=return');
    assert.equal(returned.statusCode, 200);
    assert.equal(json<AgentBody>(returned).id, first.id);
    assert.equal(json<AgentBody>(returned).spec['instructions'], '', 'the existing agent is not changed');
    const bad = await create({ name: 'other' }, '?ifExists=replace');
    assert.equal(bad.statusCode, 400);
  });

  it('PUT /v1/agents/{name} applies: 201 created, 200 updated, 200 unchanged', async () => {
    const put = (payload: Record<string, unknown>) =>
      f.app.inject({ method: 'PUT', url: '/v1/agents/support', payload });
    const created = await put({ instructions: 'v1' });
    assert.equal(created.statusCode, 201);
    assert.equal(json(created)['result'], 'created');
    const updated = await put({ instructions: 'v2' });
    assert.equal(updated.statusCode, 200);
    assert.equal(json(updated)['result'], 'updated');
    assert.equal(json<{ agent: AgentBody }>(updated).agent.activeVersion, 2);
    const unchanged = await put({ instructions: 'v2', name: 'support' });
    assert.equal(unchanged.statusCode, 200);
    assert.equal(json(unchanged)['result'], 'unchanged');
    const mismatch = await put({ name: 'other' });
    assert.equal(mismatch.statusCode, 400);
    assert.equal(json<{ error: { details: { field: string } } }>(mismatch).error.details.field, 'name');
  });

  it('GET /v1/agents pages with limit and cursor, and filters by label (repeated or comma-separated)', async () => {
    await create({ name: 'a', labels: { team: 'x', env: 'prod' } });
    await create({ name: 'b', labels: { team: 'x', env: 'dev' } });
    await create({ name: 'c', labels: { team: 'y' } });
    const first = json<{ data: AgentBody[]; nextCursor: string }>(
      await f.app.inject({ url: '/v1/agents?limit=2' }),
    );
    assert.deepEqual(
      first.data.map((a) => a.name),
      ['a', 'b'],
    );
    assert.equal(typeof first.nextCursor, 'string');
    const second = json<{ data: AgentBody[]; nextCursor: string | null }>(
      await f.app.inject({ url: `/v1/agents?limit=2&cursor=${encodeURIComponent(first.nextCursor)}` }),
    );
    assert.deepEqual(
      second.data.map((a) => a.name),
      ['c'],
    );
    assert.equal(second.nextCursor, null);
    const names = async (query: string) =>
      json<{ data: AgentBody[] }>(await f.app.inject({ url: `/v1/agents?${query}` })).data.map((a) => a.name);
    assert.deepEqual(await names('label=team=x'), ['a', 'b']);
    assert.deepEqual(await names('label=team=x&label=env=prod'), ['a']);
    assert.deepEqual(await names('label=team=x,env=dev'), ['b']);
    const bad = await f.app.inject({ url: '/v1/agents?label=team' });
    assert.equal(bad.statusCode, 400);
    assert.equal(json<{ error: { details: { field: string } } }>(bad).error.details.field, 'label');
  });

  it('GET /v1/agents/{idOrName} finds an agent by name and by id; 404 AGENT_NOT_FOUND otherwise', async () => {
    const agent = json<AgentBody>(await create({ name: 'support' }));
    const byName = await f.app.inject({ url: '/v1/agents/support' });
    assert.equal(byName.statusCode, 200);
    assert.equal(json<AgentBody>(byName).id, agent.id);
    const byId = await f.app.inject({ url: `/v1/agents/${agent.id}` });
    assert.equal(json<AgentBody>(byId).name, 'support');
    const missing = await f.app.inject({ url: '/v1/agents/nobody' });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(Object.keys(json<{ error: object }>(missing).error).sort(), [
      'code',
      'details',
      'message',
    ]);
    assert.equal(json<{ error: { code: string } }>(missing).error.code, 'AGENT_NOT_FOUND');
  });

  it('PATCH /v1/agents/{idOrName} makes a version only when something changed; null resets a field', async () => {
    await create({ name: 'support', maxSteps: 3 });
    const patch = (payload: Record<string, unknown>) =>
      f.app.inject({ method: 'PATCH', url: '/v1/agents/support', payload });
    const changed = await patch({ instructions: 'new' });
    assert.equal(changed.statusCode, 200);
    assert.equal(json(changed)['changed'], true);
    assert.equal(json<{ agent: AgentBody }>(changed).agent.activeVersion, 2);
    const same = await patch({ instructions: 'new' });
    assert.equal(json(same)['changed'], false);
    const reset = json<{ agent: AgentBody }>(await patch({ maxSteps: null }));
    assert.equal(reset.agent.spec['maxSteps'], 10);
    const unknown = await patch({ colour: 'red' });
    assert.equal(unknown.statusCode, 400);
    assert.equal(json<{ error: { details: { field: string } } }>(unknown).error.details.field, 'colour');
  });

  it('DELETE /v1/agents/{idOrName} answers 204, then the agent is gone (404)', async () => {
    await create({ name: 'support' });
    const res = await f.app.inject({ method: 'DELETE', url: '/v1/agents/support' });
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assert.equal((await f.app.inject({ url: '/v1/agents/support' })).statusCode, 404);
    assert.equal((await f.app.inject({ method: 'DELETE', url: '/v1/agents/support' })).statusCode, 404);
  });

  it('GET versions lists newest first; POST rollback re-activates a version (404 VERSION_NOT_FOUND for a missing one)', async () => {
    await create({ name: 'support', instructions: 'one' });
    await f.app.inject({ method: 'PATCH', url: '/v1/agents/support', payload: { instructions: 'two' } });
    const versions = await f.app.inject({ url: '/v1/agents/support/versions' });
    assert.equal(versions.statusCode, 200);
    assert.deepEqual(
      json<{ data: { version: number; spec: { instructions: string } }[] }>(versions).data.map((v) => [
        v.version,
        v.spec.instructions,
      ]),
      [
        [2, 'two'],
        [1, 'one'],
      ],
    );
    const rolled = await f.app.inject({
      method: 'POST',
      url: '/v1/agents/support/rollback',
      payload: { version: 1 },
    });
    assert.equal(rolled.statusCode, 200);
    assert.equal(json<AgentBody>(rolled).activeVersion, 1);
    assert.equal(json<AgentBody>(rolled).spec['instructions'], 'one');
    const missing = await f.app.inject({
      method: 'POST',
      url: '/v1/agents/support/rollback',
      payload: { version: 9 },
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(json<{ error: { code: string } }>(missing).error.code, 'VERSION_NOT_FOUND');
    const bad = await f.app.inject({
      method: 'POST',
      url: '/v1/agents/support/rollback',
      payload: { version: '1' },
    });
    assert.equal(bad.statusCode, 400, 'a body is not coerced: "1" is not an integer');
    assert.equal(json<{ error: { details: { field: string } } }>(bad).error.details.field, 'version');
  });

  it('acts in the configured project only', async () => {
    await f.close();
    f = await serverFixture({ project: 'acme' });
    await f.pool.agents.create('default', { name: 'elsewhere' });
    assert.equal(json<AgentBody>(await create({ name: 'mine' })).project, 'acme');
    assert.equal((await f.app.inject({ url: '/v1/agents/elsewhere' })).statusCode, 404);
    const list = json<{ data: AgentBody[] }>(await f.app.inject({ url: '/v1/agents' }));
    assert.deepEqual(
      list.data.map((a) => a.name),
      ['mine'],
    );
  });
});

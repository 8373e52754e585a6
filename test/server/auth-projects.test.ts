import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryProjectStore } from '../../src/store/memory-projects.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import { buildServer } from '../../src/server/app.ts';
import { json } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };

/** A project store that counts project reads, to see what the existence cache saves. */
class CountingProjectStore extends MemoryProjectStore {
  reads = 0;
  override async getProject(id: string) {
    this.reads++;
    return super.getProject(id);
  }
}

async function server() {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const projects = new CountingProjectStore();
  const pool: AgentPool = await createAgentPool({
    store: { agents: new MemoryAgentStore(), runs: new MemoryRunStore(), projects },
    ttlSweepIntervalMs: 0,
    clock,
  });
  const app: FastifyInstance = await buildServer(pool, { adminKey: ADMIN });
  return {
    pool,
    app,
    clock,
    projects,
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
const code = (res: { body: string }) => json<{ error: { code: string } }>(res).error.code;

describe('acting in a project', () => {
  let s: Server;
  let alphaKey: Record<string, string>;
  beforeEach(async () => {
    s = await server();
    for (const id of ['alpha', 'beta']) await s.pool.projects.create({ id });
    alphaKey = { authorization: `Bearer ${(await s.pool.projects.createKey('alpha')).key}` };
  });
  afterEach(() => s.close());

  const as = (headers: Record<string, string>, project?: string) => ({
    ...headers,
    ...(project !== undefined && { 'agentpool-project': project }),
  });

  it('refuses the admin acting in a project that does not exist (404 PROJECT_NOT_FOUND), and creates nothing', async () => {
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: as(admin, 'alpah'),
      payload: { name: 'typo' },
    });
    assert.equal(res.statusCode, 404, res.body);
    assert.equal(code(res), 'PROJECT_NOT_FOUND');
    assert.equal(json<{ error: { details: { project: string } } }>(res).error.details.project, 'alpah');
    assert.equal(await s.pool.agents.count('alpah'), 0);
    const ok = await s.app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: as(admin, 'alpha'),
      payload: { name: 'right' },
    });
    assert.equal(ok.statusCode, 201);
    assert.equal(json<{ project: string }>(ok).project, 'alpha');
  });

  it('refuses a project key naming another project with 403 FORBIDDEN; naming its own is fine', async () => {
    const other = await s.app.inject({ url: '/v1/agents', headers: as(alphaKey, 'beta') });
    assert.equal(other.statusCode, 403, other.body);
    assert.equal(code(other), 'FORBIDDEN');
    const unknown = await s.app.inject({ url: '/v1/agents', headers: as(alphaKey, 'nope') });
    assert.equal(unknown.statusCode, 403, 'the same answer whether or not the other project exists');
    const own = await s.app.inject({ url: '/v1/agents', headers: as(alphaKey, 'alpha') });
    assert.equal(own.statusCode, 200);
    const bad = await s.app.inject({ url: '/v1/agents', headers: as(admin, 'Not A Slug') });
    assert.equal(bad.statusCode, 400);
    assert.equal(
      json<{ error: { details: { field: string } } }>(bad).error.details.field,
      'agentpool-project',
    );
  });

  it('reads whether a project exists at most every few seconds, and forgets a deleted one at once', async () => {
    const list = () => s.app.inject({ url: '/v1/agents', headers: as(admin, 'beta') });
    assert.equal((await list()).statusCode, 200);
    const reads = s.projects.reads;
    for (let i = 0; i < 20; i++) assert.equal((await list()).statusCode, 200);
    assert.equal(s.projects.reads, reads, 'answered from the cache');
    s.clock.advance(10_000);
    await list();
    assert.equal(s.projects.reads, reads + 1, 'read again once the cached answer is old');
    const deleted = await s.app.inject({ method: 'DELETE', url: '/v1/projects/beta', headers: admin });
    assert.equal(deleted.statusCode, 200, deleted.body);
    assert.equal(code(await list()), 'PROJECT_NOT_FOUND', 'no cached "exists" outlives the deletion');
    await s.app.inject({ method: 'POST', url: '/v1/projects', headers: admin, payload: { id: 'beta' } });
    assert.equal((await list()).statusCode, 200, 'nor a cached "missing" a creation');
  });

  it('lists the default project, which has usage like any other', async () => {
    const listed = json<{ data: { id: string }[] }>(
      await s.app.inject({ url: '/v1/projects', headers: admin }),
    );
    assert.deepEqual(
      listed.data.map((p) => p.id),
      ['alpha', 'beta', 'default'],
    );
    const usage = await s.app.inject({ url: '/v1/projects/default/usage', headers: admin });
    assert.equal(usage.statusCode, 200, usage.body);
    const project = await s.app.inject({ url: '/v1/projects/default', headers: admin });
    assert.equal(json<{ id: string }>(project).id, 'default');
  });
});

describe('the default project record', () => {
  it('is created once when pools start, however many share the store', async () => {
    const projects = new MemoryProjectStore();
    const stores = { agents: new MemoryAgentStore(), runs: new MemoryRunStore(), projects };
    const pools = await Promise.all(
      [1, 2, 3].map(() => createAgentPool({ store: stores, ttlSweepIntervalMs: 0 })),
    );
    try {
      const listed = await projects.listProjects({ limit: 10 });
      assert.deepEqual(
        listed.data.map((p) => p.id),
        ['default'],
      );
      await projects.setLimits('default', { quotas: { maxAgents: 5 } });
      pools.push(await createAgentPool({ store: stores, ttlSweepIntervalMs: 0 }));
      assert.deepEqual(
        (await projects.getProject('default'))?.limits,
        { quotas: { maxAgents: 5 } },
        'kept as it is',
      );
    } finally {
      // Each pool closes the stores it was given; closing a memory store twice is harmless.
      for (const pool of pools) await pool.close();
    }
  });
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryProjectStore } from '../../src/store/memory-projects.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import { buildServer } from '../../src/server/app.ts';
import { runRecord } from '../support/run-record.ts';
import { tempDir } from '../support/temp-dir.ts';
import { json, serverFixture } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}
interface Deleted {
  project: string;
  deleted: { agents: number; threads: number; messages: number; runs: number; keys: number };
}

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
type Inject = Fixture['app']['inject'];

/** Helpers over one server: requests as the admin or as a project key. */
function client(inject: Inject) {
  const as = (headers: Record<string, string>) => ({
    get: (url: string) => inject({ url, headers }),
    post: (url: string, payload?: object) =>
      inject({ method: 'POST', url, headers, ...(payload !== undefined && { payload }) }),
    patch: (url: string, payload: object) => inject({ method: 'PATCH', url, headers, payload }),
    delete: (url: string) => inject({ method: 'DELETE', url, headers }),
  });
  return {
    admin: as(admin),
    key: (key: string) => as({ authorization: `Bearer ${key}` }),
    /** Creates a project and returns a key of it. */
    async project(id: string): Promise<string> {
      const created = await as(admin).post('/v1/projects', { id });
      assert.equal(created.statusCode, 201, created.body);
      return json<{ key: string }>(await as(admin).post(`/v1/projects/${id}/keys`, {})).key;
    },
  };
}

/** Fills a project through the API: two agents (one with two versions), a thread with two runs, a stateless run, a live instance. */
async function fill(c: ReturnType<typeof client>, key: string) {
  const k = c.key(key);
  assert.equal((await k.post('/v1/agents', { name: 'support' })).statusCode, 201);
  assert.equal((await k.post('/v1/agents', { name: 'helper' })).statusCode, 201);
  assert.equal((await k.patch('/v1/agents/helper', { instructions: 'v2' })).statusCode, 200);
  const thread = json<{ id: string }>(await k.post('/v1/threads')).id;
  const runs: string[] = [];
  for (const input of ['hello', 'again']) {
    const run = json<{ id: string; status: string }>(
      await k.post('/v1/agents/support/runs', { input, threadId: thread }),
    );
    assert.equal(run.status, 'succeeded');
    runs.push(run.id);
  }
  runs.push(json<{ id: string }>(await k.post('/v1/agents/helper/runs', { input: 'stateless' })).id);
  return { thread, runs };
}

describe('DELETE /v1/projects/{id}', () => {
  let f: Fixture;
  let c: ReturnType<typeof client>;
  beforeEach(async () => {
    f = await serverFixture({ adminKey: ADMIN });
    c = client(f.app.inject.bind(f.app));
  });
  afterEach(() => f.close());

  it('refuses a project holding agents, threads or runs with 409 PROJECT_NOT_EMPTY and the counts, deleting nothing', async () => {
    const key = await c.project('alpha');
    await fill(c, key);
    const res = await c.admin.delete('/v1/projects/alpha');
    assert.equal(res.statusCode, 409, res.body);
    const { error } = json<ErrorBody>(res);
    assert.equal(error.code, 'PROJECT_NOT_EMPTY');
    assert.deepEqual(error.details, { project: 'alpha', agents: 2, threads: 1, runs: 3 });
    assert.match(error.message, /cascade=true/);
    assert.equal((await c.key(key).get('/v1/agents/support')).statusCode, 200, 'the key still works');
    assert.equal((await c.admin.get('/v1/projects/alpha')).statusCode, 200);
  });

  it('deletes an empty project with its keys and answers what it deleted', async () => {
    const key = await c.project('gamma');
    await c.admin.post('/v1/projects/gamma/keys', {});
    const res = await c.admin.delete('/v1/projects/gamma');
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json<Deleted>(res), {
      project: 'gamma',
      deleted: { agents: 0, threads: 0, messages: 0, runs: 0, keys: 2 },
    });
    assert.equal((await c.key(key).get('/v1/agents')).statusCode, 401);
    assert.equal(json<ErrorBody>(await c.admin.get('/v1/projects/gamma')).error.code, 'PROJECT_NOT_FOUND');
  });

  it("with ?cascade=true deletes everything of the project and nothing of another's; the id created again sees nothing", async () => {
    const oldKey = await c.project('alpha');
    const old = await fill(c, oldKey);
    assert.equal((await c.key(oldKey).post('/v1/pool/instances/support/activate')).statusCode, 200);
    const betaKey = await c.project('beta');
    const beta = await fill(c, betaKey);

    const res = await c.admin.delete('/v1/projects/alpha?cascade=true');
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json<Deleted>(res), {
      project: 'alpha',
      deleted: { agents: 2, threads: 1, messages: 4, runs: 3, keys: 1 },
    });
    assert.equal((await c.key(oldKey).get('/v1/agents')).statusCode, 401, 'its keys are gone');
    assert.equal(f.pool.instances.instance('alpha', 'support'), undefined, 'its instances retired');

    const newKey = await c.project('alpha');
    const k = c.key(newKey);
    assert.deepEqual(json<{ data: unknown[] }>(await k.get('/v1/agents')).data, []);
    assert.deepEqual(json<{ data: unknown[] }>(await k.get('/v1/pool/instances')).data, []);
    for (const url of [
      '/v1/agents/support',
      `/v1/threads/${old.thread}`,
      ...old.runs.map((id) => `/v1/runs/${id}`),
      `/v1/runs/${old.runs[0]}/events`,
    ]) {
      assert.equal((await k.get(url)).statusCode, 404, url);
    }
    const stats = json<{ activations: number; hits: number; misses: number }>(await k.get('/v1/pool/stats'));
    assert.deepEqual([stats.activations, stats.hits, stats.misses], [0, 0, 0]);
    assert.deepEqual(json<{ data: unknown[] }>(await k.get('/v1/pool/stats/agents')).data, []);
    const usage = json<{ quotas: { maxAgents: { used: number } } }>(await k.get('/v1/projects/alpha/usage'));
    assert.equal(usage.quotas.maxAgents.used, 0);
    // A new agent of the same name is new: version 1, served by a new instance.
    const created = json<{ activeVersion: number }>(await k.post('/v1/agents', { name: 'helper' }));
    assert.equal(created.activeVersion, 1);
    assert.equal(
      json<{ status: string }>(await k.post('/v1/agents/helper/runs', { input: 'hi' })).status,
      'succeeded',
    );

    const b = c.key(betaKey);
    assert.equal(json<{ data: unknown[] }>(await b.get('/v1/agents')).data.length, 2);
    assert.equal(json<{ data: unknown[] }>(await b.get(`/v1/threads/${beta.thread}/runs`)).data.length, 2);
    for (const id of beta.runs) assert.equal((await b.get(`/v1/runs/${id}`)).statusCode, 200);
  });

  it("with ?cascade=true cancels the project's runs in flight first", async () => {
    const key = await c.project('alpha');
    assert.equal(
      (await c.key(key).post('/v1/agents', { name: 'slowpoke', model: 'slow/x' })).statusCode,
      201,
    );
    const handle = await f.pool.runs.start('alpha', 'slowpoke', { input: 'take your time' });
    await f.slow.started;
    assert.deepEqual(f.pool.runs.inFlight('alpha'), { queued: 0, running: 1 });
    const res = await c.admin.delete('/v1/projects/alpha?cascade=true');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json<Deleted>(res).deleted.runs, 1);
    const run = await handle.result;
    assert.equal(run.status, 'cancelled');
    assert.equal(run.error?.code, 'RUN_CANCELLED');
    assert.match(run.error?.message ?? '', /project is being deleted/);
    assert.deepEqual(f.pool.runs.inFlight('alpha'), { queued: 0, running: 0 });
    assert.equal(f.pool.instances.instance('alpha', 'slowpoke'), undefined);
    assert.equal(await f.pool.stores.runs.getRun(handle.id), undefined, 'its record went with the project');
  });

  it('joins a second deletion of the same project to the first: both answer the same counts', async () => {
    const key = await c.project('alpha');
    await fill(c, key);
    const [first, second] = await Promise.all([
      c.admin.delete('/v1/projects/alpha?cascade=true'),
      c.admin.delete('/v1/projects/alpha?cascade=true'),
    ]);
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(second.statusCode, 200, second.body);
    assert.deepEqual(json<Deleted>(second), json<Deleted>(first));
    assert.equal(json<Deleted>(first).deleted.agents, 2);
    assert.equal((await c.admin.delete('/v1/projects/alpha')).statusCode, 404, 'and then it is gone');
  });

  it('refuses to delete the default project (400 naming the field), and answers 404 for an unknown one', async () => {
    const res = await c.admin.delete('/v1/projects/default?cascade=true');
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(json<ErrorBody>(res).error.code, 'VALIDATION_FAILED');
    assert.equal(json<ErrorBody>(res).error.details['field'], 'id');
    assert.equal((await c.admin.get('/v1/projects/default')).statusCode, 200);
    const unknown = await c.admin.delete('/v1/projects/nope');
    assert.equal(unknown.statusCode, 404);
    assert.equal(json<ErrorBody>(unknown).error.code, 'PROJECT_NOT_FOUND');
    const bad = await c.admin.delete('/v1/projects/alpha?cascade=maybe');
    assert.equal(bad.statusCode, 400, 'cascade is a boolean');
  });
});

/** An agent store that records each batch deletion and what happened before it. */
class RecordingAgentStore extends MemoryAgentStore {
  readonly log: string[] = [];
  override async deleteProjectAgents(project: string, limit: number): Promise<number> {
    this.log.push(`agents:${limit}`);
    return super.deleteProjectAgents(project, limit);
  }
}

class RecordingRunStore extends MemoryRunStore {
  readonly limits: number[] = [];
  override async deleteProjectRuns(project: string, limit: number): Promise<number> {
    this.limits.push(limit);
    return super.deleteProjectRuns(project, limit);
  }
}

describe('deleting a large project', () => {
  it('goes in batches of at most 500 rows, serving other tenants between them', async () => {
    const agents = new RecordingAgentStore();
    const runs = new RecordingRunStore();
    const pool: AgentPool = await createAgentPool({
      store: { agents, runs, projects: new MemoryProjectStore() },
      ttlSweepIntervalMs: 0,
    });
    const app = await buildServer(pool, { adminKey: ADMIN });
    try {
      const c = client(app.inject.bind(app));
      await c.project('big');
      const betaKey = await c.project('beta');
      for (let i = 0; i < 1600; i++) {
        await agents.create({
          id: `agt_${i}`,
          project: 'big',
          name: `a${i}`,
          spec: { labels: {}, tier: 'warm' },
          now: 0,
        });
      }
      for (let i = 0; i < 1200; i++) await runs.createRun(runRecord({ id: `run_${i}`, project: 'big' }), []);

      const deletion = c.admin.delete('/v1/projects/big?cascade=true');
      const served = c
        .key(betaKey)
        .get('/v1/agents')
        .then((res) => {
          agents.log.push('beta served');
          return res;
        });
      const [res, other] = await Promise.all([deletion, served]);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(json<Deleted>(res).deleted, {
        agents: 1600,
        threads: 0,
        messages: 0,
        runs: 1200,
        keys: 1,
      });
      assert.equal(other.statusCode, 200);
      assert.deepEqual(
        agents.log.filter((e) => e.startsWith('agents')),
        [
          'agents:500',
          'agents:500',
          'agents:500',
          'agents:500',
          'agents:500', // the last one finds none left
        ],
      );
      assert.ok(
        agents.log.indexOf('beta served') < agents.log.lastIndexOf('agents:500'),
        agents.log.join(' '),
      );
      assert.ok(runs.limits.length >= 4 && runs.limits.every((l) => l === 500), String(runs.limits));
    } finally {
      await app.close();
      await pool.close();
    }
  });
});

describe('deleting a project on a SQLite file', () => {
  it('cascades over agents, threads, messages, runs and keys on disk; the id created again sees nothing', async () => {
    const { dir, cleanup } = tempDir('agentpool-delete-');
    const pool = await createAgentPool({ dataDir: join(dir, 'data'), ttlSweepIntervalMs: 0 });
    const app = await buildServer(pool, { adminKey: ADMIN });
    try {
      const c = client(app.inject.bind(app));
      const key = await c.project('alpha');
      const old = await fill(c, key);
      const betaKey = await c.project('beta');
      await fill(c, betaKey);
      const refused = await c.admin.delete('/v1/projects/alpha');
      assert.equal(json<ErrorBody>(refused).error.code, 'PROJECT_NOT_EMPTY');
      const res = await c.admin.delete('/v1/projects/alpha?cascade=true');
      assert.deepEqual(json<Deleted>(res).deleted, { agents: 2, threads: 1, messages: 4, runs: 3, keys: 1 });
      assert.equal(await pool.stores.runs.getThread(old.thread), undefined);
      assert.equal(await pool.stores.agents.count('alpha'), 0);
      assert.equal(await pool.stores.runs.countProjectRuns('alpha'), 0);
      assert.equal(await pool.stores.runs.countProjectRuns('beta'), 3);
      const again = c.key(await c.project('alpha'));
      assert.deepEqual(json<{ data: unknown[] }>(await again.get('/v1/agents')).data, []);
      assert.equal((await again.get(`/v1/threads/${old.thread}`)).statusCode, 404);
    } finally {
      await app.close();
      await pool.close();
      cleanup();
    }
  });

  it('two pools starting on one file create the default project once', async () => {
    const { dir, cleanup } = tempDir('agentpool-default-');
    const pools = await Promise.all(
      [1, 2].map(() => createAgentPool({ dataDir: dir, ttlSweepIntervalMs: 0 })),
    );
    try {
      const listed = await pools[0]?.projects.list();
      assert.deepEqual(
        listed?.data.map((p) => p.id),
        ['default'],
      );
    } finally {
      for (const pool of pools) await pool.close();
      cleanup();
    }
  });
});

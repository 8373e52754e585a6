/**
 * What only PostgreSQL shows, with real servers and real faults: migrations run once however many
 * nodes start together, a schema written by a newer agentpool is refused, a lost server makes
 * calls fail fast with STORE_UNAVAILABLE and the stores serve again by themselves when it is back,
 * and several nodes (store instances with their own connection pools) on one database keep seqs
 * without gaps and refuse stale fencing tokens.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ErrorCode, isAgentPoolError } from '../../src/core/errors.ts';
import { PostgresDatabase } from '../../src/store/postgres/database.ts';
import { POSTGRES_SCHEMA_VERSION } from '../../src/store/postgres/migrations.ts';
import { openPostgresStores, type PostgresStores } from '../../src/store/postgres/open.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { TEST_DATABASE_URL, testSchema } from '../support/postgres.ts';
import { runRecord } from '../support/run-record.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';

const T0 = Date.UTC(2026, 0, 1);

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAgentPoolError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

async function closeAll(...all: PostgresStores[]): Promise<void> {
  await Promise.all(all.flatMap((s) => [s.agents.close(), s.runs.close(), s.projects.close()]));
}

const run = (overrides: Partial<RunRecord> = {}) =>
  runRecord({ threadId: 'thr_1', createdAt: T0, startedAt: T0, ...overrides });
const message = (id: string) => ({ id, role: 'user' as const, content: id, runId: null, createdAt: T0 });

describe('PostgreSQL schema migrations', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  beforeEach(async () => {
    schema = await testSchema('migrate');
  });
  afterEach(async () => {
    await schema.cleanup();
  });

  it('three nodes starting together migrate once: one applies every migration, the others find it done', async () => {
    const options = { databaseUrl: schema.url, schema: schema.schema };
    const dbs = await Promise.all([1, 2, 3].map(() => PostgresDatabase.open(options)));
    try {
      const from = dbs.map((db) => db.migration.from).sort();
      assert.deepEqual(from, [0, POSTGRES_SCHEMA_VERSION, POSTGRES_SCHEMA_VERSION]);
      assert.ok(dbs.every((db) => db.migration.to === POSTGRES_SCHEMA_VERSION));
      const { rows } = await dbs[0]!.query<{ version: number }>(
        'SELECT version FROM agentpool_schema_migrations ORDER BY version',
      );
      assert.deepEqual(
        rows.map((r) => r.version),
        Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1),
      );
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });

  it('refuses a schema written by a newer agentpool with STORE_FAILED and a clear message', async () => {
    const options = { databaseUrl: schema.url, schema: schema.schema };
    const first = await PostgresDatabase.open(options);
    await first.query('INSERT INTO agentpool_schema_migrations (version) VALUES ($1)', [
      POSTGRES_SCHEMA_VERSION + 1,
    ]);
    await first.close();
    await assert.rejects(PostgresDatabase.open(options), (err: unknown) => {
      assert.ok(isAgentPoolError(err, 'STORE_FAILED'));
      assert.match(err.message, new RegExp(`schema version ${POSTGRES_SCHEMA_VERSION + 1}, newer than`));
      assert.match(err.message, /upgrade agentpool/);
      assert.equal(err.details.schemaVersion, POSTGRES_SCHEMA_VERSION + 1);
      return true;
    });
  });

  it('keeps its data across reopening, without running its migrations again', async () => {
    const options = { databaseUrl: schema.url, schema: schema.schema };
    const first = await openPostgresStores(options);
    await first.agents.create({
      id: 'agt_a',
      project: 'p1',
      name: 'a',
      spec: { labels: {}, tier: 'warm' },
      now: T0,
    });
    await closeAll(first);
    const second = await openPostgresStores(options);
    try {
      assert.equal(second.database.migration.from, POSTGRES_SCHEMA_VERSION);
      assert.equal((await second.agents.getByName('p1', 'a'))?.id, 'agt_a');
    } finally {
      await closeAll(second);
    }
  });

  it("keeps server settings given in the URL's options next to its own schema", async () => {
    const url = new URL(schema.url);
    url.searchParams.set('options', '-c synchronous_commit=off');
    const db = await PostgresDatabase.open({ databaseUrl: url.toString(), schema: schema.schema });
    try {
      const setting = async (name: string) =>
        (await db.query<{ value: string }>('SELECT current_setting($1) AS value', [name])).rows[0]?.value;
      assert.equal(await setting('synchronous_commit'), 'off');
      assert.equal(await setting('search_path'), schema.schema);
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'runs'",
        [schema.schema],
      );
      assert.equal(rows[0]?.n, 1);
    } finally {
      await db.close();
    }
  });

  it('rejects bad options with VALIDATION_FAILED naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ databaseUrl: 'mysql://localhost/x' }, 'databaseUrl'],
      [{ databaseUrl: 'not a url' }, 'databaseUrl'],
      [{ databaseUrl: schema.url, schema: 'Has-Dash' }, 'schema'],
      [{ databaseUrl: schema.url, maxConnections: 0 }, 'maxConnections'],
      [{ databaseUrl: schema.url, connectTimeoutMs: -1 }, 'connectTimeoutMs'],
      [{ databaseUrl: schema.url, nodeId: '' }, 'nodeId'],
    ];
    for (const [options, field] of cases) {
      await assert.rejects(PostgresDatabase.open(options as { databaseUrl: string }), (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), String(err));
        assert.equal(err.details.field, field);
        return true;
      });
    }
  });
});

describe('PostgreSQL out of reach', () => {
  it('refuses to open on a closed port with STORE_UNAVAILABLE, retry in a second', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: 5432 });
    await proxy.stop(); // a port nothing listens on
    const url = new URL(TEST_DATABASE_URL);
    url.host = `127.0.0.1:${proxy.port}`;
    await assert.rejects(
      openPostgresStores({ databaseUrl: url.toString(), connectTimeoutMs: 1000 }),
      (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'STORE_UNAVAILABLE'), String(err));
        assert.equal(err.status, 503);
        assert.deepEqual(err.details, { dependency: 'postgres', retryAfterSeconds: 1 });
        return true;
      },
    );
  });

  it('fails calls with STORE_UNAVAILABLE while the server is away, and serves again when it returns', async () => {
    const schema = await testSchema('outage');
    const target = new URL(schema.url);
    const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const url = new URL(schema.url);
    url.host = `127.0.0.1:${proxy.port}`;
    const stores = await openPostgresStores({
      databaseUrl: url.toString(),
      schema: schema.schema,
      connectTimeoutMs: 1000,
    });
    try {
      await stores.runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
      await stores.runs.createRun(run(), [message('m1')]);
      assert.equal(stores.agents.changeFeed.listening, true);

      await proxy.stop();
      await rejectsWith(stores.runs.getThread('thr_1'), 'STORE_UNAVAILABLE');
      await rejectsWith(stores.runs.commitStep(run({ steps: 1 }), [message('m2')]), 'STORE_UNAVAILABLE');
      await rejectsWith(stores.agents.getByName('p1', 'a'), 'STORE_UNAVAILABLE');
      await rejectsWith(stores.projects.countKeys(), 'STORE_UNAVAILABLE');
      assert.equal(stores.agents.changeFeed.maybeChangedSince('0'), true, 'nothing heard: maybe');

      await proxy.start();
      // No reopening: the pool connects again on the next statement.
      assert.equal((await stores.runs.getThread('thr_1'))?.messageCount, 1, 'nothing committed was lost');
      await stores.runs.commitStep(run({ steps: 1 }), [message('m2')]);
      assert.deepEqual(
        (await stores.runs.recentMessages('thr_1', 10)).map((m) => [m.id, m.seq]),
        [
          ['m1', 1],
          ['m2', 2],
        ],
      );
      assert.equal(await stores.projects.countKeys(), 0);
    } finally {
      await closeAll(stores);
      await proxy.close();
      await schema.cleanup();
    }
  });
});

describe('PostgreSQL and the NUL character', () => {
  it('stores NUL in run inputs, outputs and messages, and refuses it in ids with VALIDATION_FAILED', async () => {
    const schema = await testSchema('nul');
    const stores = await openPostgresStores({ databaseUrl: schema.url, schema: schema.schema });
    try {
      await stores.runs.createThread({
        id: 'thr_1',
        project: 'p1',
        metadata: { k: 'a\u0000b' },
        ttlSeconds: null,
        now: T0,
      });
      const odd = run({ input: 'in\u0000put', output: 'out\u0000put' });
      await stores.runs.createRun(odd, [{ ...message('m1'), content: { text: 'x\u0000y' } }]);
      assert.deepEqual(await stores.runs.getRun('run_1'), odd);
      assert.deepEqual((await stores.runs.recentMessages('thr_1', 1))[0]?.content, { text: 'x\u0000y' });
      assert.deepEqual((await stores.runs.getThread('thr_1'))?.metadata, { k: 'a\u0000b' });
      await assert.rejects(stores.runs.getThread('thr_\u0000'), (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), String(err));
        assert.equal(err.status, 400);
        return true;
      });
    } finally {
      await closeAll(stores);
      await schema.cleanup();
    }
  });
});

describe('PostgreSQL stores of several nodes on one database', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let nodes: PostgresStores[];
  beforeEach(async () => {
    schema = await testSchema('nodes');
    nodes = [];
    for (const nodeId of ['node_a', 'node_b', 'node_c']) {
      nodes.push(await openPostgresStores({ databaseUrl: schema.url, schema: schema.schema, nodeId }));
    }
  });
  afterEach(async () => {
    await closeAll(...nodes);
    await schema.cleanup();
  });

  it('of 300 concurrent creates of one name over three nodes, exactly one fulfils', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) =>
        nodes[i % 3]!.agents.create({
          id: `agt_${String(i).padStart(4, '0')}`,
          project: 'p1',
          name: 'contended',
          spec: { labels: {}, tier: 'warm' },
          now: T0,
        }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results)
      if (r.status === 'rejected') assert.ok(isAgentPoolError(r.reason, 'AGENT_EXISTS'));
    assert.equal(await nodes[1]!.agents.count('p1'), 1);
  });

  it('hands out each seq once when three nodes commit to one thread at once', async () => {
    await nodes[0]!.runs.createThread({
      id: 'thr_1',
      project: 'p1',
      metadata: {},
      ttlSeconds: null,
      now: T0,
    });
    for (let r = 0; r < 3; r++) await nodes[r]!.runs.createRun(run({ id: `run_${r}` }), []);
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        nodes[i % 3]!.runs.commitStep(run({ id: `run_${i % 3}`, steps: i }), [
          message(`x${i}`),
          message(`y${i}`),
        ]),
      ),
    );
    const seqs = results.flat().map((m) => m.seq);
    seqs.sort((a, b) => a - b);
    assert.deepEqual(
      seqs,
      Array.from({ length: 120 }, (_, i) => i + 1),
    );
    assert.equal((await nodes[2]!.runs.getThread('thr_1'))?.messageCount, 120);
  });

  it("refuses a paused node's write once another node took the thread with a newer token", async () => {
    const [a, b] = nodes as [PostgresStores, PostgresStores];
    await a.runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
    await a.runs.createRun(run({ id: 'run_a' }), [message('m1')], 1);
    // Node a pauses; its lease expires; node b claims the thread with token 2 and writes.
    await b.runs.createRun(run({ id: 'run_b' }), [message('m2')], 2);
    await rejectsWith(a.runs.commitStep(run({ id: 'run_a', steps: 1 }), [message('late')], 1), 'LEASE_LOST');
    assert.deepEqual(
      (await b.runs.recentMessages('thr_1', 10)).map((m) => m.id),
      ['m1', 'm2'],
    );
    assert.equal((await b.runs.getRun('run_a'))?.steps, 0);
  });

  it("stamps each run with its node: a dead node's sweep ends only its runs, naming it", async () => {
    const [a, b] = nodes as [PostgresStores, PostgresStores];
    await a.runs.createRun(run({ id: 'run_a', threadId: null }), []);
    await b.runs.createRun(run({ id: 'run_b', threadId: null }), []);
    await a.runs.createRun(run({ id: 'run_moved', threadId: null }), []);
    await b.runs.commitStep(run({ id: 'run_moved', threadId: null, steps: 1 }), []); // taken over by b
    assert.equal(await b.runs.interruptUnfinished(T0 + 1, { node: 'node_a' }), 1);
    const ended = await b.runs.getRun('run_a');
    assert.equal(ended?.status, 'interrupted');
    assert.match(ended?.error?.message ?? '', /node "node_a" stopped/);
    assert.equal((await b.runs.getRun('run_moved'))?.status, 'running');
    assert.equal((await b.runs.getRun('run_b'))?.status, 'running');
  });

  it('a writer on another node that read an older version gets VERSION_CONFLICT', async () => {
    const [a, b] = nodes as [PostgresStores, PostgresStores];
    const agent = await a.agents.create({
      id: 'agt_a',
      project: 'p1',
      name: 'a',
      spec: { labels: {}, tier: 'warm' },
      now: T0,
    });
    await b.agents.addVersion(agent.id, 1, { labels: { v: '2' }, tier: 'hot' }, T0 + 1);
    await rejectsWith(
      a.agents.addVersion(agent.id, 1, { labels: {}, tier: 'warm' }, T0 + 2),
      'VERSION_CONFLICT',
    );
    assert.equal((await a.agents.getById(agent.id))?.activeVersion, 2);
  });
});

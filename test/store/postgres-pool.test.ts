/**
 * An agent pool on PostgreSQL (`store: 'postgres'`): its options, a run end to end against the
 * fake model with a second pool reading what the first wrote, readiness through an outage, 1,000
 * concurrent get-or-creates of one name through three pools, and the statements a run costs.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { textOf } from '../../src/run/messages.ts';
import { POSTGRES_QUERY_CHANNEL } from '../../src/store/postgres/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { testSchema } from '../support/postgres.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';

const P = 'acme';
const MODEL = 'openai-compatible/fake-model';

describe('an agent pool on PostgreSQL', () => {
  let fake: FakeOpenAI;
  let schema: Awaited<ReturnType<typeof testSchema>>;
  const pools: AgentPool[] = [];

  const open = (databaseUrl = schema.url) =>
    createAgentPool({
      store: 'postgres',
      databaseUrl,
      postgres: { schema: schema.schema, connectTimeoutMs: 1000 },
      models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'test-key' } }, env: {} },
      ttlSweepIntervalMs: 0,
    }).then((pool) => {
      pools.push(pool);
      return pool;
    });

  before(async () => {
    fake = await startFakeOpenAI();
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(async () => {
    schema = await testSchema('pool');
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    await schema.cleanup();
  });

  it('refuses store options that do not fit, naming the field', async () => {
    const cases: [Parameters<typeof createAgentPool>[0], string][] = [
      [{ store: 'postgres' }, 'databaseUrl'],
      [{ store: 'postgres', databaseUrl: 'mysql://127.0.0.1/agentpool' }, 'databaseUrl'],
      [{ store: 'memory', databaseUrl: schema.url }, 'databaseUrl'],
      [{ store: 'sqlite', postgres: { maxConnections: 5 } }, 'postgres'],
      [
        { store: 'postgres', databaseUrl: schema.url, postgres: { maxConnections: 0 } },
        'postgres.maxConnections',
      ],
      [{ store: 'postgres', databaseUrl: schema.url, postgres: { schema: 'x y' } }, 'postgres.schema'],
      [{ store: 'postgres', databaseUrl: schema.url, postgres: { pool: 3 } as object }, 'postgres.pool'],
    ];
    for (const [options, field] of cases) {
      await assert.rejects(createAgentPool(options), (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), String(err));
        assert.equal(err.details.field, field);
        return true;
      });
    }
  });

  it('runs on a thread end to end, and a second pool on the database reads what the first wrote', async () => {
    const first = await open();
    await first.agents.create(P, { name: 'plain', model: MODEL, instructions: 'Be brief.' });
    const thread = await first.threads.create(P);
    fake.script({ text: 'Hello there.' });
    const run = await (await first.runs.start(P, 'plain', { input: 'Hi!', threadId: thread.id })).result;
    assert.equal(run.status, 'succeeded');

    const second = await open();
    assert.equal((await second.agents.get(P, 'plain')).spec.instructions, 'Be brief.');
    const messages = (await second.threads.messages(P, thread.id)).data;
    assert.deepEqual(
      messages.map((m) => [m.seq, m.role, textOf(m.content)]),
      [
        [1, 'user', 'Hi!'],
        [2, 'assistant', 'Hello there.'],
      ],
    );
    assert.equal((await second.runs.get(P, run.id)).output, 'Hello there.');
    await second.ping();
  });

  it('ping fails with STORE_UNAVAILABLE while PostgreSQL is away, and succeeds again once it is back', async () => {
    const target = new URL(schema.url);
    const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const url = new URL(schema.url);
      url.host = `127.0.0.1:${proxy.port}`;
      const pool = await open(url.toString());
      await pool.ping();
      await proxy.stop();
      await assert.rejects(pool.ping(), (err: unknown) => isAgentPoolError(err, 'STORE_UNAVAILABLE'));
      await proxy.start();
      await pool.ping();
    } finally {
      await proxy.close();
    }
  });

  it('1,000 concurrent get-or-creates of one name through three pools make exactly one agent', async () => {
    const nodes = [await open(), await open(), await open()];
    const agents = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        nodes[i % 3]!.agents.getOrCreate(P, 'shared', { model: MODEL, instructions: `from call ${i}` }),
      ),
    );
    assert.equal(new Set(agents.map((a) => a.id)).size, 1, 'every call got the same agent');
    assert.equal(await nodes[0]!.agents.count(P), 1);
    const versions = await nodes[1]!.agents.versions(P, 'shared');
    assert.equal(versions.data.length, 1, 'created once, never updated');
  });

  it('counts the statements of a plain run on a new thread and of a stateless run', async (t) => {
    const pool = await open();
    await pool.agents.create(P, { name: 'plain', model: MODEL });
    const warm = await pool.threads.create(P); // the first run activates the agent and warms statements
    fake.script({ text: 'warm' });
    await (
      await pool.runs.start(P, 'plain', { input: 'warm up', threadId: warm.id })
    ).result;

    const count = async (fn: () => Promise<unknown>) => {
      const texts: string[] = [];
      const listener = (message: unknown) => texts.push((message as { text: string }).text);
      diagnostics.subscribe(POSTGRES_QUERY_CHANNEL, listener);
      try {
        await fn();
      } finally {
        diagnostics.unsubscribe(POSTGRES_QUERY_CHANNEL, listener);
      }
      return texts;
    };
    const threaded = await count(async () => {
      const thread = await pool.threads.create(P);
      fake.script({ text: 'ok' });
      await (
        await pool.runs.start(P, 'plain', { input: 'hello', threadId: thread.id })
      ).result;
    });
    const stateless = await count(async () => {
      fake.script({ text: 'ok' });
      await (
        await pool.runs.start(P, 'plain', { input: 'hello' })
      ).result;
    });
    const show = (texts: string[]) =>
      texts.map((t) => t.replace(/\s+/g, ' ').trim().slice(0, 60)).join(' | ');
    t.diagnostic(`plain run on a new thread: ${threaded.length} statements: ${show(threaded)}`);
    t.diagnostic(`stateless run: ${stateless.length} statements: ${show(stateless)}`);
    // createThread, getThread, createRun, the history read, the final commit; no transaction control.
    assert.ok(threaded.length <= 5, `${threaded.length} statements`);
    assert.ok(stateless.length <= 2, `${stateless.length} statements`);
    assert.ok(!threaded.some((text) => /^(BEGIN|COMMIT)/.test(text.trim())));
  });
});

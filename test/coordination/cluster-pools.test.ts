/**
 * Pools of one cluster in one process: two `createAgentPool({ store: 'postgres', redisUrl })` on
 * one PostgreSQL schema and one Redis prefix, each with its own connections and node id, talking
 * to a fake provider over real HTTP. What the run layer does with the cluster's adapters: one run
 * per thread across the pools, events read on the pool that did not run the run, a cancel
 * reaching the pool that holds the run, background runs through the queue, the cluster view and
 * the dependencies readiness reads. (Whole `agentpool serve` processes, kill -9 and outages are
 * tested in test/cluster/.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import type { ClusterOptions } from '../../src/coordination/cluster-options.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { RunEvent } from '../../src/run/stream.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { testSchema } from '../support/postgres.ts';
import { redisPrefix } from '../support/redis.ts';

const P = 'default';

/** Where the pools of one test cluster meet: a schema, a Redis prefix, a fake provider. */
interface Shared {
  db: { url: string; schema: string };
  redis: { url: string; prefix: string };
  fake: FakeOpenAI;
}

/** A pool of the test cluster, as a node with this id. */
function openNode(shared: Shared, cluster: ClusterOptions & { nodeId: string }): Promise<AgentPool> {
  return createAgentPool({
    store: 'postgres',
    databaseUrl: shared.db.url,
    postgres: { schema: shared.db.schema },
    redisUrl: shared.redis.url,
    redisPrefix: shared.redis.prefix,
    cluster,
    models: { providers: { 'openai-compatible': { baseURL: shared.fake.url, apiKey: 'k' } }, env: {} },
    ttlSweepIntervalMs: 0,
  });
}

describe('two pools of one cluster', () => {
  let fake: FakeOpenAI;
  let a: AgentPool;
  let b: AgentPool;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    fake = await startFakeOpenAI();
    const db = await testSchema('cluster');
    const redis = await redisPrefix('cluster');
    cleanups.push(redis.cleanup, db.cleanup, () => fake.close());
    const open = (nodeId: string) =>
      openNode({ db, redis, fake }, { nodeId, address: `http://${nodeId}.test`, changePollMs: 100 });
    a = await open('node-a');
    b = await open('node-b');
    await a.agents.create(P, { name: 'bot', model: 'openai-compatible/fake-model', instructions: 'v1' });
  });

  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  });

  it('both run as cluster nodes and list each other', async () => {
    assert.equal(a.cluster.mode, 'cluster');
    assert.equal(b.cluster.nodeId, 'node-b');
    const deadline = Date.now() + 5000;
    let ids: string[] = [];
    while (Date.now() < deadline) {
      ids = (await a.cluster.nodes()).map((n) => n.id).sort();
      if (ids.length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(ids, ['node-a', 'node-b']);
    const nodeA = (await b.cluster.nodes()).find((n) => n.id === 'node-a');
    assert.equal(nodeA?.address, 'http://node-a.test');
    assert.deepEqual(await a.cluster.dependencies(), [
      { name: 'postgres', ok: true },
      { name: 'redis', ok: true },
    ]);
  });

  // That two nodes cannot both take the last place is shown by the ledger's own test (exclusive
  // sections never overlap across nodes); here, that creates through either pool go through it.
  it('maxAgents applies to creates through both pools: 20 at once make exactly the limit', async () => {
    await a.projects.create({ id: 'capped', limits: { quotas: { maxAgents: 3 } } });
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).agents.create('capped', { name: `agent-${i}`, model: 'demo/assistant' }),
      ),
    );
    const created = settled.filter((r) => r.status === 'fulfilled');
    assert.equal(created.length, 3);
    for (const r of settled) {
      if (r.status === 'rejected') assert.ok(isAgentPoolError(r.reason, 'QUOTA_EXCEEDED'), String(r.reason));
    }
    assert.equal(await b.agents.count('capped'), 3);
  });

  it('a thread held by a run on one pool is busy on the other: reject is THREAD_BUSY, enqueue waits its turn', async () => {
    const thread = await a.threads.create(P);
    fake.script({ delayMs: 400, then: { text: 'first' } });
    const first = await a.runs.start(P, 'bot', { input: 'one', threadId: thread.id });
    await waitFor(async () => (await b.runs.get(P, first.id)).status === 'running');
    await assert.rejects(b.runs.start(P, 'bot', { input: 'two', threadId: thread.id }), (err) =>
      isAgentPoolError(err, 'THREAD_BUSY'),
    );
    await assert.rejects(b.threads.delete(P, thread.id), (err) => isAgentPoolError(err, 'THREAD_BUSY'));
    const second = await b.runs.start(P, 'bot', {
      input: 'three',
      threadId: thread.id,
      multitask: 'enqueue',
    });
    assert.equal((await first.result).status, 'succeeded');
    assert.equal((await second.result).status, 'succeeded');
    const texts = (await b.threads.messages(P, thread.id)).data.map((m) => JSON.stringify(m.content));
    assert.deepEqual(
      texts.map((t) => /"text":"([^"]*)"/.exec(t)?.[1]),
      ['one', 'first', 'three', 'Echo: three'],
      'the second run went after the first, on the other pool',
    );
  });

  it('interrupt on one pool stops the run the other pool holds', async () => {
    const thread = await a.threads.create(P);
    fake.script({ hang: true });
    const held = await a.runs.start(P, 'bot', { input: 'slow', threadId: thread.id });
    await waitFor(async () => (await b.runs.get(P, held.id)).status === 'running');
    const newer = await b.runs.start(P, 'bot', { input: 'now', threadId: thread.id, multitask: 'interrupt' });
    const stopped = await held.result;
    assert.equal(stopped.status, 'interrupted');
    assert.equal((await newer.result).status, 'succeeded');
  });

  it('a run on one pool streams on the other, resuming after a seq', async () => {
    fake.script({ text: 'streamed answer' });
    const run = await a.runs.start(P, 'bot', { input: 'stream me' });
    await run.result;
    const all = await collect(await b.runs.events(P, run.id, 0));
    assert.equal(all[0]?.type, 'run.started');
    assert.equal(all.at(-1)?.type, 'run.finished');
    assert.deepEqual(
      all.map((e) => e.seq),
      all.map((_e, i) => i + 1),
      'every event, in order',
    );
    const rest = await collect(await b.runs.events(P, run.id, 2));
    assert.deepEqual(
      rest.map((e) => e.seq),
      all.slice(2).map((e) => e.seq),
    );
  });

  it('a cancel through the other pool ends the run where it runs', async () => {
    fake.script({ hang: true });
    const run = await a.runs.start(P, 'bot', { input: 'hang' });
    await waitFor(async () => (await b.runs.get(P, run.id)).status === 'running');
    const cancelled = await b.runs.cancel(P, run.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal((await run.result).status, 'cancelled');
  });

  it('background runs go through the queue: recorded queued on a thread of their own, run by a node', async () => {
    const accepted = await a.runs.startBackground(P, 'bot', { input: 'later' });
    assert.equal(accepted.status, 'queued');
    assert.notEqual(accepted.threadId, null, 'a thread of its own, so its steps are kept');
    await waitFor(async () => (await b.runs.get(P, accepted.id)).status === 'succeeded');
    const run = await a.runs.get(P, accepted.id);
    assert.equal(run.output, 'Echo: later');
    assert.deepEqual(await b.cluster.background(), { waiting: 0, active: 0 }, 'the queue is empty again');
    const events = await collect(await b.runs.events(P, accepted.id, 0));
    assert.equal(events.at(-1)?.type, 'run.finished');
  });

  it('an agent changed through one pool is served in its new version by the other within a second', async () => {
    fake.script({ text: 'warm' });
    await (
      await b.runs.start(P, 'bot', { input: 'warm up' })
    ).result; // b holds a live v1 instance
    await a.agents.update(P, 'bot', { instructions: 'v2' });
    assert.equal(liveVersion(b), 1);
    // Retired on b by the change alone, before any run there looks: within a second.
    await waitFor(() => liveVersion(b) !== 1, 1000);
    const before = fake.requests.length;
    await (
      await b.runs.start(P, 'bot', { input: 'which version?' })
    ).result;
    const sent = fake.requests[before];
    assert.equal(sent?.messages[0]?.content, 'v2');
  });
});

describe('a pool of a cluster that closes with a background run in flight', () => {
  it('hands the run over: not ended, resumed by another pool after its last committed step', async () => {
    const fake = await startFakeOpenAI();
    const db = await testSchema('handover');
    const redis = await redisPrefix('handover');
    const open = (nodeId: string) =>
      openNode({ db, redis, fake }, { nodeId, queue: { lockDurationMs: 1000, stalledIntervalMs: 500 } });
    const pools = [await open('node-1'), await open('node-2')];
    try {
      await pools[0]?.agents.create(P, {
        name: 'calc',
        model: 'openai-compatible/fake-model',
        tools: ['calculator'],
      });
      // Step 1 calls the calculator (committed); step 2 hangs until its node closes.
      fake.script({ toolCalls: [{ name: 'calculator', arguments: { expression: '2+3' } }] }, { hang: true });
      const accepted = await (pools[0] as AgentPool).runs.startBackground(P, 'calc', { input: 'add' });
      await waitFor(() => fake.requests.length === 2, 10_000);
      const holder = pools.findIndex((p) => p.runs.activeCount > 0);
      const other = pools[1 - holder] as AgentPool;
      assert.equal((await other.runs.get(P, accepted.id)).steps, 1, 'step 1 is committed');
      await pools[holder]?.close();
      const left = await other.runs.get(P, accepted.id);
      assert.equal(left.status, 'running', 'handed over, not ended');
      fake.script({ text: 'five' });
      await waitFor(async () => (await other.runs.get(P, accepted.id)).status === 'succeeded', 15_000);
      const done = await other.runs.get(P, accepted.id);
      assert.equal(done.output, 'five');
      assert.equal(done.steps, 2);
      const toolResultsSent = fake.requests.map((r) => r.messages.filter((m) => m.role === 'tool').length);
      assert.deepEqual(
        toolResultsSent,
        [0, 1, 1],
        'step 1 ran once; step 2 was asked again on the other node',
      );
    } finally {
      await Promise.allSettled(pools.map((p) => p.close()));
      await redis.cleanup();
      await db.cleanup();
      await fake.close();
    }
  });
});

function liveVersion(pool: AgentPool): number | undefined {
  return pool.instances.instances(P).find((i) => i.name === 'bot')?.version;
}

async function collect(events: AsyncIterable<RunEvent>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`not within ${ms} ms: ${check.toString()}`);
}

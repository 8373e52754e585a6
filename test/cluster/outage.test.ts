/**
 * A node whose Redis, or PostgreSQL, goes away and comes back: node 1 of two reaches both through
 * TCP proxies the test cuts and restores. While Redis is away runs answer 503
 * COORDINATION_UNAVAILABLE at once and `/readyz` names `redis`; while PostgreSQL is away runs
 * answer 503 STORE_UNAVAILABLE and `/readyz` names `postgres`; after each, runs succeed again
 * without a restart, and nothing committed before is lost.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { type ApiRun, clusterForSuite, type TestCluster, waitForStatus } from '../support/cluster.ts';
import { TEST_DATABASE_URL } from '../support/postgres.ts';
import { TEST_REDIS_URL } from '../support/redis.ts';
import { type TcpProxy, tcpProxy } from '../support/tcp-proxy.ts';

const MODEL = 'openai-compatible/fake-model';

/** The URL with its host and port replaced by the proxy's. */
function through(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

describe('a node whose Redis or PostgreSQL goes away', () => {
  let redisProxy!: TcpProxy;
  let pgProxy!: TcpProxy;
  before(async () => {
    const redis = new URL(TEST_REDIS_URL);
    redisProxy = await tcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    const db = new URL(TEST_DATABASE_URL);
    pgProxy = await tcpProxy({ host: db.hostname, port: Number(db.port || 5432) });
  });
  after(async () => {
    await redisProxy.close();
    await pgProxy.close();
  });
  const suite = clusterForSuite({
    label: 'outage',
    size: 2,
    redisUrlFor: (i, url) => (i === 1 ? through(url, redisProxy) : url),
    databaseUrlFor: (i, url) => (i === 1 ? through(url, pgProxy) : url),
  });

  /** A run on `thread` through node 1: status, body and how long the answer took. */
  const run = async (c: TestCluster, thread: string, input: string) => {
    const started = Date.now();
    const response = await c.call(1, 'POST', '/v1/agents/echo/runs', { input, threadId: thread });
    const body = (await response.json()) as ApiRun & { error: { code: string; details?: unknown } | null };
    return {
      status: response.status,
      body,
      ms: Date.now() - started,
      retryAfter: response.headers.get('retry-after'),
    };
  };

  /** Runs through node 1 until one succeeds; the seconds it took. */
  const untilRunsAgain = async (c: TestCluster, thread: string, input: string): Promise<number> => {
    const started = Date.now();
    for (;;) {
      const r = await run(c, thread, input);
      if (r.status === 200) {
        assert.equal(r.body.status, 'succeeded', JSON.stringify(r.body));
        return (Date.now() - started) / 1000;
      }
      assert.ok(Date.now() - started < 30_000, `runs never succeeded again: ${JSON.stringify(r)}`);
      await sleep(250);
    }
  };

  const userMessages = async (c: TestCluster, thread: string): Promise<string[]> => {
    const page = (await (await c.call(0, 'GET', `/v1/threads/${thread}/messages?limit=100`)).json()) as {
      data: { role: string; content: unknown }[];
    };
    return page.data
      .filter((m) => m.role === 'user')
      .map((m) =>
        typeof m.content === 'string'
          ? m.content
          : (m.content as { text?: string }[]).map((part) => part.text ?? '').join(''),
      );
  };

  it('Redis: 503 COORDINATION_UNAVAILABLE fast, /readyz names redis, runs succeed again once it is back', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'echo', model: MODEL, instructions: 'Echo.' });
    const thread = ((await (await c.call(1, 'POST', '/v1/threads', {})).json()) as { id: string }).id;
    const committed = await run(c, thread, 'before the Redis outage');
    assert.equal(committed.body.status, 'succeeded', JSON.stringify(committed));

    await redisProxy.stop();
    const refused = await run(c, thread, 'during the Redis outage');
    assert.equal(refused.status, 503, JSON.stringify(refused));
    assert.equal(refused.body.error?.code, 'COORDINATION_UNAVAILABLE');
    assert.equal(refused.retryAfter, '1');
    assert.ok(refused.ms < 3000, `answered in ${refused.ms} ms`);
    const ready = await waitForStatus(`${c.nodes[1]?.url}/readyz`, 503, c.nodes[1]?.child, 5000);
    const readiness = (await ready.json()) as { status: string; down: string[] };
    assert.deepEqual(readiness.down, ['redis']);
    assert.equal((await fetch(`${c.nodes[0]?.url}/readyz`)).status, 200, 'the other node is ready');

    await redisProxy.start();
    const seconds = await untilRunsAgain(c, thread, 'after the Redis outage');
    await waitForStatus(`${c.nodes[1]?.url}/readyz`, 200, c.nodes[1]?.child, 10_000);
    console.log(`Redis back: node 1 ran again after ${seconds.toFixed(1)} s, without a restart`);
    assert.equal(c.nodes[1]?.child.process.exitCode, null, 'the node never exited');
    assert.deepEqual(await userMessages(c, thread), ['before the Redis outage', 'after the Redis outage']);
  });

  it('PostgreSQL: 503 STORE_UNAVAILABLE, /readyz names postgres, runs succeed again once it is back', async () => {
    const c = suite.cluster;
    const thread = ((await (await c.call(1, 'POST', '/v1/threads', {})).json()) as { id: string }).id;
    const committed = await run(c, thread, 'before the PostgreSQL outage');
    assert.equal(committed.body.status, 'succeeded', JSON.stringify(committed));

    await pgProxy.stop();
    const refused = await run(c, thread, 'during the PostgreSQL outage');
    assert.equal(refused.status, 503, JSON.stringify(refused));
    assert.equal(refused.body.error?.code, 'STORE_UNAVAILABLE');
    assert.ok(refused.ms < 5000, `answered in ${refused.ms} ms`);
    const ready = await waitForStatus(`${c.nodes[1]?.url}/readyz`, 503, c.nodes[1]?.child, 10_000);
    const readiness = (await ready.json()) as { status: string; down: string[] };
    assert.deepEqual(readiness.down, ['postgres']);

    await pgProxy.start();
    const seconds = await untilRunsAgain(c, thread, 'after the PostgreSQL outage');
    await waitForStatus(`${c.nodes[1]?.url}/readyz`, 200, c.nodes[1]?.child, 10_000);
    console.log(`PostgreSQL back: node 1 ran again after ${seconds.toFixed(1)} s, without a restart`);
    assert.equal(c.nodes[1]?.child.process.exitCode, null, 'the node never exited');
    assert.deepEqual(await userMessages(c, thread), [
      'before the PostgreSQL outage',
      'after the PostgreSQL outage',
    ]);
  });
});

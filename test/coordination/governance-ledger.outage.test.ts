/**
 * The Redis ledger and rate limiter while Redis cannot be reached: the node talks to Redis through
 * a TCP proxy the test cuts and restores (the real fault a network partition or a Redis restart
 * is). Checks fail fast with 503 COORDINATION_UNAVAILABLE; what the node gave back or settled in
 * the meantime is kept and reaches Redis once it is back, with no restart.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import { RedisGovernanceLedger } from '../../src/coordination/redis/governance-ledger.ts';
import { RedisRateLimiter } from '../../src/coordination/redis/rate-limiter.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { redisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import { refusal, SpendLog, T0 } from './governance-ledger.conformance.ts';

/** A TCP proxy to Redis that can be cut (every connection dropped, new ones refused) and restored. */
async function redisProxy() {
  const target = new URL(TEST_REDIS_URL);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    const s = createServer((client) => {
      const upstream = connect(Number(target.port || 6379), target.hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  await listen();
  return {
    url: () => `redis://127.0.0.1:${port}`,
    async cut() {
      const s = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (s === undefined ? resolve() : s.close(() => resolve())));
    },
    restore: listen,
    close() {
      for (const socket of sockets) socket.destroy();
      server?.close();
    },
  };
}

/** Waits until the client has reconnected by itself. */
async function reconnected(redis: Redis): Promise<void> {
  for (let i = 0; i < 500 && redis.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(redis.status, 'ready', 'ioredis reconnected');
}

describe('the Redis ledger while Redis is unreachable', () => {
  it('refuses checks with COORDINATION_UNAVAILABLE, keeps what runs gave back or spent, and delivers it once Redis is back', async () => {
    const proxy = await redisProxy();
    const { prefix, cleanup } = await redisPrefix('outage');
    const redis = await connectRedis(resolveRedisConnection({ url: proxy.url(), prefix }), 'outage');
    const clock = new ManualClock(T0);
    const ledger = new RedisGovernanceLedger({ redis, prefix, clock });
    try {
      const spend = new SpendLog();
      await ledger.prepare('acme', T0, spend);
      const q = { project: { maxConcurrentRuns: 5 }, agent: {} };
      const hold = await ledger.take('acme', 'agt_a', q, T0);
      const held = await ledger.reserve(hold, { dailyUsd: 10 }, 3, T0, spend);

      await proxy.cut();
      const err = await refusal(() => ledger.take('acme', 'agt_b', q, T0), 'COORDINATION_UNAVAILABLE', {
        dependency: 'redis',
        retryAfterSeconds: 1,
      });
      assert.equal(err.status, 503);
      await refusal(() => ledger.usage('acme', T0), 'COORDINATION_UNAVAILABLE');
      // The run settles and ends while Redis is away: nothing may be lost.
      ledger.charge('acme', 2, T0);
      ledger.unreserve(hold, held, 3);
      ledger.release(hold);
      await ledger.flush();

      await proxy.restore();
      await reconnected(redis);
      await ledger.renew(); // the node's timer does this every renewIntervalMs
      await ledger.flush();
      assert.equal((await ledger.usage('acme', T0)).running, 0, 'the release arrived');
      const w = await ledger.windows('acme', T0, spend);
      assert.deepEqual([w.daily?.spent, w.daily?.reserved], [2, 0], 'the charge and the unreserve arrived');
    } finally {
      await ledger.close();
      redis.disconnect();
      proxy.close();
      await cleanup();
    }
  });

  it('the rate limiter refuses a check while Redis is away and counts again once it is back', async () => {
    const proxy = await redisProxy();
    const { prefix, cleanup } = await redisPrefix('outage');
    const redis = await connectRedis(resolveRedisConnection({ url: proxy.url(), prefix }), 'outage');
    const limiter = new RedisRateLimiter({ redis, prefix });
    try {
      const limit = limiter.forModel('openai/gpt-x', { requestsPerMinute: 2, tokensPerMinute: 100 });
      assert.equal(await limit.take(T0), undefined);
      await proxy.cut();
      await refusal(() => limit.take(T0), 'COORDINATION_UNAVAILABLE');
      limit.addTokens(100, T0);
      await limiter.flush();
      await proxy.restore();
      await reconnected(redis);
      // The next check sends what was kept first, so the tokens count.
      assert.deepEqual(await limit.take(T0 + 1000), { limit: 'tokens', perMinute: 100, waitMs: 59_000 });
    } finally {
      await limiter.close();
      redis.disconnect();
      proxy.close();
      await cleanup();
    }
  });
});

/**
 * The rate limiter conformance suite against the local and Redis adapters, and the promise only a
 * shared limiter makes: a provider's requests per minute hold across nodes (limiters on separate
 * connections, one prefix).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { LocalRateLimiter } from '../../src/coordination/local-rate-limiter.ts';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import { RedisRateLimiter } from '../../src/coordination/redis/rate-limiter.ts';
import { redisPrefix } from '../support/redis.ts';
import { rateLimiterConformance, T0 } from './rate-limiter.conformance.ts';

/** `n` limiters on their own connections sharing a fresh prefix. */
async function openNodes(n: number) {
  const { url, prefix, cleanup } = await redisPrefix('rate');
  const connections: Redis[] = [];
  const limiters: RedisRateLimiter[] = [];
  for (let i = 0; i < n; i++) {
    const redis = await connectRedis(resolveRedisConnection({ url, prefix }), `rate-test-${i}`);
    connections.push(redis);
    limiters.push(new RedisRateLimiter({ redis, prefix }));
  }
  return {
    limiters,
    async close() {
      try {
        await Promise.all(limiters.map((l) => l.close()));
      } finally {
        for (const c of connections) c.disconnect();
        await cleanup();
      }
    },
  };
}

rateLimiterConformance('local', async () => {
  const limiter = new LocalRateLimiter();
  return { limiter, close: () => limiter.close() };
});

rateLimiterConformance('redis', async () => {
  const nodes = await openNodes(1);
  const [limiter] = nodes.limiters;
  assert.ok(limiter !== undefined);
  return { limiter, close: nodes.close };
});

describe('Redis rate limiter shared by several nodes', () => {
  it("60 requests racing over three nodes for a model's 10 per minute: exactly 10 go", async () => {
    const nodes = await openNodes(3);
    try {
      const limits = nodes.limiters.map((l) =>
        l.forModel('openai/gpt-x', { requestsPerMinute: 10, tokensPerMinute: undefined }),
      );
      const answers = await Promise.all(Array.from({ length: 60 }, async (_, i) => limits[i % 3]!.take(T0)));
      assert.equal(answers.filter((a) => a === undefined).length, 10);
      for (const a of answers)
        if (a !== undefined) assert.deepEqual(a, { limit: 'requests', perMinute: 10, waitMs: 60_000 });
    } finally {
      await nodes.close();
    }
  });

  it('tokens one node counted stop the others', async () => {
    const nodes = await openNodes(2);
    try {
      const [a, b] = nodes.limiters.map((l) =>
        l.forModel('openai/gpt-x', { requestsPerMinute: undefined, tokensPerMinute: 1000 }),
      );
      a!.addTokens(1000, T0);
      await nodes.limiters[0]!.flush();
      assert.deepEqual(await b!.take(T0 + 1000), { limit: 'tokens', perMinute: 1000, waitMs: 59_000 });
    } finally {
      await nodes.close();
    }
  });
});

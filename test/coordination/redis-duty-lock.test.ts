/**
 * The Redis duty lock on real Redis: of two nodes one holds a duty, renews it, and the other gets
 * it once it is released or expires; a node whose hold expired cannot release the new holder's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import { RedisDutyLock } from '../../src/coordination/redis/duty-lock.ts';
import { LocalDutyLock } from '../../src/coordination/duty-lock.ts';
import { redisPrefix } from '../support/redis.ts';

describe('duty lock', () => {
  let redis: Redis;
  let prefix: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    const r = await redisPrefix('duty');
    prefix = r.prefix;
    cleanup = r.cleanup;
    redis = await connectRedis(resolveRedisConnection({ url: r.url, prefix }), 'duty-test');
  });
  after(async () => {
    redis.disconnect();
    await cleanup();
  });

  it('gives a duty to one node at a time, renewed by its holder, taken by another once released', async () => {
    const a = new RedisDutyLock({ redis, prefix, nodeId: 'node-a' });
    const b = new RedisDutyLock({ redis, prefix, nodeId: 'node-b' });
    assert.equal(await a.hold('retention', 60_000), true);
    assert.equal(await b.hold('retention', 60_000), false);
    assert.equal(await a.hold('retention', 60_000), true, 'renewed');
    assert.equal(await b.hold('other', 60_000), true, 'duties are apart');
    await b.release('retention'); // not b's: nothing happens
    assert.equal(await b.hold('retention', 60_000), false);
    await a.release('retention');
    assert.equal(await b.hold('retention', 60_000), true);
  });

  it('lets a hold expire: another node takes it, and the late holder cannot release it', async () => {
    const a = new RedisDutyLock({ redis, prefix, nodeId: 'node-a' });
    const b = new RedisDutyLock({ redis, prefix, nodeId: 'node-b' });
    assert.equal(await a.hold('sweep', 30), true);
    const deadline = Date.now() + 5000;
    while (!(await b.hold('sweep', 60_000))) {
      assert.ok(Date.now() < deadline, 'the hold should expire');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await a.release('sweep');
    assert.equal(await a.hold('sweep', 60_000), false, "b's hold stands");
  });

  it('always grants a duty to a node alone', async () => {
    const local = new LocalDutyLock();
    assert.equal(await local.hold(), true);
    assert.equal(await local.hold(), true);
  });
});

/**
 * The thread leases conformance suite against the Redis adapter, each node a RedisThreadLeases on
 * its own connections, all on one fresh prefix; then what only shared leases promise, with real
 * faults: fencing tokens keep increasing across nodes, lease expiry and a lost fence key; a node
 * that stops renewing loses its lease to a waiter elsewhere; a renewal that finds its lease taken
 * aborts the run with LEASE_LOST; a dead node's waiter is skipped; Redis cut through a TCP proxy
 * refuses claims with COORDINATION_UNAVAILABLE and they work again once it is back; and many
 * concurrent claims over three nodes never see two holders.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import {
  RedisThreadLeases,
  type RedisThreadLeasesOptions,
  resolveRedisThreadLeasesOptions,
} from '../../src/coordination/redis/thread-leases.ts';
import { systemClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { redisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';
import {
  abortedWithin,
  entrant,
  LIMIT,
  settledWithin,
  threadLeasesConformance,
  type ThreadLeasesCluster,
} from './thread-leases.conformance.ts';

const FAST: RedisThreadLeasesOptions = { leaseTtlMs: 2000, renewIntervalMs: 200, pollMs: 50 };

/** Clusters still open: closed after the last test even if one timed out, so the file always exits. */
const open = new Set<{ close(): Promise<void> }>();
after(async () => {
  for (const c of open) await c.close();
});

interface Node {
  readonly leases: RedisThreadLeases;
  readonly redis: Redis;
  readonly subscriber: Redis;
}

/** `n` nodes on one fresh prefix, each with its own command and subscriber connections. */
async function openCluster(
  n: number,
  options: RedisThreadLeasesOptions = FAST,
  url?: (i: number) => string | undefined,
) {
  const { url: redisUrl, prefix, cleanup } = await redisPrefix('leases');
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const conn = resolveRedisConnection({ url: url?.(i) ?? redisUrl, prefix });
    const redis = await connectRedis(conn, `leases-${i}`);
    const subscriber = await connectRedis(conn, `leases-sub-${i}`);
    const leases = new RedisThreadLeases(
      { redis, subscriber, prefix, nodeId: `node-${i}`, clock: systemClock },
      options,
    );
    nodes.push({ leases, redis, subscriber });
  }
  const admin = await connectRedis(resolveRedisConnection({ url: redisUrl, prefix }), 'leases-admin');
  const cluster: ThreadLeasesCluster & { nodes: RedisThreadLeases[] } = {
    nodes: nodes.map((x) => x.leases),
    async settle() {
      // After the claims' scripts are sent, a PING on each connection answers only once they ran.
      await new Promise((r) => setImmediate(r));
      await Promise.all(
        nodes.map((x) => (x.redis.status === 'ready' ? x.redis.ping() : Promise.resolve(''))),
      );
    },
    async close() {
      if (!open.delete(cluster)) return;
      try {
        await Promise.all(nodes.map((x) => x.leases.close()));
      } finally {
        for (const x of nodes) {
          x.redis.disconnect();
          x.subscriber.disconnect();
        }
        admin.disconnect();
        await cleanup();
      }
    },
  };
  open.add(cluster);
  /** The node stops: its connections close with nothing released (kill -9 as Redis sees it). */
  const kill = (i: number) => {
    const x = nodes[i];
    assert.ok(x !== undefined);
    x.redis.disconnect();
    x.subscriber.disconnect();
  };
  const key = (threadId: string, what: string) => `${prefix}thread:{${threadId}}:${what}`;
  return { ...cluster, cluster, admin, kill, key, prefix, connections: nodes };
}

const at = <T>(xs: readonly T[], i: number): T => {
  const x = xs[i];
  assert.ok(x !== undefined);
  return x;
};

threadLeasesConformance('redis', async ({ nodes, maxQueue }) => {
  const c = await openCluster(nodes, { ...FAST, ...(maxQueue !== undefined && { maxQueue }) });
  return c.cluster;
});

describe('Redis thread leases options', () => {
  it('pins the defaults: 15 s leases renewed every 5 s, polls every 500 ms, 100 waiters', LIMIT, () => {
    assert.deepEqual(resolveRedisThreadLeasesOptions(), {
      leaseTtlMs: 15_000,
      renewIntervalMs: 5000,
      pollMs: 500,
      maxQueue: 100,
    });
    assert.deepEqual(resolveRedisThreadLeasesOptions({ leaseTtlMs: 600 }), {
      leaseTtlMs: 600,
      renewIntervalMs: 200,
      pollMs: 200,
      maxQueue: 100,
    });
  });

  it('rejects bad values naming the field', LIMIT, () => {
    const bad: [RedisThreadLeasesOptions, RegExp][] = [
      [{ leaseTtlMs: 0 }, /threadLeases\.leaseTtlMs/],
      [{ leaseTtlMs: 1.5 }, /threadLeases\.leaseTtlMs/],
      [{ leaseTtlMs: 1000, renewIntervalMs: 1000 }, /threadLeases\.renewIntervalMs/],
      [{ leaseTtlMs: 1000, pollMs: 5000 }, /threadLeases\.pollMs/],
      [{ maxQueue: 0 }, /threadLeases\.maxQueue/],
      [{ ttl: 5 } as RedisThreadLeasesOptions, /threadLeases\.ttl is not a known field/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => resolveRedisThreadLeasesOptions(options),
        (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && message.test(e.message),
      );
    }
  });
});

describe('Redis thread leases across nodes', () => {
  it(
    'tokens strictly increase across nodes, across lease expiry, and even when the fence key is lost',
    LIMIT,
    async () => {
      const c = await openCluster(3, { leaseTtlMs: 300, renewIntervalMs: 100, pollMs: 50 });
      try {
        const tokens: number[] = [];
        for (let i = 0; i < 6; i++) {
          const n = at(c.nodes, i % 3);
          const e = entrant(`r${i}`);
          const token = await n.claim('t', e, 'reject');
          assert.equal(typeof token, 'number');
          tokens.push(token ?? 0);
          assert.equal(n.fenced, true);
          n.release('t', e);
          await c.settle();
        }
        // A node dies holding the thread: its lease expires, the next claim gets a higher token.
        await at(c.nodes, 2).claim('t', entrant('dies'), 'reject');
        const [stored] = await c.admin.hmget(c.key('t', 'lease'), 'token');
        tokens.push(Number(stored));
        c.kill(2);
        await new Promise((r) => setTimeout(r, 400));
        const survivor = entrant('after-expiry');
        tokens.push((await at(c.nodes, 0).claim('t', survivor, 'enqueue')) ?? 0);
        at(c.nodes, 0).release('t', survivor);
        await c.settle();
        // The fence key expired (10 minutes idle) or Redis lost it: tokens restart from Redis time, higher still.
        await c.admin.del(c.key('t', 'fence'));
        tokens.push((await at(c.nodes, 1).claim('t', entrant('after-fence-loss'), 'enqueue')) ?? 0);
        for (let i = 1; i < tokens.length; i++) {
          assert.ok(at(tokens, i) > at(tokens, i - 1), `token ${i} (${tokens.join(', ')})`);
        }
        assert.ok(
          Number(await c.admin.pttl(c.key('t', 'fence'))) > 590_000,
          'the fence lives 10 minutes after the last claim',
        );
      } finally {
        await c.close();
      }
    },
  );

  it(
    'a node that stops renewing loses its lease after the ttl, and a waiter on another node gets it with a higher token',
    LIMIT,
    async () => {
      const c = await openCluster(2, { leaseTtlMs: 500, renewIntervalMs: 100, pollMs: 50 });
      try {
        const token = (await at(c.nodes, 0).claim('t', entrant('a'), 'reject')) ?? 0;
        const b = entrant('b');
        const waiting = at(c.nodes, 1).claim('t', b, 'enqueue');
        await c.settle();
        // Alive, it keeps the thread well past the ttl by renewing it.
        await new Promise((r) => setTimeout(r, 800));
        assert.equal(await settledWithin(waiting, 0), false, 'renewed while its node lives');
        assert.equal(await c.admin.hget(c.key('t', 'lease'), 'run'), 'a');
        const started = Date.now();
        c.kill(0);
        assert.equal(await settledWithin(waiting, 250), false, 'still held within the ttl');
        const next = (await waiting) ?? 0;
        assert.ok(Date.now() - started >= 400, 'not before the lease expired');
        assert.ok(next > token);
        assert.equal(at(c.nodes, 1).holds('t', 'b'), true);
      } finally {
        await c.close();
      }
    },
  );

  it(
    'a renewal that finds the lease taken by another run aborts its run with LEASE_LOST',
    LIMIT,
    async () => {
      const c = await openCluster(3, { leaseTtlMs: 2000, renewIntervalMs: 100, pollMs: 50 });
      try {
        const a = entrant('a');
        await at(c.nodes, 0).claim('t', a, 'reject');
        // The lease vanished (as after a long pause of node 0) and another run took the thread.
        await c.admin.del(c.key('t', 'lease'));
        const b = entrant('b');
        await at(c.nodes, 1).claim('t', b, 'reject');
        const reason = await abortedWithin(a, 2000);
        assert.ok(isAgentPoolError(reason, 'LEASE_LOST'));
        assert.equal(reason.details['threadId'], 't');
        assert.equal(at(c.nodes, 0).holds('t', 'a'), false);
        assert.equal(at(c.nodes, 0).held, 0);
        // Its late release does not free the thread for anyone else.
        at(c.nodes, 0).release('t', a);
        await c.settle();
        await assert.rejects(
          at(c.nodes, 2).claim('t', entrant('c'), 'reject'),
          (e) => isAgentPoolError(e, 'THREAD_BUSY') && e.details['activeRunId'] === 'b',
        );
        assert.equal(b.controller.signal.aborted, false);
      } finally {
        await c.close();
      }
    },
  );

  it("skips a dead node's waiter: the next live one gets the thread at the release", LIMIT, async () => {
    const c = await openCluster(3, { leaseTtlMs: 600, renewIntervalMs: 100, pollMs: 50 });
    try {
      const a = entrant('a');
      await at(c.nodes, 0).claim('t', a, 'reject');
      const dead = at(c.nodes, 1).claim('t', entrant('dead'), 'enqueue');
      dead.catch(() => undefined);
      await c.settle();
      const live = at(c.nodes, 2).claim('t', entrant('live'), 'enqueue');
      await c.settle();
      assert.deepEqual(await c.admin.zrange(c.key('t', 'queue'), 0, -1), ['dead', 'live']);
      c.kill(1);
      await new Promise((r) => setTimeout(r, 750)); // its waiter's liveness key expires
      assert.equal(a.controller.signal.aborted, false, 'the live holder kept its lease past the ttl');
      at(c.nodes, 0).release('t', a);
      // At once: the thread is not handed to the dead waiter to sit out its ttl.
      assert.equal(await settledWithin(live, 300), true);
      assert.ok(typeof (await live) === 'number');
      assert.equal(at(c.nodes, 2).holds('t', 'live'), true);
      assert.equal(await c.admin.hget(c.key('t', 'lease'), 'run'), 'live');
    } finally {
      await c.close();
    }
  });

  it('an interrupt waits out the lease of a dead holder, then takes the thread', LIMIT, async () => {
    const c = await openCluster(2, { leaseTtlMs: 300, renewIntervalMs: 100, pollMs: 50 });
    try {
      await at(c.nodes, 0).claim('t', entrant('a'), 'reject');
      c.kill(0);
      const i = entrant('i');
      const got = at(c.nodes, 1).claim('t', i, 'interrupt');
      assert.equal(await settledWithin(got, 100), false);
      assert.equal(typeof (await got), 'number');
      assert.equal(at(c.nodes, 1).holds('t', 'i'), true);
    } finally {
      await c.close();
    }
  });

  it(
    'a renewal aborts a holder whose interrupt message was lost, from the mark on its lease',
    LIMIT,
    async () => {
      const c = await openCluster(1, { leaseTtlMs: 2000, renewIntervalMs: 100, pollMs: 50 });
      try {
        const a = entrant('a');
        await at(c.nodes, 0).claim('t', a, 'reject');
        // What an interrupt run's script leaves on the lease, without its pub/sub message.
        await c.admin.hset(c.key('t', 'lease'), 'interruptedBy', 'i');
        const reason = await abortedWithin(a, 2000);
        assert.ok(isAgentPoolError(reason, 'RUN_INTERRUPTED'));
        assert.deepEqual(reason.details, { threadId: 't', by: 'i' });
      } finally {
        await c.close();
      }
    },
  );

  it(
    "shares the node's subscriber: ignores other channels and leaves them subscribed at close",
    LIMIT,
    async () => {
      const { url, prefix, cleanup } = await redisPrefix('leases-sub');
      const conn = resolveRedisConnection({ url, prefix });
      const redis = await connectRedis(conn, 'leases-shared');
      const subscriber = await connectRedis(conn, 'leases-shared-sub');
      try {
        const other = `${prefix}other`;
        const heard: string[] = [];
        await subscriber.subscribe(other);
        subscriber.on('message', (channel: string, message: string) => {
          if (channel === other) heard.push(message);
        });
        const leases = new RedisThreadLeases(
          { redis, subscriber, prefix, nodeId: 'n', clock: systemClock },
          FAST,
        );
        const a = entrant('a');
        await leases.claim('t', a, 'reject');
        await redis.publish(other, JSON.stringify({ e: 'interrupt', t: 't', by: 'x', holder: 'a' }));
        await redis.publish(other, 'one');
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(
          a.controller.signal.aborted,
          false,
          'a message on another channel is not for the leases',
        );
        await leases.close();
        assert.equal(subscriber.status, 'ready', 'the shared connection stays open');
        await redis.publish(other, 'two');
        await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(heard.slice(1), ['one', 'two']);
        assert.ok(isAgentPoolError(a.controller.signal.reason, 'RUN_INTERRUPTED'));
        assert.equal((a.controller.signal.reason as Error).message, 'the node is closing');
      } finally {
        redis.disconnect();
        subscriber.disconnect();
        await cleanup();
      }
    },
  );

  it('200 concurrent enqueue claims over three nodes each hold the thread alone', LIMIT, async () => {
    const c = await openCluster(3, { ...FAST, maxQueue: 300 });
    try {
      let holders = 0;
      let most = 0;
      let granted = 0;
      const tokens: number[] = [];
      await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const n = at(c.nodes, i % 3);
          const e = entrant(`r${i}`);
          const token = await n.claim('t', e, 'enqueue');
          holders++;
          most = Math.max(most, holders);
          granted++;
          tokens.push(token ?? 0);
          await new Promise((r) => setImmediate(r));
          holders--;
          n.release('t', e);
        }),
      );
      assert.equal(granted, 200);
      assert.equal(most, 1, 'never two holders');
      for (let i = 1; i < tokens.length; i++) assert.ok(at(tokens, i) > at(tokens, i - 1));
    } finally {
      await c.close();
    }
  });
});

describe('Redis thread leases while Redis is unreachable', () => {
  it(
    'a claim rejects with COORDINATION_UNAVAILABLE, a waiting claim keeps waiting, and both work once Redis is back',
    LIMIT,
    async () => {
      const target = new URL(TEST_REDIS_URL);
      const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      // Node 0 reaches Redis through the proxy; node 1 directly.
      const c = await openCluster(2, { leaseTtlMs: 2000, renewIntervalMs: 200, pollMs: 50 }, (i) =>
        i === 0 ? `redis://127.0.0.1:${proxy.port}` : undefined,
      );
      try {
        const h = entrant('h');
        await at(c.nodes, 1).claim('t', h, 'reject');
        const w = entrant('w');
        const waiting = at(c.nodes, 0).claim('t', w, 'enqueue');
        await c.settle();

        await proxy.stop();
        await assert.rejects(at(c.nodes, 0).claim('u', entrant('x'), 'reject'), (e) => {
          assert.ok(isAgentPoolError(e, 'COORDINATION_UNAVAILABLE'));
          assert.equal(e.status, 503);
          return true;
        });
        await new Promise((r) => setTimeout(r, 200)); // polls fail meanwhile
        assert.equal(await settledWithin(waiting, 0), false, 'the waiting claim still waits');

        await proxy.start();
        await reconnected(at(c.connections, 0).redis);
        const y = entrant('y');
        assert.equal(typeof (await at(c.nodes, 0).claim('u', y, 'reject')), 'number');
        at(c.nodes, 1).release('t', h);
        assert.equal(typeof (await waiting), 'number');
        assert.equal(at(c.nodes, 0).holds('t', 'w'), true);
      } finally {
        await c.close();
        await proxy.close();
      }
    },
  );
});

/** Waits until a connection has reconnected by itself. */
async function reconnected(redis: Redis): Promise<void> {
  for (let i = 0; i < 500 && redis.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(redis.status, 'ready', 'ioredis reconnected');
}

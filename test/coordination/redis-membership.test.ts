/**
 * The Redis membership with real Redis and real timers (short intervals): nodes list each other
 * with their stats; a node that dies without leaving (its connection dropped, as a killed process's
 * is) is swept exactly once by the others, in time, then forgotten; a graceful leave is never
 * swept; a failing sweep is retried; and Redis outages, through a TCP proxy the test cuts: one that
 * every node suffers sweeps no one, one that cuts a single node off sweeps that node.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { type Clock, systemClock } from '../../src/core/clock.ts';
import type { NodeInfo, NodeStats } from '../../src/coordination/membership.ts';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import {
  RedisMembership,
  type RedisMembershipOptions,
  resolveRedisMembershipOptions,
} from '../../src/coordination/redis/membership.ts';
import { redisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const FAST = { heartbeatMs: 100, deadAfterMs: 600, sweepIntervalMs: 100 } as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

interface TestNode {
  readonly id: string;
  readonly membership: RedisMembership;
  readonly redis: Redis;
  stats: NodeStats;
  /** Every sweep this node ran, by dead node id. */
  readonly swept: string[];
}

/** A cluster of test nodes on one fresh prefix; each node has its own connection. */
async function cluster(options: RedisMembershipOptions = FAST) {
  const { url, prefix, cleanup } = await redisPrefix('members');
  const nodes: TestNode[] = [];
  const stops: (() => void)[] = [];
  const admin = new Redis(TEST_REDIS_URL);
  return {
    prefix,
    admin,
    /** Opens a node (through `proxy` when given) and joins it. */
    async node(id: string, proxy?: TcpProxy, clock: Clock = systemClock): Promise<TestNode> {
      const nodeUrl = proxy === undefined ? url : `redis://127.0.0.1:${proxy.port}`;
      const redis = await connectRedis(resolveRedisConnection({ url: nodeUrl, prefix }), id);
      const membership = new RedisMembership({ redis, prefix, nodeId: id, clock }, options);
      const node: TestNode = {
        id,
        membership,
        redis,
        stats: { runsInFlight: 0, liveInstances: 0, threadsHeld: 0 },
        swept: [],
      };
      nodes.push(node);
      await membership.join({ address: `http://${id}.local:8080`, startedAt: 1000 }, () => node.stats);
      return node;
    },
    /** Starts `node` watching with a sweep that records, then runs `then`. */
    watch(node: TestNode, then: (id: string, info: NodeInfo) => Promise<void> = async () => undefined) {
      stops.push(
        node.membership.watch(async (id, info) => {
          node.swept.push(id);
          await then(id, info);
        }),
      );
    },
    /** Every sweep of every node. */
    swept: () => nodes.flatMap((n) => n.swept),
    async close() {
      for (const stop of stops) stop();
      for (const n of nodes) {
        if (n.redis.status === 'ready') await n.membership.leave().catch(() => undefined);
        n.redis.disconnect();
      }
      admin.disconnect();
      await cleanup();
    },
  };
}

/** A crash as Redis sees it: the node's connection is gone and nothing of it beats any more. */
function crash(node: TestNode): number {
  node.redis.disconnect();
  return Date.now();
}

describe('Redis membership', () => {
  it('pins its defaults and rejects bad options by field name', () => {
    assert.deepEqual(resolveRedisMembershipOptions(), {
      heartbeatMs: 2000,
      deadAfterMs: 10_000,
      sweepIntervalMs: 2000,
    });
    assert.throws(
      () => resolveRedisMembershipOptions({ heartbeatMs: 5000, deadAfterMs: 5000 }),
      /membership\.deadAfterMs must be more than membership\.heartbeatMs \(5000\), got 5000/,
    );
    assert.throws(() => resolveRedisMembershipOptions({ sweepIntervalMs: 0 }), /membership\.sweepIntervalMs/);
    assert.throws(
      () => resolveRedisMembershipOptions({ beat: 1 } as RedisMembershipOptions),
      /membership\.beat is not a known field/,
    );
  });

  it('three nodes list each other, by id, with the stats of their last heartbeat', async () => {
    const c = await cluster();
    try {
      const b = await c.node('node-b');
      const a = await c.node('node-a');
      const n3 = await c.node('node-c');
      a.stats = { runsInFlight: 3, liveInstances: 7, threadsHeld: 2 };
      await sleep(FAST.heartbeatMs * 3);
      const time = await c.admin.time();
      const redisNow = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      for (const viewer of [a, b, n3]) {
        const nodes = await viewer.membership.nodes();
        assert.deepEqual(
          nodes.map((n) => n.id),
          ['node-a', 'node-b', 'node-c'],
        );
        const first = nodes[0]!;
        assert.deepEqual(
          { ...first, heartbeatAt: 0 },
          {
            id: 'node-a',
            address: 'http://node-a.local:8080',
            startedAt: 1000,
            heartbeatAt: 0,
            runsInFlight: 3,
            liveInstances: 7,
            threadsHeld: 2,
          },
        );
        for (const n of nodes) {
          assert.ok(
            redisNow - n.heartbeatAt <= FAST.heartbeatMs * 3,
            `${n.id} beat recently by Redis's clock`,
          );
        }
      }
    } finally {
      await c.close();
    }
  });

  it('a node that dies without leaving is swept exactly once across the others, in time, then no longer listed', async () => {
    const c = await cluster();
    try {
      const a = await c.node('node-a');
      const b = await c.node('node-b');
      const n3 = await c.node('node-c');
      const infos: NodeInfo[] = [];
      c.watch(b, async (_id, info) => void infos.push(info));
      c.watch(n3, async (_id, info) => void infos.push(info));
      a.stats = { runsInFlight: 2, liveInstances: 1, threadsHeld: 1 };
      await sleep(FAST.heartbeatMs * 2);
      const crashedAt = crash(a);
      await until('node-a is swept', () => c.swept().length > 0);
      const elapsed = Date.now() - crashedAt;
      assert.ok(elapsed >= FAST.deadAfterMs - FAST.heartbeatMs - 50, `not swept too early (${elapsed} ms)`);
      assert.ok(elapsed <= FAST.deadAfterMs + FAST.sweepIntervalMs + 500, `swept in time (${elapsed} ms)`);
      await sleep(FAST.sweepIntervalMs * 5);
      assert.deepEqual(c.swept(), ['node-a'], 'exactly once, cluster-wide');
      assert.equal(infos[0]?.runsInFlight, 2, 'the sweep is told what the node last reported');
      assert.equal(infos[0]?.address, 'http://node-a.local:8080');
      assert.deepEqual(
        (await b.membership.nodes()).map((n) => n.id),
        ['node-b', 'node-c'],
      );
      assert.equal(await c.admin.zscore(`${c.prefix}nodes:beats`, 'node-a'), null, 'forgotten');
      assert.equal(await c.admin.hexists(`${c.prefix}nodes`, 'node-a'), 0, 'forgotten');
    } finally {
      await c.close();
    }
  });

  it("heartbeats are stamped by Redis's clock: a node whose clock is an hour off neither looks dead nor sweeps", async () => {
    const c = await cluster();
    try {
      const ahead: Clock = { now: () => Date.now() + 3_600_000, setTimeout: systemClock.setTimeout };
      const behind: Clock = { now: () => Date.now() - 3_600_000, setTimeout: systemClock.setTimeout };
      const a = await c.node('node-a', undefined, ahead);
      const b = await c.node('node-b', undefined, behind);
      c.watch(a);
      c.watch(b);
      await sleep(FAST.deadAfterMs + FAST.sweepIntervalMs * 3);
      assert.deepEqual(c.swept(), []);
      const time = await c.admin.time();
      const redisNow = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      for (const n of await a.membership.nodes()) {
        assert.ok(Math.abs(redisNow - n.heartbeatAt) <= FAST.heartbeatMs * 3, `${n.id} stamped by Redis`);
      }
      assert.equal((await b.membership.nodes()).length, 2);
    } finally {
      await c.close();
    }
  });

  it('leave() removes a node at once, and it is never swept', async () => {
    const c = await cluster();
    try {
      const a = await c.node('node-a');
      const b = await c.node('node-b');
      c.watch(b);
      c.watch(a);
      await a.membership.leave();
      assert.deepEqual(
        (await b.membership.nodes()).map((n) => n.id),
        ['node-b'],
      );
      await sleep(FAST.deadAfterMs + FAST.sweepIntervalMs * 4);
      assert.deepEqual(c.swept(), []);
      assert.deepEqual(
        (await b.membership.nodes()).map((n) => n.id),
        ['node-b'],
        'a heartbeat in flight did not bring it back',
      );
    } finally {
      await c.close();
    }
  });

  it('a sweep that throws is retried at the next check, and the node is forgotten once one succeeds', async () => {
    const c = await cluster();
    try {
      const a = await c.node('node-a');
      const b = await c.node('node-b');
      const n3 = await c.node('node-c');
      let failures = 2;
      /** node-a's heartbeat as each failing sweep saw it: kept while sweeps fail. */
      const keptWhileFailing: (string | null)[] = [];
      const flaky = async () => {
        if (failures-- > 0) {
          keptWhileFailing.push(await c.admin.zscore(`${c.prefix}nodes:beats`, 'node-a'));
          throw new Error('the run store is away');
        }
      };
      c.watch(b, flaky);
      c.watch(n3, flaky);
      crash(a);
      await until('a sweep failed twice', () => c.swept().length >= 2);
      await until('both failures looked', () => keptWhileFailing.length === 2);
      for (const beat of keptWhileFailing) assert.notEqual(beat, null, 'kept while sweeps fail');
      await until('a sweep succeeded', () => c.swept().length >= 3);
      await sleep(FAST.sweepIntervalMs * 5);
      assert.deepEqual(c.swept(), ['node-a', 'node-a', 'node-a'], 'no sweep after the one that succeeded');
      assert.equal(await c.admin.zscore(`${c.prefix}nodes:beats`, 'node-a'), null, 'forgotten');
    } finally {
      await c.close();
    }
  });

  it('join() rejects COORDINATION_UNAVAILABLE when Redis cannot be reached', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(TEST_REDIS_URL).port || 6379) });
    const c = await cluster();
    try {
      const redis = await connectRedis(
        resolveRedisConnection({ url: `redis://127.0.0.1:${proxy.port}`, prefix: c.prefix }),
        'node-x',
      );
      try {
        const m = new RedisMembership(
          { redis, prefix: c.prefix, nodeId: 'node-x', clock: systemClock },
          FAST,
        );
        await proxy.stop();
        await assert.rejects(
          m.join({ address: null, startedAt: 0 }, () => ({
            runsInFlight: 0,
            liveInstances: 0,
            threadsHeld: 0,
          })),
          (err) => isAgentPoolError(err, 'COORDINATION_UNAVAILABLE'),
        );
      } finally {
        redis.disconnect();
      }
    } finally {
      await proxy.close();
      await c.close();
    }
  });

  it('Redis away for every node: nodes() rejects COORDINATION_UNAVAILABLE, no one is swept for it, heartbeats resume', async () => {
    // Longer than deadAfterMs: without the outage grace the first node back would sweep the others,
    // which come back a little later (their own proxy is restored 300 ms after the first one's).
    // deadAfterMs leaves room for the clients' reconnect backoff after Redis returns.
    const options = { heartbeatMs: 100, deadAfterMs: 2000, sweepIntervalMs: 100 };
    const target = { host: '127.0.0.1', port: Number(new URL(TEST_REDIS_URL).port || 6379) };
    const first = await tcpProxy(target);
    const later = await tcpProxy(target);
    const c = await cluster(options);
    try {
      const nodes = [
        await c.node('node-a', first),
        await c.node('node-b', later),
        await c.node('node-c', later),
      ];
      for (const n of nodes) c.watch(n);
      await sleep(options.heartbeatMs * 2);
      await Promise.all([first.stop(), later.stop()]);
      const started = Date.now();
      await assert.rejects(nodes[0]!.membership.nodes(), (err) => {
        assert.ok(isAgentPoolError(err, 'COORDINATION_UNAVAILABLE'));
        assert.equal(err.status, 503);
        return true;
      });
      assert.ok(Date.now() - started < 1000, 'fails fast');
      await sleep(options.deadAfterMs + 500 - (Date.now() - started));
      await first.start();
      await until('node-a reconnected', () => nodes[0]!.redis.status === 'ready');
      await sleep(300);
      await later.start();
      await until('every node reconnected', () => nodes.every((n) => n.redis.status === 'ready'));
      await until('every node is listed again', async () => {
        const ids = (await nodes[1]!.membership.nodes()).map((n) => n.id);
        return ids.length === 3;
      });
      await sleep(options.deadAfterMs + options.sweepIntervalMs * 3);
      assert.deepEqual(c.swept(), [], 'no node was declared dead for an outage nobody could see past');
      assert.deepEqual(
        (await nodes[2]!.membership.nodes()).map((n) => n.id),
        ['node-a', 'node-b', 'node-c'],
      );
    } finally {
      await c.close();
      await first.close();
      await later.close();
    }
  });

  it('a node cut off alone is swept by the nodes that still reach Redis, and listed again when it is back', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: Number(new URL(TEST_REDIS_URL).port || 6379) });
    const c = await cluster();
    try {
      const a = await c.node('node-a', proxy);
      const b = await c.node('node-b');
      const n3 = await c.node('node-c');
      for (const n of [a, b, n3]) c.watch(n);
      await proxy.stop();
      await until('node-a is swept', () => c.swept().length > 0);
      await sleep(FAST.sweepIntervalMs * 3);
      assert.deepEqual(c.swept(), ['node-a']);
      assert.deepEqual(b.swept.length + n3.swept.length, 1, 'by a node that reaches Redis');
      await proxy.start();
      await until('node-a is listed again', async () =>
        (await b.membership.nodes()).some((n) => n.id === 'node-a'),
      );
      await sleep(FAST.deadAfterMs + FAST.sweepIntervalMs * 2);
      assert.deepEqual(c.swept(), ['node-a'], 'not swept again once it beats');
      assert.deepEqual(
        (await a.membership.nodes()).map((n) => n.id),
        ['node-a', 'node-b', 'node-c'],
      );
    } finally {
      await c.close();
      await proxy.close();
    }
  });
});

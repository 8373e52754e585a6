/**
 * The Redis event bus on real Redis: three buses with their own connections on one prefix stand
 * for three nodes. Relayed events reach every node once, the rest stay local; a subscriber cut and
 * restored through a TCP proxy is announced (what was published meanwhile is lost, which is why);
 * listener errors and failed publishes are reported, never thrown at the emitter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import { RedisEventBus } from '../../src/coordination/redis/event-bus.ts';
import type { Logger } from '../../src/core/logger.ts';
import { type BusEvent, LocalEventBus } from '../../src/events/bus.ts';
import { redisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import { type TcpProxy, tcpProxy } from '../support/tcp-proxy.ts';

type E =
  | (BusEvent & { type: 'agent.created'; name: string })
  | (BusEvent & { type: 'instance.activated'; id: string });

const relay = (event: E) => event.type.startsWith('agent.');
const created = (name: string): E => ({ type: 'agent.created', at: 1, name });

interface Node {
  bus: RedisEventBus<E>;
  redis: Redis;
  subscriber: Redis;
  /** Every event this node's listeners got, as `type:name|id`. */
  got: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

function label(event: E): string {
  return `${event.type}:${event.type === 'agent.created' ? event.name : event.id}`;
}

/** A logger whose lines the test reads. */
function capture(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** Nodes on one fresh prefix, closed (and the prefix deleted) after `body`. */
async function cluster(
  specs: { redisUrl?: string; subscriberUrl?: string; local?: LocalEventBus<E>; logger?: Logger }[],
  body: (nodes: Node[], prefix: string) => Promise<void>,
): Promise<void> {
  const { url, prefix, cleanup } = await redisPrefix('bus');
  const nodes: Node[] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      const redis = await connectRedis(
        resolveRedisConnection({ url: spec.redisUrl ?? url, prefix }),
        `bus-${i}`,
      );
      const subscriber = await connectRedis(
        resolveRedisConnection({ url: spec.subscriberUrl ?? url, prefix }),
        `bus-${i}-sub`,
      );
      const bus = new RedisEventBus<E>({
        redis,
        subscriber,
        prefix,
        nodeId: `node-${i}`,
        relay,
        ...(spec.local === undefined ? {} : { local: spec.local }),
        ...(spec.logger === undefined ? {} : { logger: spec.logger }),
      });
      const node: Node = { bus, redis, subscriber, got: [] };
      nodes.push(node);
      await bus.ready();
      bus.on('*', (event) => node.got.push(label(event)));
    }
    await body(nodes, prefix);
  } finally {
    for (const node of nodes) {
      await node.bus.close();
      node.redis.disconnect();
      node.subscriber.disconnect();
    }
    await cleanup();
  }
}

async function proxyToRedis(): Promise<TcpProxy & { url: string }> {
  const target = new URL(TEST_REDIS_URL);
  const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
  return Object.assign(proxy, { url: `redis://127.0.0.1:${proxy.port}` });
}

describe('Redis event bus', () => {
  it('delivers a relayed event once to the listeners of every node, the emitter’s own included', async () => {
    await cluster([{}, {}, {}], async ([a, b, c]) => {
      assert.ok(a && b && c);
      a.bus.emit(created('first'));
      assert.deepEqual(a.got, ['agent.created:first'], 'delivered locally at once, synchronously');
      a.bus.emit(created('last'));
      await until('B and C got both', () => b.got.length >= 2 && c.got.length >= 2);
      await sleep(100); // a re-published or echoed copy would have come by now
      for (const node of [a, b, c]) assert.deepEqual(node.got, ['agent.created:first', 'agent.created:last']);
    });
  });

  it('keeps events it does not relay on the emitting node', async () => {
    await cluster([{}, {}], async ([a, b]) => {
      assert.ok(a && b);
      a.bus.emit({ type: 'instance.activated', at: 1, id: 'ins_1' });
      a.bus.emit(created('after'));
      await until('B got the relayed event', () => b.got.length >= 1);
      assert.deepEqual(b.got, ['agent.created:after']);
      assert.deepEqual(a.got, ['instance.activated:ins_1', 'agent.created:after']);
      assert.equal(b.bus.hasListeners('instance.activated'), true);
    });
  });

  it('tells its owner when the subscriber connection was cut and restored, and hears the other nodes again', async () => {
    const proxy = await proxyToRedis();
    try {
      await cluster([{}, { subscriberUrl: proxy.url }], async ([a, b]) => {
        assert.ok(a && b);
        let resubscribed = 0;
        b.bus.onResubscribed(() => resubscribed++);
        a.bus.emit(created('before'));
        await until('B heard A', () => b.got.length === 1);
        assert.equal(resubscribed, 0);

        await proxy.stop();
        await until('B’s subscriber noticed', () => b.subscriber.status !== 'ready');
        a.bus.emit(created('lost'));
        await sleep(50);
        await proxy.start();
        await until('B resubscribed', () => resubscribed === 1);

        a.bus.emit(created('after'));
        await until('B heard A again', () => b.got.length === 2);
        // Pub/sub is at most once: what was published while B was away never reached it, which is
        // why the owner is told to re-read.
        assert.deepEqual(b.got, ['agent.created:before', 'agent.created:after']);
        assert.equal(resubscribed, 1);
      });
    } finally {
      await proxy.close();
    }
  });

  it('reports a listener’s error on the receiving and the emitting node instead of throwing it', async () => {
    const errors: unknown[] = [];
    const { logger, lines } = capture();
    const local = new LocalEventBus<E>({ onListenerError: (err) => errors.push(err) });
    await cluster([{ logger }, { local }], async ([a, b]) => {
      assert.ok(a && b);
      const bad = () => {
        throw new Error('listener failed');
      };
      a.bus.on('agent.created', bad);
      b.bus.on('agent.created', bad);
      assert.doesNotThrow(() => a.bus.emit(created('x')));
      await until('B got it', () => b.got.length === 1);
      assert.equal(errors.length, 1);
      assert.match(String(errors[0]), /listener failed/);
      assert.ok(lines.some((l) => l.level === 50 && /listener threw/.test(l.msg)));
    });
  });

  it('logs a publish that fails and goes on delivering locally', async () => {
    const proxy = await proxyToRedis();
    const { logger, lines } = capture();
    try {
      await cluster([{ redisUrl: proxy.url, logger }, {}], async ([a, b]) => {
        assert.ok(a && b);
        await proxy.stop();
        await until('A’s connection noticed', () => a.redis.status !== 'ready');
        assert.doesNotThrow(() => a.bus.emit(created('unsent')));
        assert.deepEqual(a.got, ['agent.created:unsent']);
        await until('the failure was logged', () =>
          lines.some((l) => l.level === 40 && /could not be relayed/.test(l.msg)),
        );
        assert.deepEqual(b.got, []);
      });
    } finally {
      await proxy.close();
    }
  });

  it('leaves only its own channel when closed, on a subscriber shared with others', async () => {
    await cluster([{}, {}], async ([a, b], prefix) => {
      assert.ok(a && b);
      const other = `${prefix}someone-else`;
      const heard: string[] = [];
      b.subscriber.on('message', (channel: string, message: string) => {
        if (channel === other) heard.push(message);
      });
      await b.subscriber.subscribe(other);
      await b.bus.close();
      a.bus.emit(created('after-close'));
      await a.redis.publish(other, 'still here');
      await until('the other channel was heard', () => heard.length === 1);
      await sleep(50);
      assert.deepEqual(b.got, []);
      assert.equal(b.subscriber.status, 'ready', 'the shared connection stays open');
    });
  });
});

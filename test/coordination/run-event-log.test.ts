/**
 * The Redis run event log on real Redis: two logs with their own connections on one prefix stand
 * for two nodes, so a stream written by one node is read and followed on the other. Bounds
 * (length, age, events kept during an outage), the poll that covers a lost notice, and an outage
 * through a TCP proxy that is cut and restored.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import {
  RedisRunEventLog,
  type RedisRunEventLogOptions,
  resolveRedisRunEventLogOptions,
} from '../../src/coordination/redis/run-event-log.ts';
import type { LoggedRunEvent } from '../../src/coordination/run-event-log.ts';
import type { Logger } from '../../src/core/logger.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { redisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';

interface TestEvent extends LoggedRunEvent {
  readonly delta?: string;
}

const RUN = 'run_0001';

function event(seq: number, type = 'text.delta', runId = RUN): TestEvent {
  return type === 'text.delta'
    ? { seq, runId, at: 1_000 + seq, type, delta: `d${seq}` }
    : { seq, runId, at: 1_000 + seq, type };
}

/** Events 1…n of RUN, the last one terminal. */
function run(n: number): TestEvent[] {
  return Array.from({ length: n }, (_, i) => event(i + 1, i + 1 === n ? 'run.finished' : 'text.delta'));
}

/** A node's log with its own command and subscriber connections. */
async function node(
  url: string,
  prefix: string,
  options?: RedisRunEventLogOptions,
  logger?: Logger,
  subscriberUrl = url,
): Promise<{ log: RedisRunEventLog<TestEvent>; redis: Redis; close: () => Promise<void> }> {
  const redis = await connectRedis(resolveRedisConnection({ url, prefix }), 'events-test');
  const subscriber = await connectRedis(
    resolveRedisConnection({ url: subscriberUrl, prefix }),
    'events-test-sub',
  );
  const log = new RedisRunEventLog<TestEvent>(
    { redis, subscriber, prefix, ...(logger === undefined ? {} : { logger }) },
    options,
  );
  await log.ready();
  return {
    log,
    redis,
    close: async () => {
      try {
        await log.close();
      } finally {
        redis.disconnect();
        subscriber.disconnect();
      }
    },
  };
}

/** Two nodes on one fresh prefix, closed (and the prefix deleted) after `body`. */
async function cluster(
  options: RedisRunEventLogOptions,
  body: (
    a: RedisRunEventLog<TestEvent>,
    b: RedisRunEventLog<TestEvent>,
    admin: Redis,
    prefix: string,
  ) => Promise<void>,
): Promise<void> {
  const { url, prefix, cleanup } = await redisPrefix('events');
  const a = await node(url, prefix, options);
  const b = await node(url, prefix, options);
  const admin = new Redis(url);
  try {
    await body(a.log, b.log, admin, prefix);
  } finally {
    admin.disconnect();
    await a.close();
    await b.close();
    await cleanup();
  }
}

async function collect<E>(events: AsyncIterable<E> | undefined): Promise<E[]> {
  assert.ok(events !== undefined, 'the log holds the run');
  const got: E[] = [];
  for await (const e of events) got.push(e);
  return got;
}

const seqs = (events: readonly LoggedRunEvent[]) => events.map((e) => e.seq);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** A logger whose lines the test reads. */
function capture(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('Redis run event log', () => {
  it('resolves its options by field name, with pinned defaults', () => {
    assert.deepEqual(resolveRedisRunEventLogOptions(), {
      maxEvents: 10_000,
      maxAgeMs: 600_000,
      pollMs: 1000,
      maxPending: 10_000,
    });
    assert.throws(
      () => resolveRedisRunEventLogOptions({ maxEvents: 0 }),
      /eventLog\.maxEvents must be an integer from 1/,
    );
    assert.throws(
      () => resolveRedisRunEventLogOptions({ pollMs: 'fast' as unknown as number }),
      /eventLog\.pollMs/,
    );
    assert.throws(
      () => resolveRedisRunEventLogOptions({ maxEvent: 3 } as RedisRunEventLogOptions),
      /eventLog\.maxEvent is not a known field/,
    );
  });

  it('reads on one node, in order and whole, what another node appended; a resume after seq N yields N+1 on', async () => {
    await cluster({}, async (a, b) => {
      const events = run(6);
      for (const e of events) a.append(e);
      await a.flush();
      assert.deepEqual(await collect(await b.read(RUN, 0)), events);
      assert.deepEqual(seqs(await collect(await b.read(RUN, 4))), [5, 6]);
      assert.deepEqual(seqs(await collect(await b.read(RUN, 5))), [6]);
      assert.equal(await b.lastSeq(RUN), 6, 'a run resumed on b numbers on from 6');
    });
  });

  it('keeps each run apart and writes a backlog larger than one batch', async () => {
    await cluster({}, async (a, b) => {
      for (let seq = 1; seq <= 1200; seq++) {
        a.append(event(seq, seq === 1200 ? 'run.failed' : 'text.delta', 'run_big'));
        if (seq <= 3) a.append(event(seq, seq === 3 ? 'run.finished' : 'text.delta', 'run_small'));
      }
      await a.flush();
      assert.equal(a.pending, 0);
      const big = await collect(await b.read('run_big', 0));
      assert.deepEqual(
        seqs(big),
        Array.from({ length: 1200 }, (_, i) => i + 1),
      );
      assert.deepEqual(seqs(await collect(await b.read('run_small', 0))), [1, 2, 3]);
    });
  });

  it(
    'follows live events on another node promptly (without waiting for the poll) and ends after the terminal event',
    { timeout: 5000 },
    async () => {
      await cluster({ pollMs: 60_000 }, async (a, b) => {
        a.append(event(1));
        await a.flush();
        const reading = collect(await b.read(RUN, 0));
        for (const e of run(4).slice(1)) {
          await sleep(30);
          a.append(e);
        }
        assert.deepEqual(seqs(await reading), [1, 2, 3, 4]);
      });
    },
  );

  it('ends a waiting reader when its signal aborts', { timeout: 5000 }, async () => {
    await cluster({ pollMs: 60_000 }, async (a, b) => {
      a.append(event(1));
      await a.flush();
      const abort = new AbortController();
      const got: number[] = [];
      const events = await b.read(RUN, 0, abort.signal);
      assert.ok(events !== undefined);
      for await (const e of events) {
        got.push(e.seq);
        setTimeout(() => abort.abort(), 50);
      }
      assert.deepEqual(got, [1]);
    });
  });

  it('answers undefined for a run it holds nothing of', async () => {
    await cluster({}, async (_a, b) => {
      assert.equal(await b.read('run_unknown', 0), undefined);
      assert.equal(await b.lastSeq('run_unknown'), 0);
    });
  });

  it('keeps about maxEvents of a run, the newest', async () => {
    // Trimming is approximate (MAXLEN ~): Redis drops whole stream nodes, so a stream keeps at
    // least maxEvents and at most maxEvents plus one node's entries.
    const maxEvents = 50;
    await cluster({ maxEvents }, async (a, b, admin, prefix) => {
      for (let seq = 1; seq <= 1000; seq++)
        a.append(event(seq, seq === 1000 ? 'run.finished' : 'text.delta'));
      await a.flush();
      const [, nodeEntries] = (await admin.config('GET', 'stream-node-max-entries')) as [string, string];
      const length = await admin.xlen(`${prefix}run:${RUN}:events`);
      assert.ok(length >= maxEvents, `kept ${length}`);
      assert.ok(length <= maxEvents + Number(nodeEntries), `kept ${length} of 1000`);
      const kept = await collect(await b.read(RUN, 0));
      assert.equal(kept.length, length);
      assert.equal(kept.at(-1)?.seq, 1000, 'the newest stays');
      assert.ok((kept[0]?.seq ?? 0) > 1, 'the oldest went');
      assert.deepEqual(
        seqs(kept),
        Array.from({ length }, (_, i) => 1001 - length + i),
      );
    });
  });

  it(
    'sets an expiry on each run, and a reader of a run that expires (its node died) ends',
    { timeout: 5000 },
    async () => {
      await cluster({ maxAgeMs: 1000, pollMs: 50 }, async (a, b, admin, prefix) => {
        a.append(event(1));
        await a.flush();
        const pttl = await admin.pttl(`${prefix}run:${RUN}:events`);
        assert.ok(pttl > 0 && pttl <= 1000, `pttl ${pttl}`);
        // Nothing more is appended (as if its node died): the stream expires, and the reader ends.
        assert.deepEqual(seqs(await collect(await b.read(RUN, 0))), [1]);
        assert.equal(await b.read(RUN, 0), undefined);
      });
    },
  );

  it('finds events whose notice was lost by polling every pollMs', { timeout: 5000 }, async () => {
    const pollMs = 200;
    await cluster({ pollMs }, async (a, b, admin, prefix) => {
      a.append(event(1));
      await a.flush();
      const events = await b.read(RUN, 0);
      assert.ok(events !== undefined);
      const iterator = events[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).value?.seq, 1);
      // Written straight into the stream: no notice is published.
      const key = `${prefix}run:${RUN}:events`;
      const started = Date.now();
      await admin.xadd(key, '2-1', 'e', JSON.stringify(event(2, 'run.finished')));
      const second = await iterator.next();
      const waited = Date.now() - started;
      assert.equal(second.value?.seq, 2);
      assert.ok(waited < pollMs * 4, `found after ${waited} ms`);
      assert.equal((await iterator.next()).done, true);
    });
  });

  it('skips events the stream already holds when a batch is sent again', { timeout: 5000 }, async () => {
    await cluster({}, async (a, b) => {
      a.append(event(1));
      a.append(event(2));
      await a.flush();
      // As if the reply to a batch was lost: it is sent again, with the events appended since.
      for (const e of run(4)) a.append(e);
      await a.flush();
      assert.deepEqual(await collect(await b.read(RUN, 0)), run(4));
    });
  });

  describe('while Redis cannot be reached', () => {
    async function outage(
      options: RedisRunEventLogOptions,
      body: (
        a: RedisRunEventLog<TestEvent>,
        b: RedisRunEventLog<TestEvent>,
        proxy: { cut: () => Promise<void>; restore: () => Promise<void> },
        lines: { level: number; msg: string }[],
      ) => Promise<void>,
    ): Promise<void> {
      const target = new URL(TEST_REDIS_URL);
      const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      const { url, prefix, cleanup } = await redisPrefix('events-outage');
      const { logger, lines } = capture();
      // Only the command connection goes through the proxy: notices lost by a cut subscriber are
      // the event bus test's subject, and the poll covers them here.
      const a = await node(`redis://127.0.0.1:${proxy.port}`, prefix, options, logger, url);
      const b = await node(url, prefix, options);
      try {
        await body(
          a.log,
          b.log,
          {
            cut: () => proxy.stop(),
            restore: async () => {
              await proxy.start();
              await until('the node reconnected', () => a.redis.status === 'ready');
            },
          },
          lines,
        );
      } finally {
        await a.close();
        await b.close();
        await proxy.close();
        await cleanup();
      }
    }

    it('keeps appended events, rejects reads with COORDINATION_UNAVAILABLE, and delivers the events once Redis is back', async () => {
      await outage({ pollMs: 100 }, async (a, b, proxy, lines) => {
        a.append(event(1));
        await a.flush();
        const following = collect(await b.read(RUN, 0));

        await proxy.cut();
        for (const e of run(4).slice(1)) assert.doesNotThrow(() => a.append(e));
        await a.flush(); // tries, fails, keeps them: it does not wait out the outage
        assert.equal(a.pending, 3);
        await assert.rejects(a.read(RUN, 0), (err) => isAgentPoolError(err, 'COORDINATION_UNAVAILABLE'));
        assert.ok(lines.some((l) => l.level === 40 && /Redis unreachable/.test(l.msg)));

        await proxy.restore();
        // Delivered by the log itself (no flush): the follower on the other node gets them all.
        assert.deepEqual(seqs(await following), [1, 2, 3, 4]);
        // The follower can read them before node A has Redis's reply to its write.
        await until('node A was answered', () => a.pending === 0);
        assert.deepEqual(seqs(await collect(await a.read(RUN, 2))), [3, 4]);
      });
    });

    it('keeps at most maxPending events, dropping the oldest with a warning', async () => {
      await outage({ pollMs: 100, maxPending: 2 }, async (a, b, proxy, lines) => {
        await proxy.cut();
        for (const e of run(5)) a.append(e);
        assert.equal(a.pending, 2);
        assert.ok(lines.some((l) => l.level === 40 && /the oldest are dropped/.test(l.msg)));
        await proxy.restore();
        await until('the kept events were written', () => a.pending === 0);
        await a.flush();
        assert.deepEqual(seqs(await collect(await b.read(RUN, 0))), [4, 5]);
        assert.ok(lines.some((l) => /dropped while they waited/.test(l.msg)));
      });
    });
  });
});

/**
 * The run queue, local and on BullMQ with real Redis. Both: a job added runs once with attempt 1
 * (on BullMQ, added on one node and run on another), adding a run twice is one job, at most
 * `concurrency` at once, counts, close(false) waits for running handlers, a handler that throws
 * does not stop the queue. BullMQ only: a busy node does not hoard jobs; a node killed with SIGKILL
 * (a child process) while running a job has it taken again by another node with attempt 2, in
 * time; close(true) hands a running job over the same way; Redis cut → add rejects fast.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { BackgroundJob, RunQueue } from '../../src/coordination/run-queue.ts';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import {
  BullRunQueue,
  type BullRunQueueOptions,
  resolveBullRunQueueOptions,
} from '../../src/coordination/redis/run-queue.ts';
import { redisPrefix, TEST_REDIS_URL } from '../support/redis.ts';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const FAST: BullRunQueueOptions = { lockDurationMs: 1500, stalledIntervalMs: 500 };
const SLACK_MS = 1000;
const REDIS_PORT = Number(new URL(TEST_REDIS_URL).port || 6379);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const job = (n: number | string): BackgroundJob => ({
  runId: `run_${n}`,
  project: 'acme',
  request: { agent: 'agt_1', input: `hello ${n}`, threadId: 'thr_1', multitask: 'enqueue', metadata: {} },
});

/** Queues on one cluster: `node()` opens another node's queue; `adder` is the first. */
interface Harness {
  adder: RunQueue;
  node(): Promise<RunQueue>;
  close(): Promise<void>;
}

async function bullCluster(options: BullRunQueueOptions = FAST) {
  const { url, prefix, cleanup } = await redisPrefix('queue');
  const queues: BullRunQueue[] = [];
  const connections: Redis[] = [];
  let n = 0;
  const node = async (proxy?: TcpProxy) => {
    const connection = resolveRedisConnection({
      url: proxy === undefined ? url : `redis://127.0.0.1:${proxy.port}`,
      prefix,
    });
    const redis = await connectRedis(connection, `queue-test-${n}`);
    connections.push(redis);
    const queue = new BullRunQueue({ redis, connection, nodeId: `node-${n++}` }, options);
    queues.push(queue);
    return queue;
  };
  return {
    url,
    prefix,
    node,
    async close() {
      try {
        await Promise.all(queues.map((q) => q.close(true).catch(() => undefined)));
      } finally {
        for (const c of connections) c.disconnect();
        await cleanup();
      }
    },
  };
}

function runQueueBehaviour(name: string, open: () => Promise<Harness>) {
  describe(`run queue behaviour: ${name}`, () => {
    it('runs a job once with attempt 1, on whichever node started taking jobs', async () => {
      const h = await open();
      try {
        const worker = await h.node();
        const seen: [BackgroundJob, number][] = [];
        worker.start(async (j, attempt) => void seen.push([j, attempt]), 2);
        await h.adder.add(job(1));
        await until('the job ran', () => seen.length === 1);
        assert.deepEqual(seen, [[job(1), 1]]);
        await until('it is done', async () => (await h.adder.counts()).active === 0);
        assert.deepEqual(await h.adder.counts(), { waiting: 0, active: 0 });
      } finally {
        await h.close();
      }
    });

    it('adding the same run twice, at once or after it ran, runs it once', async () => {
      const h = await open();
      try {
        const runs: string[] = [];
        const worker = await h.node();
        worker.start(async (j) => {
          runs.push(j.runId);
          await sleep(50);
        }, 4);
        await Promise.all([h.adder.add(job('twice')), h.adder.add(job('twice'))]);
        await until('it ran', async () => runs.length === 1 && (await h.adder.counts()).active === 0);
        await h.adder.add(job('twice'));
        await sleep(300);
        assert.deepEqual(runs, ['run_twice']);
      } finally {
        await h.close();
      }
    });

    it('never runs more than `concurrency` jobs at once on a node, and counts waiting and active ones', async () => {
      const h = await open();
      try {
        for (let i = 0; i < 6; i++) await h.adder.add(job(i));
        assert.deepEqual(await h.adder.counts(), { waiting: 6, active: 0 }, 'held until a node takes them');
        const worker = await h.node();
        let running = 0;
        let most = 0;
        let done = 0;
        const gate = deferred();
        worker.start(async () => {
          running++;
          most = Math.max(most, running);
          await gate.promise;
          await sleep(30);
          running--;
          done++;
        }, 2);
        await until('two are active', async () => (await h.adder.counts()).active === 2);
        assert.deepEqual(await h.adder.counts(), { waiting: 4, active: 2 });
        assert.deepEqual(
          (await h.adder.pendingRunIds()).sort(),
          [0, 1, 2, 3, 4, 5].map((i) => `run_${i}`),
          'waiting and active jobs are pending',
        );
        gate.resolve();
        await until('all ran', () => done === 6);
        assert.equal(most, 2);
        await until('none pending', async () => (await h.adder.pendingRunIds()).length === 0);
      } finally {
        await h.close();
      }
    });

    it('close(false) waits for running handlers, and their jobs end', async () => {
      const h = await open();
      try {
        const worker = await h.node();
        let finished = false;
        let started = false;
        worker.start(async () => {
          started = true;
          await sleep(300);
          finished = true;
        }, 1);
        await h.adder.add(job('slow'));
        await until('it started', () => started);
        await worker.close(false);
        assert.equal(finished, true, 'close waited for the handler');
        assert.deepEqual(await h.adder.counts(), { waiting: 0, active: 0 });
      } finally {
        await h.close();
      }
    });

    it('a handler that throws is logged and does not stop the queue', async () => {
      const h = await open();
      try {
        const worker = await h.node();
        const ran: string[] = [];
        worker.start(async (j) => {
          ran.push(j.runId);
          if (j.runId === 'run_bad') throw new Error('boom');
        }, 1);
        await h.adder.add(job('bad'));
        await h.adder.add(job('good'));
        await until('both ran', () => ran.length === 2);
        await sleep(200);
        assert.deepEqual(ran, ['run_bad', 'run_good'], 'the failed one is not retried');
      } finally {
        await h.close();
      }
    });
  });
}

runQueueBehaviour('BullMQ', async () => {
  const c = await bullCluster();
  return { adder: await c.node(), node: () => c.node(), close: () => c.close() };
});

describe('BullMQ run queue across nodes', () => {
  it('pins its defaults and rejects bad options by field name', () => {
    assert.deepEqual(resolveBullRunQueueOptions(), {
      lockDurationMs: 10_000,
      stalledIntervalMs: 5000,
      maxStalledCount: 5,
    });
    assert.throws(() => resolveBullRunQueueOptions({ lockDurationMs: 10 }), /queue\.lockDurationMs/);
    assert.throws(() => resolveBullRunQueueOptions({ maxStalledCount: 0 }), /queue\.maxStalledCount/);
  });

  it('keeps its keys under the cluster prefix', async () => {
    const c = await bullCluster();
    try {
      const q = await c.node();
      await q.add(job('keys'));
      const probe = await connectRedis(resolveRedisConnection({ url: c.url }), 'probe');
      try {
        const keys = await probe.keys(`*run_keys*`);
        assert.ok(keys.length > 0);
        for (const key of keys) assert.ok(key.startsWith(`${c.prefix}bull:runs:`), key);
      } finally {
        probe.disconnect();
      }
    } finally {
      await c.close();
    }
  });

  it('a paused node finishes the job it runs and takes no more: another node takes them', async () => {
    const c = await bullCluster();
    try {
      const adder = await c.node();
      const draining = await c.node();
      const ranOnDraining: string[] = [];
      const release = deferred();
      draining.start(async (j) => {
        ranOnDraining.push(j.runId);
        await release.promise;
      }, 1);
      await adder.add(job('first'));
      await until('the draining node took the first', () => ranOnDraining.length === 1);
      await draining.pause();
      for (let i = 0; i < 3; i++) await adder.add(job(i));
      const other = await c.node();
      const ranOnOther: string[] = [];
      other.start(async (j) => void ranOnOther.push(j.runId), 1);
      await until('the other node took the rest', () => ranOnOther.length === 3);
      release.resolve();
      await until('the first finished', async () => (await adder.pendingRunIds()).length === 0);
      assert.deepEqual(ranOnDraining, ['run_first'], 'nothing new after pause');
    } finally {
      await c.close();
    }
  });

  it('a node held (overloaded) takes no jobs, takes them again once released; a drained one stays paused', async () => {
    // The held node is busy when held, so no fetch of BullMQ's is waiting on Redis: one already
    // waiting may still bring one job (test/coordination/overloaded-node.test.ts allows for it).
    const c = await bullCluster();
    try {
      const adder = await c.node();
      const held = await c.node();
      const ran: string[] = [];
      const gates = new Map([
        ['run_block', deferred()],
        ['run_block2', deferred()],
      ]);
      held.start(async (j) => {
        ran.push(j.runId);
        await gates.get(j.runId)?.promise;
      }, 1);
      await adder.add(job('block'));
      await until('the node is busy', () => ran.length === 1);
      await held.hold(true);
      gates.get('run_block')?.resolve();
      for (let i = 0; i < 2; i++) await adder.add(job(i));
      await sleep(500);
      assert.deepEqual(ran, ['run_block'], 'nothing taken while held');
      assert.equal((await adder.counts()).waiting, 2, 'they wait for a node');
      await held.hold(false);
      await until('the released node took them', () => ran.length === 3);

      await adder.add(job('block2'));
      await until('the node is busy again', () => ran.length === 4);
      await held.pause(); // draining
      await held.hold(false); // an overload ending meanwhile must not undo the drain
      gates.get('run_block2')?.resolve();
      await adder.add(job('late'));
      await sleep(500);
      assert.equal(ran.includes('run_late'), false, 'a drained node stays paused');
    } finally {
      await c.close();
    }
  });

  it('three nodes with concurrency 1 share six jobs: a busy node does not hoard them', async () => {
    const c = await bullCluster();
    try {
      const adder = await c.node();
      for (let i = 0; i < 6; i++) await adder.add(job(i));
      const taken: string[][] = [[], [], []];
      for (const list of taken) {
        const q = await c.node();
        q.start(async (j) => {
          list.push(j.runId);
          await sleep(200);
        }, 1);
      }
      await until('all ran', () => taken.flat().length === 6);
      for (const list of taken) assert.ok(list.length >= 1, `every node took some: ${JSON.stringify(taken)}`);
      assert.equal(new Set(taken.flat()).size, 6, 'each job once');
    } finally {
      await c.close();
    }
  });

  it('a node killed with SIGKILL while running a job: another node takes it with attempt 2, in time', async () => {
    const c = await bullCluster();
    const fixture = new URL('./fixtures/run-queue-worker.ts', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [fixture, c.url, c.prefix, String(FAST.lockDurationMs), String(FAST.stalledIntervalMs)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await until('the child is ready', () => lines.includes('ready'), 15_000);
      const adder = await c.node();
      await adder.add(job('crash'));
      await until('the child took the job', () => lines.includes('taken run_crash 1'));
      const seen: [string, number][] = [];
      const survivor = await c.node();
      survivor.start(async (j, attempt) => void seen.push([j.runId, attempt]), 1);
      await sleep(100);
      assert.deepEqual(seen, [], 'not taken while its node lives');
      child.kill('SIGKILL');
      const killedAt = Date.now();
      await exited;
      await until('another node took it', () => seen.length > 0, 10_000);
      const elapsed = Date.now() - killedAt;
      assert.deepEqual(seen, [['run_crash', 2]]);
      const bound = FAST.lockDurationMs! + FAST.stalledIntervalMs! + SLACK_MS;
      assert.ok(elapsed <= bound, `taken again ${elapsed} ms after the kill (bound ${bound})`);
      await until('it ended', async () => (await adder.counts()).active === 0);
    } finally {
      child.kill('SIGKILL');
      await c.close();
    }
  });

  it('close(true) hands a running job over without waiting: another node takes it with attempt 2', async () => {
    const c = await bullCluster();
    try {
      const adder = await c.node();
      const leaving = await c.node();
      const gate = deferred();
      let taken = 0;
      leaving.start(async () => {
        taken++;
        await gate.promise;
      }, 1);
      await adder.add(job('handover'));
      await until('the leaving node took it', () => taken === 1);
      const closing = Date.now();
      await leaving.close(true);
      assert.ok(Date.now() - closing < 1000, 'close(true) did not wait for the handler');
      const seen: [string, number][] = [];
      const other = await c.node();
      other.start(async (j, attempt) => void seen.push([j.runId, attempt]), 1);
      await until('the other node took it', () => seen.length > 0, 10_000);
      assert.ok(Date.now() - closing <= FAST.lockDurationMs! + FAST.stalledIntervalMs! + SLACK_MS);
      assert.deepEqual(seen, [['run_handover', 2]]);
      gate.resolve(); // the first handler ends later: it cannot complete the job any more
      await until('it ended', async () => (await adder.counts()).active === 0);
      await sleep(200);
      assert.deepEqual(seen, [['run_handover', 2]]);
    } finally {
      await c.close();
    }
  });

  it('Redis cut: add and counts reject COORDINATION_UNAVAILABLE at once; add works again once it is back', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: REDIS_PORT });
    const c = await bullCluster();
    try {
      const q = await c.node(proxy);
      await q.add(job('before'));
      await proxy.stop();
      const started = Date.now();
      await assert.rejects(q.add(job('during')), (err) => {
        assert.ok(isAgentPoolError(err, 'COORDINATION_UNAVAILABLE'), String(err));
        assert.equal(err.status, 503);
        return true;
      });
      await assert.rejects(q.counts(), (err) => isAgentPoolError(err, 'COORDINATION_UNAVAILABLE'));
      assert.ok(Date.now() - started < 1000, `failed fast (${Date.now() - started} ms)`);
      await proxy.start();
      await until('it is accepted again', () =>
        q.add(job('after')).then(
          () => true,
          () => false,
        ),
      );
      assert.deepEqual(await q.counts(), { waiting: 2, active: 0 });
    } finally {
      await c.close();
      await proxy.close();
    }
  });
});

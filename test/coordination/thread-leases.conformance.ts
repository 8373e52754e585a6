/**
 * The thread leases' contract, run against every adapter with several "nodes" sharing one state
 * (local: one LocalThreadLeases seen through several references; Redis: one RedisThreadLeases per
 * node, each on its own connections, on one prefix): `reject` refuses a held thread, `enqueue`
 * grants in arrival order whichever node the claims came from, `interrupt` aborts the holder and
 * the runs waiting, an aborted waiter leaves the line, `held` counts, `release` is idempotent, and
 * closing refuses the claims still waiting.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ThreadLeases } from '../../src/coordination/thread-leases.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { GateEntrant } from '../../src/coordination/thread-gate.ts';

/** Each test's bound: a broken adapter fails fast instead of waiting forever for a grant. */
export const LIMIT = { timeout: 10_000 };

/** Nodes sharing one set of leases, and what closes them. */
export interface ThreadLeasesCluster {
  readonly nodes: readonly ThreadLeases[];
  /** Resolves once every claim, release and leave made so far reached the shared state. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** How the suite wants a cluster. */
export interface ClusterSpec {
  nodes: number;
  /** Runs waiting on one thread at most. @default 100 */
  maxQueue?: number;
}

/** A run as the leases see it. */
export const entrant = (runId: string): GateEntrant => ({ runId, controller: new AbortController() });

/** Resolves with the entrant's abort reason; fails the test if it is not aborted within `ms`. */
export function abortedWithin(e: GateEntrant, ms = 5000): Promise<unknown> {
  const signal = e.controller.signal;
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`run ${e.runId} was not aborted within ${ms} ms`)), ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve(signal.reason);
      },
      { once: true },
    );
  });
}

/** Whether `p` settled within `ms` (without consuming a rejection the caller checks later). */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return done;
}

const node = (c: ThreadLeasesCluster, i: number): ThreadLeases => {
  const n = c.nodes[i % c.nodes.length];
  assert.ok(n !== undefined);
  return n;
};

/** The conformance suite: `open` gives each test fresh, empty leases shared by `spec.nodes` nodes. */
export function threadLeasesConformance(
  name: string,
  open: (spec: ClusterSpec) => Promise<ThreadLeasesCluster>,
): void {
  describe(`thread leases: ${name}`, () => {
    it(
      'reject: refuses a held thread with THREAD_BUSY naming the holder, and takes it once released',
      LIMIT,
      async () => {
        const c = await open({ nodes: 2 });
        try {
          const a = entrant('a');
          const first = await node(c, 0).claim('t', a, 'reject');
          assert.equal(node(c, 0).holds('t', 'a'), true);
          assert.equal(node(c, 1).holds('t', 'b'), false);
          await assert.rejects(node(c, 1).claim('t', entrant('b'), 'reject'), (e) => {
            assert.ok(isAgentPoolError(e, 'THREAD_BUSY'));
            assert.equal(e.status, 409);
            assert.deepEqual(e.details, { threadId: 't', activeRunId: 'a' });
            assert.equal(e.message, 'thread t is running (run a)');
            return true;
          });
          await node(c, 1).claim('other', entrant('o'), 'reject'); // threads are apart
          node(c, 0).release('t', a);
          await c.settle();
          const second = await node(c, 1).claim('t', entrant('b'), 'reject');
          assert.equal(node(c, 1).holds('t', 'b'), true);
          assert.equal(node(c, 0).holds('t', 'a'), false);
          if (first !== undefined || second !== undefined) {
            assert.ok(first !== undefined && second !== undefined && second > first, 'tokens increase');
          }
        } finally {
          await c.close();
        }
      },
    );

    it('enqueue: grants the thread in arrival order across nodes, one holder at a time', LIMIT, async () => {
      const c = await open({ nodes: 3 });
      try {
        const a = entrant('a');
        await node(c, 0).claim('t', a, 'enqueue');
        const order: string[] = [];
        const tokens: (number | undefined)[] = [];
        let holding = 0;
        const ids = ['b', 'c', 'd', 'e', 'f', 'g'];
        const done: Promise<void>[] = [];
        for (const [i, id] of ids.entries()) {
          const n = node(c, i + 1); // alternating nodes
          const e = entrant(id);
          done.push(
            n.claim('t', e, 'enqueue').then(async (token) => {
              holding++;
              assert.equal(holding, 1, 'one holder at a time');
              assert.equal(n.holds('t', id), true);
              order.push(id);
              tokens.push(token);
              await new Promise((r) => setTimeout(r, 5));
              holding--;
              n.release('t', e);
            }),
          );
          await c.settle(); // fixes the arrival order
        }
        assert.deepEqual(order, [], 'nobody is granted while a holds the thread');
        node(c, 0).release('t', a);
        await Promise.all(done);
        assert.deepEqual(order, ids);
        if (tokens[0] !== undefined) {
          for (let i = 1; i < tokens.length; i++) assert.ok((tokens[i] ?? 0) > (tokens[i - 1] ?? 0));
        }
        await c.settle();
        await node(c, 2).claim('t', entrant('z'), 'reject'); // free at the end
      } finally {
        await c.close();
      }
    });

    it('enqueue: a full queue refuses with THREAD_BUSY saying how many wait', LIMIT, async () => {
      const c = await open({ nodes: 2, maxQueue: 2 });
      try {
        await node(c, 0).claim('t', entrant('a'), 'reject');
        const waiting = [entrant('b'), entrant('c')].map((e, i) => node(c, i).claim('t', e, 'enqueue'));
        for (const w of waiting) w.catch(() => undefined);
        await c.settle();
        await assert.rejects(node(c, 1).claim('t', entrant('d'), 'enqueue'), (e) => {
          assert.ok(isAgentPoolError(e, 'THREAD_BUSY'));
          assert.deepEqual(e.details, { threadId: 't', activeRunId: 'a' });
          assert.equal(e.message, 'thread t has 2 runs queued already (run a)');
          return true;
        });
      } finally {
        await c.close();
      }
    });

    it(
      'interrupt: aborts the holder and rejects the runs waiting with RUN_INTERRUPTED, then goes next',
      LIMIT,
      async () => {
        const c = await open({ nodes: 3 });
        try {
          const a = entrant('a');
          await node(c, 0).claim('t', a, 'reject');
          const q = entrant('q');
          const queued = node(c, 1).claim('t', q, 'enqueue');
          queued.catch(() => undefined); // checked below; rejected whenever the message arrives
          await c.settle();
          const i = entrant('i');
          const got = node(c, 2).claim('t', i, 'interrupt');
          const reason = await abortedWithin(a);
          assert.ok(isAgentPoolError(reason, 'RUN_INTERRUPTED'));
          assert.equal(reason.message, 'interrupted by run i');
          assert.deepEqual(reason.details, { threadId: 't', by: 'i' });
          await assert.rejects(queued, (e) => {
            assert.ok(isAgentPoolError(e, 'RUN_INTERRUPTED'));
            assert.deepEqual(e.details, { threadId: 't', by: 'i' });
            return true;
          });
          assert.equal(q.controller.signal.aborted, false, 'a waiter is refused, not aborted');
          await c.settle();
          const later = entrant('later');
          const afterwards = node(c, 1).claim('t', later, 'enqueue');
          await c.settle();
          assert.equal(await settledWithin(got, 50), false, 'the holder still runs');
          node(c, 0).release('t', a);
          await got;
          assert.equal(node(c, 2).holds('t', 'i'), true);
          assert.equal(await settledWithin(afterwards, 50), false, 'later arrivals wait for the interrupter');
          node(c, 2).release('t', i);
          await afterwards;
          assert.equal(node(c, 1).holds('t', 'later'), true);
        } finally {
          await c.close();
        }
      },
    );

    it('interrupt: takes a free thread at once', LIMIT, async () => {
      const c = await open({ nodes: 2 });
      try {
        const i = entrant('i');
        await node(c, 1).claim('t', i, 'interrupt');
        assert.equal(node(c, 1).holds('t', 'i'), true);
        assert.equal(i.controller.signal.aborted, false);
      } finally {
        await c.close();
      }
    });

    it(
      'a waiter aborted while waiting leaves the line and rejects with its abort reason',
      LIMIT,
      async () => {
        const c = await open({ nodes: 3 });
        try {
          const a = entrant('a');
          await node(c, 0).claim('t', a, 'reject');
          const b = entrant('b');
          const waiting = node(c, 1).claim('t', b, 'enqueue');
          const d = entrant('d');
          const next = node(c, 2).claim('t', d, 'enqueue');
          await c.settle();
          const why = new Error('the caller went away');
          b.controller.abort(why);
          await assert.rejects(waiting, (e) => e === why);
          await c.settle();
          node(c, 0).release('t', a);
          await next;
          assert.equal(node(c, 2).holds('t', 'd'), true);
          assert.equal(node(c, 1).holds('t', 'b'), false);
          // A run aborted before it claims is refused at once.
          const gone = entrant('gone');
          gone.controller.abort(why);
          await assert.rejects(node(c, 1).claim('u', gone, 'enqueue'), (e) => e === why);
        } finally {
          await c.close();
        }
      },
    );

    it(
      'holder names the run holding a thread, seen from any node; undefined once it is free',
      LIMIT,
      async () => {
        const c = await open({ nodes: 2 });
        try {
          assert.equal(await node(c, 1).holder('t'), undefined);
          const a = entrant('a');
          await node(c, 0).claim('t', a, 'reject');
          assert.equal(await node(c, 1).holder('t'), 'a');
          assert.equal(await node(c, 0).holder('t'), 'a');
          node(c, 0).release('t', a);
          await c.settle();
          assert.equal(await node(c, 1).holder('t'), undefined);
        } finally {
          await c.close();
        }
      },
    );

    it('held counts the threads a node holds', LIMIT, async () => {
      const c = await open({ nodes: 2 });
      try {
        const [n] = c.nodes;
        assert.ok(n !== undefined);
        assert.equal(n.held, 0);
        const a = entrant('a');
        const b = entrant('b');
        await n.claim('t1', a, 'reject');
        await n.claim('t2', b, 'enqueue');
        assert.equal(n.held, 2);
        const w = entrant('w');
        const waiting = node(c, 1).claim('t1', w, 'enqueue');
        await c.settle();
        assert.equal(n.held, 2, 'a waiter holds nothing');
        n.release('t1', a);
        await waiting;
        n.release('t2', b);
        node(c, 1).release('t1', w);
        assert.equal(n.held, 0);
        assert.equal(node(c, 1).held, 0);
      } finally {
        await c.close();
      }
    });

    it(
      'release is idempotent, and a run that does not hold the thread cannot release it',
      LIMIT,
      async () => {
        const c = await open({ nodes: 2 });
        try {
          const a = entrant('a');
          await node(c, 0).claim('t', a, 'reject');
          node(c, 1).release('t', entrant('a')); // same run id, not the holder's entrant
          node(c, 0).release('t', entrant('x'));
          await c.settle();
          assert.equal(node(c, 0).holds('t', 'a'), true);
          await assert.rejects(node(c, 1).claim('t', entrant('b'), 'reject'), (e) =>
            isAgentPoolError(e, 'THREAD_BUSY'),
          );
          node(c, 0).release('t', a);
          await c.settle();
          const b = entrant('b');
          await node(c, 1).claim('t', b, 'reject');
          node(c, 0).release('t', a); // again, now that b holds it
          await c.settle();
          assert.equal(node(c, 1).holds('t', 'b'), true);
          await assert.rejects(
            node(c, 0).claim('t', entrant('c'), 'reject'),
            (e) => isAgentPoolError(e, 'THREAD_BUSY') && e.details['activeRunId'] === 'b',
          );
        } finally {
          await c.close();
        }
      },
    );

    it(
      'close refuses the waiting claims and later ones with RUN_INTERRUPTED, and stops the holders',
      LIMIT,
      async () => {
        const c = await open({ nodes: 1 });
        const [n] = c.nodes;
        assert.ok(n !== undefined);
        const a = entrant('a');
        await n.claim('t', a, 'reject');
        const waiting = n.claim('t', entrant('b'), 'enqueue');
        waiting.catch(() => undefined); // checked below
        await c.settle();
        await n.close();
        const closing = (e: unknown) =>
          isAgentPoolError(e, 'RUN_INTERRUPTED') && e.message === 'the node is closing';
        await assert.rejects(waiting, closing);
        assert.ok(closing(a.controller.signal.reason), 'the holder was stopped');
        await assert.rejects(n.claim('u', entrant('c'), 'reject'), closing);
        n.release('t', a);
        await c.close();
      },
    );
  });
}

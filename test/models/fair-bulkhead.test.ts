import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type BulkheadRefusal,
  BulkheadRejectedError,
  FairBulkhead,
  type Release,
} from '../../src/models/fair-bulkhead.ts';

/** Lets every settled promise run its callbacks. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A bulkhead and a log of who got a slot, in the order the slots were given. `call(key, label)`
 * asks for a slot; `release(label)` gives one back.
 */
function harness(maxConcurrent: number, maxQueue: number, maxQueuePerKey = maxQueue) {
  const bulkhead = new FairBulkhead({ maxConcurrent, maxQueue, maxQueuePerKey });
  const granted: string[] = [];
  const refused = new Map<string, unknown>();
  const holding = new Map<string, Release>();
  return {
    bulkhead,
    granted,
    refused,
    call(key: string, label: string, signal?: AbortSignal): void {
      bulkhead.acquire(key, signal).then(
        (release) => {
          granted.push(label);
          holding.set(label, release);
        },
        (err: unknown) => void refused.set(label, err),
      );
    },
    release(label: string): void {
      const release = holding.get(label) ?? assert.fail(`${label} holds no slot`);
      holding.delete(label);
      release();
    },
  };
}

function refusal(err: unknown): BulkheadRefusal {
  assert.ok(err instanceof BulkheadRejectedError, String(err));
  return err.reason;
}

describe('fair bulkhead', () => {
  it('gives up to maxConcurrent slots at once, and hands a freed slot to a waiting caller', async () => {
    const h = harness(2, 10);
    for (const label of ['a1', 'a2', 'a3']) h.call('a', label);
    await flush();
    assert.deepEqual(h.granted, ['a1', 'a2']);
    assert.deepEqual([h.bulkhead.inFlight, h.bulkhead.queued], [2, 1]);
    h.release('a1');
    await flush();
    assert.deepEqual(h.granted, ['a1', 'a2', 'a3']);
    assert.deepEqual([h.bulkhead.inFlight, h.bulkhead.queued], [2, 0]);
    h.release('a2');
    h.release('a3');
    assert.deepEqual([h.bulkhead.inFlight, h.bulkhead.queued], [0, 0]);
  });

  it("serves one project's callers in the order they came", async () => {
    const h = harness(1, 10);
    for (let i = 0; i < 6; i++) h.call('a', `a${i}`);
    await flush();
    for (let i = 0; i < 5; i++) {
      h.release(`a${i}`);
      await flush();
    }
    assert.deepEqual(h.granted, ['a0', 'a1', 'a2', 'a3', 'a4', 'a5']);
  });

  it('serves the projects with waiting callers in turn: a flood of 300 delays another project’s call by one', async () => {
    const h = harness(1, 1000);
    for (let i = 0; i < 300; i++) h.call('noisy', `noisy${i}`);
    h.call('quiet', 'quiet');
    await flush();
    assert.deepEqual(h.granted, ['noisy0'], 'the first call took the only slot');
    for (let i = 0; i < 3; i++) {
      h.release(h.granted.at(-1) as string);
      await flush();
    }
    assert.deepEqual(h.granted, ['noisy0', 'noisy1', 'quiet', 'noisy2']);
  });

  it('takes three projects in turn, each in its own order', async () => {
    const h = harness(1, 100);
    h.call('a', 'a0');
    for (let i = 1; i <= 3; i++) h.call('a', `a${i}`);
    for (let i = 1; i <= 2; i++) h.call('b', `b${i}`);
    h.call('c', 'c1');
    await flush();
    while (h.bulkhead.inFlight > 0) {
      h.release(h.granted.at(-1) as string);
      await flush();
    }
    assert.deepEqual(h.granted, ['a0', 'a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });

  it('refuses a caller when every slot is taken and the queue is full, or its project already waits maxQueuePerKey', async () => {
    const h = harness(1, 3, 2);
    h.call('a', 'a0');
    h.call('a', 'a1');
    h.call('a', 'a2');
    h.call('a', 'a3'); // a already waits 2
    h.call('b', 'b1'); // the queue holds 3: a1, a2, b1
    h.call('c', 'c1'); // takes the place of a2: a waited two more than c
    h.call('d', 'd1'); // every project waits one: nobody's place to take
    await flush();
    assert.equal(refusal(h.refused.get('a3')), 'key-full');
    assert.equal(refusal(h.refused.get('a2')), 'displaced');
    assert.equal(refusal(h.refused.get('d1')), 'full');
    assert.deepEqual([h.bulkhead.inFlight, h.bulkhead.queued], [1, 3]);
    const none = harness(1, 0);
    none.call('a', 'a0');
    none.call('a', 'a1');
    await flush();
    assert.equal(refusal(none.refused.get('a1')), 'full', 'maxQueue 0: no waiting at all');
  });

  it("makes room in a full queue for a project that waits less, refusing the flooding project's newest caller", async () => {
    const h = harness(1, 4);
    h.call('noisy', 'n0');
    for (let i = 1; i <= 4; i++) h.call('noisy', `n${i}`);
    h.call('quiet', 'q1');
    await flush();
    assert.equal(refusal(h.refused.get('n4')), 'displaced');
    assert.equal(h.refused.has('q1'), false);
    assert.deepEqual(
      [h.bulkhead.queued, h.bulkhead.queuedOf('noisy'), h.bulkhead.queuedOf('quiet')],
      [4, 3, 1],
    );
    h.release('n0');
    await flush();
    h.release('n1');
    await flush();
    assert.deepEqual(h.granted, ['n0', 'n1', 'q1']);
  });

  it('lets a waiting caller that aborts leave at once, keeping no place; an aborted caller is refused at once', async () => {
    const h = harness(1, 10);
    const ctrl = new AbortController();
    h.call('a', 'a0');
    h.call('a', 'a1', ctrl.signal);
    h.call('a', 'a2');
    await flush();
    ctrl.abort(new Error('gone'));
    await flush();
    assert.equal((h.refused.get('a1') as Error).message, 'gone');
    assert.equal(h.bulkhead.queued, 1);
    h.release('a0');
    await flush();
    assert.deepEqual(h.granted, ['a0', 'a2']);
    h.call('a', 'late', ctrl.signal);
    await flush();
    assert.equal((h.refused.get('late') as Error).message, 'gone');
  });

  it('gives a slot back once however often its release is called', async () => {
    const bulkhead = new FairBulkhead({ maxConcurrent: 2, maxQueue: 0, maxQueuePerKey: 0 });
    const release = await bulkhead.acquire('a');
    await bulkhead.acquire('b');
    release();
    release();
    assert.equal(bulkhead.inFlight, 1);
  });
});

type Cmd =
  | { op: 'acquire'; key: number; abortable: boolean }
  | { op: 'release'; pick: number }
  | { op: 'abort'; pick: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('acquire' as const), key: fc.nat(3), abortable: fc.boolean() }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
);

interface Caller {
  id: number;
  key: string;
  ctrl: AbortController | undefined;
  state: 'waiting' | 'holding' | 'refused' | 'released';
  release?: Release;
}

describe('fair bulkhead under random use (property)', () => {
  it('stays within its bounds, never idles a slot someone waits for, keeps each project in order, and never serves a project twice while another waits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(cmd, { maxLength: 120 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        async (cmds, maxConcurrent, maxQueue, perKey) => {
          const maxQueuePerKey = Math.min(perKey, maxQueue);
          const bulkhead = new FairBulkhead({ maxConcurrent, maxQueue, maxQueuePerKey });
          const callers: Caller[] = [];
          const grantedIds: Record<string, number[]> = {};
          /** Per waiting project: grants other projects got since it started waiting or was last served. */
          const servedSince = new Map<string, Map<string, number>>();
          const waitingOf = (key: string) => callers.filter((c) => c.key === key && c.state === 'waiting');
          const onGrant = (c: Caller) => {
            (grantedIds[c.key] ??= []).push(c.id);
            for (const [key, others] of servedSince) {
              if (key === c.key) continue;
              const n = (others.get(c.key) ?? 0) + 1;
              assert.ok(n <= 1, `${c.key} was served twice while ${key} waited`);
              others.set(c.key, n);
            }
            servedSince.set(c.key, new Map());
          };
          for (const c of cmds) {
            if (c.op === 'acquire') {
              const key = `p${c.key}`;
              const caller: Caller = {
                id: callers.length,
                key,
                ctrl: c.abortable ? new AbortController() : undefined,
                state: 'waiting',
              };
              callers.push(caller);
              if (!servedSince.has(key)) servedSince.set(key, new Map());
              bulkhead.acquire(key, caller.ctrl?.signal).then(
                (release) => {
                  caller.state = 'holding';
                  caller.release = release;
                  onGrant(caller);
                },
                (err: unknown) => {
                  assert.ok(err instanceof BulkheadRejectedError || caller.ctrl?.signal.aborted === true);
                  caller.state = 'refused';
                },
              );
            } else if (c.op === 'release') {
              const holders = callers.filter((x) => x.state === 'holding');
              const h = holders[c.pick % Math.max(1, holders.length)];
              if (h !== undefined) {
                h.state = 'released';
                h.release?.();
              }
            } else {
              const waiting = callers.filter((x) => x.state === 'waiting' && x.ctrl !== undefined);
              waiting[c.pick % Math.max(1, waiting.length)]?.ctrl?.abort(new Error('aborted'));
            }
            await flush();
            // A project that no longer waits starts a fresh turn when it waits again.
            for (const key of servedSince.keys()) if (waitingOf(key).length === 0) servedSince.delete(key);
            const holding = callers.filter((x) => x.state === 'holding').length;
            const waiting = callers.filter((x) => x.state === 'waiting').length;
            assert.equal(bulkhead.inFlight, holding);
            assert.equal(bulkhead.queued, waiting);
            assert.ok(holding <= maxConcurrent);
            assert.ok(waiting <= maxQueue);
            if (waiting > 0) assert.equal(holding, maxConcurrent, 'a slot idles while someone waits');
            for (let k = 0; k < 4; k++) assert.ok(bulkhead.queuedOf(`p${k}`) <= maxQueuePerKey);
          }
          for (const ids of Object.values(grantedIds)) {
            assert.deepEqual(
              ids,
              [...ids].sort((a, b) => a - b),
              'each project is served in arrival order',
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/**
 * The RunStore conformance suite: one specification of threads, messages and runs that every
 * adapter (memory, sqlite, later redis and postgres) must pass. Each adapter's test file calls it
 * with a factory.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ErrorCode, isAgentPoolError } from '../../src/core/errors.ts';
import type { MessageRecord, NewMessage, Page, RunRecord, RunStore } from '../../src/store/ports.ts';
import { runRecord as baseRunRecord } from '../support/run-record.ts';

const T0 = Date.UTC(2026, 0, 1);
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
const INTERRUPTED = { code: 'RUN_INTERRUPTED', message: 'the process stopped while the run was in flight' };

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAgentPoolError(err), `expected an AgentPoolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

const invalid = (promise: Promise<unknown>) => rejectsWith(promise, 'VALIDATION_FAILED');

/**
 * Tries to change something a store handed out. A store may hand out fresh copies (the change
 * succeeds) or frozen records it shares (the change throws a TypeError); either way the store must
 * not see it.
 */
async function mutate(change: () => unknown): Promise<void> {
  try {
    await change();
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
}

/** A run with every field set to something distinguishable. */
function runRecord(overrides: Partial<RunRecord> = {}): RunRecord {
  return baseRunRecord({
    agentName: 'helper',
    agentVersion: 3,
    threadId: 'thr_1',
    input: 'hello',
    model: 'openai/gpt-4o-mini',
    createdAt: T0,
    startedAt: T0,
    ...overrides,
  });
}

function msg(id: string, createdAt = T0, content: unknown = `text of ${id}`): NewMessage {
  return { id, role: 'user', content, runId: null, createdAt };
}

const seqs = (records: readonly MessageRecord[]) => records.map((m) => m.seq);
const ids = (records: readonly { id: string }[]) => records.map((r) => r.id);
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Follows nextCursor from the first page to the last, returning every page. */
async function allPages<T>(list: (cursor: string | undefined) => Promise<Page<T>>): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    pages.push(page.data);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined && pages.length < 100);
  return pages;
}

/** What a conformance factory may be asked to build: a store stamping runs with a node id. */
export interface RunStoreFactoryOptions {
  readonly nodeId?: string;
}

/** Registers the RunStore specification against the adapter that `factory` builds. */
export function runStoreConformance(
  name: string,
  factory: (options?: RunStoreFactoryOptions) => Promise<{ store: RunStore; cleanup(): Promise<void> }>,
): void {
  describe(name, () => {
    let store: RunStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => {
      await cleanup();
    });

    const thread = (id = 'thr_1', ttlSeconds: number | null = null, now = T0, metadata = {}) =>
      store.createThread({ id, project: 'p1', metadata, ttlSeconds, now });

    /** Every message of a thread through listMessages, as pages of seqs. */
    const messagePages = async (threadId: string, limit: number) =>
      (await allPages((cursor) => store.listMessages(threadId, { limit, cursor }))).map(seqs);

    describe('threads', () => {
      it('creates a thread and reads it back exactly', async () => {
        const metadata = () => ({ user: 'u1', nested: { a: [1, 2.5, null, true, 'é 𝄞'], empty: {} } });
        const created = await thread('thr_1', null, T0, metadata());
        const expected = {
          id: 'thr_1',
          project: 'p1',
          metadata: metadata(),
          ttlSeconds: null,
          expiresAt: null,
          messageCount: 0,
          createdAt: T0,
          updatedAt: T0,
        };
        assert.deepEqual(created, expected);
        assert.deepEqual(await store.getThread('thr_1'), expected);
      });

      it('returns undefined for an unknown thread and rejects a taken id, keeping the first', async () => {
        assert.equal(await store.getThread('thr_missing'), undefined);
        await thread('thr_1', 60);
        await invalid(thread('thr_1', null, T0 + 1));
        assert.equal((await store.getThread('thr_1'))?.ttlSeconds, 60);
      });

      it('does not let callers mutate stored state through what they pass or receive', async () => {
        const metadata = { n: 1 };
        const created = await thread('thr_1', null, T0, metadata);
        metadata.n = 2;
        await mutate(() => ((created.metadata as { n: number }).n = 3));
        await mutate(async () => ((await store.getThread('thr_1'))?.metadata as { n: number }).n++);
        const content = { parts: ['a'] };
        const run = runRecord({ metadata: { tags: ['x'] } });
        const createdRun = await store.createRun(run, [msg('m1', T0, content)]);
        content.parts.push('b');
        (run.metadata['tags'] as string[]).push('y');
        await mutate(() => (createdRun.messages[0]?.content as { parts: string[] }).parts.push('c'));
        await mutate(() => (createdRun.run.metadata['tags'] as string[]).push('z'));
        await mutate(() => ((createdRun.run as { input: string }).input = 'changed'));
        const step = runRecord({ steps: 1, error: { code: 'X', message: 'm' } });
        const [m2] = await store.commitStep(step, [msg('m2', T0, { parts: ['d'] })]);
        (step.error as { code: string }).code = 'Y';
        await mutate(() => ((m2 as { seq: number }).seq = 9));
        await mutate(async () => (((await store.getRun('run_1'))?.error as { code: string }).code = 'Z'));
        await mutate(
          async () => ((await store.listRuns('thr_1', { limit: 1 })).data[0] as { steps: number }).steps++,
        );
        const listed = await store.listMessages('thr_1', { limit: 2 });
        await mutate(() => (listed.data[1]?.content as { parts: string[] }).parts.pop());
        await mutate(
          async () => (((await store.recentMessages('thr_1', 2))[0] as { id: string }).id = 'other'),
        );
        assert.deepEqual((await store.getThread('thr_1'))?.metadata, { n: 1 });
        assert.deepEqual(await store.getRun('run_1'), { ...step, error: { code: 'X', message: 'm' } });
        const contents = (await store.recentMessages('thr_1', 2)).map((m) => [m.id, m.seq, m.content]);
        assert.deepEqual(contents, [
          ['m1', 1, { parts: ['a'] }],
          ['m2', 2, { parts: ['d'] }],
        ]);
      });

      it('deletes a thread with its messages and runs, leaving other threads alone', async () => {
        await thread('thr_1');
        await thread('thr_2');
        await store.createRun(runRecord({ id: 'run_1' }), [msg('m1')]);
        await store.createRun(runRecord({ id: 'run_2', threadId: 'thr_2' }), [msg('m2')]);
        assert.equal(await store.deleteThread('thr_1'), true);
        assert.equal(await store.deleteThread('thr_1'), false);
        assert.equal(await store.getThread('thr_1'), undefined);
        assert.equal(await store.getRun('run_1'), undefined);
        assert.deepEqual(await store.listMessages('thr_1', { limit: 10 }), { data: [], nextCursor: null });
        assert.deepEqual(await store.listRuns('thr_1', { limit: 10 }), { data: [], nextCursor: null });
        assert.deepEqual(await store.recentMessages('thr_1', 10), []);
        assert.equal((await store.getRun('run_2'))?.threadId, 'thr_2');
        assert.deepEqual(ids(await store.recentMessages('thr_2', 10)), ['m2']);
      });
    });

    describe('messages', () => {
      it('numbers messages 1..n without gaps across createRun and several commits', async () => {
        await thread();
        const created = await store.createRun(runRecord(), [msg('m1')]);
        const first = created.messages.map((m) => [m.id, m.threadId, m.seq]);
        assert.deepEqual(first, [['m1', 'thr_1', 1]]);
        const a = await store.commitStep(runRecord({ steps: 1 }), [msg('m2'), msg('m3')]);
        const b = await store.commitStep(runRecord({ steps: 2 }), []);
        const c = await store.commitStep(runRecord({ steps: 3 }), [msg('m4'), msg('m5'), msg('m6')]);
        assert.deepEqual([seqs(a), seqs(b), seqs(c)], [[2, 3], [], [4, 5, 6]]);
        const all = await store.listMessages('thr_1', { limit: 100 });
        assert.deepEqual(seqs(all.data), [1, 2, 3, 4, 5, 6]);
        assert.deepEqual(ids(all.data), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
        assert.equal((await store.getThread('thr_1'))?.messageCount, 6);
      });

      it('round-trips every field of a message, with JSON content of any shape', async () => {
        await thread();
        const parts = [{ type: 'text', text: 'é ✓ 𝄞' }, { type: 'image' }];
        const tool = { id: 'c1', out: { rows: [1, 2.5, -3], ok: true, none: null, empty: {} } };
        const contents = ['plain', parts, tool, null, 42];
        const roles = ['system', 'user', 'assistant', 'tool', 'assistant'] as const;
        const input = contents.map((content, i): NewMessage => {
          return {
            id: `m${i}`,
            role: roles[i] ?? 'user',
            content,
            runId: i === 0 ? null : 'run_1',
            createdAt: T0 + i,
          };
        });
        await store.createRun(runRecord(), input);
        const expected = input.map((m, i) => ({ ...m, threadId: 'thr_1', seq: i + 1 }));
        assert.deepEqual((await store.listMessages('thr_1', { limit: 10 })).data, expected);
        assert.deepEqual(await store.recentMessages('thr_1', 10), expected);
      });

      it('pages messages in seq order with no gaps or duplicates', async () => {
        await thread();
        await store.createRun(runRecord(), [msg('m0')]);
        for (let i = 1; i < 23; i += 2) await store.commitStep(runRecord(), [msg(`m${i}`), msg(`m${i + 1}`)]);
        const pages = await messagePages('thr_1', 5);
        const sizes = pages.map((p) => p.length);
        assert.deepEqual(sizes, [5, 5, 5, 5, 3]);
        assert.deepEqual(pages.flat(), range(23));
        assert.deepEqual((await messagePages('thr_1', 23)).length, 1);
        assert.deepEqual(await messagePages('thr_missing', 5), [[]]);
      });

      it('recentMessages returns the last n in ascending seq order', async () => {
        await thread();
        await store.createRun(runRecord(), [msg('m1'), msg('m2'), msg('m3'), msg('m4'), msg('m5')]);
        assert.deepEqual(seqs(await store.recentMessages('thr_1', 3)), [3, 4, 5]);
        assert.deepEqual(seqs(await store.recentMessages('thr_1', 1)), [5]);
        assert.deepEqual(seqs(await store.recentMessages('thr_1', 50)), [1, 2, 3, 4, 5]);
        assert.deepEqual(await store.recentMessages('thr_missing', 5), []);
      });
    });

    describe('expiry', () => {
      it('moves expiresAt and updatedAt to the last appended message with each commit', async () => {
        assert.equal((await thread('thr_1', 60)).expiresAt, T0 + 60_000);
        await thread('thr_2', null);
        await store.createRun(runRecord(), [msg('m1', T0 + 1000)]);
        let t = await store.getThread('thr_1');
        assert.deepEqual([t?.updatedAt, t?.expiresAt], [T0 + 1000, T0 + 61_000]);
        await store.commitStep(runRecord(), [msg('m2', T0 + 4000), msg('m3', T0 + 5000)]);
        t = await store.getThread('thr_1');
        assert.deepEqual([t?.updatedAt, t?.expiresAt, t?.createdAt], [T0 + 5000, T0 + 65_000, T0]);
        await store.createRun(runRecord({ id: 'run_2', threadId: 'thr_2' }), [msg('m4', T0 + 7000)]);
        t = await store.getThread('thr_2');
        assert.deepEqual([t?.updatedAt, t?.expiresAt], [T0 + 7000, null]);
      });

      it('listExpiredThreads returns ttl threads with expiresAt ≤ now, oldest first, up to limit', async () => {
        const expired = async (after: number, limit = 10) =>
          ids(await store.listExpiredThreads(T0 + after, limit));
        await thread('thr_c', 30);
        await thread('thr_b', 10);
        await thread('thr_none', null);
        await thread('thr_a', 10);
        await thread('thr_d', 20);
        assert.deepEqual(await expired(9_999), []);
        assert.deepEqual(await expired(10_000), ['thr_a', 'thr_b']);
        assert.deepEqual(await expired(20_000), ['thr_a', 'thr_b', 'thr_d']);
        assert.deepEqual(await expired(3_600_000), ['thr_a', 'thr_b', 'thr_d', 'thr_c']);
        assert.deepEqual(await expired(3_600_000, 2), ['thr_a', 'thr_b']);
        // A message pushes a thread out of the expired list until its new expiry.
        await store.createRun(runRecord({ threadId: 'thr_a' }), [msg('m1', T0 + 8000)]);
        assert.deepEqual(await expired(12_000), ['thr_b']);
        assert.deepEqual(await expired(18_000), ['thr_b', 'thr_a']);
      });
    });

    describe('runs', () => {
      it('round-trips every field of a run record', async () => {
        await thread();
        const full = runRecord({
          status: 'failed',
          output: 'partial answer ✓',
          steps: 7,
          inputTokens: 1234,
          outputTokens: 567,
          cost: 0.0012345678,
          error: { code: 'MODEL_CALL_FAILED', message: 'upstream 502' },
          metadata: { trace: 'abc', tags: ['x', 'y'], nested: { n: 1.5, ok: false, none: null } },
          startedAt: T0 + 10,
          finishedAt: T0 + 20,
        });
        const created = await store.createRun(full, []);
        assert.deepEqual(created, { run: full, messages: [] });
        assert.deepEqual(await store.getRun('run_1'), full);
        assert.equal(await store.getRun('run_missing'), undefined);
      });

      it('creates a stateless run with threadId null and no messages', async () => {
        const run = runRecord({ id: 'run_s', threadId: null });
        assert.deepEqual(await store.createRun(run, []), { run, messages: [] });
        assert.deepEqual(await store.getRun('run_s'), run);
        await invalid(store.createRun(runRecord({ id: 'run_t', threadId: null }), [msg('m1')]));
        assert.equal(await store.getRun('run_t'), undefined);
        const done = { ...run, status: 'succeeded' as const, output: 'ok', steps: 1, finishedAt: T0 + 5 };
        assert.deepEqual(await store.commitStep(done, []), []);
        assert.deepEqual(await store.getRun('run_s'), done);
      });

      it('createRun on a missing thread fails with THREAD_NOT_FOUND and writes nothing', async () => {
        const orphan = runRecord({ threadId: 'thr_missing' });
        await rejectsWith(store.createRun(orphan, [msg('m1')]), 'THREAD_NOT_FOUND');
        assert.equal(await store.getRun('run_1'), undefined);
        assert.equal(await store.getThread('thr_missing'), undefined);
      });

      it('createRun with a new thread creates both in one write, or, when an id is taken, neither', async () => {
        const newThread = { id: 'thr_n', project: 'p1', metadata: { topic: 'x' }, ttlSeconds: 60, now: T0 };
        const run = runRecord({ id: 'run_n', threadId: 'thr_n' });
        const created = await store.createRun(run, [msg('m1', T0 + 1)], undefined, newThread);
        assert.deepEqual(
          created.messages.map((m) => [m.id, m.seq]),
          [['m1', 1]],
        );
        assert.deepEqual(await store.getRun('run_n'), run);
        const stored = await store.getThread('thr_n');
        assert.equal(stored?.project, 'p1');
        assert.deepEqual(stored?.metadata, { topic: 'x' });
        assert.equal(stored?.messageCount, 1);
        assert.equal(stored?.createdAt, T0);
        assert.equal(stored?.expiresAt, T0 + 1 + 60_000, 'the ttl counts from its last message');
        assert.deepEqual(ids(await store.recentMessages('thr_n', 10)), ['m1']);
        // the same thread again: ID_EXISTS, and the second run is not written
        const again = runRecord({ id: 'run_m', threadId: 'thr_n' });
        await invalid(store.createRun(again, [msg('m2')], undefined, newThread));
        assert.equal(await store.getRun('run_m'), undefined);
        assert.deepEqual(ids(await store.recentMessages('thr_n', 10)), ['m1']);
        // a taken run id: the new thread is not written either
        const taken = { ...newThread, id: 'thr_o' };
        await invalid(
          store.createRun(runRecord({ id: 'run_n', threadId: 'thr_o' }), [msg('m3')], undefined, taken),
        );
        assert.equal(await store.getThread('thr_o'), undefined);
        // the thread must be the run's own
        await invalid(store.createRun(runRecord({ id: 'run_p', threadId: 'thr_1' }), [], undefined, taken));
        assert.equal(await store.getThread('thr_o'), undefined);
      });

      it('createRun rejects a taken run id and keeps the first run and messages', async () => {
        await thread();
        await store.createRun(runRecord({ input: 'first' }), [msg('m1')]);
        await invalid(store.createRun(runRecord({ input: 'second' }), [msg('m2')]));
        assert.equal((await store.getRun('run_1'))?.input, 'first');
        assert.deepEqual(ids(await store.recentMessages('thr_1', 10)), ['m1']);
        assert.equal((await store.getThread('thr_1'))?.messageCount, 1);
      });

      it('commitStep replaces the run record and appends its messages together', async () => {
        await thread();
        await store.createRun(runRecord(), [msg('m1')]);
        const step = runRecord({ steps: 1, inputTokens: 10, outputTokens: 4, cost: 0.25 });
        const m2 = { ...msg('m2', T0 + 1, { text: 'hi' }), role: 'assistant' as const, runId: 'run_1' };
        const appended = await store.commitStep(step, [m2]);
        assert.deepEqual(appended, [{ ...m2, threadId: 'thr_1', seq: 2 }]);
        assert.deepEqual(await store.getRun('run_1'), step);
        assert.deepEqual(await store.recentMessages('thr_1', 1), appended);
      });

      it('commitStep of an unknown run fails with RUN_NOT_FOUND and writes nothing', async () => {
        await thread('thr_1', 60);
        await store.createRun(runRecord(), [msg('m1')]);
        const before = await store.getThread('thr_1');
        const ghost = runRecord({ id: 'run_ghost', steps: 1 });
        await rejectsWith(store.commitStep(ghost, [msg('m2', T0 + 9000)]), 'RUN_NOT_FOUND');
        assert.deepEqual(await store.getThread('thr_1'), before);
        assert.deepEqual(ids(await store.recentMessages('thr_1', 10)), ['m1']);
        assert.equal(await store.getRun('run_ghost'), undefined);
        assert.deepEqual(ids((await store.listRuns('thr_1', { limit: 10 })).data), ['run_1']);
      });

      it('commitStep after the thread was deleted fails with THREAD_NOT_FOUND and writes nothing', async () => {
        await thread();
        await store.createRun(runRecord(), [msg('m1')]);
        await store.deleteThread('thr_1');
        await rejectsWith(store.commitStep(runRecord({ steps: 1 }), [msg('m2')]), 'THREAD_NOT_FOUND');
        await rejectsWith(store.commitStep(runRecord({ steps: 1 }), []), 'THREAD_NOT_FOUND');
        assert.equal(await store.getRun('run_1'), undefined);
        assert.equal(await store.getThread('thr_1'), undefined);
        assert.deepEqual(await store.recentMessages('thr_1', 10), []);
      });

      it('commitStep naming another thread than the stored run fails with VALIDATION_FAILED', async () => {
        await thread('thr_1');
        await thread('thr_2');
        await store.createRun(runRecord(), [msg('m1')]);
        await invalid(store.commitStep(runRecord({ threadId: 'thr_2' }), [msg('m2')]));
        assert.equal((await store.getThread('thr_2'))?.messageCount, 0);
        assert.equal((await store.getRun('run_1'))?.threadId, 'thr_1');
      });

      it("lists a thread's runs newest first, paged without gaps or duplicates", async () => {
        await thread('thr_1');
        await thread('thr_2');
        // Ties on createdAt are broken by id, descending.
        const plan = { run_a: 5, run_b: 1, run_c: 5, run_d: 3, run_e: 9, run_f: 5, run_g: 2 };
        for (const [id, at] of Object.entries(plan))
          await store.createRun(runRecord({ id, createdAt: T0 + at }), []);
        await store.createRun(runRecord({ id: 'run_other', threadId: 'thr_2', createdAt: T0 + 4 }), []);
        const pages = (await allPages((cursor) => store.listRuns('thr_1', { limit: 3, cursor }))).map(ids);
        assert.deepEqual(pages, [['run_e', 'run_f', 'run_c'], ['run_a', 'run_d', 'run_g'], ['run_b']]);
        assert.equal((await store.listRuns('thr_1', { limit: 7 })).nextCursor, null);
        assert.deepEqual(await store.listRuns('thr_missing', { limit: 3 }), { data: [], nextCursor: null });
      });

      it('interruptUnfinished marks only queued and running runs interrupted', async () => {
        await thread();
        const runs = STATUSES.map((status, i) =>
          runRecord({ id: `run_${status}`, status, threadId: i % 2 === 0 ? 'thr_1' : null }),
        );
        for (const run of runs) await store.createRun(run, []);
        assert.equal(await store.interruptUnfinished(T0 + 500), 2);
        for (const run of runs) {
          const unfinished = run.status === 'queued' || run.status === 'running';
          const interrupted = { ...run, status: 'interrupted', finishedAt: T0 + 500, error: INTERRUPTED };
          assert.deepEqual(await store.getRun(run.id), unfinished ? interrupted : run);
        }
        assert.equal(await store.interruptUnfinished(T0 + 600), 0);
        assert.equal((await store.getRun('run_queued'))?.finishedAt, T0 + 500);
      });

      it("costSince sums the project's run costs from `since` on, committed steps included", async () => {
        await thread();
        await store.createRun(runRecord({ id: 'run_old', cost: 5, createdAt: T0 - 1 }), []);
        const first = runRecord({ id: 'run_a', cost: 0, createdAt: T0 });
        await store.createRun(first, []);
        await store.createRun(runRecord({ id: 'run_b', cost: 0.25, createdAt: T0 + 10 }), []);
        await store.createRun(
          runRecord({ id: 'run_x', project: 'other', threadId: null, cost: 7, createdAt: T0 + 1 }),
          [],
        );
        await store.commitStep({ ...first, status: 'succeeded', cost: 0.5, finishedAt: T0 + 2 }, []);
        assert.equal(await store.costSince(first.project, T0), 0.75);
        assert.equal(await store.costSince(first.project, T0 + 11), 0);
        assert.equal(await store.costSince('other', T0), 7);
        assert.equal(await store.costSince('nobody', 0), 0);
      });

      it('versionStats counts outcomes and latencies per version, over terminal runs since a time', async () => {
        let n = 0;
        /** A stateless run of agt_1 created at T0 + 10 that ran `ms` (null: never started). */
        const run = (agentVersion: number, status: RunRecord['status'], ms: number | null, over = {}) => {
          const terminal = status !== 'queued' && status !== 'running';
          return runRecord({
            id: `run_${++n}`,
            threadId: null,
            agentVersion,
            status,
            createdAt: T0 + 10,
            startedAt: ms === null ? null : T0 + 10,
            finishedAt: terminal ? T0 + 10 + (ms ?? 0) : null,
            ...over,
          });
        };
        const runs = [
          ...[100, 200, 300, 1000].map((ms) => run(1, 'succeeded', ms)),
          run(1, 'failed', 400),
          run(1, 'interrupted', 50),
          run(1, 'running', 0),
          run(1, 'queued', null),
          run(1, 'succeeded', 99_999, { createdAt: T0 - 1 }),
          run(1, 'failed', 5, { agentId: 'agt_2' }),
          run(1, 'failed', 5, { project: 'other' }),
          run(2, 'succeeded', 80),
          run(2, 'cancelled', null),
          run(3, 'cancelled', null),
        ];
        for (const r of runs) await store.createRun(r, []);
        const late = run(2, 'running', 0);
        await store.createRun(late, []);
        await store.commitStep({ ...late, status: 'succeeded', finishedAt: T0 + 130 }, []);
        assert.deepEqual(await store.versionStats('p1', 'agt_1', T0), [
          {
            version: 1,
            runs: 6,
            succeeded: 4,
            failed: 2,
            cancelled: 0,
            successRate: 4 / 6,
            p50Ms: 200,
            p99Ms: 1000,
          },
          {
            version: 2,
            runs: 3,
            succeeded: 2,
            failed: 0,
            cancelled: 1,
            successRate: 1,
            p50Ms: 80,
            p99Ms: 120,
          },
          {
            version: 3,
            runs: 1,
            succeeded: 0,
            failed: 0,
            cancelled: 1,
            successRate: null,
            p50Ms: null,
            p99Ms: null,
          },
        ]);
        assert.deepEqual(await store.versionStats('p1', 'agt_1', T0 + 11), []);
        assert.deepEqual(await store.versionStats('p1', 'agt_missing', 0), []);
        assert.equal((await store.versionStats('other', 'agt_1', 0))[0]?.failed, 1);
        await invalid(store.versionStats('p1', 'agt_1', Number.NaN));
      });

      it('versionStats reads at most the 10,000 most recent terminal runs', async () => {
        const runs = Array.from({ length: 10_010 }, (_, i) =>
          runRecord({
            id: `run_${String(i).padStart(5, '0')}`,
            threadId: null,
            agentVersion: i < 10 ? 1 : 2,
            status: 'succeeded',
            createdAt: T0 + i,
            startedAt: T0 + i,
            finishedAt: T0 + i + 5,
          }),
        );
        runs.push(runRecord({ id: 'run_newest', threadId: null, agentVersion: 1, createdAt: T0 + 20_000 }));
        for (let i = 0; i < runs.length; i += 1000) {
          await Promise.all(runs.slice(i, i + 1000).map((r) => store.createRun(r, [])));
        }
        const stats = await store.versionStats('p1', 'agt_1', T0);
        assert.deepEqual(
          stats.map((v) => [v.version, v.runs, v.p99Ms]),
          [[2, 10_000, 5]],
        );
      });

      it('50 concurrent commitSteps on one thread get seqs 1..N, each exactly once', async () => {
        await thread();
        for (let r = 0; r < 5; r++) await store.createRun(runRecord({ id: `run_${r}` }), []);
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.commitStep(runRecord({ id: `run_${i % 5}`, steps: i }), [msg(`a${i}`), msg(`b${i}`)]),
          ),
        );
        for (const appended of results) {
          const [a, b] = appended;
          assert.equal(b?.seq, (a?.seq ?? 0) + 1, 'the messages of one commit are adjacent');
        }
        const all = results.flat().map((m) => m.seq);
        all.sort((x, y) => x - y);
        assert.deepEqual(all, range(100));
        assert.equal((await store.getThread('thr_1'))?.messageCount, 100);
        assert.deepEqual(seqs((await store.listMessages('thr_1', { limit: 1000 })).data), all);
      });
    });

    describe('fencing', () => {
      const leaseLost = async (
        promise: Promise<unknown>,
        threadId: string,
        fence: number,
        current: number,
      ) => {
        await assert.rejects(promise, (err: unknown) => {
          assert.ok(isAgentPoolError(err, 'LEASE_LOST'), `expected LEASE_LOST, got ${String(err)}`);
          assert.equal(err.status, 409);
          assert.deepEqual(err.details, { threadId, fence, currentFence: current });
          return true;
        });
      };

      it('accepts any token on a new thread (fence 0) and raises the fence to each accepted one', async () => {
        await thread();
        await store.createRun(runRecord(), [msg('m1')], 3);
        await leaseLost(store.commitStep(runRecord({ steps: 1 }), [msg('m2')], 2), 'thr_1', 2, 3);
        assert.deepEqual(seqs(await store.commitStep(runRecord({ steps: 1 }), [msg('m2')], 3)), [2]);
        assert.deepEqual(seqs(await store.commitStep(runRecord({ steps: 2 }), [msg('m3')], 5)), [3]);
        await leaseLost(store.commitStep(runRecord({ steps: 3 }), [msg('m4')], 4), 'thr_1', 4, 5);
        assert.deepEqual(ids(await store.recentMessages('thr_1', 10)), ['m1', 'm2', 'm3']);
        assert.equal((await store.getRun('run_1'))?.steps, 2);
      });

      it('a stale commitStep writes nothing: no message, no record change, no thread change', async () => {
        await thread('thr_1', 60);
        await store.createRun(runRecord({ id: 'run_old' }), [msg('m1')], 1);
        await store.createRun(runRecord({ id: 'run_new' }), [msg('m2', T0 + 5)], 2);
        const before = await store.getThread('thr_1');
        const stale = runRecord({ id: 'run_old', status: 'succeeded', output: 'late', steps: 1 });
        await leaseLost(store.commitStep(stale, [msg('m3', T0 + 9000)], 1), 'thr_1', 1, 2);
        await leaseLost(store.commitStep(stale, [], 1), 'thr_1', 1, 2);
        assert.deepEqual(await store.getThread('thr_1'), before);
        assert.deepEqual(ids(await store.recentMessages('thr_1', 10)), ['m1', 'm2']);
        assert.deepEqual(await store.getRun('run_old'), runRecord({ id: 'run_old' }));
      });

      it('a stale createRun writes nothing: no run, no message', async () => {
        await thread();
        await store.createRun(runRecord({ id: 'run_a' }), [msg('m1')], 7);
        await leaseLost(store.createRun(runRecord({ id: 'run_b' }), [msg('m2')], 6), 'thr_1', 6, 7);
        await leaseLost(store.createRun(runRecord({ id: 'run_c' }), [], 6), 'thr_1', 6, 7);
        assert.equal(await store.getRun('run_b'), undefined);
        assert.equal(await store.getRun('run_c'), undefined);
        assert.equal((await store.getThread('thr_1'))?.messageCount, 1);
        assert.deepEqual(ids((await store.listRuns('thr_1', { limit: 10 })).data), ['run_a']);
      });

      it('checks and raises the fence on writes without messages too', async () => {
        await thread();
        await store.createRun(runRecord(), [], 1);
        await store.commitStep(runRecord({ steps: 1 }), [], 4);
        await leaseLost(store.commitStep(runRecord({ steps: 2 }), [msg('m1')], 3), 'thr_1', 3, 4);
        assert.equal((await store.getRun('run_1'))?.steps, 1);
        assert.equal((await store.getThread('thr_1'))?.messageCount, 0);
      });

      it('does not check writes without a fence (a single node), nor lower the fence with them', async () => {
        await thread();
        await store.createRun(runRecord(), [msg('m1')], 9);
        await store.commitStep(runRecord({ steps: 1 }), [msg('m2')]);
        await store.createRun(runRecord({ id: 'run_2' }), [msg('m3')]);
        assert.equal((await store.getThread('thr_1'))?.messageCount, 3);
        await leaseLost(store.commitStep(runRecord({ steps: 2 }), [msg('m4')], 8), 'thr_1', 8, 9);
      });

      it('keeps each thread its own fence', async () => {
        await thread('thr_1');
        await thread('thr_2');
        await store.createRun(runRecord({ id: 'run_1' }), [msg('m1')], 10);
        await store.createRun(runRecord({ id: 'run_2', threadId: 'thr_2' }), [msg('m2')], 1);
        await store.commitStep(runRecord({ id: 'run_2', threadId: 'thr_2', steps: 1 }), [msg('m3')], 1);
        assert.equal((await store.getThread('thr_2'))?.messageCount, 2);
      });

      it('reports a missing thread as THREAD_NOT_FOUND, fenced or not', async () => {
        await rejectsWith(
          store.createRun(runRecord({ threadId: 'thr_missing' }), [msg('m1')], 1),
          'THREAD_NOT_FOUND',
        );
        await rejectsWith(store.createRun(runRecord({ threadId: 'thr_missing' }), [], 1), 'THREAD_NOT_FOUND');
        await thread();
        await store.createRun(runRecord(), [], 1);
        await store.deleteThread('thr_1');
        await rejectsWith(store.commitStep(runRecord({ steps: 1 }), [], 2), 'THREAD_NOT_FOUND');
        await rejectsWith(store.commitStep(runRecord({ steps: 1 }), [msg('m1')], 2), 'THREAD_NOT_FOUND');
      });

      it('ignores the fence of a stateless run, which has no thread to fence', async () => {
        const run = runRecord({ id: 'run_s', threadId: null });
        await store.createRun(run, [], 5);
        await store.commitStep({ ...run, steps: 1 }, [], 0);
        assert.equal((await store.getRun('run_s'))?.steps, 1);
      });

      it('rejects a fence that is not a non-negative integer with VALIDATION_FAILED naming fence', async () => {
        await thread();
        for (const bad of [-1, 1.5, Number.NaN, 2 ** 60, '3' as unknown as number]) {
          await assert.rejects(store.createRun(runRecord(), [msg('m1')], bad), (err: unknown) => {
            assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
            assert.equal(err.details.field, 'fence');
            return true;
          });
        }
        assert.equal(await store.getRun('run_1'), undefined);
        await store.createRun(runRecord(), [msg('m1')], 0);
        await invalid(store.commitStep(runRecord({ steps: 1 }), [msg('m2')], -2));
        assert.equal((await store.getThread('thr_1'))?.messageCount, 1);
      });

      it('of concurrent writes carrying tokens 1..20, none older than an accepted one is taken after it', async () => {
        await thread();
        await store.createRun(runRecord(), [], 0);
        const tokens = Array.from({ length: 20 }, (_, i) => ((i * 7) % 20) + 1);
        const outcomes = await Promise.allSettled(
          tokens.map((t) => store.commitStep(runRecord({ steps: t }), [msg(`m${t}`)], t)),
        );
        const accepted: number[] = [];
        outcomes.forEach((o, i) => {
          if (o.status === 'fulfilled') accepted.push(tokens[i] as number);
          else assert.ok(isAgentPoolError(o.reason, 'LEASE_LOST'), String(o.reason));
        });
        const stored = (await store.listMessages('thr_1', { limit: 100 })).data.map((m) =>
          Number(String(m.id).slice(1)),
        );
        assert.deepEqual(
          stored,
          accepted.slice().sort((a, b) => a - b),
          'taken in rising token order',
        );
        assert.ok(stored.includes(20), 'the newest token is always taken');
        assert.equal((await store.getRun('run_1'))?.steps, stored.at(-1));
      });
    });

    describe('nodes', () => {
      it('interruptUnfinished with a node ends only the runs that node wrote, naming the node', async () => {
        const node = await factory({ nodeId: 'node_a' });
        try {
          const a = node.store;
          await a.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
          await a.createRun(runRecord({ id: 'run_t' }), [msg('m1')]);
          await a.createRun(runRecord({ id: 'run_s', threadId: null, status: 'queued' }), []);
          await a.createRun(runRecord({ id: 'run_done', threadId: null, status: 'succeeded' }), []);
          assert.equal(await a.interruptUnfinished(T0 + 1, { node: 'node_b' }), 0);
          assert.equal((await a.getRun('run_t'))?.status, 'running');
          assert.equal(await a.interruptUnfinished(T0 + 2, { node: 'node_a' }), 2);
          for (const id of ['run_t', 'run_s']) {
            const run = await a.getRun(id);
            assert.equal(run?.status, 'interrupted');
            assert.equal(run?.finishedAt, T0 + 2);
            assert.deepEqual(run?.error, {
              code: 'RUN_INTERRUPTED',
              message: 'node "node_a" stopped while the run was in flight',
            });
          }
          assert.equal((await a.getRun('run_done'))?.status, 'succeeded');
        } finally {
          await node.cleanup();
        }
      });

      it('interruptUnfinished with a node leaves the runs named in except (background runs resumed elsewhere)', async () => {
        const node = await factory({ nodeId: 'node_a' });
        try {
          const a = node.store;
          await a.createRun(runRecord({ id: 'run_bg', threadId: null }), []);
          await a.createRun(runRecord({ id: 'run_wait', threadId: null }), []);
          assert.equal(await a.interruptUnfinished(T0 + 1, { node: 'node_a', except: ['run_bg'] }), 1);
          assert.equal((await a.getRun('run_bg'))?.status, 'running');
          assert.equal((await a.getRun('run_wait'))?.status, 'interrupted');
          assert.equal(await a.interruptUnfinished(T0 + 2, { node: 'node_a', except: [] }), 1);
          assert.equal((await a.getRun('run_bg'))?.status, 'interrupted');
        } finally {
          await node.cleanup();
        }
      });

      it('a store without a node id stamps none: a node sweep leaves its runs, a full sweep ends them', async () => {
        await store.createRun(runRecord({ id: 'run_s', threadId: null }), []);
        assert.equal(await store.interruptUnfinished(T0, { node: 'node_a' }), 0);
        assert.equal(await store.interruptUnfinished(T0), 1);
        assert.deepEqual((await store.getRun('run_s'))?.error, INTERRUPTED);
      });

      it('rejects a node that is not a non-empty string with VALIDATION_FAILED naming node', async () => {
        for (const node of ['', 7 as unknown as string]) {
          await assert.rejects(store.interruptUnfinished(T0, { node }), (err: unknown) => {
            assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
            assert.equal(err.details.field, 'node');
            return true;
          });
        }
      });
    });

    describe('validation and lifecycle', () => {
      it('rejects a limit outside 1..1000 and a malformed or foreign cursor with VALIDATION_FAILED', async () => {
        await thread();
        for (let i = 0; i < 3; i++) await store.createRun(runRecord({ id: `run_${i}` }), [msg(`m${i}`)]);
        const runCursor = (await store.listRuns('thr_1', { limit: 1 })).nextCursor ?? undefined;
        const seqCursor = (await store.listMessages('thr_1', { limit: 1 })).nextCursor ?? undefined;
        assert.ok(runCursor !== undefined && seqCursor !== undefined);
        for (const limit of [0, 1001, 1.5]) {
          await invalid(store.listMessages('thr_1', { limit }));
          await invalid(store.listRuns('thr_1', { limit }));
          await invalid(store.recentMessages('thr_1', limit));
          await invalid(store.listExpiredThreads(T0, limit));
        }
        await invalid(store.listMessages('thr_1', { limit: 5, cursor: 'not-a-cursor' }));
        await invalid(store.listRuns('thr_1', { limit: 5, cursor: 'not-a-cursor' }));
        await invalid(store.listMessages('thr_1', { limit: 5, cursor: runCursor }));
        await invalid(store.listRuns('thr_1', { limit: 5, cursor: seqCursor }));
      });

      it('fails every call after close with STORE_FAILED, and closing twice is harmless', async () => {
        await thread();
        await store.createRun(runRecord(), [msg('m1')]);
        await store.close();
        await store.close();
        const calls: (() => Promise<unknown>)[] = [
          () => thread('thr_2'),
          () => store.getThread('thr_1'),
          () => store.deleteThread('thr_1'),
          () => store.listMessages('thr_1', { limit: 5 }),
          () => store.recentMessages('thr_1', 5),
          () => store.listExpiredThreads(T0, 5),
          () => store.createRun(runRecord({ id: 'run_2' }), []),
          () => store.getRun('run_1'),
          () => store.listRuns('thr_1', { limit: 5 }),
          () => store.commitStep(runRecord(), [msg('m2')]),
          () => store.interruptUnfinished(T0),
          () => store.versionStats('p1', 'agt_1', T0),
        ];
        for (const call of calls) await rejectsWith(call(), 'STORE_FAILED');
      });
    });
  });
}

/**
 * The retention steps of the RunStore port (run/retention.ts uses them), one specification for
 * every adapter: a walk over one project's threads that names those last updated before the
 * cutoff, examining at most `limit` per step; deleting such threads with their messages and runs
 * unless they moved since or a run on them is queued or running; deleting stateless runs that
 * finished before the cutoff, never one in flight, at most `limit` per step.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { NewMessage, RunRecord, RunStore } from '../../src/store/ports.ts';
import { runRecord } from '../support/run-record.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const CUTOFF = T0 + 30 * DAY;

const msg = (id: string, createdAt: number): NewMessage => ({
  id,
  role: 'user',
  content: id,
  runId: null,
  createdAt,
});

/** Registers the specification against the adapter that `factory` builds. */
export function retentionConformance(
  name: string,
  factory: () => Promise<{ store: RunStore; cleanup(): Promise<void> }>,
): void {
  describe(`${name}: retention steps`, () => {
    let store: RunStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => cleanup());

    /** A thread of `project` created at `at`, with a finished run of two messages at `at`. */
    async function thread(id: string, at: number, project = 'p1', status: RunRecord['status'] = 'succeeded') {
      await store.createThread({ id, project, metadata: {}, ttlSeconds: null, now: at });
      const run = runRecord({ id: `run_${id}`, project, threadId: id, createdAt: at, startedAt: at });
      await store.createRun(run, [msg(`${id}_m1`, at)]);
      await store.commitStep({ ...run, status, finishedAt: status === 'running' ? null : at }, [
        msg(`${id}_m2`, at),
      ]);
    }

    async function walkAll(project: string, limit: number): Promise<{ ids: string[]; steps: number }> {
      const ids: string[] = [];
      let cursor: string | undefined;
      let steps = 0;
      do {
        const step = await store.listRetainedThreads(project, CUTOFF, {
          limit,
          ...(cursor !== undefined && { cursor }),
        });
        assert.ok(step.ids.length <= limit);
        ids.push(...step.ids);
        cursor = step.nextCursor ?? undefined;
        steps++;
      } while (cursor !== undefined && steps < 100);
      return { ids, steps };
    }

    it('walks a project’s threads in bounded steps and names those last updated before the cutoff', async () => {
      for (let i = 0; i < 7; i++) await thread(`thr_old${i}`, T0 + i);
      await thread('thr_new', CUTOFF + 1);
      await thread('thr_edge', CUTOFF); // not before the cutoff
      await thread('thr_other', T0, 'p2');
      const { ids, steps } = await walkAll('p1', 3);
      assert.deepEqual(
        ids.sort(),
        Array.from({ length: 7 }, (_, i) => `thr_old${i}`),
      );
      assert.ok(steps >= 3, `${steps} steps of at most 3 threads for 9 threads`);
      assert.deepEqual((await walkAll('p2', 10)).ids, ['thr_other']);
      assert.deepEqual((await walkAll('p3', 10)).ids, []);
    });

    it('counts a thread by its last message: one appended after the cutoff keeps it', async () => {
      await thread('thr_1', T0);
      const run = runRecord({ id: 'run_late', project: 'p1', threadId: 'thr_1', createdAt: CUTOFF + 5 });
      await store.createRun(run, [msg('late', CUTOFF + 5)]);
      await store.commitStep({ ...run, status: 'succeeded', finishedAt: CUTOFF + 6 }, []);
      assert.deepEqual((await walkAll('p1', 10)).ids, []);
      assert.deepEqual(await store.deleteRetainedThreads(['thr_1'], CUTOFF), {
        threads: 0,
        messages: 0,
        runs: 0,
      });
      assert.ok(await store.getThread('thr_1'));
    });

    it('deletes old threads with their messages and runs, and answers what it deleted', async () => {
      await thread('thr_a', T0);
      await thread('thr_b', T0 + 1);
      const deleted = await store.deleteRetainedThreads(['thr_a', 'thr_b', 'thr_missing'], CUTOFF);
      assert.deepEqual(deleted, { threads: 2, messages: 4, runs: 2 });
      assert.equal(await store.getThread('thr_a'), undefined);
      assert.equal(await store.getRun('run_thr_a'), undefined);
      assert.deepEqual((await store.listMessages('thr_b', { limit: 10 })).data, []);
    });

    it('never deletes a thread with a queued or running run', async () => {
      await thread('thr_busy', T0, 'p1', 'running');
      const queued = runRecord({
        id: 'run_q',
        project: 'p1',
        threadId: 'thr_q',
        status: 'queued',
        createdAt: T0,
      });
      await store.createThread({ id: 'thr_q', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
      await store.createRun(queued, []);
      assert.deepEqual(await store.deleteRetainedThreads(['thr_busy', 'thr_q'], CUTOFF), {
        threads: 0,
        messages: 0,
        runs: 0,
      });
      assert.ok(await store.getThread('thr_busy'));
      assert.ok(await store.getRun('run_q'));
    });

    it('deletes stateless runs finished before the cutoff, at most limit a step, never one in flight', async () => {
      for (let i = 0; i < 5; i++) {
        await store.createRun(
          runRecord({
            id: `run_old${i}`,
            status: 'succeeded',
            createdAt: T0,
            startedAt: T0,
            finishedAt: T0 + 1,
          }),
          [],
        );
      }
      await store.createRun(runRecord({ id: 'run_running', status: 'running', createdAt: T0 }), []);
      await store.createRun(
        runRecord({ id: 'run_queued', status: 'queued', createdAt: T0, startedAt: null }),
        [],
      );
      await store.createRun(
        runRecord({ id: 'run_recent', status: 'failed', createdAt: T0, finishedAt: CUTOFF + 1 }),
        [],
      );
      await store.createRun(
        runRecord({ id: 'run_p2', project: 'p2', status: 'succeeded', createdAt: T0, finishedAt: T0 }),
        [],
      );
      await thread('thr_kept', CUTOFF + 1); // a run on a thread goes with its thread
      assert.equal(await store.deleteRetainedRuns('p1', CUTOFF, 3), 3);
      assert.equal(await store.deleteRetainedRuns('p1', CUTOFF, 3), 2);
      assert.equal(await store.deleteRetainedRuns('p1', CUTOFF, 3), 0);
      for (const id of ['run_running', 'run_queued', 'run_recent', 'run_p2', 'run_thr_kept']) {
        assert.ok(await store.getRun(id), `${id} is kept`);
      }
      assert.equal(await store.getRun('run_old0'), undefined);
    });
  });
}

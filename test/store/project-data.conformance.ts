/**
 * The conformance suite of deleting one project's data: the project methods of AgentStore
 * (deleteProjectAgents), RunStore (countProjectRuns, deleteProjectRuns, countProjectThreads,
 * deleteProjectThreads) and ProjectStore (deleteKeys). Every adapter must delete exactly the
 * project's records, in bounded steps, and never touch another project's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ErrorCode, isAgentPoolError } from '../../src/core/errors.ts';
import type { ProjectStore } from '../../src/store/project-ports.ts';
import type { AgentStore, ProjectWalk, RunStore } from '../../src/store/ports.ts';
import { runRecord } from '../support/run-record.ts';

const T0 = Date.UTC(2026, 0, 1);

/** The three stores of one adapter, sharing their storage where the adapter does. */
export interface ProjectDataStores {
  agents: AgentStore;
  runs: RunStore;
  projects: ProjectStore;
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, field?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAgentPoolError(err), `expected an AgentPoolError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (field !== undefined) assert.equal(err.details['field'], field);
    return true;
  });
}

/** Registers the specification against the adapter that `factory` builds. */
export function projectDataConformance(
  name: string,
  factory: () => Promise<{ stores: ProjectDataStores; cleanup(): Promise<void> }>,
): void {
  describe(`${name}: deleting a project's data`, () => {
    let s: ProjectDataStores;
    let cleanup: () => Promise<void>;
    let seq = 0;
    const id = (kind: string) => `${kind}_${String(++seq).padStart(8, '0')}`;

    beforeEach(async () => {
      ({ stores: s, cleanup } = await factory());
    });
    afterEach(async () => {
      await cleanup();
    });

    const agent = (project: string, agentName: string) =>
      s.agents.create({
        id: id('agt'),
        project,
        name: agentName,
        spec: { labels: { team: 'x' }, tier: 'warm' },
        now: T0,
      });
    /** A thread with `messages` messages written by one run on it. */
    const thread = async (project: string, messages = 2) => {
      const threadId = id('thr');
      await s.runs.createThread({ id: threadId, project, metadata: {}, ttlSeconds: null, now: T0 });
      const msgs = Array.from({ length: messages }, () => ({
        id: id('msg'),
        role: 'user' as const,
        content: 'hi',
        runId: null,
        createdAt: T0,
      }));
      await s.runs.createRun(runRecord({ id: id('run'), project, threadId, createdAt: T0 }), msgs);
      return threadId;
    };
    const statelessRun = (project: string) =>
      s.runs.createRun(runRecord({ id: id('run'), project, threadId: null, createdAt: T0 }), []);

    /** Follows a walk to its end; returns the summed figures and the number of steps. */
    async function walkAll<T extends { nextCursor: string | null }>(
      step: (query: ProjectWalk) => Promise<T>,
      limit: number,
    ): Promise<{ results: T[]; steps: number }> {
      const results: T[] = [];
      let cursor: string | undefined;
      do {
        const result = await step({ limit, cursor });
        results.push(result);
        cursor = result.nextCursor ?? undefined;
      } while (cursor !== undefined && results.length < 10_000);
      return { results, steps: results.length };
    }
    const sum = <T>(items: T[], pick: (t: T) => number) => items.reduce((n, t) => n + pick(t), 0);

    it("deletes a project's agents in batches of at most `limit`, with their versions, and no other project's", async () => {
      for (let i = 0; i < 5; i++) await agent('gone', `a${i}`);
      const kept = await agent('kept', 'a0');
      const first = await agent('gone', 'b0');
      await s.agents.addVersion(first.id, 1, { labels: {}, tier: 'hot' }, T0 + 1);
      const batches: number[] = [];
      for (let n = await s.agents.deleteProjectAgents('gone', 2); n > 0;) {
        batches.push(n);
        n = await s.agents.deleteProjectAgents('gone', 2);
      }
      assert.deepEqual(batches, [2, 2, 2]);
      assert.equal(await s.agents.count('gone'), 0);
      assert.equal(await s.agents.getById(first.id), undefined);
      assert.equal(await s.agents.getVersion(first.id, 2), undefined, 'versions go with the agent');
      assert.deepEqual((await s.agents.listByTier('hot', { limit: 10 })).data, []);
      assert.equal((await s.agents.list('gone', { limit: 10, labels: { team: 'x' } })).data.length, 0);
      assert.equal((await s.agents.getById(kept.id))?.name, 'a0');
      assert.equal((await s.agents.list('kept', { limit: 10, labels: { team: 'x' } })).data.length, 1);
      assert.equal(await s.agents.deleteProjectAgents('nobody', 10), 0);
      // The name is free again in the project.
      assert.equal((await agent('gone', 'a0')).project, 'gone');
    });

    it("counts and deletes a project's runs, stateless and on threads, in batches, and no other project's", async () => {
      for (let i = 0; i < 3; i++) await statelessRun('gone');
      const threadId = await thread('gone');
      const keptRun = await statelessRun('kept');
      assert.equal(await s.runs.countProjectRuns('gone'), 4);
      assert.equal(await s.runs.countProjectRuns('kept'), 1);
      const batches: number[] = [];
      for (let n = await s.runs.deleteProjectRuns('gone', 3); n > 0;) {
        batches.push(n);
        n = await s.runs.deleteProjectRuns('gone', 3);
      }
      assert.deepEqual(batches, [3, 1]);
      assert.equal(await s.runs.countProjectRuns('gone'), 0);
      assert.equal((await s.runs.listRuns(threadId, { limit: 10 })).data.length, 0);
      assert.equal((await s.runs.listMessages(threadId, { limit: 10 })).data.length, 2, 'messages stay');
      assert.equal((await s.runs.getRun(keptRun.run.id))?.project, 'kept');
    });

    it("counts a project's threads over a walk of bounded steps", async () => {
      for (let i = 0; i < 5; i++) await thread(i % 2 === 0 ? 'gone' : 'kept', 1);
      for (let i = 0; i < 2; i++) await thread('gone', 1);
      const { results, steps } = await walkAll((q) => s.runs.countProjectThreads('gone', q), 2);
      assert.equal(
        sum(results, (r) => r.count),
        5,
      );
      assert.ok(
        steps >= 1 && steps <= 5,
        `a walk of 7 threads by 2 takes at most 4 steps (+1), took ${steps}`,
      );
      const kept = await walkAll((q) => s.runs.countProjectThreads('kept', q), 1000);
      assert.equal(
        sum(kept.results, (r) => r.count),
        2,
      );
      const none = await walkAll((q) => s.runs.countProjectThreads('nobody', q), 1000);
      assert.equal(
        sum(none.results, (r) => r.count),
        0,
      );
    });

    it("deletes a project's threads with their messages and runs, step by step, and no other project's", async () => {
      const gone: string[] = [];
      for (let i = 0; i < 5; i++) gone.push(await thread('gone', i + 1));
      const kept = await thread('kept', 3);
      const { results } = await walkAll((q) => s.runs.deleteProjectThreads('gone', q), 2);
      for (const r of results) assert.ok(r.threads <= 2, 'a step deletes at most `limit` threads');
      assert.equal(
        sum(results, (r) => r.threads),
        5,
      );
      assert.equal(
        sum(results, (r) => r.messages),
        1 + 2 + 3 + 4 + 5,
      );
      assert.equal(
        sum(results, (r) => r.runs),
        5,
      );
      for (const threadId of gone) {
        assert.equal(await s.runs.getThread(threadId), undefined);
        assert.deepEqual((await s.runs.listMessages(threadId, { limit: 10 })).data, []);
      }
      assert.equal(await s.runs.countProjectRuns('gone'), 0);
      assert.equal((await s.runs.getThread(kept))?.messageCount, 3);
      assert.equal(await s.runs.countProjectRuns('kept'), 1);
      const again = await walkAll((q) => s.runs.deleteProjectThreads('gone', q), 2);
      assert.equal(
        sum(again.results, (r) => r.threads),
        0,
        'nothing left to delete',
      );
    });

    it('refuses a walk limit outside 1..1000 and a foreign cursor with VALIDATION_FAILED', async () => {
      const foreign = Buffer.from('run:1:x').toString('base64url');
      await rejectsWith(s.runs.countProjectThreads('p', { limit: 0 }), 'VALIDATION_FAILED', 'limit');
      await rejectsWith(s.runs.deleteProjectThreads('p', { limit: 1001 }), 'VALIDATION_FAILED', 'limit');
      await rejectsWith(
        s.runs.deleteProjectThreads('p', { limit: 1, cursor: foreign }),
        'VALIDATION_FAILED',
        'cursor',
      );
      await rejectsWith(s.runs.deleteProjectRuns('p', 0), 'VALIDATION_FAILED', 'limit');
      await rejectsWith(s.agents.deleteProjectAgents('p', 1001), 'VALIDATION_FAILED', 'limit');
    });

    it("deletes a project's keys, revoked ones too, so none authenticates, and no other project's", async () => {
      const key = (project: string, n: number) => ({
        id: id('key'),
        project,
        prefix: 'ap_x',
        keyHash: createHash('sha256').update(`${project}-${n}`).digest('hex'),
        name: '',
        now: T0,
      });
      for (const project of ['gone', 'kept']) {
        await s.projects.createProject({ id: project, name: project, metadata: {}, now: T0 });
      }
      const k1 = key('gone', 1);
      const revoked = key('gone', 2);
      const k3 = key('kept', 3);
      for (const k of [k1, revoked, k3]) await s.projects.createKey(k);
      await s.projects.revokeKey('gone', revoked.id, T0);
      assert.equal(await s.projects.deleteKeys('gone'), 2);
      assert.equal(await s.projects.findKeyByHash(k1.keyHash), undefined);
      assert.deepEqual((await s.projects.listKeys('gone', { limit: 10 })).data, []);
      assert.equal((await s.projects.findKeyByHash(k3.keyHash))?.project, 'kept');
      assert.equal(await s.projects.countKeys(), 1);
      assert.ok(await s.projects.getProject('gone'), 'the project record stays');
      assert.equal(await s.projects.deleteKeys('gone'), 0);
      // A key with a deleted key's hash may be stored again.
      await s.projects.createKey({ ...k1, id: id('key') });
    });
  });
}

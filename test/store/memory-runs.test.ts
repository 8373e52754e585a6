/** Runs the RunStore conformance suite against the in-memory adapter, and what only it does. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import type { NewMessage } from '../../src/store/ports.ts';
import { runRecord } from '../support/run-record.ts';
import { runStoreConformance } from './run-store.conformance.ts';
import { retentionConformance } from './retention.conformance.ts';

runStoreConformance('MemoryRunStore', async (options) => {
  const store = new MemoryRunStore(options);
  return { store, cleanup: () => store.close() };
});

const msg = (id: string, content: unknown): NewMessage => ({
  id,
  role: 'user',
  content,
  runId: 'run_1',
  createdAt: 1,
});

async function storeWithThread(): Promise<MemoryRunStore> {
  const store = new MemoryRunStore();
  await store.createThread({ id: 'thr_1', project: 'p1', metadata: { a: [1] }, ttlSeconds: null, now: 0 });
  return store;
}

describe('MemoryRunStore records', () => {
  it('hands out the records it holds, frozen, instead of copying them on every read', async () => {
    const store = await storeWithThread();
    const created = await store.createRun(runRecord({ threadId: 'thr_1', metadata: { k: 'v' } }), [
      msg('m1', [{ type: 'text', text: 'hi' }]),
    ]);
    const run = await store.getRun('run_1');
    assert.equal(run, created.run);
    assert.equal((await store.listRuns('thr_1', { limit: 1 })).data[0], run);
    const [message] = await store.recentMessages('thr_1', 1);
    assert.equal(message, created.messages[0]);
    assert.equal((await store.listMessages('thr_1', { limit: 1 })).data[0], message);
    assert.ok(Object.isFrozen(run) && Object.isFrozen(run?.metadata));
    assert.ok(Object.isFrozen(message) && Object.isFrozen((message?.content as object[])[0]));
    assert.equal((await store.getThread('thr_1'))?.metadata, (await store.getThread('thr_1'))?.metadata);
  });

  it('keeps values beyond JSON as structuredClone does, copying them on every read', async () => {
    const store = await storeWithThread();
    const when = new Date(7);
    await store.createRun(runRecord({ threadId: 'thr_1', metadata: { when } }), [msg('m1', { when })]);
    when.setTime(8);
    const run = await store.getRun('run_1');
    const [message] = await store.recentMessages('thr_1', 1);
    assert.deepEqual(run?.metadata, { when: new Date(7) });
    assert.deepEqual(message?.content, { when: new Date(7) });
    (run?.metadata['when'] as Date).setTime(9);
    (message?.content as { when: Date }).when.setTime(9);
    assert.deepEqual((await store.getRun('run_1'))?.metadata, { when: new Date(7) });
    assert.deepEqual((await store.recentMessages('thr_1', 1))[0]?.content, { when: new Date(7) });
  });

  it('refuses a value structuredClone refuses, writing nothing', async () => {
    const store = await storeWithThread();
    const refused = { name: 'DataCloneError' };
    await assert.rejects(
      store.createRun(runRecord({ threadId: 'thr_1' }), [msg('m1', { f: () => 1 })]),
      refused,
    );
    await assert.rejects(store.createRun(runRecord({ metadata: { f: () => 1 } }), []), refused);
    assert.equal(await store.getRun('run_1'), undefined);
    await store.createRun(runRecord({ threadId: 'thr_1' }), [msg('m1', 'ok')]);
    const step = runRecord({ threadId: 'thr_1', steps: 1 });
    await assert.rejects(store.commitStep(step, [msg('m2', 'fine'), msg('m3', [Symbol('s')])]), refused);
    assert.equal((await store.getRun('run_1'))?.steps, 0);
    assert.equal((await store.getThread('thr_1'))?.messageCount, 1);
  });
});

retentionConformance('MemoryRunStore', async () => {
  const store = new MemoryRunStore();
  return { store, cleanup: () => store.close() };
});

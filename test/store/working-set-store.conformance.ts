/**
 * The conformance suite of the WorkingSetStore port: one checkpoint per node, replaced whole by a
 * save, read back exactly (entries in order, the sketch's counters), forgotten on delete, nodes
 * kept apart, and bad node ids refused with VALIDATION_FAILED naming the field.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { WorkingSetCheckpoint, WorkingSetStore } from '../../src/store/working-set-ports.ts';

const T0 = Date.UTC(2026, 0, 1);

/** A checkpoint of `n` agents of node `node`. */
export function checkpointOf(node: string, n: number, savedAt = T0): WorkingSetCheckpoint {
  return {
    node,
    savedAt,
    entries: Array.from({ length: n }, (_, i) => ({
      project: 'acme',
      agentId: `agt_${node}_${i}`,
      name: `a${i}`,
      tier: i === 0 ? 'hot' : 'auto',
      pinned: i === 0,
      uses: 100 - i,
      lastUsedAt: savedAt - i,
      frequency: 15 - (i % 16),
    })),
    sketch: { width: 16, counters: Buffer.alloc(64, 3).toString('base64'), additions: 42 },
  };
}

/** Registers the specification against the adapter that `factory` builds. */
export function workingSetStoreConformance(
  name: string,
  factory: () => Promise<{ store: WorkingSetStore; cleanup(): Promise<void> }>,
): void {
  describe(`${name}: working-set store`, () => {
    let store: WorkingSetStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => cleanup());

    it('has no checkpoint for a node that never saved', async () => {
      assert.equal(await store.loadWorkingSet('node-1'), undefined);
    });

    it('reads back exactly what was saved: entries in order, the sketch, the time', async () => {
      const saved = checkpointOf('node-1', 50);
      await store.saveWorkingSet(saved);
      assert.deepEqual(await store.loadWorkingSet('node-1'), saved);
    });

    it('replaces a node’s checkpoint whole on the next save', async () => {
      await store.saveWorkingSet(checkpointOf('node-1', 50));
      const next = { ...checkpointOf('node-1', 3, T0 + 60_000), sketch: null };
      await store.saveWorkingSet(next);
      assert.deepEqual(await store.loadWorkingSet('node-1'), next);
    });

    it('keeps each node’s checkpoint apart', async () => {
      await store.saveWorkingSet(checkpointOf('node-1', 2));
      await store.saveWorkingSet(checkpointOf('node_2', 5));
      assert.equal((await store.loadWorkingSet('node-1'))?.entries.length, 2);
      assert.equal((await store.loadWorkingSet('node_2'))?.entries.length, 5);
      assert.equal(await store.deleteWorkingSet('node-1'), true);
      assert.equal(await store.loadWorkingSet('node-1'), undefined);
      assert.equal((await store.loadWorkingSet('node_2'))?.entries.length, 5);
      assert.equal(await store.deleteWorkingSet('node-1'), false);
    });

    it('refuses a bad node id with VALIDATION_FAILED naming the field', async () => {
      for (const attempt of [
        () => store.saveWorkingSet(checkpointOf('no spaces', 1)),
        () => store.loadWorkingSet(''),
        () => store.deleteWorkingSet('x'.repeat(65)),
      ]) {
        await assert.rejects(attempt(), (err: unknown) => {
          assert.ok(isAgentPoolError(err));
          assert.equal(err.code, 'VALIDATION_FAILED');
          assert.equal(err.details['field'], 'node');
          return true;
        });
      }
    });

    it('fails with STORE_FAILED once closed', async () => {
      await store.close();
      await assert.rejects(store.loadWorkingSet('node-1'), { code: 'STORE_FAILED' });
    });
  });
}

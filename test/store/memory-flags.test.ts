/** Runs the flag store conformance suite against the memory adapter, and checks its history bound. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MEMORY_FLAG_HISTORY, MemoryFlagStore } from '../../src/store/memory-flags.ts';
import { flagStoreConformance } from './flag-store.conformance.ts';

flagStoreConformance('memory', async () => {
  const store = new MemoryFlagStore();
  return { store, cleanup: () => store.close() };
});

describe('memory flag store', () => {
  it(`keeps the last ${MEMORY_FLAG_HISTORY} changes of a flag`, async () => {
    const store = new MemoryFlagStore();
    for (let i = 0; i < MEMORY_FLAG_HISTORY + 5; i++) {
      await store.putFlag(
        'beta',
        { flag: { strategy: 'percentage', percent: i % 100 }, startedAt: 0 },
        {
          actor: 'admin',
          at: i,
        },
      );
    }
    const page = await store.flagHistory('beta', { limit: 1000 });
    assert.equal(page.data.length, 1000);
    assert.equal(page.nextCursor, null);
    assert.equal(page.data.at(-1)?.at, 5, 'the oldest five were dropped');
  });
});

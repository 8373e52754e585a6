/** Runs the RunStore conformance suite against the in-memory adapter. */
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import { runStoreConformance } from './run-store.conformance.ts';

runStoreConformance('MemoryRunStore', async (options) => {
  const store = new MemoryRunStore(options);
  return { store, cleanup: () => store.close() };
});

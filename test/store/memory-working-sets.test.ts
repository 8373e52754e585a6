/** Runs the working-set store conformance suite against the memory adapter. */
import { MemoryWorkingSetStore } from '../../src/store/memory-working-sets.ts';
import { workingSetStoreConformance } from './working-set-store.conformance.ts';

workingSetStoreConformance('memory', async () => {
  const store = new MemoryWorkingSetStore();
  return { store, cleanup: () => store.close() };
});

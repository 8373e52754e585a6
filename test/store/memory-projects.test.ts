/** Runs the ProjectStore conformance suite against the in-memory adapter. */
import { MemoryProjectStore } from '../../src/store/memory-projects.ts';
import { projectStoreConformance } from './project-store.conformance.ts';

projectStoreConformance('MemoryProjectStore', async () => {
  const store = new MemoryProjectStore();
  return { store, cleanup: () => store.close() };
});

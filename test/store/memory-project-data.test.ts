/** Runs the project-data conformance suite against the in-memory adapters. */
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryProjectStore } from '../../src/store/memory-projects.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import { projectDataConformance } from './project-data.conformance.ts';

projectDataConformance('memory stores', async () => {
  const stores = {
    agents: new MemoryAgentStore(),
    runs: new MemoryRunStore(),
    projects: new MemoryProjectStore(),
  };
  return {
    stores,
    cleanup: async () => {
      await Promise.all([stores.agents.close(), stores.runs.close(), stores.projects.close()]);
    },
  };
});

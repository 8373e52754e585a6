/** Runs the AgentStore conformance suite against the in-memory adapter. */
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { agentStoreConformance } from './agent-store.conformance.ts';

agentStoreConformance('MemoryAgentStore', async () => {
  const store = new MemoryAgentStore();
  return { store, cleanup: () => store.close() };
});

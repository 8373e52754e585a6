/** Runs the AgentStore conformance suite against the PostgreSQL adapter, each test on its own schema. */
import { agentStoreConformance } from './agent-store.conformance.ts';
import { postgresStores } from '../support/postgres-stores.ts';

agentStoreConformance('PostgresAgentStore', async () => {
  const { stores, cleanup } = await postgresStores();
  return { store: stores.agents, cleanup };
});

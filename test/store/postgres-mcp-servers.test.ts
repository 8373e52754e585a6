/** Runs the MCP server store conformance suite against the PostgreSQL adapter on a fresh schema. */
import { PostgresMcpServerStore } from '../../src/store/postgres/mcp-server-store.ts';
import { postgresStores } from '../support/postgres-stores.ts';
import { mcpServerStoreConformance } from './mcp-server-store.conformance.ts';

mcpServerStoreConformance('PostgreSQL', async () => {
  const { stores, cleanup } = await postgresStores();
  const store = new PostgresMcpServerStore(stores.database);
  return {
    store,
    cleanup: async () => {
      await store.close();
      await cleanup();
    },
  };
});

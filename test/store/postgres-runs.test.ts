/** Runs the RunStore conformance suite against the PostgreSQL adapter, each test on its own schema. */
import { runStoreConformance } from './run-store.conformance.ts';
import { retentionConformance } from './retention.conformance.ts';
import { postgresStores } from '../support/postgres-stores.ts';

runStoreConformance('PostgresRunStore', async (options) => {
  const { stores, cleanup } = await postgresStores(options);
  return { store: stores.runs, cleanup };
});

retentionConformance('PostgresRunStore', async () => {
  const { stores, cleanup } = await postgresStores();
  return { store: stores.runs, cleanup };
});

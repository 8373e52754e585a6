/** Runs the ProjectStore conformance suite against the PostgreSQL adapter, each test on its own schema. */
import { projectStoreConformance } from './project-store.conformance.ts';
import { postgresStores } from '../support/postgres-stores.ts';

projectStoreConformance('PostgresProjectStore', async () => {
  const { stores, cleanup } = await postgresStores();
  return { store: stores.projects, cleanup };
});

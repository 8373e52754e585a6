/** Runs the project-data conformance suite against the PostgreSQL stores sharing one schema. */
import { projectDataConformance } from './project-data.conformance.ts';
import { postgresStores } from '../support/postgres-stores.ts';

projectDataConformance('PostgreSQL stores on one schema', async () => {
  const { stores, cleanup } = await postgresStores();
  return { stores, cleanup };
});

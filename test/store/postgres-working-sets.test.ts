/** Runs the working-set store conformance suite against the PostgreSQL adapter on a fresh schema. */
import { PostgresWorkingSetStore } from '../../src/store/postgres/working-set-store.ts';
import { postgresStores } from '../support/postgres-stores.ts';
import { workingSetStoreConformance } from './working-set-store.conformance.ts';

workingSetStoreConformance('PostgreSQL', async () => {
  const { stores, cleanup } = await postgresStores();
  const store = new PostgresWorkingSetStore(stores.database);
  return {
    store,
    cleanup: async () => {
      await store.close();
      await cleanup();
    },
  };
});

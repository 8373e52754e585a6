/** Runs the flag store conformance suite against the PostgreSQL adapter on a fresh schema. */
import { PostgresFlagStore } from '../../src/store/postgres/flag-store.ts';
import { postgresStores } from '../support/postgres-stores.ts';
import { flagStoreConformance } from './flag-store.conformance.ts';

flagStoreConformance('PostgreSQL', async () => {
  const { stores, cleanup } = await postgresStores();
  const store = new PostgresFlagStore(stores.database);
  return {
    store,
    cleanup: async () => {
      await store.close();
      await cleanup();
    },
  };
});

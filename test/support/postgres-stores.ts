/**
 * PostgreSQL stores for tests: the three stores of a pool opened on a fresh schema, and a cleanup
 * that closes them and drops the schema.
 */
import { openPostgresStores, type PostgresStores } from '../../src/store/postgres/open.ts';
import type { PostgresStoreOptions } from '../../src/store/postgres/options.ts';
import { testSchema } from './postgres.ts';

/** Stores on a new schema; extra options (a node id, pool bounds) go to every store. */
export async function postgresStores(
  options: Partial<PostgresStoreOptions> = {},
): Promise<{ stores: PostgresStores; url: string; schema: string; cleanup(): Promise<void> }> {
  const { url, schema, cleanup } = await testSchema('store');
  const stores = await openPostgresStores({ ...options, databaseUrl: url, schema });
  return {
    stores,
    url,
    schema,
    cleanup: async () => {
      try {
        await Promise.all([stores.agents.close(), stores.runs.close(), stores.projects.close()]);
      } finally {
        await cleanup();
      }
    },
  };
}

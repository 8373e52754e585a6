/**
 * Opening the PostgreSQL stores of one agent pool: one database connection pool, the schema
 * migrated once, and the three stores sharing it (the pool closes when the last of them closes).
 */
import { PostgresAgentStore } from './agent-store.ts';
import { PostgresDatabase } from './database.ts';
import type { PostgresStoreOptions } from './options.ts';
import { PostgresProjectStore } from './project-store.ts';
import { PostgresRunStore } from './run-store.ts';

/** The stores of one pool on PostgreSQL, and the database they share. */
export interface PostgresStores {
  readonly agents: PostgresAgentStore;
  readonly runs: PostgresRunStore;
  readonly projects: PostgresProjectStore;
  readonly database: PostgresDatabase;
}

/**
 * Connects, migrates and opens the agent, run and project stores on one database. Fails with
 * `STORE_UNAVAILABLE` when PostgreSQL cannot be reached (a node refuses to start without its
 * store), `STORE_FAILED` when the schema is newer than this agentpool, `VALIDATION_FAILED` for a
 * bad option.
 */
export async function openPostgresStores(options: PostgresStoreOptions): Promise<PostgresStores> {
  const database = await PostgresDatabase.open(options);
  const agents = new PostgresAgentStore(database);
  const runs = new PostgresRunStore(database);
  const projects = new PostgresProjectStore(database);
  await agents.listen();
  return { agents, runs, projects, database };
}

/**
 * The three SQLite stores of a pool (agents, runs, projects) on one connection to one file, which
 * `lockingMode: 'exclusive'` requires: that mode admits a single connection to the file.
 */
import { enumOption, objectOption } from '../core/options.ts';
import { SqliteDatabase, type SqliteDatabaseOptions, type SqliteLockingMode } from './sqlite-connection.ts';
import { SqliteProjectStore } from './sqlite-projects.ts';
import { SqliteRunStore, type SqliteRunStoreOptions } from './sqlite-runs.ts';
import { SqliteAgentStore } from './sqlite.ts';
import { SqliteWorkingSetStore } from './sqlite-working-sets.ts';
import { SqliteMcpServerStore } from './sqlite-mcp-servers.ts';
import { SqliteFlagStore } from './sqlite-flags.ts';

/** Options of {@link openSqliteStores}: the database's, and the run store's node. */
export interface SqliteStoresOptions extends SqliteDatabaseOptions {
  /** Stamped on the runs the run store creates and commits. @default null */
  readonly nodeId?: SqliteRunStoreOptions['nodeId'];
  /** Also open the working-set store (pool/checkpoint.ts) on the connection. @default false */
  readonly workingSets?: boolean;
  /** Also open the MCP server store (tools/mcp) on the connection. @default false */
  readonly mcpServers?: boolean;
  /** Also open the flag store (governance/runtime-flags.ts) on the connection. @default false */
  readonly flags?: boolean;
}

/** The stores {@link openSqliteStores} opens; each is closed on its own, the file with the last. */
export interface SqliteStores {
  readonly agents: SqliteAgentStore;
  readonly runs: SqliteRunStore;
  readonly projects: SqliteProjectStore;
  /** With `workingSets: true`. */
  readonly workingSets?: SqliteWorkingSetStore;
  /** With `mcpServers: true`. */
  readonly mcpServers?: SqliteMcpServerStore;
  /** With `flags: true`. */
  readonly flags?: SqliteFlagStore;
}

/** How a pool opens its SQLite file (`createAgentPool({ sqlite })`, the settings `sqlite.*`). */
export interface SqlitePoolOptions {
  /** See {@link SqliteDatabaseOptions.lockingMode}. @default 'normal' */
  lockingMode?: SqliteLockingMode;
}

/** {@link SqlitePoolOptions} checked, defaults applied; `field` names them in errors. */
export function resolveSqlitePoolOptions(value: unknown, field = 'sqlite'): Required<SqlitePoolOptions> {
  const given = objectOption(field, value, ['lockingMode']);
  return {
    lockingMode: enumOption(`${field}.lockingMode`, given['lockingMode'], ['normal', 'exclusive'], 'normal'),
  };
}

/** Opens (creating and migrating if needed) `path` once and the three stores on that connection. */
export function openSqliteStores(path: string, options: SqliteStoresOptions = {}): SqliteStores {
  const database = SqliteDatabase.open(path, options);
  const opened: { close(): Promise<void> }[] = [];
  try {
    const agents = new SqliteAgentStore({ database });
    opened.push(agents);
    const runs = new SqliteRunStore({ database, nodeId: options.nodeId });
    opened.push(runs);
    const projects = new SqliteProjectStore({ database });
    opened.push(projects);
    const workingSets = options.workingSets === true ? new SqliteWorkingSetStore({ database }) : undefined;
    if (workingSets !== undefined) opened.push(workingSets);
    const mcpServers = options.mcpServers === true ? new SqliteMcpServerStore({ database }) : undefined;
    const flags = options.flags === true ? new SqliteFlagStore({ database }) : undefined;
    return {
      agents,
      runs,
      projects,
      ...(workingSets !== undefined && { workingSets }),
      ...(mcpServers !== undefined && { mcpServers }),
      ...(flags !== undefined && { flags }),
    };
  } catch (err) {
    for (const store of opened) void store.close();
    throw err;
  } finally {
    database.release(); // the stores hold it now
  }
}

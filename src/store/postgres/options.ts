/**
 * Options of the PostgreSQL stores, resolved in one step: the database URL, the schema agentpool's
 * tables live in, and the bounds of the connection pool the three stores share (one `pg.Pool` per
 * agent pool). The timeouts are what make a lost server a fast 503 rather than a hung request.
 */
import { validationError } from '../../core/errors.ts';
import { redactUrl } from '../../core/urls.ts';
import { intOption, objectOption } from '../../core/options.ts';
import { nodeIdOption } from '../run-store-shared.ts';

/** How agentpool reaches PostgreSQL. */
export interface PostgresStoreOptions {
  /** `postgres://[user[:password]@]host[:port]/database` (`postgresql://` too). */
  readonly databaseUrl: string;
  /**
   * The PostgreSQL schema holding agentpool's tables, created if missing: several agentpools (or
   * test runs) can share one database in schemas of their own. @default 'public'
   */
  readonly schema?: string | undefined;
  /** Connections the pool holds at most (the change feed's listener takes one more). @default 10 */
  readonly maxConnections?: number | undefined;
  /**
   * How long opening a connection may take before the statement that needed it fails with
   * `STORE_UNAVAILABLE`, ms: what makes an unreachable server a fast 503. @default 2000
   */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * How long a statement waits for a free connection while all `maxConnections` are busy before
   * failing with `STORE_UNAVAILABLE`, ms. @default 10000
   */
  readonly acquireTimeoutMs?: number | undefined;
  /**
   * The server cancels a statement that runs longer (`statement_timeout`), ms; the client stops
   * waiting for an answer a second later, so a server that vanished mid-statement fails it too.
   * @default 30000
   */
  readonly statementTimeoutMs?: number | undefined;
  /** An idle connection is closed after this long, ms. @default 10000 */
  readonly idleTimeoutMs?: number | undefined;
  /** Stamped on the runs this node creates and commits (RunStore, "Nodes"). @default null */
  readonly nodeId?: string | undefined;
  /**
   * How many definition writes back a deletion stays in the change feed (as SQLite's
   * `changeHistory`). @default 100000
   */
  readonly changeHistory?: number | undefined;
}

/** {@link PostgresStoreOptions} checked, with every default applied. */
export interface ResolvedPostgresOptions {
  readonly databaseUrl: string;
  readonly schema: string;
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  readonly acquireTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly nodeId: string | null;
  readonly changeHistory: number;
}

/** Lower-case identifiers only, so the schema never needs quoting (and its channel name fits 63 bytes). */
const SCHEMA = /^[a-z_][a-z0-9_]{0,39}$/;

/**
 * Checks PostgreSQL options; `VALIDATION_FAILED` naming the field (with `prefix`, e.g.
 * `postgres.`, for the ones nested in the pool's options; the URL is always `databaseUrl`).
 */
export function resolvePostgresOptions(options: PostgresStoreOptions, prefix = ''): ResolvedPostgresOptions {
  const databaseUrl = databaseUrlOption(options.databaseUrl);
  const schema = options.schema ?? 'public';
  if (typeof schema !== 'string' || !SCHEMA.test(schema)) {
    throw validationError(
      `${prefix}schema`,
      `must be a lower-case identifier of at most 40 characters (a-z, 0-9, _), got ${JSON.stringify(schema)}`,
    );
  }
  return {
    databaseUrl,
    schema,
    maxConnections: intOption(`${prefix}maxConnections`, options.maxConnections, 10, 1, 1000),
    connectTimeoutMs: intOption(`${prefix}connectTimeoutMs`, options.connectTimeoutMs, 2000, 1, 600_000),
    acquireTimeoutMs: intOption(`${prefix}acquireTimeoutMs`, options.acquireTimeoutMs, 10_000, 1, 600_000),
    statementTimeoutMs: intOption(
      `${prefix}statementTimeoutMs`,
      options.statementTimeoutMs,
      30_000,
      1,
      3_600_000,
    ),
    idleTimeoutMs: intOption(`${prefix}idleTimeoutMs`, options.idleTimeoutMs, 10_000, 1, 3_600_000),
    nodeId: nodeIdOption(options.nodeId),
    changeHistory: intOption(`${prefix}changeHistory`, options.changeHistory, 100_000, 1),
  };
}

/** A `postgres://` or `postgresql://` URL; `VALIDATION_FAILED` naming `databaseUrl` otherwise. */
export function databaseUrlOption(url: unknown): string {
  const refuse = () =>
    validationError(
      'databaseUrl',
      `must be a postgres:// or postgresql:// URL, got ${url === undefined ? 'nothing' : JSON.stringify(redactDatabaseUrl(String(url)))}`,
    );
  if (typeof url !== 'string') throw refuse();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse();
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw refuse();
  return url;
}

/** The URL with its password hidden, for logs, errors and the start banner. */
export const redactDatabaseUrl: (url: string) => string = redactUrl;

/** Tuning of the PostgreSQL stores of a pool (`createAgentPool({ postgres })`): the URL is `databaseUrl`, the node id the cluster's. */
export type PostgresPoolOptions = Omit<PostgresStoreOptions, 'databaseUrl' | 'nodeId'>;

const POOL_FIELDS = [
  'schema',
  'maxConnections',
  'connectTimeoutMs',
  'acquireTimeoutMs',
  'statementTimeoutMs',
  'idleTimeoutMs',
  'changeHistory',
] as const satisfies readonly (keyof PostgresPoolOptions)[];

/** `postgres` as given, refusing keys it does not have (`postgres.maxConections is not …`). */
export function postgresPoolOptions(value: unknown): PostgresPoolOptions {
  return objectOption('postgres', value, POOL_FIELDS) as PostgresPoolOptions;
}

/**
 * One PostgreSQL database as the three stores of an agent pool share it: one `pg.Pool` (bounded,
 * with connect and statement timeouts, so a lost server fails statements fast and the pool opens
 * new connections by itself once it is back), the schema migrated when it is opened, a LISTENing
 * connection for whoever needs one, and every statement reported on a diagnostics channel that
 * costs nothing while nobody listens (tests and benchmarks count statements per run with it).
 *
 * Its public surface uses types of its own, not pg's: the package's declarations must not need
 * `@types/pg`, which users of the embedded store do not install.
 */
import diagnostics from 'node:diagnostics_channel';
import pg from 'pg';
import { AgentPoolError } from '../../core/errors.ts';
import { isUnavailable, storeUnavailable, toStoreError } from './errors.ts';
import { type MigrationOutcome, migrate } from './migrations.ts';
import {
  type PostgresStoreOptions,
  redactDatabaseUrl,
  type ResolvedPostgresOptions,
  resolvePostgresOptions,
} from './options.ts';

/** What {@link POSTGRES_QUERY_CHANNEL} publishes after each statement, answered or failed. */
export interface PostgresQueryMessage {
  /** The database the statement ran on, so a subscriber can tell several pools apart. */
  readonly database: PostgresDatabase;
  readonly text: string;
  /** Rows the statement returned or changed; null when it failed. */
  readonly rowCount: number | null;
}

/** The `node:diagnostics_channel` name every statement of the PostgreSQL stores is published on. */
export const POSTGRES_QUERY_CHANNEL = 'agentpool:postgres:query';
const queries = diagnostics.channel(POSTGRES_QUERY_CHANNEL);

/** What a statement answered: its rows (typed by the caller, who wrote the SQL) and how many it touched. */
export interface QueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

/** A statement inside a transaction, on the transaction's connection. */
export interface Transaction {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
}

/** A connection of its own, LISTENing on a channel (see {@link PostgresDatabase.listen}). */
export interface Listener {
  /** The server process of the connection (pg_stat_activity's pid). */
  readonly pid: number | null;
  /** A statement on the listening connection itself. */
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
  close(): Promise<void>;
}

/** Epoch-ms times, counts and sums come back as numbers, not strings (all stay far below 2^53). */
const NUMERIC_OIDS = new Set([20 /* int8 */, 1700 /* numeric */]);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    NUMERIC_OIDS.has(oid) ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** A migrated PostgreSQL database and the connection pool to it. */
export class PostgresDatabase {
  readonly options: ResolvedPostgresOptions;
  /** What opening it found and did to the schema. */
  migration: MigrationOutcome = { from: 0, to: 0 };
  /** Settings of every connection: the pool's, and listeners'. */
  readonly #clientConfig: pg.ClientConfig;
  readonly #pool: pg.Pool;
  #users = 0;
  #closed = false;

  private constructor(options: ResolvedPostgresOptions) {
    this.options = options;
    // Server settings in the URL (`?options=-c synchronous_commit=off`) are kept alongside the
    // schema's search_path; pg would otherwise let the URL's replace ours.
    const url = new URL(options.databaseUrl);
    const settings = url.searchParams.get('options');
    url.searchParams.delete('options');
    const clientConfig: pg.ClientConfig = {
      connectionString: url.toString(),
      connectionTimeoutMillis: options.connectTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      // The server ends a slow statement itself; this catches a server that stopped answering.
      query_timeout: options.statementTimeoutMs + 1000,
      keepAlive: true,
      application_name: 'agentpool',
      options: `${settings === null ? '' : `${settings} `}-c search_path=${options.schema}`,
      types,
    };
    this.#clientConfig = clientConfig;
    // pg's pool applies one timeout to waiting for a free connection and to opening one; a client
    // class of our own gives opening its own, shorter bound.
    class BoundedClient extends pg.Client {
      constructor(config?: pg.ClientConfig) {
        super({ ...config, connectionTimeoutMillis: clientConfig.connectionTimeoutMillis });
      }
    }
    this.#pool = new pg.Pool({
      ...clientConfig,
      Client: BoundedClient as unknown as new () => pg.ClientBase,
      connectionTimeoutMillis: options.acquireTimeoutMs,
      max: options.maxConnections,
      idleTimeoutMillis: options.idleTimeoutMs,
    });
    // An idle connection that breaks (server restarted, backend terminated) is dropped by the
    // pool; the next statement opens a new one. Without a listener the error would crash.
    this.#pool.on('error', () => undefined);
  }

  /**
   * Connects and migrates the schema (once, whoever else starts at the same time); fails with
   * `STORE_UNAVAILABLE` when the server cannot be reached, `STORE_FAILED` when its schema is newer
   * than this agentpool.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresDatabase> {
    const db = new PostgresDatabase(resolvePostgresOptions(options));
    try {
      db.migration = await migrate(db);
      return db;
    } catch (err) {
      await db.#pool.end().catch(() => undefined);
      throw toStoreError(err, `PostgreSQL at ${redactDatabaseUrl(db.options.databaseUrl)}`);
    }
  }

  /** Connections in the pool now, and statements waiting for one (for metrics and tests). */
  get connections(): { total: number; idle: number; waiting: number } {
    return { total: this.#pool.totalCount, idle: this.#pool.idleCount, waiting: this.#pool.waitingCount };
  }

  /** Runs one statement on a pooled connection. Errors are the driver's (stores map them). */
  async query<R = Record<string, unknown>>(
    text: string,
    values: readonly unknown[] = [],
    name?: string,
  ): Promise<QueryResult<R>> {
    this.#assertOpen();
    // Named statements are parsed once per connection: the hot path's statements are.
    const config = { text, values: values as unknown[], ...(name !== undefined && { name }) };
    return this.#report(text, this.#pool.query(config));
  }

  /**
   * Runs `fn` in a transaction on one connection: committed when it resolves, rolled back when it
   * throws. A connection that broke is destroyed instead of going back to the pool.
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.#assertOpen();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw isUnavailable(err) ? storeUnavailable(err) : err;
    }
    const tx: Transaction = {
      query: <R>(text: string, values: readonly unknown[] = []) =>
        this.#report<R>(text, client.query(text, values as unknown[])),
    };
    let broken: unknown;
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      return result;
    } catch (err) {
      if (isUnavailable(err)) broken = err;
      else await tx.query('ROLLBACK').catch((e: unknown) => (broken = e));
      throw err;
    } finally {
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
    }
  }

  /**
   * Opens a connection of its own (outside the pool, with the pool's settings) that LISTENs on
   * `channel`: each notification's payload goes to `on.notification`; `on.lost` is called once
   * when the connection breaks or ends (the caller connects again if it wants). Rejects when it
   * cannot connect.
   */
  async listen(
    channel: string,
    applicationName: string,
    on: { notification(payload: string): void; lost(): void },
  ): Promise<Listener> {
    this.#assertOpen();
    const client = new pg.Client({ ...this.#clientConfig, application_name: applicationName });
    let ended = false;
    const lost = () => {
      if (ended) return;
      ended = true;
      on.lost();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined) on.notification(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
    } catch (err) {
      ended = true; // the caller hears of it from the rejection, not from `lost` as well
      await client.end().catch(() => undefined);
      throw err;
    }
    return {
      get pid() {
        const pid = (client as { processID?: unknown }).processID;
        return typeof pid === 'number' ? pid : null;
      },
      query: async <R>(text: string, values: readonly unknown[] = []) =>
        (await client.query(text, values as unknown[])) as unknown as QueryResult<R>,
      close: async () => {
        ended = true;
        await client.end().catch(() => undefined);
      },
    };
  }

  /** Takes a share of the database; the pool closes when the last share is released. */
  retain(): void {
    this.#assertOpen();
    this.#users++;
  }

  /** Gives a share back (see retain). */
  async release(): Promise<void> {
    this.#users--;
    if (this.#users <= 0) await this.close();
  }

  /** Closes every connection; later statements fail with `STORE_FAILED`. Closing twice is harmless. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', 'the PostgreSQL connection pool is closed');
  }

  async #report<R>(text: string, pending: Promise<pg.QueryResult>): Promise<QueryResult<R>> {
    if (!queries.hasSubscribers) return pending as unknown as Promise<QueryResult<R>>;
    let rowCount: number | null = null;
    try {
      const result = await pending;
      rowCount = result.rowCount;
      return result as unknown as QueryResult<R>;
    } finally {
      queries.publish({ database: this, text, rowCount } satisfies PostgresQueryMessage);
    }
  }
}

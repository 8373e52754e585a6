/**
 * Redis connections of a cluster node: the URL (a database number may follow the port,
 * `redis://127.0.0.1:6379/5`) and the key prefix that namespaces every key and channel, so two
 * clusters can share one Redis. Commands fail fast while Redis is away (no unbounded offline
 * queue, one retry per request) and the client reconnects by itself, so a node answers 503
 * `COORDINATION_UNAVAILABLE` during an outage and serves again when Redis returns, without a
 * restart. Pub/sub needs a connection of its own; BullMQ makes its own from the same settings.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { AgentPoolError, isAgentPoolError, validationError } from '../../core/errors.ts';
import { redactUrl } from '../../core/urls.ts';

/** How a node reaches Redis. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). */
  url: string;
  /** Prepended to every key and channel. @default 'agentpool:' */
  prefix?: string;
  /** How long to wait for a connection or a reply before failing the command. @default 2000 */
  commandTimeoutMs?: number;
}

/** {@link RedisConnectionOptions} checked, with defaults. */
export interface ResolvedRedisConnection {
  readonly url: string;
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  /** ioredis options for connections that fail fast (commands) or retry forever (BullMQ workers). */
  readonly ioredis: RedisOptions;
}

const PREFIX = /^[A-Za-z0-9_.:{}-]{0,64}$/;

/** Checks a Redis URL and prefix; `VALIDATION_FAILED` naming `redisUrl` or `redisPrefix`. */
export function resolveRedisConnection(options: RedisConnectionOptions): ResolvedRedisConnection {
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch {
    throw validationError(
      'redisUrl',
      `must be a redis:// or rediss:// URL, got ${JSON.stringify(options.url)}`,
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw validationError(
      'redisUrl',
      `must be a redis:// or rediss:// URL, got ${JSON.stringify(options.url)}`,
    );
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) {
    throw validationError(
      'redisUrl',
      `names database ${JSON.stringify(db)}: it must be a number from 0 to 99`,
    );
  }
  const prefix = options.prefix ?? 'agentpool:';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw validationError('redisPrefix', 'must be at most 64 letters, digits and _ . : { } -', {
      value: String(prefix),
    });
  }
  const commandTimeoutMs = options.commandTimeoutMs ?? 2000;
  if (!Number.isInteger(commandTimeoutMs) || commandTimeoutMs < 1) {
    throw validationError('redisCommandTimeoutMs', 'must be a positive integer');
  }
  return {
    url: options.url,
    prefix,
    commandTimeoutMs,
    ioredis: {
      lazyConnect: true,
      connectTimeout: commandTimeoutMs,
      commandTimeout: commandTimeoutMs,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      // Reconnect forever, backing off to 2 s: the node serves again when Redis returns.
      retryStrategy: (times) => Math.min(100 * times, 2000),
    },
  };
}

/** The URL with its password hidden, for logs and the start banner. */
export const redactRedisUrl: (url: string) => string = redactUrl;

/**
 * Opens a connection and waits until it is ready; `COORDINATION_UNAVAILABLE` when Redis cannot be
 * reached now (at start a node refuses to run without it rather than limp along).
 */
export async function connectRedis(conn: ResolvedRedisConnection, name: string): Promise<Redis> {
  const redis = new Redis(conn.url, { ...conn.ioredis, connectionName: name });
  // Errors while reconnecting are reported through commands and readiness, not as crashes.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw coordinationUnavailable(err);
  }
  return redis;
}

/** The error a command gets while Redis is unreachable: 503, retry soon. */
export function coordinationUnavailable(cause: unknown): AgentPoolError {
  if (isAgentPoolError(cause)) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new AgentPoolError(
    'COORDINATION_UNAVAILABLE',
    `Redis cannot be reached: ${message}`,
    { dependency: 'redis', retryAfterSeconds: 1 },
    { cause },
  );
}

/**
 * What the PostgreSQL stores make of driver failures: a server that cannot be reached (refused,
 * reset, timed out, shutting down, out of connections) is `STORE_UNAVAILABLE` (503, retry in a
 * second: the pool reconnects by itself); anything else is `STORE_FAILED` (500).
 */
import { AgentPoolError, isAgentPoolError, validationError } from '../../core/errors.ts';

/** Socket errors of a connection attempt or of a connection that broke. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/**
 * SQLSTATEs that say the server is not serving now: admin_shutdown (also what
 * `pg_terminate_backend` sends), crash_shutdown, cannot_connect_now (starting or stopping),
 * too_many_connections. Class 08 (connection exceptions) is matched by prefix.
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** Messages node-postgres gives its own connection failures, which carry no code. */
const UNAVAILABLE_MESSAGES =
  /timeout exceeded when trying to connect|connection terminated|not queryable|query read timeout|connection timeout/i;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  // Several addresses tried at once (localhost: ::1 and 127.0.0.1) fail as an AggregateError.
  const first = (err as { errors?: unknown[] } | null)?.errors?.[0];
  return first === undefined ? undefined : codeOf(first);
}

/** True when `err` says PostgreSQL cannot be reached or is not serving now. */
export function isUnavailable(err: unknown): boolean {
  const code = codeOf(err);
  if (
    code !== undefined &&
    (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08'))
  )
    return true;
  return err instanceof Error && UNAVAILABLE_MESSAGES.test(err.message);
}

/** The error a statement gets while PostgreSQL is unreachable: 503, retry soon. */
export function storeUnavailable(cause: unknown): AgentPoolError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new AgentPoolError(
    'STORE_UNAVAILABLE',
    `PostgreSQL cannot be reached: ${message || codeOf(cause) || 'connection failed'}`,
    { dependency: 'postgres', retryAfterSeconds: 1 },
    { cause },
  );
}

/**
 * A driver error as callers see it: coded errors pass through, an unreachable server is
 * `STORE_UNAVAILABLE`, anything else `STORE_FAILED` naming `what`. (The checks our SQL functions
 * raise are mapped by the store that called them, which knows the ids to name.)
 */
export function toStoreError(err: unknown, what: string): unknown {
  if (isAgentPoolError(err)) return err;
  if (isUnavailable(err)) return storeUnavailable(err);
  // The one text PostgreSQL refuses that the other stores take: a NUL character in a value stored
  // as plain text (an id, a name). JSON columns escape it, so messages and metadata never get here.
  if ((err as { code?: unknown } | null)?.code === '22021') {
    return validationError('text', 'holds a NUL character (U+0000), which PostgreSQL cannot store', {
      cause: 'postgres',
    });
  }
  return new AgentPoolError('STORE_FAILED', `${what} failed: ${String(err)}`, {}, { cause: err });
}

/** The constraint a unique violation (23505) broke, or undefined for any other error. */
export function uniqueViolation(err: unknown): string | undefined {
  const e = err as { code?: unknown; constraint?: unknown } | null;
  if (e?.code !== '23505') return undefined;
  return typeof e.constraint === 'string' ? e.constraint : '';
}

/** True for a foreign-key violation (23503). */
export function foreignKeyViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '23503';
}

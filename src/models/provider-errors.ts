/**
 * Classification of provider failures, shared by the per-ref guard and the fallback loop: which
 * failures say a model is sick (open its breaker), which another attempt may fix, which the next
 * model of a route may answer instead, and how long the provider asked us to wait.
 */
import { type AgentPoolError, isAgentPoolError } from '../core/errors.ts';

const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const NETWORK_MESSAGES: ReadonlySet<string> = new Set([
  'fetch failed',
  'terminated',
  'socket hang up',
  'other side closed',
]);

/**
 * What opens a breaker: failures that say the model is sick (5xx, 408, timeouts, connection
 * errors, in-band stream errors). A 429 does not count: the provider is healthy and answering,
 * just throttling us; opening would turn a short Retry-After into a long outage. Retries and
 * fallbacks deal with it. Non-retryable 4xx (bad request, auth) are the caller's fault, not the model's.
 */
export function isSickness(err: unknown): boolean {
  return (
    isAgentPoolError(err) &&
    (err.code === 'MODEL_TIMEOUT' || (err.code === 'MODEL_CALL_FAILED' && err.details['retryable'] === true))
  );
}

/** What another attempt may fix; refusals (breaker, bulkhead, local limits) are not retried but fall back. */
export function isRetryable(err: unknown): boolean {
  return (
    isSickness(err) || (isAgentPoolError(err, 'RATE_LIMITED') && err.details['scope'] === 'provider-response')
  );
}

/** What the next model of a route may answer instead; a caller's mistake (400, 401, …) would fail there too. */
export function canFallBack(err: AgentPoolError): boolean {
  switch (err.code) {
    case 'MODEL_UNAVAILABLE':
    case 'MODEL_BUSY':
    case 'RATE_LIMITED':
    case 'MODEL_TIMEOUT':
      return true;
    case 'MODEL_CALL_FAILED':
      return err.details['retryable'] === true;
    default:
      return false;
  }
}

/** Milliseconds the provider asked to wait: `retry-after-ms`, else `Retry-After` in seconds or as an HTTP date. */
export function retryAfterMs(headers: Record<string, string> | undefined, now: number): number | undefined {
  if (headers === undefined) return undefined;
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms.trim() !== '' && Number(ms) >= 0) return Number(ms);
  const value = header(headers, 'retry-after')?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function header(headers: Record<string, string>, name: string): string | undefined {
  if (headers[name] !== undefined) return headers[name];
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** Whether `err` is an abort or a timeout of a fetch (the signal handed to the provider fired). */
export function isAbortError(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'AbortError' || name === 'TimeoutError';
}

/** Whether `err` (or one of its causes) is a connection failure: worth retrying. */
export function isNetworkError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (NETWORK_MESSAGES.has(e.message.toLowerCase())) return true;
  }
  return false;
}

/** The code and message of a breaker's last failure, for its events and refusals. */
export function describeFailure(err: unknown): { code: string; message: string } {
  if (isAgentPoolError(err)) return { code: err.code, message: err.message };
  return { code: 'MODEL_CALL_FAILED', message: err instanceof Error ? err.message : 'unknown failure' };
}

/**
 * Cross-origin requests from browsers (a web app calling the API, the OpenAI SDK in a page): off
 * unless origins are configured, so a server answers no CORS header at all by default. Kept free
 * of fastify so the CLI's configuration can validate origins without loading the HTTP server.
 */
import type { FastifyCorsOptions } from '@fastify/cors';
import { AgentPoolError } from '../core/errors.ts';
import { isPlainObject, rejectUnknownKeys } from '../core/options.ts';

/** Which browser origins may call the API. */
export interface CorsOptions {
  /**
   * Origins allowed to make cross-origin requests, exactly as browsers send them
   * (`https://app.example.com`, `http://localhost:5173`: scheme, host, optional port, no path),
   * or `["*"]` for any origin. Bearer keys are not cookies, so `*` never leaks a session.
   */
  origins: string[];
}

/** {@link CorsOptions} checked: the allowed origins, or `'*'` for any. */
export interface ResolvedCorsOptions {
  readonly origins: readonly string[] | '*';
}

/** Request headers the API reads, allowed in preflights. */
export const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'agentpool-project', 'last-event-id'];

/** Response headers a page may read: when to retry (429, 503) and where a background run is. */
export const CORS_EXPOSED_HEADERS = ['retry-after', 'location'];

/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * What is wrong with `value` as an entry of `origins`, or undefined when it is a valid origin
 * (or `*`). The origin must be written as browsers send it in `Origin`, else it would never match.
 */
export function originProblem(value: unknown): string | undefined {
  const expected = 'an origin like "https://app.example.com" (scheme, host, optional port; no path) or "*"';
  if (value === '*') return undefined;
  if (typeof value !== 'string') return `must be ${expected}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must be ${expected}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be ${expected}`;
  if (url.origin !== value) {
    const plain = url.username === '' && url.password === '' && url.pathname === '/' && url.search === '';
    return plain && url.hash === ''
      ? `must be written as browsers send it: ${JSON.stringify(url.origin)}`
      : `must be ${expected}`;
  }
  return undefined;
}

/**
 * Checks `options` (the `cors` server option); null (CORS off) when undefined. Errors are
 * `VALIDATION_FAILED` naming the field (`server.cors.origins[1] must be …`).
 */
export function resolveCorsOptions(options: unknown, field = 'server.cors'): ResolvedCorsOptions | null {
  if (options === undefined) return null;
  if (!isPlainObject(options)) {
    throw new AgentPoolError('VALIDATION_FAILED', `${field} must be an object { origins: [...] }`, { field });
  }
  rejectUnknownKeys(`${field}.`, options, ['origins']);
  const origins = options['origins'];
  if (!Array.isArray(origins) || origins.length === 0) {
    throw new AgentPoolError('VALIDATION_FAILED', `${field}.origins must be a non-empty list of origins`, {
      field: `${field}.origins`,
    });
  }
  origins.forEach((origin: unknown, i) => {
    const problem = originProblem(origin);
    if (problem !== undefined) {
      throw new AgentPoolError(
        'VALIDATION_FAILED',
        `${field}.origins[${i}] ${problem}, got ${JSON.stringify(origin)}`,
        { field: `${field}.origins[${i}]`, value: origin },
      );
    }
  });
  if (origins.includes('*')) {
    if (origins.length > 1) {
      throw new AgentPoolError(
        'VALIDATION_FAILED',
        `${field}.origins: "*" allows every origin, list it alone`,
        {
          field: `${field}.origins`,
        },
      );
    }
    return { origins: '*' };
  }
  return { origins: [...new Set(origins as string[])] };
}

/** The @fastify/cors options of resolved CORS settings. */
export function corsPluginOptions(cors: ResolvedCorsOptions): FastifyCorsOptions {
  return {
    origin: cors.origins === '*' ? '*' : [...cors.origins],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
    credentials: false, // keys travel in Authorization, never in cookies
  };
}

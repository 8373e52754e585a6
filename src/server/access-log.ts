/**
 * The access log: one line per answered request (fastify's own two lines per request are turned
 * off). It carries the method, the route pattern and the url, the status, the duration, the
 * project and the error code when the request failed with one; never a header (so never a key)
 * nor a body. Levels: 500 is `error` (a bug or a store failure: someone must act); 502, 503 and
 * 504 are `warn` (a provider down, the pool saturated, the server draining: degraded); anything
 * else is `info`. Probes (`/healthz`, `/readyz`, `/metrics`, the docs), which load balancers and
 * scrapers send every few seconds, are `debug` unless they fail with a 500.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from '../core/logger.ts';
import { toErrorAnswer } from './error-handler.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The error code the request failed with, for its access line; null when it did not throw. */
    errorCode: string | null;
  }
}

const PROBES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json']);

function isProbe(route: string | undefined): boolean {
  return route !== undefined && (PROBES.has(route) || route === '/docs' || route.startsWith('/docs/'));
}

/** Adds the access-log hooks to `app`; they write through `app.log` (the request's child logger). */
export function installAccessLog(app: FastifyInstance): void {
  app.decorateRequest('errorCode', null);
  app.addHook('onError', (request, _reply, error, done) => {
    request.errorCode = toErrorAnswer(error).body.error.code;
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    // The server's logger is pino (buildServer hands fastify one), which FastifyBaseLogger understates.
    const log = request.log as Logger;
    const most = mostSevereLevel(status);
    // A probe's line is at debug, lower still: when even `most` is off, nothing is written, and the
    // route (an object fastify builds per call of `routeOptions`) is not looked up.
    if (log.isLevelEnabled(most)) {
      const route = request.routeOptions.url;
      const level = most === 'error' || !isProbe(route) ? most : 'debug';
      if (level === most || log.isLevelEnabled(level)) {
        log[level](
          accessFields(request, route, status, reply.elapsedTime),
          `${request.method} ${request.url} ${status}`,
        );
      }
    }
    done();
  });
}

/**
 * The level of a request's line unless it is a probe's: 500 is `error` (even for a probe); 502, 503
 * and 504 are `warn`; anything else `info`. A probe's line is `debug` instead, unless `error`.
 */
function mostSevereLevel(status: number): 'error' | 'warn' | 'info' {
  if (status < 500) return 'info';
  return status === 502 || status === 503 || status === 504 ? 'warn' : 'error';
}

function accessFields(request: FastifyRequest, route: string | undefined, status: number, elapsedMs: number) {
  return {
    method: request.method,
    route: route ?? null, // null: no route matched (404)
    url: request.url,
    status,
    durationMs: Math.round(elapsedMs * 10) / 10,
    // Before authentication succeeded, the project is only the default one: not worth a field.
    ...(status !== 401 && { project: request.project }),
    ...(request.errorCode !== null && { code: request.errorCode }),
  };
}

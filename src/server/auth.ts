/**
 * Authentication: which project a request acts in. With no admin key and no API key issued, the
 * server runs in a single-project development mode (every request acts in the default project,
 * and the server says so at start). Once either exists, every API request needs
 * `Authorization: Bearer <key>`: a project key acts in its project (naming another one in the
 * `agentpool-project` header is 403); the admin key manages projects and keys, and may act in any
 * existing project named by that header (an unknown one is 404, so a typo creates nothing).
 * `/metrics` tells every tenant's figures, so it needs the admin key or the metrics token, which
 * opens nothing else. Health, readiness, the API docs and the dashboard's page (which asks for a
 * key and sends it with each API call) stay open.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { AgentPool } from '../agent-pool.ts';
import { AgentPoolError } from '../core/errors.ts';
import { assertSlug } from '../registry/definition.ts';
import { projectNotFound } from '../store/project-ports.ts';
import { DASHBOARD_PATH } from './dashboard/page.ts';

const OPEN_PATHS = ['/healthz', '/readyz', '/openapi.json'];
const METRICS_PATH = '/metrics';
const PROJECT_HEADER = 'agentpool-project';

declare module 'fastify' {
  interface FastifyRequest {
    /** True for the admin key, and for every request in development mode. */
    admin: boolean;
  }
}

/** The credentials the server knows besides project keys. */
export interface AuthOptions {
  /** The project requests act in without a key (development mode) or with the admin key and no header. */
  project: string;
  adminKey: string | null;
  /** Reads `/metrics` and nothing else. */
  metricsToken: string | null;
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

function isOpen(path: string): boolean {
  return (
    OPEN_PATHS.includes(path) ||
    path === '/docs' ||
    path.startsWith('/docs/') ||
    path === DASHBOARD_PATH ||
    path.startsWith(`${DASHBOARD_PATH}/`)
  );
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

function sameSecret(a: string, b: string | null): boolean {
  if (b === null) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The project the `agentpool-project` header names, if any. */
function namedProject(request: FastifyRequest): string | undefined {
  const named = request.headers[PROJECT_HEADER];
  return typeof named === 'string' ? assertSlug(PROJECT_HEADER, named) : undefined;
}

/**
 * Sets `request.project` and `request.admin` on every request, refusing what is not authenticated.
 * A callback hook, not an async one: in development mode and on open paths it decides at once,
 * without a promise, and waits only for a store read (a key's project, a named project).
 */
export function installAuth(app: FastifyInstance, pool: AgentPool, options: AuthOptions): void {
  app.decorateRequest('project', '');
  app.decorateRequest('admin', false);
  app.addHook('onRequest', (request, _reply, done) => {
    let pending: Promise<void> | undefined;
    try {
      pending = authenticate(request, pool, options);
    } catch (err) {
      done(err as FastifyError);
      return;
    }
    if (pending === undefined) done();
    else pending.then(() => done(), done);
  });
}

/** Authenticates `request`: undefined when decided at once, else the promise of the decision. */
function authenticate(
  request: FastifyRequest,
  pool: AgentPool,
  options: AuthOptions,
): Promise<void> | undefined {
  request.project = options.project;
  if (options.adminKey !== null) return authenticateKey(request, pool, options);
  const on = pool.projects.knownHasKeys();
  if (on === undefined) {
    return pool.projects
      .hasKeys()
      .then((counted) => (counted ? authenticateKey(request, pool, options) : developmentMode(request)));
  }
  return on ? authenticateKey(request, pool, options) : developmentMode(request);
}

/** Development mode: no admin key and no project key, so every request acts as the admin. */
function developmentMode(request: FastifyRequest): undefined {
  request.admin = true;
  return undefined;
}

/** Authentication is on: the key decides, except on open paths. */
function authenticateKey(
  request: FastifyRequest,
  pool: AgentPool,
  options: AuthOptions,
): Promise<void> | undefined {
  const path = pathOf(request.url);
  if (isOpen(path)) return undefined;
  const key = bearer(request);
  if (path === METRICS_PATH) {
    if (key !== undefined && (sameSecret(key, options.adminKey) || sameSecret(key, options.metricsToken))) {
      return undefined;
    }
    throw new AgentPoolError(
      'UNAUTHENTICATED',
      '/metrics needs the admin key or the metrics token: send Authorization: Bearer <token>',
    );
  }
  if (key === undefined) {
    throw new AgentPoolError(
      'UNAUTHENTICATED',
      'this server needs an API key: send Authorization: Bearer <key>',
    );
  }
  if (sameSecret(key, options.adminKey)) {
    request.admin = true;
    const named = namedProject(request);
    if (named === undefined) return undefined;
    return pool.projects.exists(named).then((exists) => {
      if (!exists) throw projectNotFound(named);
      request.project = named;
    });
  }
  return pool.projects.authenticate(key).then((project) => {
    if (project === undefined)
      throw new AgentPoolError('UNAUTHENTICATED', 'the API key is unknown or revoked');
    const named = namedProject(request);
    if (named !== undefined && named !== project) {
      throw new AgentPoolError(
        'FORBIDDEN',
        `this key acts in project ${JSON.stringify(project)} only, and ${PROJECT_HEADER} names ${JSON.stringify(named)}`,
        { project, named },
      );
    }
    request.project = project;
  });
}

/** Refuses a request that is not made with the admin key (or in development mode). */
export function requireAdmin(request: FastifyRequest, what = 'managing projects and keys'): void {
  if (!request.admin) {
    throw new AgentPoolError('FORBIDDEN', `${what} needs the admin key`);
  }
}

/**
 * Makes every route registered on `app` from now on whose path `matches` the admin's alone
 * ({@link requireAdmin}, after authentication). The check is added to those routes only, so the
 * requests of every other route do not pay for it.
 */
export function adminOnlyRoutes(
  app: FastifyInstance,
  matches: (url: string) => boolean,
  what?: string,
): void {
  const check: onRequestHookHandler = (request, _reply, done) => {
    try {
      requireAdmin(request, what);
    } catch (err) {
      done(err as FastifyError);
      return;
    }
    done();
  };
  app.addHook('onRoute', (route) => {
    if (!matches(route.url)) return;
    const own = route.onRequest;
    route.onRequest = own === undefined ? [check] : [...(Array.isArray(own) ? own : [own]), check];
  });
}

/**
 * Authentication: which project a request acts in. With no admin key and no API key issued, the
 * server runs in a single-project development mode (every request acts in the default project,
 * and the server says so at start). Once either exists, every API request needs
 * `Authorization: Bearer <key>`: a project key acts in its project; the admin key manages
 * projects and keys, and may act in any project named by the `agentpool-project` header.
 * Health, readiness, metrics and the API docs stay open.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AgentPool } from '../agent-pool.ts';
import { AgentPoolError } from '../core/errors.ts';
import { assertSlug } from '../registry/definition.ts';

const OPEN_PATHS = ['/healthz', '/readyz', '/metrics', '/openapi.json'];

declare module 'fastify' {
  interface FastifyRequest {
    /** True for the admin key, and for every request in development mode. */
    admin: boolean;
  }
}

function isOpen(url: string): boolean {
  const path = url.split('?', 1)[0] ?? '';
  return OPEN_PATHS.includes(path) || path === '/docs' || path.startsWith('/docs/');
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Sets `request.project` and `request.admin` on every request, refusing what is not authenticated. */
export function installAuth(
  app: FastifyInstance,
  pool: AgentPool,
  options: { project: string; adminKey: string | null },
): void {
  app.decorateRequest('project', '');
  app.decorateRequest('admin', false);
  app.addHook('onRequest', async (request) => {
    request.project = options.project;
    const on = options.adminKey !== null || (await pool.projects.hasKeys());
    if (!on || isOpen(request.url)) {
      request.admin = !on;
      return;
    }
    const key = bearer(request);
    if (key === undefined) {
      throw new AgentPoolError(
        'UNAUTHENTICATED',
        'this server needs an API key: send Authorization: Bearer <key>',
      );
    }
    if (options.adminKey !== null && sameSecret(key, options.adminKey)) {
      request.admin = true;
      const named = request.headers['agentpool-project'];
      if (typeof named === 'string') request.project = assertSlug('agentpool-project', named);
      return;
    }
    const project = await pool.projects.authenticate(key);
    if (project === undefined)
      throw new AgentPoolError('UNAUTHENTICATED', 'the API key is unknown or revoked');
    request.project = project;
  });
}

/** Refuses a request that is not made with the admin key (or in development mode). */
export function requireAdmin(request: FastifyRequest): void {
  if (!request.admin) {
    throw new AgentPoolError('FORBIDDEN', 'managing projects and keys needs the admin key');
  }
}

/**
 * Liveness and readiness. `/healthz` answers while the process serves HTTP at all; `/readyz`
 * answers 200 only when the stores respond and the server is not draining, so a load balancer
 * stops sending work to a node that is shutting down or has lost its store.
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';

const tags = ['ops'];
/** No key needed: probes come from load balancers and orchestrators, which hold none. */
const OPEN: readonly Record<string, string[]>[] = [];
const statusSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'draining', 'unavailable', 'warming'] },
    error: { type: 'string' },
    /** The dependencies that do not answer, by name (`postgres`, `sqlite`, `redis`, …). */
    down: { type: 'array', items: { type: 'string' } },
    dependencies: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, ok: { type: 'boolean' }, error: { type: 'string' } },
      },
    },
  },
} as const;

/** Registers `/healthz` and `/readyz`; `isDraining` says whether the server is shutting down. */
export function registerHealthRoutes(
  app: FastifyInstance,
  { pool }: RouteContext,
  isDraining: () => boolean,
): void {
  app.get(
    '/healthz',
    {
      schema: {
        tags,
        summary: 'Liveness: the process serves HTTP',
        security: OPEN,
        response: { 200: statusSchema },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags,
        summary: 'Readiness: the store (and Redis, in a cluster) answer and the server is not draining',
        description:
          'While the server drains (SIGTERM) it keeps listening and answers 503 `draining` here, so a load balancer takes it out of rotation while its runs finish. When a dependency does not answer: 503 `unavailable`, `down` naming it (`postgres`, `sqlite`, `redis`) and `dependencies` saying why; the node serves again by itself once it answers. While the node prewarms the working set of its last checkpoint at start: 503 `warming` (docs/operations.md, "Working-set checkpoint").',
        security: OPEN,
        response: { 200: statusSchema, 503: statusSchema },
      },
    },
    async (request, reply) => {
      if (isDraining()) return reply.code(503).send({ status: 'draining' });
      if (pool.checkpoint.status === 'warming') {
        return reply
          .code(503)
          .send({ status: 'warming', error: 'prewarming the working set of the last checkpoint' });
      }
      const dependencies = await pool.cluster.dependencies();
      const down = dependencies.filter((d) => !d.ok).map((d) => d.name);
      if (down.length > 0) {
        request.log.warn({ dependencies }, 'readiness check failed');
        return reply.code(503).send({
          status: 'unavailable',
          error: `${down.join(' and ')} ${down.length === 1 ? 'does' : 'do'} not answer`,
          down,
          dependencies,
        });
      }
      return { status: 'ok', dependencies };
    },
  );
}

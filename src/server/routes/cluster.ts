/**
 * `GET /v1/cluster`: the nodes of the cluster as their heartbeats describe them (id, address,
 * start, last heartbeat, runs in flight, live instances) and this node's mode. For the admin: it
 * tells the load of every tenant together.
 */
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';

const nodeSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    address: { type: ['string', 'null'] },
    startedAt: { type: 'integer', description: 'Epoch ms.' },
    heartbeatAt: { type: 'integer', description: 'Epoch ms of its last heartbeat.' },
    runsInFlight: { type: 'integer' },
    liveInstances: { type: 'integer' },
    threadsHeld: { type: 'integer', description: 'Threads whose lease the node holds.' },
  },
} as const;

/** Registers `GET /v1/cluster`. */
export function registerClusterRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get(
    '/v1/cluster',
    {
      schema: {
        tags: ['ops'],
        summary: 'The nodes of the cluster (admin)',
        description:
          'Every node whose heartbeat is current, this one included; a single node lists itself. `mode` is `cluster` (PostgreSQL and Redis) or `single`; `node` is the id of the node that answered.',
        response: {
          200: {
            type: 'object',
            properties: {
              mode: { type: 'string', enum: ['single', 'cluster'] },
              node: { type: 'string' },
              background: {
                type: ['object', 'null'],
                description:
                  'Background runs waiting in the queue and running, cluster-wide (null on a single node).',
                properties: { waiting: { type: 'integer' }, active: { type: 'integer' } },
              },
              data: { type: 'array', items: nodeSchema },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      requireAdmin(request, 'the cluster view');
      const { mode, nodeId } = pool.cluster;
      const [data, background] = await Promise.all([pool.cluster.nodes(), pool.cluster.background()]);
      return { mode, node: nodeId, background, data };
    },
  );
}

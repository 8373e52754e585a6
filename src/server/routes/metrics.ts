/**
 * `GET /metrics`: the pool's Prometheus metrics in the text exposition format.
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';

/** Registers `/metrics`. */
export function registerMetricsRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics',
        description:
          'Instances by state and tier, activations, evictions, cache hit ratio, acquire waiting and timeouts, runs by agent and status, run and model-call latency, tokens, cost, thread-busy refusals, runs in flight. Every name starts with `agentpool_`.',
        response: { 200: { type: 'string' } },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await pool.metrics.scrape();
      return reply.type(contentType).send(body);
    },
  );
}

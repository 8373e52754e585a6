/**
 * `GET /metrics`: the pool's Prometheus metrics in the text exposition format. They tell every
 * tenant's figures, so once authentication is on the auth hook lets only the admin key and the
 * metrics token through.
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
          'Instances by state and tier, activations, evictions, cache hit ratio, acquire waiting and timeouts, runs by status, run and model-call latency, tokens, cost, thread-busy refusals, runs in flight, and per agent for the most active agents (`metrics.maxAgentSeries`; the rest in `agent="(other)"`), the health monitor\'s status, checks and timeouts. Every name starts with `agentpool_`, but prom-client\'s own process and GC metrics (`process_*`, `nodejs_*`). Once authentication is on, send `Authorization: Bearer <admin key or metrics token>`.',
        response: { 200: { type: 'string' } },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await pool.metrics.scrape();
      return reply.type(contentType).send(body);
    },
  );
}

/**
 * Pool routes: what is live and how the activation cache is doing, and operator actions on one
 * agent's instance (activate = prewarm, deactivate, pause, resume). Each handler is one call to
 * the pool; an agent without a live instance answers 404 `INSTANCE_NOT_FOUND`.
 */
import type { FastifyInstance } from 'fastify';
import { AgentPoolError } from '../../core/errors.ts';
import type { InstanceInfo } from '../../pool/pool.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';

const tags = ['pool'];
const agentParams = {
  type: 'object',
  required: ['agent'],
  properties: { agent: { type: 'string', description: 'The agent id (`agt_…`) or name.' } },
} as const;
const instanceSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    instanceId: { type: 'string' },
    agentId: { type: 'string' },
    project: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'integer' },
    tier: { type: 'string' },
    state: { type: 'string' },
    leases: { type: 'integer' },
    pinned: { type: 'boolean' },
    uses: { type: 'integer' },
    lastUsedAt: { type: 'integer' },
    estimatedBytes: { type: 'integer' },
  },
} as const;
const ACTIONS = ['activate', 'deactivate', 'pause', 'resume'] as const;

function notLive(agent: string): AgentPoolError {
  return new AgentPoolError('INSTANCE_NOT_FOUND', `agent ${JSON.stringify(agent)} has no live instance`, {
    agent,
  });
}

/** Registers the `/v1/pool` routes. */
export function registerPoolRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  const instances = pool.instances;

  app.get(
    '/v1/pool/stats',
    {
      schema: {
        tags,
        summary: 'Pool statistics',
        description:
          'Live instances by state and tier, cache hits and misses, activations, evictions, waiting acquirers, the activation latency histogram, and per model its breaker state, calls in flight and queued, retries, fallbacks, throttled and rejected calls.',
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses },
      },
    },
    async () => ({ ...instances.stats(), models: pool.guards.stats() }),
  );

  app.get(
    '/v1/pool/instances',
    {
      schema: {
        tags,
        summary: 'Live instances of the project',
        response: {
          200: { type: 'object', properties: { data: { type: 'array', items: instanceSchema } } },
          ...errorResponses,
        },
      },
    },
    async (request) => ({ data: instances.instances(request.project) }),
  );

  app.get<{ Params: { agent: string } }>(
    '/v1/pool/instances/:agent',
    {
      schema: {
        tags,
        summary: "An agent's live instance",
        params: agentParams,
        response: { 200: instanceSchema, ...errorResponses },
      },
    },
    async (request) =>
      instances.instance(request.project, request.params.agent) ??
      Promise.reject(notLive(request.params.agent)),
  );

  app.post<{ Params: { agent: string; action: (typeof ACTIONS)[number] } }>(
    '/v1/pool/instances/:agent/:action',
    {
      schema: {
        tags,
        summary: "Act on an agent's instance",
        description:
          '`activate` prewarms it (activating from the store if needed); `deactivate` takes it out of service (a busy one leaves at its last release); `pause` stops new leases (a busy one pauses at its last release); `resume` serves again.',
        params: {
          type: 'object',
          required: ['agent', 'action'],
          properties: { ...agentParams.properties, action: { type: 'string', enum: [...ACTIONS] } },
        },
        response: { 200: instanceSchema, 204: { type: 'null' }, ...errorResponses },
      },
    },
    async (request, reply): Promise<InstanceInfo | undefined> => {
      const { agent, action } = request.params;
      switch (action) {
        case 'activate':
          return instances.prewarm(request.project, agent);
        case 'pause':
          return instances.pause(request.project, agent);
        case 'resume':
          return instances.resume(request.project, agent);
        case 'deactivate':
          if (!instances.deactivate(request.project, agent)) throw notLive(agent);
          return reply.code(204).send();
      }
    },
  );
}

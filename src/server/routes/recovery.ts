/**
 * Failure recovery routes: an agent's record of recovery, the project's agents in recovery, and
 * the operator's reset of a degraded agent. Authorised like the other `/v1/pool/instances` routes:
 * a project key acts on its own project's agents, the admin on the project it names
 * (`agentpool-project`); an agent of another project is 404 `AGENT_NOT_FOUND`.
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';
import { agentParams } from './pool.ts';

const tags = ['pool'];
const stepSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    step: { type: 'string' },
    at: { type: 'integer' },
    failures: { type: 'integer' },
    cause: {
      anyOf: [
        { type: 'null' },
        { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
      ],
    },
    tier: { type: 'string' },
    until: { type: ['integer', 'null'] },
    outcome: { type: 'string' },
    node: { type: 'string' },
  },
} as const;
const recordSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    project: { type: 'string' },
    agentId: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: ['ok', 'recovering', 'degraded'] },
    failures: { type: 'integer' },
    windowMs: { type: 'integer' },
    maxFailuresPerHour: { type: 'integer' },
    nextStep: { type: 'string' },
    migratedTo: { type: ['string', 'null'] },
    degraded: { type: ['object', 'null'], additionalProperties: true },
    lastFailureAt: { type: ['integer', 'null'] },
    history: { type: 'array', items: stepSchema },
  },
} as const;

/** Registers the failure recovery routes. */
export function registerRecoveryRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get<{ Querystring: { status?: 'recovering' | 'degraded' } }>(
    '/v1/pool/recovery',
    {
      schema: {
        tags,
        summary: "The project's agents with a record of recovery",
        description:
          'Agents of the project that failed on this node (or were degraded by another node), degraded first, then recovering, then the most recently failed. `status` keeps one kind. `stats` are the whole node’s figures for the admin only.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { status: { type: 'string', enum: ['recovering', 'degraded'] } },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: true,
            properties: { data: { type: 'array', items: recordSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { status } = request.query;
      const data = pool.recovery
        .list(request.project)
        .filter((r) => status === undefined || r.status === status);
      return request.admin ? { data, stats: pool.recovery.stats() } : { data };
    },
  );

  app.get<{ Params: { agent: string } }>(
    '/v1/pool/instances/:agent/recovery',
    {
      schema: {
        tags,
        summary: "An agent's record of recovery",
        description:
          'Its counted failures in the window, its status (`ok`, `recovering`, `degraded`), the next step, the tier it was migrated to, its degraded mark, and its last steps.',
        params: agentParams,
        response: { 200: recordSchema, ...errorResponses },
      },
    },
    async (request) => pool.recovery.info(await pool.agents.get(request.project, request.params.agent)),
  );

  app.post<{ Params: { agent: string } }>(
    '/v1/pool/instances/:agent/reset',
    {
      schema: {
        tags,
        summary: 'Reset failure recovery of an agent',
        description:
          'Lifts its degraded mark (its runs are served again, on every node of a cluster), forgets its counted failures, brings it back to its own tier and starts its recovery ladder over. Answers its record of recovery, with the `reset` step last.',
        params: agentParams,
        response: { 200: recordSchema, ...errorResponses },
      },
    },
    async (request) => pool.recovery.reset(await pool.agents.get(request.project, request.params.agent)),
  );
}

/**
 * Rollout routes: the running canary of an agent with each version's run outcomes, and promote or
 * abort. A rollout starts (or changes its share) with `PATCH /v1/agents/{idOrName}` and `rollout`.
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';
import { errorResponses, ref } from '../schemas.ts';
import { idOrNameParams as params } from './agents.ts';

const tags = ['agents'];

/** Registers `/v1/agents/{idOrName}/rollout…`. */
export function registerRolloutRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get<{ Params: { idOrName: string } }>(
    '/v1/agents/:idOrName/rollout',
    {
      schema: {
        tags,
        summary: "An agent's running rollout and each version's runs since it started",
        description:
          'Stable and candidate versions with runs, succeeded, failed, cancelled, success rate and p50/p99 latency, and the share the candidate gets now; 404 `ROLLOUT_NOT_FOUND` when none runs.',
        params,
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses },
      },
    },
    async (request) => pool.rollouts.status(request.project, request.params.idOrName),
  );

  app.post<{ Params: { idOrName: string } }>(
    '/v1/agents/:idOrName/rollout/promote',
    {
      schema: {
        tags,
        summary: 'Promote the rollout: its candidate becomes the active version',
        params,
        response: { 200: ref('Agent'), ...errorResponses },
      },
    },
    async (request) => pool.rollouts.promote(request.project, request.params.idOrName),
  );

  app.post<{ Params: { idOrName: string } }>(
    '/v1/agents/:idOrName/rollout/abort',
    {
      schema: {
        tags,
        summary: 'Abort the rollout: every run goes to the active version again',
        params,
        response: { 200: ref('Agent'), ...errorResponses },
      },
    },
    async (request) => pool.rollouts.abort(request.project, request.params.idOrName),
  );
}

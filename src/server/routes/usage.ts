/**
 * Usage routes: one agent's persisted usage with its live figures (`GET /v1/agents/{idOrName}/stats`)
 * and the activity report of a project's agents, or of the whole pool for the admin
 * (`GET /v1/pool/activity`). docs/operations.md, "Usage and preloading".
 */
import type { FastifyInstance } from 'fastify';
import { enumOption } from '../../core/options.ts';
import type { AgentUsageRecord } from '../../store/ports.ts';
import { USAGE_SORTS, type UsageSort } from '../../store/ports.ts';
import { zeroRunTotals } from '../../store/usage-paging.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, type PageQuery, pageQueryProperties, projectQuery } from '../schemas.ts';
import { idOrNameParams } from './agents.ts';
import { scopedProject } from './pool.ts';

const usageSchema = {
  type: 'object',
  properties: {
    agentId: { type: 'string' },
    project: { type: 'string' },
    name: { type: 'string' },
    uses: { type: 'integer', description: 'Runs that reached a terminal status.' },
    successes: { type: 'integer' },
    failures: {
      type: 'integer',
      description: 'Runs that failed (cancelled and interrupted runs are neither).',
    },
    successRate: {
      type: ['number', 'null'],
      description: 'successes / (successes + failures); null without either.',
    },
    meanLatencyMs: {
      type: ['number', 'null'],
      description: 'Mean of finishedAt − startedAt over runs that started.',
    },
    costUsd: { type: 'number' },
    lastUsedAt: { type: 'integer', description: 'Epoch ms of the latest use recorded.' },
  },
} as const;

/** An agent's usage as the API shows it: the sums, and the rates and means made from them. */
export function usageView(u: AgentUsageRecord) {
  const judged = u.successes + u.failures;
  return {
    agentId: u.agentId,
    project: u.project,
    name: u.name,
    uses: u.uses,
    successes: u.successes,
    failures: u.failures,
    successRate: judged === 0 ? null : u.successes / judged,
    meanLatencyMs: u.latencyCount === 0 ? null : u.latencyMsTotal / u.latencyCount,
    costUsd: u.costUsd,
    lastUsedAt: u.lastUsedAt,
  };
}

/** Registers `GET /v1/agents/{idOrName}/stats` and `GET /v1/pool/activity`. */
export function registerUsageRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get<{ Params: { idOrName: string } }>(
    '/v1/agents/:idOrName/stats',
    {
      schema: {
        tags: ['agents'],
        summary: "An agent's usage: persisted figures, live figures, priority and followers",
        description:
          '`usage`: uses, successes, failures, success rate, mean latency, cost and last use since the agent was created, persisted (in coalesced writes) plus what this node has not written yet. `live`: its live instance on this node (null when none) and its run figures since this node started (null when it has not run here), and `recentRuns`: its last runs on this node, newest first (id, status, thread, version, model, cost, duration, finish). `priority`: the terms and score preloading ranks it by (null when never used). `followers`: agents that tend to run next on its threads, as prefetching learned them on this node.',
        params: idOrNameParams,
        response: {
          200: {
            type: 'object',
            properties: {
              agentId: { type: 'string' },
              project: { type: 'string' },
              name: { type: 'string' },
              usage: usageSchema,
              live: { type: 'object', additionalProperties: true },
              priority: {
                type: ['object', 'null'],
                properties: {
                  frequency: { type: 'number' },
                  recency: { type: 'number' },
                  success: { type: 'number' },
                  score: { type: 'number' },
                  threshold: { type: 'number' },
                },
              },
              followers: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    agentId: { type: 'string' },
                    name: { type: 'string' },
                    count: { type: 'number' },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const agent = await pool.agents.get(request.project, request.params.idOrName);
      const current = await pool.agents.usage.of(agent);
      const usage: AgentUsageRecord = current ?? {
        agentId: agent.id,
        project: agent.project,
        name: agent.name,
        lastUsedAt: agent.lastUsedAt,
        ...zeroRunTotals(),
      };
      const scored = current === undefined ? undefined : await pool.preloader.score(usage);
      return {
        agentId: agent.id,
        project: agent.project,
        name: agent.name,
        usage: usageView(usage),
        live: {
          instance: pool.instances.instance(agent.project, agent.id) ?? null,
          runs: pool.metrics.agents.agent(agent.project, agent.name) ?? null,
          recentRuns: pool.live.recent.of(agent.id),
        },
        priority: scored === undefined ? null : { ...scored, threshold: pool.preloader.options.threshold },
        followers: pool.preloader
          .followers(agent.id)
          .map((f) => ({ agentId: f.agent.id, name: f.agent.name, count: f.count })),
      };
    },
  );

  app.get<{ Querystring: PageQuery & { project?: string; sort?: string } }>(
    '/v1/pool/activity',
    {
      schema: {
        tags: ['pool'],
        summary: 'Activity report: agents by uses, recent use, failures or cost',
        description:
          "Agents' persisted usage (written in coalesced batches, so up to `agents.lastUsedFlushIntervalMs` behind), most first; only agents used at least once. A project key sees its project's agents; the admin (or development mode) every project's, or one with `?project=`. `sort`: `uses` (default), `recent` (last use), `failures`, `cost`; another value is 400 `VALIDATION_FAILED` naming `sort`.",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQueryProperties,
            project: projectQuery,
            sort: { type: 'string', description: 'uses | recent | failures | cost. Default uses.' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              sort: { type: 'string' },
              data: { type: 'array', items: usageSchema },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { limit = 50, cursor, sort: asked } = request.query;
      const sort: UsageSort = enumOption('sort', asked, USAGE_SORTS, 'uses');
      const project = await scopedProject(pool, request, request.query.project, true);
      const page = await pool.agents.usage.list({
        sort,
        limit,
        ...(project !== undefined && { project }),
        ...(cursor !== undefined && { cursor }),
      });
      return { sort, data: page.data.map(usageView), nextCursor: page.nextCursor };
    },
  );
}

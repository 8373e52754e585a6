/**
 * The live view of the dashboard and `agentpool top`, one request each (clients poll it every 2 s):
 * `GET /v1/pool/live` (the pool's figures, health, runs over the last minutes, money, models and
 * the cluster's nodes) and `GET /v1/pool/live/agents` (a page of a project's agents with their
 * usage and live instance). Scoped like `/v1/pool/stats`: the admin sees the whole pool, a project
 * key its own project's figures only.
 */
import type { FastifyInstance } from 'fastify';
import type { AgentPool } from '../../agent-pool.ts';
import { zeroRunTotals } from '../../store/usage-paging.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, PAGE_LIMIT, projectQuery } from '../schemas.ts';
import { healthView } from './pool-health.ts';
import { poolStatsView, scopedProject } from './pool.ts';
import { usageView } from './usage.ts';

const tags = ['pool'];
/** Projects whose budgets the whole-pool view lists (the first by name). */
const MONEY_PROJECTS = 20;
/** Agents the money section lists by cost. */
const TOP_AGENTS = 5;

async function money(pool: AgentPool, project: string | undefined) {
  const projects =
    project !== undefined
      ? [project]
      : (await pool.projects.list({ limit: MONEY_PROJECTS })).data.map((p) => p.id);
  const [budgets, top] = await Promise.all([
    Promise.all(
      projects.map(async (id) => {
        const { budgets: b } = await pool.governance.usage(id);
        return { project: id, today: b.daily, month: b.monthly, perRunUsd: b.perRunUsd };
      }),
    ),
    pool.agents.usage.list({ sort: 'cost', limit: TOP_AGENTS, ...(project !== undefined && { project }) }),
  ]);
  return { projects: budgets, topAgents: top.data.filter((u) => u.costUsd > 0).map(usageView) };
}

async function cluster(pool: AgentPool) {
  const { mode, nodeId } = pool.cluster;
  return { mode, node: nodeId, nodes: await pool.cluster.nodes() };
}

/** Registers `GET /v1/pool/live` and `GET /v1/pool/live/agents`. */
export function registerPoolLiveRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get<{ Querystring: { project?: string } }>(
    '/v1/pool/live',
    {
      schema: {
        tags,
        summary: 'The live view: pool, health, runs over the last minutes, money, models, nodes',
        description:
          "What the dashboard (`/dashboard`) and `agentpool top` show, in one answer; poll it (they do every 2 s). `stats`: the body of `/v1/pool/stats`. `health`: that of `/v1/pool/health`. `runs`: in flight now, and over the window (15 minutes by default) finished by outcome, `lastMinute` (runs per minute), p50 and p99 latency in ms (histogram bounds, within ×1.5), cost. `series`: per 10-second bucket, oldest first, its runs and (whole pool only) cache hits and misses, activations, evictions, live instances, mean activation and acquire-wait ms. `slowest`: the window's slowest runs. `money`: per project today's and this month's spend against its budgets (the first 20 projects for the admin) and the top agents by cost. `cluster`: the nodes (admin only, null for a project key). A project key, or the admin with `?project=`, gets that project's figures only.",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            project: projectQuery,
          },
        },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses },
      },
    },
    async (request) => {
      const project = await scopedProject(pool, request, request.query.project, true);
      const window = pool.live.window(project);
      const [moneyView, clusterView] = await Promise.all([
        money(pool, project),
        project === undefined ? cluster(pool) : null,
      ]);
      return {
        scope: project === undefined ? 'pool' : 'project',
        project: project ?? null,
        at: pool.clock.now(),
        stats: poolStatsView(pool, project),
        health: healthView(pool, request.admin),
        runs: { inFlight: pool.runs.inFlight(project), ...window.runs },
        bucketMs: window.bucketMs,
        series: window.buckets,
        slowest: window.slowest,
        money: moneyView,
        cluster: clusterView,
      };
    },
  );

  app.get<{ Querystring: { q?: string; limit?: number; cursor?: string } }>(
    '/v1/pool/live/agents',
    {
      schema: {
        tags,
        summary: "A page of the project's agents with their usage and live instance (the dashboard's table)",
        description:
          "Agents ordered by name (keyset pages: `nextCursor`), `q` keeps those whose name contains it. Each: id, name, active version, tier, labels, its persisted usage (uses, successes, failures, success rate, mean latency, cost, last use; pending figures of this node included) and its live instance here (null when none). The project is the key's (the admin picks one with the `agentpool-project` header).",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            q: { type: 'string', maxLength: 200, description: 'Only agents whose name contains this text.' },
            limit: { type: 'integer', ...PAGE_LIMIT, default: 25 },
            cursor: { type: 'string' },
          },
        },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses },
      },
    },
    async (request) => {
      const { q, limit = 25, cursor } = request.query;
      const page = await pool.agents.list(request.project, {
        limit,
        ...(cursor !== undefined && { cursor }),
        ...(q !== undefined && q !== '' && { q }),
      });
      const data = await Promise.all(
        page.data.map(async (agent) => {
          const usage = await pool.agents.usage.of(agent);
          return {
            id: agent.id,
            name: agent.name,
            version: agent.activeVersion,
            tier: agent.spec.tier,
            model: agent.spec.model,
            labels: agent.spec.labels,
            rollout: agent.rollout !== null,
            usage: usageView(
              usage ?? {
                agentId: agent.id,
                project: agent.project,
                name: agent.name,
                lastUsedAt: agent.lastUsedAt,
                ...zeroRunTotals(),
              },
            ),
            instance: pool.instances.instance(agent.project, agent.id) ?? null,
          };
        }),
      );
      return { project: request.project, data, nextCursor: page.nextCursor };
    },
  );
}

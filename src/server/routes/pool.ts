/**
 * Pool routes: what is live and how the activation cache is doing, and operator actions on one
 * agent's instance (activate = prewarm, deactivate, pause, resume). Each handler is one call to
 * the pool; an agent without a live instance answers 404 `INSTANCE_NOT_FOUND`. Statistics are
 * scoped: the admin (and development mode) sees the whole pool, a project key only its project's
 * figures, never what tells another tenant's load.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AgentPool } from '../../agent-pool.ts';
import { AgentPoolError } from '../../core/errors.ts';
import type { InstanceInfo } from '../../pool/pool.ts';
import { assertSlug } from '../../registry/definition.ts';
import { projectNotFound } from '../../store/project-ports.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, PAGE_LIMIT, projectQuery } from '../schemas.ts';

const tags = ['pool'];
/** The `{agent}` path parameter of the instance routes. */
export const agentParams = {
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

/** One project's figures: what its own key may see. */
function projectStats(pool: AgentPool, project: string) {
  return {
    scope: 'project' as const,
    ...pool.instances.projectStats(project),
    runs: pool.runs.inFlight(project),
    // Breaker states are shared facts about providers; calls in flight per model would tell others' load.
    models: pool.guards.stats().map((m) => ({ model: m.model, breaker: m.breaker })),
    tools: pool.tools.figures.projectStats(project),
    // The project's own MCP servers only.
    mcp: { servers: pool.mcp.stats().servers.filter((s) => s.project === project) },
  };
}

/** The body of `GET /v1/pool/stats`: the whole pool's figures, or one project's (undefined: the pool). */
export function poolStatsView(pool: AgentPool, project: string | undefined) {
  if (project !== undefined) return projectStats(pool, project);
  return {
    scope: 'pool' as const,
    ...pool.instances.stats(),
    runs: pool.runs.inFlight(),
    models: pool.guards.stats(),
    checkpoint: pool.checkpoint.stats(),
    autoscaling: pool.autoscaler.stats(),
    tiers: pool.tiers.stats(),
    tools: { ...pool.tools.figures.stats(), modules: pool.tools.modules.stats() },
    mcp: pool.mcp.stats(),
    retention: pool.retention.stats(),
  };
}

/**
 * The project a request reads or acts in: `?project=` for the admin (it must exist), the key's own
 * project otherwise (naming another is 403 `FORBIDDEN`); with `whole`, undefined when the admin
 * names none (the whole pool), else the project the admin acts in.
 */
export async function scopedProject(
  pool: AgentPool,
  request: FastifyRequest,
  asked: string | undefined,
  whole: false,
): Promise<string>;
export async function scopedProject(
  pool: AgentPool,
  request: FastifyRequest,
  asked: string | undefined,
  whole: boolean,
): Promise<string | undefined>;
export async function scopedProject(
  pool: AgentPool,
  request: FastifyRequest,
  asked: string | undefined,
  whole: boolean,
): Promise<string | undefined> {
  if (!request.admin) {
    if (asked !== undefined && asked !== request.project) {
      throw new AgentPoolError(
        'FORBIDDEN',
        `this key reads and acts in project ${JSON.stringify(request.project)} only`,
        { project: request.project, named: asked },
      );
    }
    return request.project;
  }
  if (asked === undefined) return whole ? undefined : request.project;
  const project = assertSlug('project', asked);
  if (!(await pool.projects.exists(project))) throw projectNotFound(project);
  return project;
}

/** Registers the `/v1/pool` routes. */
export function registerPoolRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  const instances = pool.instances;

  app.get<{ Querystring: { project?: string } }>(
    '/v1/pool/stats',
    {
      schema: {
        tags,
        summary: 'Pool statistics (the whole pool for the admin, its own figures for a project key)',
        description:
          "For the admin (or in development mode): `scope: \"pool\"`, live instances by state and tier, cache hits and misses, activations, evictions, waiting acquirers, the activation latency histogram, runs in flight, per model its breaker state, calls in flight and queued, retries, fallbacks, throttled and rejected calls, and the pool's self-management: `checkpoint` (status, saves, the start's prewarm), `autoscaling` (capacity, bounds, decisions, the last one), `tiers` (classified agents, moves, per tier its instances, leases and limits), `mcp` (sessions open, per MCP server its calls, errors, timeouts, session opens and re-initialisations, tool-list cache hits and refreshes, breaker state), and `tools`: per tool and source its calls, errors (timeouts included), timeouts, total time and latency p50/p99 (ms), the same summed per `sources` (`builtin`, `custom`, `module`, `mcp:<server>`), the module loader's `modules` figures (loads, reloads, cache hits, refused reloads, versions imported), and `retention` (its days, the sweeps this node made, the last one, what they deleted). For a project key, or the admin with `?project=`: `scope: \"project\"`, that project's live instances by state and tier, its hits, misses and activations since start, its runs in flight, each model's breaker state only, `tools`: its own calls, errors, timeouts and time per tool and per source, and its own MCP servers' figures (`mcp.servers`).",
        querystring: { type: 'object', additionalProperties: false, properties: { project: projectQuery } },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses },
      },
    },
    async (request) => {
      const project = await scopedProject(pool, request, request.query.project, true);
      return poolStatsView(pool, project);
    },
  );

  app.get<{ Querystring: { project?: string; agent?: string; limit?: number } }>(
    '/v1/pool/stats/agents',
    {
      schema: {
        tags,
        summary: "Run figures of a project's agents since the server started",
        description:
          "Per agent: runs by terminal status, input and output tokens, cost in USD, the last run. Most runs first; `agent` picks one by name. `/metrics` has series for the most active agents only; these figures cover every agent that ran (up to `metrics.maxTrackedAgents`, beyond it an agent that has not run lately is forgotten). `tracked`: how many of the project's agents have figures.",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            project: projectQuery,
            agent: { type: 'string', description: 'Only this agent (by name).' },
            limit: { type: 'integer', ...PAGE_LIMIT, default: 50 },
          },
        },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses },
      },
    },
    async (request) => {
      const project = (await scopedProject(pool, request, request.query.project, false)) as string;
      const { agent, limit = 50 } = request.query;
      if (agent !== undefined) {
        const figures = pool.metrics.agents.agent(project, agent);
        return {
          project,
          tracked: pool.metrics.agents.tracked(project),
          data: figures === undefined ? [] : [figures],
        };
      }
      const { agents, tracked } = pool.metrics.agents.project(project, limit);
      return { project, tracked, data: agents };
    },
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

/**
 * Tool routes: what a project can use, with its figures (`GET /v1/tools`: a project key sees its
 * own project, the admin the one `?project=` names), and the admin's forced check of tool and
 * hook modules (`POST /v1/tools/reload`), which loads changed files and retires the instances
 * using them. Each handler is one call to the pool.
 */
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, projectQuery } from '../schemas.ts';
import { scopedProject } from './pool.ts';

const tags = ['tools'];
const countsSchema = {
  type: 'object',
  properties: {
    calls: { type: 'integer' },
    errors: { type: 'integer' },
    timeouts: { type: 'integer' },
    durationMs: { type: 'number' },
  },
} as const;
const toolSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: { type: ['string', 'null'] },
    description: { type: ['string', 'null'] },
    source: { type: 'string' },
    ref: { type: 'string' },
    loaded: { type: 'boolean' },
    inputSchema: { type: ['object', 'null'], additionalProperties: true },
    module: {
      type: 'object',
      properties: { path: { type: 'string' }, version: { type: ['string', 'null'] } },
    },
    figures: countsSchema,
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

/** Registers `/v1/tools` and `/v1/tools/reload`. */
export function registerToolRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get<{ Querystring: { project?: string } }>(
    '/v1/tools',
    {
      schema: {
        tags,
        summary: 'The tools a project can use, with their figures',
        description:
          "The builtin tools, the tools registered in code (`custom:<name>`), and the tools of each module the project's agents reference (at its loaded version; a module no activation has loaded yet is listed by its reference with `loaded: false`), and the tools of the project's declared MCP servers under the names the model sees (`source` `mcp:<server>`; a server that cannot be listed now is one entry with `loaded: false` and its `error`). Each carries the project's figures since the server started: calls, errors (timeouts included), timeouts and total time in ms. A project key lists its own project; the admin names one with `?project=` (else the project it acts in, `agentpool-project`). `truncated`: the project has more than 10000 agents and only the first ones' references were read.",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            project: projectQuery,
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              project: { type: 'string' },
              data: { type: 'array', items: toolSchema },
              truncated: { type: 'boolean' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const project = await scopedProject(pool, request, request.query.project, false);
      return pool.listTools(project);
    },
  );

  app.post<{ Body: { path?: string } | undefined }>(
    '/v1/tools/reload',
    {
      schema: {
        tags,
        summary: 'Check tool and hook modules now and load those that changed (admin)',
        description:
          "Checks every cached tool and hook module's file (or only `path`, resolved against `tools.baseDir`) whatever `tools.reload` says, imports those whose content changed, and retires the live instances using them: an idle one now, a busy one when its runs end, a hot one prewarmed again; so each agent's next run has the new version. A module that fails to load now keeps its version and is listed in `failed`. `modules`: the loader's figures (loads, reloads, cache hits, refused reloads, versions imported).",
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { path: { type: 'string', minLength: 1, maxLength: 1024 } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              changed: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { path: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } },
                },
              },
              failed: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { path: { type: 'string' }, error: { type: 'string' } },
                },
              },
              retired: { type: 'integer' },
              modules: { type: 'object', additionalProperties: true },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      requireAdmin(request, 'reloading tool modules');
      const path = request.body?.path;
      return pool.reloadTools(path === undefined ? {} : { path });
    },
  );
}

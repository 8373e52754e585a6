/**
 * `GET /v1/models` and `GET /v1/models/{id}`: the project's agents as OpenAI model objects, so a
 * client that lists models before choosing one sees the agents it can talk to. The list is paged
 * through the registry like OpenAI's cursor lists (`after` = the last agent name seen, `limit`,
 * `has_more`), never read whole: a project may hold millions of agents.
 */
import type { FastifyInstance } from 'fastify';
import type { Agent } from '../../registry/registry.ts';
import { encodeCursor } from '../../store/paging.ts';
import type { RouteContext } from '../context.ts';
import { handleOpenAIError, openAIErrorSchema, seconds, tags } from './shared.ts';

/** Agents listed per page when the client asks for no `limit`: OpenAI clients read one page. */
const DEFAULT_LIMIT = 1000;

const modelObject = (agent: Agent) => ({
  id: agent.name,
  object: 'model',
  created: seconds(agent.createdAt),
  owned_by: agent.project,
});

const modelSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    object: { type: 'string' },
    created: { type: 'integer' },
    owned_by: { type: 'string' },
  },
} as const;

const errors = { '4xx': openAIErrorSchema, '5xx': openAIErrorSchema };

/** Registers `GET /v1/models` and `GET /v1/models/{id}`. */
export function registerModelRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get<{ Querystring: { after?: string; limit?: number } }>(
    '/v1/models',
    {
      errorHandler: handleOpenAIError,
      schema: {
        tags,
        summary: "The project's agents as models",
        description: `Agents by name: \`id\` is the agent's name (use it as \`model\`), \`owned_by\` the project. Paged: \`limit\` (1–1000, default ${DEFAULT_LIMIT}), \`after\` = the \`last_id\` of the previous page; \`has_more\` says whether another page follows.`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: { type: 'string', minLength: 1 },
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              object: { type: 'string' },
              data: { type: 'array', items: modelSchema },
              first_id: { type: ['string', 'null'] },
              last_id: { type: ['string', 'null'] },
              has_more: { type: 'boolean' },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { after, limit = DEFAULT_LIMIT } = request.query;
      // The registry's keyset cursor is the last name seen: `after` is exactly that.
      const page = await pool.agents.list(request.project, {
        limit,
        ...(after !== undefined && { cursor: encodeCursor('name', after) }),
      });
      const data = page.data.map(modelObject);
      return {
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: page.nextCursor !== null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/models/:id',
    {
      errorHandler: handleOpenAIError,
      schema: {
        tags,
        summary: 'One agent as a model',
        description: 'The agent with this name (or id) as a model object; 404 `AGENT_NOT_FOUND` otherwise.',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
        response: { 200: modelSchema, ...errors },
      },
    },
    async (request) => modelObject(await pool.agents.get(request.project, request.params.id)),
  );
}

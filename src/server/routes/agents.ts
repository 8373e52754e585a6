/**
 * Agent routes: create (`?ifExists`), apply, list with label filters, read, patch, delete, list
 * versions and roll back. Each handler is one call to the registry of the pool.
 */
import type { FastifyInstance } from 'fastify';
import { isAgentPoolError, validationError } from '../../core/errors.ts';
import type { AgentSpecInput } from '../../registry/definition.ts';
import type { RouteContext } from '../context.ts';
import {
  agentApplyBody,
  agentPatchBody,
  agentSpecBody,
  errorResponses,
  pageOf,
  type PageQuery,
  pageQuery,
  pageQueryProperties,
  ref,
} from '../schemas.ts';

const tags = ['agents'];
/** The `{idOrName}` path parameter of every agent route. */
export const idOrNameParams = {
  type: 'object',
  required: ['idOrName'],
  properties: { idOrName: { type: 'string', description: 'The agent id (`agt_…`) or its name.' } },
} as const;

/**
 * Parses `label` query values (`key=value`, repeated or comma-separated) into one filter;
 * `VALIDATION_FAILED` naming `label` for a value without `=`.
 */
export function parseLabelFilter(values: readonly string[] | undefined): Record<string, string> | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const labels: Record<string, string> = {};
  for (const pair of values.flatMap((v) => v.split(','))) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw validationError('label', `must be key=value, got ${JSON.stringify(pair)}`);
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}

/** Registers the `/v1/agents` routes. */
export function registerAgentRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.post<{ Body: AgentSpecInput; Querystring: { ifExists?: 'error' | 'return' } }>(
    '/v1/agents',
    {
      schema: {
        tags,
        summary: 'Create an agent',
        description: '`ifExists=return` answers 200 with the existing agent instead of 409 `AGENT_EXISTS`.',
        querystring: {
          type: 'object',
          properties: { ifExists: { type: 'string', enum: ['error', 'return'], default: 'error' } },
        },
        body: agentSpecBody,
        response: { 200: ref('Agent'), 201: ref('Agent'), ...errorResponses },
      },
    },
    async (request, reply) => {
      try {
        return reply.code(201).send(await pool.agents.create(request.project, request.body));
      } catch (err) {
        if (request.query.ifExists !== 'return' || !isAgentPoolError(err, 'AGENT_EXISTS')) throw err;
        return reply.code(200).send(await pool.agents.get(request.project, request.body.name));
      }
    },
  );

  // The path parameter is named like the other `/v1/agents/{…}` routes (one OpenAPI path), but
  // apply addresses agents by name only.
  app.put<{ Params: { idOrName: string }; Body: Partial<AgentSpecInput> }>(
    '/v1/agents/:idOrName',
    {
      schema: {
        tags,
        summary: 'Apply an agent definition (declarative upsert)',
        description:
          'The full definition replaces the active one (omitted fields take defaults). 201 when created, 200 when updated or unchanged; `result` says which.',
        params: {
          type: 'object',
          required: ['idOrName'],
          properties: { idOrName: { type: 'string', description: 'The agent name.' } },
        },
        body: agentApplyBody,
        response: {
          '2xx': {
            type: 'object',
            properties: {
              agent: ref('Agent'),
              result: { type: 'string', enum: ['created', 'updated', 'unchanged'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const name = request.params.idOrName;
      if (request.body.name !== undefined && request.body.name !== name) {
        throw validationError('name', `must match the path (${JSON.stringify(name)}) when given`);
      }
      const applied = await pool.agents.apply(request.project, { ...request.body, name });
      return reply.code(applied.result === 'created' ? 201 : 200).send(applied);
    },
  );

  app.get<{ Querystring: PageQuery & { label?: string[]; q?: string } }>(
    '/v1/agents',
    {
      schema: {
        tags,
        summary: 'List agents, ordered by name',
        querystring: {
          type: 'object',
          properties: {
            ...pageQueryProperties,
            label: {
              type: 'array',
              items: { type: 'string' },
              description: '`key=value`; repeat or comma-separate for several (all must match).',
            },
            q: {
              type: 'string',
              maxLength: 200,
              description: "Only agents whose name contains this text (the dashboard's search).",
            },
          },
        },
        response: { 200: pageOf('Agent'), ...errorResponses },
      },
    },
    async (request) => {
      const { limit, cursor, label, q } = request.query;
      const labels = parseLabelFilter(label);
      return pool.agents.list(request.project, {
        ...(limit !== undefined && { limit }),
        ...(cursor !== undefined && { cursor }),
        ...(labels !== undefined && { labels }),
        ...(q !== undefined && q !== '' && { q }),
      });
    },
  );

  app.get<{ Params: { idOrName: string } }>(
    '/v1/agents/:idOrName',
    {
      schema: {
        tags,
        summary: 'Get an agent',
        params: idOrNameParams,
        response: { 200: ref('Agent'), ...errorResponses },
      },
    },
    async (request) => pool.agents.get(request.project, request.params.idOrName),
  );

  app.patch<{ Params: { idOrName: string }; Body: Record<string, unknown> }>(
    '/v1/agents/:idOrName',
    {
      schema: {
        tags,
        summary: 'Change some fields of an agent',
        description:
          'A change makes a new active version; `null` returns a field to its default. `changed` is false when the patch changed nothing (no version is made).',
        params: idOrNameParams,
        body: agentPatchBody,
        response: {
          200: { type: 'object', properties: { agent: ref('Agent'), changed: { type: 'boolean' } } },
          ...errorResponses,
        },
      },
    },
    async (request) => pool.agents.update(request.project, request.params.idOrName, request.body),
  );

  app.delete<{ Params: { idOrName: string } }>(
    '/v1/agents/:idOrName',
    {
      schema: {
        tags,
        summary: 'Delete an agent and its versions',
        params: idOrNameParams,
        response: { 204: { type: 'null', description: 'Deleted.' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      await pool.agents.delete(request.project, request.params.idOrName);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { idOrName: string }; Querystring: PageQuery }>(
    '/v1/agents/:idOrName/versions',
    {
      schema: {
        tags,
        summary: "List an agent's versions, newest first",
        params: idOrNameParams,
        querystring: pageQuery,
        response: { 200: pageOf('AgentVersion'), ...errorResponses },
      },
    },
    async (request) => {
      return pool.agents.versions(request.project, request.params.idOrName, request.query);
    },
  );

  app.post<{ Params: { idOrName: string }; Body: { version: number } }>(
    '/v1/agents/:idOrName/rollback',
    {
      schema: {
        tags,
        summary: 'Make an earlier version active again',
        params: idOrNameParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['version'],
          properties: { version: { type: 'integer', minimum: 1 } },
        },
        response: { 200: ref('Agent'), ...errorResponses },
      },
    },
    async (request) => pool.agents.rollback(request.project, request.params.idOrName, request.body.version),
  );
}

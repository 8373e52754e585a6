/**
 * Project and API-key management (admin key only): create, list, read and delete projects, set
 * their quotas and budgets; issue (the secret is in the answer, once), list and revoke keys.
 * A project's usage is readable by the admin and by the project's own keys. Deleting a project
 * that holds data is refused unless `?cascade=true`, which deletes its data too.
 */
import type { FastifyInstance } from 'fastify';
import { projectNotFound } from '../../store/project-ports.ts';
import { adminOnlyRoutes } from '../auth.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, type PageQuery, pageQuery } from '../schemas.ts';

const tags = ['projects'];
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;
const limitsBody = {
  type: 'object',
  additionalProperties: false,
  description:
    "quotas, budgets, tiers (`{ default: hot | warm | cold }`: the tier of the project's `auto` agents) and retention (`{ days }`: how long its runs and threads are kept, 0 for good); a field set to null returns to the pool default",
  properties: {
    quotas: { anyOf: [anyObject, { type: 'null' }] },
    budgets: { anyOf: [anyObject, { type: 'null' }] },
    tiers: { anyOf: [anyObject, { type: 'null' }] },
    retention: { anyOf: [anyObject, { type: 'null' }] },
  },
} as const;
const USAGE_ROUTE = '/v1/projects/:id/usage';

/** Registers `/v1/projects` and `/v1/projects/{id}/keys`. */
export function registerProjectRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  const projects = pool.projects;
  // Every project route is the admin's, except usage, which a project's own keys may read too.
  adminOnlyRoutes(app, (url) => url.startsWith('/v1/projects') && url !== USAGE_ROUTE);

  app.post<{
    Body: { id: string; name?: string; metadata?: Record<string, unknown>; limits?: Record<string, unknown> };
  }>(
    '/v1/projects',
    {
      schema: {
        tags,
        summary: 'Create a project (admin)',
        body: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            metadata: anyObject,
            limits: limitsBody,
          },
        },
        response: { 201: anyObject, ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await projects.create(request.body)),
  );

  app.get<{ Querystring: PageQuery }>(
    '/v1/projects',
    { schema: { tags, summary: 'List projects (admin)', querystring: pageQuery } },
    async (request) => projects.list(request.query),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/projects/:id',
    { schema: { tags, summary: 'A project (admin)', params: idParams } },
    async (request) => projects.get(request.params.id),
  );

  app.patch<{ Params: { id: string }; Body: { limits: Record<string, unknown> } }>(
    '/v1/projects/:id',
    {
      schema: {
        tags,
        summary: "Change a project's quotas and budgets (admin)",
        params: idParams,
        body: {
          type: 'object',
          required: ['limits'],
          additionalProperties: false,
          properties: { limits: limitsBody },
        },
      },
    },
    async (request) => projects.updateLimits(request.params.id, request.body.limits),
  );

  app.get<{ Params: { id: string } }>(
    USAGE_ROUTE,
    {
      schema: {
        tags,
        summary: "A project's quotas and budgets and what it uses of them now (admin, or the project's keys)",
        params: idParams,
      },
    },
    async (request) => {
      const id = request.params.id;
      if (id !== request.project) {
        // Another project's usage is the admin's; for anyone else it does not exist (404).
        if (!request.admin) throw projectNotFound(id);
        await projects.get(id); // PROJECT_NOT_FOUND for an unknown one
      }
      return pool.governance.usage(id);
    },
  );

  app.delete<{ Params: { id: string }; Querystring: { cascade?: boolean } }>(
    '/v1/projects/:id',
    {
      schema: {
        tags,
        summary: 'Delete a project (admin)',
        description:
          'Refused with 409 `PROJECT_NOT_EMPTY` (its agents, threads and runs counted in `details`) while the project holds any. With `cascade=true` its runs in flight are cancelled, its live instances retired, and its keys, runs, threads, messages and agents deleted in short batches, then the project. Answers what was deleted. `default` cannot be deleted.',
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { cascade: { type: 'boolean', default: false } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              project: { type: 'string' },
              deleted: {
                type: 'object',
                properties: {
                  agents: { type: 'integer' },
                  threads: { type: 'integer' },
                  messages: { type: 'integer' },
                  runs: { type: 'integer' },
                  keys: { type: 'integer' },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => projects.delete(request.params.id, { cascade: request.query.cascade === true }),
  );

  app.post<{ Params: { id: string }; Body: { name?: string } | undefined }>(
    '/v1/projects/:id/keys',
    {
      schema: {
        tags,
        summary: 'Issue an API key (admin); the secret is shown only in this answer',
        params: idParams,
        body: { type: 'object', additionalProperties: false, properties: { name: { type: 'string' } } },
      },
      preValidation: (request, _reply, done) => {
        request.body ??= {};
        done();
      },
    },
    async (request, reply) => {
      const { key, info } = await projects.createKey(request.params.id, request.body?.name ?? '');
      return reply.code(201).send({ ...info, key });
    },
  );

  app.get<{ Params: { id: string }; Querystring: PageQuery }>(
    '/v1/projects/:id/keys',
    {
      schema: {
        tags,
        summary: "A project's keys (admin; secrets are never shown)",
        params: idParams,
        querystring: pageQuery,
      },
    },
    async (request) => projects.listKeys(request.params.id, request.query),
  );

  app.delete<{ Params: { id: string; keyId: string } }>(
    '/v1/projects/:id/keys/:keyId',
    {
      schema: {
        tags,
        summary: 'Revoke an API key (admin)',
        params: {
          type: 'object',
          required: ['id', 'keyId'],
          properties: { id: { type: 'string' }, keyId: { type: 'string' } },
        },
      },
    },
    async (request, reply) => {
      await projects.revokeKey(request.params.id, request.params.keyId);
      return reply.code(204).send();
    },
  );
}

/**
 * Project and API-key management (admin key only): create, list, read and delete projects;
 * issue (the secret is in the answer, once), list and revoke keys.
 */
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, pageQueryProperties } from '../schemas.ts';

const tags = ['projects'];
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;
const pageQuery = { type: 'object', properties: pageQueryProperties } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;

interface PageQuery {
  limit?: number;
  cursor?: string;
}

function page({ limit, cursor }: PageQuery): PageQuery {
  return { ...(limit !== undefined && { limit }), ...(cursor !== undefined && { cursor }) };
}

/** Registers `/v1/projects` and `/v1/projects/{id}/keys`. */
export function registerProjectRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  const projects = pool.projects;
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/v1/projects')) requireAdmin(request);
  });

  app.post<{ Body: { id: string; name?: string; metadata?: Record<string, unknown> } }>(
    '/v1/projects',
    {
      schema: {
        tags,
        summary: 'Create a project (admin)',
        body: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: { id: { type: 'string' }, name: { type: 'string' }, metadata: anyObject },
        },
        response: { 201: anyObject, ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await projects.create(request.body)),
  );

  app.get<{ Querystring: PageQuery }>(
    '/v1/projects',
    { schema: { tags, summary: 'List projects (admin)', querystring: pageQuery } },
    async (request) => projects.list(page(request.query)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/projects/:id',
    { schema: { tags, summary: 'A project (admin)', params: idParams } },
    async (request) => projects.get(request.params.id),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/projects/:id',
    { schema: { tags, summary: 'Delete a project and its keys (admin)', params: idParams } },
    async (request, reply) => {
      await projects.delete(request.params.id);
      return reply.code(204).send();
    },
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
    async (request) => projects.listKeys(request.params.id, page(request.query)),
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

/**
 * Thread routes: create, read, delete (refused with 409 `THREAD_BUSY` while a run holds the
 * thread), and page through a thread's messages and runs. Each handler is one call to the pool.
 */
import type { FastifyInstance } from 'fastify';
import type { CreateThreadOptions } from '../../run/threads.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, pageOf, type PageQuery, pageQuery, ref } from '../schemas.ts';

const tags = ['threads'];
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', description: 'The thread id (`thr_…`).' } },
} as const;

/** What a new thread may carry: `POST /v1/threads`'s body, and a run's `thread`. */
export const newThreadBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    metadata: {
      type: 'object',
      additionalProperties: true,
      description: 'Free-form JSON (≤ 16 KiB).',
    },
    ttlSeconds: {
      type: 'integer',
      minimum: 1,
      description: 'Delete the thread after this long without a new message.',
    },
  },
} as const;

/** Registers the `/v1/threads` routes. */
export function registerThreadRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.post<{ Body: CreateThreadOptions | undefined }>(
    '/v1/threads',
    {
      schema: {
        tags,
        summary: 'Create a thread',
        description: 'The body is optional.',
        body: newThreadBody,
        response: { 201: ref('Thread'), ...errorResponses },
      },
      // An empty POST creates a thread with defaults.
      preValidation: (request, _reply, done) => {
        request.body ??= {};
        done();
      },
    },
    async (request, reply) => reply.code(201).send(await pool.threads.create(request.project, request.body)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/threads/:id',
    {
      schema: {
        tags,
        summary: 'Get a thread',
        params: idParams,
        response: { 200: ref('Thread'), ...errorResponses },
      },
    },
    async (request) => pool.threads.get(request.project, request.params.id),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/threads/:id',
    {
      schema: {
        tags,
        summary: 'Delete a thread with its messages and runs',
        description: '409 `THREAD_BUSY` while a run holds the thread.',
        params: idParams,
        response: { 204: { type: 'null', description: 'Deleted.' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      await pool.threads.delete(request.project, request.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: PageQuery }>(
    '/v1/threads/:id/messages',
    {
      schema: {
        tags,
        summary: "A page of the thread's messages, oldest first",
        params: idParams,
        querystring: pageQuery,
        response: { 200: pageOf('Message'), ...errorResponses },
      },
    },
    async (request) => pool.threads.messages(request.project, request.params.id, request.query),
  );

  app.get<{ Params: { id: string }; Querystring: PageQuery }>(
    '/v1/threads/:id/runs',
    {
      schema: {
        tags,
        summary: "A page of the thread's runs",
        params: idParams,
        querystring: pageQuery,
        response: { 200: pageOf('Run'), ...errorResponses },
      },
    },
    async (request) => pool.threads.runs(request.project, request.params.id, request.query),
  );
}

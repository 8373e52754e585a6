/**
 * Run routes: start a run in one of three modes, read it, follow its events as SSE (resuming
 * after `Last-Event-ID`), and cancel it.
 *
 * Who owns a run's lifetime: a `background` run belongs to the server (the request only starts
 * it); a wait-mode or `stream` run belongs to its request, so when the client goes away before
 * the answer is complete the run is cancelled (`RUN_CANCELLED`) rather than left to spend tokens
 * nobody reads. Following `GET /v1/runs/{id}/events` never cancels anything.
 */
import type { FastifyInstance } from 'fastify';
import { validationError } from '../../core/errors.ts';
import type { MultitaskStrategy } from '../../coordination/thread-gate.ts';
import type { CreateThreadOptions } from '../../run/threads.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, multitaskSchema, ref } from '../schemas.ts';
import { clientGone, sendSse } from '../sse.ts';
import { newThreadBody } from './threads.ts';

const tags = ['runs'];
const runIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', description: 'The run id (`run_…`).' } },
} as const;
const sseResponse = {
  description:
    'Server-sent events: `id: <seq>`, `event: <type>`, `data: <the event as JSON>`; ends after `run.finished` or `run.failed`.',
  content: { 'text/event-stream': { schema: { type: 'string' } } },
} as const;

interface StartRunBody {
  input: string;
  threadId?: string;
  thread?: CreateThreadOptions;
  multitask?: MultitaskStrategy;
  stream?: boolean;
  background?: boolean;
  metadata?: Record<string, unknown>;
}

/** Registers the run routes (`/v1/agents/{idOrName}/runs`, `/v1/runs/{id}` …). */
export function registerRunRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.post<{ Params: { idOrName: string }; Body: StartRunBody }>(
    '/v1/agents/:idOrName/runs',
    {
      schema: {
        tags,
        summary: 'Run an agent',
        description:
          'Wait mode (default): 200 with the terminal run. `background: true`: 202 with the accepted run; poll `GET /v1/runs/{id}` (in a cluster it goes through a queue any node takes from, and a run without `threadId` gets a thread of its own so that it can resume on another node). `stream: true`: server-sent events. A wait or stream run is cancelled when the client disconnects; a background run is not.',
        params: {
          type: 'object',
          required: ['idOrName'],
          properties: { idOrName: { type: 'string', description: 'The agent id or name.' } },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['input'],
          properties: {
            input: { type: 'string', description: "The user's message (1 … 100,000 characters)." },
            threadId: { type: 'string', description: 'Run on this thread; stateless when absent.' },
            thread: {
              ...newThreadBody,
              description:
                "Run on a new thread with these options (`{}` for none), created with the run in one write; the run's `threadId` names it. Not with `threadId`.",
            },
            multitask: {
              ...multitaskSchema,
              description: 'When the thread is busy. Default `reject` (409).',
            },
            stream: { type: 'boolean', default: false },
            background: { type: 'boolean', default: false },
            metadata: { type: 'object', additionalProperties: true },
          },
        },
        response: {
          200: {
            ...ref('Run'),
            description: 'The terminal run (wait mode), or an SSE stream (`stream: true`).',
          },
          202: { ...ref('Run'), description: 'The accepted run (`background: true`).' },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { input, threadId, thread, multitask, metadata, stream, background } = request.body;
      if (stream === true && background === true) {
        throw validationError('background', 'cannot be combined with stream');
      }
      const options = {
        input,
        ...(threadId !== undefined && { threadId }),
        ...(thread !== undefined && { thread }),
        ...(multitask !== undefined && { multitask }),
        ...(metadata !== undefined && { metadata }),
      };
      if (background === true) {
        const accepted = await pool.runs.startBackground(request.project, request.params.idOrName, options);
        return reply.code(202).header('location', `/v1/runs/${accepted.id}`).send(accepted);
      }
      const signal = clientGone(reply);
      const handle = await pool.runs.start(request.project, request.params.idOrName, { ...options, signal });
      if (stream === true && signal !== undefined) {
        await sendSse(reply, handle.stream.events(0, signal), signal);
        return reply;
      }
      return reply.code(200).send(await handle.result);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/runs/:id',
    {
      schema: {
        tags,
        summary: 'Get a run',
        params: runIdParams,
        response: { 200: ref('Run'), ...errorResponses },
      },
    },
    async (request) => pool.runs.get(request.project, request.params.id),
  );

  app.get<{ Params: { id: string }; Querystring: { after?: number }; Headers: { 'last-event-id'?: number } }>(
    '/v1/runs/:id/events',
    {
      schema: {
        tags,
        summary: "Follow a run's events (server-sent events)",
        description:
          'Replays the events after `Last-Event-ID` (or `?after=`; the header wins), then follows live ones until the run ends. Disconnecting stops following; the run goes on.',
        params: runIdParams,
        querystring: {
          type: 'object',
          properties: {
            after: { type: 'integer', minimum: 0, description: 'Resume after this sequence number.' },
          },
        },
        headers: {
          type: 'object',
          properties: { 'last-event-id': { type: 'integer', minimum: 0 } },
        },
        response: { 200: sseResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const after = request.headers['last-event-id'] ?? request.query.after ?? 0;
      const signal = clientGone(reply);
      const events = await pool.runs.events(request.project, request.params.id, after, signal);
      await sendSse(reply, events, signal);
      return reply;
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/runs/:id/cancel',
    {
      schema: {
        tags,
        summary: 'Cancel a queued or running run',
        description: 'Answers with the cancelled run; 409 `RUN_NOT_ACTIVE` when it already ended.',
        params: runIdParams,
        response: { 200: ref('Run'), ...errorResponses },
      },
    },
    async (request) => pool.runs.cancel(request.project, request.params.id),
  );
}

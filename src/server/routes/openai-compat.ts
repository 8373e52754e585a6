/**
 * OpenAI-compatible endpoints, so the official OpenAI clients can talk to an agent: `model` names
 * the agent (its name or id), and each request is one run of it.
 *
 * - `POST /v1/chat/completions`: the run's input is the last message, which must be a `user`
 *   message; earlier messages are ignored (the run is stateless, and the agent's own instructions
 *   replace any `system`/`developer` message). For a conversation with memory use `/v1/responses`.
 * - `POST /v1/responses`: the input is `input` (a string, or the text of the last item, which must
 *   be a user message). Every response runs on a thread: the first call creates one, and
 *   `previous_response_id` (`resp_<runId>`) continues the thread of that run, so nothing is
 *   stored beyond the runs themselves. The agent's instructions replace `instructions`.
 *
 * Known OpenAI request fields that agentpool cannot honour in a meaningful way for a hosted agent
 * (sampling, token limits, logprobs, response formats, caching and service hints …) are accepted
 * and ignored; client-side `tools`/`functions`, `n > 1`, `background`, `conversation` and `prompt`
 * are rejected, because ignoring them would silently change the answer's meaning. Anything else is
 * an unknown field (400), like everywhere on this server.
 *
 * Errors keep the catalogue's code and status, in OpenAI's shape:
 * `{ error: { message, type, param, code, details } }`. A run that fails before producing output
 * answers with its error's status even when streaming was asked for; one that fails mid-stream
 * ends the stream with `data: {"error": …}` (chat) or `response.failed` (responses).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AgentPoolError, ERROR_CODES, type ErrorCode, validationError } from '../../core/errors.ts';
import type { RunHandle } from '../../run/runs.ts';
import type { RunEvent } from '../../run/stream.ts';
import type { RunRecord } from '../../store/ports.ts';
import type { RouteContext } from '../context.ts';
import { toErrorAnswer } from '../error-handler.ts';
import { clientGone } from '../sse.ts';

const tags = ['openai'];

/** Accepted and ignored: sampling, limits, logprobs, formats and service hints. */
const IGNORED_CHAT_FIELDS = [
  'audio',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'max_completion_tokens',
  'max_tokens',
  'modalities',
  'parallel_tool_calls',
  'prediction',
  'presence_penalty',
  'prompt_cache_key',
  'prompt_cache_retention',
  'reasoning_effort',
  'response_format',
  'safety_identifier',
  'seed',
  'service_tier',
  'stop',
  'store',
  'temperature',
  'tool_choice',
  'top_logprobs',
  'top_p',
  'user',
  'verbosity',
  'web_search_options',
] as const;

/** Accepted and ignored on `/v1/responses`. */
const IGNORED_RESPONSE_FIELDS = [
  'include',
  'instructions',
  'max_output_tokens',
  'max_tool_calls',
  'parallel_tool_calls',
  'prompt_cache_key',
  'prompt_cache_retention',
  'reasoning',
  'safety_identifier',
  'service_tier',
  'store',
  'stream_options',
  'temperature',
  'text',
  'tool_choice',
  'top_logprobs',
  'top_p',
  'truncation',
  'user',
] as const;

const anything = (names: readonly string[]) =>
  Object.fromEntries(names.map((name) => [name, { description: 'Accepted and ignored.' }]));

const modelSchema = { type: 'string', minLength: 1, description: 'The agent to run (name or id).' } as const;
const metadataSchema = { type: 'object', additionalProperties: { type: 'string' } } as const;
const openAIErrorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        param: { type: ['string', 'null'] },
        code: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
} as const;
const anyJson = { type: 'object', additionalProperties: true } as const;
const responses = (what: string) => ({
  200: { ...anyJson, description: `${what}, or server-sent events when \`stream: true\`.` },
  '4xx': { ...openAIErrorSchema, description: 'An error with a stable `code`.' },
  '5xx': { ...openAIErrorSchema, description: 'An error with a stable `code`.' },
});

interface ChatBody {
  model: string;
  messages: { role: string; content?: unknown }[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  n?: number | null;
  metadata?: Record<string, string> | null;
  tools?: unknown[] | null;
  functions?: unknown[] | null;
  function_call?: unknown;
}

interface ResponsesBody {
  model: string;
  input: string | { role?: string; type?: string; content?: unknown }[];
  stream?: boolean;
  previous_response_id?: string | null;
  metadata?: Record<string, string> | null;
  tools?: unknown[] | null;
  background?: boolean | null;
  conversation?: unknown;
  prompt?: unknown;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The OpenAI-shaped error body: `type`/`param` for OpenAI clients, our `code` and `details` kept. */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string;
    details: Record<string, unknown>;
  };
}

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** Maps any error like the server does, then reshapes the body the way OpenAI clients read it. */
function toOpenAIError(err: unknown): { status: number; body: OpenAIErrorBody; internal: boolean } {
  const { status, body, internal } = toErrorAnswer(err);
  const field = body.error.details['field'];
  return {
    status,
    internal,
    body: {
      error: {
        message: body.error.message,
        type: errorType(status),
        param: typeof field === 'string' ? field : null,
        code: body.error.code,
        details: body.error.details,
      },
    },
  };
}

function handleOpenAIError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body, internal } = toOpenAIError(err);
  if (internal) request.log.error({ err }, 'unhandled error');
  void reply.code(status).send(body);
}

/** The error a run ended with, as an AgentPoolError (its code is kept when it is a catalogue code). */
function runError(run: RunRecord): AgentPoolError {
  const code = run.error?.code ?? 'INTERNAL_ERROR';
  const message = run.error?.message ?? `run ended ${run.status}`;
  const known: ErrorCode = Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'INTERNAL_ERROR';
  return new AgentPoolError(known, message, { runId: run.id, status: run.status });
}

// ---------------------------------------------------------------------------------------------
// Input

/** The text of an OpenAI message content: a string, or the text parts of an array. */
function textOf(field: string, content: unknown, partTypes: readonly string[]): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    let text = '';
    for (const [i, part] of content.entries()) {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (
        p === null ||
        typeof p !== 'object' ||
        !partTypes.includes(String(p.type)) ||
        typeof p.text !== 'string'
      ) {
        throw validationError(
          `${field}[${i}]`,
          `must be a text part (${partTypes.join(' or ')}); other parts are not supported`,
        );
      }
      text += p.text;
    }
    return text;
  }
  throw validationError(field, 'must be a string or an array of text parts');
}

function rejectIfSet(field: string, value: unknown, why: string): void {
  const set = Array.isArray(value)
    ? value.length > 0
    : value !== undefined && value !== null && value !== false;
  if (set) throw validationError(field, `is not supported: ${why}`);
}

function chatInput(body: ChatBody): string {
  rejectIfSet('tools', body.tools, "the agent's own tools are used");
  rejectIfSet('functions', body.functions, "the agent's own tools are used");
  rejectIfSet('function_call', body.function_call, "the agent's own tools are used");
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw validationError('n', 'must be 1');
  const i = body.messages.length - 1;
  const last = body.messages[i];
  if (last?.role !== 'user') {
    throw validationError(`messages[${i}].role`, 'must be "user": the last message is the agent\'s input');
  }
  return textOf(`messages[${i}].content`, last.content, ['text']);
}

function responsesInput(body: ResponsesBody): string {
  rejectIfSet('tools', body.tools, "the agent's own tools are used");
  rejectIfSet('background', body.background, 'responses run in the foreground');
  rejectIfSet('conversation', body.conversation, 'use previous_response_id');
  rejectIfSet('prompt', body.prompt, "the agent's own instructions are used");
  if (typeof body.input === 'string') return body.input;
  const i = body.input.length - 1;
  const last = body.input[i];
  if (last === undefined || last.role !== 'user' || (last.type !== undefined && last.type !== 'message')) {
    throw validationError(`input[${i}]`, "must be a user message: the last input item is the agent's input");
  }
  return textOf(`input[${i}].content`, last.content, ['input_text', 'text']);
}

/** The thread a response continues: that of `previous_response_id`'s run, or a new one. */
async function responseThread(
  { pool, project }: RouteContext,
  previous: string | null | undefined,
): Promise<string> {
  if (previous === undefined || previous === null) return (await pool.threads.create(project)).id;
  const notFound = () =>
    new AgentPoolError('RUN_NOT_FOUND', `previous_response_id ${JSON.stringify(previous)} not found`, {
      field: 'previous_response_id',
    });
  if (!previous.startsWith('resp_')) throw notFound();
  let run: RunRecord;
  try {
    run = await pool.runs.get(project, previous.slice('resp_'.length));
  } catch (err) {
    if (err instanceof AgentPoolError && err.code === 'RUN_NOT_FOUND') throw notFound();
    throw err;
  }
  if (run.threadId === null) throw validationError('previous_response_id', 'names a run without a thread');
  return run.threadId;
}

// ---------------------------------------------------------------------------------------------
// Running

/** OpenAI's finish reasons for the AI SDK's unified ones. */
function finishReason(unified: string): 'stop' | 'length' | 'content_filter' {
  if (unified === 'length') return 'length';
  if (unified === 'content-filter') return 'content_filter';
  return 'stop';
}

interface Outcome {
  run: RunRecord;
  /** The last step's finish reason (AI SDK's unified value). */
  finish: string;
}

/** Waits for the run, noting its last step's finish reason; a failed run throws its error. */
async function waitFor(handle: RunHandle, signal: AbortSignal): Promise<Outcome> {
  let finish = 'stop';
  for await (const event of handle.stream.events(0, signal)) {
    if (event.type === 'step.finished') finish = event.finishReason;
  }
  const run = await handle.result;
  if (run.status !== 'succeeded') throw runError(run);
  return { run, finish };
}

/**
 * The run's events, read ahead up to the first one past `run.started`: a run that fails before it
 * produced anything throws here, so the client gets a real HTTP error instead of a broken stream.
 */
async function openEvents(handle: RunHandle, signal: AbortSignal): Promise<AsyncIterable<RunEvent>> {
  const events = handle.stream.events(0, signal);
  const head: RunEvent[] = [];
  for (;;) {
    const next = await events.next();
    if (next.done === true) break;
    head.push(next.value);
    if (next.value.type === 'run.failed') {
      await events.return(undefined);
      throw runError(next.value.run);
    }
    if (next.value.type !== 'run.started') break;
  }
  return (async function* () {
    yield* head;
    yield* events;
  })();
}

/** Takes over the reply and writes `chunks` (complete SSE blocks), honouring backpressure. */
async function pipeSse(
  reply: FastifyReply,
  chunks: AsyncIterable<string>,
  signal: AbortSignal,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  try {
    for await (const chunk of chunks) {
      if (signal.aborted || res.destroyed) break;
      if (!res.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            signal.removeEventListener('abort', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
          signal.addEventListener('abort', done, { once: true });
        });
      }
    }
  } catch (err) {
    reply.log.error({ err }, 'openai-compatible stream failed');
  } finally {
    if (!res.destroyed) res.end();
  }
}

const seconds = (ms: number | null) => Math.floor((ms ?? Date.now()) / 1000);

// ---------------------------------------------------------------------------------------------
// Chat completions

function chatCompletion({ run, finish }: Outcome) {
  return {
    id: `chatcmpl-${run.id}`,
    object: 'chat.completion',
    created: seconds(run.createdAt),
    model: run.agentName,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: run.output ?? '', refusal: null },
        logprobs: null,
        finish_reason: finishReason(finish),
      },
    ],
    usage: {
      prompt_tokens: run.inputTokens,
      completion_tokens: run.outputTokens,
      total_tokens: run.inputTokens + run.outputTokens,
    },
  };
}

async function* chatChunks(
  accepted: RunRecord,
  events: AsyncIterable<RunEvent>,
  includeUsage: boolean,
): AsyncGenerator<string> {
  const base = {
    id: `chatcmpl-${accepted.id}`,
    object: 'chat.completion.chunk',
    created: seconds(accepted.createdAt),
    model: accepted.agentName,
    system_fingerprint: null,
  };
  const data = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    data({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage && { usage: null }),
    });
  yield chunk({ role: 'assistant', content: '' }, null);
  let finish = 'stop';
  for await (const event of events) {
    if (event.type === 'text.delta' && event.delta !== '') yield chunk({ content: event.delta }, null);
    else if (event.type === 'step.finished') finish = event.finishReason;
    else if (event.type === 'run.finished') {
      yield chunk({}, finishReason(finish));
      if (includeUsage) {
        const { inputTokens, outputTokens } = event.run;
        const usage = {
          prompt_tokens: inputTokens,
          completion_tokens: outputTokens,
          total_tokens: inputTokens + outputTokens,
        };
        yield data({ ...base, choices: [], usage });
      }
      yield 'data: [DONE]\n\n';
      return;
    } else if (event.type === 'run.failed') {
      yield data(toOpenAIError(runError(event.run)).body);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

type ResponseStatus = 'in_progress' | 'completed' | 'failed' | 'incomplete';

function messageItem(run: RunRecord, text: string, status: 'in_progress' | 'completed') {
  return {
    type: 'message',
    id: `msg_${run.id}`,
    role: 'assistant',
    status,
    content: status === 'in_progress' ? [] : [outputText(text)],
  };
}

const outputText = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });

function responseObject(
  run: RunRecord,
  status: ResponseStatus,
  options: { text?: string; previous: string | null; finish?: string },
) {
  const done = status === 'completed' || status === 'incomplete';
  return {
    id: `resp_${run.id}`,
    object: 'response',
    created_at: seconds(run.createdAt),
    status,
    background: false,
    error: status === 'failed' ? { code: runError(run).code, message: runError(run).message } : null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: null,
    max_output_tokens: null,
    metadata: run.metadata,
    model: run.agentName,
    output: done ? [messageItem(run, options.text ?? run.output ?? '', 'completed')] : [],
    parallel_tool_calls: false,
    previous_response_id: options.previous,
    store: true,
    temperature: null,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: null,
    truncation: 'disabled',
    usage:
      status === 'in_progress'
        ? null
        : {
            input_tokens: run.inputTokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: run.outputTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: run.inputTokens + run.outputTokens,
          },
  };
}

async function* responseEvents(
  accepted: RunRecord,
  events: AsyncIterable<RunEvent>,
  previous: string | null,
): AsyncGenerator<string> {
  let seq = 0;
  const sse = (type: string, fields: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`;
  const at = { item_id: `msg_${accepted.id}`, output_index: 0, content_index: 0 };
  yield sse('response.created', { response: responseObject(accepted, 'in_progress', { previous }) });
  yield sse('response.in_progress', { response: responseObject(accepted, 'in_progress', { previous }) });
  yield sse('response.output_item.added', {
    output_index: 0,
    item: messageItem(accepted, '', 'in_progress'),
  });
  yield sse('response.content_part.added', { ...at, part: outputText('') });
  let text = '';
  let finish = 'stop';
  for await (const event of events) {
    if (event.type === 'text.delta' && event.delta !== '') {
      text += event.delta;
      yield sse('response.output_text.delta', { ...at, delta: event.delta, logprobs: [] });
    } else if (event.type === 'step.finished') finish = event.finishReason;
    else if (event.type === 'run.finished') {
      const status = finishReason(finish) === 'length' ? 'incomplete' : 'completed';
      yield sse('response.output_text.done', { ...at, text, logprobs: [] });
      yield sse('response.content_part.done', { ...at, part: outputText(text) });
      yield sse('response.output_item.done', {
        output_index: 0,
        item: messageItem(accepted, text, 'completed'),
      });
      yield sse(`response.${status}`, { response: responseObject(event.run, status, { text, previous }) });
      return;
    } else if (event.type === 'run.failed') {
      yield sse('response.failed', { response: responseObject(event.run, 'failed', { previous }) });
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Registers `POST /v1/chat/completions` and `POST /v1/responses`. */
export function registerOpenAICompatRoutes(app: FastifyInstance, context: RouteContext): void {
  const { pool, project } = context;

  app.post<{ Body: ChatBody }>(
    '/v1/chat/completions',
    {
      errorHandler: handleOpenAIError,
      schema: {
        tags,
        summary: 'OpenAI-compatible chat completion (model = agent)',
        description:
          "`model` names the agent. The last message must be a `user` message and is the run's input; earlier messages are ignored (the run is stateless) and the agent's instructions replace any system message. Sampling and similar fields are accepted and ignored; client-side tools and `n > 1` are rejected. `stream: true` answers with `chat.completion.chunk` events and `data: [DONE]`.",
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['model', 'messages'],
          properties: {
            model: modelSchema,
            messages: {
              type: 'array',
              minItems: 1,
              items: {
                type: 'object',
                required: ['role'],
                additionalProperties: true,
                properties: { role: { type: 'string' } },
              },
            },
            stream: { type: ['boolean', 'null'] },
            stream_options: {
              type: ['object', 'null'],
              additionalProperties: true,
              properties: { include_usage: { type: 'boolean' } },
            },
            n: { type: ['integer', 'null'] },
            metadata: { anyOf: [metadataSchema, { type: 'null' }] },
            tools: { type: ['array', 'null'] },
            functions: { type: ['array', 'null'] },
            function_call: {},
            ...anything(IGNORED_CHAT_FIELDS),
          },
        },
        response: responses('A `chat.completion`'),
      },
    },
    async (request, reply) => {
      const body = request.body;
      const input = chatInput(body);
      const signal = clientGone(reply);
      const handle = await pool.runs.start(project, body.model, {
        input,
        signal,
        ...(body.metadata !== undefined && body.metadata !== null && { metadata: body.metadata }),
      });
      if (body.stream === true) {
        const events = await openEvents(handle, signal);
        const includeUsage = body.stream_options?.include_usage === true;
        await pipeSse(reply, chatChunks(handle.accepted, events, includeUsage), signal);
        return reply;
      }
      return reply.send(chatCompletion(await waitFor(handle, signal)));
    },
  );

  app.post<{ Body: ResponsesBody }>(
    '/v1/responses',
    {
      errorHandler: handleOpenAIError,
      schema: {
        tags,
        summary: 'OpenAI-compatible response (model = agent)',
        description:
          "`model` names the agent; `input` is the user's message (a string, or items whose last one is a user message). Each response runs on a thread: `previous_response_id` continues the thread of that response, otherwise a new thread is created. The agent's instructions replace `instructions`; sampling and similar fields are accepted and ignored; client-side tools, `background`, `conversation` and `prompt` are rejected. `stream: true` answers with the Responses event sequence.",
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['model', 'input'],
          properties: {
            model: modelSchema,
            input: {
              anyOf: [
                { type: 'string' },
                {
                  type: 'array',
                  minItems: 1,
                  items: { type: 'object', additionalProperties: true },
                },
              ],
            },
            stream: { type: ['boolean', 'null'] },
            previous_response_id: { type: ['string', 'null'] },
            metadata: { anyOf: [metadataSchema, { type: 'null' }] },
            tools: { type: ['array', 'null'] },
            background: { type: ['boolean', 'null'] },
            conversation: {},
            prompt: {},
            ...anything(IGNORED_RESPONSE_FIELDS),
          },
        },
        response: responses('A `response`'),
      },
    },
    async (request, reply) => {
      const body = request.body;
      const input = responsesInput(body);
      const threadId = await responseThread(context, body.previous_response_id);
      const previous = body.previous_response_id ?? null;
      const signal = clientGone(reply);
      let handle: RunHandle;
      try {
        handle = await pool.runs.start(project, body.model, {
          input,
          threadId,
          signal,
          ...(body.metadata !== undefined && body.metadata !== null && { metadata: body.metadata }),
        });
      } catch (err) {
        // A thread created for this request must not outlive a run that never started.
        if (previous === null) await pool.threads.delete(project, threadId).catch(() => undefined);
        throw err;
      }
      if (body.stream === true) {
        const events = await openEvents(handle, signal);
        await pipeSse(reply, responseEvents(handle.accepted, events, previous), signal);
        return reply;
      }
      const { run, finish } = await waitFor(handle, signal);
      const status = finishReason(finish) === 'length' ? 'incomplete' : 'completed';
      return reply.send(responseObject(run, status, { previous }));
    },
  );
}

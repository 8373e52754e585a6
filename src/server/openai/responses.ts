/**
 * `POST /v1/responses` (the OpenAI Responses API) where `model` names an agent. The input is
 * `input` (a string, or the text of the last item, which must be a user message). Every response
 * runs on a thread: the first call creates one, and `previous_response_id` (`resp_<runId>`)
 * continues the thread of that run, so nothing is stored beyond the runs themselves.
 */
import type { FastifyInstance } from 'fastify';
import { AgentPoolError, validationError } from '../../core/errors.ts';
import type { RunHandle } from '../../run/runs.ts';
import type { RunEvent } from '../../run/stream.ts';
import type { RunRecord } from '../../store/ports.ts';
import type { RouteContext } from '../context.ts';
import { clientGone, streamSse } from '../sse.ts';
import {
  anything,
  finishReason,
  handleOpenAIError,
  metadataSchema,
  modelSchema,
  openEvents,
  rejectIfSet,
  responses,
  runError,
  seconds,
  tags,
  textOf,
  waitFor,
} from './shared.ts';

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
  { pool }: RouteContext,
  project: string,
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

/** Registers `POST /v1/responses`. */
export function registerResponsesRoutes(app: FastifyInstance, context: RouteContext): void {
  const { pool } = context;

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
      const threadId = await responseThread(context, request.project, body.previous_response_id);
      const previous = body.previous_response_id ?? null;
      const signal = clientGone(reply);
      let handle: RunHandle;
      try {
        handle = await pool.runs.start(request.project, body.model, {
          input,
          threadId,
          signal,
          ...(body.metadata !== undefined && body.metadata !== null && { metadata: body.metadata }),
        });
      } catch (err) {
        // A thread created for this request must not outlive a run that never started.
        if (previous === null) await pool.threads.delete(request.project, threadId).catch(() => undefined);
        throw err;
      }
      if (body.stream === true) {
        const events = await openEvents(handle, signal);
        await streamSse(reply, responseEvents(handle.accepted, events, previous), signal);
        return reply;
      }
      const { run, finish } = await waitFor(handle, signal);
      const status = finishReason(finish) === 'length' ? 'incomplete' : 'completed';
      return reply.send(responseObject(run, status, { previous }));
    },
  );
}

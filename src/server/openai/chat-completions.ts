/**
 * `POST /v1/chat/completions` where `model` names an agent. The run's input is the last message,
 * which must be a `user` message; earlier messages are ignored (the run is stateless, and the
 * agent's own instructions replace any `system`/`developer` message). Streaming answers
 * `chat.completion.chunk` events ending with `[DONE]`.
 */
import type { FastifyInstance } from 'fastify';
import { validationError } from '../../core/errors.ts';
import type { RunEvent } from '../../run/stream.ts';
import type { RunRecord } from '../../store/ports.ts';
import type { RouteContext } from '../context.ts';
import { clientGone, streamSse } from '../sse.ts';
import {
  type Outcome,
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
  toOpenAIError,
  waitFor,
} from './shared.ts';

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

/** Registers `POST /v1/chat/completions`. */
export function registerChatCompletionRoutes(app: FastifyInstance, context: RouteContext): void {
  const { pool } = context;

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
      const handle = await pool.runs.start(request.project, body.model, {
        input,
        signal,
        ...(body.metadata !== undefined && body.metadata !== null && { metadata: body.metadata }),
      });
      if (body.stream === true) {
        const events = await openEvents(handle, signal);
        const includeUsage = body.stream_options?.include_usage === true;
        await streamSse(reply, chatChunks(handle.accepted, events, includeUsage), signal);
        return reply;
      }
      return reply.send(chatCompletion(await waitFor(handle, signal)));
    },
  );
}

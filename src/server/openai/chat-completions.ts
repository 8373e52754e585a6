/**
 * `POST /v1/chat/completions` where `model` names an agent: one stateless run per request, as
 * stateless as OpenAI's (nothing is kept beyond the run record). The whole `messages` array
 * reaches the model: `system`/`developer` messages are added after the agent's instructions, the
 * other turns are its history, the last message (a user's text, or tool results) its input.
 * Client `tools` are offered next to the agent's own; when the model calls one, the answer carries
 * the `tool_calls` (finish `tool_calls`) and the client continues with the results. Streaming
 * answers `chat.completion.chunk` events ending with `[DONE]`.
 */
import type { FastifyInstance } from 'fastify';
import type { RunHandle } from '../../run/runs.ts';
import type { RunEvent } from '../../run/stream.ts';
import type { RunRecord } from '../../store/ports.ts';
import type { RouteContext } from '../context.ts';
import { clientGone, streamSse } from '../sse.ts';
import { type ChatMessage, type ChatRequestFields, chatRun } from './chat-request.ts';
import {
  INFORMATIONAL_FIELDS,
  looseProperties,
  type NeutralRule,
  onlyUnset,
  refuseUnneutral,
  unsetOr,
  unsetOrBlank,
  unsetOrEmpty,
} from './fields.ts';
import {
  type ClientCall,
  type Outcome,
  failedError,
  finishReason,
  handleOpenAIError,
  metadataSchema,
  modelSchema,
  openEvents,
  renamed,
  responses,
  seconds,
  tags,
  toOpenAIError,
  waitFor,
} from './shared.ts';

/** Fields honoured only at their neutral value, and why no other value can be. */
const NEUTRAL_FIELDS: Record<string, NeutralRule> = {
  n: unsetOr([1], 'an agent gives one answer per request'),
  logprobs: unsetOr([false], 'log probabilities are not returned'),
  top_logprobs: unsetOr([0], 'log probabilities are not returned'),
  logit_bias: unsetOrBlank('token biases are not passed to the model'),
  parallel_tool_calls: unsetOr([true], 'the model may always call several tools at once'),
  store: unsetOr([false], 'chat completions are not stored for retrieval; use /v1/responses'),
  modalities: {
    neutral: (v) => v == null || (Array.isArray(v) && v.every((m) => m === 'text')),
    why: 'agents answer with text only',
  },
  audio: onlyUnset('agents answer with text only'),
  prediction: onlyUnset('predicted outputs are not passed to the model'),
  reasoning_effort: onlyUnset("the agent's model settings decide reasoning"),
  verbosity: onlyUnset('verbosity is not passed to the model'),
  web_search_options: onlyUnset('use an agent with a search tool'),
  functions: unsetOrEmpty('use tools'),
  function_call: unsetOr(['none', 'auto'], 'use tool_choice'),
};

const number = (minimum: number, maximum: number) => ({ type: ['number', 'null'], minimum, maximum });
const tokens = { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 };

interface ChatBody extends ChatRequestFields {
  model: string;
  messages: ChatMessage[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  metadata?: Record<string, string> | null;
  [field: string]: unknown;
}

const toolCall = ({ toolCallId, toolName, input }: ClientCall) => ({
  id: toolCallId,
  type: 'function' as const,
  function: { name: toolName, arguments: JSON.stringify(input) },
});

function chatCompletion({ run, finish, text, toolCalls }: Outcome) {
  return {
    id: `chatcmpl-${run.id}`,
    object: 'chat.completion',
    created: seconds(run.createdAt),
    model: run.agentName,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          // OpenAI's shape: no content beside tool calls unless the model said something.
          content: toolCalls.length > 0 && text === '' ? null : text,
          refusal: null,
          ...(toolCalls.length > 0 && { tool_calls: toolCalls.map(toolCall) }),
        },
        logprobs: null,
        finish_reason: finishReason(finish, toolCalls.length),
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
  let calls = 0;
  for await (const event of events) {
    if (event.type === 'text.delta' && event.delta !== '') yield chunk({ content: event.delta }, null);
    else if (event.type === 'tool.call' && event.client === true) {
      // Each call arrives whole (the run knows it once the model call ended): one chunk per call.
      yield chunk({ tool_calls: [{ index: calls++, ...toolCall(event) }] }, null);
    } else if (event.type === 'step.finished') finish = event.finishReason;
    else if (event.type === 'run.finished') {
      yield chunk({}, finishReason(finish, calls));
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
      yield data(toOpenAIError(failedError(event)).body);
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
          "`model` names the agent. Stateless: the whole `messages` array reaches the model — `system`/`developer` messages are added after the agent's instructions, earlier turns are history, and the last message (user text, or `tool` messages answering the previous answer's `tool_calls`) is the input. Content is text only. Client `tools` (functions) are offered next to the agent's own tools; a call of one ends the run and is answered as `tool_calls` with finish `tool_calls`. `tool_choice`, `response_format` (`json_object`, `json_schema`), `temperature`, `top_p`, `max_completion_tokens`/`max_tokens` (never above the agent's `maxTokens`), `stop`, `seed` and the penalties reach the model. Fields that cannot be honoured (`n > 1`, `logprobs`, audio …) are refused with 400 naming them. `stream: true` answers with `chat.completion.chunk` events and `data: [DONE]`.",
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
              additionalProperties: false,
              properties: { include_usage: { type: 'boolean' }, include_obfuscation: { type: 'boolean' } },
            },
            metadata: { anyOf: [metadataSchema, { type: 'null' }] },
            tools: {
              type: ['array', 'null'],
              maxItems: 128,
              items: {
                type: 'object',
                required: ['type'],
                properties: {
                  type: { type: 'string' },
                  function: {
                    type: 'object',
                    required: ['name'],
                    additionalProperties: false,
                    properties: {
                      name: { type: 'string' },
                      description: { type: 'string' },
                      parameters: { type: 'object' },
                      strict: { type: ['boolean', 'null'] },
                    },
                  },
                },
              },
            },
            tool_choice: {},
            response_format: {
              type: ['object', 'null'],
              required: ['type'],
              properties: {
                type: { type: 'string' },
                json_schema: {
                  type: 'object',
                  required: ['name'],
                  properties: {
                    name: { type: 'string', minLength: 1 },
                    description: { type: 'string' },
                    schema: { type: 'object' },
                    strict: { type: ['boolean', 'null'] },
                  },
                },
              },
            },
            temperature: number(0, 2),
            top_p: number(0, 1),
            presence_penalty: number(-2, 2),
            frequency_penalty: number(-2, 2),
            max_tokens: tokens,
            max_completion_tokens: tokens,
            stop: {
              anyOf: [
                { type: 'string' },
                { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1 } },
                { type: 'null' },
              ],
            },
            seed: { type: ['integer', 'null'] },
            ...looseProperties(
              Object.keys(NEUTRAL_FIELDS),
              'Accepted only at its neutral value (400 otherwise).',
            ),
            ...looseProperties(INFORMATIONAL_FIELDS, 'Accepted: it cannot change the answer.'),
          },
        },
        response: responses('A `chat.completion`'),
      },
    },
    async (request, reply) => {
      const body = request.body;
      refuseUnneutral(body, NEUTRAL_FIELDS);
      const { options, field } = chatRun(body);
      const signal = clientGone(reply);
      let handle: RunHandle;
      try {
        handle = await pool.runs.start(request.project, body.model, {
          ...options,
          signal,
          ...(body.metadata != null && { metadata: body.metadata }),
        });
      } catch (err) {
        throw renamed(err, field);
      }
      try {
        if (body.stream === true) {
          const events = await openEvents(handle, signal);
          const includeUsage = body.stream_options?.include_usage === true;
          await streamSse(reply, chatChunks(handle.accepted, events, includeUsage), signal);
          return reply;
        }
        return reply.send(chatCompletion(await waitFor(handle, signal)));
      } catch (err) {
        throw renamed(err, field);
      }
    },
  );
}

/**
 * The OpenAI Responses API where `model` names an agent. `POST /v1/responses` runs the agent on a
 * thread: the first call creates one, and `previous_response_id` (`resp_<runId>`) continues the
 * thread of that run, so nothing is stored beyond the runs and their messages. `store: false`
 * keeps nothing: the turn runs statelessly (reading the previous response's thread, appending
 * nothing) and its run record keeps only its accounting, so it cannot be retrieved or continued.
 * `GET /v1/responses/{id}` rebuilds a stored response from its run and the run's thread messages.
 */
import type { FastifyInstance } from 'fastify';
import { AgentPoolError } from '../../core/errors.ts';
import type { AgentPool } from '../../agent-pool.ts';
import { isPlainObject } from '../../core/options.ts';
import type { RunHandle } from '../../run/runs.ts';
import type { RunEvent } from '../../run/stream.ts';
import type { MessageRecord, RunRecord } from '../../store/ports.ts';
import type { RouteContext } from '../context.ts';
import { clientGone, streamSse } from '../sse.ts';
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
  DEFAULT_ECHO,
  type Echo,
  finishedStatus,
  functionCallItem,
  messageItem,
  outputItems,
  outputText,
  type ResponseStatus,
  responseObject,
} from './response-object.ts';
import {
  type FunctionTool,
  type InputItem,
  responsesRun,
  type ResponsesRequestFields,
} from './responses-request.ts';
import {
  type ClientCall,
  handleOpenAIError,
  metadataSchema,
  modelSchema,
  openEvents,
  renamed,
  outcomeOf,
  responses,
  tags,
} from './shared.ts';

/** Fields honoured only at their neutral value, and why no other value can be. */
const NEUTRAL_FIELDS: Record<string, NeutralRule> = {
  background: unsetOr([false], 'responses run in the foreground'),
  conversation: onlyUnset('use previous_response_id'),
  prompt: onlyUnset("prompt templates are not supported; the agent's instructions are its prompt"),
  include: unsetOrEmpty('no extra output data is returned'),
  reasoning: unsetOrBlank("the agent's model settings decide reasoning"),
  max_tool_calls: onlyUnset('the agent definition bounds its steps (maxSteps)'),
  top_logprobs: unsetOr([0], 'log probabilities are not returned'),
  parallel_tool_calls: unsetOr([true], 'the model may always call several tools at once'),
  // A thread's history is bounded by runs.historyLimit either way; neither value changes that.
  truncation: unsetOr(['disabled', 'auto'], 'truncation is "disabled" or "auto"'),
};

const number = (minimum: number, maximum: number) => ({ type: ['number', 'null'], minimum, maximum });

interface ResponsesBody extends ResponsesRequestFields {
  model: string;
  input: string | InputItem[];
  stream?: boolean | null;
  store?: boolean | null;
  previous_response_id?: string | null;
  metadata?: Record<string, string> | null;
  [field: string]: unknown;
}

/** The run behind `resp_<runId>`, if it is a stored response of the project: one on a thread. */
async function responseRun(pool: AgentPool, project: string, id: string, field: string): Promise<RunRecord> {
  const notFound = () =>
    new AgentPoolError('RUN_NOT_FOUND', `response ${JSON.stringify(id)} not found`, {
      field,
      responseId: id,
    });
  if (!id.startsWith('resp_')) throw notFound();
  try {
    const run = await pool.runs.get(project, id.slice('resp_'.length));
    // Chat completions and `store: false` responses run without a thread: nothing to continue.
    if (run.threadId === null) throw notFound();
    return run;
  } catch (err) {
    if (err instanceof AgentPoolError && err.code === 'RUN_NOT_FOUND') throw notFound();
    throw err;
  }
}

function echoOf(body: ResponsesBody): Echo {
  return {
    instructions: body.instructions ?? null,
    maxOutputTokens: body.max_output_tokens ?? null,
    temperature: body.temperature ?? null,
    topP: body.top_p ?? null,
    tools: (body.tools ?? []).map((t: FunctionTool) => ({
      strict: null,
      description: null,
      parameters: null,
      ...t,
    })),
    toolChoice: body.tool_choice ?? 'auto',
    format: body.text?.format ?? { type: 'text' },
    store: body.store !== false,
    previous: body.previous_response_id ?? null,
  };
}

async function* responseEvents(
  handle: RunHandle,
  events: AsyncIterable<RunEvent>,
  echo: Echo,
): AsyncGenerator<string> {
  const accepted = handle.accepted;
  const runId = accepted.id;
  let seq = 0;
  const sse = (type: string, fields: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`;
  const at = (index: number) => ({ item_id: `msg_${runId}`, output_index: index, content_index: 0 });
  yield sse('response.created', { response: responseObject(accepted, 'in_progress', [], echo) });
  yield sse('response.in_progress', { response: responseObject(accepted, 'in_progress', [], echo) });
  const output: Record<string, unknown>[] = [];
  // The message item opens with the first text and closes before any function call or at the end.
  let text = '';
  let open: number | undefined;
  const calls: ClientCall[] = [];
  function* openMessage() {
    open = output.length;
    output.push(messageItem(runId, '', 'in_progress'));
    yield sse('response.output_item.added', {
      output_index: open,
      item: messageItem(runId, '', 'in_progress'),
    });
    yield sse('response.content_part.added', { ...at(open), part: outputText('') });
  }
  function* closeMessage() {
    if (open === undefined) return;
    const item = messageItem(runId, text, 'completed');
    output[open] = item;
    yield sse('response.output_text.done', { ...at(open), text, logprobs: [] });
    yield sse('response.content_part.done', { ...at(open), part: outputText(text) });
    yield sse('response.output_item.done', { output_index: open, item });
    open = undefined;
  }
  let finish = 'stop';
  for await (const event of events) {
    if (event.type === 'text.delta' && event.delta !== '') {
      if (open === undefined) yield* openMessage();
      text += event.delta;
      yield sse('response.output_text.delta', { ...at(open ?? 0), delta: event.delta, logprobs: [] });
    } else if (event.type === 'tool.call' && event.client === true) {
      yield* closeMessage();
      const index = output.length;
      const n = calls.push(event) - 1;
      const item = functionCallItem(runId, n, event, 'completed');
      output.push(item);
      const ids = { item_id: item.id, output_index: index };
      yield sse('response.output_item.added', {
        output_index: index,
        item: functionCallItem(runId, n, event, 'in_progress'),
      });
      yield sse('response.function_call_arguments.delta', { ...ids, delta: item.arguments });
      yield sse('response.function_call_arguments.done', {
        ...ids,
        name: item.name,
        arguments: item.arguments,
      });
      yield sse('response.output_item.done', { output_index: index, item });
    } else if (event.type === 'step.finished') finish = event.finishReason;
    else if (event.type === 'run.finished') {
      if (output.length === 0) yield* openMessage(); // an empty answer is still a message
      yield* closeMessage();
      const status = finishedStatus(event.run, finish, calls.length);
      await handle.result; // a `store: false` run has blanked its record before the client hears it ended
      yield sse(`response.${status}`, { response: responseObject(event.run, status, output, echo) });
      return;
    } else if (event.type === 'run.failed') {
      yield sse('response.failed', { response: responseObject(event.run, 'failed', output, echo) });
      return;
    }
  }
}

/**
 * The messages `run` appended to its thread, and the run whose message came right before them
 * (the response it continued). Reads the thread from its start, a page at a time, up to the run.
 */
async function threadView(
  pool: AgentPool,
  run: RunRecord,
): Promise<{ messages: MessageRecord[]; previous: string | null }> {
  const threadId = run.threadId as string;
  const messages: MessageRecord[] = [];
  let previous: string | null = null;
  let cursor: string | undefined;
  for (;;) {
    const page = await pool.threads.messages(run.project, threadId, {
      limit: 1000,
      ...(cursor !== undefined && { cursor }),
    });
    for (const m of page.data) {
      if (m.runId === run.id) messages.push(m);
      else if (messages.length > 0) return { messages, previous };
      else previous = m.runId;
    }
    if (page.nextCursor === null) return { messages, previous };
    cursor = page.nextCursor;
  }
}

/** The output a stored run ended with: its answer, or the text and client calls it stopped at. */
function storedOutput(run: RunRecord, messages: readonly MessageRecord[]) {
  if (run.output !== null) return outputItems(run.id, run.output, []);
  const answered = new Set<string>();
  for (const m of messages) {
    if (m.role !== 'tool' || !Array.isArray(m.content)) continue;
    for (const part of m.content as unknown[])
      if (isPlainObject(part) && typeof part['toolCallId'] === 'string') answered.add(part['toolCallId']);
  }
  const last = messages.findLast((m) => m.role === 'assistant');
  const parts = Array.isArray(last?.content) ? (last.content as unknown[]).filter(isPlainObject) : [];
  const text = parts.flatMap((p) => (p['type'] === 'text' ? [String(p['text'])] : [])).join('');
  const calls: ClientCall[] = parts.flatMap((p) =>
    p['type'] === 'tool-call' && !answered.has(String(p['toolCallId']))
      ? [{ toolCallId: String(p['toolCallId']), toolName: String(p['toolName']), input: p['input'] }]
      : [],
  );
  return outputItems(run.id, text, calls);
}

const STORED_STATUS: Record<RunRecord['status'], ResponseStatus> = {
  queued: 'queued',
  running: 'in_progress',
  succeeded: 'completed',
  failed: 'failed',
  interrupted: 'failed',
  cancelled: 'cancelled',
};

/** Registers `POST /v1/responses` and `GET /v1/responses/{id}`. */
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
          "`model` names the agent. `input` is a string or items: messages (text only; `system`/`developer` ones are added to the instructions), `function_call` and `function_call_output` items; its end (a user message, or `function_call_output` items answering the previous response's calls) is the run's input, the rest earlier turns. Each response runs on a thread: `previous_response_id` continues the thread of that response, otherwise a new thread is created. `instructions` is added after the agent's instructions for this response only. Function `tools` are offered next to the agent's own; a call of one ends the response with `function_call` items. `tool_choice`, `text.format` (`json_object`, `json_schema`), `max_output_tokens` (never above the agent's `maxTokens`), `temperature` and `top_p` reach the model. `store: false` keeps nothing: the response cannot be retrieved or continued. Fields that cannot be honoured are refused with 400 naming them. `stream: true` answers with the Responses event sequence.",
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['model', 'input'],
          properties: {
            model: modelSchema,
            input: {
              anyOf: [
                { type: 'string' },
                { type: 'array', minItems: 1, items: { type: 'object', additionalProperties: true } },
              ],
            },
            instructions: { type: ['string', 'null'], maxLength: 100_000 },
            stream: { type: ['boolean', 'null'] },
            stream_options: {
              type: ['object', 'null'],
              additionalProperties: false,
              properties: { include_obfuscation: { type: 'boolean' } },
            },
            store: { type: ['boolean', 'null'] },
            previous_response_id: { type: ['string', 'null'] },
            metadata: { anyOf: [metadataSchema, { type: 'null' }] },
            tools: {
              type: ['array', 'null'],
              maxItems: 128,
              items: {
                type: 'object',
                required: ['type'],
                properties: {
                  type: { type: 'string' },
                  name: { type: 'string' },
                  description: { type: ['string', 'null'] },
                  parameters: { type: ['object', 'null'] },
                  strict: { type: ['boolean', 'null'] },
                },
              },
            },
            tool_choice: {},
            text: {
              type: ['object', 'null'],
              additionalProperties: false,
              properties: {
                format: {
                  type: ['object', 'null'],
                  required: ['type'],
                  properties: {
                    type: { type: 'string' },
                    name: { type: 'string' },
                    description: { type: 'string' },
                    schema: { type: 'object' },
                    strict: { type: ['boolean', 'null'] },
                  },
                },
                verbosity: { enum: ['medium', null] },
              },
            },
            temperature: number(0, 2),
            top_p: number(0, 1),
            max_output_tokens: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
            ...looseProperties(
              Object.keys(NEUTRAL_FIELDS),
              'Accepted only at its neutral value (400 otherwise).',
            ),
            ...looseProperties(INFORMATIONAL_FIELDS, 'Accepted: it cannot change the answer.'),
          },
        },
        response: responses('A `response`'),
      },
    },
    async (request, reply) => {
      const body = request.body;
      refuseUnneutral(body, NEUTRAL_FIELDS);
      const { options, field } = responsesRun(body);
      const store = body.store !== false;
      const previous = body.previous_response_id ?? null;
      const previousRun =
        previous === null
          ? undefined
          : await responseRun(pool, request.project, previous, 'previous_response_id');
      // A stored response needs a thread to live on; one that keeps nothing only reads the previous one's.
      const threadId =
        previousRun?.threadId ?? (store ? (await pool.threads.create(request.project)).id : undefined);
      const signal = clientGone(reply);
      let handle: RunHandle;
      try {
        handle = await pool.runs.start(request.project, body.model, {
          ...options,
          ...(threadId != null && { threadId }),
          store,
          signal,
          ...(body.metadata != null && { metadata: body.metadata }),
        });
      } catch (err) {
        // A thread created for this request must not outlive a run that never started.
        if (previousRun === undefined && threadId != null) {
          await pool.threads.delete(request.project, threadId).catch(() => undefined);
        }
        throw renamed(err, field);
      }
      const echo = echoOf(body);
      try {
        if (body.stream === true) {
          const events = await openEvents(handle, signal);
          await streamSse(reply, responseEvents(handle, events, echo), signal);
          return reply;
        }
        const { run, finish, text, toolCalls } = await outcomeOf(handle, handle.stream.events(0, signal));
        const status = finishedStatus(run, finish, toolCalls.length);
        return reply.send(responseObject(run, status, outputItems(run.id, text, toolCalls), echo));
      } catch (err) {
        throw renamed(err, field);
      }
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/responses/:id',
    {
      errorHandler: handleOpenAIError,
      schema: {
        tags,
        summary: 'Retrieve a response',
        description:
          "A stored response, rebuilt from its run and the run's thread messages: status, output, usage, metadata and `previous_response_id`. Request parameters (instructions, tools, sampling) are not kept and come back as their defaults. 404 for an unknown id, a chat completion's run, or a `store: false` response.",
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        response: responses('A `response`'),
      },
    },
    async (request, reply) => {
      const run = await responseRun(pool, request.project, request.params.id, 'id');
      const { messages, previous } = await threadView(pool, run);
      const status = STORED_STATUS[run.status];
      const output = status === 'completed' ? storedOutput(run, messages) : [];
      const echo = { ...DEFAULT_ECHO, previous: previous === null ? null : `resp_${previous}` };
      return reply.send(responseObject(run, status, output, echo));
    },
  );
}

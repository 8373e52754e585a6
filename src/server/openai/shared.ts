/**
 * What the OpenAI-compatible endpoints share: request-schema pieces, OpenAI-shaped errors, reading
 * text out of OpenAI message content, and waiting for or streaming a run.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AgentPoolError, ERROR_CODES, type ErrorCode, validationError } from '../../core/errors.ts';
import type { RunHandle, StartRunOptions } from '../../run/runs.ts';
import type { RunEvent } from '../../run/stream.ts';
import type { RunRecord } from '../../store/ports.ts';
import { setRetryAfter, toErrorAnswer } from '../error-handler.ts';

/** The OpenAPI tag of these routes. */
export const tags = ['openai'];

/** `model`: the agent to run. */
export const modelSchema = {
  type: 'string',
  minLength: 1,
  description: 'The agent to run (name or id).',
} as const;
/** `metadata`: string values, kept on the run. */
export const metadataSchema = { type: 'object', additionalProperties: { type: 'string' } } as const;
/** The OpenAI error body. */
export const openAIErrorSchema = {
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
/** A JSON object, documented loosely. */
export const anyJson = { type: 'object', additionalProperties: true } as const;
/** The documented answers of a route returning `what`. */
export const responses = (what: string) => ({
  200: { ...anyJson, description: `${what}, or server-sent events when \`stream: true\`.` },
  '4xx': { ...openAIErrorSchema, description: 'An error with a stable `code`.' },
  '5xx': { ...openAIErrorSchema, description: 'An error with a stable `code`.' },
});

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

/** OpenAI's error `type` for an HTTP status. */
export function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** Maps any error like the server does, then reshapes the body the way OpenAI clients read it. */
export function toOpenAIError(err: unknown): { status: number; body: OpenAIErrorBody; internal: boolean } {
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

/** The error handler of these routes: our code and status, in OpenAI's shape. */
export function handleOpenAIError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body, internal } = toOpenAIError(err);
  if (internal) request.log.error({ err }, 'unhandled error');
  setRetryAfter(reply, body.error.details);
  void reply.code(status).send(body);
}

/**
 * The error a run ended with, as an AgentPoolError (its code is kept when it is a catalogue code);
 * `details` from its `run.failed` event (a refused option's `field`) are kept too.
 */
export function runError(run: RunRecord, details: Record<string, unknown> = {}): AgentPoolError {
  const code = run.error?.code ?? 'INTERNAL_ERROR';
  const message = run.error?.message ?? `run ended ${run.status}`;
  const known: ErrorCode = Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'INTERNAL_ERROR';
  return new AgentPoolError(known, message, { ...details, runId: run.id, status: run.status });
}

/** The error of a `run.failed` event, with its details. */
export function failedError(event: Extract<RunEvent, { type: 'run.failed' }>): AgentPoolError {
  return runError(event.run, event.error.details);
}

// ---------------------------------------------------------------------------------------------
// Input

/** Renames the field of a run-layer validation error to the request field it came from. */
export function renamed(err: unknown, field: (runField: string) => string): unknown {
  if (!(err instanceof AgentPoolError) || err.code !== 'VALIDATION_FAILED') return err;
  const from = err.details['field'];
  if (typeof from !== 'string') return err;
  const to = field(from);
  if (to === from) return err;
  const message = err.message.startsWith(from) ? `${to}${err.message.slice(from.length)}` : err.message;
  return new AgentPoolError('VALIDATION_FAILED', message, { ...err.details, field: to }, { cause: err });
}

/**
 * The text of an OpenAI message content: a string, or the text parts of an array (a `refusal`
 * part's text is its `refusal`). Images, audio and files are refused: agents take text only.
 */
export function textOf(field: string, content: unknown, partTypes: readonly string[]): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    let text = '';
    for (const [i, part] of content.entries()) {
      const p = part as { type?: unknown; text?: unknown; refusal?: unknown } | null;
      const type = p !== null && typeof p === 'object' ? String(p.type) : undefined;
      const value = type === 'refusal' ? p?.refusal : p?.text;
      if (type === undefined || !partTypes.includes(type) || typeof value !== 'string') {
        const kind = type === undefined ? 'not a content part' : `a "${type}" part`;
        throw validationError(
          `${field}[${i}]`,
          `is ${kind}: only text (${partTypes.join(' or ')}) is supported, not images, audio or files`,
        );
      }
      text += value;
    }
    return text;
  }
  throw validationError(field, 'must be a string or an array of text parts');
}

/** A call of one of the client's functions that a run stopped at. */
export interface ClientCall {
  readonly toolCallId: string;
  readonly toolName: string;
  readonly input: unknown;
}

/** OpenAI's finish reason: `tool_calls` when the run stopped at client calls, else the last step's. */
export function finishReason(
  unified: string,
  clientCalls: number,
): 'stop' | 'length' | 'content_filter' | 'tool_calls' {
  if (clientCalls > 0) return 'tool_calls';
  if (unified === 'length') return 'length';
  if (unified === 'content-filter') return 'content_filter';
  return 'stop';
}

/** A finished run, what its last model call said, and how it ended. */
export interface Outcome {
  run: RunRecord;
  /** The last step's finish reason (AI SDK's unified value). */
  finish: string;
  /** The last model call's text: the answer, or what came with the client calls. */
  text: string;
  /** The client calls the run stopped at; empty when it answered. */
  toolCalls: ClientCall[];
}

/** Follows a run's events to its end, keeping what an answer needs; a failed run throws its error. */
export async function outcomeOf(handle: RunHandle, events: AsyncIterable<RunEvent>): Promise<Outcome> {
  let finish = 'stop';
  let step = 0;
  let text = '';
  const toolCalls: ClientCall[] = [];
  for await (const event of events) {
    if (event.type === 'text.delta') {
      if (event.step !== step) [step, text] = [event.step, ''];
      text += event.delta;
    } else if (event.type === 'tool.call' && event.client === true) {
      toolCalls.push({ toolCallId: event.toolCallId, toolName: event.toolName, input: event.input });
    } else if (event.type === 'step.finished') {
      finish = event.finishReason;
      if (event.step !== step) [step, text] = [event.step, ''];
    } else if (event.type === 'run.failed') throw failedError(event);
  }
  const run = await handle.result;
  if (run.status !== 'succeeded') throw runError(run);
  return { run, finish, text: run.output ?? text, toolCalls };
}

/** Waits for the run; a failed run throws its error. */
export function waitFor(handle: RunHandle, signal: AbortSignal): Promise<Outcome> {
  return outcomeOf(handle, handle.stream.events(0, signal));
}

/**
 * The run's events, read ahead up to the first one past `run.started`: a run that fails before it
 * produced anything throws here, so the client gets a real HTTP error instead of a broken stream.
 */
export async function openEvents(handle: RunHandle, signal: AbortSignal): Promise<AsyncIterable<RunEvent>> {
  const events = handle.stream.events(0, signal);
  const head: RunEvent[] = [];
  for (;;) {
    const next = await events.next();
    if (next.done === true) break;
    head.push(next.value);
    if (next.value.type === 'run.failed') {
      await events.return(undefined);
      throw failedError(next.value);
    }
    if (next.value.type !== 'run.started') break;
  }
  return (async function* () {
    yield* head;
    yield* events;
  })();
}

/** The run options an OpenAI request becomes, and how to name the request field behind a run-layer field. */
export interface RequestRun {
  readonly options: Pick<
    StartRunOptions,
    'input' | 'history' | 'instructions' | 'clientTools' | 'toolResults' | 'settings'
  >;
  /** The request field a run-layer error field (`history[2]…`, `clientTools[0].name` …) came from. */
  readonly field: (runField: string) => string;
}

/** Epoch seconds, as OpenAI reports times. */
export const seconds = (ms: number | null) => Math.floor((ms ?? Date.now()) / 1000);

// ---------------------------------------------------------------------------------------------
// Chat completions

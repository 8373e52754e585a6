/**
 * The Responses API's `response` object and its output items, built from a run: the answer as a
 * `message` item, the client calls it stopped at as `function_call` items, and the request
 * parameters echoed back as OpenAI does.
 */
import type { RunRecord } from '../../store/ports.ts';
import { type ClientCall, runError, seconds } from './shared.ts';

/** A response's status, as the Responses API names them. */
export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'incomplete' | 'cancelled';

/** The request parameters a response echoes; GET, which has no request, echoes the defaults. */
export interface Echo {
  readonly instructions: string | null;
  readonly maxOutputTokens: number | null;
  readonly temperature: number | null;
  readonly topP: number | null;
  readonly tools: readonly unknown[];
  readonly toolChoice: unknown;
  readonly format: unknown;
  readonly store: boolean;
  readonly previous: string | null;
}

/** The echo of a request that set nothing. */
export const DEFAULT_ECHO: Echo = {
  instructions: null,
  maxOutputTokens: null,
  temperature: null,
  topP: null,
  tools: [],
  toolChoice: 'auto',
  format: { type: 'text' },
  store: true,
  previous: null,
};

/** The `output_text` content part. */
export const outputText = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });

/** The answer's `message` item. */
export function messageItem(runId: string, text: string, status: 'in_progress' | 'completed') {
  return {
    type: 'message',
    id: `msg_${runId}`,
    role: 'assistant',
    status,
    content: status === 'in_progress' ? [] : [outputText(text)],
  };
}

/** A client call's `function_call` item; `n` numbers the calls of the response. */
export function functionCallItem(
  runId: string,
  n: number,
  call: ClientCall,
  status: 'in_progress' | 'completed',
) {
  return {
    type: 'function_call',
    id: `fc_${runId}_${n}`,
    call_id: call.toolCallId,
    name: call.toolName,
    arguments: status === 'in_progress' ? '' : JSON.stringify(call.input),
    status,
  };
}

/** The output items of a finished run: its text (when there is some, or nothing else), then its client calls. */
export function outputItems(runId: string, text: string, calls: readonly ClientCall[]) {
  const items: Record<string, unknown>[] = [];
  if (text !== '' || calls.length === 0) items.push(messageItem(runId, text, 'completed'));
  calls.forEach((call, n) => items.push(functionCallItem(runId, n, call, 'completed')));
  return items;
}

/** The `response` object of a run. */
export function responseObject(run: RunRecord, status: ResponseStatus, output: unknown[], echo: Echo) {
  const finished = status !== 'queued' && status !== 'in_progress';
  const error = status === 'failed' ? runError(run) : undefined;
  return {
    id: `resp_${run.id}`,
    object: 'response',
    created_at: seconds(run.createdAt),
    status,
    background: false,
    error: error === undefined ? null : { code: error.code, message: error.message },
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: echo.instructions,
    max_output_tokens: echo.maxOutputTokens,
    metadata: run.metadata,
    model: run.agentName,
    output,
    parallel_tool_calls: true,
    previous_response_id: echo.previous,
    store: echo.store,
    temperature: echo.temperature,
    text: { format: echo.format },
    tool_choice: echo.toolChoice,
    tools: echo.tools,
    top_p: echo.topP,
    truncation: 'disabled',
    usage: finished
      ? {
          input_tokens: run.inputTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: run.outputTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: run.inputTokens + run.outputTokens,
        }
      : null,
  };
}

/** The status of a finished run's response. */
export function finishedStatus(run: RunRecord, finish: string, calls: number): ResponseStatus {
  if (run.status === 'cancelled') return 'cancelled';
  if (run.status !== 'succeeded') return 'failed';
  return finish === 'length' && calls === 0 ? 'incomplete' : 'completed';
}

/**
 * What a run is asked to do beyond its agent and thread, checked in one step: the user's text, a
 * caller's earlier turns and instructions, client tools and their results, call settings and
 * whether anything is kept. `RunManager.start` resolves it before it touches anything.
 */
import { newId } from '../core/ids.ts';
import { validationError } from '../core/errors.ts';
import { boolOption } from '../core/options.ts';
import { SPEC_LIMITS } from '../registry/definition.ts';
import type { NewMessage } from '../store/ports.ts';
import { type CallSettings, resolveCallSettings } from './call-settings.ts';
import {
  type ClientTool,
  type ClientToolResult,
  parseClientTools,
  parseToolResults,
  parseTurns,
  type Turn,
} from './conversation.ts';
import { type ToolContent, toolMessage, userMessage } from './messages.ts';

/** The longest user input, in characters. */
export const MAX_INPUT_CHARS = 100_000;

/** The fields of `StartRunOptions` this file checks. */
export interface RunRequestOptions {
  input?: string;
  history?: readonly Turn[];
  instructions?: string;
  clientTools?: readonly ClientTool[];
  toolResults?: readonly ClientToolResult[];
  settings?: CallSettings;
  store?: boolean;
}

/** A checked run request. */
export interface RunRequest {
  /** The user's message; undefined when the run continues with tool results only. */
  readonly text: string | undefined;
  readonly turns: readonly Turn[];
  /** Added after the agent's instructions; '' for none. */
  readonly instructions: string;
  readonly clientTools: readonly ClientTool[];
  readonly toolResults: readonly ClientToolResult[];
  readonly settings: CallSettings;
  /** False: nothing is kept past the run. */
  readonly store: boolean;
  /**
   * What the run record's `input` holds: the user's text, or, for a run that continues with tool
   * results only, those results as JSON (`[{"toolCallId":…,"output":…}]`), so the record still
   * says what the run was given.
   */
  readonly recordInput: string;
}

/** Checks the request fields of a run's options; every error names its field. */
export function resolveRunRequest(options: RunRequestOptions): RunRequest {
  const text = options.input as unknown;
  const toolResults = options.toolResults === undefined ? [] : parseToolResults(options.toolResults);
  if (text !== undefined || toolResults.length === 0) {
    if (typeof text !== 'string' || text.length === 0 || text.length > MAX_INPUT_CHARS) {
      throw validationError(
        'input',
        `must be a string of 1 to ${MAX_INPUT_CHARS} characters${toolResults.length === 0 ? ' (or give toolResults)' : ''}`,
      );
    }
  }
  const instructions = options.instructions as unknown;
  if (
    instructions !== undefined &&
    (typeof instructions !== 'string' || instructions.length > SPEC_LIMITS.instructionsLength)
  ) {
    throw validationError(
      'instructions',
      `must be a string of at most ${SPEC_LIMITS.instructionsLength} characters`,
    );
  }
  return {
    text: text as string | undefined,
    turns: options.history === undefined ? [] : parseTurns(options.history),
    instructions: (instructions as string | undefined) ?? '',
    clientTools: options.clientTools === undefined ? [] : parseClientTools(options.clientTools),
    toolResults,
    settings: resolveCallSettings(options.settings),
    store: boolOption('store', options.store, true),
    recordInput: typeof text === 'string' ? text : JSON.stringify(toolResults),
  };
}

/** True when the run brings more than a user's text, so its conversation must be checked for tool-call pairing. */
export function bringsConversation(request: RunRequest): boolean {
  return request.turns.length > 0 || request.toolResults.length > 0;
}

/**
 * The messages a run adds after the conversation so far, in order: the caller's earlier turns,
 * the tool message carrying the tool results, the user's text.
 */
export function inputMessages(
  request: RunRequest,
  results: ToolContent | undefined,
  runId: string,
  now: number,
): NewMessage[] {
  const out: NewMessage[] = request.turns.map((turn) => ({
    id: newId('msg', now),
    role: turn.role,
    content: turn.content,
    runId,
    createdAt: now,
  }));
  if (results !== undefined) out.push(toolMessage(newId('msg', now), results, runId, now));
  if (request.text !== undefined) out.push(userMessage(newId('msg', now), request.text, runId, now));
  return out;
}

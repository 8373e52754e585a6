/**
 * How a run is started (`StartRunOptions`) and what it is asked to do beyond its agent and
 * thread, checked in one step: the user's text, a caller's earlier turns and instructions, client
 * tools and their results, call settings, and whether anything is kept. `RunManager.start`
 * resolves it before it touches anything.
 */
import { newId } from '../core/ids.ts';
import { validationError } from '../core/errors.ts';
import { INPUT_LIMITS } from '../core/input-limits.ts';
import { boolOption, rejectUnknownKeys } from '../core/options.ts';
import { SPEC_LIMITS } from '../registry/definition.ts';
import type { NewMessage } from '../store/ports.ts';
import type { MultitaskStrategy } from '../coordination/thread-gate.ts';
import type { CreateThreadOptions } from './threads.ts';
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

/** The longest user input, in characters (one of the caps in `core/input-limits.ts`). */
const MAX_INPUT_CHARS = INPUT_LIMITS.runInputChars;

/** How a run is started. */
export interface StartRunOptions {
  /**
   * The user's message (1 … 100,000 characters). May be left out when `toolResults` are given: the
   * run then continues the conversation with those results only, and its record's `input` holds
   * them as JSON.
   */
  input?: string;
  /** Run on this thread (its history is the model's context); stateless when absent. */
  threadId?: string;
  /**
   * Run on a new thread, created with these options (`{}` for none) in the run's first write: one
   * request and one transaction instead of `threads.create` and then the run. The run record's
   * `threadId` names it. Not with `threadId`, nor with `store: false`. A run refused before it is
   * written creates no thread.
   */
  thread?: CreateThreadOptions;
  /** When the thread is busy. @default 'reject' */
  multitask?: MultitaskStrategy;
  /** Free-form JSON kept on the run record (≤ 16 KiB, nesting ≤ 32 levels: `INPUT_LIMITS`). @default {} */
  metadata?: Record<string, unknown>;
  /** Cancels the run when aborted. */
  signal?: AbortSignal;
  /**
   * Earlier turns of the conversation, sent before the input (at most 10,000). A stateless run
   * only sends them; a run on a thread appends them to it with the input, as the conversation's
   * next messages. Every tool call in them must be answered before the next turn.
   * @default []
   */
  history?: readonly Turn[];
  /** System text sent after the agent's own instructions, for this run only. @default '' */
  instructions?: string;
  /**
   * Functions the caller runs itself, offered to the model next to the agent's tools (a name clash
   * is `VALIDATION_FAILED`). When a model call asks for any of them the run ends there,
   * `succeeded` with `output: null`: the calls are its result, published as `tool.call` events
   * with `client: true`. The caller runs them and starts the next run with `toolResults`.
   * @default []
   */
  clientTools?: readonly ClientTool[];
  /**
   * Results of the client tool calls the conversation stopped at (those of the last assistant
   * turn in `history`, or of the thread's last run); every open call must be answered. Sent
   * before `input`. @default []
   */
  toolResults?: readonly ClientToolResult[];
  /** Settings of the run's model calls (sampling, output cap, structured output, tool choice). @default {} */
  settings?: CallSettings;
  /**
   * False keeps nothing past the run: on a thread, its history is read but nothing is appended
   * (the run is recorded without a thread); when the run ends its record keeps only its
   * accounting (tokens, cost, times: budgets need them) with `input` and `metadata` blanked and
   * `output` null, and its events are not kept for replay. `handle.result` still has the output.
   * @default true
   */
  store?: boolean;
}

const START_FIELDS = [
  'input',
  'threadId',
  'thread',
  'multitask',
  'metadata',
  'signal',
  'history',
  'instructions',
  'clientTools',
  'toolResults',
  'settings',
  'store',
];

/** What a request leaves out, shared by every request (nothing changes them). */
const NONE: readonly never[] = Object.freeze([]);
const NO_SETTINGS: CallSettings = Object.freeze({});

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

/** Checks a run's options (all but `threadId`, `multitask`, `signal`, checked where used); every error names its field. */
export function resolveRunRequest(options: StartRunOptions): RunRequest {
  rejectUnknownKeys('', options, START_FIELDS);
  const text = options.input as unknown;
  const toolResults = options.toolResults === undefined ? NONE : parseToolResults(options.toolResults);
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
    turns: options.history === undefined ? NONE : parseTurns(options.history),
    instructions: (instructions as string | undefined) ?? '',
    clientTools: options.clientTools === undefined ? NONE : parseClientTools(options.clientTools),
    toolResults,
    settings: options.settings === undefined ? NO_SETTINGS : resolveCallSettings(options.settings),
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
  // A plain run's one message in an array of its size (a push would grow an empty one to 16 places).
  if (request.turns.length === 0 && results === undefined && request.text !== undefined)
    return [userMessage(newId('msg', now), request.text, runId, now)];
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

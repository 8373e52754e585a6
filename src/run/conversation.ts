/**
 * What a caller may bring to a run besides its input, as OpenAI-style clients do: earlier turns
 * of a conversation it keeps itself, functions it runs itself (client tools), and the results of
 * the client tool calls the previous turn stopped at. This file checks their shapes (errors name
 * the field) and how tool calls and results pair up, so the model is never sent a conversation a
 * provider would refuse.
 */
import type { JSONSchema7, LanguageModelV3FunctionTool, LanguageModelV3ToolChoice } from '@ai-sdk/provider';
import { validationError } from '../core/errors.ts';
import { isPlainObject, rejectUnknownKeys } from '../core/options.ts';
import type { AssistantContent, ToolContent, UserContent } from './messages.ts';

/** An earlier turn of a conversation, in the shapes messages are stored in. */
export type Turn =
  | { readonly role: 'user'; readonly content: UserContent }
  | { readonly role: 'assistant'; readonly content: AssistantContent }
  | { readonly role: 'tool'; readonly content: ToolContent };

/** A function the caller runs itself: offered to the model next to the agent's tools, never run by agentpool. */
export interface ClientTool {
  /** Matches `^[a-zA-Z0-9_-]{1,64}$`; unique, and not the name of one of the agent's tools. */
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of its arguments, an object. @default { type: 'object', properties: {} } */
  readonly parameters: JSONSchema7;
  /** Ask the provider to hold the arguments strictly to the schema. @default the provider's */
  readonly strict?: boolean;
}

/** The result of a client tool call: the text the caller's function returned. */
export interface ClientToolResult {
  /** The id of the call it answers: one the previous turn stopped at. */
  readonly toolCallId: string;
  readonly output: string;
}

/** Turns a run may be given at most. */
export const MAX_TURNS = 10_000;
/** Client tools, and tool results, a run may be given at most. */
export const MAX_CLIENT_TOOLS = 128;

const NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_ID_LENGTH = 256;

function list(field: string, value: unknown, max: number): unknown[] {
  if (!Array.isArray(value)) throw validationError(field, 'must be an array');
  if (value.length > max) throw validationError(field, `must hold at most ${max} items, got ${value.length}`);
  return value;
}

function object(field: string, value: unknown, keys: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(value)) throw validationError(field, 'must be an object');
  rejectUnknownKeys(`${field}.`, value, keys);
  return value;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string') throw validationError(field, 'must be a string');
  return value;
}

function id(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_ID_LENGTH) {
    throw validationError(field, `must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  }
  return value;
}

/** A JSON value, copied (so the caller cannot change it later). */
function json(field: string, value: unknown): unknown {
  try {
    const encoded = JSON.stringify(value);
    if (encoded !== undefined) return JSON.parse(encoded) as unknown;
  } catch {
    // not serialisable: reported below
  }
  throw validationError(field, 'must be a JSON value');
}

/** Checks earlier turns (`history[i]…` names a bad one) and returns copies. */
export function parseTurns(value: unknown, field = 'history'): Turn[] {
  return list(field, value, MAX_TURNS).map((item, i) => {
    const f = `${field}[${i}]`;
    const turn = object(f, item, ['role', 'content']);
    const parts = list(`${f}.content`, turn['content'], Number.MAX_SAFE_INTEGER);
    switch (turn['role']) {
      case 'user': {
        if (parts.length === 0) throw validationError(`${f}.content`, 'must hold at least one text part');
        const content = parts.map((p, j) => {
          if (isPlainObject(p) && p['type'] !== 'text') {
            throw validationError(`${f}.content[${j}].type`, 'must be "text": a user turn holds text only');
          }
          const part = object(`${f}.content[${j}]`, p, ['type', 'text']);
          return { type: 'text' as const, text: text(`${f}.content[${j}].text`, part['text']) };
        });
        return { role: 'user', content };
      }
      case 'assistant':
        return { role: 'assistant', content: parts.map((p, j) => assistantPart(`${f}.content[${j}]`, p)) };
      case 'tool': {
        if (parts.length === 0) throw validationError(`${f}.content`, 'must hold at least one tool result');
        return { role: 'tool', content: parts.map((p, j) => toolResultPart(`${f}.content[${j}]`, p)) };
      }
      default:
        throw validationError(`${f}.role`, 'must be "user", "assistant" or "tool"');
    }
  });
}

function assistantPart(field: string, value: unknown): AssistantContent[number] {
  if (isPlainObject(value) && value['type'] === 'text') {
    const part = object(field, value, ['type', 'text']);
    return { type: 'text', text: text(`${field}.text`, part['text']) };
  }
  const part = object(field, value, ['type', 'toolCallId', 'toolName', 'input']);
  if (part['type'] !== 'tool-call') throw validationError(`${field}.type`, 'must be "text" or "tool-call"');
  return {
    type: 'tool-call',
    toolCallId: id(`${field}.toolCallId`, part['toolCallId']),
    toolName: id(`${field}.toolName`, part['toolName']),
    input: json(`${field}.input`, part['input']),
  };
}

function toolResultPart(field: string, value: unknown): ToolContent[number] {
  const part = object(field, value, ['type', 'toolCallId', 'toolName', 'output']);
  if (part['type'] !== 'tool-result') throw validationError(`${field}.type`, 'must be "tool-result"');
  const output = object(`${field}.output`, part['output'], ['type', 'value']);
  const type = output['type'];
  const ids = {
    type: 'tool-result' as const,
    toolCallId: id(`${field}.toolCallId`, part['toolCallId']),
    toolName: id(`${field}.toolName`, part['toolName']),
  };
  if (type === 'text' || type === 'error-text') {
    return { ...ids, output: { type, value: text(`${field}.output.value`, output['value']) } };
  }
  if (type === 'json' || type === 'error-json') {
    return { ...ids, output: { type, value: json(`${field}.output.value`, output['value']) as never } };
  }
  throw validationError(`${field}.output.type`, 'must be "text", "json", "error-text" or "error-json"');
}

/** Checks client tools (`clientTools[i]…` names a bad one) and returns copies with defaults applied. */
export function parseClientTools(value: unknown, field = 'clientTools'): ClientTool[] {
  const seen = new Set<string>();
  return list(field, value, MAX_CLIENT_TOOLS).map((item, i) => {
    const f = `${field}[${i}]`;
    const tool = object(f, item, ['name', 'description', 'parameters', 'strict']);
    const name = tool['name'];
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw validationError(`${f}.name`, `must match ${NAME_PATTERN.source}, got ${JSON.stringify(name)}`);
    }
    if (seen.has(name)) throw validationError(`${f}.name`, `"${name}" is given twice`);
    seen.add(name);
    const { description, parameters, strict } = tool;
    if (description !== undefined) text(`${f}.description`, description);
    if (
      parameters !== undefined &&
      (!isPlainObject(parameters) || (parameters['type'] ?? 'object') !== 'object')
    ) {
      throw validationError(`${f}.parameters`, 'must be a JSON Schema of an object');
    }
    if (strict !== undefined && typeof strict !== 'boolean')
      throw validationError(`${f}.strict`, 'must be a boolean');
    return {
      name,
      ...(description !== undefined && { description: description as string }),
      parameters:
        parameters === undefined
          ? { type: 'object', properties: {} }
          : (json(`${f}.parameters`, parameters) as JSONSchema7),
      ...(strict !== undefined && { strict }),
    };
  });
}

/** Checks tool results (`toolResults[i]…` names a bad one) and returns copies. */
export function parseToolResults(value: unknown, field = 'toolResults'): ClientToolResult[] {
  const results = list(field, value, MAX_CLIENT_TOOLS);
  if (results.length === 0) throw validationError(field, 'must hold at least one result');
  return results.map((item, i) => {
    const result = object(`${field}[${i}]`, item, ['toolCallId', 'output']);
    return {
      toolCallId: id(`${field}[${i}].toolCallId`, result['toolCallId']),
      output: text(`${field}[${i}].output`, result['output']),
    };
  });
}

/** The client tools as the model is told of them. */
export function clientToolDefinitions(tools: readonly ClientTool[]): LanguageModelV3FunctionTool[] {
  return tools.map((t) => ({
    type: 'function',
    name: t.name,
    ...(t.description !== undefined && { description: t.description }),
    inputSchema: t.parameters,
    ...(t.strict !== undefined && { strict: t.strict }),
  }));
}

/**
 * Refuses client tools named like one of the agent's own (the model could not tell them apart),
 * and a tool choice naming a tool the run does not offer.
 */
export function checkToolNames(
  clientTools: readonly ClientTool[],
  agentTools: readonly { readonly name: string }[],
  toolChoice: LanguageModelV3ToolChoice | undefined,
): void {
  if (clientTools.length === 0 && toolChoice?.type !== 'tool') return; // nothing can clash
  const own = new Set(agentTools.map((t) => t.name));
  clientTools.forEach((tool, i) => {
    if (own.has(tool.name)) {
      throw validationError(
        `clientTools[${i}].name`,
        `"${tool.name}" is the name of one of the agent's own tools`,
      );
    }
  });
  if (toolChoice?.type === 'tool') {
    const name = toolChoice.toolName;
    if (!own.has(name) && !clientTools.some((t) => t.name === name)) {
      throw validationError('settings.toolChoice.toolName', `names no tool of this run: "${name}"`);
    }
  }
}

/** A message as far as pairing is concerned. */
interface Said {
  readonly role: string;
  readonly content: unknown;
}

function callsOf(content: unknown): { toolCallId: string; toolName: string }[] {
  if (!Array.isArray(content)) return [];
  return content.filter(
    (p): p is { type: 'tool-call'; toolCallId: string; toolName: string } =>
      isPlainObject(p) && p['type'] === 'tool-call',
  );
}

function resultIds(content: unknown): string[] {
  if (!Array.isArray(content)) return [];
  return content.flatMap((p) =>
    isPlainObject(p) && typeof p['toolCallId'] === 'string' ? [p['toolCallId']] : [],
  );
}

/**
 * The tool calls still waiting for a result at the end of `messages`, by id → tool name: those of
 * the last assistant message that no tool message after it answered. A user message after it
 * closes them (the prompt then answers them for the model; see `answerOpenCalls`).
 */
export function openToolCalls(messages: readonly Said[]): Map<string, string> {
  const open = new Map<string, string>();
  for (const m of messages) {
    if (m.role === 'tool') for (const id of resultIds(m.content)) open.delete(id);
    else {
      open.clear();
      for (const call of callsOf(m.content)) open.set(call.toolCallId, call.toolName);
    }
  }
  return open;
}

/**
 * Checks that every tool message of `turns` answers a call still open before it, that the calls
 * made within `turns` are answered before the conversation moves on, and that `results`, when
 * given, answer exactly the calls left open at the end. `openBefore` are the calls a thread left
 * open. Returns the tool message that carries `results` (names taken from the calls they answer).
 */
export function pairToolCalls(
  turns: readonly Turn[],
  results: readonly ClientToolResult[],
  openBefore: ReadonlyMap<string, string>,
): ToolContent | undefined {
  // A plain run (a user's text, nothing left open) has nothing to pair.
  if (turns.length === 0 && results.length === 0 && openBefore.size === 0) return undefined;
  let open = new Map(openBefore);
  // Calls made by a given turn must be answered; those a thread left open may be let go.
  let mustAnswer = false;
  const missing = () => [...open.keys()].join(', ');
  turns.forEach((turn, i) => {
    if (turn.role === 'tool') {
      turn.content.forEach((part, j) => {
        const name = open.get(part.toolCallId);
        const f = `history[${i}].content[${j}]`;
        if (name === undefined) {
          throw validationError(
            `${f}.toolCallId`,
            `answers no open tool call: ${JSON.stringify(part.toolCallId)} (open: ${missing() || 'none'})`,
          );
        }
        if (part.toolName !== name)
          throw validationError(`${f}.toolName`, `must be "${name}", the name of the call it answers`);
        open.delete(part.toolCallId);
      });
      return;
    }
    if (mustAnswer && open.size > 0) {
      throw validationError(
        `history[${i}]`,
        `comes before every tool call was answered: no result for ${missing()}`,
      );
    }
    open = new Map();
    mustAnswer = false;
    if (turn.role === 'assistant') {
      for (const call of callsOf(turn.content)) {
        if (open.has(call.toolCallId)) {
          throw validationError(
            `history[${i}].content`,
            `holds tool call ${JSON.stringify(call.toolCallId)} twice`,
          );
        }
        open.set(call.toolCallId, call.toolName);
      }
      mustAnswer = true;
    }
  });
  if (results.length === 0) {
    if (mustAnswer && open.size > 0) {
      throw validationError(
        'toolResults',
        `must answer the open tool calls of the last assistant turn: ${missing()}`,
      );
    }
    return undefined;
  }
  const content: ToolContent = results.map((result, i) => {
    const toolName = open.get(result.toolCallId);
    if (toolName === undefined) {
      throw validationError(
        `toolResults[${i}].toolCallId`,
        `answers no open tool call: ${JSON.stringify(result.toolCallId)} (open: ${missing() || 'none'})`,
      );
    }
    open.delete(result.toolCallId);
    return {
      type: 'tool-result',
      toolCallId: result.toolCallId,
      toolName,
      output: { type: 'text', value: result.output },
    };
  });
  if (open.size > 0)
    throw validationError('toolResults', `must answer every open tool call: no result for ${missing()}`);
  return content;
}

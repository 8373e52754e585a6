/**
 * Translates a `/v1/chat/completions` request into run options: `system`/`developer` messages
 * become extra instructions, the other turns history, and the last message the input (a user's
 * text, or the tool messages answering the calls the previous answer stopped at); `tools`,
 * `tool_choice`, `response_format` and sampling fields become client tools and call settings.
 * Errors name the request's own fields; errors the run layer raises are renamed to them.
 */
import type { JSONSchema7, LanguageModelV3ToolChoice } from '@ai-sdk/provider';
import { validationError } from '../../core/errors.ts';
import type { CallSettings, ResponseFormat } from '../../run/call-settings.ts';
import type { ClientTool, ClientToolResult, Turn } from '../../run/conversation.ts';
import type { AssistantContent } from '../../run/messages.ts';
import { type RequestRun, textOf } from './shared.ts';

/** A chat message as the route's schema lets it through. */
export interface ChatMessage {
  role: string;
  content?: unknown;
  name?: unknown;
  tool_calls?: unknown;
  tool_call_id?: unknown;
  function_call?: unknown;
  audio?: unknown;
  refusal?: unknown;
}

/** The request fields this file reads. */
export interface ChatRequestFields {
  messages: ChatMessage[];
  tools?:
    | {
        type: string;
        function?: { name: string; description?: string; parameters?: object; strict?: boolean | null };
      }[]
    | null;
  tool_choice?: unknown;
  response_format?: {
    type: string;
    json_schema?: { name: string; description?: string; schema?: object };
  } | null;
  temperature?: number | null;
  top_p?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
}

/** The run options of a chat request. */
export type ChatRun = RequestRun;

const SETTINGS_FIELDS: Record<string, string> = {
  temperature: 'temperature',
  topP: 'top_p',
  stopSequences: 'stop',
  seed: 'seed',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  responseFormat: 'response_format',
  toolChoice: 'tool_choice',
};

/** Translates a chat request; refuses what it cannot honour, naming the field. */
export function chatRun(body: ChatRequestFields): ChatRun {
  const { messages } = body;
  const instructions: string[] = [];
  // The conversation without its system messages, with each message's index in the request.
  const said: [number, ChatMessage][] = [];
  messages.forEach((m, i) => {
    if (m.role === 'system' || m.role === 'developer') {
      rejectName(i, m);
      instructions.push(textOf(`messages[${i}].content`, m.content, ['text']));
    } else said.push([i, m]);
  });
  const last = said.at(-1);
  if (last === undefined) throw validationError('messages', 'must hold a user message');
  let end = said.length;
  let input: string | undefined;
  if (last[1].role === 'user') {
    end--;
  } else if (last[1].role === 'tool') {
    while (end > 0 && said[end - 1]?.[1].role === 'tool') end--;
  } else {
    throw validationError(
      `messages[${last[0]}].role`,
      'must be "user" or "tool": the last message is the input',
    );
  }
  const names = new Map<string, string>();
  const history: Turn[] = [];
  const historyIndex: number[] = [];
  for (const [i, m] of said.slice(0, end)) {
    history.push(turn(i, m, names));
    historyIndex.push(i);
  }
  const results: ClientToolResult[] = [];
  const resultIndex: number[] = [];
  for (const [i, m] of said.slice(end)) {
    if (m.role === 'user') {
      rejectName(i, m);
      input = textOf(`messages[${i}].content`, m.content, ['text']);
    } else {
      results.push({
        toolCallId: toolCallId(i, m),
        output: textOf(`messages[${i}].content`, m.content, ['text']),
      });
      resultIndex.push(i);
    }
  }
  const options: ChatRun['options'] = {
    ...(input !== undefined && { input }),
    ...(history.length > 0 && { history }),
    ...(instructions.length > 0 && { instructions: instructions.join('\n\n') }),
    ...(results.length > 0 && { toolResults: results }),
    ...(body.tools != null && body.tools.length > 0 && { clientTools: clientTools(body.tools) }),
    settings: settings(body),
  };
  const lastIndex = messages.length - 1;
  const field = (runField: string): string => {
    const indexed = /^(history|toolResults|clientTools)\[(\d+)\](.*)$/.exec(runField);
    if (indexed !== null) {
      const [, list, n, rest] = indexed as unknown as [string, string, string, string];
      const k = Number(n);
      if (list === 'clientTools') return `tools[${k}]${rest === '.name' ? '.function.name' : ''}`;
      if (list === 'toolResults') return `messages[${resultIndex[k] ?? lastIndex}].tool_call_id`;
      return `messages[${historyIndex[k] ?? lastIndex}]`;
    }
    // Unanswered calls before the input name the input; results that miss some name the list.
    if (runField === 'toolResults') return results.length === 0 ? `messages[${lastIndex}]` : 'messages';
    if (runField === 'input') return `messages[${lastIndex}].content`;
    if (runField === 'instructions') return 'messages';
    const setting = /^settings\.(\w+)/.exec(runField)?.[1];
    if (setting === 'maxOutputTokens')
      return body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    return setting === undefined ? runField : (SETTINGS_FIELDS[setting] ?? runField);
  };
  return { options, field };
}

function rejectName(i: number, m: ChatMessage): void {
  if (m.name != null)
    throw validationError(
      `messages[${i}].name`,
      'is not supported: participant names are not sent to the model',
    );
}

function toolCallId(i: number, m: ChatMessage): string {
  if (typeof m.tool_call_id !== 'string' || m.tool_call_id === '') {
    throw validationError(`messages[${i}].tool_call_id`, 'must name the tool call this message answers');
  }
  return m.tool_call_id;
}

function turn(i: number, m: ChatMessage, names: Map<string, string>): Turn {
  rejectName(i, m);
  switch (m.role) {
    case 'user':
      return {
        role: 'user',
        content: [{ type: 'text', text: textOf(`messages[${i}].content`, m.content, ['text']) }],
      };
    case 'assistant':
      return { role: 'assistant', content: assistantContent(i, m, names) };
    case 'tool': {
      const id = toolCallId(i, m);
      const toolName = names.get(id);
      if (toolName === undefined) {
        throw validationError(
          `messages[${i}].tool_call_id`,
          `answers no tool call of an earlier assistant message: ${JSON.stringify(id)}`,
        );
      }
      const value = textOf(`messages[${i}].content`, m.content, ['text']);
      return {
        role: 'tool',
        content: [{ type: 'tool-result', toolCallId: id, toolName, output: { type: 'text', value } }],
      };
    }
    default:
      throw validationError(
        `messages[${i}].role`,
        'must be "system", "developer", "user", "assistant" or "tool"',
      );
  }
}

function assistantContent(i: number, m: ChatMessage, names: Map<string, string>): AssistantContent {
  if (m.function_call != null) {
    throw validationError(`messages[${i}].function_call`, 'is not supported: use tool_calls');
  }
  if (m.audio != null) throw validationError(`messages[${i}].audio`, 'is not supported: text only');
  const content: AssistantContent = [];
  const text = m.content == null ? '' : textOf(`messages[${i}].content`, m.content, ['text', 'refusal']);
  const refusal = typeof m.refusal === 'string' ? m.refusal : '';
  if (text + refusal !== '') content.push({ type: 'text', text: text + refusal });
  if (m.tool_calls == null) return content;
  if (!Array.isArray(m.tool_calls)) throw validationError(`messages[${i}].tool_calls`, 'must be an array');
  m.tool_calls.forEach((c: unknown, j) => {
    const f = `messages[${i}].tool_calls[${j}]`;
    const call = c as {
      id?: unknown;
      type?: unknown;
      function?: { name?: unknown; arguments?: unknown };
    } | null;
    if (call?.type !== 'function') throw validationError(`${f}.type`, 'must be "function"');
    if (typeof call.id !== 'string' || call.id === '')
      throw validationError(`${f}.id`, 'must be a non-empty string');
    const name = call.function?.name;
    if (typeof name !== 'string' || name === '')
      throw validationError(`${f}.function.name`, 'must be a non-empty string');
    content.push({
      type: 'tool-call',
      toolCallId: call.id,
      toolName: name,
      input: parseArguments(`${f}.function.arguments`, call.function?.arguments),
    });
    names.set(call.id, name);
  });
  return content;
}

/** A tool call's JSON-encoded arguments, decoded. */
export function parseArguments(field: string, value: unknown): unknown {
  if (typeof value !== 'string') throw validationError(field, 'must be a JSON-encoded string');
  if (value.trim() === '') return {};
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw validationError(field, 'must be valid JSON');
  }
}

function clientTools(tools: NonNullable<ChatRequestFields['tools']>): ClientTool[] {
  return tools.map((t, i) => {
    if (t.type !== 'function' || t.function === undefined) {
      throw validationError(`tools[${i}].type`, 'must be "function": other tool types are not supported');
    }
    const { name, description, parameters, strict } = t.function;
    return {
      name,
      ...(description !== undefined && { description }),
      parameters: (parameters ?? { type: 'object', properties: {} }) as JSONSchema7,
      ...(strict != null && { strict }),
    };
  });
}

function settings(body: ChatRequestFields): CallSettings {
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const format = responseFormat(body.response_format);
  const choice = toolChoice('tool_choice', body.tool_choice);
  return {
    ...(body.temperature != null && { temperature: body.temperature }),
    ...(body.top_p != null && { topP: body.top_p }),
    ...(maxTokens != null && { maxOutputTokens: maxTokens }),
    ...(stop !== undefined && stop.length > 0 && { stopSequences: stop }),
    ...(body.seed != null && { seed: body.seed }),
    ...(body.presence_penalty != null && { presencePenalty: body.presence_penalty }),
    ...(body.frequency_penalty != null && { frequencyPenalty: body.frequency_penalty }),
    ...(format !== undefined && { responseFormat: format }),
    ...(choice !== undefined && { toolChoice: choice }),
  };
}

function responseFormat(format: ChatRequestFields['response_format']): ResponseFormat | undefined {
  if (format == null || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json' };
  if (format.type === 'json_schema' && format.json_schema !== undefined) {
    const { name, description, schema } = format.json_schema;
    return {
      type: 'json',
      name,
      ...(description !== undefined && { description }),
      ...(schema !== undefined && { schema: schema as JSONSchema7 }),
    };
  }
  throw validationError(
    'response_format.type',
    'must be "text", "json_object" or "json_schema" (with json_schema)',
  );
}

/**
 * OpenAI's `tool_choice` (`none` | `auto` | `required` | `{ type: 'function', function: { name } }`,
 * or the Responses API's `{ type: 'function', name }`) as the run layer's.
 */
export function toolChoice(field: string, value: unknown): LanguageModelV3ToolChoice | undefined {
  if (value == null || value === 'auto') return undefined;
  if (value === 'none' || value === 'required') return { type: value };
  const choice = value as { type?: unknown; name?: unknown; function?: { name?: unknown } };
  const name = choice.function?.name ?? choice.name;
  if (typeof choice === 'object' && choice.type === 'function' && typeof name === 'string' && name !== '') {
    return { type: 'tool', toolName: name };
  }
  throw validationError(field, 'must be "none", "auto", "required" or a function to call by name');
}

/**
 * Translates a `/v1/responses` request into run options: `input` items (messages,
 * `function_call`, `function_call_output`) become earlier turns and the input, `system`/`developer`
 * items and `instructions` extra instructions, function `tools`, `tool_choice`, `text.format`,
 * `max_output_tokens` and sampling fields client tools and call settings. Errors name the
 * request's own fields; run-layer errors are renamed to them.
 */
import type { JSONSchema7 } from '@ai-sdk/provider';
import { validationError } from '../../core/errors.ts';
import type { CallSettings, ResponseFormat } from '../../run/call-settings.ts';
import type { ClientTool, ClientToolResult, Turn } from '../../run/conversation.ts';
import type { AssistantContent } from '../../run/messages.ts';
import { parseArguments, toolChoice } from './chat-request.ts';
import { type RequestRun, textOf } from './shared.ts';

/** An input item as the route's schema lets it through. */
export type InputItem = Record<string, unknown>;

/** A function tool of the request. */
export interface FunctionTool {
  type: string;
  name?: string;
  description?: string | null;
  parameters?: object | null;
  strict?: boolean | null;
}

/** `text.format` of the request. */
export interface TextFormat {
  type: string;
  name?: string;
  description?: string;
  schema?: object;
  strict?: boolean | null;
}

/** The request fields this file reads. */
export interface ResponsesRequestFields {
  input: string | InputItem[];
  instructions?: string | null;
  tools?: FunctionTool[] | null;
  tool_choice?: unknown;
  text?: { format?: TextFormat | null; verbosity?: string | null } | null;
  temperature?: number | null;
  top_p?: number | null;
  max_output_tokens?: number | null;
}

/** The run options of a responses request. */
export type ResponsesRun = RequestRun;

const SETTINGS_FIELDS: Record<string, string> = {
  temperature: 'temperature',
  topP: 'top_p',
  maxOutputTokens: 'max_output_tokens',
  responseFormat: 'text.format',
  toolChoice: 'tool_choice',
};

const USER_PARTS = ['input_text', 'text'];
const ASSISTANT_PARTS = ['output_text', 'text', 'refusal'];

const typeOf = (item: InputItem) => (item['type'] ?? 'message') as string;
const isUser = (item: InputItem) => typeOf(item) === 'message' && item['role'] === 'user';

/** Translates a responses request; refuses what it cannot honour, naming the field. */
export function responsesRun(body: ResponsesRequestFields): ResponsesRun {
  const items = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input;
  const instructions: string[] =
    body.instructions == null || body.instructions === '' ? [] : [body.instructions];
  // The input: a last user message, after the function_call_output items right before it.
  let end = items.length;
  let text: string | undefined;
  const last = items[end - 1];
  if (last !== undefined && isUser(last)) {
    end--;
    text = textOf(
      typeof body.input === 'string' ? 'input' : `input[${end}].content`,
      last['content'],
      USER_PARTS,
    );
  }
  while (end > 0 && typeOf(items[end - 1] as InputItem) === 'function_call_output') end--;
  if (text === undefined && end === items.length) {
    throw validationError(
      `input[${items.length - 1}]`,
      'must be a user message or function_call_output items: the end of input is the agent input',
    );
  }
  const history: Turn[] = [];
  const historyIndex: number[] = [];
  const names = new Map<string, string>();
  items.slice(0, end).forEach((item, i) => {
    const f = `input[${i}]`;
    const type = typeOf(item);
    if (type === 'message') {
      const role = item['role'];
      if (role === 'system' || role === 'developer')
        instructions.push(textOf(`${f}.content`, item['content'], USER_PARTS));
      else if (role === 'user') {
        push(
          {
            role: 'user',
            content: [{ type: 'text', text: textOf(`${f}.content`, item['content'], USER_PARTS) }],
          },
          i,
        );
      } else if (role === 'assistant') {
        const said = textOf(`${f}.content`, item['content'], ASSISTANT_PARTS);
        push({ role: 'assistant', content: said === '' ? [] : [{ type: 'text', text: said }] }, i);
      } else throw validationError(`${f}.role`, 'must be "user", "assistant", "system" or "developer"');
    } else if (type === 'function_call') {
      const callId = string(`${f}.call_id`, item['call_id']);
      const name = string(`${f}.name`, item['name']);
      const call = {
        type: 'tool-call' as const,
        toolCallId: callId,
        toolName: name,
        input: parseArguments(`${f}.arguments`, item['arguments']),
      };
      names.set(callId, name);
      // Function calls extend the assistant turn they follow, as one model answer holds them all.
      const previous = history.at(-1);
      if (previous?.role === 'assistant') (previous.content as AssistantContent).push(call);
      else push({ role: 'assistant', content: [call] }, i);
    } else if (type === 'function_call_output') {
      const callId = string(`${f}.call_id`, item['call_id']);
      const toolName = names.get(callId);
      if (toolName === undefined) {
        throw validationError(
          `${f}.call_id`,
          'answers no function_call before it in input; results of the previous response’s calls go at the end of input',
        );
      }
      const value = textOf(`${f}.output`, item['output'], USER_PARTS);
      push(
        {
          role: 'tool',
          content: [{ type: 'tool-result', toolCallId: callId, toolName, output: { type: 'text', value } }],
        },
        i,
      );
    } else {
      throw validationError(
        `${f}.type`,
        `is not supported: ${JSON.stringify(type)} (messages, function_call and function_call_output are)`,
      );
    }
  });
  function push(turn: Turn, i: number): void {
    history.push(turn);
    historyIndex.push(i);
  }
  const results: ClientToolResult[] = [];
  const resultIndex: number[] = [];
  items.slice(end, text === undefined ? items.length : items.length - 1).forEach((item, k) => {
    const i = end + k;
    results.push({
      toolCallId: string(`input[${i}].call_id`, item['call_id']),
      output: textOf(`input[${i}].output`, item['output'], USER_PARTS),
    });
    resultIndex.push(i);
  });
  const tools = body.tools ?? [];
  const options: ResponsesRun['options'] = {
    ...(text !== undefined && { input: text }),
    ...(history.length > 0 && { history }),
    ...(instructions.length > 0 && { instructions: instructions.join('\n\n') }),
    ...(results.length > 0 && { toolResults: results }),
    ...(tools.length > 0 && { clientTools: clientTools(tools) }),
    settings: settings(body),
  };
  const field = (runField: string): string => {
    const indexed = /^(history|toolResults|clientTools)\[(\d+)\](.*)$/.exec(runField);
    if (indexed !== null) {
      const [, list, n, rest] = indexed as unknown as [string, string, string, string];
      const k = Number(n);
      if (list === 'clientTools') return `tools[${k}]${rest === '.name' ? '.name' : ''}`;
      if (list === 'toolResults') return `input[${resultIndex[k] ?? items.length - 1}].call_id`;
      return `input[${historyIndex[k] ?? items.length - 1}]`;
    }
    if (runField === 'toolResults') {
      // Unanswered calls before the input name the input; results that miss some name the list.
      return results.length === 0 && typeof body.input !== 'string' ? `input[${items.length - 1}]` : 'input';
    }
    const setting = /^settings\.(\w+)/.exec(runField)?.[1];
    return setting === undefined ? runField : (SETTINGS_FIELDS[setting] ?? runField);
  };
  return { options, field };
}

function string(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw validationError(field, 'must be a non-empty string');
  return value;
}

function clientTools(tools: readonly FunctionTool[]): ClientTool[] {
  return tools.map((t, i) => {
    if (t.type !== 'function') {
      throw validationError(
        `tools[${i}].type`,
        `is not supported: ${JSON.stringify(t.type)} (function tools are; the agent brings its own)`,
      );
    }
    return {
      name: string(`tools[${i}].name`, t.name),
      ...(t.description != null && { description: t.description }),
      parameters: (t.parameters ?? { type: 'object', properties: {} }) as JSONSchema7,
      ...(t.strict != null && { strict: t.strict }),
    };
  });
}

function settings(body: ResponsesRequestFields): CallSettings {
  const format = responseFormat(body.text?.format);
  const choice = toolChoice('tool_choice', body.tool_choice);
  return {
    ...(body.temperature != null && { temperature: body.temperature }),
    ...(body.top_p != null && { topP: body.top_p }),
    ...(body.max_output_tokens != null && { maxOutputTokens: body.max_output_tokens }),
    ...(format !== undefined && { responseFormat: format }),
    ...(choice !== undefined && { toolChoice: choice }),
  };
}

function responseFormat(format: TextFormat | null | undefined): ResponseFormat | undefined {
  if (format == null || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json' };
  if (format.type === 'json_schema') {
    return {
      type: 'json',
      name: string('text.format.name', format.name),
      ...(format.description !== undefined && { description: format.description }),
      ...(format.schema !== undefined && { schema: format.schema as JSONSchema7 }),
    };
  }
  throw validationError('text.format.type', 'must be "text", "json_object" or "json_schema"');
}

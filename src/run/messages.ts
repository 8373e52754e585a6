/**
 * The content of stored messages and its conversion to the model's prompt. Messages are stored
 * in the provider-neutral shape of the AI SDK prompt (parts arrays), so building a prompt from a
 * thread is a copy, not a translation.
 */
import type {
  LanguageModelV3Message,
  LanguageModelV3Prompt,
  LanguageModelV3ToolCallPart,
  LanguageModelV3ToolResultPart,
} from '@ai-sdk/provider';
import type { MessageRecord, NewMessage } from '../store/ports.ts';

/** Text of a user message: one text part when agentpool writes it, several when a caller's turn had them. */
export type UserContent = { type: 'text'; text: string }[];
/** What an assistant message holds: text and the tool calls it asked for. */
export type AssistantContent = ({ type: 'text'; text: string } | LanguageModelV3ToolCallPart)[];
/** Results of the tool calls of the previous assistant message. */
export type ToolContent = LanguageModelV3ToolResultPart[];

/** A tool message answering the client tool calls a conversation stopped at. */
export function toolMessage(id: string, content: ToolContent, runId: string | null, now: number): NewMessage {
  return { id, role: 'tool', content, runId, createdAt: now };
}

/** A new user message. */
export function userMessage(id: string, text: string, runId: string | null, now: number): NewMessage {
  const content: UserContent = [{ type: 'text', text }];
  return { id, role: 'user', content, runId, createdAt: now };
}

/** A message as the prompt needs it: stored, pending, or a caller's turn. */
export type PromptMessage = Pick<MessageRecord | NewMessage, 'role' | 'content'>;

/**
 * Converts stored (or pending) messages, after the system instructions, into a model prompt. Each
 * non-empty instruction text becomes its own system message, in order (the agent's first).
 */
export function toPrompt(
  system: string | readonly string[],
  messages: readonly PromptMessage[],
): LanguageModelV3Prompt {
  const one = typeof system === 'string';
  let size = messages.length;
  // Indexed loops: no iterator object per loop; and no array made of a lone system text.
  if (one) size += system === '' ? 0 : 1;
  else for (let t = 0; t < system.length; t++) if (system[t] !== '') size++;
  // Sized at once: pushes would grow an empty array to 16 places, most of them never used.
  const prompt = new Array<LanguageModelV3Message>(size);
  let i = 0;
  if (one) {
    if (system !== '') prompt[i++] = { role: 'system', content: system };
  } else {
    for (let t = 0; t < system.length; t++) {
      const text = system[t] as string;
      if (text !== '') prompt[i++] = { role: 'system', content: text };
    }
  }
  for (let k = 0; k < messages.length; k++) {
    const m = messages[k] as PromptMessage;
    switch (m.role) {
      case 'system':
        prompt[i++] = { role: 'system', content: textOf(m.content) };
        break;
      case 'user':
        prompt[i++] = { role: 'user', content: m.content as UserContent };
        break;
      case 'assistant':
        prompt[i++] = { role: 'assistant', content: m.content as AssistantContent };
        break;
      case 'tool':
        prompt[i++] = { role: 'tool', content: m.content as ToolContent };
        break;
    }
  }
  prompt.length = i; // a message of no known role is left out, as before
  return prompt;
}

/** Whether a prompt message is an assistant's with a tool call (module-level: no closure per prompt). */
const callsTools = (m: LanguageModelV3Message): boolean =>
  m.role === 'assistant' && m.content.some(isToolCall);
const isToolCall = (p: { type: string }): boolean => p.type === 'tool-call';

/**
 * Answers, in the prompt only, tool calls left without a result before the conversation moved on
 * (a client that never sent the results of the calls a thread stopped at): providers refuse an
 * assistant tool call that no tool message answers, and the thread must stay usable.
 */
export function answerOpenCalls(prompt: LanguageModelV3Prompt): LanguageModelV3Prompt {
  // Most prompts carry no tool call at all: nothing to answer, nothing to copy.
  if (!prompt.some(callsTools)) return prompt;
  const out: LanguageModelV3Message[] = [];
  let open: LanguageModelV3ToolCallPart[] = [];
  const close = () => {
    if (open.length === 0) return;
    out.push({
      role: 'tool',
      content: open.map((call) => ({
        type: 'tool-result',
        toolCallId: call.toolCallId,
        toolName: call.toolName,
        output: { type: 'error-text', value: 'no result: the caller did not answer this call' },
      })),
    });
    open = [];
  };
  for (const m of prompt) {
    if (m.role === 'tool') {
      const answered = new Set(m.content.flatMap((p) => (p.type === 'tool-result' ? [p.toolCallId] : [])));
      open = open.filter((call) => !answered.has(call.toolCallId));
    } else {
      close();
      if (m.role === 'assistant') {
        open = m.content.filter((p): p is LanguageModelV3ToolCallPart => p.type === 'tool-call');
      }
    }
    out.push(m);
  }
  close();
  return out;
}

/** The plain text of a message's content (text parts joined). */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter(
      (p): p is { type: 'text'; text: string } => typeof p === 'object' && p !== null && p.type === 'text',
    )
    .map((p) => p.text)
    .join('');
}

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

/** Text of a user message. */
export type UserContent = [{ type: 'text'; text: string }];
/** What an assistant message holds: text and the tool calls it asked for. */
export type AssistantContent = ({ type: 'text'; text: string } | LanguageModelV3ToolCallPart)[];
/** Results of the tool calls of the previous assistant message. */
export type ToolContent = LanguageModelV3ToolResultPart[];

/** A new user message. */
export function userMessage(id: string, text: string, runId: string | null, now: number): NewMessage {
  const content: UserContent = [{ type: 'text', text }];
  return { id, role: 'user', content, runId, createdAt: now };
}

/** Converts stored (or pending) messages, after the system instructions, into a model prompt. */
export function toPrompt(
  system: string,
  messages: readonly (MessageRecord | NewMessage)[],
): LanguageModelV3Prompt {
  const prompt: LanguageModelV3Message[] = [];
  if (system !== '') prompt.push({ role: 'system', content: system });
  for (const m of messages) {
    switch (m.role) {
      case 'system':
        prompt.push({ role: 'system', content: textOf(m.content) });
        break;
      case 'user':
        prompt.push({ role: 'user', content: m.content as UserContent });
        break;
      case 'assistant':
        prompt.push({ role: 'assistant', content: m.content as AssistantContent });
        break;
      case 'tool':
        prompt.push({ role: 'tool', content: m.content as ToolContent });
        break;
    }
  }
  return prompt;
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

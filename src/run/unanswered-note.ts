/**
 * The note that stands for the answer to a user turn whose run ended without one. A thread run
 * that fails, is cancelled or interrupted after its user message was committed appends this
 * assistant message in the same commit as its terminal record, so the thread stays a conversation
 * every provider accepts: each user turn is followed by an assistant turn, and no tool call is left
 * without its result (a step commits its tool calls with their results). The next run sends it to
 * the model like any other message, so the model knows the question went unanswered and why.
 */
import type { NewMessage } from '../store/ports.ts';
import type { AssistantContent } from './messages.ts';

/** The text of the note: the code of the run's error, when known. */
export function unansweredText(code: string | null): string {
  return code === null
    ? '[no answer: the run stopped before it answered]'
    : `[no answer: the run ended with ${code}]`;
}

/** The assistant message answering a user turn its run left unanswered. */
export function unansweredNote(
  id: string,
  runId: string | null,
  code: string | null,
  now: number,
): NewMessage {
  const content: AssistantContent = [{ type: 'text', text: unansweredText(code) }];
  return { id, role: 'assistant', content, runId, createdAt: now };
}

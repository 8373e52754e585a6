/**
 * Checks and cursors every RunStore adapter shares, so the adapters agree on what they refuse
 * and on cursor formats (the conformance suite checks both).
 */
import { validationError } from '../core/errors.ts';
import { decodeCursor } from './paging.ts';
import type { NewMessage, RunRecord } from './ports.ts';

/** The `seq` a message-listing cursor continues after (0 without a cursor). */
export function seqCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const after = Number(decodeCursor('seq', cursor));
  if (!Number.isSafeInteger(after) || after < 0)
    throw validationError('cursor', 'is not a cursor of this listing');
  return after;
}

/** The `[createdAt, id]` a run-listing cursor continues before. */
export function runCursor(cursor: string): [number, string] {
  const text = decodeCursor('run', cursor);
  const colon = text.indexOf(':');
  const createdAt = Number(text.slice(0, colon));
  if (colon < 1 || !Number.isFinite(createdAt))
    throw validationError('cursor', 'is not a cursor of this listing');
  return [createdAt, text.slice(colon + 1)];
}

/** A stateless run takes no messages. */
export function checkRun(run: RunRecord, messages: readonly NewMessage[]): void {
  if (run.threadId === null && messages.length > 0) {
    throw validationError('messages', 'must be empty for a run without a thread', { runId: run.id });
  }
}

/** The interrupted outcome recovery writes on runs a stopped process left unfinished. */
export const INTERRUPTED = {
  code: 'RUN_INTERRUPTED',
  message: 'the process stopped while the run was in flight',
} as const;

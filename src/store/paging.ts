/**
 * Paging helpers every AgentStore adapter shares, so cursors and limits behave identically
 * across adapters (the conformance suite checks it).
 */
import { validationError } from '../core/errors.ts';
import { intOption } from '../core/options.ts';
import type { Page } from './ports.ts';

/** Encodes a keyset cursor; the kind tag makes a cursor from one listing fail in another instead of being misread. */
export function encodeCursor(kind: string, value: string): string {
  return Buffer.from(`${kind}:${value}`, 'utf8').toString('base64url');
}

/** Decodes a cursor made by {@link encodeCursor} for the same kind; `VALIDATION_FAILED` otherwise. */
export function decodeCursor(kind: string, cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(`${kind}:`)) throw validationError('cursor', 'is not a cursor of this listing');
  return text.slice(kind.length + 1);
}

/** A page size within 1..1000. */
export function pageLimit(limit: number): number {
  return intOption('limit', limit, 100, 1, 1000);
}

/** A page from `limit + 1` rows fetched in keyset order: the extra row says whether more follow. */
export function keysetPage<T>(rows: T[], limit: number, cursorOf: (last: T) => string): Page<T> {
  if (rows.length <= limit) return { data: rows, nextCursor: null };
  rows.length = limit;
  return { data: rows, nextCursor: cursorOf(rows[limit - 1] as T) };
}

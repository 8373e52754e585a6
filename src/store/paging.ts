/**
 * Paging helpers every AgentStore adapter shares, so cursors and limits behave identically
 * across adapters (the conformance suite checks it).
 *
 * A page is bounded twice: by its `limit` of items and by {@link PAGE_MAX_BYTES} of JSON. The
 * second bound is what keeps `limit=1000` over records near their caps (runs with 100,000-character
 * inputs, long outputs, 16 KiB of metadata) from building a response of hundreds of megabytes,
 * which once took a server to 2.4 GiB and blocked its event loop for seconds for every tenant.
 */
import { validationError } from '../core/errors.ts';
import { INPUT_LIMITS } from '../core/input-limits.ts';
import { intOption } from '../core/options.ts';
import type { Page } from './ports.ts';

/**
 * About how much JSON one page of a listing holds at most (1 MiB): a page stops before the item
 * that would take it past this, however many items `limit` allows.
 */
export const PAGE_MAX_BYTES = 1024 * 1024;

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
  return intOption('limit', limit, 100, 1, INPUT_LIMITS.pageSize);
}

/** A page from `limit + 1` rows fetched in keyset order: the extra row says whether more follow. */
export function keysetPage<T>(rows: T[], limit: number, cursorOf: (last: T) => string): Page<T> {
  if (rows.length <= limit) return { data: rows, nextCursor: null };
  rows.length = limit;
  return { data: rows, nextCursor: cursorOf(rows[limit - 1] as T) };
}

/**
 * A page from rows in keyset order (the query reads `limit + 1`, the extra row saying whether
 * more follow): at most `limit` items and about `maxBytes` of JSON. The first item is always
 * taken, so every page makes progress; when the page stops early, `nextCursor` is that of the
 * last item taken, so the next page continues right after it. Rows are pulled one at a time, so
 * an SQLite statement iterated here stops reading as soon as the page is full.
 */
export function boundedPage<R, T>(
  rows: Iterable<R>,
  limit: number,
  toItem: (row: R) => T,
  cursorOf: (row: R) => string,
  maxBytes = PAGE_MAX_BYTES,
): Page<T> {
  const data: T[] = [];
  let bytes = 2; // the array's brackets
  let last: R | undefined;
  for (const row of rows) {
    if (data.length === limit) return { data, nextCursor: cursorOf(last as R) };
    const item = toItem(row);
    const size = Buffer.byteLength(JSON.stringify(item)) + 1; // and its comma
    if (last !== undefined && data.length > 0 && bytes + size > maxBytes) {
      return { data, nextCursor: cursorOf(last) };
    }
    bytes += size;
    data.push(item);
    last = row;
  }
  return { data, nextCursor: null };
}

/**
 * Byte-bounded pages in SQL. `boundedPage` (store/paging.ts) stops a page before about
 * PAGE_MAX_BYTES of JSON, but it can only cut rows it has received: SQLite hands them over one at a
 * time, a PostgreSQL query sends them all. So a listing query is wrapped to leave out, on the
 * server, the rows `boundedPage` could not take anyway: a row is sent only while the rows before
 * it hold at most the budget in their large columns (the first two always, so the page makes
 * progress and knows whether more follow). The columns' bytes never exceed the item's JSON, so
 * `boundedPage` then builds the same page as from every row, and `limit=1000` over 100 KB records
 * moves about a megabyte, not a hundred.
 */
import { PAGE_MAX_BYTES } from '../paging.ts';

/**
 * Wraps `inner` (a keyset query ordered by `order` and limited to the page's limit + 1) so rows
 * past the byte budget stay on the server. `size` sums the bytes of the row's large columns,
 * naming them as columns of `inner`'s result; `budgetParam` is the placeholder bound to
 * {@link PAGE_MAX_BYTES} (e.g. `$4`).
 */
export function bytesBounded(inner: string, order: string, size: string, budgetParam: string): string {
  return `
    SELECT * FROM (
      SELECT q.*, row_number() OVER w AS page_row_, sum(${size}) OVER w - (${size}) AS page_bytes_before_
      FROM (${inner}) q
      WINDOW w AS (ORDER BY ${order} ROWS UNBOUNDED PRECEDING)
    ) p
    WHERE page_row_ <= 2 OR page_bytes_before_ <= ${budgetParam}
    ORDER BY page_row_`;
}

/** The byte budget bound to the wrapped query's `budgetParam`. */
export const PAGE_BUDGET = PAGE_MAX_BYTES;

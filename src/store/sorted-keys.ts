/**
 * Sorted string arrays for the memory adapters' keyset listings: binary search, insert and remove
 * that keep the order, so pages need no sort. JS order (UTF-16 units) matches SQLite's BINARY
 * (UTF-8 bytes) except astral vs U+E000..U+FFFF characters.
 */

/** The first index whose element is > `key` (or ≥ it when `inclusive`). */
export function bound(sorted: readonly string[], key: string, inclusive: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid] as string;
    if (v < key || (!inclusive && v === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts `key` where it keeps the array sorted. */
export function insertSorted(sorted: string[], key: string): void {
  sorted.splice(bound(sorted, key, true), 0, key);
}

/** Removes `key` if it is there. */
export function removeSorted(sorted: string[], key: string): void {
  const i = bound(sorted, key, true);
  if (sorted[i] === key) sorted.splice(i, 1);
}

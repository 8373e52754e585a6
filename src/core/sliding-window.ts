/**
 * A sliding-window sum on the injected clock, for limits like "runs per minute" and "tokens per
 * minute". The window is split into a fixed number of buckets (60 by default: one-second steps
 * for a minute), so memory is constant whatever the limit, and the sum is exact to one bucket.
 * One boundary rule everywhere: a window whose sum has reached its limit is exhausted.
 */

/** A bounded sliding-window sum with a limit. */
export class SlidingWindow {
  readonly limit: number;
  readonly windowMs: number;
  readonly #bucketMs: number;
  readonly #sums: Float64Array;
  /** The absolute bucket number each slot holds; a slot whose number is out of the window is stale. */
  readonly #stamps: Float64Array;

  /** `limit` is the default of the checks below; a caller whose limit can change passes its own. */
  constructor(limit: number, windowMs = 60_000, buckets = 60) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.#bucketMs = windowMs / buckets;
    this.#sums = new Float64Array(buckets);
    this.#stamps = new Float64Array(buckets).fill(-Infinity);
  }

  /** The sum over the window ending at `now`. */
  total(now: number): number {
    const current = Math.floor(now / this.#bucketMs);
    const n = this.#sums.length;
    let sum = 0;
    for (let i = 0; i < n; i++) if ((this.#stamps[i] as number) > current - n) sum += this.#sums[i] as number;
    return sum;
  }

  /** True when the sum has reached the limit (a limit other than the constructor's may be given). */
  exhausted(now: number, limit = this.limit): boolean {
    return this.total(now) >= limit;
  }

  /** Adds `amount` at `now`. */
  add(now: number, amount = 1): void {
    const current = Math.floor(now / this.#bucketMs);
    const slot = mod(current, this.#sums.length);
    if (this.#stamps[slot] !== current) {
      this.#stamps[slot] = current;
      this.#sums[slot] = 0;
    }
    this.#sums[slot] = (this.#sums[slot] as number) + amount;
  }

  /** Adds one and returns true when the window is not exhausted; returns false and adds nothing otherwise. */
  tryTake(now: number, limit = this.limit): boolean {
    if (this.exhausted(now, limit)) return false;
    this.add(now, 1);
    return true;
  }

  /** Milliseconds until the sum falls below the limit (0 when it is below now). */
  waitMs(now: number, limit = this.limit): number {
    let excess = this.total(now) - limit;
    if (excess < 0) return 0;
    const current = Math.floor(now / this.#bucketMs);
    const n = this.#sums.length;
    // Oldest live bucket first: each one leaves the window at (its number + n) * bucketMs.
    for (let age = n - 1; age >= 0; age--) {
      const bucket = current - age;
      const slot = mod(bucket, n);
      if (this.#stamps[slot] !== bucket) continue;
      excess -= this.#sums[slot] as number;
      if (excess < 0) return Math.max(0, (bucket + n) * this.#bucketMs - now);
    }
    return this.windowMs;
  }
}

// Clocks may start at 0 in tests, so bucket numbers before the first one are negative.
function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

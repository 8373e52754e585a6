/**
 * Metric instruments the core updates on its hot paths: plain numbers and a fixed-bucket
 * histogram, cheap to update and bounded in memory. Exporters (Prometheus, stats endpoints)
 * read snapshots; nothing here allocates per observation.
 */

/** Default latency buckets in milliseconds, from 10 µs to 10 s. */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

/** A read-only view of a histogram. `counts[i]` counts observations ≤ `buckets[i]`, non-cumulative; the last entry is +Inf. */
export interface HistogramSnapshot {
  buckets: readonly number[];
  counts: number[];
  count: number;
  sum: number;
  /** Estimated from buckets (upper bound of the bucket holding the quantile); NaN when empty. */
  p50: number;
  p99: number;
}

/** A fixed-bucket histogram. */
export class Histogram {
  readonly buckets: readonly number[];
  readonly #counts: Float64Array;
  #count = 0;
  #sum = 0;

  constructor(buckets: readonly number[] = LATENCY_BUCKETS_MS) {
    this.buckets = buckets;
    this.#counts = new Float64Array(buckets.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.buckets.length && value > (this.buckets[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#count++;
    this.#sum += value;
  }

  /** The upper bound of the bucket holding quantile q (0..1); +Infinity for the overflow bucket. */
  quantile(q: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = q * this.#count;
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] as number;
      if (seen >= rank) return this.buckets[i] ?? Number.POSITIVE_INFINITY;
    }
    return Number.POSITIVE_INFINITY;
  }

  snapshot(): HistogramSnapshot {
    return {
      buckets: this.buckets,
      counts: Array.from(this.#counts),
      count: this.#count,
      sum: this.#sum,
      p50: this.quantile(0.5),
      p99: this.quantile(0.99),
    };
  }
}

/**
 * Deterministic synthetic access traces for the eviction benchmarks: Zipf popularity, a loop
 * slightly larger than the cache, and a Zipf workload whose hot set moves half-way. Every trace
 * comes from a seeded PRNG, so runs are comparable across machines and commits.
 */
import { mulberry32 } from '../test/support/seeded-random.ts';

/** A seeded random permutation of 0..n-1 (Fisher–Yates), so popularity rank is unrelated to key value. */
export function permutation(n: number, random: () => number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** The cumulative distribution of Zipf(s) over ranks 1..n. */
export function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 1; r <= n; r++) {
    sum += r ** -s;
    cdf[r - 1] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] = cdf[i]! / sum;
  return cdf;
}

/** The rank (0-based) whose CDF bucket holds u, by binary search. */
function sampleRank(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Fills out[from, to) with Zipf(s) requests over `keys` keys, mapped through a random permutation plus `offset`. */
function fillZipf(
  out: Int32Array,
  from: number,
  to: number,
  keys: number,
  s: number,
  offset: number,
  random: () => number,
): void {
  const cdf = zipfCdf(keys, s);
  const perm = permutation(keys, random);
  for (let i = from; i < to; i++) out[i] = offset + perm[sampleRank(cdf, random())]!;
}

/** Independent requests with Zipf(s) popularity over `keys` keys (the classic skewed workload). */
export function zipfTrace(options: { keys: number; s: number; requests: number; seed: number }): Int32Array {
  const out = new Int32Array(options.requests);
  fillZipf(out, 0, options.requests, options.keys, options.s, 0, mulberry32(options.seed));
  return out;
}

/** 0, 1, …, keys-1 repeated: the pattern where LRU always evicts the key needed next. */
export function loopTrace(options: { keys: number; requests: number }): Int32Array {
  const out = new Int32Array(options.requests);
  for (let i = 0; i < options.requests; i++) out[i] = i % options.keys;
  return out;
}

/**
 * Zipf(s) over `keys` keys for the first half, then Zipf(s) over a disjoint set of `keys` keys
 * with a new random permutation: yesterday's hot set never returns, so a policy must forget it.
 */
export function shiftingTrace(options: {
  keys: number;
  s: number;
  requests: number;
  seed: number;
}): Int32Array {
  const out = new Int32Array(options.requests);
  const random = mulberry32(options.seed);
  const half = Math.floor(options.requests / 2);
  fillZipf(out, 0, half, options.keys, options.s, 0, random);
  fillZipf(out, half, options.requests, options.keys, options.s, options.keys, random);
  return out;
}

/**
 * Recency-biased traffic: a share of requests (`newShare`) are keys never seen before, the rest
 * revisit a recent key at a geometrically distributed distance (mean `meanDistance` keys back).
 * Frequency says little here and recency everything: the trace LRU is good at.
 */
export function recencyTrace(options: {
  requests: number;
  newShare: number;
  meanDistance: number;
  seed: number;
}): Int32Array {
  const random = mulberry32(options.seed);
  const out = new Int32Array(options.requests);
  let newest = 0;
  for (let i = 0; i < options.requests; i++) {
    if (newest === 0 || random() < options.newShare) {
      out[i] = ++newest;
    } else {
      out[i] = Math.max(1, newest - Math.floor(-Math.log(1 - random()) * options.meanDistance));
    }
  }
  return out;
}

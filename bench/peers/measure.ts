/**
 * Per-run cost of an async function: wall time per run (median, p99, mean) and heap bytes
 * allocated per run. Runs are strictly sequential (each awaited before the next starts).
 *
 * Time. After `warmup` untimed runs and a full gc(), each of `iterations` runs is timed on its
 * own with process.hrtime.bigint() (the timer costs well under 0.1 µs, against runs of several
 * µs or more). GC pauses caused by a contender's own garbage fall inside its samples, as they
 * would in production; they are what the p99 and the mean show.
 *
 * Heap allocated per run. Node 24 exposes no cumulative allocation counter
 * (v8.getHeapStatistics() has no total_allocated_bytes), and a plain heapUsed delta undercounts
 * as soon as a scavenge runs inside the window. So, in a separate pass after the timed one:
 * gc(), read used_heap_size, run `heapIterations` runs under v8.GCProfiler, read used_heap_size
 * again, and add back what every GC inside the window freed (its before-GC minus after-GC
 * used_heap_size, which GCProfiler records per GC):
 *     allocated = (used_end − used_start) + Σ_gc (used_before_gc − used_after_gc)
 * That is every byte allocated on the V8 heap in the window (all spaces: young, old, large
 * object, code), garbage included; ArrayBuffer backing stores and other off-heap memory are not
 * counted. The heap pass is not timed, so the profiler's small per-GC cost stays out of the time
 * figures. `retainedBytesPerRun` (after a final gc()) shows memory a contender keeps per run: it
 * should be ≈ 0; anything else is a leak or a cache that grows with runs.
 *
 * Needs `node --expose-gc` (throws otherwise). No dependencies: usable without bench/peers'
 * install.
 */
import { GCProfiler, getHeapStatistics } from 'node:v8';

export interface MeasureOptions {
  /** Untimed runs first (JIT, caches, lazy init). */
  warmup: number;
  /** Timed runs (upper bound when `maxMs` is given). */
  iterations: number;
  /** Stop the timed pass after this many milliseconds, even before `iterations` (min 200 runs). */
  maxMs?: number;
  /** Runs in the heap pass (default: min(iterations, 2000)). */
  heapIterations?: number;
}

export interface PerRunCost {
  /** Median wall time of one run, µs. */
  medianUs: number;
  /** 99th percentile wall time of one run, µs. */
  p99Us: number;
  /** Mean wall time of one run, µs (includes the amortised cost of GC pauses). */
  meanUs: number;
  /** Runs timed. */
  iterations: number;
  /** Bytes allocated on the V8 heap per run (garbage included). */
  heapBytesPerRun: number;
  /** Bytes still live per run after the heap pass and a full gc() (≈ 0 unless something is kept). */
  retainedBytesPerRun: number;
  /** Runs in the heap pass, and GCs that happened during it. */
  heapIterations: number;
  heapPassGcs: number;
}

function gcOrThrow(): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') throw new Error('measurePerRun needs node --expose-gc');
  return gc;
}

/** The q-quantile (0..1) of sorted numbers (nearest rank, as bench/harness.ts). */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Full collection, twice (the second sweeps what the first's finalisers released). */
function fullGc(gc: () => void): void {
  gc();
  gc();
}

/** Measures `fn` (one complete run per call) sequentially; see the file comment for the method. */
export async function measurePerRun(fn: () => Promise<unknown>, opts: MeasureOptions): Promise<PerRunCost> {
  const gc = gcOrThrow();
  for (let i = 0; i < opts.warmup; i++) await fn();

  // timed pass
  const samples = new Float64Array(opts.iterations);
  const deadline = opts.maxMs === undefined ? Infinity : performance.now() + opts.maxMs;
  fullGc(gc);
  let n = 0;
  while (n < opts.iterations) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples[n++] = Number(process.hrtime.bigint() - t0);
    // reading the clock once per 64 runs keeps the check out of the figures
    if ((n & 63) === 0 && n >= 200 && performance.now() > deadline) break;
  }
  const timed = samples.subarray(0, n).sort();
  let sum = 0;
  for (const x of timed) sum += x;

  // heap pass
  const heapIterations = Math.max(1, opts.heapIterations ?? Math.min(opts.iterations, 2000));
  fullGc(gc);
  const profiler = new GCProfiler();
  profiler.start();
  const start = getHeapStatistics().used_heap_size;
  for (let i = 0; i < heapIterations; i++) await fn();
  const end = getHeapStatistics().used_heap_size;
  const profile = profiler.stop();
  let freed = 0;
  const gcs = profile?.statistics ?? [];
  for (const s of gcs)
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
  const allocated = end - start + freed;
  fullGc(gc);
  const retained = getHeapStatistics().used_heap_size - start;

  return {
    medianUs: quantile(timed, 0.5) / 1000,
    p99Us: quantile(timed, 0.99) / 1000,
    meanUs: sum / Math.max(1, n) / 1000,
    iterations: n,
    heapBytesPerRun: allocated / heapIterations,
    retainedBytesPerRun: retained / heapIterations,
    heapIterations,
    heapPassGcs: gcs.length,
  };
}

/** Anything with the two scenarios (a peer from peers.ts, or agentpool's own runner). */
export interface Contender {
  name: string;
  plain: () => Promise<unknown>;
  toolCall: () => Promise<unknown>;
}

export interface ContenderOptions {
  /** Wall-clock budget of each scenario's timed pass, ms (default 3000). */
  maxMsPerScenario?: number;
  /** Upper bound on timed runs per scenario (default 20000). */
  maxIterations?: number;
  /** Warm-up: at least minWarmupRuns (default 2000) runs, at most warmupMaxMs (default 7000) ms. */
  minWarmupRuns?: number;
  warmupMaxMs?: number;
  /** Time spent in the heap pass per scenario, ms (default 500; 200..5000 runs). */
  heapMs?: number;
}

export interface WarmupResult {
  runs: number;
  ms: number;
  /** Whether the per-run median stopped improving before the time cap. */
  settled: boolean;
  /** Median µs per run of the last warm-up chunk (used to size the heap pass). */
  lastChunkMedianUs: number;
}

/**
 * Warms `fn` up until its speed settles: runs chunks of ~100 ms (at least 20 runs), and stops
 * once `minRuns` are done and the last 10 chunks (~1 s) brought no new low (by more than 3 %) of
 * the chunk median, or when `maxMs` is spent. Large frameworks keep getting faster for a few
 * thousand runs (the JIT tiers up their code bit by bit), so a fixed small warm-up count would
 * report them slower than their steady state.
 */
export async function warmUp(
  fn: () => Promise<unknown>,
  opts: { minRuns: number; maxMs: number },
): Promise<WarmupResult> {
  const t0 = performance.now();
  let runs = 0;
  let chunk = 20;
  let best = Infinity;
  let sinceBest = 0;
  let last = Number.NaN;
  for (;;) {
    const s = new Float64Array(chunk);
    const c0 = performance.now();
    for (let i = 0; i < chunk; i++) {
      const t = process.hrtime.bigint();
      await fn();
      s[i] = Number(process.hrtime.bigint() - t);
    }
    runs += chunk;
    const chunkMs = performance.now() - c0;
    last = quantile(s.sort(), 0.5) / 1000;
    if (last < best * 0.97) {
      best = last;
      sinceBest = 0;
    } else {
      sinceBest++;
    }
    const elapsed = performance.now() - t0;
    if (runs >= opts.minRuns && sinceBest >= 10)
      return { runs, ms: elapsed, settled: true, lastChunkMedianUs: last };
    if (elapsed >= opts.maxMs) return { runs, ms: elapsed, settled: false, lastChunkMedianUs: last };
    chunk = Math.max(20, Math.min(5000, Math.round((chunk * 100) / Math.max(chunkMs, 1e-3))));
  }
}

export interface ScenarioCost extends PerRunCost {
  warmup: WarmupResult;
}

export interface ContenderCost {
  name: string;
  plain: ScenarioCost;
  toolCall: ScenarioCost;
}

/**
 * The protocol every contender of the overhead table goes through, per scenario (A, then B):
 * warmUp() until the per-run time settles (≥ 2000 runs, ≤ 7 s), then measurePerRun() with no
 * further warm-up: up to 20000 timed runs within 3 s, and a heap pass of ~0.5 s (200..5000
 * runs). With the defaults one contender takes at most ~22 s (the slowest peer, Mastra, ~20 s).
 */
export async function measureContender(c: Contender, opts: ContenderOptions = {}): Promise<ContenderCost> {
  const one = async (fn: () => Promise<unknown>): Promise<ScenarioCost> => {
    const warmup = await warmUp(fn, {
      minRuns: opts.minWarmupRuns ?? 2000,
      maxMs: opts.warmupMaxMs ?? 7000,
    });
    const heapRuns = ((opts.heapMs ?? 500) * 1000) / Math.max(warmup.lastChunkMedianUs, 1e-3);
    const cost = await measurePerRun(fn, {
      warmup: 0,
      iterations: opts.maxIterations ?? 20_000,
      maxMs: opts.maxMsPerScenario ?? 3000,
      heapIterations: Math.round(Math.min(5000, Math.max(200, heapRuns))),
    });
    return { ...cost, warmup };
  };
  const plain = await one(c.plain);
  const toolCall = await one(c.toolCall);
  return { name: c.name, plain, toolCall };
}

/**
 * Several rounds of one contender combined: every figure is the median of that figure across
 * rounds (so one round disturbed by other load on the machine does not move the result).
 * `warmup` is the first round's.
 */
export function combineRounds(rounds: readonly ContenderCost[]): ContenderCost {
  const first = rounds[0];
  if (!first) throw new Error('combineRounds: no rounds');
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
  };
  const scenario = (pick: (c: ContenderCost) => ScenarioCost): ScenarioCost => {
    const all = rounds.map(pick);
    const f = (k: keyof PerRunCost) => med(all.map((c) => c[k]));
    return {
      medianUs: f('medianUs'),
      p99Us: f('p99Us'),
      meanUs: f('meanUs'),
      iterations: all.reduce((s, c) => s + c.iterations, 0),
      heapBytesPerRun: f('heapBytesPerRun'),
      retainedBytesPerRun: f('retainedBytesPerRun'),
      heapIterations: all.reduce((s, c) => s + c.heapIterations, 0),
      heapPassGcs: all.reduce((s, c) => s + c.heapPassGcs, 0),
      warmup: pick(first).warmup,
    };
  };
  return { name: first.name, plain: scenario((c) => c.plain), toolCall: scenario((c) => c.toolCall) };
}

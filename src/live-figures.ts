/**
 * The live figures of the dashboard and `agentpool top`: a bounded ring of time buckets (10 s each,
 * 15 minutes by default) holding what happened in each — runs finished by outcome, their latency
 * (a fixed log-scale histogram), cost and the slowest ones, per project and for the whole pool —
 * and, sampled once per bucket from the pool's running counters, cache hits and misses,
 * activations, evictions, activation and acquire-wait latency and live instances. A finished run
 * costs a Map lookup and a few additions; the pool's hot paths cost nothing (their counters are
 * read, not hooked).
 */
import type { Clock, TimerHandle } from './core/clock.ts';
import {
  type LiveFiguresOptions,
  type ResolvedLiveFiguresOptions,
  resolveLiveFiguresOptions,
} from './live-figures-options.ts';
import type { PoolStats } from './pool/pool-stats.ts';
import { RecentRuns } from './recent-runs.ts';
import type { RunRecord } from './store/ports.ts';

/** Upper bounds (ms) of the run-latency histogram: 1 ms × 1.5ⁿ up to about an hour, then +∞. */
const LATENCY_BOUNDS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let b = 1; b < 3_600_000; b *= 1.5) bounds.push(Math.round(b));
  return bounds;
})();

/** One of the slowest runs of a window. */
export interface SlowRun {
  runId: string;
  project: string;
  agent: string;
  status: RunRecord['status'];
  durationMs: number;
  finishedAt: number;
}

/** What the runs of one bucket did (of one project, or of the pool). */
interface RunCounts {
  succeeded: number;
  /** `failed` and `interrupted`. */
  failed: number;
  cancelled: number;
  cost: number;
  /** Counts per {@link LATENCY_BOUNDS} bucket, the last one for longer runs. */
  latency: Uint32Array;
  /** Slowest first, at most `slowestRuns`. */
  slowest: SlowRun[];
}

/** The pool's running counters as sampled at the end of a bucket. */
export type PoolReading = Pick<
  PoolStats,
  'hits' | 'misses' | 'activations' | 'evictions' | 'active' | 'activationLatencyMs' | 'acquireWaitMs'
>;

/** What the pool did during one bucket (differences between two readings). */
interface PoolDelta {
  hits: number;
  misses: number;
  activations: number;
  evictions: number;
  /** Live instances at the end of the bucket. */
  active: number;
  activationMs: { count: number; sum: number };
  acquireWaitMs: { count: number; sum: number };
}

interface Bucket {
  /** `floor(at / bucketMs)` of the bucket this slot holds now; -1 when unused. */
  index: number;
  pool: RunCounts;
  projects: Map<string, RunCounts>;
  sample: PoolDelta | null;
}

/** One bucket as the live view shows it. */
export interface LiveBucket {
  /** Start of the bucket, epoch ms. */
  at: number;
  runs: {
    succeeded: number;
    failed: number;
    cancelled: number;
    cost: number;
    p50Ms: number | null;
    p99Ms: number | null;
  };
  /** The pool's figures (whole-pool view only; null when the bucket was not sampled). */
  pool?: {
    hits: number;
    misses: number;
    activations: number;
    evictions: number;
    active: number;
    activationMs: number | null;
    acquireWaitMs: number | null;
  } | null;
}

/** The live view of the window: per bucket, the totals and the slowest runs. */
export interface LiveWindow {
  bucketMs: number;
  /** Oldest bucket first, up to the current one. */
  buckets: LiveBucket[];
  runs: {
    succeeded: number;
    failed: number;
    cancelled: number;
    cost: number;
    /** Runs finished in the buckets that end within the last 60 s (the runs per minute). */
    lastMinute: number;
    p50Ms: number | null;
    p99Ms: number | null;
  };
  /** Slowest first. */
  slowest: SlowRun[];
}

function newCounts(): RunCounts {
  return {
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    cost: 0,
    latency: new Uint32Array(LATENCY_BOUNDS.length + 1),
    slowest: [],
  };
}

/** The first bucket whose bound is ≥ `ms` (binary search); the last, open one beyond them all. */
function latencyIndex(ms: number): number {
  let lo = 0;
  let hi = LATENCY_BOUNDS.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ms > (LATENCY_BOUNDS[mid] as number)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The upper bound of the bucket holding quantile `q`; null when nothing was counted. */
function quantile(latency: Uint32Array, q: number): number | null {
  let total = 0;
  for (const n of latency) total += n;
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < latency.length; i++) {
    seen += latency[i] as number;
    if (seen >= rank) return LATENCY_BOUNDS[i] ?? (LATENCY_BOUNDS.at(-1) as number);
  }
  return null;
}

function addSlow(list: SlowRun[], run: SlowRun, max: number): void {
  if (list.length >= max && run.durationMs <= (list.at(-1) as SlowRun).durationMs) return;
  let i = list.length;
  while (i > 0 && (list[i - 1] as SlowRun).durationMs < run.durationMs) i--;
  list.splice(i, 0, run);
  if (list.length > max) list.pop();
}

/** What {@link LiveFigures} reads. */
interface LiveFiguresDeps {
  clock: Clock;
  /** The pool's counters, read once per bucket. */
  readPool: () => PoolReading;
}

/** The ring of live figures of one pool. */
export class LiveFigures {
  readonly options: ResolvedLiveFiguresOptions;
  /** Each agent's last runs on this node. */
  readonly recent: RecentRuns;
  readonly #clock: Clock;
  readonly #readPool: () => PoolReading;
  readonly #ring: Bucket[];
  #last: PoolReading | null = null;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: LiveFiguresDeps, options?: LiveFiguresOptions) {
    this.options = resolveLiveFiguresOptions(options);
    this.#clock = deps.clock;
    this.#readPool = deps.readPool;
    this.recent = new RecentRuns(this.options.recentRuns, this.options.recentAgents);
    this.#ring = Array.from({ length: this.options.buckets }, () => ({
      index: -1,
      pool: newCounts(),
      projects: new Map(),
      sample: null,
    }));
  }

  /** Starts sampling the pool's counters at the end of every bucket. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#last = this.#readPool();
    this.#schedule();
  }

  /** Stops sampling. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #schedule(): void {
    const { bucketMs } = this.options;
    const now = this.#clock.now();
    // At the end of the current bucket, so each sample lands in the bucket it describes.
    this.#timer = this.#clock.setTimeout(
      () => {
        if (this.#closed) return;
        this.#sample(this.#clock.now() - 1);
        this.#schedule();
      },
      bucketMs - (now % bucketMs),
    );
  }

  /** Records what the pool did since the last sample into the bucket holding `at` (the sampler calls it). */
  #sample(at: number): void {
    const now = this.#readPool();
    const last = this.#last ?? now;
    this.#last = now;
    const delta = (a: { count: number; sum: number }, b: { count: number; sum: number }) => ({
      count: Math.max(0, a.count - b.count),
      sum: Math.max(0, a.sum - b.sum),
    });
    this.#bucket(at).sample = {
      hits: now.hits - last.hits,
      misses: now.misses - last.misses,
      activations: now.activations - last.activations,
      evictions: now.evictions - last.evictions,
      active: now.active,
      activationMs: delta(now.activationLatencyMs, last.activationLatencyMs),
      acquireWaitMs: delta(now.acquireWaitMs, last.acquireWaitMs),
    };
  }

  /** Counts a finished run (a terminal record) in its bucket. */
  runFinished(run: RunRecord): void {
    this.recent.runFinished(run);
    const at = run.finishedAt ?? this.#clock.now();
    const bucket = this.#bucket(at);
    const ms = Math.max(0, at - run.createdAt);
    const latency = latencyIndex(ms);
    let counts = bucket.projects.get(run.project);
    if (counts === undefined && bucket.projects.size < this.options.maxProjects) {
      counts = newCounts();
      bucket.projects.set(run.project, counts);
    }
    const slow = this.#count(bucket.pool, run, at, ms, latency, undefined);
    if (counts !== undefined) this.#count(counts, run, at, ms, latency, slow);
  }

  /**
   * Adds the run to `c`; returns its slowest-list entry, made only when it makes a list (rarely,
   * once warm), so the project's count can reuse the pool's.
   */
  #count(
    c: RunCounts,
    run: RunRecord,
    at: number,
    ms: number,
    latency: number,
    slow: SlowRun | undefined,
  ): SlowRun | undefined {
    if (run.status === 'succeeded') c.succeeded++;
    else if (run.status === 'cancelled') c.cancelled++;
    else c.failed++;
    c.cost += run.cost;
    (c.latency[latency] as number)++;
    const max = this.options.slowestRuns;
    if (c.slowest.length < max || ms > (c.slowest.at(-1) as SlowRun).durationMs) {
      slow ??= {
        runId: run.id,
        project: run.project,
        agent: run.agentName,
        status: run.status,
        durationMs: ms,
        finishedAt: at,
      };
      addSlow(c.slowest, slow, max);
    }
    return slow;
  }

  /** The slot of the bucket holding `at`, emptied first when it held an older bucket. */
  #bucket(at: number): Bucket {
    const index = Math.floor(at / this.options.bucketMs);
    const slot = this.#ring[index % this.options.buckets] as Bucket;
    if (slot.index !== index) {
      slot.index = index;
      slot.pool = newCounts();
      slot.projects.clear();
      slot.sample = null;
    }
    return slot;
  }

  /** The window up to now: the whole pool's (with its pool figures), or one project's runs only. */
  window(project?: string): LiveWindow {
    const { bucketMs, buckets: n } = this.options;
    const now = this.#clock.now();
    const current = Math.floor(now / bucketMs);
    const total = newCounts();
    let lastMinute = 0;
    const buckets: LiveBucket[] = [];
    for (let index = current - n + 1; index <= current; index++) {
      const slot = this.#ring[index % n] as Bucket;
      const held = slot.index === index;
      const c = !held ? undefined : project === undefined ? slot.pool : slot.projects.get(project);
      const counts = c ?? newCounts();
      total.succeeded += counts.succeeded;
      total.failed += counts.failed;
      total.cancelled += counts.cancelled;
      total.cost += counts.cost;
      for (let i = 0; i < counts.latency.length; i++) {
        (total.latency[i] as number) += counts.latency[i] as number;
      }
      for (const s of counts.slowest) addSlow(total.slowest, s, this.options.slowestRuns);
      if ((index + 1) * bucketMs > now - 60_000) {
        lastMinute += counts.succeeded + counts.failed + counts.cancelled;
      }
      const bucket: LiveBucket = {
        at: index * bucketMs,
        runs: {
          succeeded: counts.succeeded,
          failed: counts.failed,
          cancelled: counts.cancelled,
          cost: counts.cost,
          p50Ms: quantile(counts.latency, 0.5),
          p99Ms: quantile(counts.latency, 0.99),
        },
      };
      if (project === undefined) bucket.pool = held && slot.sample !== null ? poolView(slot.sample) : null;
      buckets.push(bucket);
    }
    return {
      bucketMs,
      buckets,
      runs: {
        succeeded: total.succeeded,
        failed: total.failed,
        cancelled: total.cancelled,
        cost: total.cost,
        lastMinute,
        p50Ms: quantile(total.latency, 0.5),
        p99Ms: quantile(total.latency, 0.99),
      },
      slowest: total.slowest,
    };
  }
}

function poolView(s: PoolDelta): NonNullable<LiveBucket['pool']> {
  const mean = (h: { count: number; sum: number }) => (h.count === 0 ? null : h.sum / h.count);
  return {
    hits: s.hits,
    misses: s.misses,
    activations: s.activations,
    evictions: s.evictions,
    active: s.active,
    activationMs: mean(s.activationMs),
    acquireWaitMs: mean(s.acquireWaitMs),
  };
}

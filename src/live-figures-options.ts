/**
 * Options of the live figures (`createAgentPool({ liveFigures })`, `live-figures.ts`): the size of
 * the window and of the lists it keeps.
 */
import { intOption } from './core/options.ts';

/** Options of the live figures (`createAgentPool({ liveFigures })`). */
export interface LiveFiguresOptions {
  /** Width of one bucket, ms (also how often the pool's counters are sampled). @default 10000 */
  bucketMs?: number;
  /** Buckets kept: the window is `bucketMs × buckets`. @default 90 (15 minutes) */
  buckets?: number;
  /** Projects with run figures of their own in a bucket; beyond, a run counts for the pool only. @default 200 */
  maxProjects?: number;
  /**
   * Slowest runs shown for the window (each bucket keeps as many, for the pool and per project,
   * which is all the window's slowest can come from). @default 10
   */
  slowestRuns?: number;
  /** Recent runs kept per agent for the drill-down, for the `recentAgents` agents that ran last. @default 10 */
  recentRuns?: number;
  /** Agents whose recent runs are kept. @default 1000 */
  recentAgents?: number;
}

/** {@link LiveFiguresOptions} with every default applied. */
export interface ResolvedLiveFiguresOptions {
  readonly bucketMs: number;
  readonly buckets: number;
  readonly maxProjects: number;
  readonly slowestRuns: number;
  readonly recentRuns: number;
  readonly recentAgents: number;
}

/** Applies the defaults of {@link LiveFiguresOptions}; `VALIDATION_FAILED` naming the field otherwise. */
export function resolveLiveFiguresOptions(options: LiveFiguresOptions = {}): ResolvedLiveFiguresOptions {
  return {
    bucketMs: intOption('liveFigures.bucketMs', options.bucketMs, 10_000, 100),
    buckets: intOption('liveFigures.buckets', options.buckets, 90, 2, 10_000),
    maxProjects: intOption('liveFigures.maxProjects', options.maxProjects, 200, 1),
    slowestRuns: intOption('liveFigures.slowestRuns', options.slowestRuns, 10, 1, 100),
    recentRuns: intOption('liveFigures.recentRuns', options.recentRuns, 10, 1, 100),
    recentAgents: intOption('liveFigures.recentAgents', options.recentAgents, 1000, 1),
  };
}

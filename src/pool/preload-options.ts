/**
 * Options of preloading (`pool.preload`): filling the pool's idle capacity with the inactive agents
 * most likely to be used, by a priority score over their persisted usage, and prefetching the agent
 * that tends to follow the one just acquired (co-occurrence on a thread). docs/operations.md,
 * "Usage and preloading", explains every field.
 */
import { boolOption, intOption, numberOption, objectOption } from '../core/options.ts';

/** How the pool preloads and prefetches. */
export interface PreloadOptions {
  /** Preloading and prefetching at all. @default true */
  enabled?: boolean;
  /**
   * An inactive agent is preloaded only with a priority score (0..1) at least this high.
   * @default 0.7
   */
  threshold?: number;
  /** How often idle capacity is filled, ms; 0 never (prefetching still works). @default 30000 */
  intervalMs?: number;
  /** Agents with the most uses read from the store as candidates each interval. 1..10000. @default 1000 */
  candidates?: number;
  /** Agents preloaded at most per interval. @default 50 */
  maxPerInterval?: number;
  /**
   * Places left free for the request path: idle capacity is `maxActive - live - reserve`.
   * @default 1
   */
  reserve?: number;
  /** Half-life of the recency term of the score, ms: used this long ago counts ½. @default 3600000 (1 h) */
  recencyHalfLifeMs?: number;
  /** Learning which agent follows which (on a thread) and prefetching it. @default true */
  prefetch?: boolean;
  /** B follows A when B's run on a thread starts within this long after A's finished, ms. @default 60000 */
  followWindowMs?: number;
  /** A pair is prefetched once B followed A at least this often (after decay). @default 3 */
  minFollows?: number;
  /** …and at least this share of what followed A. 0..1. @default 0.5 */
  minConfidence?: number;
  /** Every this long, ms, every pair count is halved (forgetting old habits). @default 600000 (10 min) */
  decayIntervalMs?: number;
  /** Agents whose followers are tracked at most (the least recently seen leaves first). @default 10000 */
  maxTrackedAgents?: number;
  /** Followers tracked per agent at most (the least followed leaves first). 1..64. @default 4 */
  maxFollowers?: number;
  /** Threads whose last agent is remembered at most (the least recent leaves first). @default 100000 */
  maxThreads?: number;
  /** After a prefetch of an agent was skipped or failed, none is tried for it for this long, ms. @default 1000 */
  retryAfterMs?: number;
}

/** {@link PreloadOptions} with every default applied. */
export type ResolvedPreloadOptions = Required<PreloadOptions>;

const FIELDS = [
  'enabled',
  'threshold',
  'intervalMs',
  'candidates',
  'maxPerInterval',
  'reserve',
  'recencyHalfLifeMs',
  'prefetch',
  'followWindowMs',
  'minFollows',
  'minConfidence',
  'decayIntervalMs',
  'maxTrackedAgents',
  'maxFollowers',
  'maxThreads',
  'retryAfterMs',
] as const;

/** Applies defaults and rejects bad values with a message naming the field (`pool.preload.threshold`). */
export function resolvePreloadOptions(input?: PreloadOptions): ResolvedPreloadOptions {
  const o = objectOption('pool.preload', input, FIELDS) as PreloadOptions;
  const f = (name: string) => `pool.preload.${name}`;
  return {
    enabled: boolOption(f('enabled'), o.enabled, true),
    threshold: numberOption(f('threshold'), o.threshold, 0.7, 0, 1),
    intervalMs: intOption(f('intervalMs'), o.intervalMs, 30_000, 0),
    candidates: intOption(f('candidates'), o.candidates, 1000, 1, 10_000),
    maxPerInterval: intOption(f('maxPerInterval'), o.maxPerInterval, 50, 1),
    reserve: intOption(f('reserve'), o.reserve, 1, 0),
    recencyHalfLifeMs: intOption(f('recencyHalfLifeMs'), o.recencyHalfLifeMs, 3_600_000, 1),
    prefetch: boolOption(f('prefetch'), o.prefetch, true),
    followWindowMs: intOption(f('followWindowMs'), o.followWindowMs, 60_000, 1),
    minFollows: intOption(f('minFollows'), o.minFollows, 3, 1),
    minConfidence: numberOption(f('minConfidence'), o.minConfidence, 0.5, 0, 1),
    decayIntervalMs: intOption(f('decayIntervalMs'), o.decayIntervalMs, 600_000, 1),
    maxTrackedAgents: intOption(f('maxTrackedAgents'), o.maxTrackedAgents, 10_000, 1),
    maxFollowers: intOption(f('maxFollowers'), o.maxFollowers, 4, 1, 64),
    maxThreads: intOption(f('maxThreads'), o.maxThreads, 100_000, 1),
    retryAfterMs: intOption(f('retryAfterMs'), o.retryAfterMs, 1000, 0),
  };
}

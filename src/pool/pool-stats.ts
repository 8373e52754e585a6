/**
 * How the pool reports itself: the stats snapshot, the counters it is built from, and the
 * one-line view of a live instance.
 */
import type { Histogram, HistogramSnapshot } from '../core/metrics.ts';
import type { Tier } from '../registry/definition.ts';
import type { ActivationCache } from './activation-cache.ts';
import type { AgentInstance, InstanceState } from './instance.ts';
import type { ResolvedInstancePoolOptions } from './pool-options.ts';
import type { Room } from './room.ts';

/** A point-in-time view of the pool: its counters, and what is live now. */
export interface PoolStats extends PoolCounters {
  policy: Record<string, number | string>;
  maxActive: number;
  maxBytes: number;
  /** Live instances: resident + one-shot + activating. */
  active: number;
  resident: number;
  oneShot: number;
  activating: number;
  pinned: number;
  bytes: number;
  waiting: number;
  byState: Record<Exclude<InstanceState, 'terminated'>, number>;
  byTier: Record<Tier, number>;
  hitRatio: number;
  acquireTimeouts: number;
  activationLatencyMs: HistogramSnapshot;
  /** Time acquirers waited for room (only those that waited). */
  acquireWaitMs: HistogramSnapshot;
}

/** A one-line view of a live instance. */
export interface InstanceInfo {
  instanceId: string;
  agentId: string;
  project: string;
  name: string;
  version: number;
  tier: Tier;
  state: InstanceState;
  leases: number;
  pinned: boolean;
  uses: number;
  lastUsedAt: number;
  estimatedBytes: number;
}

/** The view of an instance that stats and the API show. */
export function describeInstance(i: AgentInstance): InstanceInfo {
  return {
    instanceId: i.id,
    agentId: i.agent.id,
    project: i.agent.project,
    name: i.agent.name,
    version: i.agent.activeVersion,
    tier: i.tier,
    state: i.state,
    leases: i.leases,
    pinned: i.pinned,
    uses: i.uses,
    lastUsedAt: i.lastUsedAt,
    estimatedBytes: i.estimatedBytes,
  };
}

/** The pool's running counts, as {@link PoolStats} reports them. */
export interface PoolCounters {
  hits: number;
  misses: number;
  activations: number;
  activationFailures: number;
  /** Deactivations by cause. */
  evictions: number;
  idleDeactivations: number;
  retirements: number;
  deactivations: number;
}

/** Counters at zero, for a new pool. */
export function newPoolCounters(): PoolCounters {
  return {
    hits: 0,
    misses: 0,
    activations: 0,
    activationFailures: 0,
    evictions: 0,
    idleDeactivations: 0,
    retirements: 0,
    deactivations: 0,
  };
}

/** The parts of the pool a {@link PoolStats} snapshot is read from. */
export interface PoolStatsSources {
  options: ResolvedInstancePoolOptions;
  cache: ActivationCache;
  /** Live instances outside the cache. */
  oneShots: ReadonlySet<AgentInstance>;
  room: Room;
  /** How many instances are in each state (`terminated` is never counted). */
  byState: Readonly<Record<InstanceState, number>>;
  counters: PoolCounters;
  /** Activation latency, in milliseconds. */
  latency: Histogram;
}

/** A snapshot of the pool from its parts. */
export function buildPoolStats(s: PoolStatsSources): PoolStats {
  const c = s.counters;
  const byTier: Record<Tier, number> = { hot: 0, warm: 0, cold: 0, auto: 0 };
  for (const i of s.cache.values()) byTier[i.tier]++;
  for (const i of s.oneShots) byTier[i.tier]++;
  const { terminated: _, ...byState } = s.byState;
  return {
    policy: s.cache.describePolicy(),
    maxActive: s.options.maxActive,
    maxBytes: s.options.maxBytes,
    active: s.room.live(),
    resident: s.cache.size,
    oneShot: s.oneShots.size,
    activating: s.room.reserved,
    pinned: s.cache.pinnedCount,
    bytes: s.cache.bytes,
    waiting: s.room.waiting,
    byState,
    byTier,
    ...c,
    acquireTimeouts: s.room.timeouts,
    hitRatio: c.hits + c.misses === 0 ? 0 : c.hits / (c.hits + c.misses),
    activationLatencyMs: s.latency.snapshot(),
    acquireWaitMs: s.room.waitSnapshot(),
  };
}

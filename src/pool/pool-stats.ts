/**
 * How the pool reports itself: the stats snapshot, the counters it is built from, and the
 * one-line view of a live instance.
 */
import type { Histogram, HistogramSnapshot } from '../core/metrics.ts';
import { OldestKey } from '../core/oldest-key.ts';
import type { Tier } from '../registry/definition.ts';
import type { ActivationCache } from './activation-cache.ts';
import type { AgentInstance, InstanceState } from './instance.ts';
import type { ResolvedInstancePoolOptions } from './pool-options.ts';
import type { Room } from './room.ts';

/** A point-in-time view of the pool: its counters, and what is live now. */
export interface PoolStats extends PoolCounters, InstanceCounts {
  policy: Record<string, number | string>;
  maxActive: number;
  maxBytes: number;
  bytes: number;
  waiting: number;
  acquireTimeouts: number;
  activationLatencyMs: HistogramSnapshot;
  /** Time acquirers waited for room (only those that waited). */
  acquireWaitMs: HistogramSnapshot;
}

/**
 * What a project sees of the pool: its own live instances and cache figures since start, and
 * nothing that tells another tenant's load (no pool capacity, bytes or waiting acquirers).
 */
export interface ProjectPoolStats extends ProjectCounters, InstanceCounts {
  project: string;
}

/** Live instances counted (of the pool, or of one project) and the cache hit ratio. */
export interface InstanceCounts {
  /** Live instances: resident + one-shot + activating. */
  active: number;
  resident: number;
  oneShot: number;
  activating: number;
  pinned: number;
  byState: Record<Exclude<InstanceState, 'terminated'>, number>;
  byTier: Record<Tier, number>;
  /** Warm hits / (hits + misses). */
  hitRatio: number;
}

/** A project's share of the pool's running counts. */
export interface ProjectCounters {
  hits: number;
  misses: number;
  activations: number;
  activationFailures: number;
}

/**
 * Running counts per project, bounded: beyond `max` projects the one that was first counted is
 * forgotten (its figures start again from zero if it comes back). Looking a project up is one
 * Map read, what the warm path can afford.
 */
export class ProjectCounterMap {
  readonly #max: number;
  readonly #byProject = new Map<string, ProjectCounters>();
  readonly #oldest = new OldestKey(this.#byProject);

  constructor(max: number) {
    this.#max = max;
  }

  /** The project's counters, created at zero. */
  of(project: string): ProjectCounters {
    let counters = this.#byProject.get(project);
    if (counters === undefined) {
      if (this.#byProject.size >= this.#max) {
        this.#oldest.evict();
      }
      counters = { hits: 0, misses: 0, activations: 0, activationFailures: 0 };
      this.#byProject.set(project, counters);
    }
    return counters;
  }

  /** The project's counters if it was counted, else zeros (and nothing is stored). */
  peek(project: string): ProjectCounters {
    return {
      ...(this.#byProject.get(project) ?? { hits: 0, misses: 0, activations: 0, activationFailures: 0 }),
    };
  }

  /** Forgets a project's figures (it was deleted). */
  forget(project: string): void {
    this.#byProject.delete(project);
  }
}

/** A project's view of the pool from its live instances and its counters. */
export function buildProjectPoolStats(
  project: string,
  s: Pick<PoolStatsSources, 'cache' | 'oneShots'>,
  activating: number,
  counters: ProjectCounters,
): ProjectPoolStats {
  const byState: Record<Exclude<InstanceState, 'terminated'>, number> = {
    created: 0,
    initializing: 0,
    ready: 0,
    busy: 0,
    paused: 0,
    error: 0,
  };
  const byTier: Record<Tier, number> = { hot: 0, warm: 0, cold: 0, auto: 0 };
  let resident = 0;
  let oneShot = 0;
  let pinned = 0;
  const count = (i: AgentInstance) => {
    if (i.state !== 'terminated') byState[i.state]++;
    byTier[i.tier]++;
    if (i.pinned) pinned++;
  };
  for (const i of s.cache.values()) {
    if (i.agent.project !== project) continue;
    resident++;
    count(i);
  }
  for (const i of s.oneShots) {
    if (i.agent.project !== project) continue;
    oneShot++;
    count(i);
  }
  const { hits, misses } = counters;
  return {
    project,
    active: resident + oneShot + activating,
    resident,
    oneShot,
    activating,
    pinned,
    byState,
    byTier,
    ...counters,
    hitRatio: hits + misses === 0 ? 0 : hits / (hits + misses),
  };
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
  /** The bounds in effect (maxActive moves with the autoscaler). */
  options: Pick<ResolvedInstancePoolOptions, 'maxActive' | 'maxBytes'>;
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

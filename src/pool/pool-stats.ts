/**
 * How the pool reports itself: the stats snapshot and the one-line view of a live instance.
 */
import type { HistogramSnapshot } from '../core/metrics.ts';
import type { Tier } from '../registry/definition.ts';
import type { AgentInstance, InstanceState } from './instance.ts';

/** A point-in-time view of the pool. */
export interface PoolStats {
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
  hits: number;
  misses: number;
  hitRatio: number;
  activations: number;
  activationFailures: number;
  /** Deactivations by cause. */
  evictions: number;
  idleDeactivations: number;
  retirements: number;
  deactivations: number;
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

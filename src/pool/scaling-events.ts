/**
 * The events of the pool's self-management on the bus: a working-set checkpoint saved, the
 * working set prewarmed at start, the live set's capacity changed by the autoscaler, and an `auto`
 * agent moved between tiers by the classifier.
 */
import type { BusEvent } from '../events/bus.ts';

/** A node saved its working set (pool/checkpoint.ts). */
export type CheckpointSavedEvent = BusEvent & {
  type: 'pool.checkpointed';
  node: string;
  /** Resident agents saved. */
  agents: number;
  /** Why: the periodic save or the one at shutdown. */
  reason: 'interval' | 'shutdown' | 'manual';
};

/** A node prewarmed its checkpointed working set at start, before it said ready. */
export type WarmedEvent = BusEvent & {
  type: 'pool.warmed';
  node: string;
  /** When the checkpoint was saved (epoch ms), or null when there was none. */
  savedAt: number | null;
  /** Agents activated. */
  warmed: number;
  /** Agents gone since (deleted, or their project), or cold now: not activated. */
  skipped: number;
  /** Agents whose activation failed (they activate on first use as usual). */
  failed: number;
  /** True when the eviction policy's frequency sketch was restored. */
  sketchRestored: boolean;
  durationMs: number;
};

/** The autoscaler changed the pool's capacity (pool/autoscaler.ts). */
export type ScaledEvent = BusEvent & {
  type: 'pool.scaled';
  direction: 'up' | 'down';
  from: number;
  to: number;
  /** What decided it, e.g. `utilisation 0.92 ≥ 0.8`, `3 acquirers waiting`. */
  reasons: string[];
  /** Instances evicted to shrink (idle, unpinned ones only). */
  evicted: number;
};

/** The classifier moved an `auto` agent to another tier (pool/tiers.ts). */
export type TierChangedEvent = BusEvent & {
  type: 'instance.tier_changed';
  project: string;
  agentId: string;
  name: string;
  from: 'hot' | 'warm' | 'cold';
  to: 'hot' | 'warm' | 'cold';
  /** The agent's recent-use score the classifier ranked it by. */
  score: number;
};

/** Every event of the pool's self-management. */
export type ScalingEvent = CheckpointSavedEvent | WarmedEvent | ScaledEvent | TierChangedEvent;

/**
 * The WorkingSetStore port: where each node keeps the checkpoint of its working set (the agents it
 * had resident, their tiers and use counts, and the eviction policy's frequency sketch), so that
 * after a restart it prewarms what it was serving instead of starting cold (pool/checkpoint.ts).
 * One checkpoint per node id, replaced whole by each save; adapters keep it as one JSON document.
 * Also holds the checks every adapter shares, so they agree on what they refuse.
 */
import { validationError } from '../core/errors.ts';

/** One resident agent of a checkpointed working set. */
export interface WorkingSetEntry {
  readonly project: string;
  readonly agentId: string;
  readonly name: string;
  /** The tier its instance served in (its spec's, or the one `auto` was classified into). */
  readonly tier: string;
  /** True when its spec's tier is `auto` (so `tier` is its classification). @default false */
  readonly auto?: boolean;
  /** True when it was pinned (hot). */
  readonly pinned: boolean;
  /** Leases granted, carried over from earlier checkpoints of the same node. */
  readonly uses: number;
  /** Epoch ms of its last acquire or release. */
  readonly lastUsedAt: number;
  /** The frequency sketch's estimate when saved (0 to 15; 0 with a policy without a sketch). */
  readonly frequency: number;
}

/** A frequency sketch's counters (pool/policies/count-min-sketch.ts). */
export interface StoredSketch {
  readonly width: number;
  /** base64 of 4 × width one-byte counters. */
  readonly counters: string;
  readonly additions: number;
}

/** A node's working set at one moment. */
export interface WorkingSetCheckpoint {
  /** The node id it belongs to (`cluster.nodeId`, or `local` for a node alone). */
  readonly node: string;
  /** Epoch ms of the save. */
  readonly savedAt: number;
  /** Resident agents, most valuable first. */
  readonly entries: readonly WorkingSetEntry[];
  /** The eviction policy's frequency sketch, or null (a policy without one). */
  readonly sketch: StoredSketch | null;
}

/**
 * One working-set checkpoint per node. Errors: `VALIDATION_FAILED` for a bad node id;
 * `STORE_FAILED` / `STORE_UNAVAILABLE` as the other stores.
 */
export interface WorkingSetStore {
  /** Replaces the node's checkpoint with this one. */
  saveWorkingSet(checkpoint: WorkingSetCheckpoint): Promise<void>;
  /** The node's last checkpoint, or undefined when it has none. */
  loadWorkingSet(node: string): Promise<WorkingSetCheckpoint | undefined>;
  /** Forgets the node's checkpoint; false when it had none. */
  deleteWorkingSet(node: string): Promise<boolean>;
  /** Closes the store's use of its database (the last store closes it). */
  close(): Promise<void>;
}

const NODE = /^[A-Za-z0-9_-]{1,64}$/;

/** Refuses a node id the cluster would refuse (`cluster.nodeId`'s rule). */
export function checkWorkingSetNode(node: string): void {
  if (typeof node !== 'string' || !NODE.test(node)) {
    throw validationError('node', 'must be 1 to 64 letters, digits, - and _', { value: String(node) });
  }
}

/** The JSON document adapters store for a checkpoint (everything but the node, its key). */
export function encodeWorkingSet(checkpoint: WorkingSetCheckpoint): string {
  checkWorkingSetNode(checkpoint.node);
  return JSON.stringify({ entries: checkpoint.entries, sketch: checkpoint.sketch });
}

/** A stored document back as a checkpoint. */
export function decodeWorkingSet(node: string, savedAt: number, data: string): WorkingSetCheckpoint {
  const parsed = JSON.parse(data) as { entries?: WorkingSetEntry[]; sketch?: StoredSketch | null };
  return { node, savedAt, entries: parsed.entries ?? [], sketch: parsed.sketch ?? null };
}

/**
 * The DutyLock port: who does a cluster-wide background duty now (retention's sweep), so that the
 * nodes of a cluster do not all do it at once. A node holds a duty for `ttlMs` and renews it while
 * working; a node that dies lets it expire, and another takes it on its next try. The local
 * adapter (a node alone) always grants it; the Redis adapter is one key per duty.
 */

/** Exclusive, expiring holds on named duties. */
export interface DutyLock {
  /**
   * Takes duty `name` for `ttlMs`, or renews it when this node holds it already; false when
   * another node holds it. Rejects with `COORDINATION_UNAVAILABLE` when Redis cannot be reached.
   */
  hold(name: string, ttlMs: number): Promise<boolean>;
  /** Gives duty `name` up if this node holds it. */
  release(name: string): Promise<void>;
}

/** A node alone: every duty is its own. */
export class LocalDutyLock implements DutyLock {
  async hold(): Promise<boolean> {
    return true;
  }

  async release(): Promise<void> {}
}

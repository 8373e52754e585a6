/**
 * The membership port: which nodes of a cluster are alive, with what load, and a watcher that
 * notices once, for the whole cluster, that a node stopped heartbeating, so its runs can be
 * recovered by someone else. The local adapter here is a single node that lists itself and never
 * sees another node die; the Redis adapter (redis/membership.ts) is the cluster's.
 *
 * A node that stops gracefully calls {@link Membership.leave} and is never swept: sweeping is for
 * nodes that died (kill -9, a crashed host, a partition longer than `deadAfterMs`).
 */
import type { Clock } from '../core/clock.ts';

/** What a node reports of itself with every heartbeat. */
export interface NodeStats {
  /** Runs this node is executing now. */
  runsInFlight: number;
  /** Agent instances live in this node's pool. */
  liveInstances: number;
  /** Threads whose lease this node holds (its runs on threads). */
  threadsHeld: number;
}

/** One node as the cluster sees it. */
export interface NodeInfo {
  /** The node's id (unique in the cluster). */
  id: string;
  /** Where its HTTP API answers (`http://10.0.0.5:8080`), or null when it does not serve. */
  address: string | null;
  /** When the node started, by its own clock (ms since the epoch). */
  startedAt: number;
  /** When its last heartbeat reached the cluster (ms since the epoch; Redis's clock in a cluster). */
  heartbeatAt: number;
  runsInFlight: number;
  liveInstances: number;
  threadsHeld: number;
}

/** The nodes of a cluster. */
export interface Membership {
  /** This node's id. */
  readonly nodeId: string;
  /** Announces this node and heartbeats every heartbeatMs with `stats()` until leave(). */
  join(info: { address: string | null; startedAt: number }, stats: () => NodeStats): Promise<void>;
  /** The nodes whose heartbeat is current, this one included, by id. */
  nodes(): Promise<NodeInfo[]>;
  /**
   * Calls `sweep(deadNodeId)` once cluster-wide for each node whose heartbeat stopped more than
   * deadAfterMs ago (checked every sweepIntervalMs on every node; a lock in Redis makes one node
   * do it; the dead node is forgotten only after sweep resolves, so a sweep that throws is
   * retried on the next check). Returns a stop function. A sweep should be idempotent: a sweeper
   * that itself dies mid-sweep is replaced by another node's.
   */
  watch(sweep: (deadNodeId: string, info: NodeInfo) => Promise<void>): () => void;
  /** Stops heartbeating and removes this node at once (a graceful stop is never swept). */
  leave(): Promise<void>;
}

/** The membership of a single node: it lists itself and never reports a dead node. */
export class LocalMembership implements Membership {
  readonly nodeId: string;
  readonly #clock: Clock;
  #joined: { address: string | null; startedAt: number; stats: () => NodeStats } | undefined;

  constructor(nodeId: string, clock: Clock) {
    this.nodeId = nodeId;
    this.#clock = clock;
  }

  join(info: { address: string | null; startedAt: number }, stats: () => NodeStats): Promise<void> {
    this.#joined = { address: info.address, startedAt: info.startedAt, stats };
    return Promise.resolve();
  }

  /** This node once joined (its heartbeat is always current: it is the one answering), else none. */
  nodes(): Promise<NodeInfo[]> {
    const joined = this.#joined;
    if (joined === undefined) return Promise.resolve([]);
    const { runsInFlight, liveInstances, threadsHeld } = joined.stats();
    return Promise.resolve([
      {
        id: this.nodeId,
        address: joined.address,
        startedAt: joined.startedAt,
        heartbeatAt: this.#clock.now(),
        runsInFlight,
        liveInstances,
        threadsHeld,
      },
    ]);
  }

  /** No other node exists, so none ever dies. */
  watch(_sweep: (deadNodeId: string, info: NodeInfo) => Promise<void>): () => void {
    return () => undefined;
  }

  leave(): Promise<void> {
    this.#joined = undefined;
    return Promise.resolve();
  }
}

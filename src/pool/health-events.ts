/**
 * The events of the health monitor on the pool's bus: the node's status changing, the timeouts it
 * enforces, instances it finds stuck, and the cache shrinking under memory pressure.
 */
import type { EventSink } from '../events/bus.ts';

/** The node's health: `overloaded` sheds new runs, `degraded` says a check is past its first threshold. */
export type HealthStatus = 'ok' | 'degraded' | 'overloaded';

/** A check as events carry it. */
export interface HealthCheckSummary {
  readonly name: string;
  readonly status: HealthStatus;
  readonly value: number;
}

/** Every event the health monitor emits. */
export type HealthEvent =
  | {
      readonly type: 'pool.health.changed';
      readonly at: number;
      readonly from: HealthStatus;
      readonly to: HealthStatus;
      /** The checks that are not `ok`. */
      readonly checks: readonly HealthCheckSummary[];
    }
  | {
      readonly type: 'instance.stuck';
      readonly at: number;
      readonly project: string;
      readonly agentId: string;
      readonly name: string;
      readonly instanceId: string;
      /** How long it has been busy with no lease granted or given back (ms). */
      readonly busyMs: number;
      readonly leases: number;
    }
  | {
      readonly type: 'instance.activation_timed_out';
      readonly at: number;
      readonly project: string;
      /** As the acquirer named it (id or name). */
      readonly agent: string;
      /** Null when the store read itself timed out. */
      readonly agentId: string | null;
      readonly elapsedMs: number;
      readonly timeoutMs: number;
    }
  | {
      readonly type: 'run.timed_out';
      readonly at: number;
      readonly runId: string;
      readonly project: string;
      readonly agentId: string;
      readonly agent: string;
      readonly elapsedMs: number;
      readonly timeoutMs: number;
    }
  | {
      readonly type: 'pool.cache_shrunk';
      readonly at: number;
      /** Idle instances evicted. */
      readonly evicted: number;
      readonly reason: 'memory';
    };

/** What the monitor needs of the bus. */
export interface HealthBus extends EventSink<HealthEvent> {
  hasListeners(type: HealthEvent['type']): boolean;
}

/**
 * What a node does for its cluster once its pool is built: it takes background runs from the
 * queue, heartbeats, ends the runs of a node that died (its background runs go on elsewhere), and
 * keeps its live instances current with definitions changed through other nodes: at once when
 * another node says so over Redis, and by reading the store's change feed every `changePollMs`
 * for what a lost message did not say. A node alone does the same with in-process adapters.
 */
import type { ClusterView, Coordination, DependencyState } from './coordination/cluster.ts';
import type { Clock } from './core/clock.ts';
import { isAgentPoolError } from './core/errors.ts';
import type { Logger } from './core/logger.ts';
import type { BusEvent, EventBus } from './events/bus.ts';
import type { InstancePool } from './pool/pool.ts';
import type { AgentRegistry } from './registry/registry.ts';
import type { RunManager } from './run/runs.ts';
import type { RunEvent } from './run/stream.ts';
import type { RunStore } from './store/ports.ts';

/** What the duties work with. */
export interface ClusterDutiesDeps {
  coordination: Coordination<RunEvent>;
  agents: AgentRegistry;
  runs: RunManager;
  runStore: RunStore;
  pool: InstancePool;
  bus: EventBus<BusEvent>;
  clock: Clock;
  log: Logger;
  /** The URL the node is reached at, for `GET /v1/cluster`. */
  address: string | null;
  /** Read the change feed every `changePollMs` (a store other nodes write to). */
  watchChanges: boolean;
}

/** Starts the node's duties; returns the functions that stop them (before the pool closes). */
export function startClusterDuties(deps: ClusterDutiesDeps): (() => void)[] {
  const { coordination: c, agents, runs, log, clock } = deps;
  const stops: (() => void)[] = [];
  const check = (why: string): void => {
    agents
      .checkForChanges()
      ?.catch((err: unknown) => log.warn({ err, why }, 'reading definition changes failed'));
  };
  c.queue?.start((job) => runs.runBackground(job), c.backgroundConcurrency);
  const queue = c.queue;
  if (queue !== undefined) {
    // An overloaded node refuses new runs; it leaves queued ones to the other nodes too.
    stops.push(
      deps.bus.on('pool.health.changed', (event) => {
        const { from, to } = event as BusEvent & { from: string; to: string };
        if (from !== 'overloaded' && to !== 'overloaded') return;
        queue
          .hold(to === 'overloaded')
          .catch((err: unknown) => log.warn({ err }, 'holding the run queue for the overload failed'));
      }),
    );
  }
  c.membership
    .join({ address: deps.address, startedAt: clock.now() }, () => ({
      runsInFlight: runs.activeCount,
      liveInstances: deps.pool.stats().active,
      threadsHeld: c.threadLeases.held,
    }))
    .catch((err: unknown) =>
      log.warn({ err }, 'announcing the node failed: it is retried with each heartbeat'),
    );
  stops.push(
    c.membership.watch(async (deadNode) => {
      // Its background runs are taken again from the queue and resume; the others end.
      const except = (await c.queue?.pendingRunIds()) ?? [];
      const interrupted = await deps.runStore.interruptUnfinished(clock.now(), { node: deadNode, except });
      log.warn(
        { deadNode, interrupted, resumable: except.length },
        'a node stopped heartbeating: its wait and stream runs were ended interrupted; its background runs resume on another node',
      );
    }),
  );
  if (deps.watchChanges) {
    const timer = setInterval(() => check('poll'), c.changePollMs);
    timer.unref();
    stops.push(() => clearInterval(timer));
  }
  const relay = c.relay;
  if (relay !== undefined) {
    // Definition writes of this node are told to the others, which read the feed at once.
    stops.push(
      deps.bus.on('*', (event) => {
        if (event.type.startsWith('agent.')) relay.publish(event);
      }),
      relay.onEvent((event) => {
        if (event.type.startsWith('agent.')) check('a definition change told over Redis');
      }),
      relay.onResubscribed(() => check('Redis reconnected')),
    );
  }
  return stops;
}

/** The node as `pool.cluster` shows it. */
export function clusterView(
  coordination: Coordination<RunEvent>,
  /** What the store is, as readiness names it: postgres, sqlite, memory, or store (your adapters). */
  storeName: string,
  pingStore: () => Promise<void>,
): ClusterView {
  return {
    mode: coordination.mode,
    nodeId: coordination.nodeId,
    redis: coordination.redis,
    nodes: () => coordination.membership.nodes(),
    background: async () => (await coordination.queue?.counts()) ?? null,
    drainQueue: async () => {
      // Bounded: a node draining while Redis is away must still stop (its jobs expire to others).
      const paused = coordination.queue?.pause().catch(() => undefined);
      await Promise.race([paused, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    },
    async dependencies(): Promise<DependencyState[]> {
      const state = async (name: string, probe: () => Promise<void>): Promise<DependencyState> => {
        try {
          await probe();
          return { name, ok: true };
        } catch (err) {
          return {
            name,
            ok: false,
            error: isAgentPoolError(err) || err instanceof Error ? err.message : String(err),
          };
        }
      };
      const checks = [state(storeName, pingStore)];
      if (coordination.mode === 'cluster') checks.push(state('redis', () => coordination.ping()));
      return Promise.all(checks);
    },
  };
}
